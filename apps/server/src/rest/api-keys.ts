import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { createApiKey, getOwnApiKey, listOwnApiKeys, revokeApiKey, rotateApiKey } from '@keyledger/core';
import { requireScope } from '../http/pipeline.ts';
import type { AppEnv } from '../http/variables.ts';
import { apiKeyJson } from '../surface.ts';
import { AUTHED, errors, idempotent, meta, notFoundUnlessOwner, principalOf, userOf } from './common.ts';
import { ApiKey, CreateApiKeyBody, CreatedApiKey, Id, Limit, listOf, RotateBody } from './schemas.ts';

const json = <T extends z.ZodTypeAny>(schema: T, required = true) => ({
  content: { 'application/json': { schema } },
  required,
});
const IdParam = z.object({ id: Id.openapi({ param: { name: 'id', in: 'path' } }) });

const create = createRoute({
  method: 'post',
  path: '/v1/api-keys',
  tags: ['api-keys'],
  summary: 'Create an API key. The key is in this response only. Honours Idempotency-Key.',
  security: AUTHED,
  middleware: [requireScope('keys:write')] as const,
  request: { body: json(CreateApiKeyBody), headers: z.object({ 'idempotency-key': z.string().optional() }) },
  responses: {
    201: { description: 'The new key, shown once', content: { 'application/json': { schema: CreatedApiKey } } },
    200: {
      description: 'A replay of an Idempotency-Key: the key without its secret',
      content: { 'application/json': { schema: ApiKey } },
    },
    ...errors(400, 401, 403, 409, 413, 415),
  },
});

const list = createRoute({
  method: 'get',
  path: '/v1/api-keys',
  tags: ['api-keys'],
  summary: "The caller's live keys, newest first",
  security: AUTHED,
  middleware: [requireScope('keys:read')] as const,
  request: { query: z.object({ after: Id.optional(), limit: Limit }) },
  responses: {
    200: { description: 'A page of keys', content: { 'application/json': { schema: listOf(ApiKey, 'ApiKeyList') } } },
    ...errors(400, 401, 403),
  },
});

const get = createRoute({
  method: 'get',
  path: '/v1/api-keys/{id}',
  tags: ['api-keys'],
  summary: 'One of the caller’s keys',
  security: AUTHED,
  middleware: [requireScope('keys:read')] as const,
  request: { params: IdParam },
  responses: {
    200: { description: 'The key', content: { 'application/json': { schema: ApiKey } } },
    ...errors(401, 403, 404),
  },
});

const rotate = createRoute({
  method: 'post',
  path: '/v1/api-keys/{id}/rotate',
  tags: ['api-keys'],
  summary: 'Issue a successor; the old key keeps working for grace_seconds (default 3600)',
  security: AUTHED,
  middleware: [requireScope('keys:write')] as const,
  request: { params: IdParam, body: json(RotateBody, false) },
  responses: {
    201: { description: 'The new key, shown once', content: { 'application/json': { schema: CreatedApiKey } } },
    ...errors(400, 401, 403, 404, 409, 413, 415),
  },
});

const revoke = createRoute({
  method: 'delete',
  path: '/v1/api-keys/{id}',
  tags: ['api-keys'],
  summary: 'Revoke a key: refused everywhere within a second',
  security: AUTHED,
  middleware: [requireScope('keys:write')] as const,
  request: { params: IdParam },
  responses: { 204: { description: 'Revoked' }, ...errors(401, 403, 404) },
});

export function registerApiKeyRoutes(rest: OpenAPIHono<AppEnv>): void {
  rest.openapi(create, async (c) => {
    const body = c.req.valid('json');
    const p = userOf(c);
    const { core } = c.get('deps');
    const outcome = await idempotent(
      c,
      'POST /v1/api-keys',
      body,
      (within) =>
        createApiKey(
          core,
          meta(c),
          p,
          {
            name: body.name ?? null,
            scopes: body.scopes,
            expiresAt: body.expires_at ? new Date(body.expires_at) : null,
            ipAllowlist: body.ip_allowlist,
          },
          { within },
        ),
      async (id) => apiKeyJson(await getOwnApiKey(core, p, id)),
    );
    if (outcome.replayed) {
      c.header('Idempotent-Replayed', 'true');
      return c.json(outcome.value as ReturnType<typeof apiKeyJson>, 200);
    }
    return c.json({ ...apiKeyJson(outcome.value), key: outcome.value.key }, 201);
  });

  rest.openapi(list, async (c) => {
    const q = c.req.valid('query');
    const page = await listOwnApiKeys(c.get('deps').core, principalOf(c), { after: q.after, limit: q.limit });
    return c.json({ data: page.data.map(apiKeyJson), next_cursor: page.next_cursor }, 200);
  });

  rest.openapi(get, async (c) => {
    const { id } = c.req.valid('param');
    const key = await getOwnApiKey(c.get('deps').core, principalOf(c), id).catch((e: unknown) =>
      notFoundUnlessOwner(c, 'api_keys', id, e),
    );
    return c.json(apiKeyJson(key), 200);
  });

  rest.openapi(rotate, async (c) => {
    const { id } = c.req.valid('param');
    const body = (await c.req.text()) ? c.req.valid('json') : {};
    const next = await rotateApiKey(c.get('deps').core, meta(c), principalOf(c), id, body.grace_seconds).catch(
      (e: unknown) => notFoundUnlessOwner(c, 'api_keys', id, e),
    );
    return c.json({ ...apiKeyJson(next), key: next.key }, 201);
  });

  rest.openapi(revoke, async (c) => {
    const { id } = c.req.valid('param');
    await revokeApiKey(c.get('deps').core, meta(c), principalOf(c), id).catch((e: unknown) =>
      notFoundUnlessOwner(c, 'api_keys', id, e),
    );
    return c.body(null, 204);
  });
}
