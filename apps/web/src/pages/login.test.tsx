import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { renderWithApi, trpcError } from '../test/render.tsx';
import { LoginPage } from './login.tsx';

const signedOut = { 'auth.me': () => Promise.reject(trpcError('Authentication required', 401)) };

function stubFetch(providers: unknown[] = []) {
  const calls: { url: string; body: unknown }[] = [];
  vi.stubGlobal(
    'fetch',
    vi.fn(async (url: string, init?: RequestInit) => {
      calls.push({ url, body: init?.body ? JSON.parse(String(init.body)) : undefined });
      if (url === '/v1/auth/oauth/providers') return Response.json({ data: providers, next_cursor: null });
      if (url === '/v1/auth/magic-link') return Response.json({ status: 'sent' });
      return new Response(null, { status: 404 });
    }),
  );
  return calls;
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('the sign-in page', () => {
  it('explains an OAuth refusal code in words', async () => {
    stubFetch();
    renderWithApi(<LoginPage />, signedOut, '/login?error=signup_closed');
    expect((await screen.findByRole('alert')).textContent).toMatch(/sign-up is by invitation only/);
  });

  it('offers a button per provider, carrying where to go next', async () => {
    stubFetch([
      { id: 'google', name: 'Google', type: 'google', login_url: 'http://localhost:3000/v1/auth/oauth/google/login' },
    ]);
    renderWithApi(<LoginPage />, signedOut, '/login?next=%2Faudit');
    const link = await screen.findByRole('link', { name: 'Continue with Google' });
    expect(link.getAttribute('href')).toBe('/v1/auth/oauth/google/login?next=%2Faudit');
  });

  it('sends an email link and says to check the inbox', async () => {
    const user = userEvent.setup();
    const calls = stubFetch();
    renderWithApi(<LoginPage />, signedOut, '/login?next=%2Fsessions');
    await user.click(screen.getByRole('tab', { name: 'Email link' }));
    await user.type(screen.getByLabelText('Email'), 'ada@example.com');
    await user.click(screen.getByRole('button', { name: 'Email me a sign-in link' }));
    const status = await screen.findByRole('status');
    expect(within(status).getByRole('heading', { name: 'Check your inbox' })).toBeTruthy();
    expect(status.textContent).toContain('ada@example.com');
    expect(calls.find((c) => c.url === '/v1/auth/magic-link')?.body).toEqual({
      email: 'ada@example.com',
      next: '/sessions',
    });
  });

  it('answers a wrong password without saying whether the account exists', async () => {
    const user = userEvent.setup();
    stubFetch();
    renderWithApi(
      <LoginPage />,
      { ...signedOut, 'auth.signIn': () => Promise.reject(trpcError('Invalid email or password', 401)) },
      '/login',
    );
    await user.type(screen.getByLabelText('Email'), 'who@example.com');
    await user.type(screen.getByLabelText('Password'), 'wrong-password');
    await user.click(screen.getByRole('button', { name: 'Sign in' }));
    expect((await screen.findByRole('alert')).textContent).toBe('That email and password do not match an account.');
  });
});
