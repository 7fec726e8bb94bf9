import { hash, verify } from '@node-rs/argon2';
import { normalizePassword } from './policy.ts';

/** argon2id, m=19456 KiB, t=2, p=1 (OWASP's minimum); hashed on libuv's thread pool, off the event loop. */
// algorithm 2 is Argon2id in @node-rs/argon2's (const, so not importable here) Algorithm enum.
export const ARGON2_PARAMS = { algorithm: 2, memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;

export async function hashPassword(password: string): Promise<string> {
  return hash(normalizePassword(password), ARGON2_PARAMS);
}

export async function verifyPassword(storedHash: string, password: string): Promise<boolean> {
  try {
    return await verify(storedHash, normalizePassword(password));
  } catch {
    return false;
  }
}

/** Whether a stored hash was made with other parameters than today's, so it is rehashed on the next sign-in. */
export function needsRehash(storedHash: string): boolean {
  const m = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$/.exec(storedHash);
  if (!m) return true;
  return (
    Number(m[1]) !== ARGON2_PARAMS.memoryCost ||
    Number(m[2]) !== ARGON2_PARAMS.timeCost ||
    Number(m[3]) !== ARGON2_PARAMS.parallelism
  );
}

let dummy: Promise<string> | undefined;
/**
 * Verifies against a hash of a random password so an unknown account costs the same time as a wrong password:
 * otherwise response time would tell which addresses have accounts.
 */
export async function burnPasswordCheck(password: string): Promise<false> {
  dummy ??= hashPassword(`dummy-${Math.random()}-${Date.now()}`);
  await verifyPassword(await dummy, password);
  return false;
}
