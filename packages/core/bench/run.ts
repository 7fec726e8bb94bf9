/**
 * `pnpm bench`: the event store's benchmarks, each against a baseline measured in the same run.
 *
 *   DATABASE_URL (or TEST_DATABASE_URL) set → real Postgres (a fresh database, dropped at the end); unset → PGlite.
 *   BENCH_ONLY=append|verify   run one benchmark
 *   BENCH_WRITERS=1,16,64      concurrent writers per append cell
 *   BENCH_SECONDS=5            measured seconds per side and append cell   BENCH_WARMUP_SECONDS=1
 *   BENCH_STREAM_LENGTH=100    events per writer stream before moving to a fresh one (0: never)
 *   BENCH_EVENTS=1000000       events in the verified log (PGlite default: 200000)
 *   BENCH_VERIFY_ROUNDS=2      timed scan + verify rounds (best is reported)
 *   BENCH_LOAD_CHUNK=10000     rows per bulk insert when loading the log
 *
 * What each measures, and the figures: docs/benchmarks.md.
 *
 * Targets are reported as PASS or MISS; the exit code is 0 either way (non-zero only when a benchmark fails).
 */
import { cpus, loadavg } from 'node:os';
import { runAppendBench } from './append.bench.ts';
import { backend, describeBackend, describeMachine, type TargetResult } from './common.ts';
import { runVerifyBench } from './verify.bench.ts';

const only = process.env.BENCH_ONLY;
if (only && only !== 'append' && only !== 'verify') throw new Error(`BENCH_ONLY=${only}: expected append or verify`);

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
const started = performance.now();
const which = backend();
console.log('# Keyledger event-store benchmarks');
console.log(`database: ${describeBackend()}`);
console.log(`machine:  ${describeMachine()}`);
console.log(`load average at start: ${load()}`);
const busy = (loadavg()[0] ?? 0) / cpus().length;
if (busy > 0.75) {
  console.log(
    `WARNING: the machine is already busy (1-minute load ${(loadavg()[0] ?? 0).toFixed(1)} on ${cpus().length} cores): ` +
      'absolute figures will be low and noisy; the same-run ratios less so.',
  );
}

const targets: TargetResult[] = [];
if (!only || only === 'append') targets.push(...(await runAppendBench(which)).targets);
if (!only || only === 'verify') targets.push(...(await runVerifyBench(which)).targets);

console.log(
  `\n## summary (${which}, ${((performance.now() - started) / 1000).toFixed(0)} s, load average at end: ${load()})`,
);
for (const t of targets) console.log(`${t.verdict}  ${t.name}: ${t.detail}`);
