import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { catalogue, EventStore, ManualClock, projections, registerUser, SYSTEM_META } from '@keyledger/core';
import { createDb, migrateToLatest } from '@keyledger/db';
import { createTestDb, type TestDb, testDatabaseUrl } from '@keyledger/db/testing';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

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
