import { createTestDb, type TestDb } from '@keyledger/db/testing';
import fc from 'fast-check';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { meta } from '../../test/helpers.ts';
import { InvalidEventError, type InvalidEventReason } from '../errors.ts';
import { eventHash, toHex } from './canonical.ts';
import { createCatalogue, defineEvent } from './catalogue.ts';
import { EventStore } from './event-store.ts';
import { MAX_EVENT_BYTES } from './prepare.ts';
import { readChainHead, readEventBySeq } from './read.ts';
import { verifyChain } from './verify.ts';

// One event type whose data is any JSON value zod accepts: everything else is up to the canonical form.
const catalogue = createCatalogue([defineEvent('test.any', 1, { value: z.json() })]);
const OCCURRED_AT = new Date('2026-11-22T14:00:00.000Z');

let t: TestDb;
let store: EventStore;
beforeEach(async () => {
  t = await createTestDb();
  store = new EventStore({ db: t.db, catalogue });
});
afterEach(async () => {
  await t.close();
});

type Outcome = { ok: true; seq: number; hash: string } | { ok: false; reason: InvalidEventReason };

async function appendValue(value: unknown, occurredAt = OCCURRED_AT): Promise<Outcome> {
  try {
    const { events } = await store.append({
      streams: [{ stream: 'test-any', expectedVersion: 'any', events: [{ type: 'test.any', data: { value } }] }],
      meta,
      occurredAt,
    });
    const e = events[0];
    if (!e) throw new Error('append returned no event');
    return { ok: true, seq: e.seq, hash: toHex(e.hash) };
  } catch (error) {
    if (error instanceof InvalidEventError) return { ok: false, reason: error.reason };
    throw error;
  }
}

const withoutNegativeZero = (v: unknown): unknown =>
  JSON.parse(JSON.stringify(v, (_k, x) => (Object.is(x, -0) ? 0 : x)));

/** The stored event reads back equal, its hash recomputes from what was read, and the whole chain verifies. */
async function expectStoredIntact(outcome: Outcome & { ok: true }, value: unknown, prevHead: string) {
  const back = await readEventBySeq(t.db, outcome.seq);
  if (!back) throw new Error(`event ${outcome.seq} is missing`);
  expect(back.data).toEqual({ value: withoutNegativeZero(value) });
  expect(toHex(back.prev_hash)).toBe(prevHead);
  expect(toHex(back.hash)).toBe(outcome.hash);
  const recomputed = eventHash(back.prev_hash, { ...back, occurred_at: back.occurred_at.toISOString() });
  expect(toHex(recomputed)).toBe(outcome.hash);
  const verified = await verifyChain(t.db);
  expect(verified).toMatchObject({ ok: true, checked: outcome.seq, reason: null });
  expect(verified.head?.hash).toBe(outcome.hash);
}

async function headHex(): Promise<string> {
  return toHex((await readChainHead(t.db)).hash);
}

async function expectNothingWritten(seqBefore: number) {
  expect((await readChainHead(t.db)).seq).toBe(seqBefore);
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from events`.execute(t.db);
  expect(rows[0]?.n).toBe(seqBefore);
}

// What prepareAppend must refuse, and with which reasons, for `data = { value }` (DESIGN §2, prepare.ts).
const SECRET_FIELD =
  /^(?:password|passwd|secret|client_secret|plaintext|access_token|refresh_token|api_key|token|code)$/i;
function expectedRefusals(value: unknown): Set<InvalidEventReason> {
  const reasons = new Set<InvalidEventReason>();
  const badString = (s: string) => !s.isWellFormed() || s.includes('\u0000');
  const walk = (v: unknown, depth: number) => {
    if (depth > 32) reasons.add('too_large'); // the secret scan's nesting limit (data itself is depth 0)
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) reasons.add('schema');
      else if (!Number.isSafeInteger(v)) reasons.add('not_canonical');
    } else if (typeof v === 'string') {
      if (badString(v)) reasons.add('not_canonical');
    } else if (Array.isArray(v)) {
      for (const x of v) walk(x, depth + 1);
    } else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (k === '__proto__') reasons.add('schema');
        if (badString(k)) reasons.add('not_canonical');
        walk(x, depth + 1);
      }
    }
  };
  walk(value, 1);
  if (reasons.size === 0) {
    const bytes = Buffer.byteLength(JSON.stringify({ value })) + Buffer.byteLength(JSON.stringify(meta));
    if (bytes > MAX_EVENT_BYTES - 64) reasons.add('too_large'); // near the limit, leave either outcome possible
  }
  return reasons;
}

const VALID_TRICKY = ['\u2028', '\u2029', '\u007f', '\u0080', '"', '\\', '\n', '\u001f', '\ufeff', 'é', 'e\u0301'];
const unit = fc.oneof(
  { weight: 12, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 4, arbitrary: fc.constantFrom(...VALID_TRICKY, '\ud83d\ude00', '\ud83d', '\ude00') },
  { weight: 1, arbitrary: fc.constantFrom('\u0000', '\ud800', '\udfff') },
);
const text = fc.string({ unit, maxLength: 10 });
const key = fc.oneof(
  { weight: 20, arbitrary: text.filter((k) => !SECRET_FIELD.test(k)) },
  { weight: 1, arbitrary: fc.constantFrom('__proto__', '\u00e9', 'e\u0301', 'constructor', '') },
);
const integer = fc.oneof(
  fc.integer(),
  fc.maxSafeInteger(),
  fc.constantFrom(0, -0, 2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 31, -(2 ** 31) - 1),
);
const offDomainNumber = fc.constantFrom(1.5, -0.1, 2 ** 53, -(2 ** 53), 1e21, 5e-324, Number.NaN, Infinity);
const leaf = fc.oneof(
  { weight: 6, arbitrary: text },
  { weight: 6, arbitrary: integer },
  { weight: 2, arbitrary: fc.constantFrom(null, true, false) },
  { weight: 1, arbitrary: offDomainNumber },
);
const { json } = fc.letrec<{ json: unknown }>((tie) => ({
  json: fc.oneof(
    { maxDepth: 5, depthIdentifier: 'json', withCrossShrink: true },
    leaf,
    fc.array(tie('json'), { maxLength: 4, depthIdentifier: 'json' }),
    fc.dictionary(key, tie('json'), { maxKeys: 4, depthIdentifier: 'json' }),
  ),
}));

describe('any value survives the jsonb round trip with the same hash, or is refused up front', () => {
  it('holds for generated values (property)', async () => {
    let accepted = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(json, async (value) => {
        const before = await readChainHead(t.db);
        const prevHead = toHex(before.hash);
        const expected = expectedRefusals(value);
        const outcome = await appendValue(value);
        if (outcome.ok) {
          accepted++;
          // Only a value within a hair of the size limit may be accepted while we predicted a refusal.
          expect([...expected].filter((r) => r !== 'too_large')).toEqual([]);
          await expectStoredIntact(outcome, value, prevHead);
        } else {
          refused++;
          expect(expected).toContain(outcome.reason);
          await expectNothingWritten(before.seq);
        }
      }),
      { numRuns: 100 },
    );
    // The generator must exercise both sides, or the property says little.
    expect(accepted).toBeGreaterThanOrEqual(30);
    expect(refused).toBeGreaterThanOrEqual(5);
  }, 60_000);

  const nest = (n: number): unknown => (n === 0 ? 'leaf' : [nest(n - 1)]);
  const cases: [string, unknown, 'ok' | InvalidEventReason][] = [
    ['a line separator', '\u2028', 'ok'],
    ['an emoji (surrogate pair)', '\ud83d\ude00', 'ok'],
    ['every escape JCS knows', '"\\/\b\f\n\r\t\u0001\u001f\u007f', 'ok'],
    ['a NUL character', 'a\u0000b', 'not_canonical'],
    ['a NUL in a key', { 'a\u0000': 1 }, 'not_canonical'],
    ['a lone high surrogate', '\ud800', 'not_canonical'],
    ['a lone surrogate in a key', { '\udc00': 1 }, 'not_canonical'],
    ['2^53 - 1', 2 ** 53 - 1, 'ok'],
    ['-(2^53 - 1)', -(2 ** 53 - 1), 'ok'],
    ['2^53', 2 ** 53, 'not_canonical'],
    ['-0', -0, 'ok'],
    ['a float', 1.5, 'not_canonical'],
    ['NaN', Number.NaN, 'schema'],
    ["keys '\\u00e9' and 'e\\u0301' side by side", { '\u00e9': 'precomposed', 'e\u0301': 'combining' }, 'ok'],
    ['a __proto__ key (zod would drop it silently)', JSON.parse('{"__proto__":{"a":1},"b":2}'), 'schema'],
    ['31 levels of arrays (the limit)', nest(31), 'ok'],
    ['32 levels of arrays', nest(32), 'too_large'],
    ['5,000 euro signs (15,000 UTF-8 bytes)', '€'.repeat(5000), 'ok'],
    ['6,000 euro signs (18,000 UTF-8 bytes but 6,000 UTF-16 units)', '€'.repeat(6000), 'too_large'],
  ];
  for (const [what, value, expected] of cases) {
    it(`${expected === 'ok' ? 'keeps' : `refuses (${expected})`} ${what}`, async () => {
      await appendValue('first'); // so the event under test links to a real predecessor
      const prevHead = await headHex();
      const outcome = await appendValue(value);
      if (expected === 'ok') {
        expect(outcome).toMatchObject({ ok: true, seq: 2 });
        await expectStoredIntact(outcome as Outcome & { ok: true }, value, prevHead);
      } else {
        expect(outcome).toEqual({ ok: false, reason: expected });
        await expectNothingWritten(1);
      }
    });
  }
});

describe('occurred_at survives the round trip', () => {
  const cases: [string, 'ok' | 'schema'][] = [
    ['1970-01-01T00:00:00.000Z', 'ok'],
    ['2026-11-22T14:00:00.123Z', 'ok'],
    ['9999-12-31T23:59:59.999Z', 'ok'],
    // toISOString() gives '+010000-…' but verify's to_char gives '10000-…': stored, then unverifiable forever.
    ['+010000-01-01T00:00:00.000Z', 'schema'],
    ['1969-12-31T23:59:59.999Z', 'schema'],
  ];
  for (const [iso, expected] of cases) {
    it(`${expected === 'ok' ? 'keeps' : 'refuses'} ${iso}`, async () => {
      const prevHead = await headHex();
      const outcome = await appendValue(1, new Date(iso));
      if (expected === 'ok') {
        expect(outcome).toMatchObject({ ok: true, seq: 1 });
        await expectStoredIntact(outcome as Outcome & { ok: true }, 1, prevHead);
        expect((await readEventBySeq(t.db, 1))?.occurred_at.toISOString()).toBe(iso);
      } else {
        expect(outcome).toEqual({ ok: false, reason: 'schema' });
        await expectNothingWritten(0);
      }
    });
  }

  // KNOWN BUG (event-store.ts, not fixed here): the insert passes occurred_at as a JS Date, which node-postgres
  // serialises in the process's local zone with the offset cut to whole minutes. Liberia was at UTC-0:44:30 until
  // 1972, so the stored instant is 30 s off the hashed ISO string and verify reports hash_mismatch. PGlite
  // serialises Dates in UTC and passes. Fix: insert `cast(${append.occurredAtIso} as timestamptz)` instead.
  it('whatever the process time zone (a zone with a seconds offset)', async () => {
    const savedTz = process.env.TZ;
    process.env.TZ = 'Africa/Monrovia';
    try {
      const at = new Date('1971-06-01T00:00:00.000Z');
      expect(at.getTimezoneOffset()).not.toBe(0); // the zone really applies in this process
      const outcome = await appendValue(1, at);
      expect(outcome).toMatchObject({ ok: true, seq: 1 });
      await expectStoredIntact(outcome as Outcome & { ok: true }, 1, '00'.repeat(32));
    } finally {
      if (savedTz === undefined) delete process.env.TZ;
      else process.env.TZ = savedTz;
    }
  });
});
