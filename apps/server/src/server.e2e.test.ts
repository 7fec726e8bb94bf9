import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestDb, type TestDb, testDatabaseUrl } from '@keyledger/db/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const TSX = fileURLToPath(new URL('../node_modules/.bin/tsx', import.meta.url));

interface Spawned {
  child: ChildProcess;
  url: string;
  output: () => string;
  exited: Promise<number | null>;
}

/** Starts the real server process (embedded database unless DATABASE_URL is set) on a free port. */
async function spawnServer(env: Record<string, string>): Promise<Spawned> {
  const child = spawn(TSX, [MAIN], {
    env: { ...process.env, DATABASE_URL: '', TEST_DATABASE_URL: '', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), 60_000);
    const onData = () => {
      const m = out.match(/listening on (http:\/\/[^"\s]+)/);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void exited.then((code) => reject(new Error(`server exited with ${code}:\n${out}`)));
  });
  return { child, url, output: () => out, exited };
}

describe('the server process', () => {
  let dir: string;
  // On real Postgres when the suite has one, else on the embedded database in the data directory.
  let pg: TestDb | undefined;
  let dbEnv: Record<string, string> = {};
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keyledger-e2e-'));
    if (testDatabaseUrl()) {
      pg = await createTestDb();
      dbEnv = { DATABASE_URL: pg.url as string };
    }
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
    await pg?.close();
  });

  it('starts on a fresh data directory, serves health checks, and stops cleanly on SIGTERM', async () => {
    const s = await spawnServer({ KEYLEDGER_DATA_DIR: dir, ...dbEnv });
    try {
      const live = await fetch(`${s.url}/healthz`);
      expect(live.status).toBe(200);
      const ready = await fetch(`${s.url}/readyz`);
      expect(ready.status).toBe(200);
      expect(((await ready.json()) as { database: string }).database).toBe(pg ? 'postgres' : 'pglite');
      const key = await stat(join(dir, 'checkpoint.key'));
      expect(key.mode & 0o777).toBe(0o600);
    } finally {
      s.child.kill('SIGTERM');
    }
    expect(await s.exited).toBe(0);
    expect(s.output()).toMatch(/SIGTERM/);
  });

  it('restarts on the same data directory with the same checkpoint key', async () => {
    const keyBefore = await readFile(join(dir, 'checkpoint.key'), 'utf8');
    const s = await spawnServer({ KEYLEDGER_DATA_DIR: dir, ...dbEnv });
    try {
      expect((await fetch(`${s.url}/readyz`)).status).toBe(200);
    } finally {
      s.child.kill('SIGTERM');
    }
    expect(await s.exited).toBe(0);
    expect(await readFile(join(dir, 'checkpoint.key'), 'utf8')).toBe(keyBefore);
  });

  it('refuses to start on bad configuration with a clear message and exit code 2', async () => {
    const child = spawn(TSX, [MAIN], {
      env: { ...process.env, KEYLEDGER_DATA_DIR: dir, PORT: 'not-a-port', KEYLEDGER_ADMIN_API_KEY: 'too-short-secret' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stderr.on('data', (d) => (out += d));
    const code = await new Promise((resolve) => child.on('exit', resolve));
    expect(code).toBe(2);
    expect(out).toContain('PORT');
    expect(out).toContain('KEYLEDGER_ADMIN_API_KEY');
    expect(out).not.toContain('too-short-secret');
  });
});
