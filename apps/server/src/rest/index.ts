import { OpenAPIHono } from '@hono/zod-openapi';
import { HttpError } from '../http/errors.ts';
import type { AppEnv } from '../http/variables.ts';
import { registerApiKeyRoutes } from './api-keys.ts';
import { registerAuditRoutes } from './audit.ts';
import { registerAuthRoutes } from './auth.ts';
import { registerHealthRoutes } from './health.ts';
import { registerMagicLinkRoutes } from './magic-links.ts';
import { registerOauthRoutes } from './oauth.ts';
import { describePages } from './pages-doc.ts';
import { renderReference } from './reference.ts';
import { registerSessionRoutes } from './sessions.ts';
import { registerUserRoutes } from './users.ts';

/** The REST adapter for third parties at /v1, described (from the same zod schemas) at /api/openapi. */
export function mountRest(app: OpenAPIHono<AppEnv>): void {
  const rest = new OpenAPIHono<AppEnv>({
    // A request that fails its schema is a 400 naming the field, in the one error envelope.
    defaultHook: (result) => {
      if (!result.success) {
        const issue = result.error.issues[0];
        const field = issue?.path.join('.') || result.target;
        throw new HttpError(400, 'invalid_request', `${field}: ${issue?.message ?? 'invalid'}`);
      }
    },
  });
  rest.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    description: 'kl_ses_… session token or kl_key_… API key',
  });
  rest.openAPIRegistry.registerComponent('securitySchemes', 'apiKeyHeader', {
    type: 'apiKey',
    in: 'header',
    name: 'x-api-key',
  });
  rest.openAPIRegistry.registerComponent('securitySchemes', 'cookieAuth', {
    type: 'apiKey',
    in: 'cookie',
    name: 'keyledger_session',
  });
  registerHealthRoutes(rest);
  registerAuthRoutes(rest);
  registerMagicLinkRoutes(rest);
  registerOauthRoutes(rest);
  registerUserRoutes(rest);
  registerApiKeyRoutes(rest);
  registerSessionRoutes(rest);
  registerAuditRoutes(rest);
  describePages(rest);
  const docConfig = (origin: string) => ({
    openapi: '3.1.0' as const,
    info: {
      title: 'Keyledger',
      version: '0.1.0',
      description: 'Authentication in which every action is an event in a hash-chained, signed log.',
    },
    servers: [{ url: origin }],
  });
  const document = (origin: string) => withPipelineErrors(rest.getOpenAPI31Document(docConfig(origin)));
  rest.get('/api/openapi', (c) => c.json(document(c.get('deps').config.publicUrl.origin)));
  rest.get('/api/reference', (c) => c.html(renderReference(document(c.get('deps').config.publicUrl.origin) as never)));
  app.route('/', rest);
}

const PIPELINE_ERRORS: Record<string, string> = {
  '400': 'Bad input: the message names the field (also: a credential in the query string, two Authorization headers)',
  '401': 'Missing, invalid or expired credentials',
  '403': 'Insufficient scope, an IP that is not allowed, or a failed Origin check',
  '429': 'Rate limited: see Retry-After',
  '503': 'Database unavailable',
};
const BODY_ERRORS: Record<string, string> = { '413': 'Body over 64 KiB', '415': 'Body is not application/json' };

type Doc = ReturnType<OpenAPIHono<AppEnv>['getOpenAPI31Document']>;

/**
 * Every /v1 route sits behind the shared pipeline, which can answer 400, 401, 403, 429 and 503 (and 413 and 415
 * where a body is accepted) before the route runs: the document says so for every such operation.
 */
function withPipelineErrors(doc: Doc): Doc {
  const errorContent = { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } };
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    if (!path.startsWith('/v1/')) continue;
    for (const method of ['get', 'post', 'put', 'patch', 'delete'] as const) {
      const op = (item as Record<string, { responses?: Record<string, unknown> } | undefined>)[method];
      if (!op?.responses) continue;
      const extra = method === 'get' ? PIPELINE_ERRORS : { ...PIPELINE_ERRORS, ...BODY_ERRORS };
      for (const [status, description] of Object.entries(extra))
        op.responses[status] ??= { description, content: errorContent };
    }
  }
  return doc;
}
