import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { queryAuditEvents, streamAuditEvents } from '../src/audit/query.ts';
import type { Principal } from '../src/auth/principal.ts';
import { createTestStore, meta, type StoreFixture } from './helpers.ts';

const admin: Principal = {
  kind: 'env',
  auth: 'env_key',
  id: 'env:admin',
  role: 'admin',
  scopes: ['audit:read'],
};

let fx: StoreFixture;
beforeEach(async () => {
  fx = await createTestStore();
});
afterEach(async () => {
  await fx.t.close();
});

/** Appends one event per entry, at that instant, in this order (which need not be time order). */
async function appendAt(instants: string[]): Promise<void> {
  for (const [i, at] of instants.entries()) {
    await fx.store.append({
      streams: [
        {
          stream: `user-user_${i}`,
          expectedVersion: 'any',
          events: [{ type: 'user.role_changed', data: { user_id: `user_${i}`, from: 'member', to: 'admin' } }],
        },
      ],
      meta,
      occurredAt: new Date(at),
    });
  }
}

const head = async () =>
  (
    await sql<{ latest_at: Date; max_lateness_ms: string }>`select latest_at, max_lateness_ms from chain_head`.execute(
      fx.t.db,
    )
  ).rows[0];

describe('audit time ranges over a log that is not in time order', () => {
  it('records how late an event has ever been, and finds every event of a range in both orders', async () => {
    // Two instances whose clocks differ by up to 90 s: the log is not in time order.
    const instants = [
      '2026-11-22T10:00:00.000Z',
      '2026-11-22T10:05:00.000Z',
      '2026-11-22T10:03:30.000Z', // 90 s earlier than the one before it
      '2026-11-22T10:06:00.000Z',
      '2026-11-22T10:10:00.000Z',
      '2026-11-22T10:09:00.000Z', // 60 s late
      '2026-11-22T10:20:00.000Z',
      '2026-11-22T10:30:00.000Z',
    ];
    await appendAt(instants);
    const h = await head();
    expect(Number(h?.max_lateness_ms)).toBe(90_000);
    expect(new Date(h?.latest_at ?? 0).toISOString()).toBe('2026-11-22T10:30:00.000Z');

    const all = instants.map((at, i) => ({ seq: i + 1, at: new Date(at).getTime() }));
    const windows: [string, string][] = [
      ['2026-11-22T10:04:00.000Z', '2026-11-22T10:09:30.000Z'],
      ['2026-11-22T10:03:00.000Z', '2026-11-22T10:04:00.000Z'],
      ['2026-11-22T10:09:00.000Z', '2026-11-22T10:10:00.000Z'],
      ['2026-11-22T09:00:00.000Z', '2026-11-22T11:00:00.000Z'],
      ['2026-11-22T10:11:00.000Z', '2026-11-22T10:19:00.000Z'],
    ];
    for (const [from, to] of windows) {
      const since = new Date(from);
      const until = new Date(to);
      const expected = all.filter((e) => e.at >= since.getTime() && e.at < until.getTime()).map((e) => e.seq);
      const asc = await queryAuditEvents(fx.t.db, admin, { since, until }, { order: 'asc', limit: 1000 });
      expect(
        asc.data.map((e) => e.seq),
        `${from}..${to} asc`,
      ).toEqual(expected);
      const desc = await queryAuditEvents(fx.t.db, admin, { since, until }, { order: 'desc', limit: 1000 });
      expect(
        desc.data.map((e) => e.seq),
        `${from}..${to} desc`,
      ).toEqual([...expected].reverse());
      const since1 = await queryAuditEvents(fx.t.db, admin, { since }, { order: 'asc', limit: 1000 });
      expect(since1.data.map((e) => e.seq)).toEqual(all.filter((e) => e.at >= since.getTime()).map((e) => e.seq));
      const until1 = await queryAuditEvents(fx.t.db, admin, { until }, { order: 'desc', limit: 1000 });
      expect(until1.data.map((e) => e.seq)).toEqual(
        all
          .filter((e) => e.at < until.getTime())
          .map((e) => e.seq)
          .reverse(),
      );
      const streamed: number[] = [];
      for await (const e of streamAuditEvents(fx.t.db, admin, { since, until })) streamed.push(e.seq);
      expect(streamed).toEqual(expected);
    }
  });

  it('a log in time order has no lateness, and the migration computes the same from existing events', async () => {
    await appendAt(['2026-11-22T10:00:00.000Z', '2026-11-22T10:00:00.000Z', '2026-11-22T10:00:01.000Z']);
    expect(Number((await head())?.max_lateness_ms)).toBe(0);
    await appendAt(['2026-11-22T09:59:58.500Z']);
    expect(Number((await head())?.max_lateness_ms)).toBe(2500);
    // The migration's backfill over the same events gives the same figure.
    const { rows } = await sql<{ late: string }>`
      select coalesce(ceil(max(extract(epoch from (before - occurred_at)) * 1000))::bigint, 0) as late
      from (select occurred_at,
                   max(occurred_at) over (order by seq rows between unbounded preceding and 1 preceding) as before
            from events) t where before > occurred_at`.execute(fx.t.db);
    expect(Number(rows[0]?.late)).toBe(2500);
  });
});
