import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { clock, createTestStore, roleChange, type StoreFixture } from '../../../test/helpers.ts';
import { readChainHead } from '../read.ts';
import {
  type CheckpointTarget,
  formatCheckpoint,
  LATEST_CHECKPOINT_FILE,
  type MadeCheckpoint,
  makeCheckpoint,
  openCheckpoint,
  parseCheckpoint,
  readLatestExportedCheckpoint,
} from './checkpoint.ts';
import { Checkpointer } from './checkpointer.ts';
import {
  generateSignerKey,
  NoteError,
  type NoteSigner,
  type NoteVerifier,
  parseSignerKey,
  parseVerifierKey,
  signNote,
  verifierKeyOf,
} from './signed-note.ts';
import { loadOrCreateSignerKey } from './signer-key.ts';

const ORIGIN = 'keyledger.test/log';

let f: StoreFixture;
let dir: string;
let signer: NoteSigner;
let verifier: NoteVerifier;
let target: CheckpointTarget;

beforeEach(async () => {
  f = await createTestStore();
  dir = await mkdtemp(join(tmpdir(), 'keyledger-checkpoint-'));
  signer = parseSignerKey(generateSignerKey(ORIGIN));
  verifier = parseVerifierKey(verifierKeyOf(signer));
  target = { signer, origin: ORIGIN, exportDir: join(dir, 'export'), clock };
});
afterEach(async () => {
  await f.t.close();
  await rm(dir, { recursive: true, force: true });
});

async function appendEvents(n: number): Promise<void> {
  const { seq } = await readChainHead(f.t.db);
  for (let i = 1; i <= n; i++) await f.store.append(roleChange(`u${seq + i}`));
}

async function storedCheckpoints() {
  const { rows } = await sql<{ size: number | string; head_hash: string; origin: string; note: string }>`
    select size, encode(head_hash, 'hex') as head_hash, origin, note from checkpoints order by size`.execute(f.t.db);
  return rows.map((r) => ({ ...r, size: Number(r.size) }));
}

const fileName = (size: number) => `checkpoint-${String(size).padStart(16, '0')}`;
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

describe('makeCheckpoint', () => {
  it('makes nothing on an empty log', async () => {
    expect(await makeCheckpoint(f.t.db, target)).toBeNull();
    expect(await readLatestExportedCheckpoint(target.exportDir)).toBeNull();
    expect(await storedCheckpoints()).toEqual([]);
  });

  it('signs the head and writes the note to the checkpoints table and the export directory, with latest', async () => {
    await appendEvents(7);
    const head = await readChainHead(f.t.db);
    const made = (await makeCheckpoint(f.t.db, target)) as MadeCheckpoint;
    expect(made).toMatchObject({ origin: ORIGIN, size: 7 });
    expect(hex(made.rootHash)).toBe(hex(head.hash));
    expect(made.note).toBe(signNote(`${ORIGIN}\n7\n${Buffer.from(head.hash).toString('base64')}\n`, signer));

    expect(await storedCheckpoints()).toEqual([
      { size: 7, head_hash: hex(head.hash), origin: ORIGIN, note: made.note },
    ]);
    expect((await readdir(target.exportDir)).sort()).toEqual([fileName(7), LATEST_CHECKPOINT_FILE]);
    expect(await readFile(join(target.exportDir, fileName(7)), 'utf8')).toBe(made.note);
    expect(await readLatestExportedCheckpoint(target.exportDir)).toBe(made.note);

    const opened = openCheckpoint(made.note, verifier, ORIGIN);
    expect(opened.size).toBe(7);
    expect(hex(opened.rootHash)).toBe(hex(head.hash));
  });

  it('moves latest forward as the log grows and keeps every checkpoint file', async () => {
    await appendEvents(3);
    await makeCheckpoint(f.t.db, target);
    await appendEvents(4);
    const second = (await makeCheckpoint(f.t.db, target)) as MadeCheckpoint;
    expect(second.size).toBe(7);
    expect(openCheckpoint((await readLatestExportedCheckpoint(target.exportDir)) as string, verifier).size).toBe(7);
    expect((await readdir(target.exportDir)).sort()).toEqual([fileName(3), fileName(7), LATEST_CHECKPOINT_FILE]);
    expect((await storedCheckpoints()).map((c) => c.size)).toEqual([3, 7]);
  });

  it('never moves latest backward, even over a newer checkpoint it cannot open', async () => {
    // A newer `latest` by another (e.g. retired) key: not ours to verify against, but still not to be replaced
    // by an older checkpoint.
    const other = parseSignerKey(generateSignerKey(ORIGIN));
    await appendEvents(5);
    const newer = signNote(formatCheckpoint({ origin: ORIGIN, size: 9, rootHash: new Uint8Array(32).fill(7) }), other);
    await makeCheckpoint(f.t.db, { ...target, signer: other }); // creates the directory
    await writeFile(join(target.exportDir, LATEST_CHECKPOINT_FILE), newer);
    const made = (await makeCheckpoint(f.t.db, target)) as MadeCheckpoint;
    expect(made.size).toBe(5);
    expect(await readFile(join(target.exportDir, fileName(5)), 'utf8')).toBe(made.note);
    expect(await readLatestExportedCheckpoint(target.exportDir)).toBe(newer);
  });

  it('keeps latest on the newest checkpoint when checkpoints and appends race', async () => {
    const work: Promise<unknown>[] = [];
    for (let i = 1; i <= 12; i++) {
      work.push(f.store.append(roleChange(`r${i}`)));
      work.push(makeCheckpoint(f.t.db, target));
    }
    await Promise.all(work);
    await makeCheckpoint(f.t.db, target);
    const sizes = (await readdir(target.exportDir))
      .filter((n) => n.startsWith('checkpoint-'))
      .map((n) => Number(n.slice(11)));
    const latest = openCheckpoint((await readLatestExportedCheckpoint(target.exportDir)) as string, verifier);
    expect(latest.size).toBe(12);
    expect(Math.max(...sizes)).toBe(12);
  });

  it('lets concurrent checkpoints of the same head both succeed with the same note', async () => {
    await appendEvents(4);
    const made = await Promise.all([1, 2, 3, 4].map(() => makeCheckpoint(f.t.db, target)));
    expect(new Set(made.map((m) => m?.note)).size).toBe(1);
    expect((await readdir(target.exportDir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    expect((await storedCheckpoints()).map((c) => c.size)).toEqual([4]);
  });

  it('replaces a latest that is not a checkpoint at all (e.g. cut short by a crash)', async () => {
    await appendEvents(2);
    await makeCheckpoint(f.t.db, target);
    await writeFile(join(target.exportDir, LATEST_CHECKPOINT_FILE), ORIGIN.slice(0, 8));
    await appendEvents(1);
    await makeCheckpoint(f.t.db, target);
    expect(openCheckpoint((await readLatestExportedCheckpoint(target.exportDir)) as string, verifier).size).toBe(3);
  });
});

describe('openCheckpoint', () => {
  const root = Buffer.alloc(32, 0xab);
  const body = formatCheckpoint({ origin: ORIGIN, size: 42, rootHash: root });

  it('returns origin, size and root hash of a checkpoint signed by the key', () => {
    const opened = openCheckpoint(signNote(body, signer), verifier, ORIGIN);
    expect(opened.origin).toBe(ORIGIN);
    expect(opened.size).toBe(42);
    expect(Buffer.from(opened.rootHash)).toEqual(root);
  });

  it('rejects a forged signature', () => {
    const note = signNote(body, signer);
    const sig = /\u2014 \S+ (\S+)\n$/.exec(note)?.[1] as string;
    const raw = Buffer.from(sig, 'base64');
    raw[10] = (raw[10] as number) ^ 0x80;
    expect(() => openCheckpoint(note.replace(sig, raw.toString('base64')), verifier)).toThrow(NoteError);
  });

  it('rejects an altered root hash, re-signed by another key or edited without re-signing', () => {
    const altered = formatCheckpoint({ origin: ORIGIN, size: 42, rootHash: Buffer.alloc(32, 0xac) });
    const forger = parseSignerKey(generateSignerKey(ORIGIN));
    expect(() => openCheckpoint(signNote(altered, forger), verifier)).toThrow(/not signed by this key/);
    const edited = signNote(body, signer).replace(body, altered);
    expect(edited).not.toBe(signNote(body, signer));
    expect(() => openCheckpoint(edited, verifier)).toThrow(/signature is invalid/);
  });

  it('rejects another origin when one is expected', () => {
    expect(() => openCheckpoint(signNote(body, signer), verifier, 'other.example/log')).toThrow(NoteError);
  });

  it('rejects malformed checkpoint bodies', () => {
    const b64 = root.toString('base64');
    for (const bad of [
      `${ORIGIN}\n42\n`,
      `${ORIGIN}\n042\n${b64}\n`,
      `${ORIGIN}\n-1\n${b64}\n`,
      `${ORIGIN}\n9007199254740993\n${b64}\n`,
      `${ORIGIN}\n42\n${Buffer.alloc(31).toString('base64')}\n`,
      `${ORIGIN}\n42\n${b64.replace('=', '')}\n`,
      `${ORIGIN}\n42\n${b64}`,
    ]) {
      expect(() => parseCheckpoint(bad), JSON.stringify(bad)).toThrow(NoteError);
    }
  });
});

describe('loadOrCreateSignerKey', () => {
  it('creates a 0600 key file on first use and reuses it afterwards', async () => {
    const path = join(dir, 'data', 'checkpoint.key');
    const first = await loadOrCreateSignerKey({ path, name: ORIGIN });
    expect(first.created).toBe(true);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await readFile(path, 'utf8')).trim()).toMatch(/^PRIVATE\+KEY\+keyledger\.test\/log\+[0-9a-f]{8}\+/);
    const second = await loadOrCreateSignerKey({ path, name: ORIGIN });
    expect(second.created).toBe(false);
    expect(verifierKeyOf(second.signer)).toBe(verifierKeyOf(first.signer));
    expect((await readdir(join(dir, 'data'))).sort()).toEqual(['checkpoint.key']);
  });

  it('tightens a key file readable by others to 0600', async () => {
    const path = join(dir, 'loose.key');
    const key = generateSignerKey(ORIGIN);
    await writeFile(path, `${key}\n`);
    await chmod(path, 0o644);
    const { signer: loaded, created } = await loadOrCreateSignerKey({ path, name: ORIGIN });
    expect(created).toBe(false);
    expect(verifierKeyOf(loaded)).toBe(verifierKeyOf(parseSignerKey(key)));
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it('takes the key from the environment text when given, touching no file', async () => {
    const key = generateSignerKey(ORIGIN);
    const path = join(dir, 'unused.key');
    const { signer: loaded, created } = await loadOrCreateSignerKey({ fromEnv: `  ${key}\n`, path, name: ORIGIN });
    expect(created).toBe(false);
    expect(verifierKeyOf(loaded)).toBe(verifierKeyOf(parseSignerKey(key)));
    await expect(stat(path)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(loadOrCreateSignerKey({ fromEnv: 'PRIVATE+KEY+nope', path, name: ORIGIN })).rejects.toThrow(NoteError);
  });

  it('gives concurrent first starts one and the same key', async () => {
    const path = join(dir, 'race', 'checkpoint.key');
    const results = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateSignerKey({ path, name: ORIGIN })));
    expect(new Set(results.map((r) => verifierKeyOf(r.signer))).size).toBe(1);
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(await readdir(join(dir, 'race'))).toEqual(['checkpoint.key']);
  });
});

describe('Checkpointer', () => {
  function checkpointer(every: number, intervalMs: number) {
    const made: MadeCheckpoint[] = [];
    const errors: unknown[] = [];
    let waiters: ((c: MadeCheckpoint) => void)[] = [];
    const cp = new Checkpointer({
      ...target,
      db: f.t.db,
      every,
      intervalMs,
      onError: (e) => errors.push(e),
      onCheckpoint: (c) => {
        made.push(c);
        const ready = waiters;
        waiters = [];
        for (const w of ready) w(c);
      },
    });
    const next = () => new Promise<MadeCheckpoint>((resolve) => waiters.push(resolve));
    return { cp, made, errors, next };
  }

  it('makes one every N events and one more on stop()', async () => {
    const { cp, made, errors, next } = checkpointer(5, 3_600_000);
    await cp.start(f.store);
    await appendEvents(4);
    let coming = next();
    await appendEvents(1);
    expect((await coming).size).toBe(5);
    await appendEvents(4);
    coming = next();
    await appendEvents(1);
    expect((await coming).size).toBe(10);
    await appendEvents(2);
    await cp.stop();
    expect(made.map((c) => c.size)).toEqual([5, 10, 12]);
    expect((await storedCheckpoints()).map((c) => c.size)).toEqual([5, 10, 12]);
    expect(openCheckpoint((await readLatestExportedCheckpoint(target.exportDir)) as string, verifier).size).toBe(12);
    expect(errors).toEqual([]);
    // Appends after stop() no longer trigger anything.
    await appendEvents(6);
    expect((await storedCheckpoints()).map((c) => c.size)).toEqual([5, 10, 12]);
  });

  it('resumes counting from the last stored checkpoint', async () => {
    await appendEvents(3);
    await makeCheckpoint(f.t.db, target);
    const { cp, next } = checkpointer(4, 3_600_000);
    await cp.start(f.store);
    await appendEvents(3);
    const coming = next();
    await appendEvents(1);
    expect((await coming).size).toBe(7);
    await cp.stop();
  });

  it('makes one on its timer while the log grows, and none when the last one covers the head', async () => {
    const { cp, made, next } = checkpointer(1_000, 20);
    await cp.start(f.store);
    const coming = next();
    await appendEvents(2);
    expect((await coming).size).toBe(2);
    expect(await cp.checkpointNow()).toBeNull();
    await cp.stop();
    expect(made.map((c) => c.size)).toEqual([2]);
  });

  it('folds calls made while a checkpoint is waiting into that one', async () => {
    const { cp, made } = checkpointer(1_000, 3_600_000);
    await cp.start(f.store);
    await appendEvents(3);
    const runs = Array.from({ length: 5 }, () => cp.checkpointNow());
    expect(new Set(runs).size).toBe(1);
    expect((await runs[0])?.size).toBe(3);
    await cp.stop();
    expect(made.map((c) => c.size)).toEqual([3]);
  });
});
