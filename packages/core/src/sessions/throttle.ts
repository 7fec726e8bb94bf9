import { createHash } from 'node:crypto';
import type { Database } from '@keyledger/db';
import type { Kysely } from 'kysely';
import { normalizeEmail } from '../users/email.ts';

/** Sign-in throttling counters (`signin_throttle`): per address, hashed whether or not an account has it. */
export const emailKey = (email: string) => `email:${createHash('sha256').update(normalizeEmail(email)).digest('hex')}`;
export const ipKey = (ip: string) => `ip:${ip}`;

/**
 * Forgets an address's consecutive password failures: after a password sign-in, and when its owner gets in another
 * way (a magic link, OAuth) or a password is set, which is what unlocks an address that reached the cap.
 */
export async function resetSigninThrottle(ctx: { readonly db: Kysely<Database> }, email: string): Promise<void> {
  await ctx.db.deleteFrom('signin_throttle').where('key', '=', emailKey(email)).execute();
}
