/**
 * `pnpm bench` (server, audit): over a log of BENCH_AUDIT_EVENTS events (1,000,000 on Postgres, 200,000 on PGlite),
 *
 * 1. audit query latency (p50/p95) for a filtered page of 50 — the exact query REST `GET /v1/audit/events` and tRPC
 *    `audit.query` run (`queryAuditEvents`) — for each filter an auditor uses, against the bare newest-50 page
 *    (`select … order by seq desc limit 51`) measured in the same run. Target: p95 < 20 ms on real Postgres.
 * 2. export throughput (events/s) and peak memory of `exportAuditEvents` (what `GET /v1/audit/export` streams),
 *    JSONL and CSV, against a raw keyset scan of the same rows; memory must not grow with the number of events.
 *
 * Offline verification speed (`keyledger audit verify` runs `verifyChain`) is measured by the core benchmark.
 */
import { exportAuditEvents, type Principal, queryAuditEvents } from '@keyledger/core';
import type { TestDb } from '@keyledger/db/testing';
import { sql } from 'kysely';
import {
  backend,
  collectGarbage,
  describeBackend,
  describeMachine,
  envNumber,
  fmtInt,
  fmtMiB,
  fmtMs,
  MemorySampler,
  percentile,
  printTable,
  withFreshDb,
} from '../../../packages/core/bench/common.ts';
import { loadGeneratedLog } from '../../../packages/core/bench/log-generator.ts';

const POSTGRES = backend() === 'postgres';
const EVENTS = Math.floor(envNumber('BENCH_AUDIT_EVENTS', POSTGRES ? 1_000_000 : 200_000));
const ROUNDS = Math.floor(envNumber('BENCH_AUDIT_QUERIES', 200));
const P95_TARGET_MS = 20;

const ADMIN = {
  kind: 'user',
  auth: 'api_key',
  userId: 'user_bench_admin',
  email: 'admin@example.com',
  name: null,
  createdAt: new Date(0),
  role: 'admin',
  keyId: 'key_bench',
  scopes: ['audit:read'],
} satisfies Principal;

async function load(t: TestDb): Promise<void> {
  const started = performance.now();
  await loadGeneratedLog(t.db, EVENTS);
  // The subjects projection, as the append would have written it for events naming their user.
  await sql`insert into event_subjects (user_id, seq)
            select coalesce(data->>'user_id', data->>'owner_id'), seq from events
            where coalesce(data->>'user_id', data->>'owner_id') is not null
            on conflict do nothing`.execute(t.db);
  await sql`analyze`.execute(t.db);
  console.log(`loaded ${fmtInt(EVENTS)} events in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

/** Values that occur in the log, to draw realistic filters from. */
async function samples(t: TestDb) {
  const pick = async (q: ReturnType<typeof sql<{ v: string }>>) => (await q.execute(t.db)).rows.map((r) => r.v);
  const actors = await pick(sql<{ v: string }>`
    select meta->'actor'->>'id' as v from events where meta->'actor'->>'id' is not null
    and seq % 997 = 0 limit 200`);
  const subjects = await pick(
    sql<{ v: string }>`select user_id as v from event_subjects where seq % 991 = 0 limit 200`,
  );
  const { rows } = await sql<{
    lo: Date;
    hi: Date;
  }>`select min(occurred_at) as lo, max(occurred_at) as hi from events`.execute(t.db);
  return { actors, subjects, lo: new Date(rows[0]?.lo ?? 0), hi: new Date(rows[0]?.hi ?? 0) };
}

async function timeIt(fn: (i: number) => Promise<unknown>): Promise<Float64Array> {
  for (let i = 0; i < 10; i++) await fn(i); // warm-up
  const times = new Float64Array(ROUNDS);
  for (let i = 0; i < ROUNDS; i++) {
    const t0 = performance.now();
    await fn(i);
    times[i] = performance.now() - t0;
  }
  return times.sort();
}

async function queries(t: TestDb): Promise<boolean> {
  const s = await samples(t);
  const at = <T>(list: T[], i: number) => list[i % list.length] as T;
  const span = s.hi.getTime() - s.lo.getTime();
  const hourAt = (i: number) => new Date(s.lo.getTime() + ((i * 7919) % 100) * (span / 100));
  const member = (i: number): Principal => ({ ...ADMIN, role: 'member', userId: at(s.subjects, i) });
  const cases: [string, (i: number) => Promise<unknown>][] = [
    ['newest page, no filter', () => queryAuditEvents(t.db, ADMIN, {}, { order: 'desc' })],
    ['type prefix api_key.*', () => queryAuditEvents(t.db, ADMIN, { types: ['api_key.*'] }, { order: 'desc' })],
    [
      'rare exact type user.role_changed',
      () => queryAuditEvents(t.db, ADMIN, { types: ['user.role_changed'] }, { order: 'desc' }),
    ],
    ['actor (a principal id)', (i) => queryAuditEvents(t.db, ADMIN, { actor: at(s.actors, i) }, { order: 'desc' })],
    ['subject (a user)', (i) => queryAuditEvents(t.db, ADMIN, { subject: at(s.subjects, i) }, { order: 'desc' })],
    ['failures only', () => queryAuditEvents(t.db, ADMIN, { outcome: 'failure' }, { order: 'desc' })],
    [
      'one hour, from its start',
      (i) => queryAuditEvents(t.db, ADMIN, { since: hourAt(i), until: new Date(hourAt(i).getTime() + 3600_000) }, {}),
    ],
    ['a member: their own events', (i) => queryAuditEvents(t.db, member(i), {}, { order: 'desc' })],
    [
      'type prefix + actor + page 2',
      async (i) => {
        const first = await queryAuditEvents(
          t.db,
          ADMIN,
          { types: ['session.*'], actor: at(s.actors, i) },
          { order: 'desc' },
        );
        return first.next_cursor === null
          ? first
          : queryAuditEvents(
              t.db,
              ADMIN,
              { types: ['session.*'], actor: at(s.actors, i) },
              {
                order: 'desc',
                after: first.next_cursor,
              },
            );
      },
    ],
  ];
  const baseline = await timeIt(() => sql`select * from events order by seq desc limit 51`.execute(t.db));
  const base50 = percentile(baseline, 50);
  const rows: string[][] = [
    ['bare newest 51 rows (baseline)', fmtMs(base50), fmtMs(percentile(baseline, 95)), '1.00', ''],
  ];
  let ok = true;
  for (const [name, fn] of cases) {
    const times = await timeIt(fn);
    const p95 = percentile(times, 95);
    const pass = p95 < P95_TARGET_MS;
    ok &&= pass;
    rows.push([
      name,
      fmtMs(percentile(times, 50)),
      fmtMs(p95),
      (percentile(times, 50) / base50).toFixed(2),
      pass ? 'PASS' : 'MISS',
    ]);
  }
  console.log(`\n1. audit query, a page of 50 over ${fmtInt(EVENTS)} events (${ROUNDS} queries each)\n`);
  printTable(['filter', 'p50 ms', 'p95 ms', 'p50 ÷ baseline', `p95 < ${P95_TARGET_MS} ms`], rows);
  return ok;
}

async function exports(t: TestDb): Promise<boolean> {
  const measure = async (fn: () => Promise<number>) => {
    collectGarbage();
    const memory = new MemorySampler(20);
    const t0 = performance.now();
    const n = await fn();
    const seconds = (performance.now() - t0) / 1000;
    memory.stop();
    return { rate: n / seconds, growth: memory.peakRss - memory.startRss, heap: memory.peakHeap - memory.startHeap };
  };
  const raw = await measure(async () => {
    let after = 0;
    let n = 0;
    for (;;) {
      const { rows } = await sql<{
        seq: string;
      }>`select * from events where seq > ${after} order by seq limit 2000`.execute(t.db);
      n += rows.length;
      if (rows.length < 2000) return n;
      after = Number(rows.at(-1)?.seq);
    }
  });
  const { rows: span } = await sql<{ lo: Date; hi: Date }>`
    select min(occurred_at) as lo, max(occurred_at) as hi from events`.execute(t.db);
  const lo = new Date(span[0]?.lo ?? 0).getTime();
  const hi = new Date(span[0]?.hi ?? 0).getTime();
  // The first tenth of the log by time: if memory grew with the number of events, the whole export would take
  // about ten times as much as this one.
  const tenth = { until: new Date(lo + (hi - lo) / 10) };
  const rows: string[][] = [
    ['raw keyset scan (baseline)', fmtInt(raw.rate), '1.00', fmtMiB(raw.growth), fmtMiB(raw.heap), '', ''],
  ];
  let ok = true;
  for (const format of ['jsonl', 'csv'] as const) {
    const run = async (filter: { until?: Date }) => {
      let bytes = 0;
      let lines = 0;
      const r = await measure(async () => {
        for await (const chunk of exportAuditEvents(t.db, ADMIN, filter, format)) {
          bytes += chunk.length;
          for (let i = chunk.indexOf('\n'); i !== -1; i = chunk.indexOf('\n', i + 1)) lines++;
        }
        // CSV rows can hold newlines inside quoted data; both formats end each record with one here.
        return format === 'jsonl' ? lines : lines - 1;
      });
      return { ...r, bytes };
    };
    const small = await run(tenth);
    const full = await run({});
    const bounded = full.growth <= 2 * small.growth + 32 * 2 ** 20;
    ok &&= bounded;
    rows.push([
      `export ${format} (${fmtMiB(full.bytes)})`,
      fmtInt(full.rate),
      (full.rate / raw.rate).toFixed(2),
      fmtMiB(full.growth),
      fmtMiB(full.heap),
      fmtMiB(small.growth),
      bounded ? 'PASS' : 'MISS',
    ]);
  }
  console.log(`\n2. export of all ${fmtInt(EVENTS)} events\n`);
  printTable(
    ['what', 'events/s', '÷ baseline', 'peak RSS growth', 'peak heap growth', 'same, first tenth', 'flat in N'],
    rows,
  );
  return ok;
}

async function main(): Promise<void> {
  console.log(`audit benchmark on ${describeBackend()}\n${describeMachine()}\n`);
  await withFreshDb(async (t) => {
    await load(t);
    const q = await queries(t);
    const e = await exports(t);
    console.log(`\naudit targets: query p95 ${q ? 'PASS' : 'MISS'}, export memory ${e ? 'PASS' : 'MISS'}`);
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
