import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { DomainError, listSessions, revokeOtherSessions, revokeSession } from '@keyledger/core';
import { requireScope } from '../http/pipeline.ts';
import type { AppEnv } from '../http/variables.ts';
import { sessionJson } from '../surface.ts';
import { AUTHED, errors, meta, notFoundUnlessOwner, principalOf } from './common.ts';
import { Id, listOf, Session } from './schemas.ts';

const IdParam = z.object({ id: Id.openapi({ param: { name: 'id', in: 'path' } }) });

const list = createRoute({
  method: 'get',
  path: '/v1/sessions',
  tags: ['sessions'],
  summary: "The caller's signed-in devices",
  security: AUTHED,
  middleware: [requireScope('sessions:read')] as const,
  responses: {
    200: {
      description: 'Live sessions, newest first',
      content: { 'application/json': { schema: listOf(Session, 'SessionList') } },
    },
    ...errors(401, 403),
  },
});

const revokeOne = createRoute({
  method: 'delete',
  path: '/v1/sessions/{id}',
  tags: ['sessions'],
  summary: 'Revoke one of the caller’s sessions (the current one too: that is a sign-out)',
  security: AUTHED,
  middleware: [requireScope('sessions:write')] as const,
  request: { params: IdParam },
  responses: { 204: { description: 'Revoked' }, ...errors(401, 403, 404) },
});

const revokeOthers = createRoute({
  method: 'delete',
  path: '/v1/sessions',
  tags: ['sessions'],
  summary: 'Revoke every session of the caller but the current one',
  security: AUTHED,
  middleware: [requireScope('sessions:write')] as const,
  responses: { 204: { description: 'Revoked' }, ...errors(401, 403) },
});

export function registerSessionRoutes(rest: OpenAPIHono<AppEnv>): void {
  rest.openapi(list, async (c) => {
    const p = principalOf(c);
    if (p.kind !== 'user') return c.json({ data: [], next_cursor: null }, 200);
    const sessions = await listSessions(c.get('deps').core, p.userId, p.auth === 'session' ? p.sessionId : null);
    return c.json(
      {
        data: sessions.map(sessionJson),
        next_cursor: null,
      },
      200,
    );
  });

  rest.openapi(revokeOne, async (c) => {
    const { id } = c.req.valid('param');
    const p = principalOf(c);
    const { core } = c.get('deps');
    const own =
      p.kind === 'user' &&
      (await core.db
        .selectFrom('sessions')
        .select('id')
        .where('id', '=', id)
        .where('user_id', '=', p.userId)
        .executeTakeFirst());
    if (!own) await notFoundUnlessOwner(c, 'sessions', id, new DomainError('not_found', 'Session not found'));
    await revokeSession(
      core,
      meta(c),
      id,
      p.kind === 'user' && p.auth === 'session' && p.sessionId === id ? 'signout' : 'user',
    );
    return c.body(null, 204);
  });

  rest.openapi(revokeOthers, async (c) => {
    const p = principalOf(c);
    if (p.kind === 'user')
      await revokeOtherSessions(c.get('deps').core, meta(c), p.userId, p.auth === 'session' ? p.sessionId : null);
    return c.body(null, 204);
  });
}
