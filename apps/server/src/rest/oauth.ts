import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { type OauthFailureReason, OauthSigninRefused, recordOauthFailure, signInWithOidc } from '@keyledger/core';
import {
  ArcticFetchError,
  CodeChallengeMethod,
  generateCodeVerifier,
  generateState,
  OAuth2Client,
  OAuth2RequestError,
} from 'arctic';
import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { errors as joseErrors, jwtVerify } from 'jose';
import type { Config } from '../env.ts';
import { sessionCookieName, sessionCookieOptions } from '../http/cookies.ts';
import { HttpError } from '../http/errors.ts';
import type { AppEnv } from '../http/variables.ts';
import { validateNext } from '../oauth/next.ts';
import {
  type OauthProvider,
  oauthProviders,
  ProviderUnavailable,
  providerList,
  withTimeout,
} from '../oauth/providers.ts';
import { errors, meta } from './common.ts';

/** An authorization request lives 10 minutes, server-side, keyed by the hash of a random id in a cookie. */
const REQUEST_TTL_MS = 10 * 60 * 1000;
const ALGORITHMS = ['RS256', 'ES256', 'EdDSA'];

const oauthCookieName = (config: Config) =>
  config.publicUrl.protocol === 'https:' ? '__Host-keyledger_oauth' : 'keyledger_oauth';
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const sameSecret = (a: string, b: string) => {
  const x = Buffer.from(sha256(a));
  const y = Buffer.from(sha256(b));
  return timingSafeEqual(x, y) && a === b;
};

const Provider = z
  .object({
    id: z.string(),
    name: z.string(),
    type: z.enum(['google', 'oidc']),
    login_url: z.string(),
  })
  .openapi('OauthProvider');

const redirect = (description: string) => ({
  description,
  headers: z.object({ Location: z.string().openapi({ description: 'Where the browser goes next' }) }),
});

const providersRoute = createRoute({
  method: 'get',
  path: '/v1/auth/oauth/providers',
  tags: ['auth'],
  summary: 'The configured Google and OpenID Connect providers (OAuth metadata)',
  responses: {
    200: {
      description: 'The providers',
      content: {
        'application/json': {
          schema: z.object({ data: z.array(Provider), next_cursor: z.null() }).openapi('OauthProviderList'),
        },
      },
    },
    ...errors(400),
  },
});

const ProviderParam = z.object({ provider: z.string().openapi({ param: { name: 'provider', in: 'path' } }) });

const loginRoute = createRoute({
  method: 'get',
  path: '/v1/auth/oauth/{provider}/login',
  tags: ['auth'],
  summary: 'Start a sign-in with a provider: 302 to its authorization page (PKCE S256, state, nonce)',
  request: {
    params: ProviderParam,
    query: z.object({
      next: z.string().optional().openapi({ description: 'A same-origin path, default /' }),
      link: z.enum(['1']).optional().openapi({
        description:
          "1: link this provider's identity to the signed-in user (session cookie required) instead of signing in",
      }),
    }),
  },
  responses: {
    302: redirect('To the provider, or to /login?error=provider_unavailable'),
    ...errors(400, 401, 404),
  },
});

const callbackRoute = createRoute({
  method: 'get',
  path: '/v1/auth/oauth/{provider}/callback',
  tags: ['auth'],
  summary: 'The provider returns here: sets the session cookie and 302 to the stored next',
  request: {
    params: ProviderParam,
    query: z.object({
      state: z.string().optional(),
      code: z.string().optional(),
      error: z.string().optional(),
      error_description: z.string().optional(),
      iss: z.string().optional(),
      scope: z.string().optional(),
      authuser: z.string().optional(),
      prompt: z.string().optional(),
      hd: z.string().optional(),
      session_state: z.string().optional(),
    }),
  },
  responses: {
    302: redirect(
      'Signed in: to the stored next, with the session cookie. Refused: to /login?error=<code> (state_mismatch, ' +
        'id_token_invalid, access_denied, provider_unavailable, account_exists_unverified, signup_closed)',
    ),
    ...errors(404),
  },
});

function providerOr404(c: Context<AppEnv>, id: string): OauthProvider {
  const provider = oauthProviders(c.get('deps')).get(id);
  if (!provider) throw new HttpError(404, 'not_found', 'Unknown provider');
  return provider;
}

const redirectUri = (config: Config, provider: OauthProvider) =>
  `${config.publicUrl.origin}/v1/auth/oauth/${provider.id}/callback`;

async function refuse(c: Context<AppEnv>, provider: OauthProvider, reason: OauthFailureReason) {
  await recordOauthFailure(c.get('deps').core, meta(c), provider.id, reason);
  return c.redirect(`/login?error=${reason}`, 302);
}

export function registerOauthRoutes(rest: OpenAPIHono<AppEnv>): void {
  rest.openapi(providersRoute, (c) => c.json({ data: providerList(c.get('deps')), next_cursor: null }, 200));

  rest.openapi(loginRoute, async (c) => {
    const deps = c.get('deps');
    const provider = providerOr404(c, c.req.valid('param').provider);
    const query = c.req.valid('query');
    const next = validateNext(query.next);
    if (next === null) {
      throw new HttpError(400, 'invalid_next', 'next: must be a path on this site');
    }
    const signedIn = c.get('principal');
    let linkUserId: string | null = null;
    if (query.link === '1') {
      if (signedIn?.kind !== 'user' || c.get('credentialSource') !== 'cookie') {
        throw new HttpError(401, 'unauthorized', 'Sign in first to link an account', { 'WWW-Authenticate': 'Bearer' });
      }
      linkUserId = signedIn.userId;
    }
    let metadata: Awaited<ReturnType<ReturnType<typeof oauthProviders>['discover']>>;
    try {
      metadata = await oauthProviders(deps).discover(provider);
    } catch (error) {
      if (error instanceof ProviderUnavailable) return refuse(c, provider, 'provider_unavailable');
      throw error;
    }
    const state = generateState();
    const codeVerifier = generateCodeVerifier();
    const nonce = generateState();
    const id = randomBytes(32).toString('base64url');
    const now = deps.core.clock.now();
    await deps.core.db
      .insertInto('oauth_requests')
      .values({
        id_hash: sha256(id),
        provider: provider.id,
        state,
        code_verifier: codeVerifier,
        nonce,
        next,
        link_user_id: linkUserId,
        created_at: now,
        expires_at: new Date(now.getTime() + REQUEST_TTL_MS),
      })
      .execute();
    // Expired requests nobody came back for.
    await deps.core.db.deleteFrom('oauth_requests').where('expires_at', '<', now).execute();
    const client = new OAuth2Client(provider.clientId, provider.clientSecret, redirectUri(deps.config, provider));
    const url = client.createAuthorizationURLWithPKCE(
      metadata.authorization_endpoint,
      state,
      CodeChallengeMethod.S256,
      codeVerifier,
      [...provider.scopes],
    );
    url.searchParams.set('nonce', nonce);
    setCookie(c, oauthCookieName(deps.config), id, {
      httpOnly: true,
      sameSite: 'Lax',
      path: '/',
      secure: deps.config.publicUrl.protocol === 'https:',
      maxAge: REQUEST_TTL_MS / 1000,
    });
    return c.redirect(url.toString(), 302);
  });

  rest.openapi(callbackRoute, async (c) => {
    const deps = c.get('deps');
    const provider = providerOr404(c, c.req.valid('param').provider);
    const query = c.req.valid('query');
    const cookieName = oauthCookieName(deps.config);
    const requestId = getCookie(c, cookieName);
    deleteCookie(c, cookieName, { path: '/', secure: deps.config.publicUrl.protocol === 'https:' });
    // Single use: the request row is deleted by the first callback that presents its cookie.
    const request = requestId
      ? await deps.core.db
          .deleteFrom('oauth_requests')
          .where('id_hash', '=', sha256(requestId))
          .returningAll()
          .executeTakeFirst()
      : undefined;
    if (
      !request ||
      request.provider !== provider.id ||
      request.expires_at.getTime() <= deps.core.clock.now().getTime() ||
      query.state === undefined ||
      !sameSecret(query.state, request.state)
    ) {
      return refuse(c, provider, 'state_mismatch');
    }
    // A link started by a signed-in person completes only in that person's session.
    if (request.link_user_id !== null) {
      const p = c.get('principal');
      if (p?.kind !== 'user' || p.userId !== request.link_user_id) return refuse(c, provider, 'state_mismatch');
    }
    if (query.error !== undefined) return refuse(c, provider, 'access_denied');
    if (query.code === undefined) return refuse(c, provider, 'id_token_invalid');

    const registry = oauthProviders(deps);
    let tokens: Awaited<ReturnType<OAuth2Client['validateAuthorizationCode']>>;
    let metadata: Awaited<ReturnType<typeof registry.discover>>;
    try {
      metadata = await registry.discover(provider);
      const client = new OAuth2Client(provider.clientId, provider.clientSecret, redirectUri(deps.config, provider));
      tokens = await withTimeout(
        client.validateAuthorizationCode(metadata.token_endpoint, query.code, request.code_verifier),
        registry.options.timeoutMs,
      );
    } catch (error) {
      if (error instanceof ProviderUnavailable || error instanceof ArcticFetchError) {
        return refuse(c, provider, 'provider_unavailable');
      }
      if (error instanceof OAuth2RequestError) return refuse(c, provider, 'access_denied');
      // Any other answer from the token endpoint (a 5xx, a body that is not JSON): the provider is not usable.
      return refuse(c, provider, 'provider_unavailable');
    }

    let idToken: string;
    try {
      idToken = tokens.idToken();
    } catch {
      return refuse(c, provider, 'id_token_invalid');
    }
    let claims: Record<string, unknown>;
    try {
      const verified = await jwtVerify(idToken, registry.keys(provider, metadata), {
        algorithms: ALGORITHMS,
        issuer: metadata.issuer,
        audience: provider.clientId,
        currentDate: deps.core.clock.now(),
        clockTolerance: 5,
        requiredClaims: ['sub', 'exp', 'iat'],
      });
      claims = verified.payload;
    } catch (error) {
      if (error instanceof joseErrors.JWKSTimeout) return refuse(c, provider, 'provider_unavailable');
      return refuse(c, provider, 'id_token_invalid');
    }
    if (typeof claims.nonce !== 'string' || !sameSecret(claims.nonce, request.nonce)) {
      return refuse(c, provider, 'id_token_invalid');
    }
    const subject = claims.sub;
    if (typeof subject !== 'string' || subject.length === 0 || subject.length > 255) {
      return refuse(c, provider, 'id_token_invalid');
    }
    const email = typeof claims.email === 'string' && claims.email.length <= 320 ? claims.email : null;
    const emailVerified = email !== null && (claims.email_verified === true || claims.email_verified === 'true');

    try {
      const session = await signInWithOidc(deps.core, meta(c), {
        provider: provider.id,
        issuer: metadata.issuer.replace(/\/$/, ''),
        subject,
        email,
        emailVerified,
        signup: deps.config.signup,
        linkTo: request.link_user_id,
      });
      setCookie(c, sessionCookieName(deps.config), session.token, sessionCookieOptions(deps.config, session.expiresAt));
      return c.redirect(request.next, 302);
    } catch (error) {
      if (error instanceof OauthSigninRefused) return c.redirect(`/login?error=${error.reason}`, 302);
      throw error;
    }
  });
}
