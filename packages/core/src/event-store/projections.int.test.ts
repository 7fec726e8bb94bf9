import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestStore, roleChange, type StoreFixture } from '../../test/helpers.ts';
import { checkProjections, rebuildProjections } from './projections.ts';
import type { Projection } from './types.ts';

// A projection of the shape the capability slices use: one row per stream, upserted per event.
const streamStats: Projection = {
  name: 'stream_stats',
  tables: ['stream_stats'],
  async apply(trx, event) {
    await sql`insert into stream_stats (stream, events, last_seq) values (${event.stream}, 1, ${event.seq})
      on conflict (stream) do update set events = stream_stats.events + 1, last_seq = excluded.last_seq`.execute(trx);
  },
};
const SETUP = 'create table stream_stats (stream text primary key, events int not null, last_seq bigint not null)';

let f: StoreFixture;
beforeEach(async () => {
  f = await createTestStore({ projections: [streamStats], setupSql: SETUP });
  for (const user of ['a', 'b', 'a', 'c', 'a']) await f.store.append(roleChange(user));
});
afterEach(async () => {
  await f.t.close();
});

const rows = async () =>
  (
    await sql<{ stream: string; events: number }>`select stream, events from stream_stats order by stream`.execute(
      f.t.db,
    )
  ).rows;

describe('inline projections', () => {
  it('are written in the append transaction', async () => {
    expect(await rows()).toEqual([
      { stream: 'user-a', events: 3 },
      { stream: 'user-b', events: 1 },
      { stream: 'user-c', events: 1 },
    ]);
  });

  it('check clean against a log that agrees with them', async () => {
    const result = await checkProjections(f.t.db, [streamStats]);
    expect(result.ok).toBe(true);
    expect(result.replayed).toBe(5);
    expect(result.tables).toEqual([
      { table: 'stream_stats', unexpected: 0, missing: 0, samples: { unexpected: [], missing: [] } },
    ]);
  });

  it('report a row changed, added or removed behind the log', async () => {
    await sql`update stream_stats set events = 99 where stream = 'user-b'`.execute(f.t.db);
    await sql`insert into stream_stats values ('user-ghost', 1, 1)`.execute(f.t.db);
    await sql`delete from stream_stats where stream = 'user-c'`.execute(f.t.db);
    const result = await checkProjections(f.t.db, [streamStats]);
    expect(result.ok).toBe(false);
    const diff = result.tables[0]!;
    expect(diff.unexpected).toBe(2);
    expect(diff.missing).toBe(2);
    expect(diff.samples.unexpected.map((r) => (r as { stream: string }).stream).sort()).toEqual([
      'user-b',
      'user-ghost',
    ]);
    expect(diff.samples.missing.map((r) => (r as { stream: string }).stream).sort()).toEqual(['user-b', 'user-c']);
  });

  it('check writes nothing: the live table and the log are untouched', async () => {
    await sql`update stream_stats set events = 99 where stream = 'user-b'`.execute(f.t.db);
    const before = await rows();
    await checkProjections(f.t.db, [streamStats]);
    expect(await rows()).toEqual(before);
    const { rows: temp } =
      await sql`select 1 from pg_tables where tablename = 'stream_stats' and schemaname like 'pg_temp%'`.execute(
        f.t.db,
      );
    expect(temp).toEqual([]);
  });

  it('rebuild restores the live tables from the log', async () => {
    await sql`update stream_stats set events = 99 where stream = 'user-b'`.execute(f.t.db);
    await sql`delete from stream_stats where stream = 'user-c'`.execute(f.t.db);
    const { replayed } = await rebuildProjections(f.t.db, [streamStats]);
    expect(replayed).toBe(5);
    expect((await checkProjections(f.t.db, [streamStats])).ok).toBe(true);
    expect((await rows()).find((r) => r.stream === 'user-b')?.events).toBe(1);
  });

  it('a projection that fails rolls its append back entirely', async () => {
    const failing: Projection = {
      name: 'failing',
      tables: [],
      async apply(_trx, event) {
        if (event.stream === 'user-boom') throw new Error('projection bug');
      },
    };
    const { EventStore } = await import('./event-store.ts');
    const { catalogue } = await import('../catalogue.ts');
    const store = new EventStore({ db: f.t.db, catalogue, projections: [streamStats, failing] });
    await expect(store.append(roleChange('boom'))).rejects.toThrow('projection bug');
    expect((await rows()).some((r) => r.stream === 'user-boom')).toBe(false);
    const { rows: events } = await sql`select 1 from events where stream = 'user-boom'`.execute(f.t.db);
    expect(events).toEqual([]);
  });
});
