import { checkProjections, projections, readChainHead, rebuildProjections } from '@keyledger/core';
import type { Command } from 'commander';
import { offlineEnv } from '../env.ts';
import { openOffline } from '../offline-db.ts';
import { createOutput, EXIT } from '../output.ts';

export function registerProjections(program: Command): void {
  const cmd = program.command('projections').description('compare or rebuild the tables derived from the log');

  cmd
    .command('check')
    .description('replay the log into scratch tables and diff them against the live ones (read-only)')
    .option('--json', 'machine-readable output')
    .action(async (flags: { json?: boolean }) => {
      const out = createOutput(Boolean(flags.json));
      const handle = await openOffline(offlineEnv());
      try {
        const total = (await readChainHead(handle.db)).seq;
        const result = await checkProjections(handle.db, projections, {
          onProgress: (n) => out.progress(n, total, 'replaying'),
        });
        out.endProgress();
        const lines = result.tables.map(
          (t) =>
            `${t.unexpected === 0 && t.missing === 0 ? 'ok  ' : 'DIFF'} ${t.table}: ${t.unexpected} unexpected, ${t.missing} missing`,
        );
        out.result(result, `${result.ok ? 'ok' : 'FAILED'}: ${result.replayed} events replayed\n${lines.join('\n')}`);
        process.exitCode = result.ok ? EXIT.ok : EXIT.failed;
      } finally {
        await handle.close();
      }
    });

  cmd
    .command('rebuild')
    .description('empty the projection tables and replay the whole log into them (appends wait meanwhile)')
    .option('--json', 'machine-readable output')
    .action(async (flags: { json?: boolean }) => {
      const out = createOutput(Boolean(flags.json));
      const handle = await openOffline(offlineEnv());
      try {
        // The head read before the rebuild: appends wait meanwhile, so it is the number of events to replay.
        const total = (await readChainHead(handle.db)).seq;
        const result = await rebuildProjections(handle.db, projections, {
          onProgress: (n) => out.progress(n, total, 'rebuilding'),
        });
        out.endProgress();
        out.result(result, `rebuilt from ${result.replayed} events`);
      } finally {
        await handle.close();
      }
    });
}
