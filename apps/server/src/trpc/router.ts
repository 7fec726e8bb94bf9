import { router } from './init.ts';
import { apiKeysRouter } from './routers/api-keys.ts';
import { auditRouter } from './routers/audit.ts';
import { authRouter } from './routers/auth.ts';
import { sessionsRouter } from './routers/sessions.ts';
import { usersRouter } from './routers/users.ts';

/** The typed API for internal apps, the web UI and the CLI: one router per capability. */
export const appRouter = router({
  auth: authRouter,
  sessions: sessionsRouter,
  apiKeys: apiKeysRouter,
  users: usersRouter,
  audit: auditRouter,
});

export type AppRouter = typeof appRouter;
