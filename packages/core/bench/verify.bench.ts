import { createHash } from 'node:crypto';
import type { TestDb } from '@keyledger/db/testing';
import { sql } from 'kysely';
import { canonicalJson } from '../src/event-store/canonical.ts';
import { VERIFY_PAGE_SIZE, verifyChain } from '../src/event-store/verify.ts';
import { fetchBytePage, verifyBytePage } from '../src/event-store/verify-bytes.ts';
import { fetchPage, verifyPage } from '../src/event-store/verify-page.ts';
import {
  type Backend,
  collectGarbage,
  envNumber,
  fmtInt,
  fmtMiB,
  MemorySampler,
  printTable,
  type TargetResult,
  withFreshDb,
} from './common.ts';
import { loadGeneratedLog } from './log-generator.ts';
import { rowByRowVerifyChain, type VerifyRow } from './row-walk.ts';

/** DESIGN target: verify walks at least this many events a second. */
const TARGET_EVENTS_PER_SECOND = 200_000;
/** verifyChain's default page size, which both scans copy. */
const PAGE_SIZE = 10_000;

export interface VerifyBenchResult {
  readonly events: number;
  readonly loadSeconds: number;
  readonly scanPerSecond: number;
  readonly verifyPerSecond: number;
  readonly targets: TargetResult[];
}

export async function runVerifyBench(backend: Backend): Promise<VerifyBenchResult> {
  // PGlite runs the database in this thread, in WebAssembly: a million events take minutes to load, so it
  // defaults to fewer (BENCH_EVENTS still wins when set).
  const defaultEvents = backend === 'postgres' ? 1_000_000 : 200_000;
  const events = Math.floor(envNumber('BENCH_EVENTS', defaultEvents));
  const rounds = Math.floor(envNumber('BENCH_VERIFY_ROUNDS', 2));
  console.log(`\n## verify() over ${fmtInt(events)} events`);
  if (backend === 'pglite' && !process.env.BENCH_EVENTS)
    console.log(`(PGlite: ${fmtInt(events)} events by default instead of 1,000,000; set BENCH_EVENTS to change)`);

  return withFreshDb(async (t) => {
    const loadSeconds = await loadLog(t, events);

    // Settle the freshly loaded table (hint bits, visibility map, statistics) the way autovacuum would on a real
    // log, so neither the baseline nor verify pays for the bulk load's after-effects.
    let t0 = performance.now();
    await sql`vacuum (analyze) events`.execute(t.db);
    console.log(`vacuum analyze: ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    // Warm the cache once (shared buffers, OS cache, PGlite's in-memory pages) with an untimed scan.
    t0 = performance.now();
    await keysetScan(t, events);
    console.log(`warm-up scan: ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    const scanTimes: number[] = [];
    const pageScanTimes: number[] = [];
    const rowWalkTimes: number[] = [];
    const verifyTimes: number[] = [];
    // CPU this process used per pass, in cores (1.00 = the Node thread busy the whole pass).
    const scanCores: number[] = [];
    const pageScanCores: number[] = [];
    const rowWalkCores: number[] = [];
    const verifyCores: number[] = [];
    const cores = (since: NodeJS.CpuUsage, seconds: number) => {
      const u = process.cpuUsage(since);
      return (u.user + u.system) / 1e6 / seconds;
    };
    let peakRss = 0;
    let peakHeap = 0;
    let startRss = 0;
    let startHeap = 0;
    for (let round = 0; round < rounds; round++) {
      collectGarbage();
      t0 = performance.now();
      let cpu = process.cpuUsage();
      const scanned = await keysetScan(t, events);
      scanTimes.push((performance.now() - t0) / 1000);
      scanCores.push(cores(cpu, scanTimes.at(-1) as number));
      if (scanned !== events) throw new Error(`baseline scan read ${scanned} rows, expected ${events}`);

      collectGarbage();
      t0 = performance.now();
      cpu = process.cpuUsage();
      const paged = await pageScan(t, events);
      pageScanTimes.push((performance.now() - t0) / 1000);
      pageScanCores.push(cores(cpu, pageScanTimes.at(-1) as number));
      if (paged !== events) throw new Error(`page scan read ${paged} events, expected ${events}`);

      collectGarbage();
      t0 = performance.now();
      cpu = process.cpuUsage();
      const before = await rowByRowVerifyChain(t.db);
      rowWalkTimes.push((performance.now() - t0) / 1000);
      rowWalkCores.push(cores(cpu, rowWalkTimes.at(-1) as number));
      if (!before.ok || before.checked !== events) throw new Error(`the row-by-row walk: ${JSON.stringify(before)}`);

      collectGarbage();
      const memory = new MemorySampler();
      t0 = performance.now();
      cpu = process.cpuUsage();
      const result = await verifyChain(t.db, { onProgress: () => memory.sample() });
      verifyTimes.push((performance.now() - t0) / 1000);
      verifyCores.push(cores(cpu, verifyTimes.at(-1) as number));
      memory.stop();
      if (!result.ok || result.checked !== events) {
        throw new Error(`verify did not accept the generated log: ${JSON.stringify(result)}`);
      }
      if (round === 0) {
        startRss = memory.startRss;
        startHeap = memory.startHeap;
      }
      peakRss = Math.max(peakRss, memory.peakRss);
      peakHeap = Math.max(peakHeap, memory.peakHeap);
    }

    const scanBest = Math.min(...scanTimes);
    const verifyBest = Math.min(...verifyTimes);
    const scanBestCores = scanCores[scanTimes.indexOf(scanBest)] ?? 0;
    const pageScanBest = Math.min(...pageScanTimes);
    const pageScanBestCores = pageScanCores[pageScanTimes.indexOf(pageScanBest)] ?? 0;
    const pageScanPerSecond = events / pageScanBest;
    const rowWalkBest = Math.min(...rowWalkTimes);
    const rowWalkBestCores = rowWalkCores[rowWalkTimes.indexOf(rowWalkBest)] ?? 0;
    const rowWalkPerSecond = events / rowWalkBest;
    const verifyBestCores = verifyCores[verifyTimes.indexOf(verifyBest)] ?? 0;
    const scanPerSecond = events / scanBest;
    const verifyPerSecond = events / verifyBest;
    console.log(`\nbest of ${rounds} rounds each (interleaved: scan, page scan, row-by-row walk, verify, scan …):`);
    printTable(
      ['pass', 'seconds', 'events/s', 'vs scan', 'node CPU (cores)'],
      [
        [
          'keyset scan, no hashing (baseline)',
          scanBest.toFixed(2),
          fmtInt(scanPerSecond),
          '1.00',
          scanBestCores.toFixed(2),
        ],
        [
          "page scan: verifyChain's page read (binary COPY), no hashing",
          pageScanBest.toFixed(2),
          fmtInt(pageScanPerSecond),
          (pageScanPerSecond / scanPerSecond).toFixed(2),
          pageScanBestCores.toFixed(2),
        ],
        [
          'verifyChain() before (row by row, generic canonical form)',
          rowWalkBest.toFixed(2),
          fmtInt(rowWalkPerSecond),
          (rowWalkPerSecond / scanPerSecond).toFixed(2),
          rowWalkBestCores.toFixed(2),
        ],
        [
          'verifyChain()',
          verifyBest.toFixed(2),
          fmtInt(verifyPerSecond),
          (verifyPerSecond / scanPerSecond).toFixed(2),
          verifyBestCores.toFixed(2),
        ],
      ],
    );
    console.log(
      `µs per event on the Node thread: scan ${((scanBest * scanBestCores * 1e6) / events).toFixed(1)}, ` +
        `page scan ${((pageScanBest * pageScanBestCores * 1e6) / events).toFixed(1)}, ` +
        `row-by-row walk ${((rowWalkBest * rowWalkBestCores * 1e6) / events).toFixed(1)}, ` +
        `verify ${((verifyBest * verifyBestCores * 1e6) / events).toFixed(1)} ` +
        '(node CPU near 1.00 = the single Node thread, not Postgres, sets the pace)',
    );
    console.log(
      `all rounds, seconds: scan [${scanTimes.map((s) => s.toFixed(2)).join(', ')}], page scan [${pageScanTimes.map((s) => s.toFixed(2)).join(', ')}], row-by-row [${rowWalkTimes.map((s) => s.toFixed(2)).join(', ')}], verify [${verifyTimes.map((s) => s.toFixed(2)).join(', ')}]`,
    );
    console.log(
      `memory during verify: RSS ${fmtMiB(startRss)} before → peak ${fmtMiB(peakRss)} (+${fmtMiB(peakRss - startRss)}); ` +
        `JS heap ${fmtMiB(startHeap)} → peak ${fmtMiB(peakHeap)}`,
    );

    console.log(
      `verifyChain() vs the row-by-row walk it replaced, same run: ${(verifyPerSecond / rowWalkPerSecond).toFixed(2)}×`,
    );

    await hashingBreakdown(t);

    const verdict = verifyPerSecond >= TARGET_EVENTS_PER_SECOND ? 'PASS' : 'MISS';
    const target: TargetResult = {
      name: `verify ≥ ${fmtInt(TARGET_EVENTS_PER_SECOND)} events/s`,
      verdict,
      detail:
        `${fmtInt(verifyPerSecond)} events/s over ${fmtInt(events)} events (${(verifyPerSecond / scanPerSecond).toFixed(2)}× the ` +
        `raw keyset scan's ${fmtInt(scanPerSecond)}/s; page scan ${fmtInt(pageScanPerSecond)}/s; ` +
        `${(verifyPerSecond / rowWalkPerSecond).toFixed(2)}× the row-by-row walk's ${fmtInt(rowWalkPerSecond)}/s)`,
    };
    console.log(`target: ${target.name}: ${verdict} (${target.detail})`);
    return { events, loadSeconds, scanPerSecond, verifyPerSecond, targets: [target] };
  });
}

/**
 * Writes `count` generated events with their true hash chain, in big multi-row inserts (one `insert … select
 * from unnest(…)` per chunk: 11 array parameters instead of 11 per row), generating the next chunk while the
 * database writes the current one, then moves the chain head to the last event.
 */
async function loadLog(t: TestDb, count: number): Promise<number> {
  const started = performance.now();
  let lastReport = started;
  const { generateMs } = await loadGeneratedLog(t.db, count, {
    chunkSize: Math.floor(envNumber('BENCH_LOAD_CHUNK', 10_000)),
    onProgress(done) {
      const now = performance.now();
      if (now - lastReport > 15_000) {
        console.log(`  loaded ${fmtInt(done)} / ${fmtInt(count)} (${((now - started) / 1000).toFixed(0)} s)`);
        lastReport = now;
      }
    },
  });
  const seconds = (performance.now() - started) / 1000;
  const { rows } = await sql<{ size: string }>`select pg_size_pretty(pg_total_relation_size('events')) as size`.execute(
    t.db,
  );
  console.log(
    `generated and loaded ${fmtInt(count)} events in ${seconds.toFixed(1)} s ` +
      `(${(generateMs / 1000).toFixed(1)} s of it generating + hashing in JS); events table with indexes: ${rows[0]?.size}`,
  );
  return seconds;
}

/**
 * The baseline: a raw keyset scan, one row object per event — the query verifyChain ran before it read pages as
 * one text value (same columns, casts, keyset condition, page size and one-page prefetch) — with the rows only
 * touched, not parsed or hashed. Kept unchanged so the ratio compares with the earlier figures. Returns the rows
 * read.
 */
async function keysetScan(t: TestDb, total: number): Promise<number> {
  const fetchPage = (after: number) =>
    sql<VerifyRow>`
      select seq, id::text as id, stream, stream_version, type, schema_version, data::text as data, meta::text as meta,
             to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as occurred_at,
             encode(prev_hash, 'hex') as prev_hash, encode(hash, 'hex') as hash
      from events where seq > ${after} and seq <= ${total} order by seq limit ${PAGE_SIZE}`
      .execute(t.db)
      .then((r) => r.rows);
  let read = 0;
  let bytes = 0;
  let page = fetchPage(0);
  while (true) {
    const rows = await page;
    if (rows.length === 0) break;
    const last = rows.at(-1) as VerifyRow;
    page = rows.length === PAGE_SIZE ? fetchPage(Number(last.seq)) : Promise.resolve([]);
    for (const row of rows) bytes += row.data.length + row.meta.length + row.hash.length;
    read += rows.length;
  }
  if (bytes === 0 && read > 0) throw new Error('unreachable: rows without data');
  return read;
}

/**
 * verifyChain's own read without the checking: its page read (a binary COPY per seq range of VERIFY_PAGE_SIZE
 * events, ADR 0018), two pages in flight and their buffers reused as in verifyChain, each page only walked row by row
 * to count its events. Returns the events read.
 */
async function pageScan(t: TestDb, total: number): Promise<number> {
  const pages: Promise<Buffer | null>[] = [];
  const done: Buffer[] = [];
  let nextFrom = 1;
  const request = () => {
    if (nextFrom > total) return;
    const from = nextFrom;
    nextFrom = Math.min(total, from + VERIFY_PAGE_SIZE - 1) + 1;
    pages.push(fetchBytePage(t.db, from, nextFrom - 1, done.pop()));
  };
  request();
  request();
  let read = 0;
  while (pages.length > 0) {
    const page = await (pages.shift() as Promise<Buffer | null>);
    request();
    if (page === null) throw new Error('page scan: this database cannot COPY');
    read += copyRows(page);
    done.push(page);
  }
  return read;
}

/** The rows of a binary COPY (header, then per row a field count and length-prefixed fields, then -1). */
function copyRows(page: Buffer): number {
  let p = 19 + page.readInt32BE(15);
  let rows = 0;
  for (let fields = page.readInt16BE(p); fields !== -1; fields = page.readInt16BE(p)) {
    p += 2;
    for (let f = 0; f < fields; f++) p += 4 + Math.max(0, page.readInt32BE(p));
    rows++;
  }
  return rows;
}

/**
 * Where verify's CPU goes: the per-event JS work of verifyChain, step by step, on rows already in memory (one
 * page from the database, walked repeatedly), so the database is out of the picture.
 */
async function hashingBreakdown(t: TestDb): Promise<void> {
  const { rows } = await sql<VerifyRow>`
    select seq, id::text as id, stream, stream_version, type, schema_version, data::text as data, meta::text as meta,
           to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as occurred_at,
           encode(prev_hash, 'hex') as prev_hash, encode(hash, 'hex') as hash
    from events order by seq limit ${PAGE_SIZE}`.execute(t.db);
  const repeat = 5;
  const n = rows.length * repeat;
  const time = (fn: () => void) => {
    fn(); // warm
    const t0 = performance.now();
    for (let i = 0; i < repeat; i++) fn();
    return ((performance.now() - t0) * 1000) / n;
  };
  const parsed = rows.map((r) => ({ data: JSON.parse(r.data), meta: JSON.parse(r.meta) }));
  const canonical = rows.map((r, i) =>
    canonicalJson({
      seq: Number(r.seq),
      id: r.id,
      stream: r.stream,
      stream_version: r.stream_version,
      type: r.type,
      schema_version: r.schema_version,
      data: parsed[i]?.data,
      meta: parsed[i]?.meta,
      occurred_at: r.occurred_at,
    }),
  );
  let sink = 0;
  const parse = time(() => {
    for (const r of rows) {
      const data: unknown = JSON.parse(r.data);
      const meta: unknown = JSON.parse(r.meta);
      sink += data === meta ? 1 : 0;
    }
  });
  const canon = time(() => {
    rows.forEach((r, i) => {
      sink += canonicalJson({
        seq: Number(r.seq),
        id: r.id,
        stream: r.stream,
        stream_version: r.stream_version,
        type: r.type,
        schema_version: r.schema_version,
        data: parsed[i]?.data,
        meta: parsed[i]?.meta,
        occurred_at: r.occurred_at,
      }).length;
    });
  });
  const sha = time(() => {
    rows.forEach((r, i) => {
      const digest = createHash('sha256')
        .update(Buffer.from(r.prev_hash, 'hex'))
        .update(canonical[i] as string, 'utf8')
        .digest('hex');
      sink += digest === r.hash ? 1 : 0;
    });
  });
  // The text path (ADR 0012; now the fallback): verifyPage over the same events read as a text page.
  const pageText = await fetchPage(t.db, 1, PAGE_SIZE, PAGE_SIZE);
  const textEvents = verifyPage(pageText).count;
  const textTime = (() => {
    verifyPage(pageText); // warm
    const t0 = performance.now();
    for (let i = 0; i < repeat; i++) sink += verifyPage(pageText).count;
    return ((performance.now() - t0) * 1000) / (textEvents * repeat);
  })();
  // The shipped path (ADR 0018): verifyBytePage over the same events read as a binary COPY.
  const pageBytes = await fetchBytePage(t.db, 1, PAGE_SIZE);
  if (pageBytes === null) throw new Error('breakdown: this database cannot COPY');
  const bytesEvents = verifyBytePage(pageBytes)?.count ?? 0;
  if (bytesEvents !== textEvents) throw new Error(`breakdown: the byte reader took ${bytesEvents} of ${textEvents}`);
  const pageTime = (() => {
    verifyBytePage(pageBytes); // warm
    const t0 = performance.now();
    for (let i = 0; i < repeat; i++) sink += verifyBytePage(pageBytes)?.count ?? 0;
    return ((performance.now() - t0) * 1000) / (bytesEvents * repeat);
  })();
  if (sink < 0) console.log(sink);
  const total = parse + canon + sha;
  console.log(`\nverify's per-event JS work on one in-memory page (${fmtInt(rows.length)} rows × ${repeat}):`);
  printTable(
    ['step', 'µs/event', 'share'],
    [
      ['JSON.parse(data) + JSON.parse(meta)', parse.toFixed(2), `${((100 * parse) / total).toFixed(0)}%`],
      ['canonicalJson(event)', canon.toFixed(2), `${((100 * canon) / total).toFixed(0)}%`],
      ["Buffer.from(prev,'hex') + sha256 + digest('hex')", sha.toFixed(2), `${((100 * sha) / total).toFixed(0)}%`],
      ['total, generic path (verifyChain before the fast path)', total.toFixed(2), '100%'],
      [
        'verifyPage(): fields from a text page, jsonb text fast path, one-shot sha256 (ADR 0012, now the fallback)',
        textTime.toFixed(2),
        `${((100 * textTime) / total).toFixed(0)}%`,
      ],
      [
        'verifyBytePage(): a binary COPY page, canonical form written from the bytes (shipped, ADR 0018)',
        pageTime.toFixed(2),
        `${((100 * pageTime) / total).toFixed(0)}%`,
      ],
    ],
  );
  console.log(
    `→ JS alone caps verify at ~${fmtInt(1e6 / pageTime)} events/s on one core of this machine ` +
      `(~${fmtInt(1e6 / total)} with the generic path)`,
  );
}
