/**
 * A fast path to the canonical form (RFC 8785) of JSON text exactly as Postgres prints `jsonb`, for `verifyChain`.
 *
 * Postgres prints jsonb in one rigid shape: `{"k": v, "k2": v2}` and `[a, b]` (one space after every `:` and `,`),
 * object keys unique and ordered by length then bytes, numbers as numeric_out writes them (`-12`, `1.50`, never an
 * exponent), and strings escaped by `escape_json`: `\"`, `\\`, `\b \f \n \r \t`, lowercase `\u00xx` for the other
 * control characters, everything else raw. That string escaping is exactly RFC 8785's (ECMAScript's
 * `JSON.stringify`), so a string token can be copied through verbatim; what is left to do is to drop the
 * whitespace and re-sort object members by the UTF-16 code units of their names.
 *
 * The fast path accepts only that shape, with integers of at most 15 digits (always safe integers) and escape-free
 * member names. Anything else — a float, a long integer, an unexpected escape, an escaped name, other whitespace,
 * very deep nesting — makes it give up, and the caller falls back to the generic
 * `canonicalJson(JSON.parse(text))`, which stays the reference: whenever the fast path gives a result, it is the
 * generic path's result (the property tests in jsonb-canonical.int.test.ts hold it to that on real jsonb output).
 *
 * String tokens are found with `indexOf` and copied as slices; the pieces are joined with `+`, which V8 does
 * without copying until the result is written out for hashing. (Writing UTF-8 bytes into a buffer character by
 * character was measured too, and was slower: a JS loop costs more per character than the native copies.)
 */

/** Nesting (objects and arrays) the fast path handles before leaving the text to the generic path. */
const MAX_FAST_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const SPACE = 0x20;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const MINUS = 0x2d;
const ZERO = 0x30;
const NINE = 0x39;

/** Thrown inside the scanner to leave the fast path; never escapes this module. */
class OffFastPath {}
const OFF = new OffFastPath();

// Scanner state (one scan at a time: the scanner is synchronous).
let src = '';
let pos = 0;
/** Index of the first backslash in `src` at or after `escapeFrom` (`src.length` when there is none). */
let nextEscape = 0;
let escapeFrom = 0;
/** Per nesting level, the names and members of the object being read there (reused, never shrunk). */
const namesAt: string[][] = [];
const membersAt: string[][] = [];

/**
 * The RFC 8785 form of `text`, which must be JSON as Postgres prints jsonb; `undefined` when the text is outside
 * the fast path (use `canonicalJson(JSON.parse(text))` then).
 */
export function canonicalFromJsonbText(text: string): string | undefined {
  // A lone surrogate or a raw control character (NUL included) cannot come out of Postgres's jsonb, but the generic
  // path refuses them (or JSON.parse does): leave them to it.
  if (!text.isWellFormed() || RAW_CONTROL.test(text)) return undefined;
  try {
    return canonicalFromJsonbRange(text, 0, text.length);
  } finally {
    releaseJsonbScanner();
  }
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
const RAW_CONTROL = /[\u0000-\u001f]/;

/**
 * `canonicalFromJsonbText(text.slice(start, end))` without the slice, for many values in one big string (a page of
 * rows): the position of the next backslash is remembered between calls on the same string, so a page is searched
 * for escapes once, not once per value. The caller has checked that `text` is well-formed and holds no NUL, and
 * calls `releaseJsonbScanner()` when done with it.
 */
export function canonicalFromJsonbRange(text: string, start: number, end: number): string | undefined {
  if (text !== src || start < escapeFrom || nextEscape < start) {
    src = text;
    escapeFrom = start;
    nextEscape = text.indexOf('\\', start);
    if (nextEscape < 0) nextEscape = text.length;
  }
  pos = start;
  try {
    const out = scanValue(0);
    return pos === end ? out : undefined;
  } catch (error) {
    if (error === OFF) return undefined;
    throw error;
  }
}

/** Drops the scanner's reference to the last text it read. */
export function releaseJsonbScanner(): void {
  src = '';
  escapeFrom = 0;
  nextEscape = 0;
}

function scanValue(depth: number): string {
  const c = src.charCodeAt(pos);
  if (c === QUOTE) return scanString();
  if (c === OPEN_BRACE) return scanObject(depth + 1);
  if (c === OPEN_BRACKET) return scanArray(depth + 1);
  if (c === 0x74) return scanLiteral('true');
  if (c === 0x66) return scanLiteral('false');
  if (c === 0x6e) return scanLiteral('null');
  return scanInteger();
}

function scanLiteral(word: string): string {
  if (!src.startsWith(word, pos)) throw OFF;
  pos += word.length;
  return word;
}

/** `-?[1-9][0-9]{0,14}` or `0`: at most 15 digits, so always a safe integer, printed as ECMAScript would. */
function scanInteger(): string {
  const start = pos;
  if (src.charCodeAt(pos) === MINUS) pos++;
  const digits = pos;
  let c = src.charCodeAt(pos);
  while (c >= ZERO && c <= NINE) c = src.charCodeAt(++pos);
  const n = pos - digits;
  if (n === 0 || n > 15) throw OFF;
  // A leading zero, or -0 (ECMAScript prints 0): not what numeric_out writes for an integer; let JSON.parse judge.
  if (src.charCodeAt(digits) === ZERO && (n > 1 || digits !== start)) throw OFF;
  // A fraction or an exponent follows: the generic path decides (1.0 is the integer 1 there, 1.5 is refused).
  if (c === 0x2e || c === 0x65 || c === 0x45) throw OFF;
  return src.slice(start, pos);
}

/**
 * A string token, verbatim with its quotes. An escape-free string is one `indexOf`; a string with escapes is
 * walked, and every escape must be one `escape_json` writes, which is also how JSON.stringify writes that
 * character: `\" \\ \b \f \n \r \t`, or `\u00XX` (lowercase) for another control character other than NUL.
 */
function scanString(): string {
  const start = pos;
  const close = src.indexOf('"', pos + 1);
  if (close < 0) throw OFF;
  if (close < nextEscape) {
    pos = close + 1;
    return src.slice(start, pos);
  }
  let j = pos + 1;
  for (;;) {
    const c = src.charCodeAt(j);
    if (c === QUOTE) break;
    if (c === BACKSLASH) {
      const length = jsonbEscapeLength(
        src.charCodeAt(j + 1),
        src.charCodeAt(j + 2),
        src.charCodeAt(j + 3),
        src.charCodeAt(j + 4),
        src.charCodeAt(j + 5),
      );
      if (length === 0) throw OFF;
      j += length;
    } else if (c < SPACE || Number.isNaN(c)) {
      // A raw control character (escape_json never writes one) or the end of the text.
      throw OFF;
    } else {
      j++;
    }
  }
  pos = j + 1;
  escapeFrom = pos;
  nextEscape = src.indexOf('\\', pos);
  if (nextEscape < 0) nextEscape = src.length;
  return src.slice(start, pos);
}

/**
 * The length of the escape that starts with a backslash followed by the code units `e`, `u1` … `lo` (NaN past the
 * end): 2 or 6 when it is one `escape_json` writes, which is also how JSON.stringify writes that character —
 * `\" \\ \b \f \n \r \t`, or `\u00XX` (lowercase) for another control character other than NUL — else 0. For the
 * text reader here and the byte reader in verify-bytes.ts.
 */
export function jsonbEscapeLength(e: number, u1: number, u2: number, hi: number, lo: number): number {
  if (e !== 0x75) {
    return e === QUOTE ||
      e === BACKSLASH ||
      e === 0x62 || // b
      e === 0x66 || // f
      e === 0x6e || // n
      e === 0x72 || // r
      e === 0x74 // t
      ? 2
      : 0;
  }
  if (u1 !== ZERO || u2 !== ZERO || (hi !== ZERO && hi !== 0x31)) return 0;
  let low: number;
  if (lo >= ZERO && lo <= NINE) low = lo - ZERO;
  else if (lo >= 0x61 && lo <= 0x66) low = lo - 0x61 + 10;
  else return 0;
  const code = (hi - ZERO) * 16 + low;
  return code === 0 || code === 0x08 || code === 0x09 || code === 0x0a || code === 0x0c || code === 0x0d ? 0 : 6;
}

function scanArray(depth: number): string {
  if (depth > MAX_FAST_DEPTH) throw OFF;
  pos++;
  if (src.charCodeAt(pos) === CLOSE_BRACKET) {
    pos++;
    return '[]';
  }
  let out = `[${scanValue(depth)}`;
  for (;;) {
    const c = src.charCodeAt(pos);
    if (c === COMMA && src.charCodeAt(pos + 1) === SPACE) {
      pos += 2;
      out += `,${scanValue(depth)}`;
    } else if (c === CLOSE_BRACKET) {
      pos++;
      return `${out}]`;
    } else {
      throw OFF;
    }
  }
}

function scanObject(depth: number): string {
  if (depth > MAX_FAST_DEPTH) throw OFF;
  pos++;
  if (src.charCodeAt(pos) === CLOSE_BRACE) {
    pos++;
    return '{}';
  }
  // Members kept sorted by name as they come (insertion sort: objects in events have a handful of members).
  let names = namesAt[depth];
  let members = membersAt[depth];
  if (names === undefined || members === undefined) {
    names = namesAt[depth] = [];
    members = membersAt[depth] = [];
  }
  let n = 0;
  for (;;) {
    if (src.charCodeAt(pos) !== QUOTE) throw OFF;
    const nameStart = pos + 1;
    const escapesBefore = nextEscape;
    const token = scanString();
    // A name with an escape would have to be unescaped to be sorted: rare enough to leave to the generic path.
    if (escapesBefore < pos) throw OFF;
    if (src.charCodeAt(pos) !== COLON || src.charCodeAt(pos + 1) !== SPACE) throw OFF;
    const name = src.slice(nameStart, pos - 1);
    pos += 2;
    const member = `${token}:${scanValue(depth)}`;
    // JS string comparison is by UTF-16 code units, which is RFC 8785's member order.
    let k = n;
    while (k > 0 && (names[k - 1] as string) > name) {
      names[k] = names[k - 1] as string;
      members[k] = members[k - 1] as string;
      k--;
    }
    if (k > 0 && names[k - 1] === name) throw OFF; // a duplicate name: jsonb never prints one
    names[k] = name;
    members[k] = member;
    n++;
    const c = src.charCodeAt(pos);
    if (c === COMMA && src.charCodeAt(pos + 1) === SPACE) {
      pos += 2;
    } else if (c === CLOSE_BRACE) {
      pos++;
      break;
    } else {
      throw OFF;
    }
  }
  let out = `{${members[0] as string}`;
  for (let k = 1; k < n; k++) out += `,${members[k] as string}`;
  return `${out}}`;
}
