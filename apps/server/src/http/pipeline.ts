import {
  BROWSER_SESSION_MS,
  createIpMatcher,
  DomainError,
  extendIfHalfUsed,
  type Principal,
  type Scope,
} from '@keyledger/core';
import type { Context, MiddlewareHandler } from 'hono';
import { setCookie } from 'hono/cookie';
import { createMiddleware } from 'hono/factory';
import { HTTPException } from 'hono/http-exception';
import type { ServerDeps } from '../deps.ts';
import { describeError, log } from '../log.ts';
import { createClientIpResolver } from './client-ip.ts';
import { readCookie, sessionCookieName, sessionCookieOptions } from './cookies.ts';
import { type ErrorBody, HttpError, isDatabaseUnavailable, restStatusOf } from './errors.ts';
import { type AppEnv, type CredentialSource, metaOf } from './variables.ts';

export const MAX_BODY_BYTES = 64 * 1024;
const QUERY_CREDENTIALS = ['access_token', 'token', 'api_key', 'key'];
const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export function errorJson(
  c: Context<AppEnv>,
  status: HttpError['status'],
  code: string,
  message: string,
  headers: Record<string, string> = {},
) {
  for (const [k, v] of Object.entries(headers)) c.header(k, v);
  if (c.req.path.startsWith('/trpc/')) return c.json(trpcError(c, status, code, message), status);
  return c.json<ErrorBody>({ error: message, code, request_id: c.get('requestId') }, status);
}

const TRPC_CODES: Record<number, [string, number]> = {
  400: ['BAD_REQUEST', -32600],
  401: ['UNAUTHORIZED', -32001],
  403: ['FORBIDDEN', -32003],
  404: ['NOT_FOUND', -32004],
  405: ['METHOD_NOT_SUPPORTED', -32005],
  409: ['CONFLICT', -32009],
  413: ['PAYLOAD_TOO_LARGE', -32013],
  415: ['UNSUPPORTED_MEDIA_TYPE', -32015],
  429: ['TOO_MANY_REQUESTS', -32029],
  503: ['SERVICE_UNAVAILABLE', -32603],
};

/**
 * A refusal by the pipeline (credential, Origin, IP, limits) on /trpc, in tRPC's own error shape, so typed clients
 * read it like any procedure error: one entry per procedure of a batch.
 */
function trpcError(c: Context<AppEnv>, status: number, keyledgerCode: string, message: string) {
  const [code, rpc] = TRPC_CODES[status] ?? ['INTERNAL_SERVER_ERROR', -32603];
  const paths = c.req.path.slice('/trpc/'.length).split(',');
  const one = (path: string) => ({
    error: { message, code: rpc, data: { code, httpStatus: status, path, keyledgerCode } },
  });
  return c.req.query('batch') === '1' ? paths.map(one) : one(paths[0] ?? '');
}

/** Maps any thrown error to the JSON envelope: never a stack, never a 500 for something the caller did. */
export function toErrorResponse(error: unknown, c: Context<AppEnv>) {
  if (error instanceof HttpError) return errorJson(c, error.status, error.code, error.message, error.headers);
  if (error instanceof DomainError) {
    const { status, code } = restStatusOf(error);
    const headers: Record<string, string> = {};
    if (status === 401) headers['WWW-Authenticate'] = 'Bearer error="invalid_token"';
    const retry = error.details.retry_after_seconds;
    if (status === 429 && typeof retry === 'number') headers['Retry-After'] = String(retry);
    return errorJson(c, status, code, error.message, headers);
  }
  if (error instanceof HTTPException) {
    const status = error.status;
    if (status === 413)
      return errorJson(c, 413, 'payload_too_large', `Request body is over ${MAX_BODY_BYTES / 1024} KiB`);
    if (status === 400) return errorJson(c, 400, 'invalid_request', error.message || 'Malformed request');
    if (
      status === 401 ||
      status === 403 ||
      status === 404 ||
      status === 405 ||
      status === 409 ||
      status === 415 ||
      status === 429
    ) {
      return errorJson(c, status, 'http_error', error.message);
    }
  }
  if (isDatabaseUnavailable(error)) return errorJson(c, 503, 'database_unavailable', 'The database is unavailable');
  log.error('unhandled error', { error: describeError(error), request_id: c.get('requestId'), path: c.req.path });
  return c.json<ErrorBody>({ error: 'Internal error', code: 'internal_error', request_id: c.get('requestId') }, 500);
}

/** Puts the deps and the client IP on every request. */
export function baseContext(deps: ServerDeps): MiddlewareHandler<AppEnv> {
  const resolveIp = createClientIpResolver(deps.config.trustedProxies);
  return createMiddleware<AppEnv>(async (c, next) => {
    c.set('deps', deps);
    const peer = c.env?.incoming?.socket?.remoteAddress ?? '127.0.0.1';
    c.set('clientIp', resolveIp(peer, c.req.header('x-forwarded-for')));
    c.set('principal', null);
    c.set('credentialSource', null);
    c.set('credential', null);
    await next();
  });
}

export type Via = 'rest' | 'trpc' | 'web';

/**
 * One surface's pipeline, in this order: allowed IPs, body limits, credential → principal, Origin check, rate
 * limit. `via: null` (the setup page) stops after the body limits. It is one middleware whose steps are plain calls
 * that throw to refuse: one router entry and no per-request closures on a path every authenticated request takes,
 * and a step this configuration has no use for (no IP allowlist, rate limit off) is never called.
 */
export function surfacePipeline(
  deps: ServerDeps,
  options: { via: Via | null; json: boolean },
): MiddlewareHandler<AppEnv> {
  const { via, json } = options;
  const allowedIps = deps.config.allowedIps === '*' ? null : createIpMatcher(deps.config.allowedIps);
  const limit = via !== null && deps.rateLimiter.enabled;
  return async (c, next) => {
    if (allowedIps && !allowedIps(c.get('clientIp'))) await refuseIp(c, deps);
    const method = c.req.method;
    if (method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS') await guardBody(c, json);
    if (via !== null) {
      await authenticateRequest(c, deps, via);
      if (MUTATING.has(method) && c.get('credentialSource') === 'cookie') await checkOrigin(c, deps);
      if (limit) await limitRate(c, deps);
    }
    await next();
  };
}

/** KEYLEDGER_ALLOWED_IPS: 403 for anyone else, logged (rolled up) as access.denied. */
async function refuseIp(c: Context<AppEnv>, deps: ServerDeps): Promise<never> {
  await deps.rollup.record(
    'access.denied',
    'ip',
    { principal: null, reason: 'ip_not_allowed', scope: null, resource: c.req.path.slice(0, 256) },
    metaOf(c.var, 'rest', c.req.header('user-agent')),
  );
  throw new HttpError(403, 'ip_not_allowed', 'Access denied from this IP address');
}

/**
 * Reads a copy of the body (the original stays readable for the route) and stops as soon as it passes the limit:
 * a chunked body without Content-Length is never buffered past 64 KiB, and the rest of it is never pulled.
 */
async function measuredBodySize(request: Request): Promise<number> {
  const reader = (request.clone().body as ReadableStream<Uint8Array>).getReader();
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return size;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      // Not awaited: a tee branch's cancel settles only when the other branch is cancelled too (streams spec).
      reader.cancel().catch(() => undefined);
      throw new HttpError(413, 'payload_too_large', `Request body is over ${MAX_BODY_BYTES / 1024} KiB`);
    }
  }
}

/** 413 over 64 KiB (declared or streamed), 415 for a body that is not JSON where JSON is expected. */
async function guardBody(c: Context<AppEnv>, json: boolean): Promise<void> {
  const length = c.req.header('content-length');
  if (length !== undefined && Number(length) > MAX_BODY_BYTES)
    throw new HttpError(413, 'payload_too_large', `Request body is over ${MAX_BODY_BYTES / 1024} KiB`);
  const size = c.req.raw.body ? await measuredBodySize(c.req.raw) : 0;
  if (json && size > 0) {
    const type = (c.req.header('content-type') ?? '').split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/json')
      throw new HttpError(415, 'unsupported_media_type', 'Request body must be Content-Type: application/json');
  }
}

function presentedCredential(
  c: Context<AppEnv>,
  deps: ServerDeps,
): { token: string; source: 'bearer' | 'x-api-key' | 'cookie' } | null {
  // Most requests have no query string: skip parsing it four times.
  for (const name of c.req.url.includes('?') ? QUERY_CREDENTIALS : []) {
    if (c.req.query(name) !== undefined)
      throw new HttpError(
        400,
        'credential_in_query',
        `Send credentials in a header, never in the query string (${name})`,
      );
  }
  const authorization = c.req.header('authorization');
  const apiKey = c.req.header('x-api-key');
  if (authorization !== undefined) {
    if (authorization.includes(',') || countRawHeaders(c, 'authorization') > 1)
      throw new HttpError(400, 'duplicate_authorization', 'Send one Authorization header');
    const m = /^Bearer[ ]+(\S+)\s*$/i.exec(authorization);
    if (!m?.[1])
      throw new HttpError(401, 'invalid_token', 'Authorization must be "Bearer <token>"', {
        'WWW-Authenticate': 'Bearer error="invalid_token"',
      });
    if (apiKey !== undefined && apiKey !== m[1])
      throw new HttpError(400, 'ambiguous_credentials', 'Send either Authorization or x-api-key, not both');
    return { token: m[1], source: 'bearer' };
  }
  if (apiKey !== undefined) return { token: apiKey.trim(), source: 'x-api-key' };
  const cookie = readCookie(c.req.header('cookie'), sessionCookieName(deps.config));
  return cookie ? { token: cookie, source: 'cookie' } : null;
}

function countRawHeaders(c: Context<AppEnv>, name: string): number {
  const raw = (c.env?.incoming as { rawHeaders?: string[] } | undefined)?.rawHeaders;
  if (!raw) return 0;
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]?.length === name.length && raw[i]?.toLowerCase() === name) n++;
  return n;
}

/**
 * Resolves the caller: a credential that fails is a 401 (403 for a key used outside its IP allowlist), written to
 * the log as a rolled-up `auth.rejected`. No credential leaves the principal null; routes decide if that is enough.
 */
async function authenticateRequest(c: Context<AppEnv>, deps: ServerDeps, via: Via): Promise<void> {
  let presented = presentedCredential(c, deps);
  if (!presented && deps.anonymous) {
    if (!deps.anonymous.admits(c.get('clientIp'), c.req.header('host'))) {
      throw new HttpError(403, 'ip_not_allowed', 'Anonymous mode answers only loopback requests to a loopback host');
    }
    // The implicit local user is ambient authority, like a cookie: a page on another site (or another port of this
    // machine) must not use it through the browser. A browser says where a request comes from (Origin,
    // Sec-Fetch-Site); a program such as the CLI or curl says neither and is let through.
    // The UI may be opened at the loopback address the server prints as well as at the public URL's name: the
    // origin of the (already loopback-checked) Host it was asked under is its own too.
    const origin = c.req.header('origin');
    const fetchSite = c.req.header('sec-fetch-site');
    const ownOrigin =
      origin === deps.config.publicUrl.origin ||
      origin === `${deps.config.publicUrl.protocol}//${c.req.header('host')}`;
    if (
      MUTATING.has(c.req.method) &&
      !ownOrigin &&
      (origin !== undefined || fetchSite === 'cross-site' || fetchSite === 'same-site')
    )
      await checkOrigin(c, deps);
    presented = { token: await deps.anonymous.token(), source: 'bearer' };
  }
  if (!presented) return;
  const result = await deps.authenticator.authenticate(presented.token, {
    ip: c.get('clientIp'),
    userAgent: c.req.header('user-agent') ?? null,
  });
  if (!result.ok) {
    if (
      (result.reason === 'unknown' || result.reason === 'expired' || result.reason === 'revoked') &&
      isRefreshOfSessionToken(c, presented)
    ) {
      // A refresh with a token past its grace is how reuse (theft) is detected: the refresh itself must see it,
      // revoke the session and answer 401, so the pipeline does not answer for it.
      c.set('credentialSource', presented.source);
      c.set('credential', presented.token);
      return;
    }
    await deps.rollup.record(
      'auth.rejected',
      result.credential,
      { credential: result.credential, reason: result.reason },
      metaOf(c.var, via, c.req.header('user-agent')),
    );
    if (result.reason === 'ip_not_allowed')
      throw new HttpError(403, 'ip_not_allowed', 'Access denied from this IP address');
    // One public answer for unknown, expired, revoked and malformed: the precise reason is in the log.
    throw new HttpError(401, 'invalid_token', 'Invalid or expired credentials', {
      'WWW-Authenticate': 'Bearer error="invalid_token"',
    });
  }
  c.set('principal', result.principal);
  c.set('credentialSource', presented.source);
  c.set('credential', presented.token);
  if (presented.source === 'cookie') await slideBrowserSession(c, result.principal);
}

/** Cookie-authenticated mutations must come from our own origin (login CSRF and cross-site forms). */
async function checkOrigin(c: Context<AppEnv>, deps: ServerDeps): Promise<void> {
  const origin = c.req.header('origin');
  if (origin === deps.config.publicUrl.origin) return;
  const p = c.get('principal');
  await deps.rollup.record(
    'access.denied',
    `csrf:${p && p.kind === 'user' ? p.userId : ''}`,
    {
      principal: p && p.kind === 'user' ? p.userId : null,
      reason: 'csrf',
      scope: null,
      resource: c.req.path.slice(0, 256),
    },
    metaOf(c.var, 'web', c.req.header('user-agent')),
  );
  throw new HttpError(403, 'csrf_rejected', 'Cross-origin request refused: Origin must be the Keyledger origin');
}

/** KEYLEDGER_API_RATE_LIMIT per credential (per IP when anonymous), with RateLimit headers and 429. */
async function limitRate(c: Context<AppEnv>, deps: ServerDeps): Promise<void> {
  const p = c.get('principal');
  const key = !p
    ? `ip:${c.get('clientIp')}`
    : p.kind === 'env'
      ? p.id
      : p.auth === 'api_key'
        ? `key:${p.keyId}`
        : `ses:${p.sessionId}`;
  const r = deps.rateLimiter.hit(key, deps.core.clock.now().getTime());
  c.header('RateLimit-Limit', String(r.limit));
  c.header('RateLimit-Remaining', String(r.remaining));
  c.header('RateLimit-Reset', String(r.resetSeconds));
  if (r.allowed) return;
  await deps.rollup.record(
    'access.denied',
    `rate:${key}`,
    {
      principal: p ? (p.kind === 'env' ? p.id : p.userId) : null,
      reason: 'rate_limited',
      scope: null,
      resource: c.req.path.slice(0, 256),
    },
    metaOf(c.var, 'rest', c.req.header('user-agent')),
  );
  throw new HttpError(429, 'rate_limited', 'Rate limit exceeded', { 'Retry-After': String(r.resetSeconds) });
}

/** The caller must be signed in and hold `scope`; a missing scope is 403 naming it, logged as access.denied. */
export function requireScope(scope: Scope | null): MiddlewareHandler<AppEnv> {
  return createMiddleware<AppEnv>(async (c, next) => {
    const p = c.get('principal');
    if (!p) throw new HttpError(401, 'unauthorized', 'Authentication required', { 'WWW-Authenticate': 'Bearer' });
    if (scope && !p.scopes.includes(scope)) {
      const deps = c.get('deps');
      const id = p.kind === 'env' ? p.id : p.userId;
      await deps.rollup.record(
        'access.denied',
        `scope:${id}`,
        { principal: id, reason: 'scope', scope, resource: c.req.path.slice(0, 256) },
        metaOf(c.var, 'rest', c.req.header('user-agent')),
      );
      throw new HttpError(403, 'insufficient_scope', `This credential lacks the ${scope} scope`);
    }
    await next();
  });
}

/**
 * Sliding renewal: a browser session used after half its 30 days gets its expiry pushed out (same token,
 * `session.extended`) and a fresh cookie. Rare by construction, so the hot path stays read-only.
 */
async function slideBrowserSession(c: Context<AppEnv>, p: Principal): Promise<void> {
  // Only browser sessions slide: an API token presented as a cookie stays a 1 h token, renewed by refresh.
  if (p.kind !== 'user' || p.auth !== 'session' || p.sessionKind !== 'browser') return;
  const deps = c.get('deps');
  if (p.sessionExpiresAt.getTime() - deps.core.clock.now().getTime() > BROWSER_SESSION_MS / 2) return;
  const next = await extendIfHalfUsed(
    deps.core,
    metaOf(c.var, 'web', c.req.header('user-agent')),
    p.sessionId,
    p.sessionExpiresAt,
  ).catch(() => null);
  if (next)
    setCookie(c, sessionCookieName(deps.config), c.get('credential') ?? '', sessionCookieOptions(deps.config, next));
}

function isRefreshOfSessionToken(c: Context<AppEnv>, presented: { token: string; source: CredentialSource }): boolean {
  return (
    c.req.method === 'POST' &&
    c.req.path === '/v1/auth/uat' &&
    presented.source === 'bearer' &&
    presented.token.startsWith('kl_ses_')
  );
}
