import { randomBytes } from 'node:crypto';
import type { Database } from '@keyledger/db';
import { createTestDb, type TestDb } from '@keyledger/db/testing';
import fc from 'fast-check';
import { sql, type Transaction } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { rowByRowVerifyChain } from '../../bench/row-walk.ts';
import { meta, rehashFrom } from '../../test/helpers.ts';
import { createCatalogue, defineEvent } from './catalogue.ts';
import { EventStore } from './event-store.ts';
import { readChainHead } from './read.ts';
import { type CheckpointClaim, type VerifyFailure, verifyChain, verifySince } from './verify.ts';
import { fetchBytePage, verifyBytePage } from './verify-bytes.ts';
import { fetchPage, type PageResult, verifyPage } from './verify-page.ts';

/**
 * verifyChain checks pages of the log on their own (each event against the prev_hash stored in its row, through
 * the jsonb fast path) and joins them up afterwards. These tests hold it to the sequential walk it replaced, kept
 * in bench/row-walk.ts as `rowByRowVerifyChain`: same first bad seq, same reason, same counts, for every page size,
 * on logs tampered with the way a superuser can.
 */

const catalogue = createCatalogue([defineEvent('test.any', 1, { value: z.json() })]);
const SIZE = 40;

let t: TestDb;
/** The stored hash of every event, by seq (index 0 unused). */
let hashes: Uint8Array[] = [];

// Values that reach every branch of the jsonb fast path and its fallbacks.
const VALUES: unknown[] = [
  'plain',
  { b: 1, a: [true, false, null], ab: { y: 'x', x: 'y' }, '': {} },
  { '\u20ac': 1, '\r': 2, '\ufb33': 3, '1': 4, '\ud83d\ude00': 5, '\u0080': 6, '\u00f6': 7, 'a b': 8, 'a!': 9, a: 10 },
  '"\\/\b\f\n\r\t\u0001\u001f\u007f\u2028\u2029\ufeff é 😀',
  { 'tab\tkey': 'escaped name', 'quote"key': 1 },
  [2 ** 53 - 1, -(2 ** 53 - 1), 0, -1, 123456789012345, 1234567890123456],
  { nested: { deeper: { deepest: [[], {}, [{ k: 'v' }]] } } },
  { zoë: 'Zoë "Z"\t😀', e: { 'e\u0301': 'combining', '\u00e9': 'precomposed' } },
  '',
  [],
  {},
  -0,
];

async function append(store: EventStore, value: unknown, i: number): Promise<void> {
  await store.append({
    streams: [{ stream: `test-${i % 7}`, expectedVersion: 'any', events: [{ type: 'test.any', data: { value } }] }],
    meta,
    occurredAt: new Date(Date.UTC(2026, 10, 22, 14, 0, 0, i * 37)),
  });
}

beforeAll(async () => {
  t = await createTestDb();
  const store = new EventStore({ db: t.db, catalogue });
  const random = fc.sample(fc.jsonValue({ maxDepth: 3 }), { seed: 2026, numRuns: 200 });
  let i = 0;
  for (const value of [...VALUES, ...random]) {
    if (i >= SIZE) break;
    try {
      await append(store, value, i);
      i++;
    } catch {
      // values the append refuses (floats, NUL, …): not part of a real log
    }
  }
  expect((await readChainHead(t.db)).seq).toBe(SIZE);
  const { rows } = await sql<{ hash: Uint8Array }>`select hash from events order by seq`.execute(t.db);
  hashes = [new Uint8Array(32), ...rows.map((r) => new Uint8Array(r.hash))];
  expect(await verifyChain(t.db)).toMatchObject({ ok: true, checked: SIZE });
}, 90_000);
afterAll(async () => {
  await t?.close();
});

/** Runs `fn` as a superuser with the append-only triggers off, then rolls everything back. */
function tampered(fn: (trx: Transaction<Database>) => Promise<void>): Promise<void> {
  return tamperedIn(t, fn);
}

describe('pages are joined exactly where a sequential walk would fail', () => {
  // 40 events in pages of 10: [1..10] [11..20] [21..30] [31..40].
  const cases: [string, (trx: Transaction<Database>) => Promise<unknown>, number, VerifyFailure, number][] = [
    [
      'an event edited in the middle of the second page',
      (trx) => sql`update events set data = '{"value": "edited"}' where seq = 15`.execute(trx),
      15,
      'hash_mismatch',
      14,
    ],
    [
      'the first event of a page edited',
      (trx) => sql`update events set meta = jsonb_set(meta, '{ip}', '"198.51.100.1"') where seq = 21`.execute(trx),
      21,
      'hash_mismatch',
      20,
    ],
    ['the last event of a page deleted', (trx) => sql`delete from events where seq = 10`.execute(trx), 10, 'gap', 9],
    ['the first event of a page deleted', (trx) => sql`delete from events where seq = 11`.execute(trx), 11, 'gap', 10],
    ['a whole page deleted', (trx) => sql`delete from events where seq between 11 and 20`.execute(trx), 11, 'gap', 10],
    [
      'a broken link exactly at a join',
      (trx) => sql`update events set prev_hash = sha256(prev_hash) where seq = 31`.execute(trx),
      31,
      'broken_link',
      30,
    ],
    [
      'a broken link inside a page',
      (trx) => sql`update events set prev_hash = sha256(prev_hash) where seq = 33`.execute(trx),
      33,
      'broken_link',
      32,
    ],
    ['the tail cut off mid-page', (trx) => sql`delete from events where seq > 35`.execute(trx), 36, 'truncated', 35],
    [
      'the tail cut off at a page boundary',
      (trx) => sql`delete from events where seq > 30`.execute(trx),
      31,
      'truncated',
      30,
    ],
    [
      'a float where an integer was (not canonical)',
      (trx) => sql`update events set data = '{"value": 1.5}' where seq = 12`.execute(trx),
      12,
      'not_canonical',
      11,
    ],
  ];
  for (const [what, edit, seq, reason, checked] of cases) {
    it(`${what}: first bad seq ${seq} (${reason})`, async () => {
      await tampered(async (trx) => {
        await edit(trx);
        const expected = { ok: false, first_bad_seq: seq, reason, checked };
        expect(await verifyChain(trx, { batchSize: 10 })).toMatchObject(expected);
        expect(await rowByRowVerifyChain(trx, { batchSize: 10 })).toMatchObject(expected);
        for (const batchSize of [1, 3, 7, 1000]) expect(await verifyChain(trx, { batchSize })).toMatchObject(expected);
      });
    });
  }

  it('reports the checkpoint held when it lies before the first bad event, in an earlier page or the same', async () => {
    await tampered(async (trx) => {
      await sql`update events set data = '{"value": "edited"}' where seq = 18`.execute(trx);
      for (const size of [5, 15, 17]) {
        const checkpoint = { size, rootHash: hashes[size] as Uint8Array };
        const result = await verifyChain(trx, { batchSize: 10, checkpoint });
        expect(result).toMatchObject({ ok: false, first_bad_seq: 18, reason: 'hash_mismatch' });
        expect(result.checkpoint).toEqual({ size, ok: true });
      }
      const at18 = await verifyChain(trx, {
        batchSize: 10,
        checkpoint: { size: 18, rootHash: hashes[18] as Uint8Array },
      });
      expect(at18.checkpoint).toEqual({ size: 18, ok: false });
    });
  });

  it('reads stream and type holding a TAB, a newline or a leading quote (sent JSON-encoded), and checks them', async () => {
    await tampered(async (trx) => {
      await sql`update events set stream = ${'"test-\t\n\\ 😀'}, type = ${'"type\ttest.any'} where seq = 14`.execute(
        trx,
      );
      await sql`update events set stream = ${'tab\there'} where seq = 25`.execute(trx);
      await rehashFrom(trx, 14);
      const text = await fetchPage(trx, 11, 20, 10);
      expect(text).toContain('\t"\\"test-\\t\\n\\\\ 😀"\t');
      expect(await verifyChain(trx, { batchSize: 10 })).toMatchObject({ ok: true, checked: SIZE });
      await sql`update events set type = ${'"type\ttest.anY'} where seq = 14`.execute(trx);
      expect(await verifyChain(trx, { batchSize: 10 })).toMatchObject({ first_bad_seq: 14, reason: 'hash_mismatch' });
    });
  });
});

describe('verifyPage', () => {
  it('asks for the page again in order when its events come out of order', async () => {
    const ordered = await fetchPage(t.db, 1, 5, 5, true);
    expect(await fetchPage(t.db, 1, 5, 5)).toBe(ordered);
    const lines = ordered.split('\n');
    expect(lines).toHaveLength(5);
    const shuffled = [lines[0], lines[2], lines[1], lines[3], lines[4]].join('\n');
    expect(verifyPage(shuffled)).toMatchObject({ unordered: true });
    expect(verifyPage(ordered)).toMatchObject({ count: 5, firstSeq: 1, bad: null });
  });

  it('returns nothing for an empty range', async () => {
    expect(await fetchPage(t.db, SIZE + 1, SIZE + 10, 10)).toBe('');
    expect(verifyPage('')).toMatchObject({ count: 0, bad: null });
  });
});

// Random tampering: one to three edits a superuser could make, anywhere in the log.
const seqArb = fc.integer({ min: 1, max: SIZE });
const jsonbValue = fc.oneof(
  fc.constantFrom(
    '{"value": 1.0}',
    '{"value": 1.5}',
    '{"value": 12345678901234567890}',
    '{"value": "\\u0001"}',
    '{"value": {"b\\"": 1, "a": 2}}',
    '{"value": [1, 2, 3]}',
    '"scalar"',
    '[]',
    `{"value": ${'['.repeat(70)}${']'.repeat(70)}}`,
  ),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify({ value: v })),
);
const edit = fc.oneof(
  fc.record({ kind: fc.constant('data' as const), seq: seqArb, value: jsonbValue, rehash: fc.boolean() }),
  fc.record({
    kind: fc.constant('stream' as const),
    seq: seqArb,
    value: fc.constantFrom('test-x', '"q', 'a\tb', 'n\nl', 'back\\slash', 'é😀', 'ctl\u0001'),
    rehash: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('delete' as const), seq: seqArb, count: fc.integer({ min: 1, max: 12 }) }),
  fc.record({ kind: fc.constant('prev_hash' as const), seq: seqArb }),
  fc.record({ kind: fc.constant('hash' as const), seq: seqArb }),
  fc.record({
    kind: fc.constant('hash_length' as const),
    seq: seqArb,
    column: fc.constantFrom('prev_hash', 'hash'),
    length: fc.constantFrom(0, 31, 33),
  }),
  fc.record({ kind: fc.constant('occurred_at' as const), seq: seqArb, rehash: fc.boolean() }),
  fc.record({ kind: fc.constant('head' as const), seq: fc.integer({ min: 0, max: SIZE + 5 }) }),
);
type Edit = typeof edit extends fc.Arbitrary<infer E> ? E : never;

async function apply(trx: Transaction<Database>, e: Edit): Promise<void> {
  switch (e.kind) {
    case 'data':
      await sql`update events set data = ${e.value}::jsonb where seq = ${e.seq}`.execute(trx);
      if (e.rehash) await rehashFrom(trx, e.seq);
      return;
    case 'stream':
      await sql`update events set stream = ${e.value} where seq = ${e.seq}`.execute(trx);
      if (e.rehash) await rehashFrom(trx, e.seq);
      return;
    case 'delete':
      await sql`delete from events where seq >= ${e.seq} and seq < ${e.seq + e.count}`.execute(trx);
      return;
    case 'prev_hash':
      await sql`update events set prev_hash = ${randomBytes(32)} where seq = ${e.seq}`.execute(trx);
      return;
    case 'hash':
      await sql`update events set hash = ${randomBytes(32)} where seq = ${e.seq}`.execute(trx);
      return;
    case 'hash_length':
      // As a superuser can: the check constraint on the hashes' length dropped first.
      await sql`alter table events drop constraint if exists events_hash_length`.execute(trx);
      await sql`update events set ${sql.ref(e.column)} = ${randomBytes(e.length)} where seq = ${e.seq}`.execute(trx);
      return;
    case 'occurred_at':
      await sql`update events set occurred_at = occurred_at + interval '1 ms' where seq = ${e.seq}`.execute(trx);
      if (e.rehash) await rehashFrom(trx, e.seq);
      return;
    case 'head':
      await sql`update chain_head set seq = ${e.seq}, hash = coalesce((select hash from events where seq = ${e.seq}), ${randomBytes(32)}) where id`.execute(
        trx,
      );
      return;
  }
}

/**
 * Every page of [1, SIZE + 2] in pages of `batchSize`, read as bytes (which must be possible: `trx` is a transaction
 * of a database createDb made) and as text: where the byte reader takes a page, its result is the text reader's.
 * Returns how many pages the byte reader took and how many it left to the text path.
 */
async function bytesAgreeWithText(
  trx: Transaction<Database>,
  batchSize: number,
  hashAtSeq: number,
): Promise<{ taken: number; left: number }> {
  const tally = { taken: 0, left: 0 };
  for (let from = 1; from <= SIZE + 2; from += batchSize) {
    const to = from + batchSize - 1;
    const bytes = await fetchBytePage(trx, from, to);
    expect(bytes).not.toBeNull();
    const fromBytes = verifyBytePage(bytes as Buffer, hashAtSeq);
    const fromText: PageResult = verifyPage(await fetchPage(trx, from, to, batchSize), hashAtSeq);
    if (fromBytes === null) tally.left++;
    else {
      tally.taken++;
      expect(fromBytes, `page ${from}..${to}`).toEqual(fromText);
    }
  }
  return tally;
}

describe('the paged walk agrees with the sequential walk it replaced (property)', () => {
  it('on randomly tampered logs, for every page size, with and without checkpoints', async () => {
    const outcomes = new Map<string, number>();
    const pages = { taken: 0, left: 0 };
    await fc.assert(
      fc.asyncProperty(
        fc.array(edit, { minLength: 1, maxLength: 3 }),
        fc.constantFrom(1, 2, 3, 7, 10, 16, 1000),
        fc.integer({ min: 0, max: SIZE + 2 }),
        fc.boolean(),
        async (edits, batchSize, size, genuineRoot) => {
          await tampered(async (trx) => {
            for (const e of edits) await apply(trx, e);
            const rootHash =
              genuineRoot && size <= SIZE ? (hashes[size] as Uint8Array) : new Uint8Array(randomBytes(32));
            const checkpoint: CheckpointClaim = { size, rootHash };
            const plain = await verifyChain(trx, { batchSize });
            expect(plain).toEqual(await rowByRowVerifyChain(trx, { batchSize: 10 }));
            outcomes.set(plain.reason ?? 'ok', (outcomes.get(plain.reason ?? 'ok') ?? 0) + 1);
            expect(await verifyChain(trx, { batchSize, checkpoint })).toEqual(
              await rowByRowVerifyChain(trx, { batchSize: 10, checkpoint }),
            );
            expect(await verifySince(trx, checkpoint, { batchSize })).toEqual(
              await rowByRowVerifyChain(trx, { batchSize: 10 }, checkpoint),
            );
            const tally = await bytesAgreeWithText(trx, batchSize, size);
            pages.taken += tally.taken;
            pages.left += tally.left;
          });
        },
      ),
      { numRuns: 60 },
    );
    // The edits must reach the interesting outcomes, or the property says little.
    for (const reason of ['ok', 'hash_mismatch', 'gap', 'broken_link'])
      expect(outcomes.get(reason) ?? 0).toBeGreaterThan(0);
    // Both page readers must have been compared: pages the byte reader took, and pages it left to the text path.
    expect(pages.taken).toBeGreaterThan(20);
    expect(pages.left).toBeGreaterThan(0);
  }, 120_000);
});

describe('verifyChain reads an ordinary log as bytes (verify-bytes.ts)', () => {
  let ordinary: TestDb;
  const EVENTS = 30;
  beforeAll(async () => {
    ordinary = await createTestDb();
    const store = new EventStore({ db: ordinary.db, catalogue });
    for (let i = 0; i < EVENTS; i++) {
      await store.append({
        streams: [
          {
            stream: `session-ses_${i % 4}`,
            expectedVersion: 'any',
            events: [
              {
                type: 'test.any',
                data: {
                  value: {
                    session_id: `ses_${i}`,
                    user_id: 'user_01',
                    scopes: ['keys:read', 'keys:write'],
                    count: i,
                    ok: i % 2 === 0,
                    note: i === 3 ? 'Zoë "quoted"\ttab 😀' : null,
                  },
                },
              },
            ],
          },
        ],
        meta,
        occurredAt: new Date(Date.UTC(2026, 10, 22, 14, 0, i, i * 7)),
      });
    }
  }, 60_000);
  afterAll(async () => {
    await ordinary?.close();
  });

  it('takes every page of it, on the database and inside a transaction, with the text reader’s results', async () => {
    for (const db of [ordinary.db]) {
      for (const batchSize of [1, 7, 1000]) {
        for (let from = 1; from <= EVENTS; from += batchSize) {
          const to = from + batchSize - 1;
          const bytes = await fetchBytePage(db, from, to);
          const page = verifyBytePage(bytes as Buffer);
          expect(page, `page ${from}..${to}`).not.toBeNull();
          expect(page).toEqual(verifyPage(await fetchPage(db, from, to, batchSize)));
        }
      }
    }
    await ordinary.db.transaction().execute(async (trx) => {
      const page = verifyBytePage((await fetchBytePage(trx, 1, EVENTS)) as Buffer, 12);
      expect(page).toMatchObject({ count: EVENTS, firstSeq: 1, bad: null });
      expect(page?.hashAt).toBe(Buffer.from((await readEvent(trx, 12)).hash).toString('hex'));
    });
    expect(await verifyChain(ordinary.db, { batchSize: 7 })).toMatchObject({ ok: true, checked: EVENTS });
  });

  it('leaves a page to the text reader for what it does not take, and the walk still agrees', async () => {
    const cases: [string, (trx: Transaction<Database>) => Promise<unknown>][] = [
      [
        'an occurred_at before 1858',
        (trx) => sql`update events set occurred_at = '1800-01-01T00:00:00Z' where seq = 9`.execute(trx),
      ],
      [
        'an occurred_at after 2142',
        (trx) => sql`update events set occurred_at = '2200-01-01T00:00:00.123Z' where seq = 9`.execute(trx),
      ],
      ['a stream with a quote', (trx) => sql`update events set stream = 'a"b' where seq = 9`.execute(trx)],
      [
        'a type with a control character',
        (trx) => sql`update events set type = ${'test.\u0001any'} where seq = 9`.execute(trx),
      ],
      ['a name beyond ASCII', (trx) => sql`update events set data = '{"value": {"é": 1}}' where seq = 9`.execute(trx)],
      ['a float', (trx) => sql`update events set data = '{"value": 2.5}' where seq = 9`.execute(trx)],
      [
        'a prev_hash of 31 bytes (its check constraint dropped first, as a superuser can)',
        async (trx) => {
          await sql`alter table events drop constraint events_hash_length`.execute(trx);
          await sql`update events set prev_hash = substring(prev_hash from 2) where seq = 9`.execute(trx);
        },
      ],
    ];
    for (const [what, edit] of cases) {
      await tamperedIn(ordinary, async (trx) => {
        await edit(trx);
        // Re-hashed so the log holds together, except the prev_hash case, which a re-hash would put right again.
        if (!what.includes('prev_hash')) await rehashFrom(trx, 9);
        expect(verifyBytePage((await fetchBytePage(trx, 1, EVENTS)) as Buffer), what).toBeNull();
        expect(verifyBytePage((await fetchBytePage(trx, 1, 8)) as Buffer), what).not.toBeNull();
        const result = await verifyChain(trx, { batchSize: 5 });
        expect(result, what).toEqual(await rowByRowVerifyChain(trx, { batchSize: 10 }));
      });
    }
  });
});

async function readEvent(trx: Transaction<Database>, seq: number): Promise<{ hash: Uint8Array }> {
  const { rows } = await sql<{ hash: Uint8Array }>`select hash from events where seq = ${seq}`.execute(trx);
  return rows[0] as { hash: Uint8Array };
}

/** Runs `fn` on `db` as a superuser with the append-only triggers off, then rolls everything back. */
async function tamperedIn(db: TestDb, fn: (trx: Transaction<Database>) => Promise<void>): Promise<void> {
  const rollback = new Error('rollback');
  await db.db
    .transaction()
    .execute(async (trx) => {
      await sql`set local session_replication_role = replica`.execute(trx);
      await fn(trx);
      throw rollback;
    })
    .catch((error: unknown) => {
      if (error !== rollback) throw error;
    });
}
