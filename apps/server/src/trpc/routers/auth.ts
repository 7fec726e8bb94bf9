import {
  completeSetup,
  DomainError,
  passwordSignIn,
  registerUser,
  revokeSession,
  setPassword,
  ThrottledError,
} from '@keyledger/core';
import { z } from 'zod';
import { providerList } from '../../oauth/providers.ts';
import { meJson, sendMagicLink } from '../../surface.ts';
import { authedProcedure, publicProcedure, router } from '../init.ts';
import {
  clearSessionCookie,
  Email,
  Me,
  Name,
  Ok,
  Password,
  SignedIn,
  sessionOf,
  setSessionCookie,
  User,
  userJson,
} from './shared.ts';

/** Sign-in, sign-out, the caller, password change, first-admin setup and self sign-up, for the web UI. */
export const authRouter = router({
  /** Password sign-in: a new browser session (30 days, sliding) in the HttpOnly cookie; the token is never returned. */
  signIn: publicProcedure
    .input(z.strictObject({ email: z.string().min(1).max(320), password: Password }))
    .output(SignedIn)
    .mutation(async ({ ctx, input }) => {
      try {
        const session = await passwordSignIn(ctx.deps.core, ctx.meta, {
          email: input.email,
          password: input.password,
          ip: ctx.clientIp,
          lifetime: 'browser',
        });
        setSessionCookie(ctx, session.token, session.expiresAt);
        return { user_id: session.userId, session_id: session.sessionId, expires_at: session.expiresAt.toISOString() };
      } catch (error) {
        // TOO_MANY_REQUESTS through the error table; the wait goes out as Retry-After, as over REST.
        if (error instanceof ThrottledError) ctx.resHeaders.set('Retry-After', String(error.retryAfterSeconds));
        throw error;
      }
    }),

  /**
   * Mails a sign-in link (the same answer, in about the same time, for known and unknown addresses). Counted per
   * signed-in user, else per client IP, and per address; over a limit TOO_MANY_REQUESTS with Retry-After.
   */
  requestMagicLink: publicProcedure
    .input(z.strictObject({ email: z.string().min(1).max(320), next: z.string().max(2048).optional() }))
    .output(z.object({ status: z.literal('sent') }))
    .mutation(async ({ ctx, input }) => {
      try {
        await sendMagicLink(ctx.deps, ctx.meta, {
          email: input.email,
          next: input.next,
          principal: ctx.principal,
          clientIp: ctx.clientIp,
        });
      } catch (error) {
        const retry = error instanceof DomainError ? error.details.retry_after_seconds : undefined;
        if (typeof retry === 'number') ctx.resHeaders.set('Retry-After', String(retry));
        throw error;
      }
      return { status: 'sent' as const };
    }),

  /** The configured Google/OIDC providers, each with the URL that starts its sign-in. */
  providers: publicProcedure
    .output(
      z.array(z.object({ id: z.string(), name: z.string(), type: z.enum(['google', 'oidc']), login_url: z.string() })),
    )
    .query(({ ctx }) => providerList(ctx.deps)),

  /** The Google/OIDC identities linked to the caller (for the account page; link more with `login_url?link=1`). */
  linkedAccounts: authedProcedure
    .output(
      z.array(
        z.object({
          provider: z.string(),
          email: z.string().nullable(),
          email_verified: z.boolean(),
          linked_at: z.string(),
        }),
      ),
    )
    .query(async ({ ctx }) => {
      if (ctx.principal.kind !== 'user') return [];
      const rows = await ctx.deps.core.db
        .selectFrom('oauth_accounts')
        .select(['provider', 'email', 'email_verified', 'created_at'])
        .where('user_id', '=', ctx.principal.userId)
        .orderBy('created_at')
        .execute();
      return rows.map((r) => ({
        provider: r.provider,
        email: r.email,
        email_verified: r.email_verified,
        linked_at: new Date(r.created_at).toISOString(),
      }));
    }),

  /** Ends the caller's session at once and clears the cookie. */
  signOut: authedProcedure.output(Ok).mutation(async ({ ctx }) => {
    if (ctx.principal.auth !== 'session') {
      throw new DomainError('invalid_input', 'Sign-out takes a session (cookie or session token), not a key', {
        details: { reason: 'not_a_session_token' },
      });
    }
    clearSessionCookie(ctx);
    await revokeSession(ctx.deps.core, ctx.meta, ctx.principal.sessionId, 'signout');
    return { ok: true as const };
  }),

  /** Who is calling and how; an environment key answers with its principal (`env:…`, no email). */
  me: authedProcedure.output(Me).query(({ ctx }) => meJson(ctx.principal)),

  /** Sets or changes the caller's password; their other sessions are revoked (reason `password_changed`). */
  changePassword: authedProcedure
    .input(z.strictObject({ current_password: Password.optional(), new_password: Password }))
    .output(Ok)
    .mutation(async ({ ctx, input }) => {
      const p = sessionOf(ctx.principal);
      await setPassword(ctx.deps.core, ctx.meta, {
        userId: p.userId,
        currentSessionId: p.sessionId,
        currentPassword: input.current_password,
        newPassword: input.new_password,
      });
      return { ok: true as const };
    }),

  /** Consumes the one-time setup link: the first admin, signed in with the cookie. */
  completeSetup: publicProcedure
    .input(
      z.strictObject({
        token: z.string().min(1).max(128),
        email: Email,
        password: Password,
        name: Name.optional(),
      }),
    )
    .output(SignedIn)
    .mutation(async ({ ctx, input }) => {
      const session = await completeSetup(ctx.deps.core, ctx.meta, {
        token: input.token,
        email: input.email,
        password: input.password,
        name: input.name ?? null,
      });
      setSessionCookie(ctx, session.token, session.expiresAt);
      return { user_id: session.userId, session_id: session.sessionId, expires_at: session.expiresAt.toISOString() };
    }),

  /** Self sign-up with a password, only under KEYLEDGER_SIGNUP=open; the new member then signs in. */
  signUp: publicProcedure
    .input(z.strictObject({ email: Email, password: Password, name: Name.optional() }))
    .output(User)
    .mutation(async ({ ctx, input }) => {
      if (ctx.deps.config.signup !== 'open') {
        throw new DomainError('forbidden', 'Sign-up is by invitation only', { details: { reason: 'signup_closed' } });
      }
      const user = await registerUser(ctx.deps.core, ctx.meta, {
        email: input.email,
        name: input.name ?? null,
        role: 'member',
        method: 'password',
        password: input.password,
      });
      return userJson(user);
    }),
});
