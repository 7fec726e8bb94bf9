import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';

/** bigint columns arrive as strings from `pg` and as numbers from PGlite; callers normalise with Number(). */
type BigIntColumn = ColumnType<string | number, number, number>;
type Timestamp = ColumnType<Date, Date, Date>;

export interface EventsTable {
  seq: BigIntColumn;
  id: string;
  stream: string;
  stream_version: number;
  type: string;
  schema_version: number;
  data: ColumnType<unknown, string, never>;
  meta: ColumnType<unknown, string, never>;
  occurred_at: Timestamp;
  tx_id: ColumnType<string, never, never>;
  prev_hash: Uint8Array;
  hash: Uint8Array;
}

export interface ChainHeadTable {
  id: ColumnType<boolean, boolean, never>;
  seq: BigIntColumn;
  hash: Uint8Array;
}

export interface CheckpointsTable {
  size: BigIntColumn;
  head_hash: Uint8Array;
  origin: string;
  note: string;
  created_at: Timestamp;
}

export interface OutboxTable {
  id: string;
  topic: string;
  payload: ColumnType<unknown, string, string>;
  event_seq: BigIntColumn | null;
  created_at: Timestamp;
  available_at: Timestamp;
  attempts: Generated<number>;
  delivered_at: Timestamp | null;
  last_error: string | null;
}

export interface Database {
  events: EventsTable;
  chain_head: ChainHeadTable;
  checkpoints: CheckpointsTable;
  outbox: OutboxTable;
}

export type EventRow = Selectable<EventsTable>;
export type NewEventRow = Insertable<EventsTable>;
export type CheckpointRow = Selectable<CheckpointsTable>;
export type OutboxRow = Selectable<OutboxTable>;
