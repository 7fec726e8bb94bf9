import { createTestDb, type TestDb } from '@keyledger/db/testing';
import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson, NotCanonicalError } from './canonical.ts';
import { canonicalFromJsonbText } from './jsonb-canonical.ts';
import { canonicalFromJsonbBytes } from './verify-bytes.ts';

/**
 * The jsonb fast path must give exactly what the generic path gives — `canonicalJson(JSON.parse(text))` — for any
 * text Postgres prints for a jsonb value, or step aside (undefined). The texts here come from a real jsonb round
 * trip on the test database (PGlite, or Postgres with TEST_DATABASE_URL).
 */

let t: TestDb;
beforeAll(async () => {
  t = await createTestDb();
});
afterAll(async () => {
  await t?.close();
});

/** What Postgres prints for each JSON text once stored as jsonb: as text, and as `jsonb_send` bytes (verify-bytes). */
async function throughJsonb(texts: readonly string[]): Promise<{ text: string; bytes: Uint8Array }[]> {
  const { rows } = await sql<{ out: string; sent: Uint8Array }>`
    select v::jsonb::text as out, jsonb_send(v::jsonb) as sent
      from unnest(${texts}::text[]) with ordinality as u(v, i) order by i`.execute(t.db);
  // jsonb_send: a version byte (1), then the text in UTF-8.
  return rows.map((r) => {
    expect(r.sent[0]).toBe(1);
    return { text: r.out, bytes: r.sent.subarray(1) };
  });
}

type Generic = { ok: true; text: string } | { ok: false };
function generic(text: string): Generic {
  try {
    return { ok: true, text: canonicalJson(JSON.parse(text)) };
  } catch (error) {
    if (error instanceof NotCanonicalError) return { ok: false };
    throw error;
  }
}

/**
 * Both fast paths — on the text (verify-page.ts) and on the bytes (verify-bytes.ts) — agree with the generic one or
 * step aside; returns whether each took the value.
 */
function expectAgrees(jsonb: { text: string; bytes: Uint8Array }): { text: boolean; bytes: boolean } {
  expect(Buffer.from(jsonb.bytes).toString('utf8')).toBe(jsonb.text);
  const reference = generic(jsonb.text);
  const fast = canonicalFromJsonbText(jsonb.text);
  if (fast !== undefined) expect(reference).toEqual({ ok: true, text: fast });
  const fromBytes = canonicalFromJsonbBytes(jsonb.bytes);
  if (fromBytes !== undefined) expect(reference).toEqual({ ok: true, text: fromBytes });
  return { text: fast !== undefined, bytes: fromBytes !== undefined };
}

describe('canonicalFromJsonbText and canonicalFromJsonbBytes on real jsonb output', () => {
  it('handles the shapes events have, and the RFC 8785 examples within our domain', async () => {
    const values: unknown[] = [
      { user_id: 'user_01', from: 'member', to: 'admin' },
      { ip: '203.0.113.7', via: 'rest', actor: { id: null, type: 'user' }, request_id: 'r', user_agent: 'Mozilla/5.0' },
      {
        '\u20ac': 'Euro Sign',
        '\ufb33': 'Hebrew',
        '1': 'One',
        '\ud83d\ude00': 'Emoji',
        '\u0080': 'Control',
        '\u00f6': 'ö',
      },
      { string: '\u20ac$\u000f\nA\'B"\\\\"/', literals: [null, true, false] },
      {
        b: [3, 1, { z: null, a: [true, false, { y: 'x', x: 'y' }] }, []],
        a: { '\u00e9': 1, e: { '': {} }, 'e\u0301': 2, E: 3, aa: 4, a: 5 },
      },
      // Names that a comparison of quoted tokens would order wrongly (' ' and '!' sort before '"').
      { a: 1, 'a ': 2, 'a!': 3, 'a!b': 4, ab: 5 },
      Array.from({ length: 0x20 }, (_, i) => String.fromCharCode(i))
        .join('')
        .slice(1),
      '\u007f\u2028\u2029\ufeff\ud83d\ude00/é',
      [0, -1, 42, 999999999999999, -999999999999999],
      {},
      [],
      '',
      'x',
      true,
      null,
      7,
    ];
    const out = await throughJsonb(values.map((v) => JSON.stringify(v)));
    for (const [i, { text, bytes }] of out.entries()) {
      expect(canonicalFromJsonbText(text), text).toBe(canonicalJson(values[i]));
      // The byte reader takes only ASCII member names: the third and fifth values (names beyond ASCII) are the text
      // path's.
      expect(canonicalFromJsonbBytes(bytes), text).toBe(i === 2 || i === 4 ? undefined : canonicalJson(values[i]));
    }
  });

  it('steps aside for what it does not handle, and the generic path decides', async () => {
    const texts = [
      '1.0', // the integer 1 to JSON.parse
      '1.5',
      '[1e2, 1E-2, -0.0]',
      '1234567890123456', // 16 digits: left to the generic path
      '9007199254740993', // unsafe
      '{"a\\"b": 1}', // an escaped name
      '{"\\u0001": 1}',
      '{"\\r": "Carriage Return", "1": "One"}', // the RFC 8785 sorting example's escaped name
      `${'['.repeat(70)}${']'.repeat(70)}`, // deeper than the fast path goes
      `${'{"a": '.repeat(130)}1${'}'.repeat(130)}`, // deeper than canonicalJson accepts
    ];
    const out = await throughJsonb(texts);
    for (const { text, bytes } of out) {
      expect(canonicalFromJsonbText(text), text).toBeUndefined();
      expect(canonicalFromJsonbBytes(bytes), text).toBeUndefined();
    }
    expect(generic(out[0]?.text as string)).toEqual({ ok: true, text: '1' });
    expect(generic(out[1]?.text as string)).toEqual({ ok: false });
    expect(generic(out[9]?.text as string)).toEqual({ ok: false });
    // Names beyond ASCII are sorted by the text path only.
    const [named] = await throughJsonb(['{"é": 1, "z": 2}']);
    expect(canonicalFromJsonbText(named?.text as string)).toBe('{"z":2,"é":1}');
    expect(canonicalFromJsonbBytes(named?.bytes as Uint8Array)).toBeUndefined();
  });

  it('refuses text in any other shape than jsonb prints', () => {
    for (const text of [
      '{"a":1}', // no space after the colon
      '[1,2]',
      '{"a": 1,"b": 2}',
      ' 1',
      '1 ',
      '{"b": 1, "b": 2}', // a duplicate name
      '-0',
      '01',
      '12x',
      '{"a": 12x}',
      'tru',
      'nul',
      '"\\u0000"',
      '"\\u001F"', // uppercase hex
      '"\\u0041"', // an escape escape_json never writes
      '"\\u000a"', // written \n by escape_json
      '"\\/"',
      '"a\tb"', // a raw control character
      '"unterminated',
      '{"a": "unterminated}',
      '[1, 2',
      'a\u0000',
      '"\ud800"',
    ]) {
      expect(canonicalFromJsonbText(text), JSON.stringify(text)).toBeUndefined();
      // (A lone surrogate has no UTF-8: the bytes of that one would be a replacement character.)
      if (text.isWellFormed()) expect(canonicalFromJsonbBytes(Buffer.from(text)), JSON.stringify(text)).toBeUndefined();
    }
    // Bytes that are not UTF-8 (a lone continuation byte, an encoded surrogate) are never taken.
    for (const bytes of [
      [0x22, 0x80, 0x22],
      [0x22, 0xed, 0xa0, 0x80, 0x22],
      [0x22, 0xc3, 0x22],
    ]) {
      expect(canonicalFromJsonbBytes(Uint8Array.from(bytes))).toBeUndefined();
    }
  });
});

// Generated values: fc.jsonValue with strings that mix in the characters most likely to be escaped or ordered
// wrongly, numbers of every kind (jsonb keeps floats; the generic path refuses them), and nested objects whose
// names differ in UTF-16 order from jsonb's length-then-bytes order.
const TRICKY = [
  '"',
  '\\',
  '/',
  '\b',
  '\f',
  '\n',
  '\r',
  '\t',
  '\u0001',
  '\u001f',
  '\u007f',
  '\u0080',
  '\u2028',
  '\ufeff',
  'é',
  'e\u0301',
  '\ud83d\ude00',
  '\ufb33',
  ' ',
  '!',
];
const unit = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(...TRICKY) },
  { weight: 3, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
);
const text = fc.string({ unit, maxLength: 8 }).map((s) => s.toWellFormed().replaceAll('\u0000', ''));
const number = fc.oneof(
  fc.integer(),
  fc.maxSafeInteger(),
  fc.constantFrom(0, -0, 2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 53, 1e15, 1e16, 1.5, 0.1, 1e21, 5e-324),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);
const { json } = fc.letrec<{ json: unknown }>((tie) => ({
  json: fc.oneof(
    { maxDepth: 5, depthIdentifier: 'json', withCrossShrink: true },
    text,
    number,
    fc.constantFrom(null, true, false),
    fc.array(tie('json'), { maxLength: 5, depthIdentifier: 'json' }),
    fc.dictionary(text, tie('json'), { maxKeys: 6, depthIdentifier: 'json' }),
  ),
}));

describe('canonicalFromJsonbText and canonicalFromJsonbBytes agree with canonicalJson(JSON.parse(…)) (property, real jsonb)', () => {
  it('on generated values after a jsonb round trip', async () => {
    let fast = 0;
    let fastBytes = 0;
    let total = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(json, { minLength: 1, maxLength: 40 }), async (values) => {
        const texts = await throughJsonb(values.map((v) => JSON.stringify(v)));
        for (const jsonb of texts) {
          total++;
          const took = expectAgrees(jsonb);
          if (took.text) fast++;
          if (took.bytes) fastBytes++;
        }
      }),
      { numRuns: 150 },
    );
    // Most generated values are in the fast paths' domain; if they stepped aside for nearly all, it would prove little.
    expect(fast).toBeGreaterThan(total / 4);
    expect(fastBytes).toBeGreaterThan(total / 4);
  }, 120_000);

  it('on event-shaped objects (data and meta), where it must never step aside', async () => {
    const plain = fc.string({ unit: fc.constantFrom(...'abcxyz_-.:/@ 0189éü😀€'), maxLength: 16 });
    const metaArb = fc.record({
      actor: fc.record({ type: fc.constantFrom('user', 'system', 'api_key', 'anonymous'), id: fc.option(plain) }),
      via: fc.constantFrom('web', 'trpc', 'rest', 'cli', 'system'),
      ip: fc.option(plain),
      user_agent: fc.option(fc.string({ maxLength: 120 })),
      request_id: fc.option(plain),
    });
    const dataArb = fc.dictionary(
      fc.constantFrom('user_id', 'email', 'name', 'role', 'scopes', 'count', 'expires_at', 'reason', 'z', 'a', 'ab'),
      fc.oneof(plain, fc.integer(), fc.boolean(), fc.constant(null), fc.array(plain, { maxLength: 4 })),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(dataArb, metaArb), { minLength: 1, maxLength: 20 }), async (events) => {
        const texts = await throughJsonb(events.flatMap(([d, m]) => [JSON.stringify(d), JSON.stringify(m)]));
        for (const jsonb of texts) expect(expectAgrees(jsonb), jsonb.text).toEqual({ text: true, bytes: true });
      }),
      { numRuns: 100 },
    );
  }, 120_000);
});
