import { OpenAPIHono } from '@hono/zod-openapi';
import { secureHeaders } from 'hono/secure-headers';
import type { ServerDeps } from './deps.ts';
import { baseContext, errorJson, surfacePipeline, toErrorResponse } from './http/pipeline.ts';
import { requestId } from './http/request-id.ts';
import { MemoRouter } from './http/router.ts';
import type { AppEnv } from './http/variables.ts';
import { registerMagicLinkPages } from './pages/magic.ts';
import { registerSetupPage } from './pages/setup.ts';
import { mountRest } from './rest/index.ts';
import { mountTrpc } from './trpc/mount.ts';
import { serveWebUi } from './web/static.ts';

export type { AppEnv } from './http/variables.ts';

export function createApp(deps: ServerDeps): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({ router: new MemoRouter() });
  app.use('*', requestId);
  app.use('*', secureHeaders({ crossOriginResourcePolicy: 'same-origin', referrerPolicy: 'no-referrer' }));
  app.use('*', baseContext(deps));

  // Each surface's pipeline: allowed IPs, body limits, credential → principal, Origin check, rate limit.
  app.use('/setup', surfacePipeline(deps, { via: null, json: false }));
  app.use('/v1/*', surfacePipeline(deps, { via: 'rest', json: true }));
  app.use('/trpc/*', surfacePipeline(deps, { via: 'trpc', json: true }));
  app.use('/auth/*', surfacePipeline(deps, { via: 'web', json: false }));

  mountRest(app);
  registerSetupPage(app);
  registerMagicLinkPages(app);
  mountTrpc(app);
  serveWebUi(app);

  // A known path asked with another method is a 405 naming the allowed ones; anything else a 404.
  const routes = app.routes
    .filter((r) => r.method !== 'ALL')
    .map((r) => ({
      method: r.method,
      pattern: new RegExp(`^${r.path.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/:[^/]+/g, '[^/]+')}$`),
    }));
  app.notFound((c) => {
    const allowed = [...new Set(routes.filter((r) => r.pattern.test(c.req.path)).map((r) => r.method))];
    if (allowed.length > 0 && !allowed.includes(c.req.method)) {
      return errorJson(c, 405, 'method_not_allowed', `${c.req.method} is not allowed here`, {
        Allow: allowed.join(', '),
      });
    }
    return errorJson(c, 404, 'not_found', 'Not found');
  });
  app.onError((error, c) => toErrorResponse(error, c));
  return app;
}
