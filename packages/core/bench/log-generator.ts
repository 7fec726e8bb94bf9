import type { Database } from '@keyledger/db';
import { type Kysely, sql } from 'kysely';
import { catalogue } from '../src/catalogue.ts';
import { eventHash, toHex, ZERO_HASH } from '../src/event-store/canonical.ts';
import { type EventMeta, eventMetaSchema } from '../src/event-store/catalogue.ts';

/** One generated event as the events table stores it, with its true hash chain. */
export interface GeneratedRow {
  seq: number;
  id: string;
  stream: string;
  stream_version: number;
  type: string;
  schema_version: number;
  dataJson: string;
  metaJson: string;
  occurredAt: string;
  prevHashHex: string;
  hashHex: string;
}

/** A small, fast, seeded PRNG (mulberry32), so the generated log is the same from run to run. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A ring of recent entity ids: new ones push out the oldest, so state (and stream versions) stay bounded. */
class Ring<T> {
  readonly #items: T[] = [];
  #next = 0;
  constructor(readonly capacity: number) {}
  /** Adds an item; returns the one it evicted, if any. */
  add(item: T): T | undefined {
    if (this.#items.length < this.capacity) {
      this.#items.push(item);
      return undefined;
    }
    const evicted = this.#items[this.#next];
    this.#items[this.#next] = item;
    this.#next = (this.#next + 1) % this.capacity;
    return evicted;
  }
  pick(rand: () => number): T | undefined {
    return this.#items.length === 0 ? undefined : this.#items[Math.floor(rand() * this.#items.length)];
  }
  get size(): number {
    return this.#items.length;
  }
}

const USER_AGENTS = [
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0',
  'keyledger-cli/0.1.0 node/20.19.0',
  'python-requests/2.31.0',
  'okhttp/4.12.0',
];
const NAMES = ['Ada Lovelace', 'Grace Hopper', 'Alan Turing', 'Edsger Dijkstra', 'Barbara Liskov', null];
const SCOPES = ['profile:read', 'keys:read', 'keys:write', 'sessions:read', 'audit:read', 'users:read'] as const;

const CROCKFORD = '0123456789abcdefghjkmnpqrstvwxyz';
const HEX = '0123456789abcdef';
/** Every 16-bit value as 4 hex digits. */
const BYTE_HEX = Array.from({ length: 65536 }, (_, i) => i.toString(16).padStart(4, '0'));

type Kind = 'user' | 'session' | 'api_key' | 'magic_link' | 'signin' | 'audit' | 'oauth';

/**
 * Weighted mix of the catalogue's event types, shaped like a busy auth service: mostly session traffic and
 * failed credentials, a trickle of sign-ups, keys and admin actions.
 */
const MIX: readonly [type: string, weight: number][] = [
  ['session.refreshed', 16],
  ['session.created', 13],
  ['session.extended', 10],
  ['auth.rejected', 9],
  ['signin.failed', 6],
  ['magic_link.issued', 6],
  ['magic_link.verified', 5],
  ['session.revoked', 5],
  ['access.denied', 4],
  ['user.registered', 3],
  ['api_key.created', 2.5],
  ['user.email_verified', 2],
  ['user.password_set', 1.5],
  ['api_key.revoked', 1.2],
  ['magic_link.rejected', 1],
  ['oauth.account_linked', 1],
  ['session.refresh_rejected', 0.7],
  ['user.role_changed', 0.6],
  ['api_key.rotated', 0.6],
  ['user.invited', 0.5],
  ['magic_link.rate_limited', 0.5],
  ['oauth.signin_failed', 0.5],
  ['user.disabled', 0.2],
  ['user.enabled', 0.1],
];

/**
 * Generates a real Keyledger log: valid catalogue events with consistent streams and stream versions, and the
 * true hash chain computed with the project's own `eventHash` (so `verifyChain` must accept every event).
 */
export class LogGenerator {
  readonly #rand: () => number;
  readonly #cumulative: number[];
  readonly #types: string[];
  readonly #versions = new Map<string, number>();
  readonly #users = new Ring<string>(20_000);
  readonly #sessions = new Ring<{ id: string; user: string }>(20_000);
  readonly #keys = new Ring<{ id: string; owner: string }>(5_000);
  readonly #links = new Ring<{ id: string; user: string | null }>(5_000);
  /** How many generated events were also checked against their zod schema and the meta schema. */
  readonly #validateFirst: number;
  #seq = 0;
  #prevHash: Uint8Array = ZERO_HASH;
  #ms: number;
  #n = 0;

  constructor(options: { seed?: number; start?: string; validateFirst?: number } = {}) {
    this.#rand = mulberry32(options.seed ?? 20261122);
    this.#ms = new Date(options.start ?? '2026-01-01T00:00:00.000Z').getTime();
    this.#validateFirst = options.validateFirst ?? 20_000;
    let sum = 0;
    this.#cumulative = MIX.map(([, w]) => (sum += w));
    this.#types = MIX.map(([t]) => t);
    for (const t of this.#types) if (!catalogue.has(t)) throw new Error(`${t} is not in the catalogue`);
  }

  get seq(): number {
    return this.#seq;
  }

  get headHash(): Uint8Array {
    return this.#prevHash;
  }

  /** The next `count` events of the log. */
  batch(count: number): GeneratedRow[] {
    const out: GeneratedRow[] = new Array(count);
    for (let i = 0; i < count; i++) out[i] = this.next();
    return out;
  }

  next(): GeneratedRow {
    // ~40 events a second on average, at irregular intervals.
    this.#ms += Math.floor(this.#rand() * 50);
    const { type, stream, data } = this.#event();
    const meta = this.#meta(type);
    const version = (this.#versions.get(stream) ?? 0) + 1;
    this.#versions.set(stream, version);
    const def = catalogue.get(type);
    if (!def) throw new Error(`${type} is not in the catalogue`);
    if (this.#n < this.#validateFirst) {
      def.data.parse(data);
      eventMetaSchema.parse(meta);
    }
    this.#n += 1;
    this.#seq += 1;
    const occurredAt = new Date(this.#ms).toISOString();
    const id = this.#uuidv7();
    const hash = eventHash(this.#prevHash, {
      seq: this.#seq,
      id,
      stream,
      stream_version: version,
      type,
      schema_version: def.schemaVersion,
      data,
      meta,
      occurred_at: occurredAt,
    });
    const row: GeneratedRow = {
      seq: this.#seq,
      id,
      stream,
      stream_version: version,
      type,
      schema_version: def.schemaVersion,
      // jsonb re-orders keys on the way in, so plain JSON text stores exactly what the canonical form would.
      dataJson: JSON.stringify(data),
      metaJson: JSON.stringify(meta),
      occurredAt,
      prevHashHex: toHex(this.#prevHash),
      hashHex: toHex(hash),
    };
    this.#prevHash = hash;
    return row;
  }

  #pickType(): string {
    const total = this.#cumulative.at(-1) as number;
    const r = this.#rand() * total;
    let lo = 0;
    let hi = this.#cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.#cumulative[mid] as number) > r) hi = mid;
      else lo = mid + 1;
    }
    return this.#types[lo] as string;
  }

  #hex64(): string {
    let s = '';
    for (let i = 0; i < 16; i++) s += BYTE_HEX[Math.floor(this.#rand() * 65536)];
    return s;
  }

  /**
   * The shapes of the project's ids (`uuidv7`, `typeId` in src/ids.ts) drawn from the seeded PRNG instead of
   * crypto.randomFillSync, which alone cost ~12 µs per generated event.
   */
  #uuidv7(): string {
    const ms = this.#ms.toString(16).padStart(12, '0');
    let r = '';
    for (let i = 0; i < 18; i++) r += HEX[Math.floor(this.#rand() * 16)];
    const variant = HEX[8 + Math.floor(this.#rand() * 4)];
    return `${ms.slice(0, 8)}-${ms.slice(8)}-7${r.slice(0, 3)}-${variant}${r.slice(3, 6)}-${r.slice(6)}`;
  }

  #typeId(prefix: string, ms: number): string {
    let out = '';
    let t = ms;
    for (let i = 0; i < 10; i++) {
      out = CROCKFORD[t % 32] + out;
      t = Math.floor(t / 32);
    }
    for (let i = 0; i < 16; i++) out += CROCKFORD[Math.floor(this.#rand() * 32)];
    return `${prefix}_${out}`;
  }

  #iso(offsetMs: number): string {
    return new Date(this.#ms + offsetMs).toISOString();
  }

  #email(user: string): string {
    return `${user.slice(-10)}@example.com`;
  }

  #stream(kind: Kind, id: string): string {
    return `${kind}-${id}`;
  }

  #retire(kind: Kind, id: string | undefined): void {
    if (id !== undefined) this.#versions.delete(this.#stream(kind, id));
  }

  #newUser(): string {
    const id = this.#typeId('user', this.#ms);
    this.#retire('user', this.#users.add(id));
    return id;
  }

  #user(): string {
    return this.#users.size < 50 ? this.#newUser() : (this.#users.pick(this.#rand) as string);
  }

  #session(): { id: string; user: string } {
    const s = this.#sessions.pick(this.#rand);
    if (s && this.#sessions.size >= 50) return s;
    const created = { id: this.#typeId('ses', this.#ms), user: this.#user() };
    this.#retire('session', this.#sessions.add(created)?.id);
    return created;
  }

  #key(): { id: string; owner: string } {
    const k = this.#keys.pick(this.#rand);
    if (k && this.#keys.size >= 20) return k;
    const created = { id: this.#typeId('key', this.#ms), owner: this.#user() };
    this.#retire('api_key', this.#keys.add(created)?.id);
    return created;
  }

  #link(): { id: string; user: string | null } {
    const l = this.#links.pick(this.#rand);
    if (l && this.#links.size >= 20) return l;
    const created = { id: this.#typeId('ml', this.#ms), user: this.#rand() < 0.8 ? this.#user() : null };
    this.#retire('magic_link', this.#links.add(created)?.id);
    return created;
  }

  #window(): { count: number; window_start?: string; window_end?: string } {
    if (this.#rand() < 0.7) return { count: 1 };
    return { count: 2 + Math.floor(this.#rand() * 400), window_start: this.#iso(-60_000), window_end: this.#iso(0) };
  }

  #event(): { type: string; stream: string; data: Record<string, unknown> } {
    const type = this.#pickType();
    const r = this.#rand;
    switch (type) {
      case 'user.registered': {
        const user = this.#newUser();
        const methods = ['password', 'magic_link', 'oauth', 'admin'] as const;
        return {
          type,
          stream: this.#stream('user', user),
          data: {
            user_id: user,
            email: this.#email(user),
            name: NAMES[Math.floor(r() * NAMES.length)] ?? null,
            role: r() < 0.05 ? 'admin' : 'member',
            method: methods[Math.floor(r() * methods.length)] as string,
          },
        };
      }
      case 'user.invited': {
        const user = this.#newUser();
        return {
          type,
          stream: this.#stream('user', user),
          data: { user_id: user, link_id: this.#typeId('ml', this.#ms) },
        };
      }
      case 'user.email_verified':
      case 'user.password_set':
      case 'user.disabled':
      case 'user.enabled': {
        const user = this.#user();
        return { type, stream: this.#stream('user', user), data: { user_id: user } };
      }
      case 'user.role_changed': {
        const user = this.#user();
        const up = r() < 0.5;
        return {
          type,
          stream: this.#stream('user', user),
          data: { user_id: user, from: up ? 'member' : 'admin', to: up ? 'admin' : 'member' },
        };
      }
      case 'signin.failed': {
        const user = this.#user();
        const reasons = ['unknown_user', 'bad_password', 'bad_password', 'disabled', 'throttled'] as const;
        return {
          type,
          stream: this.#stream('signin', user),
          data: { email: this.#email(user), reason: reasons[Math.floor(r() * reasons.length)] as string },
        };
      }
      case 'session.created': {
        const user = this.#user();
        const id = this.#typeId('ses', this.#ms);
        this.#retire('session', this.#sessions.add({ id, user })?.id);
        const methods = ['password', 'magic_link', 'oauth'] as const;
        return {
          type,
          stream: this.#stream('session', id),
          data: {
            session_id: id,
            user_id: user,
            method: methods[Math.floor(r() * methods.length)] as string,
            token_hash: this.#hex64(),
            expires_at: this.#iso(30 * 86_400_000),
          },
        };
      }
      case 'session.refreshed': {
        const s = this.#session();
        return {
          type,
          stream: this.#stream('session', s.id),
          data: { session_id: s.id, token_hash: this.#hex64(), expires_at: this.#iso(3_600_000) },
        };
      }
      case 'session.extended': {
        const s = this.#session();
        return {
          type,
          stream: this.#stream('session', s.id),
          data: { session_id: s.id, expires_at: this.#iso(30 * 86_400_000) },
        };
      }
      case 'session.revoked': {
        const s = this.#session();
        const reasons = ['signout', 'signout', 'user', 'admin', 'password_changed'] as const;
        return {
          type,
          stream: this.#stream('session', s.id),
          data: { session_id: s.id, reason: reasons[Math.floor(r() * reasons.length)] as string },
        };
      }
      case 'session.refresh_rejected': {
        const s = this.#session();
        const reasons = ['reused', 'expired', 'revoked'] as const;
        return {
          type,
          stream: this.#stream('session', s.id),
          data: { session_id: s.id, reason: reasons[Math.floor(r() * reasons.length)] as string },
        };
      }
      case 'api_key.created': {
        const owner = this.#user();
        const id = this.#typeId('key', this.#ms);
        this.#retire('api_key', this.#keys.add({ id, owner })?.id);
        const scopes = SCOPES.filter(() => r() < 0.4);
        return {
          type,
          stream: this.#stream('api_key', id),
          data: {
            key_id: id,
            owner_id: owner,
            name: r() < 0.8 ? `ci deploy ${Math.floor(r() * 100)}` : null,
            scopes,
            start: `kl_key_${this.#hex64().slice(0, 5)}`,
            token_hash: this.#hex64(),
            expires_at: r() < 0.5 ? this.#iso(90 * 86_400_000) : null,
            ip_allowlist: r() < 0.2 ? ['203.0.113.0/24', '2001:db8::/32'] : null,
            rotated_from: null,
          },
        };
      }
      case 'api_key.rotated': {
        const k = this.#key();
        return {
          type,
          stream: this.#stream('api_key', k.id),
          data: { key_id: k.id, new_key_id: this.#typeId('key', this.#ms), grace_until: this.#iso(3_600_000) },
        };
      }
      case 'api_key.revoked': {
        const k = this.#key();
        const reasons = ['owner', 'admin', 'rotated', 'compromised'] as const;
        return {
          type,
          stream: this.#stream('api_key', k.id),
          data: { key_id: k.id, reason: reasons[Math.floor(r() * reasons.length)] as string },
        };
      }
      case 'auth.rejected': {
        const credentials = ['api_key', 'api_key', 'session', 'env_key'] as const;
        const reasons = ['malformed', 'bad_checksum', 'unknown', 'expired', 'revoked', 'ip_not_allowed'] as const;
        return {
          type,
          stream: this.#stream('audit', `ip_198.51.100.${Math.floor(r() * 256)}`),
          data: {
            credential: credentials[Math.floor(r() * credentials.length)] as string,
            reason: reasons[Math.floor(r() * reasons.length)] as string,
            ...this.#window(),
          },
        };
      }
      case 'access.denied': {
        const k = this.#key();
        const reasons = ['scope', 'not_owner', 'csrf', 'ip_not_allowed', 'rate_limited'] as const;
        return {
          type,
          stream: this.#stream('audit', `principal_${k.id}`),
          data: {
            principal: k.id,
            reason: reasons[Math.floor(r() * reasons.length)] as string,
            scope: r() < 0.5 ? 'users:write' : null,
            resource: r() < 0.7 ? `/v1/users/${this.#user()}` : null,
            ...this.#window(),
          },
        };
      }
      case 'magic_link.issued': {
        const user = r() < 0.8 ? this.#user() : null;
        const id = this.#typeId('ml', this.#ms);
        this.#retire('magic_link', this.#links.add({ id, user })?.id);
        return {
          type,
          stream: this.#stream('magic_link', id),
          data: {
            link_id: id,
            email: user ? this.#email(user) : `new${Math.floor(r() * 1e6)}@example.org`,
            user_id: user,
            code_hash: this.#hex64(),
            expires_at: this.#iso(15 * 60_000),
            next: r() < 0.7 ? '/' : '/settings/api-keys',
          },
        };
      }
      case 'magic_link.verified': {
        const l = this.#link();
        return {
          type,
          stream: this.#stream('magic_link', l.id),
          data: { link_id: l.id, session_id: this.#typeId('ses', this.#ms) },
        };
      }
      case 'magic_link.rejected': {
        const l = this.#link();
        const reasons = ['used', 'expired', 'superseded'] as const;
        return {
          type,
          stream: this.#stream('magic_link', l.id),
          data: { link_id: l.id, reason: reasons[Math.floor(r() * reasons.length)] as string },
        };
      }
      case 'magic_link.rate_limited': {
        const user = this.#user();
        return {
          type,
          stream: this.#stream('magic_link', `limit_${user}`),
          data: { email: this.#email(user), scope: r() < 0.5 ? 'requester' : 'address' },
        };
      }
      case 'oauth.account_linked': {
        const user = this.#user();
        const subject = String(100_000_000_000 + Math.floor(r() * 1e11));
        return {
          type,
          stream: this.#stream('oauth', `google:${subject}`),
          data: {
            user_id: user,
            provider: 'google',
            issuer: 'https://accounts.google.com',
            subject,
            email: this.#email(user),
            email_verified: r() < 0.9,
          },
        };
      }
      case 'oauth.signin_failed': {
        const reasons = ['state_mismatch', 'id_token_invalid', 'access_denied', 'provider_unavailable'] as const;
        return {
          type,
          stream: this.#stream('oauth', `google:failures_${Math.floor(r() * 64)}`),
          data: { provider: 'google', reason: reasons[Math.floor(r() * reasons.length)] as string },
        };
      }
      default:
        throw new Error(`no generator for ${type}`);
    }
  }

  #meta(type: string): EventMeta {
    const r = this.#rand;
    const ip = `198.51.100.${Math.floor(r() * 256)}`;
    const ua = USER_AGENTS[Math.floor(r() * USER_AGENTS.length)] as string;
    const requestId = `req_${this.#hex64().slice(0, 20)}`;
    if (
      type === 'auth.rejected' ||
      type === 'signin.failed' ||
      type.startsWith('magic_link.') ||
      type === 'oauth.signin_failed'
    )
      return { actor: { type: 'anonymous', id: null }, via: 'rest', ip, user_agent: ua, request_id: requestId };
    if (type === 'session.extended')
      return { actor: { type: 'system', id: null }, via: 'system', ip: null, user_agent: null, request_id: null };
    const byKey = r() < 0.3;
    const via = (['web', 'trpc', 'rest', 'rest', 'cli'] as const)[Math.floor(r() * 5)] as EventMeta['via'];
    return {
      actor: byKey ? { type: 'api_key', id: this.#key().id } : { type: 'user', id: this.#user() },
      via: byKey ? 'rest' : via,
      ip,
      user_agent: ua,
      request_id: requestId,
    };
  }
}

/**
 * Writes `count` generated events with their true hash chain, in big multi-row inserts (one `insert … select
 * from unnest(…)` per chunk: 11 array parameters instead of 11 per row), generating the next chunk while the
 * database writes the current one, then moves the chain head to the last event (the log is in time order, so its
 * recorded lateness stays 0).
 */
export async function loadGeneratedLog(
  db: Kysely<Database>,
  count: number,
  options: { chunkSize?: number; onProgress?: (done: number) => void } = {},
): Promise<{ generateMs: number }> {
  const chunkSize = options.chunkSize ?? 10_000;
  const generator = new LogGenerator();
  let inserting: Promise<unknown> = Promise.resolve();
  let generateMs = 0;
  for (let done = 0; done < count; ) {
    const n = Math.min(chunkSize, count - done);
    const g0 = performance.now();
    const rows = generator.batch(n);
    generateMs += performance.now() - g0;
    await inserting;
    inserting = insertRows(db, rows);
    done += n;
    options.onProgress?.(done);
  }
  await inserting;
  await sql`update chain_head set seq = ${generator.seq}, hash = ${generator.headHash},
              latest_at = (select max(occurred_at) from events) where id`.execute(db);
  return { generateMs };
}

function insertRows(db: Kysely<Database>, rows: GeneratedRow[]): Promise<unknown> {
  const col = <K extends keyof GeneratedRow>(k: K) => rows.map((r) => r[k]);
  return sql`
    insert into events (seq, id, stream, stream_version, type, schema_version, data, meta, occurred_at, prev_hash, hash)
    select seq, id::uuid, stream, stream_version, type, schema_version, data::jsonb, meta::jsonb,
           occurred_at::timestamptz, decode(prev_hash, 'hex'), decode(hash, 'hex')
    from unnest(${col('seq')}::bigint[], ${col('id')}::text[], ${col('stream')}::text[],
                ${col('stream_version')}::int[], ${col('type')}::text[], ${col('schema_version')}::smallint[],
                ${col('dataJson')}::text[], ${col('metaJson')}::text[], ${col('occurredAt')}::text[],
                ${col('prevHashHex')}::text[], ${col('hashHex')}::text[])
      as u(seq, id, stream, stream_version, type, schema_version, data, meta, occurred_at, prev_hash, hash)`.execute(
    db,
  );
}
