import { createDb, type DbHandle, migrateToLatest } from '@keyledger/db';
import type { OfflineEnv } from './env.ts';

/**
 * Opens the database straight, as the server would: Postgres from DATABASE_URL (or the migration URL for owner
 * work), else the embedded database in the data directory. The embedded one takes one process at a time, so
 * stop the server before running offline commands on it.
 */
export async function openOffline(env: OfflineEnv, as: 'app' | 'owner' = 'app'): Promise<DbHandle> {
  const url = as === 'owner' ? env.migrationUrl : env.databaseUrl;
  if (url) return createDb({ databaseUrl: url, poolSize: 2 });
  const handle = await createDb({ dataDir: env.dataDir });
  await migrateToLatest(handle.db);
  return handle;
}
