import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { generateSignerKey, type NoteSigner, parseSignerKey } from './signed-note.ts';

export interface SignerKeySource {
  /** KEYLEDGER_CHECKPOINT_KEY: the signer key itself, from the environment or a secret store. */
  readonly fromEnv?: string | undefined;
  /** Where the key is kept when none is given: created 0600 on first start. Never in the database. */
  readonly path: string;
  readonly name: string;
}

export async function loadOrCreateSignerKey(
  source: SignerKeySource,
): Promise<{ signer: NoteSigner; created: boolean }> {
  if (source.fromEnv) return { signer: parseSignerKey(source.fromEnv), created: false };
  try {
    const text = await readFile(source.path, 'utf8');
    const mode = (await stat(source.path)).mode & 0o777;
    // A readable signing key lets anyone sign a forged checkpoint: tighten it rather than carry on exposed.
    if (mode & 0o077) await chmod(source.path, 0o600);
    return { signer: parseSignerKey(text), created: false };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await mkdir(dirname(source.path), { recursive: true, mode: 0o700 });
  const key = generateSignerKey(source.name);
  // Written whole to a private temp file, then linked into place: link fails if the key exists, so a concurrent
  // first start never reads a created-but-still-empty file, and the key is never replaced once there.
  const tmp = `${source.path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(tmp, `${key}\n`, { mode: 0o600, flag: 'wx' });
  try {
    await link(tmp, source.path);
  } catch (error) {
    // Another process created it first: use theirs.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return { signer: parseSignerKey(await readFile(source.path, 'utf8')), created: false };
  } finally {
    await rm(tmp, { force: true });
  }
  return { signer: parseSignerKey(key), created: true };
}
