import {
  changeRole,
  DomainError,
  disableUser,
  enableUser,
  getUser,
  listUsers,
  registerUser,
  renameUser,
  revokeUserSessions,
  roleField,
} from '@keyledger/core';
import type { UserRow } from '@keyledger/db';
import { z } from 'zod';
import { invitationFrom } from '../../surface.ts';
import { router, scopedProcedure } from '../init.ts';
import { Email, Id, Limit, listOf, Name, Password, Revoked, User, userJson } from './shared.ts';

/** User administration: admins only (users:read / users:write; members never hold users:*). */
export const usersRouter = router({
  list: scopedProcedure('users:read')
    .input(z.strictObject({ query: z.string().max(320).optional(), after: Id.optional(), limit: Limit }).prefault({}))
    .output(listOf(User))
    .query(async ({ ctx, input }) => {
      const page = await listUsers(ctx.deps.core, input);
      return { data: page.data.map(userJson), next_cursor: page.next_cursor };
    }),

  get: scopedProcedure('users:read')
    .input(z.strictObject({ id: Id }))
    .output(User)
    .query(async ({ ctx, input }) => {
      const user = await getUser(ctx.deps.core, input.id);
      if (!user) throw new DomainError('not_found', 'User not found');
      return userJson(user);
    }),

  /** With a password the user can sign in at once; without one they are registered with no way in yet. */
  create: scopedProcedure('users:write')
    .input(
      z.strictObject({
        email: Email,
        name: Name.optional(),
        role: roleField.optional(),
        password: Password.optional(),
      }),
    )
    .output(User)
    .mutation(async ({ ctx, input }) => {
      const user = await registerUser(ctx.deps.core, ctx.meta, {
        email: input.email,
        name: input.name ?? null,
        role: input.role ?? 'member',
        method: 'admin',
        password: input.password,
        invite: invitationFrom(ctx.deps, ctx.principal, ctx.clientIp),
      });
      if (input.password === undefined) void ctx.deps.mail?.kick();
      return userJson(user);
    }),

  /**
   * Name, role and disabled state, each its own event (`user.renamed`, `user.role_changed`, `user.disabled`/
   * `user.enabled`). Disabling revokes every session and key of the user in the same transaction.
   */
  update: scopedProcedure('users:write')
    .input(
      z.strictObject({
        id: Id,
        name: Name.nullable().optional(),
        role: roleField.optional(),
        disabled: z.boolean().optional(),
      }),
    )
    .output(User)
    .mutation(async ({ ctx, input }) => {
      const { core } = ctx.deps;
      let user: UserRow | undefined;
      if (input.name !== undefined) user = await renameUser(core, ctx.meta, input.id, input.name);
      // Each change is its own command (and event); both are idempotent, so a retried update is harmless.
      if (input.role !== undefined) user = await changeRole(core, ctx.meta, input.id, input.role);
      if (input.disabled === true) user = await disableUser(core, ctx.meta, input.id);
      if (input.disabled === false) user = await enableUser(core, ctx.meta, input.id);
      user ??= await getUser(core, input.id);
      if (!user) throw new DomainError('not_found', 'User not found');
      return userJson(user);
    }),

  /** Signs the user out everywhere (reason `admin`); their API keys stay. */
  revokeSessions: scopedProcedure('users:write')
    .input(z.strictObject({ id: Id }))
    .output(Revoked)
    .mutation(async ({ ctx, input }) => ({
      revoked: await revokeUserSessions(ctx.deps.core, ctx.meta, input.id),
    })),
});
