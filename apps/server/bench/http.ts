/**
 * `pnpm bench` (server): requests per second and p99 for REST routes authenticated by API key, by session cookie and
 * by Bearer session token, against /healthz (Hono's hello world behind the same global middleware) on the same
 * server, in the same run; and password sign-ins per second per core against raw argon2id verification.
 * The server is the real process (tsx src/main.ts) on real Postgres when DATABASE_URL is set, else embedded PGlite.
 * Targets: every authenticated route ≥ 50% of the baseline's rate, p99 < 20 ms at 50 connections.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hashPassword, verifyPassword } from '@keyledger/core';
import { createTestDb } from '@keyledger/db/testing';
import autocannon from 'autocannon';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const SIGNINS = Number(process.env.BENCH_SIGNINS ?? 40);
const PASSWORD = 'violet-otter-lantern-42';

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'keyledger-bench-'));
  const pg = process.env.DATABASE_URL ? await createTestDb() : undefined;
  const backend = pg ? 'postgres' : 'pglite';
  const tsx = fileURLToPath(new URL('../node_modules/.bin/tsx', import.meta.url));
  const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
  const child = spawn(tsx, [main], {
    env: {
      ...process.env,
      PORT: '0',
      KEYLEDGER_DATA_DIR: dir,
      KEYLEDGER_SIGNUP: 'open',
      KEYLEDGER_API_RATE_LIMIT: '0',
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

    const run = async (title: string, path: string, headers: Record<string, string>) => {
      const r = await autocannon({ url: `${base}${path}`, connections: CONNECTIONS, duration: SECONDS, headers });
      if (r.non2xx > 0 || r.errors > 0) throw new Error(`${title}: ${r.non2xx} non-2xx, ${r.errors} errors`);
      return { title, rps: r.requests.average, p99: r.latency.p99 };
    };
    await run('warm-up', '/healthz', {});
    const baseline = await run('hello world (/healthz)', '/healthz', {});
    const cases = [
      await run('API key (x-api-key)', '/v1/users/me', { 'x-api-key': key }),
      await run('session cookie', '/v1/users/me', { cookie: `keyledger_session=${session}` }),
      await run('Bearer session token', '/v1/users/me', { authorization: `Bearer ${session}` }),
    ];

    console.log(
      `\nREST authentication (${backend}, ${CONNECTIONS} connections, ${SECONDS} s each, ${availableParallelism()} cores shared by server, database and load generator)`,
    );
    console.log('| route | req/s | p99 ms | vs hello world | target |');
    console.log('|---|---:|---:|---:|---|');
    console.log(`| ${baseline.title} | ${baseline.rps.toFixed(0)} | ${baseline.p99} | 1.00 | baseline |`);
    for (const c of cases) {
      const ratio = c.rps / baseline.rps;
      console.log(
        `| ${c.title} | ${c.rps.toFixed(0)} | ${c.p99} | ${ratio.toFixed(2)} | ${ratio >= 0.5 && c.p99 < 20 ? 'PASS' : 'MISS'} (≥0.50, p99 <20 ms) |`,
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
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await pg?.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
