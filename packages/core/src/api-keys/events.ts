import { z } from 'zod';
import { defineEvent } from '../event-store/catalogue.ts';
import { idField, isoTimestamp, scopeField, sha256Hex } from '../schemas.ts';

export const apiKeyCreated = defineEvent('api_key.created', 1, {
  key_id: idField,
  owner_id: idField,
  name: z.string().max(200).nullable(),
  scopes: z.array(scopeField).max(16),
  /** The first 12 characters, for display: `kl_key_` and 5 random characters, never enough to guess the rest. */
  start: z.string().regex(/^kl_key_[0-9A-Za-z]{5}$/),
  token_hash: sha256Hex,
  expires_at: isoTimestamp.nullable(),
  ip_allowlist: z.array(z.string().max(64)).max(100).nullable(),
  rotated_from: idField.nullable(),
});
export const apiKeyRotated = defineEvent('api_key.rotated', 1, {
  key_id: idField,
  new_key_id: idField,
  grace_until: isoTimestamp,
});
export const apiKeyRevoked = defineEvent('api_key.revoked', 1, {
  key_id: idField,
  reason: z.enum(['owner', 'admin', 'user_disabled', 'rotated', 'compromised']),
});

export const apiKeyEvents = [apiKeyCreated, apiKeyRotated, apiKeyRevoked] as const;
