import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectError, type Res, signedIn, useRestKit } from '../../test/rest-kit.ts';
import { WEB_DIST } from '../web/static.ts';

/**
 * The security headers (app.ts: secureHeaders) and X-Request-Id are on every kind of response: health checks, the
 * document, REST successes and errors of every kind the pipeline and the router produce, tRPC answers (built by the
 * fetch adapter, not by Hono), the server-rendered pages and the web UI fallback.
 */

const kit = useRestKit({ KEYLEDGER_API_RATE_LIMIT: '100000' });

const EXPECTED: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'SAMEORIGIN',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
  'origin-agent-cluster': '?1',
  'x-dns-prefetch-control': 'off',
  'x-download-options': 'noopen',
  'x-permitted-cross-domain-policies': 'none',
  'x-xss-protection': '0',
};

function expectSecurityHeaders(res: { headers: Headers; status: number }, what: string): void {
  const seen = Object.fromEntries(Object.keys(EXPECTED).map((h) => [h, res.headers.get(h)]));
  expect(seen, `${what} (${res.status})`).toEqual(EXPECTED);
  const hsts = res.headers.get('strict-transport-security') ?? '';
  const maxAge = Number(/(?:^|;)\s*max-age=(\d+)/i.exec(hsts)?.[1] ?? 0);
  expect(maxAge, `${what}: Strict-Transport-Security "${hsts}"`).toBeGreaterThanOrEqual(180 * 24 * 3600);
  expect(hsts.toLowerCase(), what).toContain('includesubdomains');
  expect(res.headers.get('x-powered-by'), what).toBeNull();
  expect(res.headers.get('x-request-id'), `${what}: X-Request-Id`).toMatch(/^[A-Za-z0-9._-]{1,128}$/);
}

/** For responses that are not the JSON envelope (HTML pages): straight through the app, from loopback. */
async function raw(path: string, init: RequestInit = {}): Promise<Res> {
  const res = await kit.app.request(path, init, { incoming: { socket: { remoteAddress: '127.0.0.1' } } });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, body: text };
}

describe('security headers and X-Request-Id', () => {
  it('on the health checks and the OpenAPI document', async () => {
    for (const path of ['/healthz', '/readyz', '/api/openapi']) {
      const res = await kit.call(path);
      expect(res.status, path).toBe(200);
      expectSecurityHeaders(res, path);
    }
  });

  it('on /v1 successes and on every kind of /v1 and /api error', async () => {
    const u = await signedIn(kit);
    const ok = await kit.call('/v1/users/me', { token: u.token });
    expect(ok.status).toBe(200);
    expectSecurityHeaders(ok, 'GET /v1/users/me');
    const created = await kit.call('/v1/api-keys', { method: 'POST', token: u.token, body: { name: 'hdr' } });
    expect(created.status).toBe(201);
    expectSecurityHeaders(created, 'POST /v1/api-keys');
    const revoked = await kit.call(`/v1/api-keys/${created.body.id}`, { method: 'DELETE', token: u.token });
    expect(revoked.status).toBe(204);
    expectSecurityHeaders(revoked, 'DELETE /v1/api-keys/{id}');

    const cases: [string, Res, number][] = [
      ['no credential', await kit.call('/v1/users/me'), 401],
      ['a bad credential', await kit.call('/v1/users/me', { token: 'kl_key_nope' }), 401],
      ['unknown under /v1', await kit.call('/v1/nothing-here', { token: u.token }), 404],
      ['unknown under /api', await kit.call('/api/nothing-here'), 404],
      ['unknown at the root', await kit.call('/nothing-here'), 404],
      ['a method the path lacks', await kit.call('/v1/users/me', { method: 'PUT', token: u.token, body: {} }), 405],
      [
        'a body over 64 KiB',
        await kit.call('/v1/api-keys', {
          method: 'POST',
          token: u.token,
          rawBody: `{"name":"${'x'.repeat(70_000)}"}`,
          headers: { 'content-type': 'application/json' },
        }),
        413,
      ],
      [
        'a body that is not JSON',
        await kit.call('/v1/api-keys', {
          method: 'POST',
          token: u.token,
          rawBody: 'name=x',
          headers: { 'content-type': 'text/plain' },
        }),
        415,
      ],
      [
        'bad input',
        await kit.call('/v1/api-keys', { method: 'POST', token: u.token, body: { scopes: ['root'] } }),
        400,
      ],
      ['a missing scope', await kit.call('/v1/users', { token: u.token }), 403],
      ['a credential in the query', await kit.call('/v1/users/me?token=x'), 400],
    ];
    for (const [what, res, status] of cases) {
      expectError(res, status);
      expectSecurityHeaders(res, what);
    }
    expect(cases[5]?.[1].headers.get('allow')).toContain('GET');
  });

  it('on tRPC successes and errors (the fetch adapter’s own responses)', async () => {
    const u = await signedIn(kit);
    const ok = await kit.call('/trpc/auth.me', { token: u.token });
    expect(ok.status).toBe(200);
    expect(ok.body.result.data.id).toBe(u.userId);
    expectSecurityHeaders(ok, 'tRPC auth.me');
    const batch = await kit.call('/trpc/auth.me,auth.providers?batch=1&input={}', { token: u.token });
    expect(batch.status).toBe(200);
    expectSecurityHeaders(batch, 'tRPC batch');

    const unauthorized = await kit.call('/trpc/auth.me');
    expect(unauthorized.status).toBe(401);
    expectSecurityHeaders(unauthorized, 'tRPC UNAUTHORIZED from the procedure');
    const refused = await kit.call('/trpc/auth.me', { token: 'kl_key_nope' });
    expect(refused.status).toBe(401);
    expectSecurityHeaders(refused, 'tRPC 401 from the pipeline');
    const missing = await kit.call('/trpc/nothing.here', { token: u.token });
    expect(missing.status).toBe(404);
    expectSecurityHeaders(missing, 'tRPC unknown procedure');
    const badInput = await kit.call('/trpc/auth.signIn', { method: 'POST', body: { email: 'x' } });
    expect(badInput.status).toBe(400);
    expectSecurityHeaders(badInput, 'tRPC bad input');
  });

  it('on the /auth/magic page, /setup, and the web UI fallback', async () => {
    const page = await raw(`/auth/magic?code=${'A'.repeat(32)}&email=a%40example.test`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.text).toContain('<form');
    expectSecurityHeaders(page, 'GET /auth/magic');
    const refused = await raw('/auth/magic?code=short');
    expect(refused.status).toBe(400);
    expectSecurityHeaders(refused, 'GET /auth/magic refused');
    const crossSite = await raw('/auth/magic', {
      method: 'POST',
      headers: { origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
      body: 'email=a%40example.test&code=x',
    });
    expect(crossSite.status).toBe(403);
    expectSecurityHeaders(crossSite, 'POST /auth/magic cross-site');

    const setup = await raw('/setup?token=nope');
    expect(setup.status).toBeGreaterThanOrEqual(200);
    expectSecurityHeaders(setup, 'GET /setup');

    // A browser navigating to a client route: index.html when the UI is built, otherwise a page saying so.
    const ui = await raw('/keys', { headers: { accept: 'text/html' } });
    expect(ui.status).toBe(existsSync(join(WEB_DIST, 'index.html')) ? 200 : 503);
    expect(ui.headers.get('content-type')).toMatch(/^text\/html/);
    expectSecurityHeaders(ui, 'web UI fallback');
    // Anything else at the root stays the JSON 404.
    const notHtml = await kit.call('/keys');
    expectError(notHtml, 404, 'not_found');
    expectSecurityHeaders(notHtml, 'GET /keys without Accept: text/html');
  });

  it('keeps a well-formed incoming X-Request-Id on every kind of response and replaces a malformed one', async () => {
    const u = await signedIn(kit);
    const id = 'trace-7f3a.B_9';
    const sent = { 'x-request-id': id };
    const responses: [string, Res][] = [
      ['/healthz', await kit.call('/healthz', { headers: sent })],
      ['/v1 200', await kit.call('/v1/users/me', { token: u.token, headers: sent })],
      ['/v1 401', await kit.call('/v1/users/me', { headers: sent })],
      ['/api 404', await kit.call('/api/nothing-here', { headers: sent })],
      ['tRPC 200', await kit.call('/trpc/auth.me', { token: u.token, headers: sent })],
      ['tRPC 401', await kit.call('/trpc/auth.me', { headers: sent })],
      ['/auth/magic', await raw(`/auth/magic?code=${'A'.repeat(32)}&email=a%40example.test`, { headers: sent })],
      ['web UI', await raw('/keys', { headers: { ...sent, accept: 'text/html' } })],
    ];
    for (const [what, res] of responses) expect(res.headers.get('x-request-id'), what).toBe(id);
    expect(responses[2]?.[1].body.request_id).toBe(id);

    for (const bad of ['a'.repeat(129), 'has space', 'semi;colon', 'ünïcode']) {
      const res = await raw('/v1/users/me', { headers: { 'x-request-id': bad } });
      expect(res.headers.get('x-request-id')).not.toBe(bad);
      expect(res.headers.get('x-request-id')).toMatch(/^[A-Za-z0-9._-]{1,128}$/);
    }
    // Each request without one gets its own.
    const a = (await kit.call('/healthz')).headers.get('x-request-id');
    const b = (await kit.call('/healthz')).headers.get('x-request-id');
    expect(a).not.toBe(b);
  });
});
