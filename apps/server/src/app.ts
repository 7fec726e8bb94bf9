import { OpenAPIHono } from '@hono/zod-openapi';
import { createIpMatcher } from '@keyledger/core';
import { secureHeaders } from 'hono/secure-headers';
import { sql } from 'kysely';
import type { ServerDeps } from './deps.ts';
import {
  allowedIps,
  authenticate,
  baseContext,
  bodyGuards,
  errorJson,
  originCheck,
  rateLimit,
  toErrorResponse,
} from './http/pipeline.ts';
import { requestId } from './http/request-id.ts';
import type { AppEnv } from './http/variables.ts';
import { describeError, log } from './log.ts';
import { mountRest } from './rest/index.ts';
import { mountTrpc } from './trpc/mount.ts';

export type { AppEnv } from './http/variables.ts';

export function createApp(deps: ServerDeps): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>();
  app.use('*', requestId);
  app.use('*', secureHeaders({ crossOriginResourcePolicy: 'same-origin', referrerPolicy: 'no-referrer' }));
  app.use('*', baseContext(deps));

  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => {
    try {
      await sql`select 1`.execute(deps.handle.db);
      return c.json({ status: 'ready', database: deps.handle.dialect });
    } catch (error) {
      log.warn('readiness check failed', { error: describeError(error), request_id: c.get('requestId') });
      return errorJson(c, 503, 'database_unavailable', 'The database is unavailable');
    }
  });

  const ipMatcher = deps.config.allowedIps === '*' ? null : createIpMatcher(deps.config.allowedIps);
  for (const prefix of ['/v1/*', '/trpc/*', '/auth/*']) app.use(prefix, allowedIps(deps, ipMatcher));
  app.use('/v1/*', bodyGuards({ json: true }));
  app.use('/trpc/*', bodyGuards({ json: true }));
  app.use('/auth/*', bodyGuards({ json: false }));
  app.use('/v1/*', authenticate('rest'));
  app.use('/trpc/*', authenticate('trpc'));
  app.use('/auth/*', authenticate('web'));
  for (const prefix of ['/v1/*', '/trpc/*', '/auth/*']) {
    app.use(prefix, originCheck());
    app.use(prefix, rateLimit());
  }

  mountRest(app);
  mountTrpc(app);

  app.notFound((c) => errorJson(c, 404, 'not_found', 'Not found'));
  app.onError((error, c) => toErrorResponse(error, c));
  return app;
}
