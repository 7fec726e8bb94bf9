import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createUser,
  launch,
  type MailCapture,
  newContext,
  type OidcProvider,
  pageProblems,
  screenshots,
  signIn,
  startMailCapture,
  startOidcProvider,
  startServer,
  type TestServer,
} from './harness.ts';

/** Sign-in by email link (mailed over SMTP to a capture server) and through a loopback OpenID provider. */
describe('sign-in by email link and by a provider', () => {
  let browser: Browser;
  let server: TestServer;
  let mail: MailCapture;
  let oidc: OidcProvider;
  beforeAll(async () => {
    [browser, mail, oidc] = await Promise.all([launch(), startMailCapture(), startOidcProvider()]);
    server = await startServer({
      KEYLEDGER_SMTP_URL: mail.url,
      KEYLEDGER_OIDC_PROVIDERS: JSON.stringify([
        { id: 'acme', name: 'Acme SSO', issuer: oidc.issuer, client_id: 'keyledger-e2e', client_secret: 'e2e-secret' },
      ]),
    });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await mail?.close();
    await oidc?.close();
    expect(pageProblems).toEqual([]);
  });

  it('mails a link, shows "check your inbox", and signs in through the confirm page', async () => {
    await createUser(server, 'ada@example.com', 'member', 'Ada');
    const context = await newContext(browser, server);
    const page = await context.newPage();
    await page.goto('/login?next=%2Fsessions');
    await page.getByRole('link', { name: 'Continue with Acme SSO' }).waitFor();
    await screenshots(page, 'sign-in');

    await page.getByRole('tab', { name: 'Email link' }).click();
    await page.getByLabel('Email').fill('ada@example.com');
    const sent = mail.messages.length;
    await page.getByRole('button', { name: 'Email me a sign-in link' }).click();
    await page.getByRole('heading', { name: 'Check your inbox' }).waitFor();
    await screenshots(page, 'sign-in-link-sent');

    const link = await mail.linkFor('ada@example.com', sent);
    await page.goto(link);
    // A GET only asks: mail scanners follow links, and a link is used once.
    await page.getByRole('heading', { name: 'Sign in as ada@example.com?' }).waitFor();
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((u) => u.pathname === '/sessions');
    await page.getByText('Email link').first().waitFor();
    await context.close();
  });

  it('invites a user from the Users page, who signs in with the mailed invitation', async () => {
    await createUser(server, 'boss@example.com', 'admin', 'Boss');
    const adminContext = await newContext(browser, server);
    const admin = await adminContext.newPage();
    await signIn(admin, 'boss@example.com', '/users');
    await admin.getByRole('button', { name: 'Invite user' }).click();
    const dialog = admin.getByRole('dialog', { name: 'Invite a user' });
    await dialog.getByLabel('Email').fill('newcomer@example.com');
    await dialog.getByLabel('Name (optional)').fill('Newcomer');
    const sent = mail.messages.length;
    await dialog.getByRole('button', { name: 'Invite' }).click();
    await admin.getByRole('heading', { name: 'Newcomer' }).waitFor();
    await admin.getByText('Unverified', { exact: true }).waitFor();

    const link = await mail.linkFor('newcomer@example.com', sent);
    const inviteeContext = await newContext(browser, server);
    const invitee = await inviteeContext.newPage();
    await invitee.goto(link);
    await invitee.getByRole('button', { name: 'Sign in' }).click();
    await invitee.waitForURL((u) => u.pathname === '/keys');
    await invitee.getByRole('button', { name: /newcomer@example.com/ }).waitFor();
    expect(await invitee.getByRole('link', { name: 'Users' }).count()).toBe(0);
    await adminContext.close();
    await inviteeContext.close();
  });

  it('signs in through the OpenID provider, and explains a refusal in words', async () => {
    await createUser(server, 'grace@example.com', 'member', 'Grace');
    const context = await newContext(browser, server);
    const page = await context.newPage();

    oidc.claims = { sub: 'acme-grace', email: 'grace@example.com', email_verified: true, name: 'Grace' };
    await page.goto('/login?next=%2Fsessions');
    await page.getByRole('link', { name: 'Continue with Acme SSO' }).click();
    await page.waitForURL((u) => u.pathname === '/sessions');
    await page.getByText('Single sign-on').first().waitFor();
    await page.getByRole('button', { name: /grace@example.com/ }).click();
    await page.getByRole('menuitem', { name: 'Sign out' }).click();
    await page.waitForURL((u) => u.pathname === '/login');

    // Sign-up is by invitation: a stranger the provider vouches for is still refused, and told why.
    oidc.claims = { sub: 'acme-stranger', email: 'stranger@example.com', email_verified: true };
    await page.getByRole('link', { name: 'Continue with Acme SSO' }).click();
    await page.waitForURL((u) => u.pathname === '/login' && u.searchParams.get('error') === 'signup_closed');
    await page.getByRole('alert').filter({ hasText: 'sign-up is by invitation only' }).waitFor();
    await context.close();
  });

  it('links a provider from the account page, which then signs the person in', async () => {
    await createUser(server, 'linus@example.com', 'member', 'Linus');
    const context = await newContext(browser, server);
    const page = await context.newPage();
    await signIn(page, 'linus@example.com', '/account');
    await page.getByText('Not linked').waitFor();
    // The provider knows this person under another, unverified address: the session proves who links it.
    oidc.claims = { sub: 'acme-linus', email: 'linus@elsewhere.example', email_verified: false };
    await page.getByRole('link', { name: 'Connect Acme SSO' }).click();
    await page.waitForURL((u) => u.pathname === '/account');
    await page.getByText('Linked', { exact: true }).waitFor();
    await page.getByText(/linus@elsewhere.example/).waitFor();
    await screenshots(page, 'account');

    await page.getByRole('button', { name: /linus@example.com/ }).click();
    await page.getByRole('menuitem', { name: 'Sign out' }).click();
    await page.waitForURL((u) => u.pathname === '/login');
    await page.getByRole('link', { name: 'Continue with Acme SSO' }).click();
    await page.waitForURL((u) => u.pathname === '/keys');
    await page.getByRole('button', { name: /linus@example.com/ }).waitFor();
    await context.close();
  });
});
