import { createHash } from 'node:crypto';
import { canonicalJson, DomainError, type Principal } from '@keyledger/core';
import type { Database } from '@keyledger/db';
import type { Context } from 'hono';
import type { Transaction } from 'kysely';
import { HttpError } from '../http/errors.ts';
import { type AppEnv, metaOf } from '../http/variables.ts';
import { logIfNotOwner } from '../surface.ts';
import { ErrorSchema } from './schemas.ts';

const ERROR_TEXT: Record<number, string> = {
  400: 'Bad input: the message names the field',
  401: 'Missing, invalid or expired credentials',
  403: 'Valid credentials without the scope, from a refused IP, or a failed Origin check',
  404: 'Not found, or not yours',
  409: 'Conflict',
  413: 'Body over 64 KiB',
  415: 'Body is not application/json',
  429: 'Rate limited: see Retry-After',
  503: 'Database unavailable',
};

/** OpenAPI entries for the error responses a route can give, all in the one envelope. */
export function errors(...statuses: number[]) {
  return Object.fromEntries(
    [...new Set([...statuses, 429, 503])].map((s) => [
      s,
      { description: ERROR_TEXT[s] ?? 'Error', content: { 'application/json': { schema: ErrorSchema } } },
    ]),
  );
}

export const AUTHED: Record<string, string[]>[] = [{ bearerAuth: [] }, { apiKeyHeader: [] }, { cookieAuth: [] }];

export function meta(c: Context<AppEnv>) {
  return metaOf(c.var, 'rest', c.req.header('user-agent'));
}

export function principalOf(c: Context<AppEnv>): Principal {
  const p = c.get('principal');
  if (!p) throw new HttpError(401, 'unauthorized', 'Authentication required', { 'WWW-Authenticate': 'Bearer' });
  return p;
}

/** The caller as a signed-in user (not an environment key), for things a user owns. */
export function userOf(c: Context<AppEnv>): Extract<Principal, { kind: 'user' }> {
  const p = principalOf(c);
  if (p.kind !== 'user')
    throw new HttpError(403, 'user_required', 'This needs a user credential, not an environment key');
  return p;
}

/**
 * A 404 that hides whether the thing exists. When it exists but belongs to someone else, the attempt is logged as
 * access.denied `not_owner` (the caller still sees only a 404).
 */
export async function notFoundUnlessOwner(
  c: Context<AppEnv>,
  resource: 'api_keys' | 'sessions',
  id: string,
  error: unknown,
): Promise<never> {
  if (error instanceof DomainError && error.code === 'not_found') {
    const p = c.get('principal');
    await logIfNotOwner(c.get('deps'), meta(c), p ? (p.kind === 'env' ? p.id : p.userId) : null, resource, id);
  }
  throw error;
}

/**
 * Idempotency-Key for creations: a repeat with the same key and body within 24 h creates nothing and replays the
 * original resource (200, Idempotent-Replayed: true, never a secret); the same key with another body is a 409. The
 * record is written in the creation's own transaction, so two racing repeats cannot both create.
 */
export async function idempotent<T>(
  c: Context<AppEnv>,
  route: string,
  body: unknown,
  create: (within: ((trx: Transaction<Database>, resourceId: string) => Promise<void>) | undefined) => Promise<T>,
  replay: (resourceId: string) => Promise<unknown>,
): Promise<{ replayed: false; value: T } | { replayed: true; value: unknown }> {
  const key = c.req.header('idempotency-key');
  if (key === undefined) return { replayed: false, value: await create(undefined) };
  if (!/^[\x21-\x7e]{1,255}$/.test(key))
    throw new HttpError(400, 'invalid_idempotency_key', 'Idempotency-Key must be 1-255 visible ASCII characters');
  const p = principalOf(c);
  const principal = p.kind === 'env' ? p.id : p.userId;
  const requestHash = createHash('sha256')
    .update(canonicalJson(body ?? null))
    .digest('hex');
  const { db, clock } = c.get('deps').core;
  const lookup = async () => {
    const row = await db
      .selectFrom('idempotency_keys')
      .select(['request_hash', 'resource_id', 'created_at'])
      .where('principal', '=', principal)
      .where('route', '=', route)
      .where('key', '=', key)
      .executeTakeFirst();
    if (!row || clock.now().getTime() - row.created_at.getTime() > 24 * 3600_000) return undefined;
    if (row.request_hash !== requestHash)
      throw new HttpError(409, 'idempotency_key_reused', 'This Idempotency-Key was used with a different request');
    return row.resource_id;
  };
  const previous = await lookup();
  if (previous) return { replayed: true, value: await replay(previous) };
  try {
    const value = await create(async (trx, resourceId) => {
      await trx
        .insertInto('idempotency_keys')
        .values({ principal, route, key, request_hash: requestHash, resource_id: resourceId, created_at: clock.now() })
        .onConflict((oc) =>
          oc
            .columns(['principal', 'route', 'key'])
            .doUpdateSet({ request_hash: requestHash, resource_id: resourceId, created_at: clock.now() })
            .where('idempotency_keys.created_at', '<', new Date(clock.now().getTime() - 24 * 3600_000)),
        )
        .executeTakeFirstOrThrow()
        .then((r) => {
          if (Number(r.numInsertedOrUpdatedRows ?? 0n) === 0) throw new DomainError('conflict', 'idempotency race');
        });
    });
    return { replayed: false, value };
  } catch (error) {
    // A concurrent repeat committed first: answer as its replay.
    const winner = await lookup().catch(() => undefined);
    if (winner) return { replayed: true, value: await replay(winner) };
    throw error;
  }
}
export const SESSION_ONLY: Record<string, string[]>[] = [{ bearerAuth: [] }, { cookieAuth: [] }];
