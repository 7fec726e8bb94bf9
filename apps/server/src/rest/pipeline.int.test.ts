import { describe, expect, it } from 'vitest';
import { eventsOf, expectError, keyFor, signedIn, unknownToken, useRestKit } from '../../test/rest-kit.ts';

/** The request hygiene every REST route shares (DESIGN §5): the pipeline in front of the handlers. */

describe('request hygiene', () => {
  const kit = useRestKit();

  it('refuses a credential in the query string with 400, before looking at it', async () => {
    const u = await signedIn(kit);
    for (const name of ['access_token', 'token', 'api_key', 'key']) {
      const q = `?${name}=${encodeURIComponent(u.token)}`;
      expectError(await kit.call(`/v1/users/me${q}`), 400, 'credential_in_query');
      expectError(await kit.call(`/v1/users/me${q}`, { token: u.token }), 400, 'credential_in_query');
      expectError(await kit.call(`/v1/api-keys${q}`, { token: u.token }), 400, 'credential_in_query');
    }
  });

  it('refuses two Authorization headers, and Authorization with a different x-api-key, with 400', async () => {
    const u = await signedIn(kit);
    const headers = new Headers();
    headers.append('authorization', `Bearer ${u.token}`);
    headers.append('authorization', `Bearer ${u.token}`);
    expectError(await kit.call('/v1/users/me', { headers }), 400, 'duplicate_authorization');
    const key = await keyFor(kit, u.token);
    expectError(await kit.call('/v1/users/me', { token: u.token, apiKey: key.key }), 400, 'ambiguous_credentials');
  });

  it('accepts a key in x-api-key as well as in Authorization', async () => {
    const u = await signedIn(kit);
    const key = await keyFor(kit, u.token, { scopes: ['profile:read'] });
    const res = await kit.call('/v1/users/me', { apiKey: key.key });
    expect(res.status).toBe(200);
    expect(res.body.auth).toEqual({ method: 'api_key', scopes: ['profile:read'], key_id: key.id });
  });

  it('answers a body over 64 KiB with 413, and one of exactly 64 KiB is read', async () => {
    const u = await signedIn(kit);
    const sized = (n: number) => `{"name":"${'x'.repeat(n - 11)}"}`;
    expect(sized(65_536)).toHaveLength(65_536);
    const json = { 'content-type': 'application/json' };
    const over = await kit.call('/v1/api-keys', {
      method: 'POST',
      token: u.token,
      rawBody: sized(65_537),
      headers: json,
    });
    expectError(over, 413, 'payload_too_large');
    const at = await kit.call('/v1/api-keys', {
      method: 'POST',
      token: u.token,
      rawBody: sized(65_536),
      headers: json,
    });
    expectError(at, 400, 'invalid_request');
    expect(at.body.error).toContain('name');
    // Without a credential, too: the size is checked before anything else.
    expectError(await kit.call('/v1/auth/pw/signin', { method: 'POST', rawBody: sized(70_000), headers: json }), 413);
  });

  it('stops reading a chunked body (no Content-Length) once it passes 64 KiB: 413, the rest never pulled', async () => {
    const u = await signedIn(kit);
    let pulled = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled += 16_384;
        controller.enqueue(new Uint8Array(16_384).fill(0x20));
      },
    });
    const res = await kit.app.request('/v1/api-keys', {
      method: 'POST',
      headers: { authorization: `Bearer ${u.token}`, 'content-type': 'application/json' },
      body: endless,
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ code: 'payload_too_large' });
    expect(pulled).toBeLessThan(1024 * 1024);
  });

  it('answers a body that is not application/json with 415', async () => {
    const u = await signedIn(kit);
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const res = await kit.call('/v1/api-keys', {
        method: 'POST',
        token: u.token,
        rawBody: '{"name":"n"}',
        headers: { 'content-type': type },
      });
      expectError(res, 415, 'unsupported_media_type');
    }
    const res = await kit.call('/v1/api-keys', { method: 'POST', token: u.token, rawBody: '{"name":"n"}' });
    expectError(res, 415, 'unsupported_media_type');
    const withCharset = await kit.call('/v1/api-keys', {
      method: 'POST',
      token: u.token,
      rawBody: '{"name":"n"}',
      headers: { 'content-type': 'application/json; charset=utf-8' },
    });
    expect(withCharset.status, withCharset.text).toBe(201);
  });

  it('accepts an empty body with no content type on routes without a required body', async () => {
    const u = await signedIn(kit);
    const key = await keyFor(kit, u.token);
    const rotated = await kit.call(`/v1/api-keys/${key.id}/rotate`, { method: 'POST', token: u.token });
    expect(rotated.status, rotated.text).toBe(201);
    const refreshed = await kit.call('/v1/auth/uat', { method: 'POST', token: u.token });
    expect(refreshed.status, refreshed.text).toBe(200);
  });

  it('answers malformed JSON with a 400 envelope, never a 500', async () => {
    const u = await signedIn(kit);
    for (const rawBody of ['{"name":', 'not json', '{"name":"a"}}', '\u0000']) {
      const res = await kit.call('/v1/api-keys', {
        method: 'POST',
        token: u.token,
        rawBody,
        headers: { 'content-type': 'application/json' },
      });
      expectError(res, 400);
    }
    const signin = await kit.call('/v1/auth/pw/signin', {
      method: 'POST',
      rawBody: '[1,2',
      headers: { 'content-type': 'application/json' },
    });
    expectError(signin, 400);
  });

  it('answers unknown paths with 404 and a known path with a method it lacks with 405', async () => {
    const u = await signedIn(kit);
    expectError(await kit.call('/v1/nothing-here', { token: u.token }), 404, 'not_found');
    expectError(await kit.call('/api/nothing-here'), 404, 'not_found');
    expectError(await kit.call('/v1/users/me', { method: 'PUT', token: u.token, body: {} }), 405);
    expectError(await kit.call('/v1/auth/pw/signin'), 405);
  });

  it('keeps a well-formed incoming request id and puts it in the error body', async () => {
    const res = await kit.call('/v1/users/me', { headers: { 'x-request-id': 'trace.ABC-123_x' } });
    expectError(res, 401);
    expect(res.headers.get('x-request-id')).toBe('trace.ABC-123_x');
    expect(res.body.request_id).toBe('trace.ABC-123_x');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('logs a refused credential as auth.rejected with the reason, never the credential', async () => {
    const before = (await eventsOf(kit, 'auth.rejected')).length;
    expectError(await kit.call('/v1/users/me', { token: unknownToken('key'), ip: '198.51.100.7' }), 401);
    const events = await eventsOf(kit, 'auth.rejected');
    expect(events.length).toBe(before + 1);
    expect(events.at(-1)?.data).toMatchObject({ credential: 'api_key', reason: 'unknown', count: 1 });
    expect(events.at(-1)?.meta).toMatchObject({ ip: '198.51.100.7', via: 'rest' });
  });
});

describe('cookie sessions: Origin check on mutations', () => {
  const kit = useRestKit();

  it('refuses a cookie-authenticated mutation without our Origin (403 csrf_rejected); Bearer needs none', async () => {
    const u = await signedIn(kit);
    const origin = kit.deps.config.publicUrl.origin;
    const create = (init: { cookie?: string; token?: string; headers?: Record<string, string> }) =>
      kit.call('/v1/api-keys', { method: 'POST', body: { name: 'csrf' }, ...init });
    expectError(await create({ cookie: u.token }), 403, 'csrf_rejected');
    expectError(await create({ cookie: u.token, headers: { origin: 'https://evil.example' } }), 403, 'csrf_rejected');
    expectError(await create({ cookie: u.token, headers: { origin: 'null' } }), 403, 'csrf_rejected');
    expect((await create({ cookie: u.token, headers: { origin } })).status).toBe(201);
    expect((await create({ token: u.token })).status).toBe(201);
    // A read with the cookie needs no Origin.
    expect((await kit.call('/v1/users/me', { cookie: u.token })).status).toBe(200);
    const denied = await eventsOf(kit, 'access.denied');
    expect(denied.some((e) => e.data.reason === 'csrf' && e.data.principal === u.userId)).toBe(true);
  });

  it('a cross-site sign-out or session revoke through the cookie changes nothing', async () => {
    const u = await signedIn(kit);
    expectError(await kit.call('/v1/auth/signout', { method: 'POST', cookie: u.token }), 403, 'csrf_rejected');
    expectError(
      await kit.call(`/v1/sessions/${u.sessionId}`, { method: 'DELETE', cookie: u.token }),
      403,
      'csrf_rejected',
    );
    expect((await kit.call('/v1/users/me', { token: u.token })).status).toBe(200);
    const origin = kit.deps.config.publicUrl.origin;
    const out = await kit.call('/v1/auth/signout', { method: 'POST', cookie: u.token, headers: { origin } });
    expect(out.status).toBe(204);
    expectError(await kit.call('/v1/users/me', { token: u.token }), 401);
  });
});

describe('KEYLEDGER_ALLOWED_IPS', () => {
  const kit = useRestKit({ KEYLEDGER_ALLOWED_IPS: '10.0.0.0/8' });

  it('refuses /v1 from other addresses with 403, but health checks and the document still answer', async () => {
    const u = await signedIn(kit);
    for (const ip of ['192.0.2.1', '127.0.0.1', '::1']) {
      const res = await kit.call('/v1/users/me', { token: u.token, ip });
      expectError(res, 403, 'ip_not_allowed');
      expect(res.body.error).toBe('Access denied from this IP address');
      const anon = await kit.call('/v1/auth/pw/signin', {
        method: 'POST',
        body: { email: u.email, password: 'x' },
        ip,
      });
      expectError(anon, 403, 'ip_not_allowed');
      const trpc = await kit.call('/trpc/users.me', { token: u.token, ip });
      expect(trpc.status).toBe(403);
      expect((trpc.body as { error: { data: { keyledgerCode: string } } }).error.data.keyledgerCode).toBe(
        'ip_not_allowed',
      );
      // The server-rendered pages under /auth and the setup page are behind the same gate.
      for (const page of ['/auth/magic?email=a%40example.com&code=x', '/setup?token=x'])
        expect((await kit.call(page, { ip })).status, page).toBe(403);
      for (const open of ['/healthz', '/readyz', '/api/openapi'])
        expect((await kit.call(open, { ip })).status, open).toBe(200);
    }
    // From inside the range the pages answer as usual.
    expect(
      (await kit.call(`/auth/magic?email=a%40example.com&code=${'a'.repeat(32)}`, { ip: '10.1.2.3' })).status,
    ).toBe(200);
  });

  it('lets the allowed range in, IPv4-mapped IPv6 read as IPv4', async () => {
    const u = await signedIn(kit);
    for (const ip of ['10.1.2.3', '::ffff:10.9.8.7'])
      expect((await kit.call('/v1/users/me', { token: u.token, ip })).status, ip).toBe(200);
  });
});

describe('KEYLEDGER_API_RATE_LIMIT', () => {
  const kit = useRestKit({ KEYLEDGER_API_RATE_LIMIT: '3' });

  it('counts per credential with RateLimit headers, and the 4th request is 429 with Retry-After', async () => {
    const a = await keyFor(kit, (await signedIn(kit)).token);
    const b = await signedIn(kit);
    for (const remaining of ['2', '1', '0']) {
      const res = await kit.call('/v1/users/me', { token: a.key });
      expect(res.status).toBe(200);
      expect(res.headers.get('ratelimit-limit')).toBe('3');
      expect(res.headers.get('ratelimit-remaining')).toBe(remaining);
      expect(Number(res.headers.get('ratelimit-reset'))).toBeGreaterThan(0);
    }
    const limited = await kit.call('/v1/users/me', { token: a.key });
    expectError(limited, 429, 'rate_limited');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited.headers.get('ratelimit-remaining')).toBe('0');
    // Another credential has its own budget, even from the same address.
    expect((await kit.call('/v1/users/me', { token: b.token })).status).toBe(200);
    // The window is an hour: after it the same key is served again.
    kit.deps.clock.advance(3600_000);
    const again = await kit.call('/v1/users/me', { token: a.key });
    expect(again.status).toBe(200);
    expect(again.headers.get('ratelimit-remaining')).toBe('2');
  });

  it('counts unauthenticated requests per client IP', async () => {
    const signin = (ip: string) =>
      kit.call('/v1/auth/pw/signin', { method: 'POST', body: { email: 'x@example.test', password: 'y' }, ip });
    for (let i = 0; i < 3; i++) expect((await signin('203.0.113.5')).status).toBe(401);
    const limited = await signin('203.0.113.5');
    expectError(limited, 429, 'rate_limited');
    expect(limited.headers.get('retry-after')).toMatch(/^\d+$/);
    expect((await signin('203.0.113.6')).status).toBe(401);
  });
});
