import { EnvError, loadEnv } from './env.ts';
import { describeError, log } from './log.ts';
import { startServer } from './server.ts';

let config: ReturnType<typeof loadEnv>;
try {
  config = loadEnv();
} catch (error) {
  if (error instanceof EnvError) {
    log.error(error.message);
    process.exit(2);
  }
  throw error;
}

try {
  const running = await startServer(config);
  let signals = 0;
  const shutdown = (signal: string) => {
    if (++signals > 1) process.exit(1);
    log.info(`${signal}: finishing in-flight work and shutting down`);
    running.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error('shutdown failed', { error: describeError(error) });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
} catch (error) {
  log.error(`could not start: ${describeError(error)}`);
  process.exit(1);
}
