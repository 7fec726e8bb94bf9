import { grantApplicationRole, migrateToLatest, roleOfUrl } from '@keyledger/db';
import type { Command } from 'commander';
import { offlineEnv } from '../env.ts';
import { openOffline } from '../offline-db.ts';
import { createOutput } from '../output.ts';

export function registerDb(program: Command): void {
  const db = program.command('db').description('database administration');
  db.command('migrate')
    .description('apply pending migrations as the owner, then grant the application role what it needs')
    .option('--json', 'machine-readable output')
    .action(async (flags: { json?: boolean }) => {
      const out = createOutput(Boolean(flags.json));
      const env = offlineEnv();
      const handle = await openOffline(env, 'owner');
      try {
        const result = await migrateToLatest(handle.db);
        const applied = (result.results ?? []).map((r) => r.migrationName);
        const appRole = env.databaseUrl ? roleOfUrl(env.databaseUrl) : undefined;
        const granted = Boolean(appRole && env.migrationUrl && appRole !== roleOfUrl(env.migrationUrl));
        if (granted && appRole) await grantApplicationRole(handle.db, appRole);
        out.result(
          { applied, granted_role: granted ? appRole : null },
          `${applied.length ? applied.map((m) => `applied ${m}`).join('\n') : 'no pending migrations'}${granted ? `\ngranted ${appRole}` : ''}`,
        );
      } finally {
        await handle.close();
      }
    });
}
