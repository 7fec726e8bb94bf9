import { createTestDb, type TestDb } from '@keyledger/db/testing';
import { sql } from 'kysely';
import { catalogue } from '../src/catalogue.ts';
import { ManualClock } from '../src/clock.ts';
import { eventHash, NotCanonicalError, ZERO_HASH } from '../src/event-store/canonical.ts';
import type { EventMeta } from '../src/event-store/catalogue.ts';
import type { CoreContext } from '../src/event-store/command.ts';
import { EventStore } from '../src/event-store/event-store.ts';
import type { AppendRequest, DbOrTrx, Projection, StreamAppend } from '../src/event-store/types.ts';
import { projections } from '../src/projections.ts';

export const meta: EventMeta = {
  actor: { type: 'user', id: 'user_01jd0000000000000000000000' },
  via: 'rest',
  ip: '203.0.113.7',
  user_agent: 'vitest',
  request_id: 'req-test',
};

export const clock = new ManualClock('2026-11-22T14:00:00.000Z');

/** A fresh database with every projection, a manual clock (at `start`) and the core context over both. */
export async function createTestCore(
  start: Date | string = '2026-11-22T14:00:00.000Z',
): Promise<{ t: TestDb; clock: ManualClock; ctx: CoreContext }> {
  const t = await createTestDb();
  const clock = new ManualClock(start);
  return { t, clock, ctx: { db: t.db, store: new EventStore({ db: t.db, catalogue, projections }), clock } };
}

export interface StoreFixture {
  readonly t: TestDb;
  readonly store: EventStore;
}

export async function createTestStore(
  options: { projections?: Projection[]; setupSql?: string } = {},
): Promise<StoreFixture> {
  const t = await createTestDb();
  if (options.setupSql) await sql.raw(options.setupSql).execute(t.db);
  const store = new EventStore({ db: t.db, catalogue, projections: options.projections ?? [] });
  return { t, store };
}

/** A valid `user.role_changed` append to `user-<id>`, the smallest real event. */
export function roleChange(userId: string, expectedVersion: StreamAppend['expectedVersion'] = 'any'): AppendRequest {
  return {
    streams: [
      {
        stream: `user-${userId}`,
        expectedVersion,
        events: [{ type: 'user.role_changed', data: { user_id: userId, from: 'member', to: 'admin' } }],
      },
    ],
    meta,
    occurredAt: clock.now(),
  };
}

/**
 * A superuser's rewrite: recomputes prev_hash/hash of every event from `fromSeq` on (linking to the last event
 * before it, as far as the generic canonical form allows) and points chain_head at the new last one.
 */
export async function rehashFrom(trx: DbOrTrx, fromSeq: number): Promise<void> {
  const before = await sql<{
    hash: Uint8Array;
  }>`select hash from events where seq < ${fromSeq} order by seq desc limit 1`.execute(trx);
  let prev: Uint8Array = before.rows[0]?.hash ?? ZERO_HASH;
  const { rows } = await sql<{
    seq: number | string;
    id: string;
    stream: string;
    stream_version: number;
    type: string;
    schema_version: number;
    data: string;
    meta: string;
    occurred_at: string;
  }>`select seq, id::text as id, stream, stream_version, type, schema_version, data::text as data,
            meta::text as meta, to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as occurred_at
     from events where seq >= ${fromSeq} order by seq`.execute(trx);
  let last: number | null = null;
  for (const r of rows) {
    let hash: Uint8Array;
    try {
      hash = eventHash(prev, { ...r, seq: Number(r.seq), data: JSON.parse(r.data), meta: JSON.parse(r.meta) });
    } catch (error) {
      if (error instanceof NotCanonicalError) break;
      throw error;
    }
    await sql`update events set prev_hash = ${prev}, hash = ${hash} where seq = ${r.seq}`.execute(trx);
    prev = hash;
    last = Number(r.seq);
  }
  if (last !== null) await sql`update chain_head set seq = ${last}, hash = ${prev} where id`.execute(trx);
}
