import type { ApiKeyRow, Database } from '@keyledger/db';
import type { Transaction } from 'kysely';
import type { Principal } from '../auth/principal.ts';
import { generateToken, hashToken, tokenStart } from '../credentials/tokens.ts';
import { DomainError } from '../errors.ts';
import type { EventMeta } from '../event-store/catalogue.ts';
import { type CoreContext, runCommand } from '../event-store/command.ts';
import { typeId } from '../ids.ts';
import { isIpOrCidr } from '../net/ip.ts';
import type { Scope } from '../schemas.ts';
import {
  type ApiKeyCommand,
  apiKeyDecider,
  apiKeyStream,
  DEFAULT_GRACE_SECONDS,
  MAX_GRACE_SECONDS,
  type RevokeKeyReason,
} from './decider.ts';

export interface ApiKeyView {
  readonly id: string;
  readonly name: string | null;
  readonly start: string;
  readonly scopes: Scope[];
  readonly created_at: Date;
  readonly expires_at: Date | null;
  readonly ip_allowlist: string[] | null;
  readonly last_used_at: Date | null;
  readonly rotated_from: string | null;
  readonly grace_until: Date | null;
}

export interface CreatedApiKey extends ApiKeyView {
  /** The plaintext key: returned once, never stored, never logged. */
  readonly key: string;
}

function toView(row: ApiKeyRow, lastUsed: Date | null): ApiKeyView {
  return {
    id: row.id,
    name: row.name,
    start: row.start,
    scopes: row.scopes as Scope[],
    created_at: row.created_at,
    expires_at: row.expires_at,
    ip_allowlist: row.ip_allowlist,
    last_used_at: lastUsed,
    rotated_from: row.rotated_from,
    grace_until: row.grace_until,
  };
}

function ownerOf(principal: Principal): string {
  if (principal.kind !== 'user') {
    throw new DomainError('forbidden', 'Environment keys cannot own API keys; sign in as a user', {
      details: { reason: 'env_key_cannot_own' },
    });
  }
  return principal.userId;
}

export interface CreateApiKeyInput {
  readonly name?: string | null | undefined;
  readonly scopes?: Scope[] | undefined;
  readonly expiresAt?: Date | null | undefined;
  readonly ipAllowlist?: string[] | null | undefined;
}

interface PreparedKey {
  readonly key: string;
  readonly keyId: string;
  readonly command: Extract<ApiKeyCommand, { type: 'CreateApiKey' }>;
}

/** Validates a new key's settings against its owner and mints it (nothing written yet). */
function prepareKey(
  ctx: CoreContext,
  principal: Principal,
  input: CreateApiKeyInput,
  rotatedFrom: string | null,
): PreparedKey {
  const ownerId = ownerOf(principal);
  const scopes = [...new Set(input.scopes ?? principal.scopes)];
  const beyond = scopes.filter((s) => !principal.scopes.includes(s));
  if (beyond.length > 0) {
    throw new DomainError('forbidden', `A key cannot have scopes its owner lacks: ${beyond.join(', ')}`, {
      details: { reason: 'scope_exceeds_owner', scopes: beyond },
    });
  }
  if (input.expiresAt && input.expiresAt <= ctx.clock.now()) {
    throw new DomainError('invalid_input', 'expires_at must be in the future', { details: { field: 'expires_at' } });
  }
  for (const entry of input.ipAllowlist ?? []) {
    if (!isIpOrCidr(entry)) {
      throw new DomainError('invalid_input', `ip_allowlist: "${entry}" is not an IP address or CIDR range`, {
        details: { field: 'ip_allowlist' },
      });
    }
  }
  const key = generateToken('key');
  const keyId = typeId('key');
  return {
    key,
    keyId,
    command: {
      type: 'CreateApiKey',
      data: {
        keyId,
        ownerId,
        name: input.name ?? null,
        scopes,
        start: tokenStart(key),
        tokenHash: hashToken(key),
        expiresAt: input.expiresAt ?? null,
        ipAllowlist: input.ipAllowlist && input.ipAllowlist.length > 0 ? input.ipAllowlist : null,
        rotatedFrom,
      },
    },
  };
}

async function created(ctx: CoreContext, prepared: PreparedKey): Promise<CreatedApiKey> {
  const row = await ctx.db
    .selectFrom('api_keys')
    .selectAll()
    .where('id', '=', prepared.keyId)
    .executeTakeFirstOrThrow();
  return { ...toView(row, null), key: prepared.key };
}

/** Creates a key for the caller. Its scopes default to, and may not exceed, the caller's own. */
export async function createApiKey(
  ctx: CoreContext,
  meta: EventMeta,
  principal: Principal,
  input: CreateApiKeyInput,
  options: { within?: ((trx: Transaction<Database>, keyId: string) => Promise<void>) | undefined } = {},
): Promise<CreatedApiKey> {
  const prepared = prepareKey(ctx, principal, input, null);
  const within = options.within;
  await runCommand(ctx, apiKeyStream(prepared.keyId), apiKeyDecider, prepared.command, meta, {
    within: within ? (trx) => within(trx, prepared.keyId) : undefined,
  });
  return created(ctx, prepared);
}

/** The caller's own key, or not_found (someone else's key is indistinguishable from a missing one). */
export async function getOwnApiKey(
  ctx: Pick<CoreContext, 'db'>,
  principal: Principal,
  keyId: string,
): Promise<ApiKeyView> {
  const row = await ctx.db
    .selectFrom('api_keys as k')
    .leftJoin('api_key_usage as u', 'u.key_id', 'k.id')
    .selectAll('k')
    .select('u.last_used_at')
    .where('k.id', '=', keyId)
    .where('k.revoked_at', 'is', null)
    .executeTakeFirst();
  if (!row || principal.kind !== 'user' || row.owner_id !== principal.userId)
    throw new DomainError('not_found', 'API key not found');
  return toView(row, row.last_used_at ?? null);
}

export async function listOwnApiKeys(
  ctx: Pick<CoreContext, 'db' | 'clock'>,
  principal: Principal,
  options: { after?: string | undefined; limit: number },
): Promise<{ data: ApiKeyView[]; next_cursor: string | null }> {
  if (principal.kind !== 'user') return { data: [], next_cursor: null };
  let q = ctx.db
    .selectFrom('api_keys as k')
    .leftJoin('api_key_usage as u', 'u.key_id', 'k.id')
    .selectAll('k')
    .select('u.last_used_at')
    .where('k.owner_id', '=', principal.userId)
    .where('k.revoked_at', 'is', null);
  if (options.after) q = q.where('k.id', '<', options.after);
  const rows = await q
    .orderBy('k.id', 'desc')
    .limit(options.limit + 1)
    .execute();
  const data = rows.slice(0, options.limit).map((r) => toView(r, r.last_used_at ?? null));
  return { data, next_cursor: rows.length > options.limit ? (data.at(-1)?.id ?? null) : null };
}

/**
 * Issues a successor with the same name, scopes (as far as the caller still holds them) and allowlist, in the same
 * transaction as the old key's `api_key.rotated`; the old key keeps working for `graceSeconds`.
 */
export async function rotateApiKey(
  ctx: CoreContext,
  meta: EventMeta,
  principal: Principal,
  keyId: string,
  graceSeconds = DEFAULT_GRACE_SECONDS,
): Promise<CreatedApiKey> {
  if (!Number.isInteger(graceSeconds) || graceSeconds < 0 || graceSeconds > MAX_GRACE_SECONDS) {
    throw new DomainError('invalid_input', `grace_seconds must be a whole number from 0 to ${MAX_GRACE_SECONDS}`, {
      details: { field: 'grace_seconds' },
    });
  }
  const old = await getOwnApiKey(ctx, principal, keyId);
  const now = ctx.clock.now();
  // An expired key is dead: no grace to give it, and its successor would have to inherit a lifetime already over.
  if (old.expires_at && old.expires_at <= now) {
    throw new DomainError('conflict', 'This key has expired: create a new key instead of rotating it', {
      details: { reason: 'key_expired' },
    });
  }
  const prepared = prepareKey(
    ctx,
    principal,
    {
      name: old.name,
      scopes: old.scopes.filter((s) => principal.scopes.includes(s)),
      expiresAt: old.expires_at,
      ipAllowlist: old.ip_allowlist,
    },
    keyId,
  );
  await runCommand(
    ctx,
    apiKeyStream(keyId),
    apiKeyDecider,
    {
      type: 'RotateApiKey',
      data: { newKeyId: prepared.keyId, graceUntil: new Date(now.getTime() + graceSeconds * 1000) },
    },
    meta,
    {
      also: async () => [
        {
          stream: apiKeyStream(prepared.keyId),
          expectedVersion: 0,
          events: apiKeyDecider.decide(prepared.command, null),
        },
      ],
    },
  );
  return created(ctx, prepared);
}

export async function revokeApiKey(
  ctx: CoreContext,
  meta: EventMeta,
  principal: Principal,
  keyId: string,
  reason: RevokeKeyReason = 'owner',
): Promise<void> {
  await getOwnApiKey(ctx, principal, keyId);
  await runCommand(ctx, apiKeyStream(keyId), apiKeyDecider, { type: 'RevokeApiKey', data: { reason } }, meta);
}
