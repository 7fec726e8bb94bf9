import {
  createApiKey,
  getOwnApiKey,
  listOwnApiKeys,
  MAX_GRACE_SECONDS,
  revokeApiKey,
  rotateApiKey,
  scopeField,
} from '@keyledger/core';
import { z } from 'zod';
import { router, scopedProcedure } from '../init.ts';
import {
  ApiKey,
  apiKeyJson,
  CreatedApiKeyOut,
  createdApiKeyJson,
  Id,
  Limit,
  listOf,
  Name,
  Ok,
  ownedOrNotFound,
  userOf,
} from './shared.ts';

/** The caller's own API keys. The plaintext key is in the create and rotate answers only. */
export const apiKeysRouter = router({
  list: scopedProcedure('keys:read')
    .input(z.strictObject({ after: Id.optional(), limit: Limit }).prefault({}))
    .output(listOf(ApiKey))
    .query(async ({ ctx, input }) => {
      const page = await listOwnApiKeys(ctx.deps.core, userOf(ctx.principal), input);
      return { data: page.data.map(apiKeyJson), next_cursor: page.next_cursor };
    }),

  get: scopedProcedure('keys:read')
    .input(z.strictObject({ id: Id }))
    .output(ApiKey)
    .query(async ({ ctx, input }) => {
      const p = userOf(ctx.principal);
      return apiKeyJson(
        await ownedOrNotFound(ctx, 'api_keys', input.id, () => getOwnApiKey(ctx.deps.core, p, input.id)),
      );
    }),

  /** Scopes default to, and may not exceed, the caller's own (FORBIDDEN `scope_exceeds_owner`). */
  create: scopedProcedure('keys:write')
    .input(
      z
        .strictObject({
          name: Name.optional(),
          scopes: z.array(scopeField).max(16).optional(),
          expires_at: z.iso.datetime({ offset: true }).nullable().optional(),
          ip_allowlist: z.array(z.string().max(64)).max(100).optional(),
        })
        .prefault({}),
    )
    .output(CreatedApiKeyOut)
    .mutation(async ({ ctx, input }) => {
      const key = await createApiKey(ctx.deps.core, ctx.meta, userOf(ctx.principal), {
        name: input.name ?? null,
        scopes: input.scopes,
        expiresAt: input.expires_at ? new Date(input.expires_at) : null,
        ipAllowlist: input.ip_allowlist ?? null,
      });
      return createdApiKeyJson(key);
    }),

  /** A successor, shown once; the old key keeps working for `grace_seconds` (default 3600, 0 ends it now). */
  rotate: scopedProcedure('keys:write')
    .input(z.strictObject({ id: Id, grace_seconds: z.number().int().min(0).max(MAX_GRACE_SECONDS).optional() }))
    .output(CreatedApiKeyOut)
    .mutation(async ({ ctx, input }) => {
      const p = userOf(ctx.principal);
      const key = await ownedOrNotFound(ctx, 'api_keys', input.id, () =>
        rotateApiKey(ctx.deps.core, ctx.meta, p, input.id, input.grace_seconds),
      );
      return createdApiKeyJson(key);
    }),

  /** Revoked at once; an already revoked key, like someone else's, is NOT_FOUND. */
  revoke: scopedProcedure('keys:write')
    .input(z.strictObject({ id: Id }))
    .output(Ok)
    .mutation(async ({ ctx, input }) => {
      const p = userOf(ctx.principal);
      await ownedOrNotFound(ctx, 'api_keys', input.id, () => revokeApiKey(ctx.deps.core, ctx.meta, p, input.id));
      return { ok: true as const };
    }),
});
