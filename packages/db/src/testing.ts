import { createHash, randomBytes } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { createDb, type DbHandle } from './create-db.ts';
import { grantApplicationRole, migrateToLatest } from './migrate.ts';
import { migrations } from './migrations/index.ts';

/**
 * Fresh, migrated databases for tests: one per call, never shared. On real Postgres when TEST_DATABASE_URL (or
 * DATABASE_URL) is set, else on embedded PGlite. With KEYLEDGER_REQUIRE_POSTGRES=1 (CI) a missing URL is an
 * error, so a suite can never silently fall back to PGlite.
 */
export interface TestDb extends DbHandle {
  /** The connection string of this test's own database (Postgres only). */
  readonly url: string | undefined;
  /** A role with exactly the application's grants, for `SET ROLE` in privilege tests. */
  readonly appRole: string;
}

export const TEST_APP_ROLE = 'keyledger_test_app';

export function testDatabaseUrl(): string | undefined {
  const url = process.env.TEST_DATABASE_URL || process.env.DATABASE_URL || undefined;
  if (!url && process.env.KEYLEDGER_REQUIRE_POSTGRES === '1') {
    throw new Error('KEYLEDGER_REQUIRE_POSTGRES=1 but neither TEST_DATABASE_URL nor DATABASE_URL is set');
  }
  return url;
}

export async function createTestDb(): Promise<TestDb> {
  const url = testDatabaseUrl();
  return url ? createPostgresTestDb(url) : createPgliteTestDb();
}

// The template is rebuilt whenever a migration's name or code changes.
const schemaFingerprint = createHash('sha256')
  .update(
    Object.entries(migrations)
      .map(([name, m]) => `${name}\n${m.up.toString()}`)
      .join('\n'),
  )
  .digest('hex')
  .slice(0, 12);

let pgliteTemplate: Promise<File | Blob> | undefined;

async function createPgliteTestDb(): Promise<TestDb> {
  // Creating and migrating a PGlite instance takes seconds; loading a dump of a migrated one is much faster.
  pgliteTemplate ??= (async () => {
    const pglite = await PGlite.create();
    const handle = await createDb({ pglite });
    await migrateToLatest(handle.db);
    await pglite.exec(`create role ${TEST_APP_ROLE} nologin`);
    await grantApplicationRole(handle.db, TEST_APP_ROLE);
    const dump = await pglite.dumpDataDir('none');
    await handle.close();
    return dump;
  })();
  const pglite = await PGlite.create({ loadDataDir: await pgliteTemplate });
  const handle = await createDb({ pglite });
  return { ...handle, url: undefined, appRole: TEST_APP_ROLE };
}

const templateReady = new Map<string, Promise<string>>();

async function createPostgresTestDb(baseUrl: string): Promise<TestDb> {
  let ready = templateReady.get(baseUrl);
  if (!ready) {
    ready = ensurePostgresTemplate(baseUrl);
    templateReady.set(baseUrl, ready);
  }
  const template = await ready;
  const name = `keyledger_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  await withAdmin(baseUrl, async (admin) => {
    for (let attempt = 0; ; attempt++) {
      try {
        await admin.query(`create database ${name} template ${template}`);
        return;
      } catch (error) {
        // Two workers copying the template at the same instant can collide; a short retry settles it.
        if (attempt >= 20 || !/being accessed by other users/.test(String(error))) throw error;
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
      }
    }
  });
  const url = withDatabase(baseUrl, name);
  const handle = await createDb({ databaseUrl: url, poolSize: 20 });
  return {
    ...handle,
    url,
    appRole: TEST_APP_ROLE,
    async close() {
      await handle.close();
      await withAdmin(baseUrl, (admin) => admin.query(`drop database if exists ${name} with (force)`));
    },
  };
}

async function ensurePostgresTemplate(baseUrl: string): Promise<string> {
  const template = `keyledger_template_${schemaFingerprint}`;
  await withAdmin(baseUrl, async (admin) => {
    // One process builds the template; the others wait on the lock and find it made.
    await admin.query('select pg_advisory_lock(7426001)');
    try {
      const { rows } = await admin.query('select 1 from pg_database where datname = $1', [template]);
      if (rows.length > 0) return;
      await admin.query(`
        do $$ begin
          if not exists (select 1 from pg_roles where rolname = '${TEST_APP_ROLE}') then
            create role ${TEST_APP_ROLE} nologin;
          end if;
        end $$`);
      const building = `${template}_building`;
      await admin.query(`drop database if exists ${building} with (force)`);
      await admin.query(`create database ${building}`);
      const handle = await createDb({ databaseUrl: withDatabase(baseUrl, building), poolSize: 1 });
      try {
        await migrateToLatest(handle.db);
        await grantApplicationRole(handle.db, TEST_APP_ROLE);
      } finally {
        await handle.close();
      }
      await admin.query(`alter database ${building} rename to ${template}`);
    } finally {
      await admin.query('select pg_advisory_unlock(7426001)');
    }
  });
  return template;
}

async function withAdmin<T>(baseUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: baseUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}
