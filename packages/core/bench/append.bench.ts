import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import { createDb, type Database, type DbHandle } from '@keyledger/db';
import type { TestDb } from '@keyledger/db/testing';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { catalogue } from '../src/catalogue.ts';
import type { EventMeta } from '../src/event-store/catalogue.ts';
import { EventStore } from '../src/event-store/event-store.ts';
import type { AppendRequest } from '../src/event-store/types.ts';
import { verifyChain } from '../src/event-store/verify.ts';
import { uuidv7 } from '../src/ids.ts';
import {
  type Backend,
  envList,
  envNumber,
  fmtInt,
  fmtMs,
  percentile,
  printTable,
  type TargetResult,
  withFreshDb,
} from './common.ts';

/** From the issue: with 16 concurrent writers, chained appends reach at least half of plain inserts. */
const TARGET_WRITERS = 16;
const TARGET_RATIO = 0.5;

const META: EventMeta = {
  actor: { type: 'user', id: 'user_01jd8x3m5q7r9t1v3w5y7z9b1c' },
  via: 'rest',
  ip: '203.0.113.7',
  user_agent: 'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0',
  request_id: 'req_01jd8x3m5q7r9t1v3w5y',
};
const META_JSON = JSON.stringify(META);

type Op = () => Promise<void>;

/** What one side (plain or chained) of a cell did, summed over its measured slices. */
class Tally {
  completed = 0;
  measuredMs = 0;
  latencies: number[] = [];
  nodeCpuMs = 0;
  machineBusyMs = 0;
  machineTotalMs = 0;
  /** The measured windows, in performance.now() time. */
  windows: [number, number][] = [];

  get perSecond(): number {
    return this.completed / (this.measuredMs / 1000);
  }
  /** CPU this Node process used while measured, in cores (1.0 = one core busy the whole time). */
  get nodeCores(): number {
    return this.nodeCpuMs / this.measuredMs;
  }
  /** Share of the whole machine's CPU that was busy while measured (every process: Postgres, and anyone else's). */
  get machineBusy(): number {
    return this.machineTotalMs > 0 ? this.machineBusyMs / this.machineTotalMs : 0;
  }
  latency(p: number): number {
    return percentile(Float64Array.from(this.latencies).sort(), p);
  }
}

/** Cumulative CPU milliseconds of every core: busy (anything but idle) and total. */
function machineTimes(): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const { times } of cpus()) {
    const all = times.user + times.nice + times.sys + times.idle + times.irq;
    total += all;
    busy += all - times.idle;
  }
  return { busy, total };
}

/**
 * Runs one closed loop per op for warm-up + measure milliseconds and adds to `tally` the operations that complete
 * inside the measured window (latencies: those that also started inside it). The window is kept by the clock,
 * not by timers: on PGlite an operation can complete without ever leaving the microtask queue, so a loop yields
 * to the event loop when timers have been starved for a while. (Yielding unconditionally would desynchronise
 * the writers on Postgres and change what the group commit sees.)
 */
async function runSlice(ops: Op[], warmupMs: number, measureMs: number, tally: Tally | null): Promise<void> {
  const windowStart = performance.now() + warmupMs;
  const windowEnd = windowStart + measureMs;
  let failed = false;
  let atStart: { cpu: NodeJS.CpuUsage; machine: { busy: number; total: number } } | undefined;
  let atEnd: typeof atStart;
  const sample = () => ({ cpu: process.cpuUsage(), machine: machineTimes() });
  let heartbeat = performance.now();
  const beat = setInterval(() => {
    heartbeat = performance.now();
  }, 2);
  const loops = ops.map(async (op) => {
    try {
      while (!failed) {
        const t0 = performance.now();
        if (t0 >= windowEnd) return;
        await op();
        const t1 = performance.now();
        if (t1 >= windowStart) atStart ??= sample();
        if (t1 >= windowEnd) atEnd ??= sample();
        if (tally && t1 >= windowStart && t1 < windowEnd) {
          tally.completed += 1;
          if (t0 >= windowStart) tally.latencies.push(t1 - t0);
        }
        if (t1 - heartbeat > 20) await new Promise((resolve) => setImmediate(resolve));
      }
    } catch (error) {
      // The first failure of any writer stops the benchmark: a benchmark that errors is no benchmark.
      failed = true;
      throw error;
    }
  });
  await Promise.all(loops).finally(() => clearInterval(beat));
  if (!tally) return;
  atEnd ??= sample();
  atStart ??= atEnd;
  tally.measuredMs += measureMs;
  tally.windows.push([windowStart, windowEnd]);
  const cpu = process.cpuUsage(atStart.cpu);
  const cpuAtEnd = process.cpuUsage(atEnd.cpu);
  tally.nodeCpuMs += (cpu.user + cpu.system - (cpuAtEnd.user + cpuAtEnd.system)) / 1000;
  tally.machineBusyMs += atEnd.machine.busy - atStart.machine.busy;
  tally.machineTotalMs += atEnd.machine.total - atStart.machine.total;
}

/**
 * Each writer appends to its own user stream and moves on to a fresh one every `streamLength` events (0: never),
 * so streams have the length of a real user's, not of a benchmark's.
 */
function writerStream(cell: string, w: number, n: number, streamLength: number) {
  const index = streamLength > 0 ? Math.floor(n / streamLength) : 0;
  const version = streamLength > 0 ? n % streamLength : n;
  const userId = `user_bench${cell}w${w}s${index}`;
  const up = version % 2 === 0;
  return {
    stream: `user-${userId}`,
    version,
    data: { user_id: userId, from: up ? 'member' : 'admin', to: up ? 'admin' : 'member' },
  };
}

/** A realistic small append: `user.role_changed` on the writer's own user stream, with its expected version. */
function chainedWriters(store: EventStore, cell: string, writers: number, streamLength: number): Op[] {
  return Array.from({ length: writers }, (_, w) => {
    let n = 0;
    return async () => {
      const s = writerStream(cell, w, n, streamLength);
      const request: AppendRequest = {
        streams: [
          { stream: s.stream, expectedVersion: s.version, events: [{ type: 'user.role_changed', data: s.data }] },
        ],
        meta: META,
        occurredAt: new Date(),
      };
      await store.append(request);
      n += 1;
    };
  });
}

let plainSeq = 0;

/** The same row, inserted and committed on its own (autocommit) into a table with no chain. */
function plainWriters(db: DbHandle['db'], cell: string, writers: number, streamLength: number): Op[] {
  return Array.from({ length: writers }, (_, w) => {
    let n = 0;
    return async () => {
      const s = writerStream(cell, w, n, streamLength);
      const now = new Date();
      plainSeq += 1;
      n += 1;
      await sql`insert into bench_plain (seq, id, stream, stream_version, type, schema_version, data, meta, occurred_at, prev_hash, hash)
        values (${plainSeq}, ${uuidv7(now.getTime())}, ${s.stream}, ${s.version + 1}, ${'user.role_changed'}, ${1},
                cast(cast(${JSON.stringify(s.data)} as text) as jsonb), cast(cast(${META_JSON} as text) as jsonb),
                cast(${now.toISOString()} as timestamptz), ${randomBytes(32)}, ${randomBytes(32)})`.execute(db);
    };
  });
}

interface CellRow {
  writers: number;
  plain: Tally;
  chained: Tally;
  /** Events per committed chained transaction while measured (the group-commit batch size). */
  appendsPerCommit: number;
  /** Share of the measured chained commits that carried a single event. */
  singleEventCommits: number;
}

export interface AppendBenchResult {
  readonly rows: CellRow[];
  readonly targets: TargetResult[];
}

export async function runAppendBench(backend: Backend): Promise<AppendBenchResult> {
  const writerCounts = envList('BENCH_WRITERS', [1, 16, 64]);
  const measureMs = envNumber('BENCH_SECONDS', 5) * 1000;
  const warmupMs = envNumber('BENCH_WARMUP_SECONDS', 1) * 1000;
  // The measured time of each side is cut into slices, plain and chained taking turns, so that a change in the
  // machine's load during the cell (other processes, checkpoints, autovacuum) falls on both sides alike.
  const sliceMs = Math.min(measureMs, 1000);
  const slices = Math.max(1, Math.round(measureMs / sliceMs));
  // BENCH_STREAM_LENGTH=0 keeps one stream per writer for the whole cell (streams then grow to thousands).
  const streamLength = process.env.BENCH_STREAM_LENGTH === '0' ? 0 : Math.floor(envNumber('BENCH_STREAM_LENGTH', 100));
  console.log(
    `\n## chained appends vs plain INSERT + commit (${(slices * sliceMs) / 1000} s measured per side and cell, ` +
      `in ${slices} alternating slices, after ${warmupMs / 1000} s warm-up each)`,
  );
  console.log('chained: EventStore.append() of one user.role_changed with its expectedVersion, each writer on its own');
  console.log(
    streamLength > 0
      ? `         user stream, moving to a fresh one every ${streamLength} events (BENCH_STREAM_LENGTH=0: never)`
      : '         user stream, the same one for the whole cell (BENCH_STREAM_LENGTH=0)',
  );
  console.log('plain:   the same row, autocommit INSERT into bench_plain (like events including all: same columns,');
  console.log('         defaults, constraints and indexes, no chain); both sides: a pool of one connection per writer');
  if (backend === 'pglite')
    console.log('(PGlite has one connection: both sides queue on it whatever the writer count)');

  return withFreshDb(async (t) => {
    await sql`create table bench_plain (like events including all)`.execute(t.db);
    const rows: CellRow[] = [];
    let cellNo = 0;
    for (const writers of writerCounts) {
      cellNo += 1;
      const pool = await openPool(t, writers);
      const store = new EventStore({ db: pool.db, catalogue });
      // Each group commit calls onAppended once, with the new head: commits and their sizes while measured.
      const commits: { at: number; seq: number }[] = [];
      const off = store.onAppended((head) => commits.push({ at: performance.now(), seq: head.seq }));
      try {
        const plainOps = plainWriters(pool.db, `p${cellNo}`, writers, streamLength);
        const chainedOps = chainedWriters(store, `c${cellNo}`, writers, streamLength);
        const plain = new Tally();
        const chained = new Tally();
        await runSlice(plainOps, warmupMs, 0, null);
        await runSlice(chainedOps, warmupMs, 0, null);
        for (let i = 0; i < slices; i++) {
          // Each slice refills the pipeline for a moment before its window opens.
          await runSlice(plainOps, 100, sliceMs, plain);
          await runSlice(chainedOps, 100, sliceMs, chained);
        }
        await store.drain();
        const sizes: number[] = [];
        for (const [from, to] of chained.windows) {
          let last = commits.filter((c) => c.at < from).at(-1)?.seq;
          for (const c of commits) {
            if (c.at < from || c.at >= to) continue;
            if (last !== undefined) sizes.push(c.seq - last);
            last = c.seq;
          }
        }
        const row: CellRow = {
          writers,
          plain,
          chained,
          appendsPerCommit: sizes.length > 0 ? sizes.reduce((a, b) => a + b, 0) / sizes.length : 0,
          singleEventCommits: sizes.length > 0 ? sizes.filter((n) => n === 1).length / sizes.length : 0,
        };
        rows.push(row);
        console.log(
          `  ${writers} writers: plain ${fmtInt(plain.perSecond)}/s, chained ${fmtInt(chained.perSecond)}/s ` +
            `(${(chained.perSecond / plain.perSecond).toFixed(2)}×)`,
        );
      } finally {
        off();
        await pool.close();
      }
    }

    const check = await verifyChain(t.db);
    if (!check.ok) throw new Error(`the chain written by the benchmark does not verify: ${JSON.stringify(check)}`);
    console.log(`(the ${fmtInt(check.checked)} events appended during the benchmark verify: ok)`);

    console.log('');
    printTable(
      [
        'writers',
        'plain/s',
        'chained/s',
        'ratio',
        'plain p50/p99 ms',
        'chained p50/p99 ms',
        'appends/commit',
        '1-event commits',
        'node CPU p/c',
        'machine busy p/c',
      ],
      rows.map((r) => [
        String(r.writers),
        fmtInt(r.plain.perSecond),
        fmtInt(r.chained.perSecond),
        (r.chained.perSecond / r.plain.perSecond).toFixed(2),
        `${fmtMs(r.plain.latency(50))} / ${fmtMs(r.plain.latency(99))}`,
        `${fmtMs(r.chained.latency(50))} / ${fmtMs(r.chained.latency(99))}`,
        r.appendsPerCommit.toFixed(1),
        `${Math.round(100 * r.singleEventCommits)}%`,
        `${r.plain.nodeCores.toFixed(2)} / ${r.chained.nodeCores.toFixed(2)}`,
        `${Math.round(100 * r.plain.machineBusy)}% / ${Math.round(100 * r.chained.machineBusy)}%`,
      ]),
    );
    console.log('(node CPU: cores this process used; machine busy: all CPUs, every process; p/c = plain / chained)');

    const targets: TargetResult[] = [];
    const at = rows.find((r) => r.writers === TARGET_WRITERS);
    if (at) {
      const ratio = at.chained.perSecond / at.plain.perSecond;
      const target: TargetResult = {
        name: `chained ≥ ${TARGET_RATIO} × plain at ${TARGET_WRITERS} writers`,
        verdict: ratio >= TARGET_RATIO ? 'PASS' : 'MISS',
        detail: `${ratio.toFixed(2)}× (${fmtInt(at.chained.perSecond)} vs ${fmtInt(at.plain.perSecond)} appends/s)`,
      };
      console.log(`target: ${target.name}: ${target.verdict} (${target.detail})`);
      targets.push(target);
    } else {
      console.log(`target: not checked (BENCH_WRITERS has no ${TARGET_WRITERS})`);
    }
    if (t.url) await traceTransactions(t.url, TARGET_WRITERS, Math.min(measureMs, 3000), streamLength);
    await roundTrip(t);
    return { rows, targets };
  });
}

/** The latency floor: one `select 1` round trip on an idle connection. */
async function roundTrip(t: TestDb): Promise<void> {
  const times: number[] = [];
  for (let i = 0; i < 300; i++) {
    const t0 = performance.now();
    await sql`select 1`.execute(t.db);
    if (i >= 50) times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  console.log(
    `round trip (select 1, one connection): p50 ${fmtMs(percentile(times, 50))} ms, p99 ${fmtMs(percentile(times, 99))} ms`,
  );
}

/**
 * Where a chained append's transaction spends its time: a short extra run at `writers` writers whose Kysely logs
 * every statement (begin and commit included) with its duration. Statements run one at a time on the chain, so
 * a transaction's wall time is its statements plus the gaps between them (the JS in EventStore.#write, and
 * whatever else the event loop was running: other callers' prepareAppend, their result handling).
 */
async function traceTransactions(url: string, writers: number, measureMs: number, streamLength: number): Promise<void> {
  const byStatement = new Map<string, { n: number; ms: number }>();
  const transactions: { ms: number; statementsMs: number }[] = [];
  let open: { start: number; statementsMs: number } | undefined;
  const pool = new pg.Pool({ connectionString: url, max: writers });
  const db = new Kysely<Database>({
    dialect: new PostgresDialect({ pool }),
    log(event) {
      if (event.level !== 'query') return;
      const end = performance.now();
      const ms = event.queryDurationMillis;
      const name = statementName(event.query.sql.trim().replace(/\s+/g, ' '));
      const entry = byStatement.get(name) ?? { n: 0, ms: 0 };
      entry.n += 1;
      entry.ms += ms;
      byStatement.set(name, entry);
      if (name === 'begin') open = { start: end - ms, statementsMs: 0 };
      if (open) open.statementsMs += ms;
      if (name === 'commit' && open) {
        transactions.push({ ms: end - open.start, statementsMs: open.statementsMs });
        open = undefined;
      }
    },
  });
  try {
    const store = new EventStore({ db, catalogue });
    let events = 0;
    const off = store.onAppended((_head, committed) => {
      events += committed.length;
    });
    await runSlice(chainedWriters(store, 'trace', writers, streamLength), 0, measureMs, null);
    off();
    await store.drain();
    const n = transactions.length;
    if (n === 0) return;
    const wall = transactions.reduce((a, x) => a + x.ms, 0) / n;
    const statements = transactions.reduce((a, x) => a + x.statementsMs, 0) / n;
    console.log(
      `\none chained transaction at ${writers} writers, mean over ${fmtInt(n)} (${(events / n).toFixed(1)} appends each):`,
    );
    const order = ['begin', 'lock chain_head', 'stream versions', 'insert events', 'update chain_head', 'pg_notify'];
    const rank = (name: string) => (name === 'commit' ? 98 : order.indexOf(name) < 0 ? 90 : order.indexOf(name));
    const names = [...byStatement.keys()].sort((a, b) => rank(a) - rank(b));
    const share = (ms: number) => `${Math.round((100 * ms) / wall)}%`;
    printTable(
      ['statement', 'ms per transaction', 'share'],
      [
        ...names.map((name) => {
          const e = byStatement.get(name) as { n: number; ms: number };
          return [name, (e.ms / n).toFixed(2), share(e.ms / n)];
        }),
        ['gaps between statements (JS, event loop)', (wall - statements).toFixed(2), share(wall - statements)],
        ['transaction, begin to commit', wall.toFixed(2), '100%'],
      ],
    );
  } finally {
    await db.destroy();
  }
}

function statementName(sqlText: string): string {
  const lower = sqlText.toLowerCase();
  if (lower === 'begin' || lower.startsWith('start transaction')) return 'begin';
  if (lower === 'commit') return 'commit';
  if (lower === 'rollback') return 'rollback';
  if (lower.startsWith('select seq, hash from chain_head')) return 'lock chain_head';
  if (lower.startsWith('select stream, max(stream_version)')) return 'stream versions';
  if (lower.startsWith('insert into events')) return 'insert events';
  if (lower.startsWith('update chain_head')) return 'update chain_head';
  if (lower.startsWith('select pg_notify')) return 'pg_notify';
  return lower.slice(0, 40);
}

/** A pool of `size` connections on Postgres; PGlite has one connection, so its own handle is reused. */
async function openPool(t: TestDb, size: number): Promise<{ db: DbHandle['db']; close(): Promise<void> }> {
  if (!t.url) return { db: t.db, close: async () => {} };
  return createDb({ databaseUrl: t.url, poolSize: size });
}
