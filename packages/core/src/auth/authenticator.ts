import { createHash } from 'node:crypto';
import type { Database, DbHandle } from '@keyledger/db';
import { type Kysely, sql } from 'kysely';
import type { Clock } from '../clock.ts';
import { checkToken, hashToken, secretsEqual } from '../credentials/tokens.ts';
import { EVENTS_CHANNEL, type EventStore } from '../event-store/event-store.ts';
import { createIpMatcher } from '../net/ip.ts';
import type { Role, Scope } from '../schemas.ts';
import { ENV_READ_SCOPES, type Principal, roleScopes } from './principal.ts';

export type CredentialKind = 'api_key' | 'session' | 'env_key';
export type AuthFailureReason =
  | 'malformed'
  | 'bad_checksum'
  | 'unknown'
  | 'expired'
  | 'revoked'
  | 'disabled_user'
  | 'ip_not_allowed';

export type AuthResult =
  | { readonly ok: true; readonly principal: Principal; readonly credential: CredentialKind }
  | { readonly ok: false; readonly credential: CredentialKind; readonly reason: AuthFailureReason };

export interface AuthenticatorOptions {
  readonly db: Kysely<Database>;
  readonly clock: Clock;
  readonly adminApiKey?: string | undefined;
  readonly apiKeys?: readonly string[];
  /** How long a verified credential is trusted without asking the database: the revocation bound's backstop. */
  readonly cacheTtlMs?: number;
  /** How often last-used / last-seen times are written (DESIGN: at most 60 s behind). */
  readonly activityFlushMs?: number;
}

/** Event types after which a cached verification may be wrong. */
const INVALIDATING = new Set([
  'session.revoked',
  'session.refreshed',
  'api_key.revoked',
  'api_key.rotated',
  'user.disabled',
  'user.role_changed',
  // The principal carries the name (GET /v1/users/me).
  'user.renamed',
]);

interface CachedCredential {
  readonly principal: Principal;
  readonly credential: CredentialKind;
  /** The earliest instant the credential could stop being valid by itself (expiry, grace end) or the TTL ends. */
  readonly validUntil: number;
  readonly ipAllowed: ((ip: string) => boolean) | null;
}

interface EnvKey {
  readonly hash: Buffer;
  readonly principal: Principal;
}

/**
 * Turns a presented credential into a principal. Never writes on this path: last use is batched. A cache keyed by
 * the token's hash answers repeat requests; it is emptied in this process the moment an invalidating event commits,
 * in other processes on NOTIFY, and every entry dies after `cacheTtlMs` (1 s) regardless, which bounds revocation.
 */
export class Authenticator {
  readonly #db: Kysely<Database>;
  readonly #clock: Clock;
  readonly #ttl: number;
  readonly #envKeys: EnvKey[];
  readonly #cache = new Map<string, CachedCredential>();
  /**
   * Lookups under way, by token hash: when a popular credential's entry expires, the requests that find it expired
   * share one database lookup instead of each making their own (50 at once under load).
   */
  readonly #inflight = new Map<string, Promise<CachedCredential | AuthResult>>();
  /** Bumped by every eviction: a lookup that started before one is used once but not cached. */
  #generation = 0;
  readonly #keyUse = new Map<string, Date>();
  readonly #sessionSeen = new Map<string, { at: Date; ip: string | null; userAgent: string | null }>();
  readonly #flushMs: number;
  #timer: NodeJS.Timeout | undefined;
  #stopListening: (() => Promise<void>) | undefined;
  #unsubscribe: (() => void) | undefined;

  constructor(options: AuthenticatorOptions) {
    this.#db = options.db;
    this.#clock = options.clock;
    this.#ttl = options.cacheTtlMs ?? 1000;
    this.#flushMs = options.activityFlushMs ?? 30_000;
    this.#envKeys = [];
    if (options.adminApiKey) {
      this.#envKeys.push({
        hash: sha256(options.adminApiKey),
        principal: { kind: 'env', auth: 'env_key', id: 'env:admin', role: 'admin', scopes: roleScopes('admin') },
      });
    }
    for (const key of options.apiKeys ?? []) {
      const hash = sha256(key);
      this.#envKeys.push({
        hash,
        principal: {
          kind: 'env',
          auth: 'env_key',
          id: `env:${hash.toString('hex').slice(0, 8)}`,
          role: 'member',
          scopes: ENV_READ_SCOPES,
        },
      });
    }
  }

  /** Subscribes to commits in this process and NOTIFY from the others; starts the activity flusher. */
  async start(store: EventStore, handle: DbHandle): Promise<void> {
    this.#unsubscribe = store.onAppended((_head, events) => {
      if (events.some((e) => INVALIDATING.has(e.type))) this.clearCache();
    });
    this.#stopListening = await handle.listen(EVENTS_CHANNEL, (payload) => {
      const types = payload.split(' ')[1]?.split(',') ?? [];
      if (types.some((t) => INVALIDATING.has(t))) this.clearCache();
    });
    this.#timer = setInterval(() => void this.flushActivity().catch(() => {}), this.#flushMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#unsubscribe?.();
    if (this.#timer) clearInterval(this.#timer);
    await this.#stopListening?.();
    await this.flushActivity().catch(() => {});
  }

  clearCache(): void {
    this.#generation += 1;
    this.#inflight.clear();
    this.#cache.clear();
  }

  async authenticate(token: string, context: { ip: string; userAgent?: string | null }): Promise<AuthResult> {
    const now = this.#clock.now();
    if (token.startsWith('kl_')) {
      const hash = hashToken(token);
      const cached = this.#cache.get(hash);
      let entry: CachedCredential | AuthResult;
      if (cached && cached.validUntil > now.getTime()) {
        // Only a token that passed its checksum and its lookup is ever cached, under the hash of the whole token.
        entry = cached;
      } else {
        const check = checkToken(token);
        if (!check.ok)
          return { ok: false, credential: token.startsWith('kl_ses_') ? 'session' : 'api_key', reason: check.reason };
        const generation = this.#generation;
        let lookup = this.#inflight.get(hash);
        if (!lookup) {
          lookup = check.kind === 'key' ? this.#lookupKey(hash, now) : this.#lookupSession(hash, now);
          const shared = lookup;
          this.#inflight.set(hash, shared);
          void shared.then(
            () => this.#inflight.get(hash) === shared && this.#inflight.delete(hash),
            () => this.#inflight.get(hash) === shared && this.#inflight.delete(hash),
          );
        }
        entry = await lookup;
        if ('validUntil' in entry) {
          if (generation === this.#generation) this.#cache.set(hash, entry);
        } else if (!entry.ok && entry.reason === 'unknown') {
          // Stored keys first, then the environment keys (which may be any string of 32+ characters).
          return this.#envKey(token) ?? entry;
        }
      }
      if (!('validUntil' in entry)) return entry;
      if (entry.ipAllowed && !entry.ipAllowed(context.ip))
        return { ok: false, credential: entry.credential, reason: 'ip_not_allowed' };
      this.#recordUse(entry.principal, now, context);
      return { ok: true, principal: entry.principal, credential: entry.credential };
    }
    return (
      this.#envKey(token) ?? { ok: false, credential: 'env_key', reason: token.length < 32 ? 'malformed' : 'unknown' }
    );
  }

  #envKey(token: string): AuthResult | undefined {
    if (token.length < 32 || this.#envKeys.length === 0) return undefined;
    const presented = sha256(token);
    let match: EnvKey | undefined;
    // Compare against every key, constant-time, so timing does not tell which (or whether one) matched.
    for (const key of this.#envKeys)
      if (secretsEqual(key.hash.toString('hex'), presented.toString('hex'))) match ??= key;
    return match ? { ok: true, principal: match.principal, credential: 'env_key' } : undefined;
  }

  async #lookupKey(hash: string, now: Date): Promise<CachedCredential | AuthResult> {
    const row = await this.#db
      .selectFrom('api_keys as k')
      .innerJoin('users as u', 'u.id', 'k.owner_id')
      .select([
        'k.id',
        'k.owner_id',
        'k.scopes',
        'k.expires_at',
        'k.ip_allowlist',
        'k.grace_until',
        'k.rotated_to',
        'k.revoked_at',
        'u.email',
        'u.name',
        'u.created_at as user_created_at',
        'u.role',
        'u.disabled',
      ])
      .where('k.token_hash', '=', hash)
      .executeTakeFirst();
    const fail = (reason: AuthFailureReason): AuthResult => ({ ok: false, credential: 'api_key', reason });
    if (!row) return fail('unknown');
    if (row.revoked_at) return fail('revoked');
    if (row.expires_at && row.expires_at <= now) return fail('expired');
    if (row.rotated_to && row.grace_until && row.grace_until <= now) return fail('expired');
    if (row.disabled) return fail('disabled_user');
    const allowed = new Set(roleScopes(row.role as Role));
    const principal: Principal = {
      kind: 'user',
      auth: 'api_key',
      userId: row.owner_id,
      email: row.email,
      name: row.name,
      createdAt: row.user_created_at,
      role: row.role as Role,
      keyId: row.id,
      scopes: (row.scopes as Scope[]).filter((s) => allowed.has(s)),
    };
    return {
      principal,
      credential: 'api_key',
      validUntil: Math.min(
        now.getTime() + this.#ttl,
        row.expires_at?.getTime() ?? Infinity,
        row.rotated_to ? (row.grace_until?.getTime() ?? Infinity) : Infinity,
      ),
      ipAllowed: row.ip_allowlist && row.ip_allowlist.length > 0 ? createIpMatcher(row.ip_allowlist) : null,
    };
  }

  async #lookupSession(hash: string, now: Date): Promise<CachedCredential | AuthResult> {
    const row = await this.#db
      .selectFrom('sessions as s')
      .innerJoin('users as u', 'u.id', 's.user_id')
      .select([
        's.id',
        's.user_id',
        's.token_hash',
        's.kind',
        's.prev_valid_until',
        's.expires_at',
        's.revoked_at',
        'u.email',
        'u.name',
        'u.created_at as user_created_at',
        'u.role',
        'u.disabled',
      ])
      .where((eb) =>
        eb.or([
          eb('s.token_hash', '=', hash),
          eb.and([eb('s.prev_token_hash', '=', hash), eb('s.prev_valid_until', '>', now)]),
        ]),
      )
      .executeTakeFirst();
    const fail = (reason: AuthFailureReason): AuthResult => ({ ok: false, credential: 'session', reason });
    if (!row) return fail('unknown');
    if (row.revoked_at) return fail('revoked');
    if (row.expires_at <= now) return fail('expired');
    if (row.disabled) return fail('disabled_user');
    const isPrevious = row.token_hash !== hash;
    const principal: Principal = {
      kind: 'user',
      auth: 'session',
      userId: row.user_id,
      email: row.email,
      name: row.name,
      createdAt: row.user_created_at,
      role: row.role as Role,
      sessionId: row.id,
      sessionKind: row.kind,
      sessionExpiresAt: row.expires_at,
      scopes: roleScopes(row.role as Role),
    };
    return {
      principal,
      credential: 'session',
      validUntil: Math.min(
        now.getTime() + this.#ttl,
        row.expires_at.getTime(),
        isPrevious ? (row.prev_valid_until?.getTime() ?? 0) : Infinity,
      ),
      ipAllowed: null,
    };
  }

  #recordUse(p: Principal, at: Date, context: { ip: string; userAgent?: string | null }): void {
    if (p.kind !== 'user') return;
    if (p.auth === 'api_key') this.#keyUse.set(p.keyId, at);
    else {
      // The same client again (the usual case): only the time moves, without a new entry per request.
      const seen = this.#sessionSeen.get(p.sessionId);
      const userAgent = context.userAgent?.slice(0, 512) ?? null;
      if (seen && seen.ip === context.ip && seen.userAgent === userAgent) seen.at = at;
      else this.#sessionSeen.set(p.sessionId, { at, ip: context.ip, userAgent });
    }
  }

  /** Writes the batched last-used and last-seen times (a few statements, whatever the request rate). */
  async flushActivity(): Promise<void> {
    const keys = [...this.#keyUse];
    const sessions = [...this.#sessionSeen];
    this.#keyUse.clear();
    this.#sessionSeen.clear();
    if (keys.length > 0) {
      await sql`insert into api_key_usage (key_id, last_used_at)
        select * from unnest(${keys.map(([k]) => k)}::text[], ${keys.map(([, at]) => at.toISOString())}::timestamptz[])
        on conflict (key_id) do update set last_used_at = greatest(api_key_usage.last_used_at, excluded.last_used_at)`.execute(
        this.#db,
      );
    }
    if (sessions.length > 0) {
      await sql`insert into session_activity (session_id, last_seen_at, ip, user_agent)
        select * from unnest(${sessions.map(([s]) => s)}::text[], ${sessions.map(([, v]) => v.at.toISOString())}::timestamptz[],
                             ${sessions.map(([, v]) => v.ip)}::text[], ${sessions.map(([, v]) => v.userAgent)}::text[])
        on conflict (session_id) do update set last_seen_at = excluded.last_seen_at, ip = excluded.ip, user_agent = excluded.user_agent
        where session_activity.last_seen_at <= excluded.last_seen_at`.execute(this.#db);
    }
  }
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}
