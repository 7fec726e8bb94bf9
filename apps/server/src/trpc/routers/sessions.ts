import { DomainError, listSessions, revokeOtherSessions, revokeSession } from '@keyledger/core';
import { z } from 'zod';
import { router, scopedProcedure } from '../init.ts';
import {
  clearSessionCookie,
  Id,
  listOf,
  Ok,
  ownedOrNotFound,
  Revoked,
  Session,
  sessionJson,
  userOf,
} from './shared.ts';

/** The caller's own devices: list, revoke one (the current one too: that is a sign-out), revoke all others. */
export const sessionsRouter = router({
  list: scopedProcedure('sessions:read')
    .output(listOf(Session))
    .query(async ({ ctx }) => {
      const p = userOf(ctx.principal);
      const current = p.auth === 'session' ? p.sessionId : null;
      const sessions = await listSessions(ctx.deps.core, p.userId, current);
      return { data: sessions.map(sessionJson), next_cursor: null };
    }),

  revoke: scopedProcedure('sessions:write')
    .input(z.strictObject({ id: Id }))
    .output(Ok)
    .mutation(async ({ ctx, input }) => {
      const p = userOf(ctx.principal);
      await ownedOrNotFound(ctx, 'sessions', input.id, async () => {
        // Only the caller's own live sessions: anyone else's is indistinguishable from a missing one.
        const row = await ctx.deps.core.db
          .selectFrom('sessions')
          .select('user_id')
          .where('id', '=', input.id)
          .where('revoked_at', 'is', null)
          .executeTakeFirst();
        if (!row || row.user_id !== p.userId) throw new DomainError('not_found', 'Session not found');
      });
      const isCurrent = p.auth === 'session' && p.sessionId === input.id;
      await revokeSession(ctx.deps.core, ctx.meta, input.id, isCurrent ? 'signout' : 'user');
      if (isCurrent && ctx.credentialSource === 'cookie') clearSessionCookie(ctx);
      return { ok: true as const };
    }),

  /** Signs out every other device; the calling session (if the caller is one) stays. */
  revokeOthers: scopedProcedure('sessions:write')
    .output(Revoked)
    .mutation(async ({ ctx }) => {
      const p = userOf(ctx.principal);
      const current = p.auth === 'session' ? p.sessionId : null;
      return { revoked: await revokeOtherSessions(ctx.deps.core, ctx.meta, p.userId, current) };
    }),
});
