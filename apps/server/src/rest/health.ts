import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { sql } from 'kysely';
import type { AppEnv } from '../http/variables.ts';
import { describeError, log } from '../log.ts';
import { ErrorSchema } from './schemas.ts';

const healthz = createRoute({
  method: 'get',
  path: '/healthz',
  tags: ['health'],
  summary: 'Liveness: the process answers',
  responses: {
    200: { description: 'Alive', content: { 'application/json': { schema: z.object({ status: z.literal('ok') }) } } },
  },
});

const readyz = createRoute({
  method: 'get',
  path: '/readyz',
  tags: ['health'],
  summary: 'Readiness: the database answers',
  responses: {
    200: {
      description: 'Ready',
      content: {
        'application/json': {
          schema: z.object({ status: z.literal('ready'), database: z.enum(['pglite', 'postgres']) }),
        },
      },
    },
    503: { description: 'The database is unavailable', content: { 'application/json': { schema: ErrorSchema } } },
  },
});

export function registerHealthRoutes(rest: OpenAPIHono<AppEnv>): void {
  rest.openapi(healthz, (c) => c.json({ status: 'ok' as const }, 200));
  rest.openapi(readyz, async (c) => {
    const { handle } = c.get('deps');
    try {
      await sql`select 1`.execute(handle.db);
      return c.json({ status: 'ready' as const, database: handle.dialect }, 200);
    } catch (error) {
      log.warn('readiness check failed', { error: describeError(error), request_id: c.get('requestId') });
      return c.json(
        { error: 'The database is unavailable', code: 'database_unavailable', request_id: c.get('requestId') },
        503,
      );
    }
  });
}
