import { hashToken, randomBase62, secretsEqual } from '../credentials/tokens.ts';
import { DomainError } from '../errors.ts';
import type { EventMeta } from '../event-store/catalogue.ts';
import type { CoreContext } from '../event-store/command.ts';
import { createSession, type IssuedSession } from '../sessions/service.ts';
import { assertPasswordAcceptable, registerUser } from './service.ts';

export const SETUP_TOKEN_TTL_MS = 3600_000;

export async function hasAdmin(ctx: Pick<CoreContext, 'db'>): Promise<boolean> {
  return (
    (await ctx.db.selectFrom('users').select('id').where('role', '=', 'admin').limit(1).executeTakeFirst()) !==
    undefined
  );
}

/**
 * With no admin yet, mints a one-time setup token (valid 1 h, stored only as a hash) and returns it; the server
 * prints the link once. Returns null when an admin exists.
 */
export async function createSetupToken(ctx: CoreContext): Promise<string | null> {
  if (await hasAdmin(ctx)) return null;
  const token = randomBase62(32);
  const now = ctx.clock.now();
  await ctx.db
    .insertInto('setup_tokens')
    .values({ token_hash: hashToken(token), created_at: now, expires_at: new Date(now.getTime() + SETUP_TOKEN_TTL_MS) })
    .execute();
  return token;
}

/** Consumes a setup token: creates the first admin with a password and signs them in. */
export async function completeSetup(
  ctx: CoreContext,
  meta: EventMeta,
  input: { token: string; email: string; password: string; name: string | null },
): Promise<IssuedSession> {
  assertPasswordAcceptable(input.password);
  const invalid = () =>
    new DomainError('unauthorized', 'This setup link is invalid, used or expired', {
      details: { reason: 'invalid_setup_token' },
    });
  if (!/^[0-9A-Za-z]{32}$/.test(input.token)) throw invalid();
  const now = ctx.clock.now();
  const hash = hashToken(input.token);
  const usable = await ctx.db
    .selectFrom('setup_tokens')
    .select('token_hash')
    .where('token_hash', '=', hash)
    .where('used_at', 'is', null)
    .where('expires_at', '>', now)
    .executeTakeFirst();
  if (!usable || !secretsEqual(usable.token_hash, hash)) throw invalid();
  if (await hasAdmin(ctx))
    throw new DomainError('conflict', 'Keyledger already has an admin', { details: { reason: 'already_set_up' } });
  const user = await registerUser(ctx, meta, {
    email: input.email,
    name: input.name,
    role: 'admin',
    method: 'bootstrap',
    password: input.password,
    emailVerified: false,
    // The link is used up in the registration's own transaction: atomically (of two concurrent submissions, one
    // wins; the other's registration rolls back), and only if the admin is created (a refused email or a database
    // error leaves the link usable).
    within: async (trx, userId) => {
      // Under the chain lock: of two setups with two different links (one minted per start), one admin only.
      const another = await trx
        .selectFrom('users')
        .select('id')
        .where('role', '=', 'admin')
        .where('id', '!=', userId)
        .limit(1)
        .executeTakeFirst();
      if (another)
        throw new DomainError('conflict', 'Keyledger already has an admin', { details: { reason: 'already_set_up' } });
      const claimed = await trx
        .updateTable('setup_tokens')
        .set({ used_at: now })
        .where('token_hash', '=', hash)
        .where('used_at', 'is', null)
        .where('expires_at', '>', now)
        .returning('token_hash')
        .executeTakeFirst();
      if (!claimed) throw invalid();
    },
  });
  return createSession(ctx, meta, { userId: user.id, method: 'setup', lifetime: 'browser' });
}
