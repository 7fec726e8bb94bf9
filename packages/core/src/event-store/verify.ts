import { sql } from 'kysely';
import { readChainHead } from './read.ts';
import type { DbOrTrx } from './types.ts';
import { fetchBytePage, verifyBytePage } from './verify-bytes.ts';
import { fetchPage, type PageResult, verifyPage } from './verify-page.ts';

/**
 * Events per page by default. Pages of 2,500–5,000 walked ~15–20% faster than 10,000 over a binary COPY (ADR 0018:
 * a page of ~2.8 MB stays in cache while it is checked) and hold less memory.
 */
export const VERIFY_PAGE_SIZE = 5_000;

/** Pages requested ahead of the one being checked. */
const PAGES_IN_FLIGHT = 2;

export type VerifyFailure =
  /** The stored hash is not the hash of the stored event: a row was edited. */
  | 'hash_mismatch'
  /** prev_hash is not the previous event's hash: rows were removed, reordered or spliced in. */
  | 'broken_link'
  /** seq is not the previous seq plus one. */
  | 'gap'
  /** The stored data can no longer be put in canonical form. */
  | 'not_canonical'
  /** The chain head says the log is longer than it is: its tail was cut off. */
  | 'truncated'
  /** The chain head disagrees with the last event. */
  | 'head_mismatch'
  /** The event at the checkpoint's size does not have the checkpoint's root hash: the log was rewritten. */
  | 'checkpoint_mismatch'
  /** The checkpoint covers more events than the log holds: rows were dropped, or a backup was restored. */
  | 'checkpoint_beyond_head';

export interface CheckpointClaim {
  readonly size: number;
  readonly rootHash: Uint8Array;
}

export interface VerifyProgress {
  readonly checked: number;
  readonly total: number;
}

export interface VerifyOptions {
  readonly batchSize?: number;
  readonly onProgress?: (progress: VerifyProgress) => void;
  readonly signal?: AbortSignal;
  /** A signed checkpoint, already opened, to hold the log to. */
  readonly checkpoint?: CheckpointClaim;
}

export interface VerifyResult {
  readonly ok: boolean;
  /** Events walked. */
  readonly checked: number;
  readonly head: { seq: number; hash: string } | null;
  readonly first_bad_seq: number | null;
  readonly reason: VerifyFailure | null;
  readonly checkpoint: { size: number; ok: boolean } | null;
}

/**
 * Walks the whole log in seq order, recomputing every hash from what Postgres returns, in constant memory (pages
 * of `batchSize` events, two requested at a time: the next is produced by the database while the current one is
 * hashed). It reads only: nothing on this path writes. The head is read first, so appends made during the walk are
 * outside it, not errors. How a page is read and checked quickly, with the same result as a row-by-row walk:
 * verify-bytes.ts (binary COPY pages, docs/adr/0018) and verify-page.ts (text pages, the fallback; docs/adr/0012).
 */
export async function verifyChain(db: DbOrTrx, options: VerifyOptions = {}): Promise<VerifyResult> {
  return walkChain(db, null, options);
}

/**
 * Checks that the log still extends `trusted` (a checkpoint already signed): the event at its size still has its
 * root hash, and every event after it, up to the head, links and hashes correctly. Only the events after the
 * checkpoint are walked, so this is cheap enough to run before every new checkpoint. Events before it are not
 * re-hashed (verifyChain does that); what this guarantees is that a new checkpoint never signs a different history.
 */
export async function verifySince(
  db: DbOrTrx,
  trusted: CheckpointClaim,
  options: Omit<VerifyOptions, 'checkpoint'> = {},
): Promise<VerifyResult> {
  return walkChain(db, trusted, options);
}

async function walkChain(db: DbOrTrx, trusted: CheckpointClaim | null, options: VerifyOptions): Promise<VerifyResult> {
  const batchSize = options.batchSize ?? VERIFY_PAGE_SIZE;
  const head = await readChainHead(db);
  const total = head.seq;
  const claim = options.checkpoint;
  let checkpointOk: boolean | null = null;

  let expectedSeq = 1;
  let prevHex = '0'.repeat(64);
  let checked = 0;
  let bad: { seq: number; reason: VerifyFailure } | null = null;

  if (trusted && trusted.size > 0) {
    const rootHex = toHexString(trusted.rootHash);
    if (trusted.size > total) {
      bad = { seq: total + 1, reason: 'checkpoint_beyond_head' };
    } else {
      const { rows } = await sql<{ hash: string }>`
        select encode(hash, 'hex') as hash from events where seq = ${trusted.size}`.execute(db);
      const stored = rows[0]?.hash;
      if (stored === undefined) bad = { seq: trusted.size, reason: 'gap' };
      else if (stored !== rootHex) bad = { seq: trusted.size, reason: 'checkpoint_mismatch' };
      else {
        expectedSeq = trusted.size + 1;
        prevHex = rootHex;
      }
    }
  }

  // The walk, in pages of seq ranges fixed up front (seq is gap-free, so a range of batchSize seqs is a page of
  // batchSize events, and a page never waits for the one before it to know where to start). PAGES_IN_FLIGHT pages
  // are requested at once, so the database (on a pool, over several connections) produces the next pages while
  // this one is checked. Each page is checked on its own (verify-bytes.ts, or verify-page.ts for text); here the
  // pages are joined up: the first event of each must have the expected seq and link to the last hash before it.
  const pages: { from: number; to: number; read: Promise<Buffer | string> }[] = [];
  const checkedPages: Buffer[] = [];
  let nextFrom = expectedSeq;
  const request = () => {
    if (nextFrom > total) return;
    const from = nextFrom;
    const to = Math.min(total, from + batchSize - 1);
    nextFrom = to + 1;
    // As bytes when the database can COPY them out (verify-bytes.ts), else as text (verify-page.ts). A byte page
    // takes the memory of one already checked.
    const read = fetchBytePage(db, from, to, checkedPages.pop()).then<Buffer | string>(
      (bytes) => bytes ?? fetchPage(db, from, to, batchSize),
    );
    read.catch(() => {}); // awaited in order below; a page left behind must not be an unhandled rejection
    pages.push({ from, to, read });
  };
  if (!bad) for (let i = 0; i < PAGES_IN_FLIGHT; i++) request();
  const hashAtSeq = claim && claim.size >= expectedSeq ? claim.size : 0;
  while (pages.length > 0) {
    const next = pages.shift() as (typeof pages)[number];
    const read = await next.read;
    request();
    const page = await checkPage(db, read, next, batchSize, hashAtSeq);
    if (typeof read !== 'string') checkedPages.push(read);
    if (page.count === 0 && !page.bad) continue; // an empty range: the next event found is a gap, or the log ends
    if (page.firstSeq !== expectedSeq) {
      bad = { seq: expectedSeq, reason: 'gap' };
      break;
    }
    if (page.firstPrevHash !== prevHex) {
      bad = { seq: expectedSeq, reason: 'broken_link' };
      break;
    }
    if (page.hashAt !== null) checkpointOk = toHexString(claim?.rootHash) === page.hashAt;
    checked += page.count;
    expectedSeq += page.count;
    if (page.bad) {
      bad = { seq: page.bad.seq, reason: page.bad.reason };
      break;
    }
    prevHex = page.lastHash;
    options.onProgress?.({ checked, total });
    options.signal?.throwIfAborted();
  }
  await Promise.allSettled(pages.map((p) => p.read));

  // expectedSeq - 1 is the last seq that checked out (checked + trusted.size when starting from a checkpoint).
  if (!bad && expectedSeq - 1 < total) bad = { seq: expectedSeq, reason: 'truncated' };
  if (!bad && total > 0 && prevHex !== Buffer.from(head.hash).toString('hex'))
    bad = { seq: total, reason: 'head_mismatch' };
  if (claim) {
    if (claim.size > total) {
      checkpointOk = false;
      bad ??= { seq: total + 1, reason: 'checkpoint_beyond_head' };
    } else if (checkpointOk === false) {
      bad ??= { seq: claim.size, reason: 'checkpoint_mismatch' };
    } else if (checkpointOk === null) {
      // The walk stopped before reaching the checkpoint: what it covers could not be confirmed.
      checkpointOk = claim.size === 0;
    }
  }
  return {
    ok: bad === null,
    checked,
    head: total > 0 ? { seq: total, hash: Buffer.from(head.hash).toString('hex') } : null,
    first_bad_seq: bad?.seq ?? null,
    reason: bad?.reason ?? null,
    checkpoint: claim ? { size: claim.size, ok: checkpointOk === true } : null,
  };
}

/**
 * A page checked from its bytes (verify-bytes.ts), or from its text (verify-page.ts): read as text when the bytes
 * hold an event outside the byte reader's fast path, and again in explicit seq order if the text ever came back out
 * of order.
 */
async function checkPage(
  db: DbOrTrx,
  read: Buffer | string,
  range: { from: number; to: number },
  batchSize: number,
  hashAtSeq: number,
): Promise<PageResult> {
  const page = typeof read === 'string' ? null : verifyBytePage(read, hashAtSeq);
  if (page) return page;
  const text = typeof read === 'string' ? read : await fetchPage(db, range.from, range.to, batchSize);
  const checked = verifyPage(text, hashAtSeq);
  if (!checked.unordered) return checked;
  return verifyPage(await fetchPage(db, range.from, range.to, batchSize, true), hashAtSeq);
}

function toHexString(bytes: Uint8Array | undefined): string {
  return bytes ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex') : '';
}
