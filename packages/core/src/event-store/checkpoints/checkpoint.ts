import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sql } from 'kysely';
import type { Clock } from '../../clock.ts';
import { readChainHead } from '../read.ts';
import type { DbOrTrx } from '../types.ts';
import { type CheckpointClaim, type VerifyResult, verifySince } from '../verify.ts';
import {
  NoteError,
  type NoteSigner,
  type NoteVerifier,
  openNote,
  parseVerifierKey,
  signNote,
  verifierKeyOf,
} from './signed-note.ts';

/**
 * A C2SP tlog-checkpoint body: origin, tree size, base64 root hash, each on its own line. Keyledger's log is a hash
 * chain rather than a Merkle tree, so the "root hash" is the hash of the event at seq = size.
 */
export interface Checkpoint extends CheckpointClaim {
  readonly origin: string;
}

export function formatCheckpoint(c: Checkpoint): string {
  return `${c.origin}\n${c.size}\n${Buffer.from(c.rootHash).toString('base64')}\n`;
}

export function parseCheckpoint(text: string): Checkpoint {
  const lines = text.split('\n');
  const [origin, sizeText, rootB64] = lines;
  if (!origin || !sizeText || !rootB64 || lines.at(-1) !== '') throw new NoteError('malformed checkpoint');
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText)))
    throw new NoteError('malformed checkpoint size');
  const rootHash = Buffer.from(rootB64, 'base64');
  if (rootHash.length !== 32 || rootHash.toString('base64') !== rootB64)
    throw new NoteError('malformed checkpoint root hash');
  return { origin, size: Number(sizeText), rootHash: new Uint8Array(rootHash) };
}

/** Checks the signature and the origin, and returns what the checkpoint claims. Throws NoteError otherwise. */
export function openCheckpoint(note: string, verifier: NoteVerifier, expectedOrigin?: string): Checkpoint {
  const checkpoint = parseCheckpoint(openNote(note, verifier));
  if (expectedOrigin !== undefined && checkpoint.origin !== expectedOrigin) {
    throw new NoteError(`checkpoint origin ${checkpoint.origin} is not ${expectedOrigin}`);
  }
  return checkpoint;
}

export interface CheckpointTarget {
  readonly signer: NoteSigner;
  readonly origin: string;
  /** Outside the database: what a superuser cannot rewrite along with the log. */
  readonly exportDir: string;
  readonly clock: Clock;
}

export interface MadeCheckpoint extends Checkpoint {
  readonly note: string;
}

export const LATEST_CHECKPOINT_FILE = 'latest';

/**
 * The log no longer extends a checkpoint this key already signed: it was rewritten, truncated or restored from a
 * backup. No new checkpoint is made over it; an operator has to look (`verify` against the exported checkpoints).
 */
export class CheckpointForkError extends Error {
  override readonly name = 'CheckpointForkError';
  constructor(
    readonly previous: Checkpoint,
    readonly verification: VerifyResult,
  ) {
    super(
      `the log does not extend checkpoint ${previous.size} (${verification.reason} at seq ${verification.first_bad_seq}): refusing to sign it`,
    );
  }
}

/**
 * Signs the current head and writes it to the export directory (first, atomically) and the checkpoints table.
 * Returns null on an empty log. Ed25519 signatures are deterministic, so two instances checkpointing the same head
 * write identical notes.
 *
 * Before signing, the log is held to the newest checkpoint this key signed before (the exported `latest`, or the
 * newest in the table if that is further along): the event at its size must still carry its root hash and every
 * event since must chain from it. Otherwise a superuser's rewrite would be signed as if it were the history, and
 * the next `latest` would vouch for it. That case throws CheckpointForkError and writes nothing.
 */
export async function makeCheckpoint(db: DbOrTrx, target: CheckpointTarget): Promise<MadeCheckpoint | null> {
  // Read the previous checkpoint before the head: the head read after it is at least as long as the log it covers.
  const previous = await previousCheckpoint(db, target);
  let head: { seq: number; hash: Uint8Array };
  if (previous) {
    const result = await verifySince(db, previous);
    if (!result.ok) throw new CheckpointForkError(previous, result);
    head = result.head
      ? { seq: result.head.seq, hash: Buffer.from(result.head.hash, 'hex') }
      : { seq: 0, hash: new Uint8Array(32) };
  } else {
    head = await readChainHead(db);
  }
  if (head.seq === 0) return null;
  const checkpoint: Checkpoint = { origin: target.origin, size: head.seq, rootHash: new Uint8Array(head.hash) };
  const note = signNote(formatCheckpoint(checkpoint), target.signer);
  await exportCheckpoint(target.exportDir, head.seq, note);
  await sql`insert into checkpoints (size, head_hash, origin, note, created_at)
    values (${head.seq}, ${checkpoint.rootHash}, ${target.origin}, ${note}, ${target.clock.now()})
    on conflict (size) do nothing`.execute(db);
  return { ...checkpoint, note };
}

/** The newest checkpoint signed by this key for this origin, from the export directory or the table. */
async function previousCheckpoint(db: DbOrTrx, target: CheckpointTarget): Promise<Checkpoint | null> {
  const verifier = parseVerifierKey(verifierKeyOf(target.signer));
  const open = (note: string | null | undefined): Checkpoint | null => {
    if (!note) return null;
    try {
      return openCheckpoint(note, verifier, target.origin);
    } catch (error) {
      // Signed by another key (rotated) or for another origin, or unreadable: it binds nothing this key signs.
      if (error instanceof NoteError) return null;
      throw error;
    }
  };
  const exported = open(await readLatestExportedCheckpoint(target.exportDir));
  const stored = open((await latestStoredCheckpoint(db))?.note);
  if (exported && stored) return stored.size > exported.size ? stored : exported;
  return exported ?? stored;
}

async function exportCheckpoint(dir: string, size: number, note: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const name = `checkpoint-${String(size).padStart(16, '0')}`;
  await writeAtomically(join(dir, name), note);
  // `latest` only moves forward: a slower instance must not replace a newer checkpoint with an older one. A
  // `latest` that cannot be read as a checkpoint (e.g. cut short by a crash) does not block it forever.
  const current = await readLatestExportedCheckpoint(dir);
  let currentSize = 0;
  if (current) {
    try {
      currentSize = parseCheckpoint(current.slice(0, current.indexOf('\n\n') + 1)).size;
    } catch (error) {
      if (!(error instanceof NoteError)) throw error;
    }
  }
  if (size >= currentSize) await writeAtomically(join(dir, LATEST_CHECKPOINT_FILE), note);
}

async function writeAtomically(path: string, content: string): Promise<void> {
  // Unique per call: two writes of one file in the same millisecond must not share (and rename away) one temp file.
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, content, { mode: 0o644, flag: 'wx' });
    await rename(tmp, path);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}

export async function readLatestExportedCheckpoint(dir: string): Promise<string | null> {
  try {
    return await readFile(join(dir, LATEST_CHECKPOINT_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

export async function latestStoredCheckpoint(db: DbOrTrx): Promise<{ size: number; note: string } | null> {
  const { rows } = await sql<{ size: number | string; note: string }>`
    select size, note from checkpoints order by size desc limit 1`.execute(db);
  const row = rows[0];
  return row ? { size: Number(row.size), note: row.note } : null;
}
