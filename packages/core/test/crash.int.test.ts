import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDb, type Database, type DbHandle, migrateToLatest } from '@keyledger/db';
import { createTestDb, type TestDb, testDatabaseUrl } from '@keyledger/db/testing';
import { type Kysely, sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { catalogue } from '../src/catalogue.ts';
import { EventStore } from '../src/event-store/event-store.ts';
import { verifyChain } from '../src/event-store/verify.ts';
import { roleChange } from './helpers.ts';

const CORE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
const FIXTURE = join(CORE_DIR, 'test', 'fixtures', 'append-loop.ts');
const PROJECTION_DDL = 'create table crash_projection (seq bigint primary key, stream text not null)';
/** Acknowledged events to wait for before the kill. */
const KILL_AFTER = 300;

let child: ChildProcess | undefined;
let testDb: TestDb | undefined;
let reopened: DbHandle | undefined;
let tmp: string | undefined;
afterEach(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  child = undefined;
  await reopened?.close();
  reopened = undefined;
  await testDb?.close();
  testDb = undefined;
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  tmp = undefined;
});

interface Run {
  /** Every seq whose append the child saw committed. */
  readonly acked: Set<number>;
  readonly stderr: string;
}

/**
 * Runs the append loop until it has acknowledged KILL_AFTER events, then SIGKILLs it mid-flight. The script runs
 * under tsx as an import hook of this very node process image (`node --import tsx`), not through the `tsx` CLI,
 * which would put a second process between us and the appender and the SIGKILL would miss it.
 */
async function runAndKill(env: Record<string, string>): Promise<Run> {
  const acked = new Set<number>();
  let stderr = '';
  let buffered = '';
  const proc = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
    cwd: CORE_DIR,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child = proc;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal })),
  );
  proc.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const enough = new Promise<void>((resolve) => {
    proc.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        if (!line.startsWith('acked ')) continue;
        for (const seq of line.slice(6).split(',')) acked.add(Number(seq));
      }
      if (acked.size >= KILL_AFTER) resolve();
    });
  });
  const first = await Promise.race([
    enough.then(() => 'enough' as const),
    exited.then((e) => `exited early (code ${e.code}, signal ${e.signal})`),
    new Promise<string>((resolve) => setTimeout(() => resolve('timed out'), 60_000)),
  ]);
  if (first !== 'enough') {
    proc.kill('SIGKILL');
    throw new Error(`the append loop ${first} with ${acked.size} events acknowledged; stderr:\n${stderr}`);
  }
  proc.kill('SIGKILL');
  expect(await exited).toEqual({ code: null, signal: 'SIGKILL' });
  return { acked, stderr };
}

async function expectConsistentAfterCrash(kdb: Kysely<Database>, run: Run) {
  const { rows } = await sql<{ seq: number | string; stream: string }>`
    select seq, stream from events order by seq`.execute(kdb);
  const n = rows.length;
  // The kill came after KILL_AFTER acknowledgements; the loop may have committed a few more since.
  expect(n).toBeGreaterThanOrEqual(KILL_AFTER);
  expect(rows.map((r) => Number(r.seq))).toEqual(Array.from({ length: n }, (_, i) => i + 1));
  // Durability: everything the child was told had committed is there.
  expect([...run.acked].filter((seq) => seq > n)).toEqual([]);
  // Atomicity: each append wrote two events (user-wK and user-wK_N); a crash keeps both or neither.
  const { rows: pairs } = await sql<{ stream: string }>`
    select stream from events where stream ~ '^user-w[0-9]+_[0-9]+$'`.execute(kdb);
  expect(pairs.length * 2).toBe(n);

  const verified = await verifyChain(kdb);
  expect(verified).toMatchObject({ ok: true, checked: n, first_bad_seq: null, reason: null });

  const { rows: orphans } = await sql<{ seq: number | string | null; stream: string | null }>`
    select coalesce(p.seq, e.seq) as seq, coalesce(p.stream, e.stream) as stream
    from crash_projection p full join events e on e.seq = p.seq and e.stream = p.stream
    where p.seq is null or e.seq is null`.execute(kdb);
  expect(orphans).toEqual([]); // every event has its projection row, and no row lacks its event

  // The chain lock was released with the dead process: appending goes on from the recovered head.
  const store = new EventStore({ db: kdb, catalogue });
  const after = await store.append(roleChange('after_crash'));
  expect(after.events[0]?.seq).toBe(n + 1);
  expect(await verifyChain(kdb)).toMatchObject({ ok: true, checked: n + 1 });
}

describe('a SIGKILLed appender', () => {
  it('leaves a gap-free, verifiable log whose projection matches it, with every acknowledged append', async () => {
    if (testDatabaseUrl()) {
      testDb = await createTestDb();
      await sql.raw(PROJECTION_DDL).execute(testDb.db);
      const run = await runAndKill({ CRASH_DATABASE_URL: testDb.url as string, CRASH_APPENDERS: '4' });
      await expectConsistentAfterCrash(testDb.db, run);
      return;
    }

    // PGlite: a data directory on disk, migrated here, appended to by the child, reopened here after the kill.
    tmp = mkdtempSync(join(tmpdir(), 'keyledger-crash-'));
    const setup = await createDb({ dataDir: tmp });
    await migrateToLatest(setup.db);
    await sql.raw(PROJECTION_DDL).execute(setup.db);
    await setup.close();
    const run = await runAndKill({ CRASH_DATA_DIR: tmp, CRASH_APPENDERS: '4' });
    reopened = await createDb({ dataDir: tmp });
    await expectConsistentAfterCrash(reopened.db, run);
  }, 120_000);
});
