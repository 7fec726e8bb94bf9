import type { Database, UserRow } from '@keyledger/db';
import { sql, type Transaction } from 'kysely';
import { type ApiKeyEvent, apiKeyStream } from '../api-keys/decider.ts';
import { DomainError } from '../errors.ts';
import type { EventMeta } from '../event-store/catalogue.ts';
import { type CoreContext, runCommand, translateStorageError } from '../event-store/command.ts';
import type { StreamAppend } from '../event-store/types.ts';
import { typeId } from '../ids.ts';
import { buildInvitation, type InvitationOptions } from '../magic-links/invite.ts';
import { hashPassword, verifyPassword } from '../passwords/hash.ts';
import { checkPasswordPolicy, PASSWORD_PROBLEM_MESSAGES } from '../passwords/policy.ts';
import type { Role } from '../schemas.ts';
import { type RevokeReason, type SessionEvent, sessionStream } from '../sessions/decider.ts';
import { resetSigninThrottle } from '../sessions/throttle.ts';
import { userDecider, userStream } from './decider.ts';
import { normalizeEmail } from './email.ts';

export { normalizeEmail } from './email.ts';

export function assertPasswordAcceptable(password: string, field = 'password'): void {
  const problem = checkPasswordPolicy(password);
  if (problem)
    throw new DomainError('invalid_input', PASSWORD_PROBLEM_MESSAGES[problem], {
      details: { field, reason: `password_${problem}` },
    });
}

export interface RegisterUserInput {
  readonly email: string;
  readonly name: string | null;
  readonly role: Role;
  readonly method: 'password' | 'magic_link' | 'oauth' | 'admin' | 'bootstrap';
  readonly password?: string | undefined;
  readonly emailVerified?: boolean;
  /**
   * Without a password: mail the person an invitation (a magic link) in the same append. Ignored with a password
   * (they were given one).
   */
  readonly invite?: Omit<InvitationOptions, 'now'> | undefined;
  /** Extra writes that must commit with the registration (an idempotency record). */
  readonly within?: (trx: Transaction<Database>, userId: string) => Promise<void>;
}

/** Registers a user; with a password, its hash is written in the same transaction (outside the log). */
export async function registerUser(ctx: CoreContext, meta: EventMeta, input: RegisterUserInput): Promise<UserRow> {
  if (input.password !== undefined) assertPasswordAcceptable(input.password);
  const email = normalizeEmail(input.email);
  const existing = await ctx.db
    .selectFrom('users')
    .select('id')
    .where(sql<string>`lower(email)`, '=', email)
    .executeTakeFirst();
  if (existing)
    throw new DomainError('conflict', 'A user with this email already exists', {
      details: { reason: 'email_taken', field: 'email' },
    });
  const userId = typeId('user');
  const passwordHash = input.password === undefined ? undefined : await hashPassword(input.password);
  const now = ctx.clock.now();
  const events: { type: string; data: unknown }[] = [
    {
      type: 'user.registered',
      data: { user_id: userId, email, name: input.name, role: input.role, method: input.method },
    },
  ];
  if (input.emailVerified) events.push({ type: 'user.email_verified', data: { user_id: userId } });
  if (passwordHash) events.push({ type: 'user.password_set', data: { user_id: userId } });
  const invitation =
    input.invite && input.password === undefined ? buildInvitation(userId, email, { ...input.invite, now }) : null;
  if (invitation) events.push(invitation.userEvent);
  try {
    await ctx.store.append({
      streams: [{ stream: userStream(userId), expectedVersion: 0, events }, ...(invitation ? [invitation.link] : [])],
      meta,
      occurredAt: now,
      ...(invitation ? { outbox: [invitation.mail] } : {}),
      within: async (trx) => {
        if (passwordHash) {
          await trx
            .insertInto('password_credentials')
            .values({ user_id: userId, hash: passwordHash, updated_at: now })
            .execute();
        }
        await input.within?.(trx, userId);
      },
    });
  } catch (error) {
    const translated = translateStorageError(error);
    // A unique violation is the email taken; a refusal of the caller's own `within` stays what it was.
    if (!(error instanceof DomainError) && translated instanceof DomainError && translated.code === 'conflict') {
      throw new DomainError('conflict', 'A user with this email already exists', {
        cause: error,
        details: { reason: 'email_taken', field: 'email' },
      });
    }
    throw translated;
  }
  return getUserOrThrow(ctx, userId);
}

export async function getUser(ctx: Pick<CoreContext, 'db'>, userId: string): Promise<UserRow | undefined> {
  return ctx.db.selectFrom('users').selectAll().where('id', '=', userId).executeTakeFirst();
}

export async function getUserOrThrow(ctx: Pick<CoreContext, 'db'>, userId: string): Promise<UserRow> {
  const user = await getUser(ctx, userId);
  if (!user) throw new DomainError('not_found', 'User not found');
  return user;
}

export async function findUserByEmail(ctx: Pick<CoreContext, 'db'>, email: string): Promise<UserRow | undefined> {
  return ctx.db
    .selectFrom('users')
    .selectAll()
    .where(sql<string>`lower(email)`, '=', normalizeEmail(email))
    .executeTakeFirst();
}

/** Users by creation order, keyset-paged on (created_at, id); `query` matches email or name. */
export async function listUsers(
  ctx: Pick<CoreContext, 'db'>,
  options: { query?: string | undefined; after?: string | undefined; limit: number },
): Promise<{ data: UserRow[]; next_cursor: string | null }> {
  let q = ctx.db.selectFrom('users').selectAll();
  if (options.query) {
    const pattern = `%${options.query.replace(/[\\%_]/g, '\\$&')}%`;
    q = q.where((eb) => eb.or([eb('email', 'ilike', pattern), eb('name', 'ilike', pattern)]));
  }
  if (options.after) {
    const cursor = await ctx.db
      .selectFrom('users')
      .select(['created_at', 'id'])
      .where('id', '=', options.after)
      .executeTakeFirst();
    if (!cursor) throw new DomainError('invalid_input', 'Unknown cursor', { details: { field: 'after' } });
    q = q.where((eb) =>
      eb.or([
        eb('created_at', '>', cursor.created_at),
        eb.and([eb('created_at', '=', cursor.created_at), eb('id', '>', cursor.id)]),
      ]),
    );
  }
  const rows = await q
    .orderBy('created_at')
    .orderBy('id')
    .limit(options.limit + 1)
    .execute();
  const data = rows.slice(0, options.limit);
  return { data, next_cursor: rows.length > options.limit ? (data.at(-1)?.id ?? null) : null };
}

/** Someone must be able to administer Keyledger: the last active admin cannot be demoted or disabled. */
async function assertNotLastAdmin(ctx: CoreContext, userId: string): Promise<void> {
  const admins = await ctx.db
    .selectFrom('users')
    .select('id')
    .where('role', '=', 'admin')
    .where('disabled', '=', false)
    .execute();
  if (admins.length === 1 && admins[0]?.id === userId) {
    throw new DomainError('conflict', 'This is the last active admin; promote another admin first', {
      details: { reason: 'last_admin' },
    });
  }
}

export async function changeRole(ctx: CoreContext, meta: EventMeta, userId: string, to: Role): Promise<UserRow> {
  if (to !== 'admin') await assertNotLastAdmin(ctx, userId);
  await runCommand(ctx, userStream(userId), userDecider, { type: 'ChangeRole', data: { userId, to } }, meta);
  return getUserOrThrow(ctx, userId);
}

/** Changes a user's display name (`null` clears it); the same name again writes nothing. */
export async function renameUser(
  ctx: CoreContext,
  meta: EventMeta,
  userId: string,
  name: string | null,
): Promise<UserRow> {
  const trimmed = name === null ? null : name.trim();
  if (trimmed !== null && (trimmed.length === 0 || trimmed.length > 200)) {
    throw new DomainError('invalid_input', 'name must be 1–200 characters (or null to clear it)', {
      details: { field: 'name' },
    });
  }
  await runCommand(ctx, userStream(userId), userDecider, { type: 'Rename', data: { userId, name: trimmed } }, meta);
  return getUserOrThrow(ctx, userId);
}

/** Revocation events for every live session and key of a user, to ride in the same append. */
async function revokeEverything(
  ctx: CoreContext,
  userId: string,
  sessionReason: RevokeReason,
): Promise<StreamAppend[]> {
  const sessions = await ctx.db
    .selectFrom('sessions')
    .select('id')
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null)
    .execute();
  const keys = await ctx.db
    .selectFrom('api_keys')
    .select('id')
    .where('owner_id', '=', userId)
    .where('revoked_at', 'is', null)
    .execute();
  return [
    ...sessions.map((s) => ({
      stream: sessionStream(s.id),
      expectedVersion: 'any' as const,
      events: [{ type: 'session.revoked', data: { session_id: s.id, reason: sessionReason } } satisfies SessionEvent],
    })),
    ...keys.map((k) => ({
      stream: apiKeyStream(k.id),
      expectedVersion: 'any' as const,
      events: [{ type: 'api_key.revoked', data: { key_id: k.id, reason: 'user_disabled' } } satisfies ApiKeyEvent],
    })),
  ];
}

/** Disables a user and, in the same transaction, revokes every session and key of theirs. */
export async function disableUser(ctx: CoreContext, meta: EventMeta, userId: string): Promise<UserRow> {
  await assertNotLastAdmin(ctx, userId);
  await runCommand(ctx, userStream(userId), userDecider, { type: 'DisableUser', data: { userId } }, meta, {
    also: async (state) => (state && !state.disabled ? revokeEverything(ctx, userId, 'user_disabled') : []),
  });
  return getUserOrThrow(ctx, userId);
}

export async function enableUser(ctx: CoreContext, meta: EventMeta, userId: string): Promise<UserRow> {
  await runCommand(ctx, userStream(userId), userDecider, { type: 'EnableUser', data: { userId } }, meta);
  return getUserOrThrow(ctx, userId);
}

/** Revokes all of a user's sessions (an admin's "sign out everywhere"). */
export async function revokeUserSessions(ctx: CoreContext, meta: EventMeta, userId: string): Promise<number> {
  await getUserOrThrow(ctx, userId);
  const sessions = (await revokeEverything(ctx, userId, 'admin')).filter((s) => s.stream.startsWith('session-'));
  if (sessions.length > 0) await ctx.store.append({ streams: sessions, meta, occurredAt: ctx.clock.now() });
  return sessions.length;
}

/**
 * Sets or changes the caller's password (the current one is required when one exists) and revokes their other
 * sessions, all in one transaction.
 */
export async function setPassword(
  ctx: CoreContext,
  meta: EventMeta,
  input: { userId: string; currentSessionId: string | null; currentPassword?: string | undefined; newPassword: string },
): Promise<void> {
  assertPasswordAcceptable(input.newPassword, 'new_password');
  const stored = await ctx.db
    .selectFrom('password_credentials')
    .select('hash')
    .where('user_id', '=', input.userId)
    .executeTakeFirst();
  if (stored) {
    if (input.currentPassword === undefined) {
      throw new DomainError('invalid_input', 'current_password is required to change a password', {
        details: { field: 'current_password' },
      });
    }
    if (!(await verifyPassword(stored.hash, input.currentPassword))) {
      throw new DomainError('forbidden', 'The current password is wrong', {
        details: { field: 'current_password', reason: 'bad_password' },
      });
    }
  }
  const hash = await hashPassword(input.newPassword);
  const now = ctx.clock.now();
  await runCommand(
    ctx,
    userStream(input.userId),
    userDecider,
    { type: 'RecordPasswordSet', data: { userId: input.userId } },
    meta,
    {
      also: async () => {
        const sessions = await ctx.db
          .selectFrom('sessions')
          .select('id')
          .where('user_id', '=', input.userId)
          .where('revoked_at', 'is', null)
          .$if(input.currentSessionId !== null, (q) => q.where('id', '!=', input.currentSessionId as string))
          .execute();
        return sessions.map((s) => ({
          stream: sessionStream(s.id),
          expectedVersion: 'any' as const,
          events: [{ type: 'session.revoked', data: { session_id: s.id, reason: 'password_changed' } }],
        }));
      },
      within: async (trx) => {
        await trx
          .insertInto('password_credentials')
          .values({ user_id: input.userId, hash, updated_at: now })
          .onConflict((oc) => oc.column('user_id').doUpdateSet({ hash, updated_at: now }))
          .execute();
        // A new password: the address's failures with the old one are forgotten (a capped address unlocked).
        const user = await trx.selectFrom('users').select('email').where('id', '=', input.userId).executeTakeFirst();
        if (user) await resetSigninThrottle({ db: trx }, user.email);
      },
    },
  );
}
