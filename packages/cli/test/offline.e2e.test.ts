import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  catalogue,
  EventStore,
  ManualClock,
  passwordSignIn,
  projections,
  readEvents,
  registerUser,
  SYSTEM_META,
  systemClock,
  verifyMagicLink,
} from '@keyledger/core';
import { createDb, migrateToLatest } from '@keyledger/db';
import { createTestDb, type TestDb, testDatabaseUrl } from '@keyledger/db/testing';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { plain, runCli, spawnPty } from './harness.ts';

const BIN = fileURLToPath(new URL('../bin/keyledger.js', import.meta.url));

function run(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, DATABASE_URL: '', TEST_DATABASE_URL: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

let dir: string;
let pg: TestDb | undefined;
let env: Record<string, string>;

/** A log of a few real events, on the suite's Postgres when it has one, else in an embedded data directory. */
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyledger-cli-'));
  pg = testDatabaseUrl() ? await createTestDb() : undefined;
  env = { KEYLEDGER_DATA_DIR: dir, ...(pg ? { DATABASE_URL: pg.url as string } : {}) };
  const handle = pg ?? (await createDb({ dataDir: dir }));
  if (!pg) await migrateToLatest(handle.db);
  const clock = new ManualClock();
  const core = { db: handle.db, store: new EventStore({ db: handle.db, catalogue, projections }), clock };
  for (const email of ['a@example.com', 'b@example.com', 'c@example.com']) {
    await registerUser(core, SYSTEM_META, { email, name: null, role: 'member', method: 'admin' });
  }
  if (!pg) await handle.close();
});
afterEach(async () => {
  await pg?.close();
  await rm(dir, { recursive: true, force: true });
});

async function tamper(...statements: string[]): Promise<void> {
  const handle = pg ?? (await createDb({ dataDir: dir }));
  await handle.db.transaction().execute(async (trx) => {
    await sql`set local session_replication_role = replica`.execute(trx);
    for (const statement of statements) await sql.raw(statement).execute(trx);
  });
  if (!pg) await handle.close();
}

describe('keyledger, offline on the database', () => {
  it('checkpoints, then verifies the log against the exported checkpoint (--json, exit 0)', async () => {
    const cp = await run(['audit', 'checkpoint', '--json'], env);
    expect(cp.code).toBe(0);
    const made = JSON.parse(cp.stdout) as { size: number; public_key: string; note: string };
    expect(made.size).toBe(3);
    expect((await stat(join(dir, 'checkpoint.key'))).mode & 0o777).toBe(0o600);
    expect(await readFile(join(dir, 'checkpoints', 'latest'), 'utf8')).toBe(made.note);
    expect(cp.stdout).not.toContain('PRIVATE+KEY');
    const verified = await run(['audit', 'verify', '--json'], env);
    expect(verified.code).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({
      ok: true,
      checked: 3,
      first_bad_seq: null,
      checkpoint: { size: 3, ok: true },
    });
  });

  it('names the first bad seq and exits 1 when a row was edited', async () => {
    await run(['audit', 'checkpoint'], env);
    await tamper(`update events set data = jsonb_set(data, '{email}', '"mallory@example.com"') where seq = 2`);
    const verified = await run(['audit', 'verify', '--json'], env);
    expect(verified.code).toBe(1);
    expect(JSON.parse(verified.stdout)).toMatchObject({ ok: false, first_bad_seq: 2, reason: 'hash_mismatch' });
    const human = await run(['audit', 'verify'], env);
    expect(human.stdout).toMatch(/FAILED at seq 2: hash_mismatch/);
  });

  it('catches a truncated tail against the checkpoint', async () => {
    await run(['audit', 'checkpoint'], env);
    await tamper(
      'delete from events where seq = 3',
      'update chain_head set seq = 2, hash = (select hash from events where seq = 2)',
    );
    const verified = await run(['audit', 'verify', '--json'], env);
    expect(verified.code).toBe(1);
    expect(JSON.parse(verified.stdout)).toMatchObject({
      ok: false,
      reason: 'checkpoint_beyond_head',
      first_bad_seq: 3,
      checkpoint: { size: 3, ok: false },
    });
  });

  it('rejects a checkpoint signed by another key, given --public-key', async () => {
    await run(['audit', 'checkpoint'], env);
    const other = 'other.example/keyledger+0a0b0c0d+AcYd2d1h3K0w2bJ4mZpYbQwB7gqz9Wf2N8r8Z4m5o1pZ';
    const verified = await run(['audit', 'verify', '--json', '--public-key', other], env);
    expect(verified.code).toBe(1);
    expect(verified.stdout + verified.stderr).toMatch(/checkpoint rejected|not a verifier key|does not match/);
  });

  it('checks projections against the log, catches a row changed behind its back, and rebuilds it', async () => {
    const clean = await run(['projections', 'check', '--json'], env);
    expect(clean.code).toBe(0);
    expect(JSON.parse(clean.stdout)).toMatchObject({ ok: true, replayed: 3 });
    await tamper("update users set role = 'admin' where email = 'b@example.com'");
    const dirty = await run(['projections', 'check', '--json'], env);
    expect(dirty.code).toBe(1);
    const result = JSON.parse(dirty.stdout) as {
      ok: boolean;
      tables: { table: string; unexpected: number; missing: number }[];
    };
    expect(result.tables.find((t) => t.table === 'users')).toMatchObject({ unexpected: 1, missing: 1 });
    expect((await run(['projections', 'rebuild', '--json'], env)).code).toBe(0);
    expect((await run(['projections', 'check'], env)).code).toBe(0);
  });

  it('migrates (nothing pending) and answers usage errors with exit 2', async () => {
    const migrated = await run(['db', 'migrate', '--json'], env);
    expect(migrated.code).toBe(0);
    expect(JSON.parse(migrated.stdout)).toMatchObject({ applied: [] });
    expect((await run(['no-such-command'], env)).code).toBe(2);
    expect((await run(['audit', 'verify'], { ...env, DATABASE_URL: 'mysql://nope' })).code).toBe(2);
  });
});

/** Opens the suite's database for a look (the embedded one takes one process at a time: close it before the CLI runs). */
async function withCore<T>(
  fn: (core: { db: any; store: EventStore; clock: typeof systemClock }) => Promise<T>,
): Promise<T> {
  const handle = pg ?? (await createDb({ dataDir: dir }));
  try {
    return await fn({
      db: handle.db,
      store: new EventStore({ db: handle.db, catalogue, projections }),
      clock: systemClock,
    });
  } finally {
    if (!pg) await handle.close();
  }
}

describe('keyledger users create, offline on the database', () => {
  it("bootstraps the first admin with a one-time link that signs in once; the event is the CLI's, method bootstrap", async () => {
    const created = await runCli(
      ['users', 'create', '--admin', '--email', 'Root@Example.com', '--name', 'Root', '--json'],
      {
        env: { ...env, KEYLEDGER_PUBLIC_URL: 'https://auth.example.com' },
      },
    );
    expect(created.code, created.stderr).toBe(0);
    const user = JSON.parse(created.stdout);
    expect(user).toMatchObject({
      email: 'root@example.com',
      name: 'Root',
      role: 'admin',
      method: 'bootstrap',
      password_set: false,
    });
    const link = new URL(user.sign_in_link);
    expect(link.origin + link.pathname).toBe('https://auth.example.com/auth/magic');
    expect(link.searchParams.get('email')).toBe('root@example.com');
    const code = link.searchParams.get('code') as string;
    expect(code).toMatch(/^[0-9A-Za-z]{32}$/);

    await withCore(async (core) => {
      const events = await readEvents(core.db, { after: 3, limit: 100 });
      expect(events.map((e) => e.type)).toEqual(['user.registered', 'user.invited', 'magic_link.issued']);
      expect(events[0]?.data).toMatchObject({ user_id: user.id, role: 'admin', method: 'bootstrap' });
      for (const e of events) expect(e.meta).toMatchObject({ actor: { type: 'system', id: null }, via: 'cli' });
      // The log holds the link's hash, never the code.
      expect(JSON.stringify(events)).not.toContain(code);
      const row = await core.db.selectFrom('users').selectAll().where('id', '=', user.id).executeTakeFirst();
      expect(row).toMatchObject({ role: 'admin', email: 'root@example.com' });
      // The link signs this user in once (verifying the address), and only once.
      const session = await verifyMagicLink(core, SYSTEM_META, {
        email: 'root@example.com',
        code,
        lifetime: 'browser',
      });
      expect(session.userId).toBe(user.id);
      await expect(
        verifyMagicLink(core, SYSTEM_META, { email: 'root@example.com', code, lifetime: 'browser' }),
      ).rejects.toThrow(/invalid or has expired/);
    });

    // A second admin is registered by an administrator, not bootstrapped; the human output shows the link once.
    const second = await runCli(['users', 'create', '--admin', '--email', 'second@example.com'], { env });
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/created admin second@example.com/);
    expect(second.stdout.match(/http:\/\/localhost:3000\/auth\/magic\?code=/g)).toHaveLength(1);
    await withCore(async (core) => {
      const registered = (await readEvents(core.db, { after: 0, limit: 100 })).filter(
        (e) => e.type === 'user.registered' && (e.data as { email: string }).email === 'second@example.com',
      );
      expect(registered.map((e) => (e.data as { method: string }).method)).toEqual(['admin']);
    });
  });

  it('takes a password on stdin instead (never printed); refuses a taken email (1), a bad email or weak password (2)', async () => {
    const password = 'saffron-glacier-tandem-58';
    const created = await runCli(['users', 'create', '--email', 'dana@example.com', '--password-stdin', '--json'], {
      env,
      stdin: `${password}\n`,
    });
    expect(created.code, created.stderr).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ role: 'member', password_set: true, sign_in_link: null });
    expect(created.stdout + created.stderr).not.toContain(password);
    await withCore(async (core) => {
      const session = await passwordSignIn(core, SYSTEM_META, {
        email: 'dana@example.com',
        password,
        ip: '127.0.0.1',
        lifetime: 'browser',
      });
      expect(session.token).toMatch(/^kl_ses_/);
    });

    const taken = await runCli(['users', 'create', '--email', 'a@example.com', '--json'], { env });
    expect(taken.code).toBe(1);
    expect(JSON.parse(taken.stdout).error).toMatch(/already exists/);
    expect((await runCli(['users', 'create', '--email', 'not-an-email'], { env })).code).toBe(2);
    const weak = await runCli(['users', 'create', '--email', 'e@example.com', '--password-stdin'], {
      env,
      stdin: 'short\n',
    });
    expect(weak.code).toBe(2);
    expect(weak.stderr).toMatch(/^error: --password-stdin: .*\n$/);
    expect((await runCli(['users', 'create'], { env })).code).toBe(2);
  });
});

describe('progress on long work', () => {
  it("draws a bar on a terminal's stderr, and nothing when piped or with --json", async () => {
    for (const args of [
      ['projections', 'rebuild'],
      ['audit', 'verify'],
    ]) {
      const pty = spawnPty(args, { env });
      expect(await pty.exited).toBe(0);
      expect(plain(pty.screen())).toMatch(/(rebuilding|verifying) \[#{30}\] 100% {2}3\/3/);

      const quiet = spawnPty([...args, '--json'], { env });
      expect(await quiet.exited).toBe(0);
      expect(plain(quiet.screen())).not.toMatch(/\[#+/);

      const piped = await runCli(args, { env });
      expect(piped.code).toBe(0);
      expect(piped.stderr).toBe('');
    }
  });
});
