import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createServerStore,
  plain,
  postJson,
  runCli,
  type ServerStore,
  spawnPty,
  startServer,
  type TestServer,
} from './harness.ts';

/**
 * `keyledger auth` with no subcommand, on a real pseudo-terminal (util-linux `script`), answered key by key as a
 * person would: the server URL, the way in (arrow keys), the email, the masked password or pasted secret.
 */
const EMAIL = 'pat@example.com';
const PASSWORD = 'saffron-glacier-tandem-58';
const DOWN = '\x1b[B';
const ENTER = '\r';

let store: ServerStore;
let server: TestServer;
let url: string;
let root: string;
let env: Record<string, string>;
let configFile: string;

beforeAll(async () => {
  store = await createServerStore();
  server = await startServer(store);
  url = server.url;
  await postJson(`${url}/v1/auth/pw/signup`, { email: EMAIL, password: PASSWORD });
}, 300_000);
afterAll(async () => {
  await server?.stop();
  await store?.close();
});
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'keyledger-cli-auth-'));
  mkdirSync(join(root, 'home'));
  env = { HOME: join(root, 'home'), XDG_CONFIG_HOME: join(root, 'xdg') };
  configFile = join(root, 'xdg', 'keyledger', 'config.toml');
  return () => rmSync(root, { recursive: true, force: true });
});

async function answerUrlAndMethod(pty: ReturnType<typeof spawnPty>, downs: number) {
  await pty.expect('Server URL');
  pty.type(`${url}${ENTER}`);
  await pty.expect('How do you sign in?');
  pty.type(DOWN.repeat(downs));
  pty.type(ENTER);
}

describe('keyledger auth, interactive', () => {
  it('signs in with email and a masked password, saves the session 0600, and it works at once', async () => {
    const pty = spawnPty(['auth'], { env, cwd: root });
    await answerUrlAndMethod(pty, 0);
    await pty.expect(/Email\s*$/);
    pty.type(`${EMAIL}${ENTER}`);
    await pty.expect(/Password\s*$/);
    pty.type(`${PASSWORD}${ENTER}`);
    expect(await pty.exited).toBe(0);

    const screen = plain(pty.screen());
    expect(screen).toContain(`Password ${'*'.repeat(PASSWORD.length)}`);
    expect(screen).not.toContain(PASSWORD);
    expect(screen).toMatch(new RegExp(`signed in as ${EMAIL} \\(member\\) at ${url}`));
    expect(statSync(configFile).mode & 0o777).toBe(0o600);
    const saved = readFileSync(configFile, 'utf8');
    const token = /session_token = "(kl_ses_[^"]+)"/.exec(saved)?.[1] as string;
    expect(token).toBeDefined();
    expect(saved).toContain(`url = "${url}"`);
    expect(screen).toContain(`saved the session token ${token.slice(0, 12)}… to ${configFile}`);
    expect(screen).not.toContain(token);

    const check = await runCli(['auth', 'check', '--json'], { env, cwd: root });
    expect(check.code, check.stderr).toBe(0);
    expect(JSON.parse(check.stdout)).toMatchObject({ ok: true, user: { email: EMAIL }, method: 'session' });
  }, 120_000);

  it('signs in by a mailed link, pasted masked (the server without SMTP prints its mail to its log)', async () => {
    const pty = spawnPty(['auth', '--local'], { env, cwd: root });
    await answerUrlAndMethod(pty, 1);
    await pty.expect(/Email\s*$/);
    pty.type(`${EMAIL}${ENTER}`);
    await pty.expect(/Paste the link \(or its code\)\s*$/);
    let link = '';
    await expect
      .poll(() => (link = new RegExp(`mail to ${EMAIL} [^:]*: (\\S+?)"`).exec(server.log())?.[1] ?? ''), {
        timeout: 30_000,
      })
      .toMatch(/\/auth\/magic\?code=/);
    pty.type(`${link}${ENTER}`);
    expect(await pty.exited).toBe(0);
    const screen = plain(pty.screen());
    expect(screen).not.toContain(link);
    expect(screen).toMatch(new RegExp(`signed in as ${EMAIL} \\(member\\)`));
    const local = join(root, '.keyledger.toml');
    expect(statSync(local).mode & 0o777).toBe(0o600);
    expect(readFileSync(local, 'utf8')).toMatch(/session_token = "kl_ses_/);
    const check = await runCli(['auth', 'check', '--json'], { env, cwd: root });
    expect(JSON.parse(check.stdout)).toMatchObject({ ok: true, credential: { source: 'local' } });
    // The link works once.
    const again = spawnPty(['auth'], { env, cwd: root });
    await answerUrlAndMethod(again, 1);
    await again.expect(/Email\s*$/);
    again.type(`${EMAIL}${ENTER}`);
    await again.expect(/Paste the link/);
    again.type(`${link}${ENTER}`);
    expect(await again.exited).toBe(3);
    expect(plain(again.screen())).toMatch(/error: sign-in refused: the link is invalid, used or expired/);
  }, 120_000);

  it('takes a pasted API key (masked) into a named profile, replacing the session saved there', async () => {
    const session = (await postJson(`${url}/v1/auth/pw/signin`, { email: EMAIL, password: PASSWORD })).access_token;
    await runCli(['auth', 'set', '--profile', 'ci', '--url', url, '--session-token', '-'], {
      env,
      cwd: root,
      stdin: session,
    });
    const key = (await postJson(`${url}/v1/api-keys`, { name: 'pasted' }, { authorization: `Bearer ${session}` }))
      .key as string;
    expect(key).toMatch(/^kl_key_/);

    const pty = spawnPty(['auth', '--profile', 'ci'], { env, cwd: root });
    await answerUrlAndMethod(pty, 3);
    await pty.expect(/API key\s*$/);
    pty.type(`${key}${ENTER}`);
    expect(await pty.exited).toBe(0);
    const screen = plain(pty.screen());
    expect(screen).not.toContain(key);
    expect(screen).toContain(`API key ${'*'.repeat(key.length)}`);
    expect(screen).toContain('replaced the session token saved there before');

    const saved = readFileSync(configFile, 'utf8');
    expect(saved).toContain(key);
    expect(saved).not.toContain(session);
    const status = await runCli(['auth', 'status', '--profile', 'ci', '--json'], { env, cwd: root });
    expect(JSON.parse(status.stdout)).toMatchObject({ credential: { kind: 'api_key', source: 'user' } });
  }, 120_000);

  it('saves nothing when the server refuses (exit 3) or when cancelled with Ctrl-C (exit 1)', async () => {
    const pty = spawnPty(['auth'], { env, cwd: root });
    await answerUrlAndMethod(pty, 0);
    await pty.expect(/Email\s*$/);
    pty.type(`${EMAIL}${ENTER}`);
    await pty.expect(/Password\s*$/);
    pty.type(`not-the-password-42${ENTER}`);
    expect(await pty.exited).toBe(3);
    expect(plain(pty.screen())).toMatch(/error: sign-in refused: wrong email or password/);

    const pasted = spawnPty(['auth'], { env, cwd: root });
    await answerUrlAndMethod(pasted, 2);
    await pasted.expect(/Session token\s*$/);
    pasted.type(`kl_ses_not_a_real_session_token_0123456789${ENTER}`);
    expect(await pasted.exited).toBe(3);
    expect(plain(pasted.screen())).toMatch(/error: the server refused the session token/);

    const cancelled = spawnPty(['auth'], { env, cwd: root });
    await cancelled.expect('Server URL');
    cancelled.type('\x03');
    expect(await cancelled.exited).toBe(1);
    expect(plain(cancelled.screen())).toMatch(/error: cancelled: nothing was saved/);
    expect(() => statSync(configFile)).toThrow();
  }, 120_000);

  it('off a terminal, says to use `auth set` (exit 2)', async () => {
    const r = await runCli(['auth', '--json'], { env, cwd: root });
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout).error).toMatch(/on a terminal; in a script use `keyledger auth set/);
  });
});
