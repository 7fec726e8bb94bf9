import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sql } from 'kysely';
import type { Clock } from '../../clock.ts';
import { readChainHead } from '../read.ts';
import type { DbOrTrx } from '../types.ts';
import type { CheckpointClaim } from '../verify.ts';
import { NoteError, type NoteSigner, type NoteVerifier, openNote, signNote } from './signed-note.ts';

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
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeText)) throw new NoteError('malformed checkpoint size');
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
 * Signs the current head and writes it to the export directory (first, atomically) and the checkpoints table.
 * Returns null on an empty log. Ed25519 signatures are deterministic, so two instances checkpointing the same head
 * write identical notes.
 */
export async function makeCheckpoint(db: DbOrTrx, target: CheckpointTarget): Promise<MadeCheckpoint | null> {
  const head = await readChainHead(db);
  if (head.seq === 0) return null;
  const checkpoint: Checkpoint = { origin: target.origin, size: head.seq, rootHash: head.hash };
  const note = signNote(formatCheckpoint(checkpoint), target.signer);
  await exportCheckpoint(target.exportDir, head.seq, note);
  await sql`insert into checkpoints (size, head_hash, origin, note, created_at)
    values (${head.seq}, ${head.hash}, ${target.origin}, ${note}, ${target.clock.now()})
    on conflict (size) do nothing`.execute(db);
  return { ...checkpoint, note };
}

async function exportCheckpoint(dir: string, size: number, note: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const name = `checkpoint-${String(size).padStart(16, '0')}`;
  await writeAtomically(join(dir, name), note);
  // `latest` only moves forward: a slower instance must not replace a newer checkpoint with an older one.
  const current = await readLatestExportedCheckpoint(dir);
  const currentSize = current ? Number(current.split('\n')[1]) : 0;
  if (size >= currentSize) await writeAtomically(join(dir, LATEST_CHECKPOINT_FILE), note);
}

async function writeAtomically(path: string, content: string): Promise<void> {
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(tmp, content, { mode: 0o644 });
  await rename(tmp, path);
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
