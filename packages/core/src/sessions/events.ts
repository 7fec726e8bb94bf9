import { z } from 'zod';
import { defineEvent } from '../event-store/catalogue.ts';
import { idField, isoTimestamp, sha256Hex } from '../schemas.ts';

export const sessionCreated = defineEvent('session.created', 1, {
  session_id: idField,
  user_id: idField,
  method: z.enum(['password', 'magic_link', 'oauth', 'setup']),
  token_hash: sha256Hex,
  expires_at: isoTimestamp,
});
export const sessionRefreshed = defineEvent('session.refreshed', 1, {
  session_id: idField,
  token_hash: sha256Hex,
  expires_at: isoTimestamp,
});
export const sessionRefreshRejected = defineEvent('session.refresh_rejected', 1, {
  session_id: idField,
  reason: z.enum(['reused', 'expired', 'revoked']),
});
export const sessionRevoked = defineEvent('session.revoked', 1, {
  session_id: idField,
  reason: z.enum(['signout', 'user', 'admin', 'reuse', 'password_changed', 'user_disabled']),
});
export const sessionExtended = defineEvent('session.extended', 1, { session_id: idField, expires_at: isoTimestamp });

export const sessionEvents = [
  sessionCreated,
  sessionRefreshed,
  sessionRefreshRejected,
  sessionRevoked,
  sessionExtended,
] as const;
