import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  api,
  createUser,
  launch,
  newContext,
  PASSWORD,
  pageProblems,
  screenshots,
  signIn,
  startServer,
  type TestServer,
} from './harness.ts';

/**
 * The admin UI in real headless Chromium against the real server process (Postgres when TEST_DATABASE_URL is set,
 * else the embedded database), serving the production build on its own origin.
 */

let browser: Browser;
beforeAll(async () => {
  browser = await launch();
});
afterAll(async () => {
  await browser?.close();
  // No page broke its Content Security Policy or threw.
  expect(pageProblems).toEqual([]);
});

describe('first start', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('creates the first admin through the setup link, signs out, and signs in again with the password', async () => {
    const [, token] = await server.waitForLog(/\/setup\?token=([0-9A-Za-z]{32})/);
    const context = await newContext(browser, server);
    const page = await context.newPage();
    await page.goto(`/setup?token=${token}`);
    await page.getByLabel('Email').fill('ada@example.com');
    await page.getByLabel('Name').fill('Ada Lovelace');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Create admin' }).click();
    // The server's setup page redirects home; the UI takes the admin to their keys.
    await page.waitForURL('**/keys');
    await page.getByRole('heading', { name: 'API keys' }).waitFor();
    await expect(page.getByRole('link', { name: 'Users' }).isVisible()).resolves.toBe(true);
    await screenshots(page, 'keys-empty');

    await page.getByRole('button', { name: /ada@example.com/ }).click();
    await page.getByRole('menuitem', { name: 'Sign out' }).click();
    await page.waitForURL('**/login');
    // Signed out means signed out: the admin pages send one back to sign in.
    await page.goto('/users');
    await page.waitForURL((u) => u.pathname === '/login');

    await page.getByLabel('Email').fill('ada@example.com');
    await page.getByLabel('Password').fill('not-the-password-at-all');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('alert').filter({ hasText: 'do not match' }).waitFor();

    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL('**/users');
    await page.getByRole('heading', { name: 'Users' }).waitFor();
    await context.close();
  });
});

describe('a running deployment', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('creates a key shown once, copies it, uses it from fetch, revokes it and sees it refused', async () => {
    await createUser(server, 'grace@example.com', 'member', 'Grace Hopper');
    const context = await newContext(browser, server);
    const page = await context.newPage();
    await signIn(page, 'grace@example.com');
    await page.getByRole('heading', { name: 'API keys' }).waitFor();
    // Members are not offered admin pages, and typing the address leads nowhere.
    expect(await page.getByRole('link', { name: 'Users' }).count()).toBe(0);
    await page.goto('/users');
    await page.getByText('Page not found').waitFor();
    await page.goto('/keys');

    await page.getByRole('button', { name: 'Create your first key' }).click();
    const dialog = page.getByRole('dialog', { name: 'Create an API key' });
    await dialog.getByLabel('Name').fill('billing-service');
    // Only what the key needs: reading the owner's profile and keys.
    for (const scope of ['keys:write', 'sessions:read', 'sessions:write', 'audit:read']) {
      await dialog.getByRole('checkbox', { name: new RegExp(scope) }).uncheck();
    }
    // Usable only from this machine: the fetch below comes from loopback.
    await dialog.getByLabel('Allowed IP addresses (optional)').fill('127.0.0.1, ::1');
    await dialog.getByRole('button', { name: 'Create key' }).click();

    const reveal = page.getByRole('dialog', { name: 'Key created' });
    await reveal.waitFor();
    await expect(reveal.getByRole('note').textContent()).resolves.toMatch(/shown only once/);
    const shown = await reveal.getByTestId('secret-value').inputValue();
    expect(shown).toMatch(/^kl_key_[0-9A-Za-z]{36}$/);
    await screenshots(page, 'key-created');
    await reveal.getByRole('button', { name: 'Copy' }).click();
    await reveal.getByRole('button', { name: 'Copied' }).waitFor();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    expect(copied).toBe(shown);
    // Escape does not lose the secret: only saying it was saved closes the dialog.
    await page.keyboard.press('Escape');
    expect(await reveal.isVisible()).toBe(true);
    await reveal.getByRole('button', { name: 'I have saved it' }).click();
    expect(await page.getByTestId('secret-value').count()).toBe(0);

    const used = await api(server, 'GET', '/v1/users/me', undefined, { 'x-api-key': copied });
    expect(used.status).toBe(200);
    expect(used.body.email).toBe('grace@example.com');
    expect(used.body.auth.scopes).toEqual(['profile:read', 'keys:read']);

    const row = page.getByRole('row', { name: /billing-service/ });
    await row.waitFor();
    await page.reload();
    await row.getByText('profile:read').waitFor();
    await screenshots(page, 'keys');
    await row.getByRole('button', { name: 'Revoke' }).click();
    const confirm = page.getByRole('dialog', { name: 'Revoke this key?' });
    await confirm.getByRole('button', { name: 'Revoke key' }).click();
    await confirm.waitFor({ state: 'detached' });
    await page.getByText('No API keys yet').waitFor();

    const refused = await api(server, 'GET', '/v1/users/me', undefined, { 'x-api-key': copied });
    expect(refused.status).toBe(401);
    // The secret was never stored by the page.
    const stored = await page.evaluate(
      () => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }),
    );
    expect(stored).not.toContain('kl_');
    await context.close();
  });

  it('revokes another session, which is then signed out', async () => {
    await createUser(server, 'linus@example.com');
    const laptop = await newContext(browser, server);
    const phone = await newContext(browser, server);
    const a = await laptop.newPage();
    const b = await phone.newPage();
    await signIn(a, 'linus@example.com', '/sessions');
    await signIn(b, 'linus@example.com', '/keys');
    await a.reload();
    const cards = a.getByRole('list', { name: 'Sessions' }).getByRole('listitem');
    await expect.poll(() => cards.count()).toBe(2);
    await a.getByText('This device').waitFor();
    await screenshots(a, 'sessions');
    const other = cards.filter({ hasNotText: 'This device' });
    await other.getByRole('button', { name: 'Sign out this session' }).click();
    await a.getByRole('dialog').getByRole('button', { name: 'Sign out', exact: true }).click();
    await expect.poll(() => cards.count()).toBe(1);

    // The other device's next request is refused and it lands on the sign-in page.
    await b.getByRole('link', { name: 'Sessions' }).click();
    await b.waitForURL((u) => u.pathname === '/login');
    await b.getByText('Your session ended').waitFor();
    await laptop.close();
    await phone.close();
  });

  it('lets an admin find and disable a user, who is signed out at once', async () => {
    await createUser(server, 'root@example.com', 'admin', 'Root Admin');
    const member = await createUser(server, 'mallory@example.com', 'member', 'Mallory');
    const adminContext = await newContext(browser, server);
    const memberContext = await newContext(browser, server);
    const admin = await adminContext.newPage();
    const victim = await memberContext.newPage();
    await signIn(victim, 'mallory@example.com', '/sessions');
    await signIn(admin, 'root@example.com', '/users');

    await admin.getByRole('searchbox', { name: 'Search users' }).fill('mallory');
    await admin.getByRole('link', { name: 'mallory@example.com' }).click();
    await admin.waitForURL(`**/users/${member.id}`);
    await admin.getByRole('heading', { name: 'Mallory' }).waitFor();
    await admin.getByText('signed in').first().waitFor();
    await screenshots(admin, 'user');
    await admin.getByRole('button', { name: 'Rename' }).click();
    await admin.getByRole('dialog', { name: 'Rename user' }).getByLabel('Name').fill('Mallory Moriarty');
    await admin.getByRole('button', { name: 'Save name' }).click();
    await admin.getByRole('heading', { name: 'Mallory Moriarty' }).waitFor();
    await admin.getByRole('button', { name: 'Disable user' }).click();
    await admin.getByRole('dialog').getByRole('button', { name: 'Disable user' }).click();
    await admin.getByText('Disabled', { exact: true }).first().waitFor();
    await admin.getByRole('button', { name: 'Enable user' }).waitFor();

    await victim.getByRole('link', { name: 'API keys' }).click();
    await victim.waitForURL((u) => u.pathname === '/login');
    // And cannot come back in.
    await victim.getByLabel('Email').fill('mallory@example.com');
    await victim.getByLabel('Password').fill(PASSWORD);
    await victim.getByRole('button', { name: 'Sign in', exact: true }).click();
    await victim.getByRole('alert').filter({ hasText: 'do not match' }).waitFor();

    await admin.goto('/users');
    await admin.getByRole('link', { name: 'mallory@example.com' }).waitFor();
    await screenshots(admin, 'users');
    await adminContext.close();
    await memberContext.close();
  });

  it('filters the audit log, shows a new event in the live tail within 2 s, and verifies the chain', async () => {
    await createUser(server, 'auditor@example.com', 'admin', 'Auditor');
    const typo = await api(server, 'POST', '/v1/auth/pw/signin', {
      email: 'auditor@example.com',
      password: 'typo-typo-typo',
    });
    expect(typo.status).toBe(401);
    const context = await newContext(browser, server);
    const page = await context.newPage();
    await signIn(page, 'auditor@example.com', '/audit');
    const rows = page.getByRole('list', { name: 'Audit events' }).getByRole('button');
    await rows.first().waitFor();

    await page.getByRole('combobox', { name: 'Type' }).fill('signin.*');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.waitForURL(/type=signin/);
    await expect
      .poll(async () => [...new Set(await rows.locator('code').allTextContents())])
      .toEqual(['signin.failed']);

    await page.getByRole('switch', { name: 'Live tail' }).check();
    await page.getByText('● live').waitFor();
    const before = await rows.count();
    const failed = await api(server, 'POST', '/v1/auth/pw/signin', {
      email: 'nobody@example.com',
      password: 'wrong-password-here',
    });
    expect(failed.status).toBe(401);
    // From the moment the event is committed (the answer is sent after the commit) to the row on screen.
    const started = Date.now();
    await page.locator('.event-row.fresh').first().waitFor({ timeout: 2000 });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await rows.count()).toBe(before + 1);

    await page.locator('.event-row.fresh').first().click();
    const detail = page.getByRole('complementary');
    await detail.getByTestId('event-data').getByText('nobody@example.com').waitFor();
    await detail.getByText('linked').waitFor();
    // The open event is in the URL: a reload (or a shared link) shows it again.
    await page.waitForURL(/event=/);
    await page.reload();
    await page.getByRole('complementary').getByTestId('event-data').getByText('nobody@example.com').waitFor();

    await screenshots(page, 'audit-event');
    await detail.getByRole('button', { name: 'Close event details' }).click();

    await page.getByRole('button', { name: 'Clear' }).click();
    await page.waitForURL((u) => u.search === '');
    await page.getByRole('button', { name: 'Verify chain' }).click();
    await page.getByTestId('verify-result').getByText('Chain intact.').waitFor({ timeout: 30_000 });
    await page.evaluate(() => window.scrollTo(0, 0));
    await screenshots(page, 'audit');

    const exported = await page.evaluate(async () => {
      const a = [...document.querySelectorAll('a')].find((x) => x.textContent === 'CSV');
      const res = await fetch(a?.getAttribute('href') ?? '');
      return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
    });
    expect(exported.status).toBe(200);
    expect(exported.type).toMatch(/text\/csv/);
    expect(exported.text.split('\n')[0]).toMatch(/^seq,occurred_at,type/);
    await context.close();
  });

  it('can be used with the keyboard alone', async () => {
    await createUser(server, 'keys@example.com', 'admin', 'Keyboard');
    const context = await newContext(browser, server);
    const page = await context.newPage();
    await page.goto('/login');
    await page.getByLabel('Email').focus();
    await page.keyboard.type('keys@example.com');
    await page.keyboard.press('Tab');
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press('Enter');
    await page.waitForURL((u) => u.pathname === '/');
    await page.getByRole('heading', { name: 'API keys' }).waitFor();

    // The create dialog opens from the keyboard, takes focus, and Escape returns it to the button.
    const create = page.getByRole('button', { name: 'Create key', exact: true });
    await create.focus();
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'Create an API key' });
    await dialog.waitFor();
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('key-name');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Create key');

    // In the explorer, arrows move between events and Enter opens one.
    await page.goto('/audit');
    const rows = page.getByRole('list', { name: 'Audit events' }).getByRole('button');
    await rows.first().focus();
    await page.keyboard.press('ArrowDown');
    await expect.poll(() => page.evaluate(() => document.activeElement?.getAttribute('data-index'))).toBe('1');
    await page.keyboard.press('Enter');
    await page.getByRole('complementary').waitFor();
    await context.close();
  });
});
