import type { Clock } from '@keyledger/core';
import type { DbHandle } from '@keyledger/db';
import { Hono } from 'hono';
import { secureHeaders } from 'hono/secure-headers';
import { sql } from 'kysely';
import { isDatabaseUnavailable } from './http/errors.ts';
import { type RequestIdVariables, requestId } from './http/request-id.ts';
import { describeError, log } from './log.ts';

export interface AppDeps {
  readonly handle: DbHandle;
  readonly clock: Clock;
}

export type AppEnv = { Variables: RequestIdVariables };

export function createApp(deps: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use('*', requestId);
  app.use('*', secureHeaders({ crossOriginResourcePolicy: 'same-origin', referrerPolicy: 'no-referrer' }));

  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => {
    try {
      await sql`select 1`.execute(deps.handle.db);
      return c.json({ status: 'ready', database: deps.handle.dialect });
    } catch (error) {
      log.warn('readiness check failed', { error: describeError(error), request_id: c.get('requestId') });
      return c.json(
        { error: 'The database is unavailable', code: 'database_unavailable', request_id: c.get('requestId') },
        503,
      );
    }
  });

  app.notFound((c) => c.json({ error: 'Not found', code: 'not_found', request_id: c.get('requestId') }, 404));
  app.onError((error, c) => {
    const request_id = c.get('requestId');
    if (isDatabaseUnavailable(error)) {
      return c.json({ error: 'The database is unavailable', code: 'database_unavailable', request_id }, 503);
    }
    // The caller learns only that it failed and the request id; the log has the rest (never a stack on the wire).
    log.error('unhandled error', { error: describeError(error), request_id, path: c.req.path });
    return c.json({ error: 'Internal error', code: 'internal_error', request_id }, 500);
  });
  return app;
}
