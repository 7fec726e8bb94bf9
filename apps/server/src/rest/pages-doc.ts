import { type OpenAPIHono, z } from '@hono/zod-openapi';
import type { AppEnv } from '../http/variables.ts';

const html = (description: string) => ({ description, content: { 'text/html': { schema: z.string() } } });

/**
 * The server-rendered magic-link pages are plain Hono routes (they answer HTML, not the JSON envelope); they are
 * described here so the OpenAPI document covers every route a client or a mail link reaches.
 */
export function describePages(rest: OpenAPIHono<AppEnv>): void {
  rest.openAPIRegistry.registerPath({
    method: 'get',
    path: '/auth/magic',
    tags: ['auth'],
    summary: 'The confirm page a mailed link opens; it consumes nothing (mail scanners follow links)',
    request: {
      query: z.object({
        code: z.string().openapi({ description: 'The 32-character code from the mail' }),
        email: z.string().openapi({ description: 'The address the link was sent to' }),
      }),
    },
    responses: {
      200: html('Asks to confirm the sign-in with a button that POSTs the form'),
      400: html('A malformed link: a page offering a new one'),
    },
  });
  rest.openAPIRegistry.registerPath({
    method: 'post',
    path: '/auth/magic',
    tags: ['auth'],
    summary: 'Consumes the link, sets the session cookie and redirects to the next stored at issue (Origin checked)',
    request: {
      body: {
        required: true,
        content: {
          'application/x-www-form-urlencoded': {
            schema: z.object({ email: z.string(), code: z.string() }),
          },
        },
      },
    },
    responses: {
      303: {
        description: 'Signed in: to the stored next (default /), with the keyledger_session cookie',
        headers: { Location: { schema: { type: 'string' } } },
      },
      400: html('A refused link (used, expired, superseded, unknown): a page offering a new link'),
      403: html('The Origin is not the public origin'),
    },
  });
}
