import { router } from './init.ts';

/** The typed API for internal apps, the web UI and the CLI: one router per capability. */
export const appRouter = router({});

export type AppRouter = typeof appRouter;
