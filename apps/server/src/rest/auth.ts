import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import {
  createSession,
  passwordSignIn,
  refreshSession,
  registerUser,
  revokeSession,
  setPassword,
} from '@keyledger/core';
import { deleteCookie } from 'hono/cookie';
import { sessionCookieName } from '../http/cookies.ts';
import { HttpError } from '../http/errors.ts';
import type { AppEnv } from '../http/variables.ts';
import { escapeHtml, page } from '../pages/html.ts';
import { userJson } from '../surface.ts';
import { errors, meta, principalOf, SESSION_ONLY, userOf } from './common.ts';
import { PasswordBody, SigninBody, SignupBody, TokenResponse, User } from './schemas.ts';

const json = <T extends z.ZodTypeAny>(schema: T) => ({ content: { 'application/json': { schema } }, required: true });

const signup = createRoute({
  method: 'post',
  path: '/v1/auth/pw/signup',
  tags: ['auth'],
  summary: 'Create an account with a password (open sign-up only)',
  request: { body: json(SignupBody) },
  responses: {
    201: {
      description: 'The new user and an access token',
      content: { 'application/json': { schema: TokenResponse.extend({ user: User }).openapi('SignupResponse') } },
    },
    ...errors(400, 403, 409, 413, 415),
  },
});

const signin = createRoute({
  method: 'post',
  path: '/v1/auth/pw/signin',
  tags: ['auth'],
  summary: 'Sign in with email and password',
  request: { body: json(SigninBody) },
  responses: {
    200: {
      description: 'An access token (1 h; renew with /v1/auth/uat)',
      content: { 'application/json': { schema: TokenResponse } },
    },
    ...errors(400, 401, 413, 415),
  },
});

const refresh = createRoute({
  method: 'post',
  path: '/v1/auth/uat',
  tags: ['auth'],
  summary: 'Refresh: a new token with a fresh expiry (the old one works 10 s more)',
  security: [{ bearerAuth: [] }],
  responses: {
    200: { description: 'The successor token', content: { 'application/json': { schema: TokenResponse } } },
    ...errors(400, 401),
  },
});

const signout = createRoute({
  method: 'post',
  path: '/v1/auth/signout',
  tags: ['auth'],
  summary: 'Sign out: the session token is dead at once',
  security: SESSION_ONLY,
  responses: {
    204: { description: 'Signed out' },
    303: {
      description:
        'Signed out from a browser form (the cookie, and a page navigation asking for HTML): to /login?signed_out=1',
    },
    ...errors(400, 401, 403),
  },
});

const logoutPage = createRoute({
  method: 'get',
  path: '/v1/auth/logout',
  tags: ['auth'],
  summary: 'A page with a sign-out button (a GET changes nothing); the button POSTs /v1/auth/signout',
  responses: {
    200: {
      description: 'The page (for a browser signed in by cookie; anyone else is told they are not signed in)',
      content: { 'text/html': { schema: z.string() } },
    },
  },
});

const password = createRoute({
  method: 'post',
  path: '/v1/auth/password',
  tags: ['auth'],
  summary: "Set or change the caller's password; their other sessions are revoked",
  security: SESSION_ONLY,
  request: { body: json(PasswordBody) },
  responses: { 204: { description: 'Password set' }, ...errors(400, 401, 403, 413, 415) },
});

export function registerAuthRoutes(rest: OpenAPIHono<AppEnv>): void {
  rest.openapi(signup, async (c) => {
    const deps = c.get('deps');
    if (deps.config.signup !== 'open') throw new HttpError(403, 'signup_closed', 'Sign-up is by invitation only');
    const body = c.req.valid('json');
    const user = await registerUser(deps.core, meta(c), {
      email: body.email,
      name: body.name ?? null,
      role: 'member',
      method: 'password',
      password: body.password,
    });
    const session = await createSession(deps.core, meta(c), { userId: user.id, method: 'password', lifetime: 'api' });
    return c.json(
      {
        user: userJson(user),
        access_token: session.token,
        token_type: 'bearer' as const,
        expires_at: session.expiresAt.toISOString(),
      },
      201,
    );
  });

  rest.openapi(signin, async (c) => {
    const deps = c.get('deps');
    const body = c.req.valid('json');
    const session = await passwordSignIn(deps.core, meta(c), {
      email: body.email,
      password: body.password,
      ip: c.get('clientIp'),
      lifetime: 'api',
    });
    return c.json(
      { access_token: session.token, token_type: 'bearer' as const, expires_at: session.expiresAt.toISOString() },
      200,
    );
  });

  rest.openapi(refresh, async (c) => {
    const deps = c.get('deps');
    const token = c.get('credential');
    if (!token)
      throw new HttpError(401, 'unauthorized', 'A Bearer session token is required', { 'WWW-Authenticate': 'Bearer' });
    // A token the pipeline could not verify reaches here only when it is a Bearer session token (see pipeline).
    if (c.get('credentialSource') !== 'bearer' || !token.startsWith('kl_ses_')) {
      throw new HttpError(
        400,
        'not_a_session_token',
        'Refresh takes a Bearer session token, not a cookie or an API key',
      );
    }
    const next = await refreshSession(deps.core, meta(c), token);
    return c.json(
      { access_token: next.token, token_type: 'bearer' as const, expires_at: next.expiresAt.toISOString() },
      200,
    );
  });

  rest.openapi(signout, async (c) => {
    const p = principalOf(c);
    if (p.kind !== 'user' || p.auth !== 'session')
      throw new HttpError(400, 'not_a_session_token', 'Sign-out takes a session token or cookie');
    await revokeSession(c.get('deps').core, meta(c), p.sessionId, 'signout');
    if (c.get('credentialSource') === 'cookie') {
      deleteCookie(c, sessionCookieName(c.get('deps').config), {
        path: '/',
        secure: c.get('deps').config.publicUrl.protocol === 'https:',
      });
      // A form on the logout page navigates: send the browser somewhere instead of leaving it on a 204.
      if (c.req.header('sec-fetch-mode') === 'navigate' || (c.req.header('accept') ?? '').includes('text/html')) {
        return c.redirect('/login?signed_out=1', 303);
      }
    }
    return c.body(null, 204);
  });

  rest.openapi(logoutPage, (c) => {
    const p = c.get('principal');
    if (p?.kind !== 'user' || c.get('credentialSource') !== 'cookie') {
      return c.html(page('Signed out', '<h1>You are not signed in</h1><p><a href="/login">Sign in</a></p>'), 200);
    }
    const who = escapeHtml(p.name ?? p.email);
    return c.html(
      page(
        'Sign out',
        `<h1>Sign out of Keyledger?</h1>
<p>You are signed in as <strong>${who}</strong>. Signing out ends this browser's session at once.</p>
<form method="post" action="/v1/auth/signout"><button type="submit">Sign out</button></form>
<p><a href="/">Stay signed in</a></p>`,
      ),
      200,
    );
  });

  rest.openapi(password, async (c) => {
    const p = userOf(c);
    // A password is the account itself: only the person's own session may change it, never an API key.
    if (p.auth !== 'session')
      throw new HttpError(403, 'session_required', 'Changing a password needs a session, not an API key');
    const body = c.req.valid('json');
    await setPassword(c.get('deps').core, meta(c), {
      userId: p.userId,
      currentSessionId: p.auth === 'session' ? p.sessionId : null,
      currentPassword: body.current_password,
      newPassword: body.new_password,
    });
    return c.body(null, 204);
  });
}
