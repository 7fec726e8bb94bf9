import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import {
  type AuditFilter,
  eventJson,
  exportAuditEvents,
  getAuditEvent,
  latestStoredCheckpoint,
  queryAuditEvents,
  readLatestExportedCheckpoint,
  verifierKeyOf,
} from '@keyledger/core';
import {
  auditFilterOf,
  Event,
  splitTypes,
  TYPE_PATTERN,
  VerifyResult,
  verifyAgainstLatestCheckpoint,
} from '../audit-shapes.ts';
import { HttpError } from '../http/errors.ts';
import { requireScope } from '../http/pipeline.ts';
import type { AppEnv } from '../http/variables.ts';
import { AUTHED, errors, principalOf } from './common.ts';
import { Id } from './schemas.ts';

const iso = z.iso.datetime({ offset: true });
const Filters = z.object({
  type: z
    .string()
    .max(1000)
    .optional()
    .openapi({ description: 'comma-separated exact types or prefixes like api_key.*' }),
  actor: Id.optional(),
  subject: Id.optional(),
  stream: z.string().max(200).optional(),
  ip: z.string().max(64).optional(),
  outcome: z.enum(['success', 'failure']).optional(),
  since: iso.optional(),
  until: iso.optional(),
});
const Page = z.object({
  after: z.coerce.number().int().min(0).optional(),
  order: z.enum(['asc', 'desc']).default('asc'),
  limit: z.coerce.number().int().min(1).max(1000).default(50),
});

function filterOf(q: z.infer<typeof Filters>): AuditFilter {
  const types = splitTypes(q.type);
  for (const t of types ?? []) {
    if (!TYPE_PATTERN.test(t))
      throw new HttpError(400, 'invalid_request', `type: "${t}" is not an event type or prefix`);
  }
  return auditFilterOf({ ...q, types });
}

const list = createRoute({
  method: 'get',
  path: '/v1/audit/events',
  tags: ['audit'],
  summary: 'Search the log (members: the events about themselves)',
  security: AUTHED,
  middleware: [requireScope('audit:read')] as const,
  request: { query: Filters.merge(Page) },
  responses: {
    200: {
      description: 'A keyset page',
      content: {
        'application/json': {
          schema: z.object({ data: z.array(Event), next_cursor: z.number().int().nullable() }).openapi('EventList'),
        },
      },
    },
    ...errors(400, 401, 403),
  },
});

const one = createRoute({
  method: 'get',
  path: '/v1/audit/events/{id}',
  tags: ['audit'],
  summary: 'One event',
  security: AUTHED,
  middleware: [requireScope('audit:read')] as const,
  request: {
    params: z.object({
      id: z
        .string()
        .max(64)
        .openapi({ param: { name: 'id', in: 'path' } }),
    }),
  },
  responses: {
    200: { description: 'The event', content: { 'application/json': { schema: Event } } },
    ...errors(401, 403, 404),
  },
});

const exportRoute = createRoute({
  method: 'get',
  path: '/v1/audit/export',
  tags: ['audit'],
  summary: 'Stream the matching events as JSON Lines or CSV',
  security: AUTHED,
  middleware: [requireScope('audit:read')] as const,
  request: { query: Filters.extend({ format: z.enum(['jsonl', 'csv']).default('jsonl') }) },
  responses: {
    200: {
      description: 'The events, streamed',
      content: { 'application/x-ndjson': { schema: z.string() }, 'text/csv': { schema: z.string() } },
    },
    ...errors(400, 401, 403),
  },
});

const verify = createRoute({
  method: 'get',
  path: '/v1/audit/verify',
  tags: ['audit'],
  summary: 'Recompute every hash and hold the log to the latest exported checkpoint',
  security: AUTHED,
  middleware: [requireScope('audit:read')] as const,
  responses: {
    200: {
      description: 'The verdict; ok only when both hold',
      content: { 'application/json': { schema: VerifyResult } },
    },
    ...errors(401, 403),
  },
});

const latest = createRoute({
  method: 'get',
  path: '/v1/audit/checkpoints/latest',
  tags: ['audit'],
  summary: 'The latest signed checkpoint (C2SP tlog-checkpoint note)',
  security: AUTHED,
  middleware: [requireScope('audit:read')] as const,
  responses: {
    200: { description: 'The note', content: { 'text/plain': { schema: z.string() } } },
    ...errors(401, 403, 404),
  },
});

const publicKey = createRoute({
  method: 'get',
  path: '/v1/audit/checkpoints/public-key',
  tags: ['audit'],
  summary: 'The verifier key, in C2SP signed-note vkey form',
  security: AUTHED,
  middleware: [requireScope('audit:read')] as const,
  responses: {
    200: { description: 'name+id+key', content: { 'text/plain': { schema: z.string() } } },
    ...errors(401, 403),
  },
});

export function registerAuditRoutes(rest: OpenAPIHono<AppEnv>): void {
  rest.openapi(list, async (c) => {
    const q = c.req.valid('query');
    const page = await queryAuditEvents(c.get('deps').core.db, principalOf(c), filterOf(q), {
      after: q.after,
      order: q.order,
      limit: q.limit,
    });
    return c.json({ data: page.data.map(eventJson) as z.infer<typeof Event>[], next_cursor: page.next_cursor }, 200);
  });

  rest.openapi(one, async (c) => {
    const event = await getAuditEvent(c.get('deps').core.db, principalOf(c), c.req.valid('param').id);
    if (!event) throw new HttpError(404, 'not_found', 'Event not found');
    return c.json(eventJson(event) as z.infer<typeof Event>, 200);
  });

  rest.openapi(exportRoute, async (c) => {
    const q = c.req.valid('query');
    const chunks = exportAuditEvents(c.get('deps').core.db, principalOf(c), filterOf(q), q.format);
    const encoder = new TextEncoder();
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const next = await chunks.next();
        if (next.done) controller.close();
        else controller.enqueue(encoder.encode(next.value));
      },
      async cancel() {
        await chunks.return(undefined);
      },
    });
    const type = q.format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson';
    return c.body(body, 200, {
      'Content-Type': type,
      'Content-Disposition': `attachment; filename="keyledger-events.${q.format}"`,
    });
  });

  rest.openapi(verify, async (c) => c.json(await verifyAgainstLatestCheckpoint(c.get('deps')), 200));

  rest.openapi(latest, async (c) => {
    const deps = c.get('deps');
    const note =
      (await readLatestExportedCheckpoint(deps.checkpoints.exportDir)) ??
      (await latestStoredCheckpoint(deps.core.db))?.note;
    if (!note) throw new HttpError(404, 'not_found', 'No checkpoint yet');
    return c.text(note, 200);
  });

  rest.openapi(publicKey, (c) => c.text(verifierKeyOf(c.get('deps').checkpoints.signer), 200));
}
