import type { UserRow } from '@keyledger/db';
import { generateToken, hashToken } from '../credentials/tokens.ts';
import { DomainError } from '../errors.ts';
import type { EventMeta } from '../event-store/catalogue.ts';
import { type CoreContext, translateStorageError } from '../event-store/command.ts';
import type { StreamAppend } from '../event-store/types.ts';
import { typeId } from '../ids.ts';
import { sessionStream } from '../sessions/decider.ts';
import { BROWSER_SESSION_MS, type IssuedSession } from '../sessions/service.ts';
import { resetSigninThrottle } from '../sessions/throttle.ts';
import { findUserByEmail, getUser, normalizeEmail } from '../users/service.ts';
import { oauthAccountDecider, oauthAccountStream } from './decider.ts';

export type OauthFailureReason =
  | 'state_mismatch'
  | 'id_token_invalid'
  | 'access_denied'
  | 'provider_unavailable'
  | 'account_exists_unverified'
  | 'signup_closed';

/** A refused OAuth sign-in; its `oauth.signin_failed` event is already written when this is thrown. */
export class OauthSigninRefused extends DomainError {
  override readonly name = 'OauthSigninRefused';
  constructor(readonly reason: OauthFailureReason) {
    super(reason === 'signup_closed' ? 'forbidden' : 'unauthorized', `OAuth sign-in refused: ${reason}`, {
      details: { reason },
    });
  }
}

/** Writes one `oauth.signin_failed` (no code, token or state in it) and returns the error to throw. */
export async function recordOauthFailure(
  ctx: CoreContext,
  meta: EventMeta,
  provider: string,
  reason: OauthFailureReason,
): Promise<OauthSigninRefused> {
  await ctx.store.append({
    streams: [
      {
        stream: `oauth_signin-${provider}`,
        expectedVersion: 'any',
        events: [{ type: 'oauth.signin_failed', data: { provider, reason } }],
      },
    ],
    meta,
    occurredAt: ctx.clock.now(),
  });
  return new OauthSigninRefused(reason);
}

export interface OidcIdentity {
  /** The configured provider id (the `{provider}` path segment). */
  readonly provider: string;
  readonly issuer: string;
  readonly subject: string;
  readonly email: string | null;
  readonly emailVerified: boolean;
  readonly signup: 'open' | 'invite';
  /**
   * The signed-in user who started the flow from their account page to link this identity: it is linked to them
   * whatever the email says (their session proves the account, the provider proves the identity). An identity
   * already linked to someone else is refused (`access_denied`).
   */
  readonly linkTo?: string | null | undefined;
}

export interface OidcSignIn extends IssuedSession {
  readonly outcome: 'existing' | 'linked' | 'registered';
}

const MAX_ATTEMPTS = 4;

/**
 * Signs a verified OpenID identity in: an account known by (issuer, subject) gets a session; else a user with the
 * same email is linked only when the provider says the email is verified; else, under open sign-up, a user is
 * registered. Linking or registering and the session are one append. Every refusal writes `oauth.signin_failed`.
 */
export async function signInWithOidc(ctx: CoreContext, meta: EventMeta, identity: OidcIdentity): Promise<OidcSignIn> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await attemptSignIn(ctx, meta, identity);
    } catch (error) {
      const translated = translateStorageError(error);
      // Two callbacks for one new account (or one new email) raced: start again, the winner's rows now exist.
      const raced =
        translated instanceof DomainError &&
        (translated.code === 'conflict' || translated.code === 'concurrency_conflict') &&
        !(translated instanceof OauthSigninRefused);
      if (raced && attempt < MAX_ATTEMPTS) continue;
      throw translated;
    }
  }
}

async function attemptSignIn(ctx: CoreContext, meta: EventMeta, identity: OidcIdentity): Promise<OidcSignIn> {
  const refuse = async (reason: OauthFailureReason) => {
    throw await recordOauthFailure(ctx, meta, identity.provider, reason);
  };
  const account = await ctx.db
    .selectFrom('oauth_accounts')
    .select('user_id')
    .where('issuer', '=', identity.issuer)
    .where('subject', '=', identity.subject)
    .executeTakeFirst();
  const streams: StreamAppend[] = [];
  let user: UserRow | undefined;
  let outcome: OidcSignIn['outcome'];
  if (account) {
    if (identity.linkTo && account.user_id !== identity.linkTo) return refuse('access_denied');
    user = await getUser(ctx, account.user_id);
    outcome = 'existing';
  } else {
    const email = identity.email === null ? null : normalizeEmail(identity.email);
    user = identity.linkTo
      ? await getUser(ctx, identity.linkTo)
      : email === null
        ? undefined
        : await findUserByEmail(ctx, email);
    if (identity.linkTo) {
      if (!user) return refuse('access_denied');
      outcome = 'linked';
    } else if (user) {
      if (!identity.emailVerified) return refuse('account_exists_unverified');
      outcome = 'linked';
    } else {
      if (identity.signup !== 'open') return refuse('signup_closed');
      if (email === null) return refuse('id_token_invalid');
      outcome = 'registered';
      const userId = typeId('user');
      const events: { type: string; data: unknown }[] = [
        { type: 'user.registered', data: { user_id: userId, email, name: null, role: 'member', method: 'oauth' } },
      ];
      if (identity.emailVerified) events.push({ type: 'user.email_verified', data: { user_id: userId } });
      streams.push({ stream: `user-${userId}`, expectedVersion: 0, events });
      user = {
        id: userId,
        email,
        name: null,
        role: 'member',
        disabled: false,
        email_verified: identity.emailVerified,
        has_password: false,
        registration_method: 'oauth',
        created_at: ctx.clock.now(),
        updated_at: ctx.clock.now(),
      };
    }
    streams.push({
      stream: oauthAccountStream(identity.issuer, identity.subject),
      expectedVersion: 0,
      events: oauthAccountDecider.decide(
        {
          type: 'LinkAccount',
          data: {
            userId: user.id,
            provider: identity.provider,
            issuer: identity.issuer,
            subject: identity.subject,
            email,
            emailVerified: identity.emailVerified,
          },
        },
        null,
      ),
    });
  }
  // A disabled user (or a dangling account) is refused like a provider that said no.
  if (!user || user.disabled) return refuse('access_denied');
  const token = generateToken('session');
  const sessionId = typeId('ses');
  const expiresAt = new Date(ctx.clock.now().getTime() + BROWSER_SESSION_MS);
  streams.push({
    stream: sessionStream(sessionId),
    expectedVersion: 0,
    events: [
      {
        type: 'session.created',
        data: {
          session_id: sessionId,
          user_id: user.id,
          method: 'oauth',
          token_hash: hashToken(token),
          expires_at: expiresAt.toISOString(),
        },
      },
    ],
  });
  await ctx.store.append({ streams, meta, occurredAt: ctx.clock.now() });
  // Getting in through the provider: the address's password failures are forgotten (a capped address unlocked).
  // After the commit, and not worth failing a sign-in that worked for: at worst the address stays throttled.
  await resetSigninThrottle(ctx, user.email).catch(() => undefined);
  return { token, sessionId, userId: user.id, expiresAt, outcome };
}
