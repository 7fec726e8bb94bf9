import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { verifyMagicLink } from '@keyledger/core';
import type { AppEnv } from '../http/variables.ts';
import { sendMagicLink } from '../surface.ts';
import { errors, meta } from './common.ts';
import { TokenResponse } from './schemas.ts';

const json = <T extends z.ZodTypeAny>(schema: T) => ({ content: { 'application/json': { schema } }, required: true });

const MagicLinkBody = z
  .object({
    email: z.string().min(1).max(320),
    // Checked by the core (DESIGN §5 rules, 400 invalid_next); anything but a string is refused there too.
    next: z.unknown().optional().openapi({ type: 'string', example: '/settings' }),
  })
  .openapi('MagicLinkRequest');
const MagicLinkVerifyBody = z
  .object({ email: z.string().min(1).max(320), code: z.string().min(1).max(64) })
  .openapi('MagicLinkVerify');

const requestLink = createRoute({
  method: 'post',
  path: '/v1/auth/magic-link',
  tags: ['auth'],
  summary: 'Send a sign-in link by mail (the same answer for known and unknown addresses)',
  request: { body: json(MagicLinkBody) },
  responses: {
    200: {
      description: 'Sent (or silently not, for an address that gets no link)',
      content: { 'application/json': { schema: z.object({ status: z.literal('sent') }).openapi('MagicLinkSent') } },
    },
    ...errors(400, 413, 415, 429),
  },
});

const verifyLink = createRoute({
  method: 'post',
  path: '/v1/auth/magic-link/verify',
  tags: ['auth'],
  summary: 'Exchange a link code for an access token (single use)',
  request: { body: json(MagicLinkVerifyBody) },
  responses: {
    200: { description: 'An access token (1 h)', content: { 'application/json': { schema: TokenResponse } } },
    ...errors(400, 401, 413, 415),
  },
});

export function registerMagicLinkRoutes(rest: OpenAPIHono<AppEnv>): void {
  rest.openapi(requestLink, async (c) => {
    const body = c.req.valid('json');
    await sendMagicLink(c.get('deps'), meta(c), {
      email: body.email,
      next: body.next,
      principal: c.get('principal'),
      clientIp: c.get('clientIp'),
    });
    return c.json({ status: 'sent' as const }, 200);
  });

  rest.openapi(verifyLink, async (c) => {
    const body = c.req.valid('json');
    const s = await verifyMagicLink(c.get('deps').core, meta(c), {
      email: body.email,
      code: body.code,
      lifetime: 'api',
    });
    return c.json({ access_token: s.token, token_type: 'bearer' as const, expires_at: s.expiresAt.toISOString() }, 200);
  });
}
