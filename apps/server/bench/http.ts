/**
 * `pnpm bench` (server): requests per second and p99 for REST routes authenticated by API key, by session cookie and
 * by Bearer session token, against /healthz (Hono's hello world behind the same global middleware) on the same
 * server, in the same run; and password sign-ins per second per core against raw argon2id verification.
 * The server is the real process (tsx src/main.ts) on real Postgres when DATABASE_URL is set, else embedded PGlite.
 * Targets: every authenticated route ≥ 50% of the baseline's rate, p99 < 20 ms at 50 connections.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hashPassword, verifyPassword } from '@keyledger/core';
import { createTestDb } from '@keyledger/db/testing';
import autocannon from 'autocannon';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const SIGNINS = Number(process.env.BENCH_SIGNINS ?? 40);
const PASSWORD = 'violet-otter-lantern-42';

/** User + system CPU time of a process so far, in µs (Linux /proc; NaN elsewhere). */
function processCpuMicros(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
    return (ticks * 1e6) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}
const CLOCK_TICKS = 100;

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'keyledger-bench-'));
  const pg = process.env.DATABASE_URL ? await createTestDb() : undefined;
  const backend = pg ? 'postgres' : 'pglite';
  // node itself with tsx's loader (not the tsx CLI, which would run the server as its own child): the process whose
  // CPU is read is the server.
  const serverDir = fileURLToPath(new URL('..', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: serverDir,
    env: {
      ...process.env,
      PORT: '0',
      KEYLEDGER_DATA_DIR: dir,
      KEYLEDGER_SIGNUP: 'open',
      // Rate limiting stays on, as in a default deployment (its counting and RateLimit headers are part of every
      // authenticated request measured), with a limit this run cannot reach.
      KEYLEDGER_API_RATE_LIMIT: '1000000000',
      DATABASE_URL: pg?.url ?? '',
      TEST_DATABASE_URL: '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stderr.on('data', (d) => (out += d));
  child.stdout.on('data', (d) => (out += d));
  try {
    const base = await new Promise<string>((resolve, reject) => {
      const timer = setInterval(() => {
        const m = out.match(/listening on (http:\/\/[^"\s]+)/);
        if (m?.[1]) {
          clearInterval(timer);
          resolve(m[1]);
        }
      }, 50);
      child.on('exit', (code) => reject(new Error(`server exited ${code}: ${out}`)));
    });
    const json = { 'content-type': 'application/json' };
    const signup = (await (
      await fetch(`${base}/v1/auth/pw/signup`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ email: `bench-${randomBytes(4).toString('hex')}@example.com`, password: PASSWORD }),
      })
    ).json()) as {
      access_token: string;
      user: { email: string };
    };
    const session = signup.access_token;
    const key = (
      (await (
        await fetch(`${base}/v1/api-keys`, {
          method: 'POST',
          headers: { ...json, authorization: `Bearer ${session}` },
          body: '{"name":"bench"}',
        })
      ).json()) as { key: string }
    ).key;

    // Each route is measured ROUNDS times, taking turns with the baseline (baseline, key, cookie, Bearer, baseline,
    // …), so a change in the machine's load falls on all of them alike; each ratio is against the baseline of its own
    // round, and the median of the rounds is reported. The server's own CPU per request (from /proc) shows where the
    // difference is, apart from the load generator that shares the cores.
    const routes = [
      { title: 'hello world (/healthz)', path: '/healthz', headers: {} },
      { title: 'API key (x-api-key)', path: '/v1/users/me', headers: { 'x-api-key': key } },
      { title: 'session cookie', path: '/v1/users/me', headers: { cookie: `keyledger_session=${session}` } },
      { title: 'Bearer session token', path: '/v1/users/me', headers: { authorization: `Bearer ${session}` } },
    ];
    const run = async (route: (typeof routes)[number], seconds: number) => {
      const cpu0 = processCpuMicros(child.pid);
      const r = await autocannon({
        url: `${base}${route.path}`,
        connections: CONNECTIONS,
        duration: seconds,
        headers: route.headers,
      });
      const cpu = processCpuMicros(child.pid) - cpu0;
      if (r.non2xx > 0 || r.errors > 0) throw new Error(`${route.title}: ${r.non2xx} non-2xx, ${r.errors} errors`);
      return { rps: r.requests.average, p99: r.latency.p99, cpuPerRequest: cpu / Math.max(1, r.requests.total) };
    };
    for (const route of routes) await run(route, 1); // warm-up: JIT, caches, connections
    const results = routes.map(() => [] as Awaited<ReturnType<typeof run>>[]);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, route] of routes.entries()) results[i]?.push(await run(route, SECONDS));
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
    const baseline = results[0] ?? [];

    console.log(
      `\nREST authentication (${backend}, ${CONNECTIONS} connections, ${ROUNDS} rounds of ${SECONDS} s per route, ` +
        `${availableParallelism()} cores shared by server, database and load generator)`,
    );
    console.log(
      '| route | req/s (median) | p99 ms (worst round) | vs hello world (median of rounds) | server CPU µs/request | target |',
    );
    console.log('|---|---:|---:|---:|---:|---|');
    for (const [i, route] of routes.entries()) {
      const rs = results[i] ?? [];
      const ratios = rs.map((r, k) => r.rps / (baseline[k]?.rps ?? Number.NaN));
      const ratio = median(ratios);
      const p99 = Math.max(...rs.map((r) => r.p99));
      const cpu = median(rs.map((r) => r.cpuPerRequest));
      const verdict =
        i === 0
          ? 'baseline'
          : `${ratio >= 0.5 && p99 < 20 ? 'PASS' : 'MISS'} (≥0.50, p99 <20 ms; rounds ${ratios.map((x) => x.toFixed(2)).join(', ')})`;
      console.log(
        `| ${route.title} | ${median(rs.map((r) => r.rps)).toFixed(0)} | ${p99} | ${ratio.toFixed(2)} | ${Number.isFinite(cpu) ? cpu.toFixed(0) : 'n/a'} | ${verdict} |`,
      );
    }

    // Password sign-ins: as many in flight as cores, against bare argon2id verifications of the same hash.
    const stored = await hashPassword(PASSWORD);
    const parallel = availableParallelism();
    const timeIt = async (n: number, fn: () => Promise<unknown>) => {
      const started = performance.now();
      let next = 0;
      await Promise.all(
        Array.from({ length: parallel }, async () => {
          while (next++ < n) await fn();
        }),
      );
      return n / ((performance.now() - started) / 1000);
    };
    const verifyRate = await timeIt(SIGNINS, () => verifyPassword(stored, PASSWORD));
    const signinRate = await timeIt(SIGNINS, async () => {
      const r = await fetch(`${base}/v1/auth/pw/signin`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ email: signup.user.email, password: PASSWORD }),
      });
      if (r.status !== 200) throw new Error(`sign-in answered ${r.status}`);
      await r.arrayBuffer();
    });
    console.log(`\nPassword sign-ins (${SIGNINS}, ${parallel} in flight)`);
    console.log('| what | per second | per core | vs bare argon2id verify |');
    console.log('|---|---:|---:|---:|');
    console.log(
      `| argon2id verify (baseline) | ${verifyRate.toFixed(1)} | ${(verifyRate / parallel).toFixed(1)} | 1.00 |`,
    );
    console.log(
      `| POST /v1/auth/pw/signin | ${signinRate.toFixed(1)} | ${(signinRate / parallel).toFixed(1)} | ${(signinRate / verifyRate).toFixed(2)} |`,
    );

    // An unknown address and a wrong password must answer alike and take alike (DESIGN §4): median latency of each,
    // one request at a time, a fresh address per attempt so the per-address throttle stays out of it.
    const TIMED = Number(process.env.BENCH_TIMING_SIGNINS ?? 15);
    const registered: string[] = [];
    for (let i = 0; i < TIMED; i++) {
      const address = `timing-${i}-${randomBytes(4).toString('hex')}@example.com`;
      const r = await fetch(`${base}/v1/auth/pw/signup`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ email: address, password: PASSWORD }),
      });
      if (r.status !== 201) throw new Error(`sign-up answered ${r.status}`);
      await r.arrayBuffer();
      registered.push(address);
    }
    const timeSignIn = async (address: string, password: string) => {
      const started = performance.now();
      const r = await fetch(`${base}/v1/auth/pw/signin`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ email: address, password }),
      });
      const body = await r.text();
      return { ms: performance.now() - started, status: r.status, body: body.replace(/"request_id":"[^"]*"/, '') };
    };
    const unknown: number[] = [];
    const wrong: number[] = [];
    const bodies = new Set<string>();
    // Interleaved, so a change in the machine's load falls on both alike.
    for (let i = 0; i < TIMED; i++) {
      const a = await timeSignIn(`nobody-${i}-${randomBytes(4).toString('hex')}@example.com`, 'wrong-password-1');
      const b = await timeSignIn(registered[i] as string, 'wrong-password-1');
      if (a.status !== 401 || b.status !== 401) throw new Error(`failed sign-ins answered ${a.status} / ${b.status}`);
      unknown.push(a.ms);
      wrong.push(b.ms);
      bodies.add(a.body).add(b.body);
    }
    const med = (xs: number[]) => median(xs);
    console.log(`\nFailed sign-ins, one at a time (${TIMED} of each, interleaved)`);
    console.log('| what | median ms | vs wrong password | answer |');
    console.log('|---|---:|---:|---|');
    console.log(`| wrong password (baseline) | ${med(wrong).toFixed(1)} | 1.00 | 401 |`);
    console.log(
      `| unknown address | ${med(unknown).toFixed(1)} | ${(med(unknown) / med(wrong)).toFixed(2)} | 401, ${bodies.size === 1 ? 'the same body' : 'DIFFERENT BODIES'} |`,
    );
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await pg?.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
