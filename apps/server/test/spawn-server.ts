import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDb } from '@keyledger/db';
import { createTestDb, type TestDb } from '@keyledger/db/testing';
import { sql } from 'kysely';

/**
 * The end-to-end suites' harness: the real server process (`tsx src/main.ts`), started as an operator would, on a
 * fresh Postgres database or on the embedded database in a temporary data directory. Every byte it prints is kept
 * so the suites can check that no secret ever reaches a log line.
 */

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const TSX = fileURLToPath(new URL('../node_modules/.bin/tsx', import.meta.url));
const START_TIMEOUT_MS = 60_000;

export interface Spawned {
  readonly url: string;
  readonly child: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** SIGTERM, then SIGKILL after 10 s; resolves with the exit code (null when killed by a signal). */
  stop(): Promise<number | null>;
}

/** A random string of base62 characters, e.g. for passwords and environment keys. */
export function randomSecret(length = 40): string {
  const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  return [...randomBytes(length)].map((b) => alphabet[b % 62]).join('');
}

/**
 * Starts the server with `env` on top of the parent's environment, minus any database URL of the test run itself
 * (pass DATABASE_URL explicitly). Resolves once it logs "listening on"; rejects if it exits or takes over 60 s.
 */
export async function spawnServer(env: Record<string, string>): Promise<Spawned> {
  const child = spawn(TSX, [MAIN], {
    env: {
      ...process.env,
      DATABASE_URL: '',
      TEST_DATABASE_URL: '',
      DATABASE_MIGRATION_URL: '',
      KEYLEDGER_REQUIRE_POSTGRES: '',
      PORT: '0',
      HOST: '127.0.0.1',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  child.stderr?.on('data', (d) => {
    out += d;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stop = async (): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    }
    return exited;
  };
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`server did not start in ${START_TIMEOUT_MS / 1000} s:\n${out}`)),
        START_TIMEOUT_MS,
      );
      const onData = () => {
        const m = out.match(/listening on (http:\/\/[^"\s]+)/);
        if (m?.[1]) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`server exited with ${code} before listening:\n${out}`));
      });
    });
    return { url, child, output: () => out, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Where a suite's servers keep their data: a fresh Postgres database when the run has one, else a data dir. */
export interface Backend {
  readonly kind: 'postgres' | 'pglite';
  /** A fresh temporary KEYLEDGER_DATA_DIR (checkpoint key, and the embedded database on PGlite). */
  readonly dataDir: string;
  /** The environment that points a server at this backend. */
  readonly env: Record<string, string>;
  /**
   * Every row of every table in the schema as text (events included). On PGlite the server holds the embedded
   * database, so call this only after stopping it.
   */
  dumpRows(): Promise<{ table: string; text: string }[]>;
  close(): Promise<void>;
}

export async function createBackend(postgresUrl: string | undefined): Promise<Backend> {
  const dataDir = await mkdtemp(join(tmpdir(), 'keyledger-e2e-'));
  let pg: TestDb | undefined;
  if (postgresUrl) pg = await createTestDb();
  const env: Record<string, string> = { KEYLEDGER_DATA_DIR: dataDir };
  if (pg?.url) env.DATABASE_URL = pg.url;
  return {
    kind: pg ? 'postgres' : 'pglite',
    dataDir,
    env,
    async dumpRows() {
      const handle = pg ?? (await createDb({ dataDir }));
      try {
        const tables = await sql<{ name: string }>`
          select table_name as name from information_schema.tables
          where table_schema = current_schema() and table_type = 'BASE TABLE' order by table_name`.execute(handle.db);
        const rows: { table: string; text: string }[] = [];
        for (const { name } of tables.rows) {
          const r = await sql<{ t: string }>`select t::text as t from ${sql.table(name)} t`.execute(handle.db);
          for (const row of r.rows) rows.push({ table: name, text: row.t });
        }
        return rows;
      } finally {
        if (!pg) await handle.close();
      }
    },
    async close() {
      await pg?.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
