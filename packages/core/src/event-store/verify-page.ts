import { hash } from 'node:crypto';
import { sql } from 'kysely';
import { canonicalJson, NotCanonicalError } from './canonical.ts';
import { canonicalFromJsonbRange, releaseJsonbScanner } from './jsonb-canonical.ts';
import type { DbOrTrx } from './types.ts';

/**
 * One page of the log for `verifyChain`, read as a single text value and checked without building a row object.
 *
 * The page is `string_agg` of one line per event, in seq order, fields separated by TAB:
 *
 *   seq, id, stream_version, schema_version, occurred_at, prev_hash, hash (hex), data, meta, stream, type
 *
 * `data` and `meta` are jsonb as Postgres prints it, which never holds a raw TAB or newline (they are escaped), and
 * the other fields cannot hold one either, except `stream` and `type`: those come as they are unless they hold a
 * TAB or newline or start with `"`, in which case they come JSON-encoded (so a field starting with `"` is JSON).
 * One text value per page instead of eleven columns per row is most of the saving: the driver's per-row and
 * per-field work was the largest cost of the walk (docs/benchmarks.md).
 *
 * Each event is checked against the `prev_hash` stored in its own row, so a page can be checked on its own (in any
 * thread); the caller checks that pages join up (seq and hash) and turns the first failure into the same result a
 * sequential walk gives (see `verify.ts`).
 */

export type PageFailure = 'gap' | 'broken_link' | 'not_canonical' | 'hash_mismatch';

export interface PageResult {
  /** Events in the page that passed (all of them when `bad` is null). */
  readonly count: number;
  /** seq of the first event (0 for an empty page). */
  readonly firstSeq: number;
  /** prev_hash of the first event, hex ('' for an empty page). */
  readonly firstPrevHash: string;
  /** hash of the last event as stored, hex ('' for an empty page). */
  readonly lastHash: string;
  /**
   * The first event that fails a check within the page, in the order a sequential walk applies them: `gap` (seq
   * is not the previous seq + 1: `seq` is the missing one), `broken_link` (prev_hash is not the previous event's
   * hash), `not_canonical`, `hash_mismatch`. The first event's seq and link are the caller's to check. The events
   * before it, which passed, are `count`.
   */
  readonly bad: { readonly seq: number; readonly reason: PageFailure } | null;
  /** The stored hash of the event at `hashAtSeq`, if the page holds it and it passed. */
  readonly hashAt: string | null;
  /** The page's events were not in seq order: fetch it again with `ordered`. */
  readonly unordered?: true;
}

/** The page of events with `from <= seq <= to` (at most `limit` of them), as one text value ('' when empty). */
export async function fetchPage(
  db: DbOrTrx,
  from: number,
  to: number,
  limit: number,
  ordered = false,
): Promise<string> {
  // The aggregate reads the sorted subquery in order in practice; `ordered` makes it explicit (and costs a sort),
  // for the case verifyPage ever finds a page out of order.
  const line = sql`seq || E'\t' || id || E'\t' || stream_version || E'\t' || schema_version || E'\t' ||
    to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || E'\t' ||
    encode(prev_hash, 'hex') || E'\t' || encode(hash, 'hex') || E'\t' || data::text || E'\t' || meta::text || E'\t' ||
    (case when strpos(stream, E'\t') + strpos(stream, E'\n') = 0 and left(stream, 1) <> '"'
          then stream else to_json(stream)::text end) || E'\t' ||
    (case when strpos(type, E'\t') + strpos(type, E'\n') = 0 and left(type, 1) <> '"'
          then type else to_json(type)::text end)`;
  const { rows } = await sql<{ page: string | null }>`
    select ${ordered ? sql`string_agg(${line}, E'\n' order by seq)` : sql`string_agg(${line}, E'\n')`} as page
    from (select * from events where seq >= ${from} and seq <= ${to} order by seq limit ${limit}) e`.execute(db);
  return rows[0]?.page ?? '';
}

const TAB = '\t';
/** Control characters other than the TAB and newline that separate fields and events. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f]/;
/** 32 bytes of prev_hash, then the UTF-8 of the canonical form; grown when an event needs more. */
let scratch = Buffer.allocUnsafe(64 * 1024);

/**
 * Checks every event of a page (text from `fetchPage`) against its own stored prev_hash. `hashAtSeq`: a seq
 * whose stored hash the caller wants back (a checkpoint's size), or 0.
 */
export function verifyPage(page: string, hashAtSeq = 0): PageResult {
  if (page.length === 0) return { count: 0, firstSeq: 0, firstPrevHash: '', lastHash: '', bad: null, hashAt: null };
  // Strings from the driver are well-formed, Postgres text holds no NUL and jsonb output no raw control character,
  // so this never fails in practice; if it did, every event of the page would take the generic path.
  const fast = page.isWellFormed() && !RAW_CONTROL.test(page);
  let count = 0;
  let firstSeq = 0;
  let firstPrevHash = '';
  let previousHash = '';
  let previousSeq = 0;
  let hashAt: string | null = null;
  let bad: PageResult['bad'] = null;
  let p = 0;
  try {
    while (p < page.length) {
      let lineEnd = page.indexOf('\n', p);
      if (lineEnd < 0) lineEnd = page.length;
      // Field boundaries: seq, id, stream_version, schema_version, occurred_at, prev_hash, hash, data, meta, stream,
      // type. The hashes are 64 hex digits unless a superuser stored another length (a check constraint forbids it).
      const seqEnd = page.indexOf(TAB, p);
      const idEnd = page.indexOf(TAB, seqEnd + 1);
      const versionEnd = page.indexOf(TAB, idEnd + 1);
      const schemaEnd = page.indexOf(TAB, versionEnd + 1);
      const occurredEnd = page.indexOf(TAB, schemaEnd + 1);
      const prevStart = occurredEnd + 1;
      const prevEnd = page.indexOf(TAB, prevStart);
      const hashStart = prevEnd + 1;
      const hashEnd = page.indexOf(TAB, hashStart);
      const dataStart = hashEnd + 1;
      const dataEnd = page.indexOf(TAB, dataStart);
      const metaEnd = page.indexOf(TAB, dataEnd + 1);
      const streamEnd = page.indexOf(TAB, metaEnd + 1);
      if (occurredEnd < 0 || hashEnd < 0 || streamEnd < 0 || streamEnd > lineEnd) {
        throw new Error(`verify: malformed page near offset ${p}`);
      }
      const hashesWellFormed = prevEnd - prevStart === 64 && hashEnd - hashStart === 64;
      const seq = Number(page.slice(p, seqEnd));
      if (count === 0) {
        firstSeq = seq;
        firstPrevHash = page.slice(prevStart, prevEnd);
      } else if (seq !== previousSeq + 1) {
        if (seq <= previousSeq) return unorderedResult();
        bad = { seq: previousSeq + 1, reason: 'gap' };
        break;
      } else if (prevEnd - prevStart !== 64 || !page.startsWith(previousHash, prevStart)) {
        bad = { seq, reason: 'broken_link' };
        break;
      }

      const id = page.slice(seqEnd + 1, idEnd);
      const streamVersion = page.slice(idEnd + 1, versionEnd);
      const schemaVersion = page.slice(versionEnd + 1, schemaEnd);
      const occurredAt = page.slice(schemaEnd + 1, occurredEnd);
      const stream = page.slice(metaEnd + 1, streamEnd);
      const type = page.slice(streamEnd + 1, lineEnd);
      let canonical: string | undefined;
      const data = fast ? canonicalFromJsonbRange(page, dataStart, dataEnd) : undefined;
      const meta = data === undefined ? undefined : canonicalFromJsonbRange(page, dataEnd + 1, metaEnd);
      // id (uuid_out: hex digits and dashes) and occurred_at (to_char with a format of digits and '-T:.Z') are always
      // plain; stream and type are free text and are looked at.
      if (meta !== undefined && isPlain(stream) && isPlain(type)) {
        // The members of DESIGN §2 in RFC 8785 order, so nothing is sorted at the top level. stream_version,
        // schema_version and seq are int4, int2 and int8 as Postgres prints them: as ECMAScript prints the same
        // integers. A plain string's JSON form is itself in quotes.
        canonical = `{"data":${data},"id":"${id}","meta":${meta},"occurred_at":"${occurredAt}","schema_version":${schemaVersion},"seq":${seq},"stream":"${stream}","stream_version":${streamVersion},"type":"${type}"}`;
      } else {
        // The generic path: exactly what verifyChain did for every event before the fast path.
        try {
          canonical = canonicalJson({
            seq,
            id,
            stream: textField(stream),
            stream_version: Number(streamVersion),
            type: textField(type),
            schema_version: Number(schemaVersion),
            data: JSON.parse(page.slice(dataStart, dataEnd)),
            meta: JSON.parse(page.slice(dataEnd + 1, metaEnd)),
            occurred_at: occurredAt,
          });
        } catch (error) {
          if (!(error instanceof NotCanonicalError)) throw error;
          bad = { seq, reason: 'not_canonical' };
          break;
        }
      }
      // sha256(prev_hash ‖ UTF-8 of the canonical form), in one call on a reused buffer.
      const need = 32 + canonical.length * 3;
      if (need > scratch.length) scratch = Buffer.allocUnsafe(Math.max(need, scratch.length * 2));
      // (A prev_hash of another length than 32 bytes is the first event's of the page — a later one would have
      // been a broken link — and the caller reports that event's link as broken before this result counts.)
      scratch.write(page.slice(prevStart, prevEnd), 0, 'hex');
      const length = 32 + scratch.write(canonical, 32, 'utf8');
      const computed = hash('sha256', scratch.subarray(0, length), 'hex');
      if (!hashesWellFormed || !page.startsWith(computed, hashStart)) {
        bad = { seq, reason: 'hash_mismatch' };
        break;
      }
      if (seq === hashAtSeq) hashAt = computed;
      previousHash = computed;
      previousSeq = seq;
      count++;
      p = lineEnd + 1;
    }
  } finally {
    releaseJsonbScanner();
  }
  // A failure is only real if the page is in seq order: events after it (not read yet) must have higher seqs.
  if (bad && !ascendingFrom(page, p, previousSeq)) return unorderedResult();
  return { count, firstSeq, firstPrevHash, lastHash: bad ? '' : previousHash, bad, hashAt };
}

/**
 * True when `s` is its own JSON string body: no character JSON escapes (control characters, `"`, `\`), and no
 * surrogate (a pair is fine for JSON but rare here; the generic path takes it).
 */
function isPlain(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return false;
  }
  return true;
}

/** True when the seqs of the events from offset `p` on are each higher than the one before, from `after`. */
function ascendingFrom(page: string, p: number, after: number): boolean {
  let previous = after;
  while (p < page.length) {
    const seq = Number(page.slice(p, page.indexOf(TAB, p)));
    if (!(seq > previous)) return false;
    previous = seq;
    const lineEnd = page.indexOf('\n', p);
    if (lineEnd < 0) break;
    p = lineEnd + 1;
  }
  return true;
}

function unorderedResult(): PageResult {
  return { count: 0, firstSeq: 0, firstPrevHash: '', lastHash: '', bad: null, hashAt: null, unordered: true };
}

/** stream and type: as they are, or JSON-encoded when they start with `"` (see fetchPage). */
function textField(raw: string): string {
  return raw.charCodeAt(0) === 0x22 ? (JSON.parse(raw) as string) : raw;
}
