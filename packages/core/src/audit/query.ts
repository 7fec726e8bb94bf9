import type { Database, EventRow } from '@keyledger/db';
import { type Kysely, type SelectQueryBuilder, sql } from 'kysely';
import type { Principal } from '../auth/principal.ts';
import { toStoredEvent, typeMatches } from '../event-store/read.ts';
import type { StoredEvent } from '../event-store/types.ts';

/** Event types that record something refused or failed; every other type is a success. */
export const FAILURE_TYPES = [
  'signin.failed',
  'session.refresh_rejected',
  'magic_link.rejected',
  'magic_link.rate_limited',
  'oauth.signin_failed',
  'auth.rejected',
  'access.denied',
] as const;

export interface AuditFilter {
  /** Exact types or prefixes written `api_key.*`. */
  readonly types?: readonly string[] | undefined;
  /** A principal id: a user, a key, or `env:…`. */
  readonly actor?: string | undefined;
  /** The user the event is about. */
  readonly subject?: string | undefined;
  readonly stream?: string | undefined;
  readonly ip?: string | undefined;
  readonly outcome?: 'success' | 'failure' | undefined;
  /** Inclusive. */
  readonly since?: Date | undefined;
  /** Exclusive. */
  readonly until?: Date | undefined;
}

export interface AuditPage {
  /** Exclusive seq cursor in the direction of `order`. */
  readonly after?: number | undefined;
  readonly order?: 'asc' | 'desc' | undefined;
  readonly limit?: number | undefined;
}

type EventQuery = SelectQueryBuilder<Database, 'events', EventRow>;

/** The filtered events a viewer may see: admins every event, anyone else the events about themselves. */
export function auditQuery(db: Kysely<Database>, viewer: Principal, filter: AuditFilter): EventQuery {
  let q = db.selectFrom('events').selectAll() as EventQuery;
  if (viewer.role !== 'admin') {
    const self = viewer.kind === 'user' ? viewer.userId : viewer.id;
    q = q.where('seq', 'in', db.selectFrom('event_subjects').select('seq').where('user_id', '=', self));
  }
  if (filter.types && filter.types.length > 0) q = q.where(typeMatches(filter.types));
  if (filter.actor) q = q.where(sql<string>`meta->'actor'->>'id'`, '=', filter.actor);
  if (filter.subject)
    q = q.where('seq', 'in', db.selectFrom('event_subjects').select('seq').where('user_id', '=', filter.subject));
  if (filter.stream) q = q.where('stream', '=', filter.stream);
  if (filter.ip) q = q.where(sql<string>`meta->>'ip'`, '=', filter.ip);
  if (filter.outcome === 'failure') q = q.where('type', 'in', [...FAILURE_TYPES]);
  if (filter.outcome === 'success') q = q.where('type', 'not in', [...FAILURE_TYPES]);
  if (filter.since) q = q.where('occurred_at', '>=', filter.since);
  if (filter.until) q = q.where('occurred_at', '<', filter.until);
  return q;
}

/**
 * A time range, also as a range of seq (ADR 17). With L the most any event's occurred_at has ever been earlier than
 * one appended before it (`chain_head.max_lateness_ms`): every event at or after `since` comes after any event f
 * with occurred_at < since − L, and every event before `until` comes before any event g with occurred_at ≥ until + L.
 * One such f and g are found by a probe each of the occurred_at index, so a range in the middle of the log starts
 * and stops there instead of walking the log from one end (200 ms for an hour in a million events before, measured
 * in apps/server/bench/audit.ts). The occurred_at conditions stay, so the bound only narrows the walk.
 */
function boundedByTime(q: EventQuery, filter: AuditFilter): EventQuery {
  const lateness = sql`(select max_lateness_ms from chain_head where id) * interval '1 millisecond'`;
  if (filter.since) {
    const since = filter.since.toISOString();
    q = q.where(
      'seq',
      '>',
      sql<number>`coalesce((select f.seq from events f
        where f.occurred_at < cast(${since} as timestamptz) - ${lateness} order by f.occurred_at desc limit 1), 0)`,
    );
  }
  if (filter.until) {
    const until = filter.until.toISOString();
    q = q.where(
      'seq',
      '<',
      sql<number>`coalesce((select g.seq from events g
        where g.occurred_at >= cast(${until} as timestamptz) + ${lateness} order by g.occurred_at limit 1),
        9223372036854775807)`,
    );
  }
  return q;
}

/** One keyset page by seq; `next_cursor` is the `after` for the next page, or null at the end. */
export async function queryAuditEvents(
  db: Kysely<Database>,
  viewer: Principal,
  filter: AuditFilter,
  page: AuditPage = {},
): Promise<{ data: StoredEvent[]; next_cursor: number | null }> {
  const order = page.order ?? 'asc';
  const limit = Math.min(Math.max(page.limit ?? 50, 1), 1000);
  let q = boundedByTime(auditQuery(db, viewer, filter), filter);
  if (page.after !== undefined) q = q.where('seq', order === 'asc' ? '>' : '<', page.after);
  const rows = await q
    .orderBy('seq', order)
    .limit(limit + 1)
    .execute();
  const data = rows.slice(0, limit).map(toStoredEvent);
  return { data, next_cursor: rows.length > limit ? (data.at(-1)?.seq ?? null) : null };
}

/** One event by id, if the viewer may see it. */
export async function getAuditEvent(
  db: Kysely<Database>,
  viewer: Principal,
  id: string,
): Promise<StoredEvent | undefined> {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) return undefined;
  const row = await auditQuery(db, viewer, {}).where('id', '=', id).executeTakeFirst();
  return row ? toStoredEvent(row) : undefined;
}

/** Streams every matching event in seq order, a page at a time (constant memory). */
export async function* streamAuditEvents(
  db: Kysely<Database>,
  viewer: Principal,
  filter: AuditFilter,
  batch = 2000,
): AsyncGenerator<StoredEvent> {
  let after = 0;
  while (true) {
    const rows = await boundedByTime(auditQuery(db, viewer, filter), filter)
      .where('seq', '>', after)
      .orderBy('seq')
      .limit(batch)
      .execute();
    for (const row of rows) yield toStoredEvent(row);
    if (rows.length < batch) return;
    after = Number(rows.at(-1)?.seq);
  }
}

/** Events per type per hour, for charts. */
export async function countEventsByHour(
  db: Kysely<Database>,
  viewer: Principal,
  filter: AuditFilter,
): Promise<{ hour: string; type: string; count: number }[]> {
  const rows = await db
    .selectFrom(auditQuery(db, viewer, filter).as('e'))
    .select([
      sql<string>`to_char(date_trunc('hour', e.occurred_at at time zone 'UTC'), 'YYYY-MM-DD"T"HH24:00:00.000"Z"')`.as(
        'hour',
      ),
      'e.type',
      sql<number>`count(*)::int`.as('count'),
    ])
    .groupBy(['hour', 'e.type'])
    .orderBy('hour')
    .orderBy('e.type')
    .execute();
  return rows.map((r) => ({ hour: r.hour, type: r.type, count: Number(r.count) }));
}
