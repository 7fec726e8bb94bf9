import { DomainError, idField, isoTimestamp, type Principal } from '@keyledger/core';
import { generateCookie } from 'hono/cookie';
import { z } from 'zod';
import { sessionCookieName, sessionCookieOptions } from '../../http/cookies.ts';
import { logIfNotOwner } from '../../surface.ts';
import type { TrpcContext } from '../context.ts';

/**
 * The JSON shapes the tRPC routers answer with: the same fields as the REST contract (DESIGN §5), every timestamp
 * an ISO 8601 UTC string with milliseconds, never a secret or a hash except a key's plaintext once at creation.
 * Outputs are plain `z.object`s, so a stray column (a hash) would be stripped, not sent.
 */
export const Id = idField;
export const Timestamp = isoTimestamp;
export const Limit = z.number().int().min(1).max(1000).default(50);
/** Bounded so a caller cannot make the server hash megabytes; the policy (8–256 code points) is core's. */
export const Password = z.string().min(1).max(1024);
export const Email = z.email({ error: 'Invalid email address' }).max(320);
export const Name = z.string().trim().min(1).max(200);

// The same shapes as REST: one definition serves both (and names them in the OpenAPI document).
export { ApiKey, CreatedApiKey as CreatedApiKeyOut, Me, Session, User } from '../../rest/schemas.ts';

export const SignedIn = z.object({ user_id: z.string(), session_id: z.string(), expires_at: Timestamp });

export const Ok = z.object({ ok: z.literal(true) });
export const Revoked = z.object({ revoked: z.number().int().min(0) });

export const listOf = <T extends z.ZodType>(item: T) =>
  z.object({ data: z.array(item), next_cursor: z.string().nullable() });

export { apiKeyJson, createdApiKeyJson, sessionJson, userJson } from '../../surface.ts';

export type UserPrincipal = Extract<Principal, { kind: 'user' }>;
export type SessionPrincipal = Extract<Principal, { auth: 'session' }>;

/** The caller as a user (an environment key owns no sessions or keys): else FORBIDDEN `user_required`. */
export function userOf(p: Principal): UserPrincipal {
  if (p.kind !== 'user') {
    throw new DomainError('forbidden', 'This needs a user credential, not an environment key', {
      details: { reason: 'user_required' },
    });
  }
  return p;
}

/** The caller's own session (cookie or Bearer session token): else FORBIDDEN `session_required`. */
export function sessionOf(p: Principal): SessionPrincipal {
  if (p.auth !== 'session') {
    throw new DomainError('forbidden', 'This needs a signed-in session, not an API key', {
      details: { reason: 'session_required' },
    });
  }
  return p;
}

/** Sets the browser session cookie (name and attributes from http/cookies.ts) on the response. */
export function setSessionCookie(ctx: TrpcContext, token: string, expiresAt: Date): void {
  const { config } = ctx.deps;
  ctx.resHeaders.append(
    'Set-Cookie',
    generateCookie(sessionCookieName(config), token, sessionCookieOptions(config, expiresAt)),
  );
}

/** Tells the browser to forget the session cookie. */
export function clearSessionCookie(ctx: TrpcContext): void {
  const { config } = ctx.deps;
  ctx.resHeaders.append(
    'Set-Cookie',
    generateCookie(sessionCookieName(config), '', { ...sessionCookieOptions(config, new Date(0)), maxAge: 0 }),
  );
}

/**
 * Runs a lookup of the caller's own thing; when it fails as not_found but the thing exists and belongs to someone
 * else, logs `access.denied` `not_owner` (DESIGN §3). The caller still sees only NOT_FOUND.
 */
export async function ownedOrNotFound<T>(
  ctx: TrpcContext,
  resource: 'api_keys' | 'sessions',
  id: string,
  run: () => Promise<T>,
): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof DomainError && error.code === 'not_found') {
      const p = ctx.principal;
      await logIfNotOwner(ctx.deps, ctx.meta, p ? (p.kind === 'env' ? p.id : p.userId) : null, resource, id);
    }
    throw error;
  }
}
