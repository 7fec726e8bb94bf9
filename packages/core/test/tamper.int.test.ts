import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Database } from '@keyledger/db';
import { sql, type Transaction } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type Checkpoint,
  CheckpointForkError,
  formatCheckpoint,
  LATEST_CHECKPOINT_FILE,
  makeCheckpoint,
  openCheckpoint,
  readLatestExportedCheckpoint,
} from '../src/event-store/checkpoints/checkpoint.ts';
import {
  generateSignerKey,
  NoteError,
  parseSignerKey,
  parseVerifierKey,
  signNote,
  verifierKeyOf,
} from '../src/event-store/checkpoints/signed-note.ts';
import { readChainHead } from '../src/event-store/read.ts';
import { verifyChain } from '../src/event-store/verify.ts';
import { clock, createTestStore, rehashFrom, roleChange, type StoreFixture } from './helpers.ts';

/**
 * What a database superuser can do to the log, and what catches it. The tampering bypasses the append-only
 * triggers the way only a superuser can (session_replication_role = replica); the checkpoints it is caught
 * against were exported outside the database and are opened with nothing but the public verifier key.
 */
const ORIGIN = 'keyledger.test/tamper';
const SIZE = 30;

let f: StoreFixture;
let dir: string;
let verifierKey: string;
let target: Parameters<typeof makeCheckpoint>[1];

beforeEach(async () => {
  f = await createTestStore();
  dir = await mkdtemp(join(tmpdir(), 'keyledger-tamper-'));
  const signer = parseSignerKey(generateSignerKey(ORIGIN));
  verifierKey = verifierKeyOf(signer);
  target = { signer, origin: ORIGIN, exportDir: dir, clock };
  // 30 real appends, a checkpoint after every 10.
  for (let i = 1; i <= SIZE; i++) {
    await f.store.append(roleChange(`u${i}`));
    if (i % 10 === 0) await makeCheckpoint(f.t.db, target);
  }
  expect(await verifyChain(f.t.db)).toMatchObject({ ok: true, checked: SIZE });
});
afterEach(async () => {
  await f.t.close();
  await rm(dir, { recursive: true, force: true });
});

/** Opens an exported checkpoint the way an auditor would: with the published verifier key only. */
function open(note: string): Checkpoint {
  return openCheckpoint(note, parseVerifierKey(verifierKey), ORIGIN);
}
async function latestCheckpoint(): Promise<Checkpoint> {
  return open((await readLatestExportedCheckpoint(dir)) as string);
}
async function exportedCheckpoints(): Promise<Checkpoint[]> {
  const names = (await readdir(dir)).filter((n) => n.startsWith('checkpoint-')).sort();
  return Promise.all(names.map(async (n) => open(await readFile(join(dir, n), 'utf8'))));
}

/** Runs `fn` as a superuser with the append-only triggers off, in one transaction. */
async function tamper(fn: (trx: Transaction<Database>) => Promise<unknown>): Promise<void> {
  await f.t.db.transaction().execute(async (trx) => {
    await sql`set local session_replication_role = replica`.execute(trx);
    await fn(trx);
  });
}

it('needs a superuser: the append-only triggers refuse the application its edits', async () => {
  await expect(sql`update events set data = '{}' where seq = 3`.execute(f.t.db)).rejects.toThrow(/append-only/);
  await expect(sql`delete from events where seq = 30`.execute(f.t.db)).rejects.toThrow(/append-only/);
  expect(await verifyChain(f.t.db)).toMatchObject({ ok: true, checked: SIZE });
});

describe('a row edited in place', () => {
  const edits: [string, (k: number) => ReturnType<typeof sql>][] = [
    [
      'one byte of data',
      (k) => sql`update events set data = replace(data::text, 'admin', 'admio')::jsonb where seq = ${k}`,
    ],
    ['meta', (k) => sql`update events set meta = jsonb_set(meta, '{ip}', '"198.51.100.1"') where seq = ${k}`],
    [
      'occurred_at, by a millisecond',
      (k) => sql`update events set occurred_at = occurred_at + interval '1 ms' where seq = ${k}`,
    ],
    ['the stream', (k) => sql`update events set stream = 'user-mallory' where seq = ${k}`],
    ['the stored hash', (k) => sql`update events set hash = sha256(hash) where seq = ${k}`],
  ];
  for (const [what, edit] of edits) {
    it(`is caught at its seq when ${what} changes (hash_mismatch), with or without a checkpoint`, async () => {
      const k = 17;
      await tamper((trx) => edit(k).execute(trx));
      expect(await verifyChain(f.t.db)).toMatchObject({
        ok: false,
        checked: k - 1,
        first_bad_seq: k,
        reason: 'hash_mismatch',
      });
      const withCheckpoint = await verifyChain(f.t.db, { checkpoint: await latestCheckpoint() });
      expect(withCheckpoint).toMatchObject({ ok: false, first_bad_seq: k, reason: 'hash_mismatch' });
      expect(withCheckpoint.checkpoint).toEqual({ size: SIZE, ok: false });
    });
  }

  it('is caught as a broken link when prev_hash is changed', async () => {
    await tamper((trx) => sql`update events set prev_hash = sha256(prev_hash) where seq = 9`.execute(trx));
    expect(await verifyChain(f.t.db)).toMatchObject({ ok: false, first_bad_seq: 9, reason: 'broken_link' });
  });

  it('is caught as a head mismatch when only chain_head is changed', async () => {
    await tamper((trx) => sql`update chain_head set hash = sha256(hash) where id`.execute(trx));
    expect(await verifyChain(f.t.db)).toMatchObject({ ok: false, first_bad_seq: SIZE, reason: 'head_mismatch' });
  });
});

describe('a row deleted and the rest of the chain re-hashed', () => {
  const k = 15;
  beforeEach(async () => {
    await tamper(async (trx) => {
      await sql`delete from events where seq = ${k}`.execute(trx);
      for (let s = k + 1; s <= SIZE; s++) await sql`update events set seq = ${s - 1} where seq = ${s}`.execute(trx);
      await rehashFrom(trx, k);
      // A thorough superuser also removes the checkpoints the database holds; the exported ones are out of reach.
      await sql`delete from checkpoints`.execute(trx);
    });
  });

  it('passes a plain verify: the chain is internally consistent', async () => {
    expect(await verifyChain(f.t.db)).toMatchObject({ ok: true, checked: SIZE - 1, first_bad_seq: null });
  });

  it('fails against the last exported checkpoint (checkpoint_beyond_head)', async () => {
    const checkpoint = await latestCheckpoint();
    expect(checkpoint.size).toBe(SIZE);
    const result = await verifyChain(f.t.db, { checkpoint });
    expect(result).toMatchObject({ ok: false, reason: 'checkpoint_beyond_head', first_bad_seq: SIZE });
    expect(result.checkpoint).toEqual({ size: SIZE, ok: false });
  });

  it('fails against it as checkpoint_mismatch once the log is grown back past the checkpoint', async () => {
    await f.store.append(roleChange('mallory'));
    await f.store.append(roleChange('mallory2'));
    expect(await verifyChain(f.t.db)).toMatchObject({ ok: true, checked: SIZE + 1 });
    const result = await verifyChain(f.t.db, { checkpoint: await latestCheckpoint() });
    expect(result).toMatchObject({ ok: false, reason: 'checkpoint_mismatch', first_bad_seq: SIZE });
    expect(result.first_bad_seq).toBeGreaterThanOrEqual(k);
  });

  it('is located between the last checkpoint that still holds and the first that does not', async () => {
    const verdicts: [number, boolean][] = [];
    for (const checkpoint of await exportedCheckpoints()) {
      const result = await verifyChain(f.t.db, { checkpoint });
      verdicts.push([checkpoint.size, result.ok]);
    }
    expect(verdicts).toEqual([
      [10, true],
      [20, false],
      [30, false],
    ]);
  });

  it('is never signed over: makeCheckpoint refuses and latest stays put, even after the log regrows', async () => {
    const before = await readLatestExportedCheckpoint(dir);
    const files = (await readdir(dir)).sort();
    await expect(makeCheckpoint(f.t.db, target)).rejects.toMatchObject({
      name: 'CheckpointForkError',
      verification: { reason: 'checkpoint_beyond_head', first_bad_seq: SIZE },
    });
    await f.store.append(roleChange('mallory'));
    await f.store.append(roleChange('mallory2'));
    const error = await makeCheckpoint(f.t.db, target).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CheckpointForkError);
    expect((error as CheckpointForkError).verification).toMatchObject({
      reason: 'checkpoint_mismatch',
      first_bad_seq: SIZE,
    });
    expect(await readLatestExportedCheckpoint(dir)).toBe(before);
    expect((await readdir(dir)).sort()).toEqual(files);
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from checkpoints`.execute(f.t.db);
    expect(rows[0]?.n).toBe(0);
  });
});

describe('the tail cut off', () => {
  const keep = 25;
  const dropTail = (rewindHead: boolean) =>
    tamper(async (trx) => {
      await sql`delete from events where seq > ${keep}`.execute(trx);
      if (rewindHead) {
        await sql`update chain_head set seq = ${keep}, hash = (select hash from events where seq = ${keep}) where id`.execute(
          trx,
        );
      }
    });

  it('with chain_head rewound, passes a plain verify but not the checkpoint (checkpoint_beyond_head)', async () => {
    await dropTail(true);
    expect(await verifyChain(f.t.db)).toMatchObject({ ok: true, checked: keep });
    expect((await readChainHead(f.t.db)).seq).toBe(keep);
    const result = await verifyChain(f.t.db, { checkpoint: await latestCheckpoint() });
    expect(result).toMatchObject({ ok: false, reason: 'checkpoint_beyond_head', first_bad_seq: keep + 1 });
    expect(result.checkpoint).toEqual({ size: SIZE, ok: false });
    // The checkpoint at 20 still holds: the loss is after it.
    const at20 = (await exportedCheckpoints()).find((c) => c.size === 20) as Checkpoint;
    expect(await verifyChain(f.t.db, { checkpoint: at20 })).toMatchObject({ ok: true, checkpoint: { ok: true } });
  });

  it('with chain_head left alone, is reported as truncated even without a checkpoint', async () => {
    await dropTail(false);
    expect(await verifyChain(f.t.db)).toMatchObject({
      ok: false,
      checked: keep,
      first_bad_seq: keep + 1,
      reason: 'truncated',
    });
  });

  it('and regrown with new events (a restored backup that took writes), fails against the checkpoint', async () => {
    await dropTail(true);
    for (let i = 0; i < 7; i++) await f.store.append(roleChange(`after-restore-${i}`));
    expect(await verifyChain(f.t.db)).toMatchObject({ ok: true, checked: keep + 7 });
    expect(await verifyChain(f.t.db, { checkpoint: await latestCheckpoint() })).toMatchObject({
      ok: false,
      reason: 'checkpoint_mismatch',
      first_bad_seq: SIZE,
    });
    await expect(makeCheckpoint(f.t.db, target)).rejects.toBeInstanceOf(CheckpointForkError);
    expect((await latestCheckpoint()).size).toBe(SIZE);
  });
});

describe('a forged checkpoint', () => {
  it('with a forged signature is rejected by openCheckpoint', async () => {
    const note = (await readFile(join(dir, LATEST_CHECKPOINT_FILE), 'utf8')) as string;
    const sig = /\u2014 \S+ (\S+)\n$/.exec(note)?.[1] as string;
    const raw = Buffer.from(sig, 'base64');
    raw[raw.length - 1] = (raw[raw.length - 1] as number) ^ 0x01;
    expect(() => open(note.replace(sig, raw.toString('base64')))).toThrow(NoteError);
  });

  it('with an altered root is rejected, edited in place or re-signed by another key', async () => {
    // The superuser rewrites the log, then tries to make the exported checkpoint match it.
    await tamper(async (trx) => {
      await sql`update events set data = replace(data::text, 'admin', 'owner')::jsonb where seq = 3`.execute(trx);
      await rehashFrom(trx, 3);
    });
    const forgedHead = await readChainHead(f.t.db);
    const forgedBody = formatCheckpoint({ origin: ORIGIN, size: SIZE, rootHash: forgedHead.hash });
    const note = (await readLatestExportedCheckpoint(dir)) as string;
    const edited = `${forgedBody}${note.slice(note.indexOf('\n\n') + 1)}`;
    expect(edited).not.toBe(note);
    expect(() => open(edited)).toThrow(/signature is invalid/);
    const attacker = parseSignerKey(generateSignerKey(ORIGIN));
    expect(() => open(signNote(forgedBody, attacker))).toThrow(/not signed by this key/);
    // The genuine checkpoint still convicts the rewritten log.
    expect(await verifyChain(f.t.db)).toMatchObject({ ok: true });
    expect(await verifyChain(f.t.db, { checkpoint: open(note) })).toMatchObject({
      ok: false,
      reason: 'checkpoint_mismatch',
      first_bad_seq: SIZE,
    });
  });
});
