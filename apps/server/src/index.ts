export { type AppDeps, createApp } from './app.ts';
export { type Config, loadEnv } from './env.ts';
export { type RunningServer, startServer } from './server.ts';
