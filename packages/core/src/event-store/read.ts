import type { Database, EventRow } from '@keyledger/db';
import { type ExpressionBuilder, type SelectQueryBuilder, sql } from 'kysely';
import type { EventMeta } from './catalogue.ts';
import type { ChainHead, DbOrTrx, StoredEvent } from './types.ts';

export function toStoredEvent(row: EventRow): StoredEvent {
  return {
    seq: Number(row.seq),
    id: row.id,
    stream: row.stream,
    stream_version: row.stream_version,
    type: row.type,
    schema_version: row.schema_version,
    data: row.data,
    meta: row.meta as EventMeta,
    occurred_at: row.occurred_at,
    prev_hash: new Uint8Array(row.prev_hash),
    hash: new Uint8Array(row.hash),
  };
}

const EVENT_COLUMNS = [
  'seq',
  'id',
  'stream',
  'stream_version',
  'type',
  'schema_version',
  'data',
  'meta',
  'occurred_at',
  'tx_id',
  'prev_hash',
  'hash',
] as const;

/** A stream's events in version order, from `fromVersion` (inclusive). */
export async function readStream(
  db: DbOrTrx,
  stream: string,
  options: { fromVersion?: number } = {},
): Promise<StoredEvent[]> {
  const rows = await db
    .selectFrom('events')
    .select(EVENT_COLUMNS)
    .where('stream', '=', stream)
    .where('stream_version', '>=', options.fromVersion ?? 1)
    .orderBy('stream_version')
    .execute();
  return rows.map(toStoredEvent);
}

export interface ReadEventsFilter {
  /** Exclusive seq cursor in the direction of `order`. */
  readonly after?: number;
  readonly order?: 'asc' | 'desc';
  readonly limit?: number;
  /** Exact types, or prefixes written `api_key.*`. */
  readonly types?: readonly string[];
  readonly streams?: readonly string[];
  /** Inclusive. */
  readonly since?: Date;
  /** Exclusive. */
  readonly until?: Date;
}

/** Events by global position, filtered, one keyset page at a time. */
export async function readEvents(db: DbOrTrx, filter: ReadEventsFilter = {}): Promise<StoredEvent[]> {
  const order = filter.order ?? 'asc';
  let q: SelectQueryBuilder<Database, 'events', Pick<EventRow, (typeof EVENT_COLUMNS)[number]>> = db
    .selectFrom('events')
    .select(EVENT_COLUMNS);
  if (filter.after !== undefined) q = q.where('seq', order === 'asc' ? '>' : '<', filter.after);
  if (filter.types && filter.types.length > 0) q = q.where(typeMatches(filter.types));
  if (filter.streams && filter.streams.length > 0) q = q.where('stream', 'in', filter.streams);
  if (filter.since) q = q.where('occurred_at', '>=', filter.since);
  if (filter.until) q = q.where('occurred_at', '<', filter.until);
  const rows = await q
    .orderBy('seq', order)
    .limit(filter.limit ?? 100)
    .execute();
  return rows.map(toStoredEvent);
}

export async function readEventBySeq(db: DbOrTrx, seq: number): Promise<StoredEvent | undefined> {
  const row = await db.selectFrom('events').select(EVENT_COLUMNS).where('seq', '=', seq).executeTakeFirst();
  return row ? toStoredEvent(row) : undefined;
}

/** The chain head as the append path last left it: seq 0 and 32 zero bytes before the first event. */
export async function readChainHead(db: DbOrTrx): Promise<ChainHead> {
  const { rows } = await sql<{
    seq: number | string;
    hash: Uint8Array;
  }>`select seq, hash from chain_head where id`.execute(db);
  const row = rows[0];
  if (!row) throw new Error('chain_head is missing: the database was not migrated');
  return { seq: Number(row.seq), hash: new Uint8Array(row.hash) };
}

/** A where-clause matching exact event types and prefixes written `api_key.*` (LIKE metacharacters escaped). */
export function typeMatches(types: readonly string[]) {
  const exact = types.filter((t) => !t.endsWith('.*'));
  const prefixes = types.filter((t) => t.endsWith('.*')).map((t) => `${t.slice(0, -1).replace(/[\\%_]/g, '\\$&')}%`);
  return (eb: ExpressionBuilder<Database, 'events'>) =>
    eb.or([...(exact.length > 0 ? [eb('type', 'in', exact)] : []), ...prefixes.map((p) => eb('type', 'like', p))]);
}
