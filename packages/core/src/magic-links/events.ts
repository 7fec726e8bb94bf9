import { z } from 'zod';
import { defineEvent } from '../event-store/catalogue.ts';
import { emailField, idField, isoTimestamp, sha256Hex } from '../schemas.ts';

export const magicLinkIssued = defineEvent('magic_link.issued', 1, {
  link_id: idField,
  email: emailField,
  user_id: idField.nullable(),
  code_hash: sha256Hex,
  expires_at: isoTimestamp,
  next: z.string().max(2048),
});
export const magicLinkVerified = defineEvent('magic_link.verified', 1, { link_id: idField, session_id: idField });
export const magicLinkRejected = defineEvent('magic_link.rejected', 1, {
  link_id: idField.nullable(),
  reason: z.enum(['used', 'expired', 'superseded', 'unknown']),
});
export const magicLinkRateLimited = defineEvent('magic_link.rate_limited', 1, {
  email: emailField,
  scope: z.enum(['requester', 'address']),
});

export const magicLinkEvents = [magicLinkIssued, magicLinkVerified, magicLinkRejected, magicLinkRateLimited] as const;
