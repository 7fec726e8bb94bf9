import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createServerStore,
  postJson,
  type Ran,
  runCli,
  type ServerStore,
  startServer,
  type TestServer,
} from './harness.ts';

/**
 * Every online command as an operator runs it: the `keyledger` binary as a process against the real server process
 * (on the suite's Postgres when it has one, else on the embedded database), reading --json. Each test has its own
 * HOME, XDG_CONFIG_HOME and working directory, so nothing touches the real home.
 */
const ADMIN_KEY = 'cli-e2e-admin-environment-key-0123456789abcdef';
const PASSWORD = 'saffron-glacier-tandem-58';
const EMAIL = 'operator@example.com';

let store: ServerStore;
let server: TestServer;
let url: string;
let sessionToken: string;
/** Every CLI output of the suite, to search for secrets at the end. */
const outputs: { args: string[]; text: string }[] = [];

let root: string;
let home: string;
let xdg: string;
let cwd: string;

async function run(args: string[], env: Record<string, string> = {}, stdin?: string): Promise<Ran> {
  const r = await runCli(args, { env: { HOME: home, XDG_CONFIG_HOME: xdg, ...env }, cwd, stdin });
  outputs.push({ args, text: r.stdout + r.stderr });
  return r;
}

async function json<T = any>(args: string[], env?: Record<string, string>, stdin?: string): Promise<T> {
  const r = await run([...args, '--json'], env, stdin);
  expect(r.code, `${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout) as T;
}

const rest = (path: string, body: unknown): Promise<any> => postJson(`${url}${path}`, body);

beforeAll(async () => {
  store = await createServerStore();
  server = await startServer(store, { KEYLEDGER_ADMIN_API_KEY: ADMIN_KEY });
  url = server.url;
  const signedUp = await rest('/v1/auth/pw/signup', { email: EMAIL, password: PASSWORD });
  sessionToken = signedUp.access_token;
  expect(sessionToken).toMatch(/^kl_ses_/);
}, 300_000);

afterAll(async () => {
  await server?.stop();
  await store?.close();
});

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'keyledger-cli-home-'));
  home = join(root, 'home');
  xdg = join(root, 'xdg');
  cwd = join(root, 'project');
  for (const d of [home, cwd]) mkdirSync(d);
  return () => rmSync(root, { recursive: true, force: true });
});

describe('keyledger online commands against the real server', () => {
  it('auth: no credential is exit 3 naming the fix; set (stdin), status masked, check, logout', async () => {
    const none = await run(['keys', 'list', '--json'], { KEYLEDGER_URL: url });
    expect(none.code).toBe(3);
    expect(JSON.parse(none.stdout).error).toMatch(/no credential: set KEYLEDGER_TOKEN .*keyledger auth set --token/);

    const set = await json(['auth', 'set', '--url', url, '--session-token', '-'], {}, `${sessionToken}\n`);
    const file = join(xdg, 'keyledger', 'config.toml');
    expect(set).toMatchObject({ path: file, profile: 'default', saved: ['url', 'session_token'] });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(xdg, 'keyledger')).mode & 0o777).toBe(0o700);
    expect(readFileSync(file, 'utf8')).toContain(sessionToken);

    const status = await run(['auth', 'status', '--json']);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({
      profile: 'default',
      url: { value: url, source: 'user' },
      credential: { kind: 'session', source: 'user', path: file, masked: `${sessionToken.slice(0, 12)}…` },
    });
    const human = await run(['auth', 'status']);
    expect(human.stdout).toContain(`${sessionToken.slice(0, 12)}…`);
    for (const r of [status, human]) expect(r.stdout + r.stderr).not.toContain(sessionToken);

    const check = await json(['auth', 'check']);
    expect(check).toMatchObject({ ok: true, user: { email: EMAIL, role: 'member' }, method: 'session' });

    // A ./.keyledger.toml profile comes before the user file; a wrong key there is refused with exit 3.
    await json([
      'auth',
      'set',
      '--local',
      '--profile',
      'ci',
      '--url',
      url,
      '--token',
      'kl_key_not_a_real_key_0123456789',
    ]);
    expect(statSync(join(cwd, '.keyledger.toml')).mode & 0o777).toBe(0o600);
    expect(await json(['auth', 'status', '--profile', 'ci'])).toMatchObject({
      credential: { kind: 'api_key', source: 'local' },
    });
    expect((await run(['auth', 'check', '--profile', 'ci'])).code).toBe(3);
    // The environment comes before both.
    expect(await json(['auth', 'status', '--profile', 'ci'], { KEYLEDGER_TOKEN: ADMIN_KEY })).toMatchObject({
      credential: { kind: 'api_key', source: 'env' },
    });

    // Logout signs the session out on the server and removes it from the file.
    const logout = await json(['auth', 'logout']);
    expect(logout).toMatchObject({ removed: 'session_token', source: 'user', signed_out: true });
    expect(readFileSync(file, 'utf8')).not.toContain(sessionToken);
    expect(await json(['auth', 'status'])).toMatchObject({ credential: null, url: { value: url } });
    expect((await run(['auth', 'check'], { KEYLEDGER_SESSION_TOKEN: sessionToken })).code).toBe(3);

    // Sign in again for the rest of the suite.
    sessionToken = (await rest('/v1/auth/pw/signin', { email: EMAIL, password: PASSWORD })).access_token;
  }, 300_000);

  it('keys: create (secret shown once), list, works for auth check, rotate, revoke (then exit 3)', async () => {
    const env = { KEYLEDGER_URL: url, KEYLEDGER_SESSION_TOKEN: sessionToken };
    const created = await json(['keys', 'create', '--name', 'ci', '--expires', '2099-01-01T00:00:00Z'], env);
    expect(created.key).toMatch(/^kl_key_/);
    expect(created).toMatchObject({ name: 'ci', expires_at: '2099-01-01T00:00:00.000Z' });

    const listed = await run(['keys', 'list', '--json'], env);
    expect(JSON.parse(listed.stdout).data.map((k: { id: string }) => k.id)).toEqual([created.id]);
    const humanList = await run(['keys', 'list'], env);
    expect(humanList.stdout).toContain(created.id);

    const asKey = { KEYLEDGER_URL: url, KEYLEDGER_TOKEN: created.key };
    expect(await json(['auth', 'check'], asKey)).toMatchObject({ ok: true, method: 'api_key', user: { email: EMAIL } });

    const rotated = await json(['keys', 'rotate', created.id, '--grace', '0'], env);
    expect(rotated.key).toMatch(/^kl_key_/);
    expect(rotated.id).not.toBe(created.id);
    expect((await run(['auth', 'check', '--json'], asKey)).code).toBe(3);
    const asRotated = { KEYLEDGER_URL: url, KEYLEDGER_TOKEN: rotated.key };
    expect((await run(['auth', 'check'], asRotated)).code).toBe(0);

    // The human form of create prints the secret once, with the warning.
    const human = await run(['keys', 'create', '--name', 'human', '--scope', 'keys:read'], env);
    expect(human.code).toBe(0);
    const secret = /key: (kl_key_\S+)/.exec(human.stdout)?.[1] ?? '';
    expect(secret).toMatch(/^kl_key_/);
    expect(human.stdout).toMatch(/only time the key is shown/);

    expect(await json(['keys', 'revoke', rotated.id], env)).toEqual({ ok: true, revoked: rotated.id });
    const refused = await run(['auth', 'check', '--json'], asRotated);
    expect(refused.code).toBe(3);
    expect(JSON.parse(refused.stdout).error).toMatch(/refused the API key from the environment/);
    expect((await run(['keys', 'revoke', rotated.id], env)).code).toBe(1);
    expect((await run(['keys', 'rotate', created.id, '--grace', 'soon'], env)).code).toBe(2);

    // Each key's secret is in exactly one output: its creation's.
    for (const key of [created.key, rotated.key, secret]) {
      const seen = outputs.filter((o) => o.text.includes(key) && !o.args.includes('--session-token'));
      expect(seen.length, `${key.slice(0, 12)} shown ${seen.length} times`).toBe(1);
      expect(seen[0]?.args.slice(0, 2)).toEqual(key === rotated.key ? ['keys', 'rotate'] : ['keys', 'create']);
    }
  }, 300_000);

  it('sessions: list, revoke one, revoke --others', async () => {
    const env = { KEYLEDGER_URL: url, KEYLEDGER_SESSION_TOKEN: sessionToken };
    const other1 = (await rest('/v1/auth/pw/signin', { email: EMAIL, password: PASSWORD })).access_token;
    const other2 = (await rest('/v1/auth/pw/signin', { email: EMAIL, password: PASSWORD })).access_token;
    const listed = await json<{ data: { id: string; current: boolean }[] }>(['sessions', 'list'], env);
    expect(listed.data.length).toBe(3);
    expect(listed.data.filter((s) => s.current)).toHaveLength(1);
    const otherId = listed.data.find((s) => !s.current)?.id as string;

    expect(await json(['sessions', 'revoke', otherId], env)).toEqual({ ok: true, revoked: otherId });
    expect((await json(['sessions', 'list'], env)).data).toHaveLength(2);
    expect((await run(['sessions', 'revoke'], env)).code).toBe(2);
    expect(await json(['sessions', 'revoke', '--others'], env)).toEqual({ revoked: 1 });
    const left = await json<{ data: { current: boolean }[] }>(['sessions', 'list'], env);
    expect(left.data).toEqual([expect.objectContaining({ current: true })]);
    for (const t of [other1, other2]) {
      expect((await run(['auth', 'check'], { KEYLEDGER_URL: url, KEYLEDGER_SESSION_TOKEN: t })).code).toBe(3);
    }
    const human = await run(['sessions', 'list'], env);
    expect(human.stdout).toMatch(/^ID\s+CURRENT/);
  }, 300_000);

  it('users: list, invite, role, disable, enable as the environment admin key; a member is refused (exit 3)', async () => {
    const admin = { KEYLEDGER_URL: url, KEYLEDGER_TOKEN: ADMIN_KEY };
    const invited = await json(['users', 'invite', 'new.hire@example.com'], admin);
    expect(invited).toMatchObject({ email: 'new.hire@example.com', role: 'member', disabled: false });
    const found = await json(['users', 'list', '--query', 'new.hire'], admin);
    expect(found.data.map((u: { id: string }) => u.id)).toEqual([invited.id]);
    expect((await json(['users', 'list'], admin)).data.length).toBeGreaterThanOrEqual(2);
    // A second admin first: the last active admin cannot be demoted or disabled.
    const invitedAdmin = await json(['users', 'invite', 'second.admin@example.com', '--admin'], admin);
    expect(invitedAdmin.role).toBe('admin');
    expect(await json(['users', 'role', invited.id, 'admin'], admin)).toMatchObject({ role: 'admin' });
    expect(await json(['users', 'disable', invited.id], admin)).toMatchObject({ disabled: true });
    expect(await json(['users', 'enable', invited.id], admin)).toMatchObject({ disabled: false });
    expect((await run(['users', 'role', invited.id, 'owner'], admin)).code).toBe(2);

    const member = await run(['users', 'list', '--json'], {
      KEYLEDGER_URL: url,
      KEYLEDGER_SESSION_TOKEN: sessionToken,
    });
    expect(member.code).toBe(3);
    expect(JSON.parse(member.stdout).error).toMatch(/forbidden/);
  }, 300_000);

  it('prints no session token, admin key or password anywhere', () => {
    expect(outputs.length).toBeGreaterThan(20);
    for (const o of outputs) {
      for (const secret of [ADMIN_KEY, PASSWORD, sessionToken]) {
        expect(o.text.includes(secret), `${o.args.join(' ')} printed a secret`).toBe(false);
      }
    }
    expect(server.log()).not.toContain(ADMIN_KEY);
  });
});
