import { type Kysely, sql } from 'kysely';
import { type MigrationResultSet, Migrator } from 'kysely/migration';
import { migrations } from './migrations/index.ts';

export class MigrationError extends Error {
  override readonly name = 'MigrationError';
}

/** Applies every pending migration. Safe to run from several processes at once (Kysely takes a lock). */
export async function migrateToLatest(db: Kysely<any>): Promise<MigrationResultSet> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
  });
  const result = await migrator.migrateToLatest();
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error');
    throw new MigrationError(`migration ${failed?.migrationName ?? '(unknown)'} failed`, { cause: result.error });
  }
  return result;
}

/** Tables the application may only read and append to: the log and its signed checkpoints. */
const APPEND_ONLY_TABLES = new Set(['events', 'checkpoints']);

/**
 * Grants the application role exactly what it needs, run by the owner after migrating: INSERT and SELECT on the
 * append-only tables, full DML on projections and bookkeeping tables, read-only on migration state. The role
 * must already exist (the deployer creates it) and must not own the tables.
 */
export async function grantApplicationRole(db: Kysely<any>, role: string): Promise<void> {
  const { rows } = await sql<{ tablename: string }>`
    select tablename from pg_tables where schemaname = current_schema()`.execute(db);
  const r = sql.id(role);
  await sql`grant usage on schema ${sql.id('public')} to ${r}`.execute(db);
  for (const { tablename } of rows) {
    const t = sql.table(tablename);
    await sql`revoke all on ${t} from ${r}`.execute(db);
    if (APPEND_ONLY_TABLES.has(tablename)) {
      await sql`grant select, insert on ${t} to ${r}`.execute(db);
    } else if (tablename.startsWith('kysely_migration')) {
      await sql`grant select on ${t} to ${r}`.execute(db);
    } else {
      await sql`grant select, insert, update, delete on ${t} to ${r}`.execute(db);
    }
  }
}

/** Whether the connected role owns `events` (then append-only rests on the triggers alone). */
export async function ownsEventLog(db: Kysely<any>): Promise<boolean> {
  const { rows } = await sql<{ owns: boolean }>`
    select pg_has_role(current_user, tableowner, 'USAGE') as owns
    from pg_tables where schemaname = current_schema() and tablename = 'events'`.execute(db);
  return rows[0]?.owns ?? true;
}
