import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  canonicalEvent,
  canonicalJson,
  eventHash,
  fromHex,
  type HashedEventFields,
  MAX_JSON_DEPTH,
  NotCanonicalError,
  toHex,
  ZERO_HASH,
} from './canonical.ts';

describe('canonicalJson: RFC 8785 vectors restricted to our domain', () => {
  it('sorts members by UTF-16 code units (RFC 8785 §3.2.3, the non-ASCII sorting example)', () => {
    const input = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    // By code point the emoji (U+1F600) would sort last; by UTF-16 unit its high surrogate 0xD83D precedes 0xFB33.
    expect(canonicalJson(input)).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
        '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
  });

  it('escapes strings as RFC 8785 §3.2.2.2 requires (the RFC §3.2.4 example, its floats left out)', () => {
    const input = JSON.parse(
      String.raw`{"string":"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/","literals":[null,true,false]}`,
    );
    expect(canonicalJson(input)).toBe(String.raw`{"literals":[null,true,false],"string":"€$\u000f\nA'B\"\\\\\"/"}`);
  });

  it('uses the short escapes, lowercase \\u00xx for other controls, and leaves everything else raw', () => {
    const all = Array.from({ length: 0x20 }, (_, i) => String.fromCharCode(i))
      .join('')
      .slice(1); // no NUL
    expect(canonicalJson(all)).toBe(
      String.raw`"\u0001\u0002\u0003\u0004\u0005\u0006\u0007\b\t\n\u000b\f\r\u000e\u000f` +
        String.raw`\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f"`,
    );
    // U+007F, U+2028/2029, BOM, astral characters and '/' are not escaped.
    expect(canonicalJson('\u007f\u2028\u2029\ufeff\ud83d\ude00/é')).toBe('"\u007f\u2028\u2029\ufeff😀/é"');
    expect(canonicalJson('"\\')).toBe(String.raw`"\"\\"`);
  });

  it('prints integers like ECMAScript, -0 as 0 (RFC 8785 appendix B, the integer rows)', () => {
    expect(canonicalJson(0)).toBe('0');
    expect(canonicalJson(-0)).toBe('0');
    expect(canonicalJson(2 ** 53 - 1)).toBe('9007199254740991');
    expect(canonicalJson(-(2 ** 53 - 1))).toBe('-9007199254740991');
    expect(canonicalJson(1e15)).toBe('1000000000000000');
    expect(canonicalJson([-1, 42, 100])).toBe('[-1,42,100]');
  });

  it('keeps array order, sorts nested objects, keeps unnormalised keys apart, and emits no whitespace', () => {
    const input = {
      b: [3, 1, { z: null, a: [true, false, { y: 'x', x: 'y' }] }, []],
      a: { '\u00e9': 1, e: { '': {} }, 'e\u0301': 2, E: 3, aa: 4, a: 5 },
    };
    expect(canonicalJson(input)).toBe(
      '{"a":{"E":3,"a":5,"aa":4,"e":{"":{}},"e\u0301":2,"\u00e9":1},"b":[3,1,{"a":[true,false,{"x":"y","y":"x"}],"z":null},[]]}',
    );
    expect(canonicalJson({})).toBe('{}');
    expect(canonicalJson([])).toBe('[]');
    expect(canonicalJson('')).toBe('""');
    expect(canonicalJson(Object.assign(Object.create(null), { b: 1, a: 2 }))).toBe('{"a":2,"b":1}');
  });

  it(`accepts ${MAX_JSON_DEPTH} levels of nesting and no more`, () => {
    const nest = (n: number): unknown => (n === 0 ? 0 : [nest(n - 1)]);
    expect(canonicalJson(nest(MAX_JSON_DEPTH))).toBe(`${'['.repeat(MAX_JSON_DEPTH)}0${']'.repeat(MAX_JSON_DEPTH)}`);
    expect(() => canonicalJson(nest(MAX_JSON_DEPTH + 1))).toThrow(NotCanonicalError);
  });
});

describe('canonicalJson refuses what would not survive jsonb unchanged', () => {
  class Point {
    x = 1;
  }
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  const cases: [string, unknown][] = [
    ['a float', 1.5],
    ['a tiny float', 5e-324],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
    ['2^53 (unsafe)', 2 ** 53],
    ['-(2^53) (unsafe)', -(2 ** 53)],
    ['1e21', 1e21],
    ['a lone high surrogate', '\ud800'],
    ['a lone low surrogate', 'a\udc00b'],
    ['reversed surrogates', '\ude00\ud83d'],
    ['a NUL in a string', 'a\u0000b'],
    ['a NUL in a key', { 'a\u0000': 1 }],
    ['a lone surrogate in a key', { '\udfff': 1 }],
    ['an undefined member', { a: undefined }],
    ['undefined', undefined],
    ['an undefined array element', [1, undefined]],
    ['a hole in an array', Object.assign(new Array(2), { 1: 2 })],
    ['a Date', new Date(0)],
    ['a Map', new Map([['a', 1]])],
    ['a Set', new Set([1])],
    ['a class instance', new Point()],
    ['a boxed string', Object('a')],
    ['a Buffer', Buffer.from('a')],
    ['a bigint', 1n],
    ['a function', () => 1],
    ['a symbol', Symbol('s')],
    ['a nested float', { a: [{ b: 0.1 }] }],
    ['a nested Date', { when: [new Date(0)] }],
    ['a cycle', cyclic],
  ];
  for (const [what, value] of cases) {
    it(`refuses ${what}`, () => {
      expect(() => canonicalJson(value)).toThrow(NotCanonicalError);
    });
  }
});

describe('eventHash: fixed vectors', () => {
  const e1: HashedEventFields = {
    seq: 1,
    id: '01937a4e-5c00-7abc-8def-0123456789ab',
    stream: 'user-user_01jd0000000000000000000000',
    stream_version: 1,
    type: 'user.registered',
    schema_version: 1,
    data: {
      user_id: 'user_01jd0000000000000000000000',
      email: 'zoë@example.com',
      name: 'Zoë "Z"\t😀',
      role: 'member',
      method: 'admin',
    },
    meta: { actor: { type: 'system', id: null }, via: 'system', ip: null, user_agent: null, request_id: null },
    occurred_at: '2026-11-22T14:00:00.000Z',
  };
  // Written out by hand from DESIGN §2 and RFC 8785: members sorted, no whitespace, '"' and TAB escaped,
  // 'ë' and '😀' left as raw UTF-8.
  const e1Jcs = String.raw`{"data":{"email":"zoë@example.com","method":"admin","name":"Zoë \"Z\"\t😀","role":"member","user_id":"user_01jd0000000000000000000000"},"id":"01937a4e-5c00-7abc-8def-0123456789ab","meta":{"actor":{"id":null,"type":"system"},"ip":null,"request_id":null,"user_agent":null,"via":"system"},"occurred_at":"2026-11-22T14:00:00.000Z","schema_version":1,"seq":1,"stream":"user-user_01jd0000000000000000000000","stream_version":1,"type":"user.registered"}`;
  // sha256(32 zero bytes || UTF-8 of e1Jcs), computed once outside this code base with coreutils:
  //   (head -c 32 /dev/zero; printf '%s' "$JCS") | sha256sum
  const e1Hash = '2f67287938025b25f45cfccc7a5d5b0c4214401d618d06d443c2c08244b42cec';

  const e2: HashedEventFields = {
    ...e1,
    seq: 2,
    stream_version: 2,
    id: '01937a4e-5c01-7abc-8def-0123456789ac',
    type: 'user.role_changed',
    data: { user_id: 'user_01jd0000000000000000000000', from: 'member', to: 'admin' },
  };
  const e2Jcs =
    '{"data":{"from":"member","to":"admin","user_id":"user_01jd0000000000000000000000"},"id":"01937a4e-5c01-7abc-8def-0123456789ac","meta":{"actor":{"id":null,"type":"system"},"ip":null,"request_id":null,"user_agent":null,"via":"system"},"occurred_at":"2026-11-22T14:00:00.000Z","schema_version":1,"seq":2,"stream":"user-user_01jd0000000000000000000000","stream_version":2,"type":"user.role_changed"}';
  // sha256(e1Hash bytes || UTF-8 of e2Jcs), likewise with: (printf %s "$E1_HASH" | xxd -r -p; printf %s "$JCS")
  const e2Hash = 'b81eb22f0e586e969de657522cbdb285647454766510de29f58798161bf3835d';

  it('canonicalEvent gives the hand-written JCS text', () => {
    expect(canonicalEvent(e1)).toBe(e1Jcs);
    expect(canonicalEvent(e2)).toBe(e2Jcs);
  });

  it('the hand-written text hashes to the vectors with node:crypto alone', () => {
    expect(createHash('sha256').update(Buffer.alloc(32)).update(e1Jcs, 'utf8').digest('hex')).toBe(e1Hash);
    expect(createHash('sha256').update(fromHex(e1Hash)).update(e2Jcs, 'utf8').digest('hex')).toBe(e2Hash);
  });

  it('eventHash reproduces the vectors and chains through prev_hash', () => {
    expect(ZERO_HASH).toEqual(new Uint8Array(32));
    const h1 = eventHash(ZERO_HASH, e1);
    expect(toHex(h1)).toBe(e1Hash);
    expect(toHex(eventHash(h1, e2))).toBe(e2Hash);
    expect(toHex(eventHash(fromHex(e1Hash), e2))).toBe(e2Hash);
  });

  it('changes with any hashed field, and ignores the member order of the input', () => {
    const reordered = Object.fromEntries(Object.entries(e1).reverse()) as unknown as HashedEventFields;
    expect(toHex(eventHash(ZERO_HASH, reordered))).toBe(e1Hash);
    const variants: HashedEventFields[] = [
      { ...e1, seq: 2 },
      { ...e1, id: e2.id },
      { ...e1, stream: 'user-other' },
      { ...e1, stream_version: 2 },
      { ...e1, type: 'user.registered_' },
      { ...e1, schema_version: 2 },
      { ...e1, data: { ...(e1.data as object), name: 'Zoe "Z"\t😀' } },
      { ...e1, meta: { ...(e1.meta as object), ip: '::1' } },
      { ...e1, occurred_at: '2026-11-22T14:00:00.001Z' },
    ];
    for (const v of variants) expect(toHex(eventHash(ZERO_HASH, v))).not.toBe(e1Hash);
    expect(toHex(eventHash(fromHex(`${'00'.repeat(31)}01`), e1))).not.toBe(e1Hash);
  });

  it('toHex/fromHex round-trip, including a view into a larger buffer', () => {
    const big = new Uint8Array([9, 1, 2, 255, 9]);
    expect(toHex(big.subarray(1, 4))).toBe('0102ff');
    expect(fromHex('0102ff')).toEqual(new Uint8Array([1, 2, 255]));
  });
});

// Our domain: fc.jsonValue with its doubles mapped to safe integers (keeping some -0) and its strings made
// well-formed and NUL-free. The string unit mixes in the characters most likely to be escaped wrongly.
const TRICKY = [
  '\u0000',
  '\ud800',
  '\udc00',
  '\u2028',
  '\u007f',
  '\u0080',
  '"',
  '\\',
  '\u001f',
  '\ufeff',
  'é',
  'e\u0301',
];
const unit = fc.oneof(
  { weight: 1, arbitrary: fc.constantFrom(...TRICKY, '\ud83d\ude00', '\ud83d', '\ude00') },
  { weight: 3, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
);
const cleanString = (s: string) => s.toWellFormed().replaceAll('\u0000', '');
function toDomain(v: unknown): unknown {
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v)) return v;
    return Number.isFinite(v) ? Math.trunc(v) % Number.MAX_SAFE_INTEGER : 0;
  }
  if (typeof v === 'string') return cleanString(v);
  if (Array.isArray(v)) return v.map(toDomain);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [cleanString(k), toDomain(x)]));
  }
  return v;
}
const withoutNegativeZero = (v: unknown): unknown =>
  JSON.parse(JSON.stringify(v, (_k, x) => (Object.is(x, -0) ? 0 : x)));
const domainJson = fc
  .jsonValue({ maxDepth: 4, stringUnit: unit })
  .map(toDomain)
  .chain((v) =>
    fc.oneof(
      fc.constant(v),
      fc.constantFrom(2 ** 53 - 1, -(2 ** 53 - 1), -0).map((n) => [v, n]),
    ),
  );

describe('canonicalJson properties', () => {
  it('agrees with the canonicalize package and round-trips through JSON.parse', () => {
    fc.assert(
      fc.property(domainJson, (v) => {
        const text = canonicalJson(v);
        expect(text).toBe(canonicalize(v));
        expect(JSON.parse(text)).toEqual(withoutNegativeZero(v));
        // Canonical text is a fixed point: parsing and re-serialising changes nothing.
        expect(canonicalJson(JSON.parse(text))).toBe(text);
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses any string or key holding a NUL or a lone surrogate, wherever it sits', () => {
    const bad = fc
      .tuple(
        fc.string({ unit }),
        fc.constantFrom('\u0000', '\ud800', '\udbff', '\udc00', '\udfff'),
        fc.string({ unit }),
      )
      .map(([a, b, c]) => a + b + c)
      .filter((s) => !(s.isWellFormed() && !s.includes('\u0000')));
    const place = fc.constantFrom<(s: string) => unknown>(
      (s) => s,
      (s) => ({ [s]: 1 }),
      (s) => [1, { a: [s] }],
      (s) => ({ a: { [s]: null } }),
    );
    fc.assert(
      fc.property(bad, place, (s, wrap) => {
        expect(() => canonicalJson(wrap(s))).toThrow(NotCanonicalError);
      }),
      { numRuns: 500 },
    );
  });
});
