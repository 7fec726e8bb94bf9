import { isUtf8 } from 'node:buffer';
import { hash } from 'node:crypto';
import { copyBinaryOut } from '@keyledger/db';
import { jsonbEscapeLength } from './jsonb-canonical.ts';
import type { DbOrTrx } from './types.ts';
import type { PageResult } from './verify-page.ts';

/**
 * One page of the log for `verifyChain`, read as bytes and checked without making a string (docs/adr/0018).
 *
 * The page is `COPY (select … order by seq) TO STDOUT (FORMAT binary)`: per event, eleven length-prefixed values in
 * their types' send forms — seq (int8), id (uuid, 16 bytes), stream_version (int4), schema_version (int2),
 * occurred_at (int8 µs since 2000-01-01 UTC), prev_hash and hash (bytea), stream and type (UTF-8 text), data and
 * meta (jsonb: a version byte, then the jsonb text). So Postgres prints no number, timestamp, uuid or hash as text,
 * nothing is joined into a string on either side, and every field's extent is given, not searched for.
 *
 * The canonical form (RFC 8785) is written byte by byte into a reused buffer, straight from the UTF-8 of the jsonb
 * text: string tokens are copied (Postgres's escape_json escapes exactly as RFC 8785 does), the `": "`/`", "`
 * spacing is dropped, object members are put in name order, and the top level is a template with the nine members
 * already in RFC 8785 order. The fast path takes only what jsonb prints for ordinary events: integers of at most
 * 15 digits, ASCII member names without escapes, nesting up to 64, occurred_at between 1858 and 2142, hashes of 32
 * bytes, no NULL. For a page holding anything else `verifyBytePage` returns null and the caller checks that page
 * through the text path (verify-page.ts), which handles every event (falling back to the generic
 * `canonicalJson(JSON.parse(…))`): a result never depends on which path read the page.
 */

/**
 * Reads the page of events with `from <= seq <= to`; null when `db` cannot COPY (not a database `createDb()` made:
 * read the text page then). `reuse`: a page this returned before and that is no longer needed, whose memory the new
 * page may take.
 */
export function fetchBytePage(db: DbOrTrx, from: number, to: number, reuse?: Buffer): Promise<Buffer | null> {
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to)) throw new RangeError('fetchBytePage: bad range');
  // COPY takes no parameters: the bounds are inlined, and they are integers.
  return copyBinaryOut(
    db,
    `select seq, id, stream_version, schema_version, occurred_at, prev_hash, hash, stream, type, data, meta
       from events where seq >= ${from} and seq <= ${to} order by seq`,
    reuse,
  );
}

/** Thrown inside the reader to leave the fast path; never escapes this module. */
class OffFastPath {}
const OFF = new OffFastPath();

// The same character codes as jsonb-canonical.ts, kept local on purpose: imported from there, V8 reads them through
// the module binding on every use instead of folding them in, and the page check ran ~13% slower (3.6 against
// 3.2 µs an event, measured alternately on one page).
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const SPACE = 0x20;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const MINUS = 0x2d;
const ZERO = 0x30;
const NINE = 0x39;
const JSONB_VERSION = 0x01;
const MAX_DEPTH = 64;
const FIELDS = 11;

const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
/** PGCOPY\n\377\r\n\0, then flags (int32) and the header extension's length (int32). */
const SIGNATURE = Uint8Array.of(0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00);
const OPEN = ascii('{"data":');
const ID = ascii(',"id":"');
const META = ascii('","meta":');
const OCCURRED = ascii(',"occurred_at":"');
const SCHEMA_VERSION = ascii('","schema_version":');
const SEQ = ascii(',"seq":');
const STREAM = ascii(',"stream":"');
const STREAM_VERSION = ascii('","stream_version":');
const TYPE = ascii(',"type":"');
const CLOSE = ascii('"}');
const HEX = ascii('0123456789abcdef');

/**
 * prev_hash (32 bytes), then the canonical form of one event; from `spareAt` on, where an object's members are
 * copied while they are put in order. Each half holds any one event of the page being read.
 */
let out = Buffer.allocUnsafe(128 * 1024);
let spareAt = 64 * 1024;
/** A byte of 0x80 or more was copied: the event's text is checked to be UTF-8 before its hash counts. */
let nonAscii = false;
/** Where the last `canonical()` stopped reading. */
let scanEnd = 0;
/** Per open object, per member: name start, name end (in the source), member start, member end (in `out`). */
let members = new Int32Array(256);
/** Per nesting level: the opening byte, where its members start in `out`, its first slot in `members`, its member
 * count, and whether those came in name order (1) or not (0). */
const FRAME = 5;
const frames = new Int32Array(FRAME * (MAX_DEPTH + 2));
let order = new Int32Array(64);

/**
 * Checks every event of a byte page (from `fetchBytePage`) against its own stored prev_hash, like `verifyPage` does
 * for a text page and with the same result; null when the page holds something outside the fast path (read it as
 * text then). `hashAtSeq`: a seq whose stored hash the caller wants back (a checkpoint's size), or 0.
 */
export function verifyBytePage(page: Buffer, hashAtSeq = 0): PageResult | null {
  try {
    return walkPage(page, hashAtSeq);
  } catch (error) {
    if (error === OFF) return null;
    throw error;
  }
}

function walkPage(page: Buffer, hashAtSeq: number): PageResult {
  if (page.length < 21 || page.compare(SIGNATURE, 0, 11, 0, 11) !== 0) throw OFF;
  let p = 19 + int32(page, 15);
  room(page.length);
  const b = out;
  let count = 0;
  let firstSeq = 0;
  let firstPrevAt = 0;
  let previousHashAt = 0;
  let previousSeq = 0;
  let hashAt: string | null = null;
  let bad: PageResult['bad'] = null;
  for (;;) {
    if (p + 2 > page.length) throw OFF;
    const fields = (page[p] as number) * 256 + (page[p + 1] as number);
    if (fields === 0xffff) break; // the trailer: a field count of -1
    if (fields !== FIELDS) throw OFF;
    // Field offsets (each value follows its int32 length; a NULL is -1 and leaves the fast path).
    const seqAt = field(page, p + 2, 8);
    const idAt = field(page, seqAt + 8, 16);
    const versionAt = field(page, idAt + 16, 4);
    const schemaAt = field(page, versionAt + 4, 2);
    const occurredAt = field(page, schemaAt + 2, 8);
    const prevAt = field(page, occurredAt + 8, 32);
    const hashAtOffset = field(page, prevAt + 32, 32);
    const streamAt = hashAtOffset + 36;
    const streamEnd = streamAt + length(page, hashAtOffset + 32);
    const typeAt = streamEnd + 4;
    const typeEnd = typeAt + length(page, streamEnd);
    const dataAt = typeEnd + 4;
    const dataEnd = dataAt + length(page, typeEnd);
    const metaAt = dataEnd + 4;
    const metaEnd = metaAt + length(page, dataEnd);
    if (metaEnd > page.length) throw OFF;

    const seq = readSeq(page, seqAt);
    if (count === 0) {
      firstSeq = seq;
      firstPrevAt = prevAt;
    } else if (seq !== previousSeq + 1) {
      if (seq <= previousSeq) throw OFF; // out of order: COPY of an ordered query never is; the text path judges
      bad = { seq: previousSeq + 1, reason: 'gap' };
      break;
    } else if (!sameBytes(page, previousHashAt, prevAt)) {
      bad = { seq, reason: 'broken_link' };
      break;
    }

    // sha256(prev_hash ‖ canonical form), prev_hash as stored in this row.
    for (let i = 0; i < 32; i++) b[i] = page[prevAt + i] as number;
    nonAscii = false;
    let w = put(b, 32, OPEN);
    if (page[dataAt] !== JSONB_VERSION || page[metaAt] !== JSONB_VERSION) throw OFF;
    w = canonical(page, dataAt + 1, b, w);
    if (scanEnd !== dataEnd) throw OFF;
    w = put(b, w, ID);
    w = putUuid(b, w, page, idAt);
    w = put(b, w, META);
    w = canonical(page, metaAt + 1, b, w);
    if (scanEnd !== metaEnd) throw OFF;
    w = put(b, w, OCCURRED);
    w = putTimestamp(b, w, page, occurredAt);
    w = put(b, w, SCHEMA_VERSION);
    w = putInteger(b, w, (int32(page, schemaAt - 2) << 16) >> 16); // the int2 is the low half of those 4 bytes
    w = put(b, w, SEQ);
    w = putInteger(b, w, seq);
    w = put(b, w, STREAM);
    w = putPlain(b, w, page, streamAt, streamEnd);
    w = put(b, w, STREAM_VERSION);
    w = putInteger(b, w, int32(page, versionAt));
    w = put(b, w, TYPE);
    w = putPlain(b, w, page, typeAt, typeEnd);
    w = put(b, w, CLOSE);
    // Postgres's text is UTF-8 in a UTF-8 database; anything else is the text path's to judge.
    if (
      nonAscii &&
      !(
        utf8(page, streamAt, streamEnd) &&
        utf8(page, typeAt, typeEnd) &&
        utf8(page, dataAt, dataEnd) &&
        utf8(page, metaAt, metaEnd)
      )
    ) {
      throw OFF;
    }
    // The digest as a 'binary' (latin1) string: one character per byte, compared with the stored hash without hex.
    if (!sameHash(hash('sha256', b.subarray(0, w), 'binary'), page, hashAtOffset)) {
      bad = { seq, reason: 'hash_mismatch' };
      break;
    }
    if (seq === hashAtSeq) hashAt = page.toString('hex', hashAtOffset, hashAtOffset + 32);
    previousHashAt = hashAtOffset;
    previousSeq = seq;
    count++;
    p = metaEnd;
  }
  if (count === 0 && !bad) return { count, firstSeq: 0, firstPrevHash: '', lastHash: '', bad, hashAt };
  return {
    count,
    firstSeq,
    firstPrevHash: page.toString('hex', firstPrevAt, firstPrevAt + 32),
    lastHash: bad ? '' : page.toString('hex', previousHashAt, previousHashAt + 32),
    bad,
    hashAt,
  };
}

/**
 * The RFC 8785 form of jsonb text given as UTF-8 bytes, through the same reader `verifyBytePage` uses; undefined
 * when the text is outside the fast path. For tests, which hold it to `canonicalJson(JSON.parse(text))`.
 */
export function canonicalFromJsonbBytes(text: Uint8Array): string | undefined {
  const bytes = Buffer.from(text.buffer, text.byteOffset, text.byteLength);
  room(bytes.length);
  nonAscii = false;
  try {
    const w = canonical(bytes, 0, out, 0);
    if (scanEnd !== bytes.length) return undefined;
    if (nonAscii && !isUtf8(bytes)) return undefined;
    return out.toString('utf8', 0, w);
  } catch (error) {
    if (error === OFF) return undefined;
    throw error;
  }
}

/** True when the bytes from `start` to `end` are UTF-8. */
function utf8(page: Buffer, start: number, end: number): boolean {
  return isUtf8(page.subarray(start, end));
}

/** No event's canonical form is longer than its row plus its member names and the digits of its numbers. */
function room(bytes: number): void {
  if (spareAt < bytes + 4096) {
    spareAt = bytes + 4096;
    out = Buffer.allocUnsafe(2 * spareAt);
  }
}

/** The big-endian int32 at `at` (the caller has checked the four bytes are there). */
function int32(page: Buffer, at: number): number {
  return (
    ((page[at] as number) << 24) |
    ((page[at + 1] as number) << 16) |
    ((page[at + 2] as number) << 8) |
    (page[at + 3] as number)
  );
}

/** Where the value whose int32 length is at `at` starts; OFF unless that length is `size`. */
function field(page: Buffer, at: number, size: number): number {
  if (at + 4 + size > page.length || int32(page, at) !== size) throw OFF;
  return at + 4;
}

/** The int32 length at `at` of a variable-length value; OFF for a NULL (-1). */
function length(page: Buffer, at: number): number {
  if (at + 4 > page.length) throw OFF;
  const n = int32(page, at);
  if (n < 0) throw OFF;
  return n;
}

/** seq, or OFF beyond 2^53 (or below 0). */
function readSeq(page: Buffer, at: number): number {
  const hi = int32(page, at);
  if (hi < 0 || hi >= 0x200000) throw OFF;
  return hi * 0x100000000 + (int32(page, at + 4) >>> 0);
}

function put(b: Buffer, w: number, bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) b[w++] = bytes[i] as number;
  return w;
}

/** Text that is its own JSON string body (no control character, `"` or `\`); OFF for anything else. */
function putPlain(b: Buffer, w: number, page: Buffer, start: number, end: number): number {
  for (let i = start; i < end; i++) {
    const c = page[i] as number;
    if (c < SPACE || c === QUOTE || c === BACKSLASH) throw OFF;
    if (c >= 0x80) nonAscii = true;
    b[w++] = c;
  }
  return w;
}

/** uuid_out's form: lowercase hex, 8-4-4-4-12. */
function putUuid(b: Buffer, w: number, page: Buffer, at: number): number {
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) b[w++] = MINUS;
    const x = page[at + i] as number;
    b[w++] = HEX[x >> 4] as number;
    b[w++] = HEX[x & 15] as number;
  }
  return w;
}

let cachedSecond = Number.NaN;
const cachedPrefix = new Uint8Array(20);

/**
 * occurred_at as verifyChain has always formatted it: `to_char(… at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`,
 * milliseconds truncated. Within ±2^52 µs of 2000-01-01 (1858 to 2142) only; OFF outside.
 */
function putTimestamp(b: Buffer, w: number, page: Buffer, at: number): number {
  const hi = int32(page, at);
  if (hi < -0x100000 || hi >= 0x100000) throw OFF;
  const micros = hi * 0x100000000 + (int32(page, at + 4) >>> 0);
  const unixMs = (micros - floorMod(micros, 1000)) / 1000 + 946_684_800_000;
  const ms = floorMod(unixMs, 1000);
  const second = (unixMs - ms) / 1000;
  if (second !== cachedSecond) {
    const iso = new Date(second * 1000).toISOString();
    if (iso.length !== 24) throw OFF;
    for (let i = 0; i < 20; i++) cachedPrefix[i] = iso.charCodeAt(i);
    cachedSecond = second;
  }
  w = put(b, w, cachedPrefix);
  b[w++] = ZERO + Math.floor(ms / 100);
  b[w++] = ZERO + (Math.floor(ms / 10) % 10);
  b[w++] = ZERO + (ms % 10);
  b[w++] = 0x5a; // Z
  return w;
}

function floorMod(n: number, m: number): number {
  return ((n % m) + m) % m;
}

const digits = new Uint8Array(20);

/** An integer as ECMAScript prints it (and Postgres prints int2, int4 and int8 below 2^53). */
function putInteger(b: Buffer, w: number, n: number): number {
  if (n < 0) {
    b[w++] = MINUS;
    n = -n;
  }
  let k = 0;
  do {
    digits[k++] = ZERO + (n % 10);
    n = Math.floor(n / 10);
  } while (n > 0);
  while (k > 0) b[w++] = digits[--k] as number;
  return w;
}

/** True when the 32 bytes at `a` and at `b` are the same. */
function sameBytes(page: Buffer, a: number, b: number): boolean {
  for (let i = 0; i < 32; i++) if (page[a + i] !== page[b + i]) return false;
  return true;
}

/** True when `digest` (32 latin1 characters) holds the 32 bytes at `at`. */
function sameHash(digest: string, page: Buffer, at: number): boolean {
  for (let i = 0; i < 32; i++) if (digest.charCodeAt(i) !== page[at + i]) return false;
  return true;
}

/**
 * Writes the canonical form of the JSON value at `s[i]` (jsonb text) to `b` from `w`; returns where it ended in `b`
 * and leaves where it ended in `s` in `scanEnd`. One loop with an explicit stack, every position in a local:
 * recursion and module variables cost more per byte than the copying itself.
 *
 * What it accepts, and how each piece maps to RFC 8785:
 * - strings are copied with their quotes; every escape must be one `escape_json` writes, which is also how
 *   JSON.stringify writes that character: `\" \\ \b \f \n \r \t`, or `\u00XX` (lowercase) for another control
 *   character other than NUL. A raw control character never comes from escape_json.
 * - integers `-?[1-9][0-9]{0,14}` or `0` (always safe integers, printed as ECMAScript would); a fraction, an
 *   exponent, -0 or a leading zero leave the fast path (the generic path decides: 1.0 is the integer 1 there).
 * - `true`, `false`, `null`; arrays and objects with jsonb's `, ` and `: ` separators, dropped.
 * - object members come in jsonb's order (by length, then bytes) and are rewritten in name order (by UTF-16 code
 *   units, which for ASCII names is by bytes) unless they already are; a name with an escape or a non-ASCII byte, or
 *   a duplicate name, leaves the fast path.
 */
function canonical(s: Buffer, i: number, b: Buffer, w: number): number {
  const f = frames;
  let m = members;
  let top = 0;
  let depth = 0;
  let expectName = false;
  for (;;) {
    if (expectName) {
      if (s[i] !== QUOTE) throw OFF;
      const nameStart = i + 1;
      // The name is copied as it is checked: `"name":` goes out now, its record follows.
      const memberStart = w;
      b[w++] = QUOTE;
      let j = nameStart;
      for (;;) {
        const c = s[j];
        if (c === QUOTE) break;
        if (c === undefined || c < SPACE || c >= 0x80 || c === BACKSLASH) throw OFF;
        b[w++] = c;
        j++;
      }
      if (s[j + 1] !== COLON || s[j + 2] !== SPACE) throw OFF;
      b[w++] = QUOTE;
      b[w++] = COLON;
      const at = depth * FRAME;
      const n = f[at + 3] as number;
      if (n > 0) {
        const previous = top - 4;
        const c = compareNames(s, m[previous] as number, m[previous + 1] as number, nameStart, j);
        if (c === 0) throw OFF; // a duplicate name: jsonb never prints one
        if (c > 0) f[at + 4] = 0;
      }
      if (top + 4 > m.length) {
        const grown = new Int32Array(m.length * 2);
        grown.set(m);
        m = members = grown;
      }
      m[top] = nameStart;
      m[top + 1] = j;
      m[top + 2] = memberStart;
      top += 4;
      f[at + 3] = n + 1;
      i = j + 3;
      expectName = false;
    }

    // A value starts at s[i].
    const c = s[i];
    if (c === QUOTE) {
      b[w++] = QUOTE;
      i++;
      for (;;) {
        const x = s[i] as number;
        // Most bytes: printable ASCII other than `"` and `\`, copied as they are.
        if (x > QUOTE && x < 0x80 && x !== BACKSLASH) {
          b[w++] = x;
          i++;
          continue;
        }
        if (x === QUOTE) break;
        if (x === BACKSLASH) {
          // Escapes are copied as they are: each must be one escape_json writes (jsonb-canonical.ts).
          const length = jsonbEscapeLength(
            s[i + 1] ?? Number.NaN,
            s[i + 2] ?? Number.NaN,
            s[i + 3] ?? Number.NaN,
            s[i + 4] ?? Number.NaN,
            s[i + 5] ?? Number.NaN,
          );
          if (length === 0) throw OFF;
          for (let k = i; k < i + length; k++) b[w++] = s[k] as number;
          i += length;
          continue;
        }
        if (x === undefined || x < SPACE) throw OFF;
        if (x >= 0x80) nonAscii = true;
        b[w++] = x;
        i++;
      }
      b[w++] = QUOTE;
      i++;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      const close = c + 2; // '}' and ']'
      b[w++] = c;
      i++;
      if (s[i] === close) {
        b[w++] = close;
        i++;
      } else {
        if (++depth > MAX_DEPTH) throw OFF;
        const at = depth * FRAME;
        f[at] = c;
        f[at + 1] = w;
        f[at + 2] = top;
        f[at + 3] = 0;
        f[at + 4] = 1;
        expectName = c === OPEN_BRACE;
        continue;
      }
    } else if (c === 0x74) {
      if (s[i + 1] !== 0x72 || s[i + 2] !== 0x75 || s[i + 3] !== 0x65) throw OFF; // true
      for (let k = i; k < i + 4; k++) b[w++] = s[k] as number;
      i += 4;
    } else if (c === 0x66) {
      if (s[i + 1] !== 0x61 || s[i + 2] !== 0x6c || s[i + 3] !== 0x73 || s[i + 4] !== 0x65) throw OFF; // false
      for (let k = i; k < i + 5; k++) b[w++] = s[k] as number;
      i += 5;
    } else if (c === 0x6e) {
      if (s[i + 1] !== 0x75 || s[i + 2] !== 0x6c || s[i + 3] !== 0x6c) throw OFF; // null
      for (let k = i; k < i + 4; k++) b[w++] = s[k] as number;
      i += 4;
    } else {
      const start = i;
      if (s[i] === MINUS) i++;
      const first = i;
      let x = s[i];
      while (x !== undefined && x >= ZERO && x <= NINE) x = s[++i];
      const n = i - first;
      if (n === 0 || n > 15) throw OFF;
      if (s[first] === ZERO && (n > 1 || first !== start)) throw OFF;
      if (x === 0x2e || x === 0x65 || x === 0x45) throw OFF;
      for (let k = start; k < i; k++) b[w++] = s[k] as number;
    }

    // After a value: close what it ends, then go on to the next member or element.
    for (;;) {
      if (depth === 0) {
        scanEnd = i;
        return w;
      }
      const at = depth * FRAME;
      const kind = f[at] as number;
      if (kind === OPEN_BRACE) m[top - 1] = w;
      const x = s[i];
      if (x === COMMA && s[i + 1] === SPACE) {
        b[w++] = COMMA;
        i += 2;
        expectName = kind === OPEN_BRACE;
        break;
      }
      if (x !== kind + 2) throw OFF;
      i++;
      const base = f[at + 2] as number;
      if (kind === OPEN_BRACE && f[at + 4] === 0)
        sortMembers(b, s, m, base, f[at + 3] as number, f[at + 1] as number, w);
      b[w++] = kind + 2;
      top = base;
      depth--;
    }
  }
}

/**
 * Rewrites the `n` members (records from `base` in `m`) written to `b` between `start` and `end` in name order
 * (insertion sort: objects in events have a handful of members).
 */
function sortMembers(b: Buffer, s: Buffer, m: Int32Array, base: number, n: number, start: number, end: number): void {
  if (order.length < n) order = new Int32Array(n * 2);
  const ord = order;
  for (let i = 0; i < n; i++) {
    const r = base + 4 * i;
    let k = i;
    while (k > 0) {
      const other = base + 4 * (ord[k - 1] as number);
      const c = compareNames(s, m[other] as number, m[other + 1] as number, m[r] as number, m[r + 1] as number);
      if (c === 0) throw OFF;
      if (c < 0) break;
      ord[k] = ord[k - 1] as number;
      k--;
    }
    ord[k] = i;
  }
  // The members go to the spare half of `b` and come back in order (copyWithin: a memmove, without Buffer.copy's
  // argument checks).
  const t = spareAt;
  b.copyWithin(t, start, end);
  let w = start;
  for (let k = 0; k < n; k++) {
    if (k > 0) b[w++] = COMMA;
    const r = base + 4 * (ord[k] as number);
    const from = t + (m[r + 2] as number) - start;
    const to = t + (m[r + 3] as number) - start;
    b.copyWithin(w, from, to);
    w += to - from;
  }
}

/** Compares two names in `s` by bytes (for ASCII, the order of UTF-16 code units). */
function compareNames(s: Buffer, aStart: number, aEnd: number, bStart: number, bEnd: number): number {
  const aLength = aEnd - aStart;
  const bLength = bEnd - bStart;
  const n = Math.min(aLength, bLength);
  for (let i = 0; i < n; i++) {
    const d = (s[aStart + i] as number) - (s[bStart + i] as number);
    if (d !== 0) return d;
  }
  return aLength - bLength;
}
