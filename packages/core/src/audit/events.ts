import { z } from 'zod';
import { defineEvent } from '../event-store/catalogue.ts';
import { isoTimestamp } from '../schemas.ts';

/** Roll-up fields: the first failure of a window is written with count 1, the rest as one event when it closes. */
const rollUp = {
  count: z.number().int().min(1),
  window_start: isoTimestamp.optional(),
  window_end: isoTimestamp.optional(),
};

export const authRejected = defineEvent('auth.rejected', 1, {
  credential: z.enum(['api_key', 'session', 'env_key']),
  reason: z.enum(['malformed', 'bad_checksum', 'unknown', 'expired', 'revoked', 'ip_not_allowed', 'disabled_user']),
  ...rollUp,
});
export const accessDenied = defineEvent('access.denied', 1, {
  principal: z.string().max(128).nullable(),
  reason: z.enum(['scope', 'not_owner', 'csrf', 'ip_not_allowed', 'rate_limited']),
  scope: z.string().max(64).nullable(),
  resource: z.string().max(256).nullable(),
  ...rollUp,
});

export const auditEvents = [authRejected, accessDenied] as const;
