import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { clock, createTestStore, meta, roleChange, type StoreFixture } from '../../test/helpers.ts';
import { ConcurrencyError, InvalidEventError } from '../errors.ts';
import { createCatalogue, defineEvent } from './catalogue.ts';
import { EVENTS_CHANNEL, EventStore } from './event-store.ts';
import { MAX_EVENT_BYTES } from './prepare.ts';
import { readChainHead, readEvents, readStream } from './read.ts';
import { verifyChain } from './verify.ts';

let f: StoreFixture;
beforeEach(async () => {
  f = await createTestStore();
});
afterEach(async () => {
  await f.t.close();
});

describe('append', () => {
  it('assigns seq, stream versions and a hash chain, and reads them back', async () => {
    const a = await f.store.append(roleChange('u1', 0));
    const b = await f.store.append(roleChange('u1', 1));
    const c = await f.store.append({
      ...roleChange('u2', 0),
      streams: [...roleChange('u2', 0).streams, ...roleChange('u3', 0).streams],
    });
    expect(a.events.map((e) => e.seq)).toEqual([1]);
    expect(b.events.map((e) => [e.seq, e.stream_version])).toEqual([[2, 2]]);
    expect(c.events.map((e) => [e.seq, e.stream])).toEqual([
      [3, 'user-u2'],
      [4, 'user-u3'],
    ]);
    expect(Buffer.from(b.events[0]!.prev_hash)).toEqual(Buffer.from(a.events[0]!.hash));
    const stream = await readStream(f.t.db, 'user-u1');
    expect(stream.map((e) => e.stream_version)).toEqual([1, 2]);
    expect(stream[0]?.meta).toEqual(meta);
    expect(stream[0]?.occurred_at.toISOString()).toBe(clock.now().toISOString());
    const head = await readChainHead(f.t.db);
    expect(head.seq).toBe(4);
    expect(Buffer.from(head.hash)).toEqual(Buffer.from(c.head.hash));
    const verified = await verifyChain(f.t.db);
    expect(verified).toMatchObject({ ok: true, checked: 4, first_bad_seq: null, reason: null });
  });

  it('rejects a stale expected version with a ConcurrencyError and writes nothing', async () => {
    await f.store.append(roleChange('u1', 0));
    const error = await f.store.append(roleChange('u1', 0)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConcurrencyError);
    expect(error).toMatchObject({ stream: 'user-u1', expectedVersion: 0, actualVersion: 1 });
    expect((await readChainHead(f.t.db)).seq).toBe(1);
  });

  it('is atomic across streams: one stale stream fails the whole append', async () => {
    await f.store.append(roleChange('u1', 0));
    const error = await f.store
      .append({ ...roleChange('u2', 0), streams: [...roleChange('u2', 0).streams, ...roleChange('u1', 0).streams] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConcurrencyError);
    expect(await readStream(f.t.db, 'user-u2')).toEqual([]);
  });

  it('filters reads by type prefix, stream and order', async () => {
    await f.store.append(roleChange('u1'));
    await f.store.append({
      streams: [
        { stream: 'user-u1', expectedVersion: 'any', events: [{ type: 'user.disabled', data: { user_id: 'u1' } }] },
      ],
      meta,
      occurredAt: clock.now(),
    });
    expect((await readEvents(f.t.db, { types: ['user.*'] })).length).toBe(2);
    expect((await readEvents(f.t.db, { types: ['user.disabled'] })).map((e) => e.seq)).toEqual([2]);
    expect((await readEvents(f.t.db, { types: ['session.*'] })).length).toBe(0);
    expect((await readEvents(f.t.db, { order: 'desc', limit: 1 })).map((e) => e.seq)).toEqual([2]);
    expect((await readEvents(f.t.db, { order: 'desc', after: 2 })).map((e) => e.seq)).toEqual([1]);
  });
});

describe('bad input to append', () => {
  const cases: [string, () => Parameters<typeof f.store.append>[0], string][] = [
    [
      'an unknown type',
      () => ({
        ...roleChange('u1'),
        streams: [{ stream: 'user-u1', expectedVersion: 'any', events: [{ type: 'user.exploded', data: {} }] }],
      }),
      'unknown_type',
    ],
    [
      'data failing its schema',
      () => ({
        ...roleChange('u1'),
        streams: [
          {
            stream: 'user-u1',
            expectedVersion: 'any',
            events: [{ type: 'user.role_changed', data: { user_id: 'u1', from: 'member', to: 'god' } }],
          },
        ],
      }),
      'schema',
    ],
    [
      'an oversized payload',
      () => ({
        ...roleChange('u1'),
        streams: [
          {
            stream: 'user-u1',
            expectedVersion: 'any',
            events: [
              {
                type: 'user.registered',
                data: {
                  user_id: 'u1',
                  email: 'a@example.com',
                  name: 'n'.repeat(1_000_000),
                  role: 'member',
                  method: 'admin',
                },
              },
            ],
          },
        ],
      }),
      'schema',
    ],
    [
      'a secret-looking field the schema does not allow',
      () => ({
        ...roleChange('u1'),
        streams: [
          {
            stream: 'user-u1',
            expectedVersion: 'any',
            events: [{ type: 'user.password_set', data: { user_id: 'u1', password: 'hunter2hunter2' } }],
          },
        ],
      }),
      'secret',
    ],
    [
      'a credential in an allowed field',
      () => ({
        ...roleChange('u1'),
        streams: [
          {
            stream: 'user-u1',
            expectedVersion: 'any',
            events: [
              {
                type: 'user.registered',
                data: {
                  user_id: 'u1',
                  email: 'a@example.com',
                  name: `kl_key_${'A'.repeat(36)}`,
                  role: 'member',
                  method: 'admin',
                },
              },
            ],
          },
        ],
      }),
      'secret',
    ],
    [
      'a float',
      () => ({
        ...roleChange('u1'),
        streams: [
          {
            stream: 'auth-x',
            expectedVersion: 'any',
            events: [{ type: 'auth.rejected', data: { credential: 'api_key', reason: 'unknown', count: 1.5 } }],
          },
        ],
      }),
      'schema',
    ],
    [
      'a bad stream name',
      () => ({
        ...roleChange('u1'),
        streams: [{ stream: 'no kind here', expectedVersion: 'any', events: roleChange('u1').streams[0]!.events }],
      }),
      'schema',
    ],
    ['no events', () => ({ ...roleChange('u1'), streams: [] }), 'empty'],
    ['invalid meta', () => ({ ...roleChange('u1'), meta: { ...meta, via: 'carrier-pigeon' } as never }), 'schema'],
  ];
  for (const [what, request, reason] of cases) {
    it(`refuses ${what} with a typed error and writes nothing`, async () => {
      const error = await f.store.append(request()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidEventError);
      expect((error as InvalidEventError).reason).toBe(reason);
      const { rows } = await sql<{ n: number }>`select count(*)::int as n from events`.execute(f.t.db);
      expect(rows[0]?.n).toBe(0);
      expect((await readChainHead(f.t.db)).seq).toBe(0);
    });
  }

  it('refuses an event over the size limit even when its schema would allow it', async () => {
    const blob = defineEvent('test.blob', 1, { blob: z.string() });
    const store = new EventStore({ db: f.t.db, catalogue: createCatalogue([blob]) });
    const request = (size: number) => ({
      ...roleChange('u1'),
      streams: [
        {
          stream: 'test-1',
          expectedVersion: 'any' as const,
          events: [{ type: 'test.blob', data: { blob: 'x'.repeat(size) } }],
        },
      ],
    });
    const error = await store.append(request(MAX_EVENT_BYTES)).catch((e: unknown) => e);
    expect((error as InvalidEventError).reason).toBe('too_large');
    await expect(store.append(request(1000))).resolves.toMatchObject({ head: { seq: 1 } });
  });
});

describe('outbox and notification', () => {
  it('writes outbox rows in the append transaction, tied to the event', async () => {
    const result = await f.store.append({
      ...roleChange('u1'),
      outbox: [{ topic: 'mail', payload: { to: 'a@example.com', template: 'invite' } }],
    });
    const { rows } = await sql<{ topic: string; payload: unknown; event_seq: number; delivered_at: Date | null }>`
      select topic, payload, event_seq, delivered_at from outbox`.execute(f.t.db);
    expect(rows).toEqual([
      {
        topic: 'mail',
        payload: { to: 'a@example.com', template: 'invite' },
        event_seq: result.head.seq,
        delivered_at: null,
      },
    ]);
  });

  it('writes no outbox row when the append is refused', async () => {
    await f.store.append(roleChange('u1', 0));
    await expect(
      f.store.append({ ...roleChange('u1', 0), outbox: [{ topic: 'mail', payload: {} }] }),
    ).rejects.toBeInstanceOf(ConcurrencyError);
    const { rows } = await sql`select 1 from outbox`.execute(f.t.db);
    expect(rows).toEqual([]);
  });

  it('notifies listeners with the new head seq and the types written, after the commit', async () => {
    const seen: string[] = [];
    const stop = await f.t.listen(EVENTS_CHANNEL, (payload) => seen.push(payload));
    try {
      await f.store.append(roleChange('u1'));
      await f.store.append(roleChange('u2'));
      await expect.poll(() => seen, { timeout: 5000 }).toEqual(['1 user.role_changed', '2 user.role_changed']);
    } finally {
      await stop();
    }
  });

  it('tells in-process listeners the head after each commit', async () => {
    const heads: number[] = [];
    f.store.onAppended((head) => heads.push(head.seq));
    await Promise.all([
      f.store.append(roleChange('u1')),
      f.store.append(roleChange('u2')),
      f.store.append(roleChange('u3')),
    ]);
    expect(heads.at(-1)).toBe(3);
  });
});
