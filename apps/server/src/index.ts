export { createApp } from './app.ts';
export type { ServerDeps } from './deps.ts';
export { type Config, loadEnv } from './env.ts';
export { type RunningServer, startServer } from './server.ts';
export type { AppRouter } from './trpc/router.ts';
