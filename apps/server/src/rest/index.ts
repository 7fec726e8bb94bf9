import { OpenAPIHono } from '@hono/zod-openapi';
import { HttpError } from '../http/errors.ts';
import type { AppEnv } from '../http/variables.ts';
import { registerApiKeyRoutes } from './api-keys.ts';
import { registerAuditRoutes } from './audit.ts';
import { registerAuthRoutes } from './auth.ts';
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
  registerAuthRoutes(rest);
  registerUserRoutes(rest);
  registerApiKeyRoutes(rest);
  registerSessionRoutes(rest);
  registerAuditRoutes(rest);
  const docConfig = (origin: string) => ({
    openapi: '3.1.0' as const,
    info: {
      title: 'Keyledger',
      version: '0.1.0',
      description: 'Authentication in which every action is an event in a hash-chained, signed log.',
    },
    servers: [{ url: origin }],
  });
  rest.doc31('/api/openapi', (c) => docConfig(c.var.deps.config.publicUrl.origin));
  rest.get('/api/reference', (c) =>
    c.html(renderReference(rest.getOpenAPI31Document(docConfig(c.var.deps.config.publicUrl.origin)) as never)),
  );
  app.route('/', rest);
}
