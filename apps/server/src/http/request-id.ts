import { randomFillSync } from 'node:crypto';
import { createMiddleware } from 'hono/factory';

const INCOMING = /^[A-Za-z0-9._-]{1,128}$/;

export type RequestIdVariables = { requestId: string };

// 12 random bytes per id (16 base64url characters), drawn from a pool refilled every 256 ids: one call into the
// system's random source per 256 requests instead of one per request, as crypto.randomUUID() does.
const POOL_IDS = 256;
const pool = Buffer.alloc(12 * POOL_IDS);
let next = POOL_IDS;

function randomId(): string {
  if (next === POOL_IDS) {
    randomFillSync(pool);
    next = 0;
  }
  const start = 12 * next++;
  return pool.toString('base64url', start, start + 12);
}

/** Every response carries X-Request-Id: a well-formed incoming one is kept, anything else replaced. */
export const requestId = createMiddleware<{ Variables: RequestIdVariables }>(async (c, next) => {
  const incoming = c.req.header('x-request-id');
  const id = incoming && INCOMING.test(incoming) ? incoming : `req_${randomId()}`;
  c.set('requestId', id);
  c.header('X-Request-Id', id);
  await next();
});
