import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDb, type DbHandle } from '@keyledger/db';
import { createTestDb, type TestDb, testDatabaseUrl } from '@keyledger/db/testing';
import { createTRPCClient, httpLink, TRPCClientError } from '@trpc/client';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppRouter } from '../src/index.ts';

/**
 * An internal app driving the real server process with the typed tRPC client: the environment admin key creates a
 * user, the user signs in (cookie + Origin, as a browser would), creates an API key, and then uses that key as a
 * Bearer token until it is revoked. On real Postgres when the suite has one, else on the embedded database.
 */
const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const TSX = fileURLToPath(new URL('../node_modules/.bin/tsx', import.meta.url));
const ADMIN_KEY = 'e2e-admin-environment-key-0123456789abcdef';
const PASSWORD = 'saffron-glacier-tandem-58';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      s.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

interface Spawned {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

async function spawnServer(env: Record<string, string>): Promise<Spawned> {
  const child = spawn(TSX, [MAIN], {
    env: { ...process.env, DATABASE_URL: '', TEST_DATABASE_URL: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), 60_000);
    const onData = () => {
      if (/listening on http:\/\//.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void exited.then((code) => reject(new Error(`server exited with ${code}:\n${out}`)));
  });
  return { child, output: () => out, exited };
}

/** A typed client; `onResponse` sees every raw response (to read Set-Cookie, as a server-side app can). */
function client(url: string, headers: Record<string, string>, onResponse?: (res: Response) => void) {
  return createTRPCClient<AppRouter>({
    links: [
      httpLink({
        url: `${url}/trpc`,
        headers,
        fetch: async (input, init) => {
          const res = await fetch(input, init);
          onResponse?.(res);
          return res;
        },
      }),
    ],
  });
}

/** The HTTP status behind a failed client call. */
async function statusOf(call: Promise<unknown>): Promise<number | undefined> {
  try {
    await call;
  } catch (error) {
    expect(error).toBeInstanceOf(TRPCClientError);
    const e = error as TRPCClientError<AppRouter>;
    return e.data?.httpStatus ?? (e.meta?.response as Response | undefined)?.status;
  }
  throw new Error('expected the call to fail');
}

describe('an internal app over the typed tRPC client', () => {
  let dir: string;
  let pg: TestDb | undefined;
  let server: Spawned;
  let url: string;
  const secrets: string[] = [ADMIN_KEY, PASSWORD];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keyledger-trpc-e2e-'));
    if (testDatabaseUrl()) pg = await createTestDb();
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    server = await spawnServer({
      PORT: String(port),
      HOST: '127.0.0.1',
      KEYLEDGER_PUBLIC_URL: url,
      KEYLEDGER_DATA_DIR: dir,
      KEYLEDGER_ADMIN_API_KEY: ADMIN_KEY,
      ...(pg ? { DATABASE_URL: pg.url as string } : {}),
    });
  });

  afterAll(async () => {
    if (server && server.child.exitCode === null) {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    await pg?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('creates a user, signs in with a cookie, makes an API key, uses it, revokes it, and leaks no secret', async () => {
    // 1. The environment admin key creates a member with a password.
    const admin = client(url, { authorization: `Bearer ${ADMIN_KEY}` });
    const user = await admin.users.create.mutate({ email: 'app@example.com', name: 'App owner', password: PASSWORD });
    expect(user).toMatchObject({ email: 'app@example.com', role: 'member', disabled: false });
    expect(await admin.auth.me.query()).toMatchObject({ id: 'env:admin', auth: { method: 'env_key' } });
    // Environment keys cannot own API keys.
    expect(await statusOf(admin.apiKeys.create.mutate({ name: 'nope' }))).toBe(403);

    // 2. Sign in: the session comes back only as a Set-Cookie header, never in the body.
    let setCookie: string[] = [];
    const anonymous = client(url, {}, (res) => {
      setCookie = res.headers.getSetCookie();
    });
    const signedIn = await anonymous.auth.signIn.mutate({ email: 'app@example.com', password: PASSWORD });
    expect(signedIn.user_id).toBe(user.id);
    const line = setCookie.find((c) => c.startsWith('keyledger_session='));
    expect(line).toMatch(/HttpOnly/);
    expect(line).toMatch(/SameSite=Lax/);
    const sessionToken = /^keyledger_session=([^;]+)/.exec(line ?? '')?.[1] ?? '';
    expect(sessionToken).toMatch(/^kl_ses_/);
    secrets.push(sessionToken);
    expect(JSON.stringify(signedIn)).not.toContain(sessionToken);

    // A cookie mutation from another origin is refused (CSRF); from our origin it works.
    const cookie = `keyledger_session=${sessionToken}`;
    const crossSite = client(url, { cookie, origin: 'https://evil.example' });
    expect(await statusOf(crossSite.apiKeys.create.mutate({ name: 'csrf' }))).toBe(403);
    const browser = client(url, { cookie, origin: url });
    expect(await browser.auth.me.query()).toMatchObject({ id: user.id, auth: { method: 'session' } });

    // 3. The app's API key, shown once.
    const created = await browser.apiKeys.create.mutate({
      name: 'internal app',
      scopes: ['keys:read', 'profile:read'],
    });
    expect(created.key).toMatch(/^kl_key_/);
    secrets.push(created.key);

    // 4. The key as a Bearer token.
    const app = client(url, { authorization: `Bearer ${created.key}` });
    const listed = await app.apiKeys.list.query();
    expect(listed.data.map((k) => k.id)).toEqual([created.id]);
    expect(JSON.stringify(listed)).not.toContain(created.key);
    expect(await app.auth.me.query()).toMatchObject({ id: user.id, auth: { method: 'api_key', key_id: created.id } });
    // Its scopes stop at keys:read.
    expect(await statusOf(app.apiKeys.revoke.mutate({ id: created.id }))).toBe(403);

    // 5. Revoked by the owner: the key is refused at once. (The HTTP pipeline answers a refused credential, like a
    // failed Origin check, in the REST error envelope, so the client sees the status but no tRPC error code.)
    expect(await browser.apiKeys.revoke.mutate({ id: created.id })).toEqual({ ok: true });
    expect(await statusOf(app.apiKeys.list.query())).toBe(401);
    expect(await statusOf(app.auth.me.query())).toBe(401);

    // Bad input is a 400 that names the field.
    try {
      await browser.apiKeys.create.mutate({ expires_at: 'soon' });
      expect.unreachable();
    } catch (error) {
      const e = error as TRPCClientError<AppRouter>;
      expect(e.data?.code).toBe('BAD_REQUEST');
      expect(e.message).toContain('expires_at');
    }

    // 6. Stop the server; no secret this test made is in its log or in any event.
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    const log = server.output();
    const db: DbHandle = pg ?? (await createDb({ dataDir: dir }));
    try {
      const rows = await sql<{ t: string }>`select data::text || meta::text as t from events`.execute(db.db);
      const events = rows.rows.map((r) => r.t).join('\n');
      expect(events).toContain(created.id); // the right log: the key's events are there
      for (const secret of secrets) {
        expect(events.includes(secret), 'a secret is in the event log').toBe(false);
        expect(log.includes(secret), 'a secret is in the server log').toBe(false);
      }
    } finally {
      if (!pg) await db.close();
    }
  });
});
