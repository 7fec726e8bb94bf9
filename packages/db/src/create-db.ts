import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PGliteDialect, PostgresDialect } from 'kysely';
import pg from 'pg';
import { copyingClientClass, copyingPglite } from './raw-bytes.ts';
import type { Database } from './schema.ts';

export type DbDialect = 'pglite' | 'postgres';

export interface DbHandle {
  readonly db: Kysely<Database>;
  readonly dialect: DbDialect;
  /** Subscribes to a NOTIFY channel. Resolves once the LISTEN is active; call the result to stop. */
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

export interface CreateDbOptions {
  /** A Postgres connection string. Unset: embedded PGlite. */
  databaseUrl?: string | undefined;
  /** Where PGlite keeps its files (`<dataDir>/pgdata`). Unset with no URL: an in-memory database. */
  dataDir?: string | undefined;
  /** An already-open PGlite instance (tests load a migrated template this way). */
  pglite?: PGlite;
  poolSize?: number;
}

const INT8_OID = 20;
const CopyingClient = copyingClientClass(pg.Client);
// seq and counters are bigint in SQL; they stay far below 2^53, so numbers are exact and easier to use.
const pgTypes = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID && format !== 'binary') return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format);
  },
} as pg.CustomTypesConfig;

export async function createDb(options: CreateDbOptions = {}): Promise<DbHandle> {
  if (options.databaseUrl) return createPostgresDb(options.databaseUrl, options.poolSize ?? 10);
  let pglite = options.pglite;
  if (!pglite) {
    if (options.dataDir) {
      const dir = join(options.dataDir, 'pgdata');
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      pglite = await PGlite.create(dir);
    } else {
      pglite = await PGlite.create();
    }
  }
  return createPgliteDb(pglite);
}

function createPgliteDb(pglite: PGlite): DbHandle {
  // copyingPglite: lets copyBinaryOut (raw-bytes.ts) run a COPY through Kysely, in or out of a transaction.
  const db = new Kysely<Database>({ dialect: new PGliteDialect({ pglite: copyingPglite(pglite) }) });
  return {
    db,
    dialect: 'pglite',
    async listen(channel, onPayload) {
      const unsubscribe = await pglite.listen(channel, onPayload);
      return async () => {
        if (!pglite.closed) await unsubscribe();
      };
    },
    async close() {
      await db.destroy();
    },
  };
}

function createPostgresDb(connectionString: string, max: number): DbHandle {
  // CopyingClient: lets copyBinaryOut (raw-bytes.ts) run a COPY through Kysely, in or out of a transaction.
  const pool = new pg.Pool({ connectionString, max, types: pgTypes, Client: CopyingClient });
  // An idle client that loses its server (restart, failover) must not crash the process.
  pool.on('error', () => {});
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const listeners = new Set<pg.Client>();
  return {
    db,
    dialect: 'postgres',
    async listen(channel, onPayload) {
      const client = new pg.Client({ connectionString, types: pgTypes });
      client.on('error', () => {});
      await client.connect();
      client.on('notification', (msg) => {
        if (msg.channel === channel) onPayload(msg.payload ?? '');
      });
      await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
      listeners.add(client);
      return async () => {
        if (!listeners.delete(client)) return;
        await client.end().catch(() => {});
      };
    },
    async close() {
      await Promise.all([...listeners].map((c) => c.end().catch(() => {})));
      listeners.clear();
      await db.destroy();
    },
  };
}

/** The role name in a connection string, or undefined when it names none. */
export function roleOfUrl(url: string): string | undefined {
  try {
    const user = decodeURIComponent(new URL(url).username);
    return user || undefined;
  } catch {
    return undefined;
  }
}
