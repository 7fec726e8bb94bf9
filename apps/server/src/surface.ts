import {
  type ApiKeyView,
  type CreatedApiKey,
  type EventMeta,
  type Principal,
  requestMagicLink,
  type SessionView,
} from '@keyledger/core';
import type { UserRow } from '@keyledger/db';
import type { ServerDeps } from './deps.ts';

/**
 * What REST and tRPC share: the JSON each answers with (DESIGN §5 — ISO timestamps with milliseconds, never a
 * secret or hash but a key's plaintext once), and the not-owner probe behind their 404s.
 */
const iso = (d: Date): string => d.toISOString();
const isoOrNull = (d: Date | null | undefined): string | null => (d ? d.toISOString() : null);

export function userJson(u: UserRow) {
  return {
    id: u.id,
    email: u.email,
    name: u.name,
    role: u.role,
    disabled: u.disabled,
    email_verified: u.email_verified,
    created_at: iso(u.created_at),
  };
}

export function apiKeyJson(k: ApiKeyView) {
  return {
    id: k.id,
    name: k.name,
    start: k.start,
    scopes: k.scopes,
    created_at: iso(k.created_at),
    expires_at: isoOrNull(k.expires_at),
    ip_allowlist: k.ip_allowlist,
    last_used_at: isoOrNull(k.last_used_at),
  };
}

export function createdApiKeyJson(k: CreatedApiKey) {
  return { ...apiKeyJson(k), key: k.key };
}

export function sessionJson(s: SessionView) {
  return {
    id: s.id,
    current: s.current,
    method: s.method,
    ip: s.ip,
    user_agent: s.user_agent,
    created_at: iso(s.created_at),
    last_seen_at: isoOrNull(s.last_seen_at),
    expires_at: iso(s.expires_at),
  };
}

/**
 * After a not_found on the caller's own key or session: when the thing exists and belongs to someone else, log
 * `access.denied` `not_owner` (the caller still sees only a 404).
 */
export async function logIfNotOwner(
  deps: ServerDeps,
  meta: EventMeta,
  caller: string | null,
  resource: 'api_keys' | 'sessions',
  id: string,
): Promise<void> {
  const column = resource === 'api_keys' ? 'owner_id' : 'user_id';
  const row = await deps.core.db.selectFrom(resource).select(column).where('id', '=', id).executeTakeFirst();
  const owner = row ? (row as Record<string, string>)[column] : undefined;
  if (owner === undefined || owner === caller) return;
  await deps.rollup.record(
    'access.denied',
    `owner:${caller}`,
    { principal: caller, reason: 'not_owner', scope: null, resource: `${resource}/${id}`.slice(0, 256) },
    meta,
  );
}

/** How a user created without a password is invited: a magic link mailed in the same append, naming the inviter. */
export function invitationFrom(deps: ServerDeps, inviter: Principal | null | undefined, ip: string) {
  const invitedBy = inviter?.kind === 'user' ? (inviter.name ?? inviter.email) : 'An administrator';
  return { publicUrl: deps.config.publicUrl.origin, invitedBy, ip };
}

/**
 * `GET /v1/users/me` and tRPC `auth.me`: who is calling and how. Everything came with the credential's verification
 * (and its cache): no further query. An environment key answers with its principal (`env:…`, no email).
 */
export function meJson(p: Principal) {
  if (p.kind === 'env') {
    return {
      id: p.id,
      email: null,
      name: null,
      role: p.role,
      created_at: null,
      auth: { method: 'env_key' as const, scopes: [...p.scopes] },
    };
  }
  return {
    id: p.userId,
    email: p.email,
    name: p.name,
    role: p.role,
    created_at: p.createdAt.toISOString(),
    auth:
      p.auth === 'api_key'
        ? { method: 'api_key' as const, scopes: [...p.scopes], key_id: p.keyId }
        : { method: 'session' as const, scopes: [...p.scopes] },
  };
}

/**
 * `POST /v1/auth/magic-link` and tRPC `auth.requestMagicLink`: counted against the signed-in user, else the client
 * IP, padded to the usual issue time, and the mail worker kicked so the link leaves at once.
 */
export async function sendMagicLink(
  deps: ServerDeps,
  meta: EventMeta,
  input: { email: string; next: unknown; principal: Principal | null | undefined; clientIp: string },
): Promise<void> {
  await requestMagicLink(deps.core, meta, {
    email: input.email,
    next: input.next,
    requesterKey: input.principal?.kind === 'user' ? `user:${input.principal.userId}` : `ip:${input.clientIp}`,
    signup: deps.config.signup,
    publicUrl: deps.config.publicUrl.origin,
    timing: deps.magicLinkTiming,
  });
  void deps.mail?.kick();
}
