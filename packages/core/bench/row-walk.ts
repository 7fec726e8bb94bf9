import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { canonicalJson, NotCanonicalError } from '../src/event-store/canonical.ts';
import { readChainHead } from '../src/event-store/read.ts';
import type { DbOrTrx } from '../src/event-store/types.ts';
import type { CheckpointClaim, VerifyFailure, VerifyOptions, VerifyResult } from '../src/event-store/verify.ts';

/**
 * verifyChain as it was before it read pages as one text value (commit 21cd67d): keyset pages of row objects,
 * JSON.parse of data and meta, the generic canonicalJson, createHash per event. Kept for the benchmark, to measure
 * the shipped walk against it in the same run, and the reference verify.int.test.ts holds the shipped walk to
 * (`trusted` starts the walk after an already verified checkpoint, as verifySince does).
 */
/** One event as the row-by-row walk (and the benchmark's raw scan) reads it. */
export interface VerifyRow {
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

export async function rowByRowVerifyChain(
  db: DbOrTrx,
  options: VerifyOptions = {},
  trusted: CheckpointClaim | null = null,
): Promise<VerifyResult> {
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
