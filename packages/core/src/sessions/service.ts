import { createHmac } from 'node:crypto';
import { sql } from 'kysely';
import { loadServerSecret } from '../auth/server-secrets.ts';
import { checkToken, generateToken, hashToken, tokenFromBody } from '../credentials/tokens.ts';
import { DomainError } from '../errors.ts';
import type { EventMeta } from '../event-store/catalogue.ts';
import { type CoreContext, runCommand } from '../event-store/command.ts';
import { typeId } from '../ids.ts';
import { type RevokeReason, sessionDecider, sessionStream } from './decider.ts';

/** Browser sessions live 30 days, renewed (same token) once half used; API tokens 1 h, renewed by refresh. */
export const BROWSER_SESSION_MS = 30 * 24 * 3600 * 1000;
export const API_SESSION_MS = 3600 * 1000;
export type SessionLifetime = 'browser' | 'api';
export type SessionMethod = 'password' | 'magic_link' | 'oauth' | 'setup';

export interface IssuedSession {
  readonly token: string;
  readonly sessionId: string;
  readonly userId: string;
  readonly expiresAt: Date;
}

/** A new session (a new id and token on every sign-in, so a planted session id is worth nothing). */
export async function createSession(
  ctx: CoreContext,
  meta: EventMeta,
  input: { userId: string; method: SessionMethod; lifetime: SessionLifetime },
): Promise<IssuedSession> {
  const token = generateToken('session');
  const sessionId = typeId('ses');
  const expiresAt = new Date(
    ctx.clock.now().getTime() + (input.lifetime === 'browser' ? BROWSER_SESSION_MS : API_SESSION_MS),
  );
  await runCommand(
    ctx,
    sessionStream(sessionId),
    sessionDecider,
    {
      type: 'CreateSession',
      data: { sessionId, userId: input.userId, method: input.method, tokenHash: hashToken(token), expiresAt },
    },
    meta,
  );
  return { token, sessionId, userId: input.userId, expiresAt };
}

const refreshKeys = new WeakMap<object, Promise<Uint8Array>>();

/**
 * The successor of a token is an HMAC of it under a server secret shared through the database: every instance
 * derives the same successor, so concurrent refreshes with one token agree, and no token is ever stored.
 */
async function successorOf(ctx: CoreContext, token: string): Promise<string> {
  let key = refreshKeys.get(ctx.db);
  if (!key) {
    key = loadServerSecret(ctx.db, 'session_refresh', ctx.clock.now());
    refreshKeys.set(ctx.db, key);
  }
  const mac = createHmac('sha256', await key)
    .update(token)
    .digest();
  let n = BigInt(`0x${mac.toString('hex')}`);
  const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  let body = '';
  // The low 30 base62 digits of a 256-bit value: 178 bits, uniform to within 2^-78.
  for (let i = 0; i < 30; i++) {
    body = alphabet[Number(n % 62n)] + body;
    n /= 62n;
  }
  return tokenFromBody('session', body);
}

/** Refresh: rotates the token. The previous one keeps working for 10 s and refreshes to the same successor. */
export async function refreshSession(
  ctx: CoreContext,
  meta: EventMeta,
  token: string,
): Promise<{ token: string; expiresAt: Date }> {
  const check = checkToken(token);
  if (!check.ok || check.kind !== 'session') {
    throw new DomainError('invalid_input', 'Refresh takes a session token', {
      details: { reason: 'not_a_session_token' },
    });
  }
  const presentedHash = hashToken(token);
  let row = await ctx.db
    .selectFrom('sessions')
    .select('id')
    .where((eb) => eb.or([eb('token_hash', '=', presentedHash), eb('prev_token_hash', '=', presentedHash)]))
    .executeTakeFirst();
  // Neither the current token nor the previous one: a token issued earlier still names its session in the log.
  row ??= await ctx.db
    .selectFrom('events')
    .select(sql<string>`data->>'session_id'`.as('id'))
    .where('type', 'in', ['session.created', 'session.refreshed'])
    .where(sql<string>`data->>'token_hash'`, '=', presentedHash)
    .limit(1)
    .executeTakeFirst();
  if (!row) throw new DomainError('unauthorized', 'Invalid or expired token');
  const successor = await successorOf(ctx, token);
  const now = ctx.clock.now();
  const { state, result } = await runCommand(
    ctx,
    sessionStream(row.id),
    sessionDecider,
    {
      type: 'RefreshSession',
      data: {
        presentedHash,
        successorHash: hashToken(successor),
        now,
        expiresAt: new Date(now.getTime() + API_SESSION_MS),
        // Found either way, the token was issued for this session (a refresh racing this one may have moved it
        // from current to previous, or from previous to older, since the read).
        issuedForSession: true,
      },
    },
    meta,
  );
  const rejected = result?.events.some((e) => e.type === 'session.refresh_rejected');
  if (rejected || !state || state.revoked || state.tokenHash !== hashToken(successor)) {
    throw new DomainError('unauthorized', 'Invalid or expired token');
  }
  return { token: successor, expiresAt: state.expiresAt };
}

export async function revokeSession(
  ctx: CoreContext,
  meta: EventMeta,
  sessionId: string,
  reason: RevokeReason,
): Promise<void> {
  await runCommand(ctx, sessionStream(sessionId), sessionDecider, { type: 'RevokeSession', data: { reason } }, meta);
}

/** Revokes every live session of a user except one (the caller's own), in one transaction. */
export async function revokeOtherSessions(
  ctx: CoreContext,
  meta: EventMeta,
  userId: string,
  exceptSessionId: string | null,
): Promise<number> {
  const sessions = await ctx.db
    .selectFrom('sessions')
    .select('id')
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null)
    .$if(exceptSessionId !== null, (q) => q.where('id', '!=', exceptSessionId as string))
    .execute();
  if (sessions.length === 0) return 0;
  await ctx.store.append({
    streams: sessions.map((s) => ({
      stream: sessionStream(s.id),
      expectedVersion: 'any' as const,
      events: [{ type: 'session.revoked', data: { session_id: s.id, reason: 'user' } }],
    })),
    meta,
    occurredAt: ctx.clock.now(),
  });
  return sessions.length;
}

/** Sliding renewal for browser sessions: once half the 30 days are used, push the expiry out (same token). */
export async function extendIfHalfUsed(
  ctx: CoreContext,
  meta: EventMeta,
  sessionId: string,
  expiresAt: Date,
): Promise<Date | null> {
  const now = ctx.clock.now();
  if (expiresAt.getTime() - now.getTime() > BROWSER_SESSION_MS / 2) return null;
  const next = new Date(now.getTime() + BROWSER_SESSION_MS);
  await runCommand(
    ctx,
    sessionStream(sessionId),
    sessionDecider,
    { type: 'ExtendSession', data: { expiresAt: next } },
    meta,
  );
  return next;
}

export interface SessionView {
  readonly id: string;
  readonly current: boolean;
  readonly method: string;
  readonly ip: string | null;
  readonly user_agent: string | null;
  readonly created_at: Date;
  readonly last_seen_at: Date | null;
  readonly expires_at: Date;
}

/** A user's live sessions, newest first, with the batched last-seen activity. */
export async function listSessions(
  ctx: Pick<CoreContext, 'db' | 'clock'>,
  userId: string,
  currentSessionId: string | null,
): Promise<SessionView[]> {
  const rows = await ctx.db
    .selectFrom('sessions as s')
    .leftJoin('session_activity as a', 'a.session_id', 's.id')
    .select([
      's.id',
      's.method',
      's.created_at',
      's.expires_at',
      's.created_ip',
      's.created_user_agent',
      'a.last_seen_at',
      'a.ip',
      'a.user_agent',
    ])
    .where('s.user_id', '=', userId)
    .where('s.revoked_at', 'is', null)
    .where('s.expires_at', '>', ctx.clock.now())
    .orderBy('s.created_at', 'desc')
    .orderBy('s.id', 'desc')
    .execute();
  return rows.map((r) => ({
    id: r.id,
    current: r.id === currentSessionId,
    method: r.method,
    ip: r.ip ?? r.created_ip,
    user_agent: r.user_agent ?? r.created_user_agent,
    created_at: r.created_at,
    last_seen_at: r.last_seen_at ?? null,
    expires_at: r.expires_at,
  }));
}
