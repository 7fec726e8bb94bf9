import { DomainError } from '@keyledger/core';
import { Command, CommanderError } from 'commander';
import { CheckpointRejected, registerAudit } from './commands/audit.ts';
import { registerAuth } from './commands/auth.ts';
import { registerCompletion } from './commands/completion.ts';
import { registerDb } from './commands/db.ts';
import { registerKeys } from './commands/keys.ts';
import { registerProjections } from './commands/projections.ts';
import { registerSessions } from './commands/sessions.ts';
import { registerUsers } from './commands/users.ts';
import { ConfigError } from './config/credentials.ts';
import { UsageError } from './env.ts';
import { AuthError } from './online/client.ts';
import { createOutput, EXIT } from './output.ts';

const program = new Command('keyledger')
  .description('Keyledger: authentication with a tamper-evident log')
  .exitOverride()
  // A parent's options only before its subcommand: `auth --profile x` and `auth set --profile x` are not mixed up.
  .enablePositionalOptions()
  .showHelpAfterError();

registerAuth(program);
registerKeys(program);
registerSessions(program);
registerUsers(program);
registerDb(program);
registerAudit(program);
registerProjections(program);
registerCompletion(program);
program
  .command('start')
  .description('start the server (same configuration as `pnpm start`)')
  .action(async () => {
    // The server runs as its own process: the CLI starts it, it does not link it in.
    const { spawn } = await import('node:child_process');
    const { fileURLToPath } = await import('node:url');
    const main = fileURLToPath(import.meta.resolve('@keyledger/server/main'));
    const child = spawn(process.execPath, ['--import', 'tsx', main], { stdio: 'inherit' });
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
    process.exitCode = await new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
  });

// `keyledger audit tail -f | head`: the reader left, which is not a failure.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(EXIT.ok);
  throw error;
});

try {
  await program.parseAsync(process.argv);
} catch (error) {
  const json = process.argv.includes('--json');
  const out = createOutput(json);
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  } else if (error instanceof AuthError) {
    out.error(error.message);
    process.exitCode = EXIT.auth;
  } else if (
    error instanceof UsageError ||
    error instanceof ConfigError ||
    (error instanceof DomainError && error.code === 'invalid_input')
  ) {
    out.error(error.message);
    process.exitCode = EXIT.usage;
  } else if (error instanceof CheckpointRejected) {
    out.error(`checkpoint rejected: ${error.message}`);
    process.exitCode = EXIT.failed;
  } else {
    out.error(error instanceof Error ? error.message : String(error));
    process.exitCode = EXIT.failed;
  }
}
