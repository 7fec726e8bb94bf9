import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { canonicalJson, NotCanonicalError } from './canonical.ts';
import { readChainHead } from './read.ts';
import type { DbOrTrx } from './types.ts';

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

interface VerifyRow {
  seq: number | string;
  id: string;
  stream: string;
  stream_version: number;
  type: string;
  schema_version: number;
  data: string;
  meta: string;
  occurred_at: string;
  prev_hash: string;
  hash: string;
}

/**
 * Walks the whole log in seq order, recomputing every hash from what Postgres returns, in constant memory (two
 * keyset pages at a time: the next is fetched while the current one is hashed). It reads only: nothing on this
 * path writes. The head is read first, so appends made during the walk are outside it, not errors.
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
  const batchSize = options.batchSize ?? 10_000;
  const head = await readChainHead(db);
  const total = head.seq;
  const claim = options.checkpoint;
  let checkpointOk: boolean | null = null;

  let expectedSeq = 1;
  let prevHex = '0'.repeat(64);
  let checked = 0;
  let bad: { seq: number; reason: VerifyFailure } | null = null;

  if (trusted && trusted.size > 0) {
    const rootHex = Buffer.from(trusted.rootHash).toString('hex');
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

  const fetchPage = (after: number) =>
    sql<VerifyRow>`
      select seq, id::text as id, stream, stream_version, type, schema_version, data::text as data, meta::text as meta,
             to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as occurred_at,
             encode(prev_hash, 'hex') as prev_hash, encode(hash, 'hex') as hash
      from events where seq > ${after} and seq <= ${total} order by seq limit ${batchSize}`
      .execute(db)
      .then((r) => r.rows);

  let page = !bad && total >= expectedSeq ? fetchPage(expectedSeq - 1) : Promise.resolve([] as VerifyRow[]);
  walk: while (true) {
    const rows = await page;
    if (rows.length === 0) break;
    const last = rows.at(-1) as VerifyRow;
    // Pipelining: the database produces the next page while this one is hashed.
    page = rows.length === batchSize ? fetchPage(Number(last.seq)) : Promise.resolve([]);
    for (const row of rows) {
      const seq = Number(row.seq);
      if (seq !== expectedSeq) {
        bad = { seq: expectedSeq, reason: 'gap' };
        break walk;
      }
      if (row.prev_hash !== prevHex) {
        bad = { seq, reason: 'broken_link' };
        break walk;
      }
      let canonical: string;
      try {
        canonical = canonicalJson({
          seq,
          id: row.id,
          stream: row.stream,
          stream_version: row.stream_version,
          type: row.type,
          schema_version: row.schema_version,
          data: JSON.parse(row.data),
          meta: JSON.parse(row.meta),
          occurred_at: row.occurred_at,
        });
      } catch (error) {
        if (!(error instanceof NotCanonicalError)) throw error;
        bad = { seq, reason: 'not_canonical' };
        break walk;
      }
      const computed = createHash('sha256').update(Buffer.from(prevHex, 'hex')).update(canonical, 'utf8').digest('hex');
      if (computed !== row.hash) {
        bad = { seq, reason: 'hash_mismatch' };
        break walk;
      }
      if (claim && seq === claim.size) checkpointOk = Buffer.from(claim.rootHash).toString('hex') === computed;
      prevHex = computed;
      expectedSeq = seq + 1;
      checked += 1;
    }
    options.onProgress?.({ checked, total });
    options.signal?.throwIfAborted();
  }
  await page.catch(() => {});

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
