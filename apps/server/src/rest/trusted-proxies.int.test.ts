import { describe, expect, it } from 'vitest';
import { email, eventsOf, expectError, type Kit, signedIn, unknownToken, useRestKit } from '../../test/rest-kit.ts';
import { TEST_PASSWORD } from '../testing.ts';

/**
 * KEYLEDGER_TRUSTED_PROXIES through the app (DESIGN §5): behind a trusted proxy the client IP is the rightmost
 * X-Forwarded-For address that is not a proxy, and that address is what KEYLEDGER_ALLOWED_IPS judges and what
 * events record. From any other peer X-Forwarded-For changes nothing.
 */

const PROXY = '10.0.0.1';
const xff = (value: string) => ({ 'x-forwarded-for': value });

describe('KEYLEDGER_ALLOWED_IPS judges the resolved client IP', () => {
  const kit = useRestKit({
    KEYLEDGER_TRUSTED_PROXIES: '10.0.0.0/8,2001:db8:ff::/48',
    KEYLEDGER_ALLOWED_IPS: '198.51.100.0/24',
  });
  const me = (token: string, ip: string, forwarded?: string) =>
    kit.call('/v1/users/me', { token, ip, headers: forwarded === undefined ? {} : xff(forwarded) });

  it('lets in an allowed client behind a trusted proxy, though the proxy itself is not allowed', async () => {
    const u = await signedIn(kit);
    expect((await me(u.token, PROXY, '198.51.100.7')).status).toBe(200);
    expect((await me(u.token, '::ffff:10.0.0.1', '198.51.100.7')).status).toBe(200);
    expect((await me(u.token, '2001:db8:ff::1', '198.51.100.7')).status).toBe(200);
    // Several proxies in a row: the ones on the right are skipped.
    expect((await me(u.token, PROXY, '198.51.100.7, 10.0.0.3, 10.0.0.2')).status).toBe(200);
    // The proxy with no forwarded address is the client itself, and it is not allowed.
    expectError(await me(u.token, PROXY), 403, 'ip_not_allowed');
    // tRPC and the /auth pages judge the same address.
    expect((await kit.call('/trpc/auth.me', { token: u.token, ip: PROXY, headers: xff('198.51.100.7') })).status).toBe(
      200,
    );
    expect((await kit.call('/trpc/auth.me', { token: u.token, ip: PROXY, headers: xff('203.0.113.9') })).status).toBe(
      403,
    );
  });

  it('refuses a client outside the list behind a trusted proxy, even one that claims an allowed address', async () => {
    const u = await signedIn(kit);
    const ipDenials = async () =>
      (await eventsOf(kit, 'access.denied')).filter((e) => e.data.reason === 'ip_not_allowed');
    const before = (await ipDenials()).length;
    expectError(await me(u.token, PROXY, '203.0.113.9'), 403, 'ip_not_allowed');
    // The client wrote "198.51.100.7" itself; the proxy appended the address it really came from.
    expectError(await me(u.token, PROXY, '198.51.100.7, 203.0.113.9'), 403, 'ip_not_allowed');
    expectError(await me(u.token, PROXY, '198.51.100.7, 203.0.113.9, 10.0.0.2'), 403, 'ip_not_allowed');
    const anon = await kit.call('/v1/auth/pw/signin', {
      method: 'POST',
      body: { email: u.email, password: TEST_PASSWORD },
      ip: PROXY,
      headers: xff('203.0.113.9'),
    });
    expectError(anon, 403, 'ip_not_allowed');
    // The refusals are logged (rolled up) with the client's address, not the proxy's.
    const logged = (await ipDenials()).slice(before);
    expect(logged.length).toBeGreaterThan(0);
    expect(new Set(logged.map((e) => e.meta.ip))).toEqual(new Set(['203.0.113.9']));
    expect(logged.reduce((n, e) => n + (e.data.count as number), 0)).toBe(4);
  });

  it('ignores X-Forwarded-For from a peer that is not a trusted proxy', async () => {
    const u = await signedIn(kit);
    // An outside peer cannot talk its way in...
    expectError(await me(u.token, '203.0.113.9', '198.51.100.7'), 403, 'ip_not_allowed');
    expectError(await me(u.token, '203.0.113.9', '10.0.0.2, 198.51.100.7'), 403, 'ip_not_allowed');
    // ...and an allowed peer is not locked out by what it claims.
    expect((await me(u.token, '198.51.100.8', '203.0.113.9')).status).toBe(200);
    expect((await me(u.token, '198.51.100.8')).status).toBe(200);
  });
});

describe('events record the resolved client IP', () => {
  const kit = useRestKit({ KEYLEDGER_TRUSTED_PROXIES: '10.0.0.0/8' });

  async function signIn(k: Kit, address: string, password: string, init: { ip: string; forwarded?: string }) {
    return k.call('/v1/auth/pw/signin', {
      method: 'POST',
      body: { email: address, password },
      ip: init.ip,
      headers: init.forwarded === undefined ? {} : xff(init.forwarded),
    });
  }

  it('a sign-in behind a proxy: session.created, the session list and signin.failed carry the client IP', async () => {
    const u = await signedIn(kit);
    const ok = await signIn(kit, u.email, TEST_PASSWORD, { ip: PROXY, forwarded: '6.6.6.6, 198.51.100.23, 10.0.0.5' });
    expect(ok.status, ok.text).toBe(200);
    const created = (await eventsOf(kit, 'session.created')).at(-1);
    expect(created?.meta).toMatchObject({ ip: '198.51.100.23', via: 'rest' });

    const sessions = await kit.call('/v1/sessions', {
      token: ok.body.access_token,
      ip: PROXY,
      headers: xff('198.51.100.23'),
    });
    const current = sessions.body.data.find((s: { current: boolean }) => s.current);
    expect(current.ip).toBe('198.51.100.23');

    const bad = await signIn(kit, u.email, 'not-the-password-1', { ip: PROXY, forwarded: '198.51.100.24' });
    expectError(bad, 401);
    const failed = (await eventsOf(kit, 'signin.failed')).at(-1);
    expect(failed?.data).toMatchObject({ reason: 'bad_password' });
    expect(failed?.meta.ip).toBe('198.51.100.24');
  });

  it('a refused credential behind a proxy: auth.rejected carries the client IP', async () => {
    expectError(
      await kit.call('/v1/users/me', { token: unknownToken('key'), ip: PROXY, headers: xff('198.51.100.31') }),
      401,
    );
    const rejected = (await eventsOf(kit, 'auth.rejected')).at(-1);
    expect(rejected?.data).toMatchObject({ credential: 'api_key', reason: 'unknown' });
    expect(rejected?.meta.ip).toBe('198.51.100.31');
  });

  it('from a peer that is not a trusted proxy, events carry the peer whatever X-Forwarded-For says', async () => {
    const u = await signedIn(kit);
    const ok = await signIn(kit, u.email, TEST_PASSWORD, { ip: '203.0.113.40', forwarded: '198.51.100.40' });
    expect(ok.status, ok.text).toBe(200);
    expect((await eventsOf(kit, 'session.created')).at(-1)?.meta.ip).toBe('203.0.113.40');
    const bad = await signIn(kit, email('nobody'), 'not-the-password-2', { ip: '203.0.113.41', forwarded: '10.0.0.9' });
    expectError(bad, 401);
    expect((await eventsOf(kit, 'signin.failed')).at(-1)?.meta.ip).toBe('203.0.113.41');
    expectError(
      await kit.call('/v1/users/me', {
        token: unknownToken('session'),
        ip: '203.0.113.42',
        headers: xff('198.51.100.42'),
      }),
      401,
    );
    expect((await eventsOf(kit, 'auth.rejected')).at(-1)?.meta.ip).toBe('203.0.113.42');
  });
});

describe('without KEYLEDGER_TRUSTED_PROXIES', () => {
  const kit = useRestKit({ KEYLEDGER_ALLOWED_IPS: '198.51.100.0/24' });

  it('X-Forwarded-For changes nothing, even from a private or loopback peer', async () => {
    const u = await signedIn(kit);
    for (const peer of [PROXY, '127.0.0.1', '203.0.113.9']) {
      const res = await kit.call('/v1/users/me', { token: u.token, ip: peer, headers: xff('198.51.100.7') });
      expectError(res, 403, 'ip_not_allowed');
    }
    expect(
      (await kit.call('/v1/users/me', { token: u.token, ip: '198.51.100.7', headers: xff('203.0.113.9') })).status,
    ).toBe(200);
    const denied = (await eventsOf(kit, 'access.denied')).filter((e) => e.data.reason === 'ip_not_allowed');
    expect(new Set(denied.map((e) => e.meta.ip))).toEqual(new Set([PROXY, '127.0.0.1', '203.0.113.9']));
  });
});
