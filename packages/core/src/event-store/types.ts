import type { Database } from '@keyledger/db';
import type { Kysely, Transaction } from 'kysely';
import type { EventMeta } from './catalogue.ts';

export interface NewEvent {
  readonly type: string;
  readonly data: unknown;
}

/** A stream's version before the append: 0 means the stream must not exist yet; 'any' skips the check. */
export type ExpectedVersion = number | 'any';

export interface StreamAppend {
  /** `<kind>-<id>`, e.g. `api_key-key_01jd...`. */
  readonly stream: string;
  readonly expectedVersion: ExpectedVersion;
  readonly events: readonly NewEvent[];
}

export interface OutboxMessage {
  readonly topic: string;
  readonly payload: unknown;
  readonly availableAt?: Date;
}

export interface AppendRequest {
  readonly streams: readonly StreamAppend[];
  readonly meta: EventMeta;
  /** From the command's clock: the store never asks the database for the time. */
  readonly occurredAt: Date;
  readonly outbox?: readonly OutboxMessage[];
  /**
   * Writes that are deliberately not events (a password hash, a counter) but must commit or fail with them. Runs in
   * the append transaction after the projections; it must use only the `trx` given.
   */
  readonly within?: (trx: Transaction<Database>) => Promise<void>;
}

export interface StoredEvent<TData = unknown> {
  readonly seq: number;
  readonly id: string;
  readonly stream: string;
  readonly stream_version: number;
  readonly type: string;
  readonly schema_version: number;
  readonly data: TData;
  readonly meta: EventMeta;
  readonly occurred_at: Date;
  readonly prev_hash: Uint8Array;
  readonly hash: Uint8Array;
}

export interface ChainHead {
  readonly seq: number;
  readonly hash: Uint8Array;
}

export interface AppendResult {
  readonly events: readonly StoredEvent[];
  readonly head: ChainHead;
}

export type DbOrTrx = Kysely<Database> | Transaction<Database>;

/**
 * An inline projection: a pure fold of events into live tables, applied in the append transaction. It must use
 * unqualified table names (so `projections check` can replay it into scratch copies) and only the `trx` given.
 */
export interface Projection {
  readonly name: string;
  /** The live tables it owns, parents before children (they are emptied in reverse). */
  readonly tables: readonly string[];
  apply(trx: Transaction<Database>, event: StoredEvent): Promise<void>;
}
