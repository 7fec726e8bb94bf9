import type { OpenAPIHono } from '@hono/zod-openapi';
import { fetchRequestHandler } from '@trpc/server/adapters/fetch';
import type { AppEnv } from '../http/variables.ts';
import { createContextInner } from './context.ts';
import { appRouter } from './router.ts';

/** tRPC over the fetch adapter at /trpc, after the shared HTTP pipeline (IP, limits, credential, Origin, rate). */
export function mountTrpc(app: OpenAPIHono<AppEnv>): void {
  app.all('/trpc/*', async (c) => {
    const resHeaders = new Headers();
    const response = await fetchRequestHandler({
      endpoint: '/trpc',
      req: c.req.raw,
      router: appRouter,
      createContext: () =>
        createContextInner({
          deps: c.get('deps'),
          principal: c.get('principal'),
          clientIp: c.get('clientIp'),
          requestId: c.get('requestId'),
          userAgent: c.req.header('user-agent'),
          credentialSource: c.get('credentialSource'),
          credential: c.get('credential'),
          resHeaders,
        }),
    });
    const headers = new Headers(response.headers);
    for (const [k, v] of resHeaders) headers.append(k, v);
    for (const [k, v] of c.res.headers) if (!headers.has(k)) headers.set(k, v);
    return new Response(response.body, { status: response.status, headers });
  });
}
