import { createDb, grantApplicationRole, migrateToLatest, roleOfUrl } from '../index.ts';

// `pnpm db:migrate`: runs as the owner (DATABASE_MIGRATION_URL, else DATABASE_URL), then grants the
// application role (the user of DATABASE_URL, when it differs) what it needs.
const appUrl = process.env.DATABASE_URL || undefined;
const ownerUrl = process.env.DATABASE_MIGRATION_URL || appUrl;
const handle = await createDb({
  databaseUrl: ownerUrl,
  dataDir: ownerUrl ? undefined : process.env.KEYLEDGER_DATA_DIR || './.keyledger',
});
try {
  const result = await migrateToLatest(handle.db);
  for (const r of result.results ?? []) console.log(`${r.status.toLowerCase()}: ${r.migrationName}`);
  const appRole = appUrl && roleOfUrl(appUrl);
  if (appRole && ownerUrl && appRole !== roleOfUrl(ownerUrl)) {
    await grantApplicationRole(handle.db, appRole);
    console.log(`granted ${appRole} insert/select on the log`);
  }
  console.log('database is up to date');
} catch (error) {
  console.error(`migration failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
} finally {
  await handle.close();
}
