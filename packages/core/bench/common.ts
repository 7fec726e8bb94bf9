import { cpus, totalmem } from 'node:os';
import { createTestDb, type TestDb, testDatabaseUrl } from '@keyledger/db/testing';

/** Reads a positive number from the environment, or the fallback. */
export function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw.replaceAll('_', ''));
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}=${raw} is not a positive number`);
  return n;
}

/** Reads a comma-separated list of positive integers from the environment, or the fallback. */
export function envList(name: string, fallback: number[]): number[] {
  const raw = process.env[name];
  if (!raw) return fallback;
  const list = raw.split(',').map((s) => Number(s.trim()));
  if (list.some((n) => !Number.isSafeInteger(n) || n <= 0)) throw new Error(`${name}=${raw} is not a list of counts`);
  return list;
}

export type Backend = 'postgres' | 'pglite';

export function backend(): Backend {
  return testDatabaseUrl() ? 'postgres' : 'pglite';
}

/** A one-line description of where the numbers come from. */
export function describeBackend(): string {
  const url = testDatabaseUrl();
  if (!url) return 'embedded PGlite (in-memory, single connection, same thread as the benchmark)';
  const u = new URL(url);
  return `real Postgres at ${u.hostname}:${u.port || 5432} (a fresh database created from the migrated template, dropped at the end)`;
}

export function describeMachine(): string {
  const cpu = cpus();
  return `${cpu.length} × ${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}`;
}

/** A fresh migrated database (createTestDb), closed (and dropped, on Postgres) however the benchmark ends. */
export async function withFreshDb<T>(fn: (t: TestDb) => Promise<T>): Promise<T> {
  const t = await createTestDb();
  const close = () => t.close().catch(() => {});
  const onSignal = () => {
    void close().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await fn(t);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await close();
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Prints rows as an aligned text table (first column left-aligned, the rest right-aligned). */
export function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
}

export function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export function fmtMs(ms: number): string {
  return ms < 10 ? ms.toFixed(2) : ms.toFixed(1);
}

export function fmtMiB(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(0)} MiB`;
}

export function percentile(sorted: Float64Array | number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

/** Samples process.memoryUsage() every `everyMs` (and whenever `sample()` is called) and keeps the peaks. */
export class MemorySampler {
  readonly startRss: number;
  readonly startHeap: number;
  peakRss: number;
  peakHeap: number;
  samples = 0;
  readonly #timer: NodeJS.Timeout;

  constructor(everyMs = 25) {
    const m = process.memoryUsage();
    this.startRss = m.rss;
    this.startHeap = m.heapUsed;
    this.peakRss = m.rss;
    this.peakHeap = m.heapUsed;
    this.#timer = setInterval(() => this.sample(), everyMs);
  }

  sample(): void {
    const m = process.memoryUsage();
    this.samples += 1;
    if (m.rss > this.peakRss) this.peakRss = m.rss;
    if (m.heapUsed > this.peakHeap) this.peakHeap = m.heapUsed;
  }

  stop(): this {
    clearInterval(this.#timer);
    this.sample();
    return this;
  }
}

/** Runs the collector when the process was started with --expose-gc, so memory figures start from a clean heap. */
export function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

export type Verdict = 'PASS' | 'MISS';

export interface TargetResult {
  readonly name: string;
  readonly verdict: Verdict;
  readonly detail: string;
}
