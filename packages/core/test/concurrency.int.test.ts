import { createDb, type DbHandle } from '@keyledger/db';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { catalogue } from '../src/catalogue.ts';
import { ConcurrencyError } from '../src/errors.ts';
import { EventStore } from '../src/event-store/event-store.ts';
import { readChainHead, readStream } from '../src/event-store/read.ts';
import type { AppendResult, Projection } from '../src/event-store/types.ts';
import { verifyChain } from '../src/event-store/verify.ts';
import { createTestStore, roleChange, type StoreFixture } from './helpers.ts';

let f: StoreFixture;
let extraHandles: DbHandle[] = [];
beforeEach(async () => {
  f = await createTestStore({
    setupSql: 'create table conc_projection (seq bigint primary key, stream text not null)',
  });
});
afterEach(async () => {
  await Promise.all(extraHandles.map((h) => h.close()));
  extraHandles = [];
  await f.t.close();
});

/**
 * `n` independent EventStores. On Postgres each has its own connection pool, so they meet only at the chain lock,
 * as separate server processes would. PGlite has a single connection: there they share the one database.
 */
async function independentStores(n: number, projections: Projection[] = []): Promise<EventStore[]> {
  const stores: EventStore[] = [];
  for (let i = 0; i < n; i++) {
    let db = f.t.db;
    if (f.t.url) {
      const handle = await createDb({ databaseUrl: f.t.url, poolSize: 4 });
      extraHandles.push(handle);
      db = handle.db;
    }
    stores.push(new EventStore({ db, catalogue, projections }));
  }
  return stores;
}

async function seqs(): Promise<number[]> {
  const { rows } = await sql<{ seq: number | string }>`select seq from events order by seq`.execute(f.t.db);
  return rows.map((r) => Number(r.seq));
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

function split(results: PromiseSettledResult<AppendResult>[]) {
  const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const lost = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  return { won, lost };
}

describe('50 concurrent appends at the same expected version of one stream', () => {
  async function race(stores: EventStore[]) {
    await f.store.append(roleChange('u1', 0)); // the stream is at version 1
    const results = await Promise.allSettled(
      range(50).map((i) => (stores[i % stores.length] as EventStore).append(roleChange('u1', 1))),
    );
    const { won, lost } = split(results);
    expect(won).toHaveLength(1);
    expect(won[0]?.events.map((e) => [e.seq, e.stream_version])).toEqual([[2, 2]]);
    expect(lost).toHaveLength(49);
    for (const error of lost) {
      expect(error).toBeInstanceOf(ConcurrencyError);
      expect(error).toMatchObject({ stream: 'user-u1', expectedVersion: 1, actualVersion: 2 });
    }
    expect((await readStream(f.t.db, 'user-u1')).map((e) => e.stream_version)).toEqual([1, 2]);
    expect(await seqs()).toEqual([1, 2]);
    expect(await verifyChain(f.t.db)).toMatchObject({ ok: true, checked: 2 });
  }

  it('one EventStore: group commit batches them, and still exactly one wins', async () => {
    let commits = 0;
    f.store.onAppended(() => commits++);
    await race([f.store]);
    // The 50 shared transactions (the first alone, the rest queued behind it): this is the batched path.
    expect(commits).toBeLessThan(50);
  });

  it('several EventStores over separate connections: the chain lock lets exactly one win', async () => {
    await race(await independentStores(5));
  });
});

describe('500 concurrent appends to different streams', () => {
  async function flood(stores: EventStore[]) {
    const results = await Promise.all(
      range(500).map((i) => (stores[i % stores.length] as EventStore).append(roleChange(`u${i}`, 0))),
    );
    const assigned = results.flatMap((r) => r.events.map((e) => e.seq)).sort((a, b) => a - b);
    expect(assigned).toEqual(range(500));
    expect(results.every((r) => r.events.length === 1 && r.events[0]?.stream_version === 1)).toBe(true);
    expect(await seqs()).toEqual(range(500));
    expect((await readChainHead(f.t.db)).seq).toBe(500);
    expect(await verifyChain(f.t.db, { batchSize: 128 })).toMatchObject({ ok: true, checked: 500 });
  }

  it('one EventStore: seq 1..500 contiguous and the chain verifies', async () => {
    await flood([f.store]);
  });

  it('four EventStores over separate connections: seq 1..500 contiguous and the chain verifies', async () => {
    await flood(await independentStores(4));
  });
});

describe('an append whose projection throws', () => {
  // How many events each transaction had applied when it reached user-boom: proof it shared a batch.
  let boomTxSizes: number[] = [];
  const applied = new WeakMap<object, number>();
  const failing: Projection = {
    name: 'conc',
    tables: ['conc_projection'],
    async apply(trx, event) {
      await sql`insert into conc_projection (seq, stream) values (${event.seq}, ${event.stream})`.execute(trx);
      applied.set(trx, (applied.get(trx) ?? 0) + 1);
      if (event.stream === 'user-boom') {
        boomTxSizes.push(applied.get(trx) ?? 0);
        throw new Error('projection refuses user-boom');
      }
    },
  };
  beforeEach(() => {
    boomTxSizes = [];
  });

  it('fails alone: the rest of its batch commits, and it leaves no event and no projection row', async () => {
    const store = new EventStore({ db: f.t.db, catalogue, projections: [failing] });
    // The first append runs alone; the next 29 queue behind it and share a batch, the failing one in the middle.
    const streams = range(30).map((i) => (i === 15 ? 'boom' : `u${i}`));
    const results = await Promise.allSettled(streams.map((s) => store.append(roleChange(s, 0))));
    const { won, lost } = split(results);
    expect(won).toHaveLength(29);
    expect(lost).toHaveLength(1);
    expect(results[14]).toMatchObject({ status: 'rejected', reason: { message: 'projection refuses user-boom' } });
    expect(Math.max(...boomTxSizes)).toBeGreaterThan(1); // it was tried together with others at least once

    expect(await readStream(f.t.db, 'user-boom')).toEqual([]);
    expect(await seqs()).toEqual(range(29));
    const { rows } = await sql<{ seq: number | string; stream: string }>`
      select p.seq, p.stream from conc_projection p
      full join events e on e.seq = p.seq and e.stream = p.stream
      where p.seq is null or e.seq is null`.execute(f.t.db);
    expect(rows).toEqual([]); // every event has its row, and no row outlived a rolled-back attempt
    const { rows: count } = await sql<{ n: number }>`select count(*)::int as n from conc_projection`.execute(f.t.db);
    expect(count[0]?.n).toBe(29);
    expect(await verifyChain(f.t.db)).toMatchObject({ ok: true, checked: 29 });
  });

  it('a failure on a fresh store (nothing queued) rejects that one append and the store keeps working', async () => {
    const store = new EventStore({ db: f.t.db, catalogue, projections: [failing] });
    await expect(store.append(roleChange('boom', 0))).rejects.toThrow('projection refuses user-boom');
    await expect(store.append(roleChange('u1', 0))).resolves.toMatchObject({ head: { seq: 1 } });
    expect(await verifyChain(f.t.db)).toMatchObject({ ok: true, checked: 1 });
  });
});

// KNOWN BUG (event-store.ts #flush/#drainQueue, not fixed here): onAppended listeners are called inside #flush,
// unguarded. A listener that throws makes #flush reject, which ends #drainQueue's loop: appends still queued (and,
// since listeners now run before the batch's promises are settled, the whole current batch too, although it has
// committed) never settle until some later append restarts the drain, and #running becomes a rejected promise
// nobody awaits: an unhandledRejection, which kills a default Node process. Fix: call each listener in a
// try/catch (report the error elsewhere) so a listener can never break the queue or a caller's promise.
describe('a throwing onAppended listener', () => {
  it('neither strands queued appends nor leaks an unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    // Vitest's own handler would fail the run anyway; this one makes the assertion say what happened.
    process.on('unhandledRejection', onUnhandled);
    try {
      let calls = 0;
      f.store.onAppended(() => {
        if (calls++ === 0) throw new Error('listener failed');
      });
      const first = f.store.append(roleChange('u1', 0));
      const queued = f.store.append(roleChange('u2', 0)); // queued while the first batch commits
      const settled = await Promise.race([
        Promise.allSettled([first, queued]).then((r) => r.map((x) => x.status)),
        new Promise((resolve) => setTimeout(() => resolve('still pending after 5 s'), 5000)),
      ]);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(settled).toEqual(['fulfilled', 'fulfilled']);
      expect(unhandled).toEqual([]);
    } finally {
      await new Promise((resolve) => setTimeout(resolve, 50));
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
