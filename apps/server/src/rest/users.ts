import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import {
  changeRole,
  disableUser,
  enableUser,
  getUser,
  getUserOrThrow,
  listUsers,
  type Principal,
  registerUser,
  renameUser,
  revokeUserSessions,
} from '@keyledger/core';
import type { TypedResponse } from 'hono';
import { HttpError } from '../http/errors.ts';
import { requireScope } from '../http/pipeline.ts';
import type { AppEnv } from '../http/variables.ts';
import { invitationFrom, meJson, userJson } from '../surface.ts';
import { AUTHED, errors, idempotent, meta, principalOf } from './common.ts';
import { CreateUserBody, Id, Limit, listOf, Me, PatchUserBody, User } from './schemas.ts';

const json = <T extends z.ZodTypeAny>(schema: T) => ({ content: { 'application/json': { schema } }, required: true });
const one = (description: string) => ({ description, content: { 'application/json': { schema: User } } });
const IdParam = z.object({ id: Id.openapi({ param: { name: 'id', in: 'path' } }) });

const me = createRoute({
  method: 'get',
  path: '/v1/users/me',
  tags: ['users'],
  summary: 'Who the credential belongs to, and what it may do',
  security: AUTHED,
  responses: {
    200: { description: 'The caller', content: { 'application/json': { schema: Me } } },
    ...errors(401, 403),
  },
});

const list = createRoute({
  method: 'get',
  path: '/v1/users',
  tags: ['users'],
  summary: 'List and search users (admins)',
  security: AUTHED,
  middleware: [requireScope('users:read')] as const,
  request: { query: z.object({ query: z.string().max(200).optional(), after: Id.optional(), limit: Limit }) },
  responses: {
    200: { description: 'A page of users', content: { 'application/json': { schema: listOf(User, 'UserList') } } },
    ...errors(400, 401, 403),
  },
});

const create = createRoute({
  method: 'post',
  path: '/v1/users',
  tags: ['users'],
  summary:
    'Create a user (admins); without a password they are invited by a mailed sign-in link. Honours Idempotency-Key.',
  security: AUTHED,
  middleware: [requireScope('users:write')] as const,
  request: { body: json(CreateUserBody), headers: z.object({ 'idempotency-key': z.string().optional() }) },
  responses: {
    201: one('The new user'),
    200: one('A replay of an Idempotency-Key'),
    ...errors(400, 401, 403, 409, 413, 415),
  },
});

const get = createRoute({
  method: 'get',
  path: '/v1/users/{id}',
  tags: ['users'],
  summary: 'One user (admins)',
  security: AUTHED,
  middleware: [requireScope('users:read')] as const,
  request: { params: IdParam },
  responses: { 200: one('The user'), ...errors(401, 403, 404) },
});

const patch = createRoute({
  method: 'patch',
  path: '/v1/users/{id}',
  tags: ['users'],
  summary: 'Rename, change role, or disable/enable (admins). Disabling revokes every session and key.',
  security: AUTHED,
  middleware: [requireScope('users:write')] as const,
  request: { params: IdParam, body: json(PatchUserBody) },
  responses: { 200: one('The user'), ...errors(400, 401, 403, 404, 409, 413, 415) },
});

const revokeSessions = createRoute({
  method: 'delete',
  path: '/v1/users/{id}/sessions',
  tags: ['users'],
  summary: "Revoke all of a user's sessions (admins)",
  security: AUTHED,
  middleware: [requireScope('users:write')] as const,
  request: { params: IdParam },
  responses: { 204: { description: 'Revoked' }, ...errors(401, 403, 404) },
});

/**
 * `GET /v1/users/me` is the call every client makes, so its body is serialized once per principal rather than once
 * per request: the authenticator hands out the same principal object for as long as its cache entry lives (at most
 * 1 s), and a new one after any change to the user or the credential, so a body is never older than its principal.
 */
const meBodies = new WeakMap<Principal, string>();

function meBody(p: Principal): string {
  let body = meBodies.get(p);
  if (body === undefined) {
    body = JSON.stringify(meJson(p));
    meBodies.set(p, body);
  }
  return body;
}

export function registerUserRoutes(rest: OpenAPIHono<AppEnv>): void {
  rest.openapi(
    me,
    (c) =>
      // The body is meJson's, serialized: typed as such so the route's schema still checks it.
      c.body(meBody(principalOf(c)), 200, { 'Content-Type': 'application/json' }) as unknown as TypedResponse<
        ReturnType<typeof meJson>,
        200,
        'json'
      >,
  );

  rest.openapi(list, async (c) => {
    const q = c.req.valid('query');
    const page = await listUsers(c.get('deps').core, { query: q.query, after: q.after, limit: q.limit });
    return c.json({ data: page.data.map(userJson), next_cursor: page.next_cursor }, 200);
  });

  rest.openapi(create, async (c) => {
    const body = c.req.valid('json');
    const { core } = c.get('deps');
    const outcome = await idempotent(
      c,
      'POST /v1/users',
      body,
      (within) =>
        registerUser(core, meta(c), {
          email: body.email,
          name: body.name ?? null,
          role: body.role ?? 'member',
          method: 'admin',
          password: body.password,
          invite: invitationFrom(c.get('deps'), c.get('principal'), c.get('clientIp')),
          within,
        }),
      async (id) => userJson(await getUserOrThrow(core, id)),
    );
    if (body.password === undefined) void c.get('deps').mail?.kick();
    if (outcome.replayed) {
      c.header('Idempotent-Replayed', 'true');
      return c.json(outcome.value as ReturnType<typeof userJson>, 200);
    }
    return c.json(userJson(outcome.value), 201);
  });

  rest.openapi(get, async (c) => {
    const user = await getUser(c.get('deps').core, c.req.valid('param').id);
    if (!user) throw new HttpError(404, 'not_found', 'User not found');
    return c.json(userJson(user), 200);
  });

  rest.openapi(patch, async (c) => {
    const { id } = c.req.valid('param');
    const body = c.req.valid('json');
    const { core } = c.get('deps');
    let user = await getUser(core, id);
    if (!user) throw new HttpError(404, 'not_found', 'User not found');
    if (body.name !== undefined) user = await renameUser(core, meta(c), id, body.name);
    if (body.role !== undefined) user = await changeRole(core, meta(c), id, body.role);
    if (body.disabled === true) user = await disableUser(core, meta(c), id);
    if (body.disabled === false) user = await enableUser(core, meta(c), id);
    return c.json(userJson(user), 200);
  });

  rest.openapi(revokeSessions, async (c) => {
    await revokeUserSessions(c.get('deps').core, meta(c), c.req.valid('param').id);
    return c.body(null, 204);
  });
}
