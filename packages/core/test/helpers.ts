import { createTestDb, type TestDb } from '@keyledger/db/testing';
import { catalogue } from '../src/catalogue.ts';
import { ManualClock } from '../src/clock.ts';
import type { EventMeta } from '../src/event-store/catalogue.ts';
import { EventStore } from '../src/event-store/event-store.ts';
import type { AppendRequest, Projection, StreamAppend } from '../src/event-store/types.ts';

export const meta: EventMeta = {
  actor: { type: 'user', id: 'user_01jd0000000000000000000000' },
  via: 'rest',
  ip: '203.0.113.7',
  user_agent: 'vitest',
  request_id: 'req-test',
};

export const clock = new ManualClock('2026-11-22T14:00:00.000Z');

export interface StoreFixture {
  readonly t: TestDb;
  readonly store: EventStore;
}

export async function createTestStore(
  options: { projections?: Projection[]; setupSql?: string } = {},
): Promise<StoreFixture> {
  const t = await createTestDb();
  if (options.setupSql) {
    const { sql } = await import('kysely');
    await sql.raw(options.setupSql).execute(t.db);
  }
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
