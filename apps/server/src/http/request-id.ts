import { randomBytes } from 'node:crypto';
import { createMiddleware } from 'hono/factory';

const INCOMING = /^[A-Za-z0-9._-]{1,128}$/;

export type RequestIdVariables = { requestId: string };

/** Every response carries X-Request-Id: a well-formed incoming one is kept, anything else replaced. */
export const requestId = createMiddleware<{ Variables: RequestIdVariables }>(async (c, next) => {
  const incoming = c.req.header('x-request-id');
  const id = incoming && INCOMING.test(incoming) ? incoming : `req_${randomBytes(12).toString('base64url')}`;
  c.set('requestId', id);
  c.header('X-Request-Id', id);
  await next();
});
