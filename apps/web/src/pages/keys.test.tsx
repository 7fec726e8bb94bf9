import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { RequireAuth } from '../session.tsx';
import { MEMBER, renderWithApi, trpcError } from '../test/render.tsx';
import { KeysPage } from './keys.tsx';

const KEY = {
  id: 'key_01',
  name: 'billing-service',
  start: 'kl_key_AbCdE',
  scopes: ['profile:read', 'keys:read'],
  created_at: '2026-11-20T10:00:00.000Z',
  expires_at: null,
  ip_allowlist: null,
  last_used_at: null,
};

const page = (handlers: Record<string, (input: any) => unknown>) =>
  renderWithApi(
    <RequireAuth>
      <KeysPage />
    </RequireAuth>,
    { 'auth.me': () => MEMBER, ...handlers },
    '/keys',
  );

describe('the API keys page', () => {
  it('lists keys with their name, start, scopes, created, expiry and last use', async () => {
    page({ 'apiKeys.list': () => ({ data: [KEY], next_cursor: null }) });
    const row = await screen.findByRole('row', { name: /billing-service/ });
    expect(row.textContent).toContain('kl_key_AbCdE…');
    expect(row.textContent).toContain('profile:read');
    expect(within(row).getAllByText('Never')).toHaveLength(2);
  });

  it('asks before revoking, does nothing on cancel, and revokes on confirm', async () => {
    const user = userEvent.setup();
    let keys = [KEY];
    const revoke = vi.fn(() => {
      keys = [];
      return { ok: true };
    });
    const { calls } = page({ 'apiKeys.list': () => ({ data: keys, next_cursor: null }), 'apiKeys.revoke': revoke });
    const row = await screen.findByRole('row', { name: /billing-service/ });
    await user.click(within(row).getByRole('button', { name: 'Revoke' }));
    const confirm = screen.getByRole('dialog', { name: 'Revoke this key?' });
    expect(confirm.textContent).toMatch(/stops working at once.*cannot be undone/);
    await user.click(within(confirm).getByRole('button', { name: 'Cancel' }));
    expect(screen.queryByRole('dialog')).toBeNull();
    expect(revoke).not.toHaveBeenCalled();

    await user.click(within(row).getByRole('button', { name: 'Revoke' }));
    await user.click(within(screen.getByRole('dialog')).getByRole('button', { name: 'Revoke key' }));
    await screen.findByText('No API keys yet');
    expect(calls.filter((c) => c.path === 'apiKeys.revoke').map((c) => c.input)).toEqual([{ id: 'key_01' }]);
  });

  it('keeps the confirmation open with the reason when revoking fails', async () => {
    const user = userEvent.setup();
    page({
      'apiKeys.list': () => ({ data: [KEY], next_cursor: null }),
      'apiKeys.revoke': () => {
        throw trpcError('API key not found', 404, 'not_found');
      },
    });
    const row = await screen.findByRole('row', { name: /billing-service/ });
    await user.click(within(row).getByRole('button', { name: 'Revoke' }));
    await user.click(within(screen.getByRole('dialog')).getByRole('button', { name: 'Revoke key' }));
    expect((await screen.findByRole('alert')).textContent).toBe('API key not found');
    expect(screen.getByRole('dialog', { name: 'Revoke this key?' })).toBeTruthy();
  });

  it('creates a key with the chosen scopes and shows it once', async () => {
    const user = userEvent.setup();
    const create = vi.fn((input: { name?: string; scopes: string[] }) => ({
      ...KEY,
      id: 'key_02',
      name: input.name ?? null,
      scopes: input.scopes,
      key: 'kl_key_SecretSecretSecretSecretSecret123456',
    }));
    page({ 'apiKeys.list': () => ({ data: [], next_cursor: null }), 'apiKeys.create': create });
    await user.click(await screen.findByRole('button', { name: 'Create your first key' }));
    const dialog = screen.getByRole('dialog', { name: 'Create an API key' });
    await user.type(within(dialog).getByLabelText('Name'), 'ci');
    await user.click(within(dialog).getByRole('checkbox', { name: /audit:read/ }));
    await user.selectOptions(within(dialog).getByLabelText('Expires'), 'never');
    await user.type(within(dialog).getByLabelText('Allowed IP addresses (optional)'), '10.0.0.0/8, 127.0.0.1');
    await user.click(within(dialog).getByRole('button', { name: 'Create key' }));

    const reveal = await screen.findByRole('dialog', { name: 'Key created' });
    expect((within(reveal).getByLabelText('New API key') as HTMLInputElement).value).toBe(
      'kl_key_SecretSecretSecretSecretSecret123456',
    );
    expect(create.mock.calls[0]?.[0]).toEqual({
      name: 'ci',
      scopes: ['profile:read', 'keys:read', 'keys:write', 'sessions:read', 'sessions:write'],
      expires_at: null,
      ip_allowlist: ['10.0.0.0/8', '127.0.0.1'],
    });
    await user.click(within(reveal).getByRole('button', { name: 'I have saved it' }));
    await waitFor(() => expect(screen.queryByDisplayValue(/kl_key_Secret/)).toBeNull());
  });

  it('offers no scope beyond the person’s own', async () => {
    const user = userEvent.setup();
    page({ 'apiKeys.list': () => ({ data: [], next_cursor: null }) });
    await user.click(await screen.findByRole('button', { name: 'Create your first key' }));
    const dialog = screen.getByRole('dialog', { name: 'Create an API key' });
    expect(within(dialog).queryByRole('checkbox', { name: /users:/ })).toBeNull();
  });
});

describe('rotating a key', () => {
  it('asks for the grace period and shows the successor once', async () => {
    const user = userEvent.setup();
    const rotate = vi.fn((_input: { id: string; grace_seconds: number }) => ({
      ...KEY,
      id: 'key_03',
      key: 'kl_key_NextNextNextNextNextNextNext123456',
    }));
    page({ 'apiKeys.list': () => ({ data: [KEY], next_cursor: null }), 'apiKeys.rotate': rotate });
    const row = await screen.findByRole('row', { name: /billing-service/ });
    await user.click(within(row).getByRole('button', { name: 'Rotate' }));
    const dialog = screen.getByRole('dialog', { name: 'Rotate “billing-service”' });
    await user.selectOptions(within(dialog).getByLabelText('Grace period for the old key'), '0');
    await user.click(within(dialog).getByRole('button', { name: 'Rotate key' }));
    const reveal = await screen.findByRole('dialog', { name: 'Key rotated' });
    expect(rotate.mock.calls[0]?.[0]).toEqual({ id: 'key_01', grace_seconds: 0 });
    expect((within(reveal).getByLabelText('New API key') as HTMLInputElement).value).toBe(
      'kl_key_NextNextNextNextNextNextNext123456',
    );
    expect(within(reveal).getByRole('note').textContent).toMatch(/shown only once/);
  });
});
