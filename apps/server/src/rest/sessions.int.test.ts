import { describe, expect, it } from 'vitest';
import { eventsOf, expectError, type Kit, keyFor, signedIn, type TestUser, useRestKit } from '../../test/rest-kit.ts';
import { TEST_PASSWORD } from '../testing.ts';

/** /v1/sessions: the caller's devices, revoke one, revoke all others (DESIGN §5). */

const kit = useRestKit();
const me = (token: string) => kit.call('/v1/users/me', { token });
const list = (token: string) => kit.call('/v1/sessions', { token });

/** Signs the user in again over REST from a given address and user agent; returns the token. */
async function signInFrom(k: Kit, u: TestUser, ip: string, agent: string): Promise<string> {
  const res = await k.call('/v1/auth/pw/signin', {
    method: 'POST',
    body: { email: u.email, password: TEST_PASSWORD },
    ip,
    headers: { 'user-agent': agent },
  });
  expect(res.status, res.text).toBe(200);
  return res.body.access_token;
}

async function sessionIdOf(token: string): Promise<string> {
  const r = await kit.deps.authenticator.authenticate(token, { ip: '127.0.0.1' });
  if (!r.ok || r.principal.kind !== 'user' || r.principal.auth !== 'session') throw new Error('not a session');
  return r.principal.sessionId;
}

describe('list', () => {
  it('lists the caller’s live sessions newest first, the current one marked, with where they were used', async () => {
    const u = await signedIn(kit);
    kit.deps.clock.advance(1000);
    const b = await signInFrom(kit, u, '198.51.100.20', 'Laptop/1.0');
    kit.deps.clock.advance(1000);
    const c = await signInFrom(kit, u, '198.51.100.21', 'Phone/2.0');
    const someoneElse = await signedIn(kit);
    const [bId, cId] = [await sessionIdOf(b), await sessionIdOf(c)];

    const res = await list(b);
    expect(res.status).toBe(200);
    expect(res.body.next_cursor).toBeNull();
    expect(res.body.data.map((s: { id: string }) => s.id)).toEqual([cId, bId, u.sessionId]);
    expect(res.body.data.map((s: { current: boolean }) => s.current)).toEqual([false, true, false]);
    expect(res.text).not.toContain(someoneElse.sessionId);
    const [cRow] = res.body.data;
    expect(Object.keys(cRow).sort()).toEqual(
      ['created_at', 'current', 'expires_at', 'id', 'ip', 'last_seen_at', 'method', 'user_agent'].sort(),
    );
    expect(cRow).toMatchObject({ method: 'password', ip: '198.51.100.21', user_agent: 'Phone/2.0' });
    expect(cRow.expires_at).toBe(new Date(Date.parse(cRow.created_at) + 3600_000).toISOString());
    for (const secret of [b, c, u.token]) expect(res.text).not.toContain(secret);

    // Last seen (IP and user agent) is batched, not written per request.
    await kit.call('/v1/users/me', { token: c, ip: '203.0.113.9', headers: { 'user-agent': 'Phone/2.1' } });
    await kit.deps.authenticator.flushActivity();
    const seen = async () => (await list(b)).body.data.find((s: { id: string }) => s.id === cId);
    const after = await seen();
    expect(after).toMatchObject({ ip: '203.0.113.9', user_agent: 'Phone/2.1' });
    expect(after.last_seen_at).toBe(kit.deps.clock.now().toISOString());
    // Within one batch the latest request wins: the same client again moves only the time, another client replaces
    // the IP and user agent.
    const fromPhone = () =>
      kit.call('/v1/users/me', { token: c, ip: '203.0.113.9', headers: { 'user-agent': 'Phone/2.1' } });
    kit.deps.clock.advance(1000);
    await fromPhone();
    kit.deps.clock.advance(1000);
    await fromPhone();
    await kit.deps.authenticator.flushActivity();
    expect(await seen()).toMatchObject({
      ip: '203.0.113.9',
      user_agent: 'Phone/2.1',
      last_seen_at: kit.deps.clock.now().toISOString(),
    });
    kit.deps.clock.advance(1000);
    await fromPhone();
    kit.deps.clock.advance(1000);
    await kit.call('/v1/users/me', { token: c, ip: '198.51.100.77', headers: { 'user-agent': 'Tablet/1.0' } });
    await kit.deps.authenticator.flushActivity();
    expect(await seen()).toMatchObject({
      ip: '198.51.100.77',
      user_agent: 'Tablet/1.0',
      last_seen_at: kit.deps.clock.now().toISOString(),
    });
  });

  it('through an API key lists the owner’s sessions with none current', async () => {
    const u = await signedIn(kit);
    const key = await keyFor(kit, u.token, { scopes: ['sessions:read'] });
    const res = await list(key.key);
    expect(res.status).toBe(200);
    expect(res.body.data).toHaveLength(1);
    expect(res.body.data[0]).toMatchObject({ id: u.sessionId, current: false });
  });
});

describe('revoke one', () => {
  it('DELETE /v1/sessions/{id}: 204, that session is dead at once, the others live on', async () => {
    const u = await signedIn(kit);
    const b = await signInFrom(kit, u, '198.51.100.30', 'B/1');
    const bId = await sessionIdOf(b);
    expect((await me(b)).status).toBe(200);
    const res = await kit.call(`/v1/sessions/${bId}`, { method: 'DELETE', token: u.token });
    expect(res.status).toBe(204);
    expectError(await me(b), 401);
    expect((await me(u.token)).status).toBe(200);
    expect((await list(u.token)).body.data.map((s: { id: string }) => s.id)).toEqual([u.sessionId]);
    expect((await eventsOf(kit, 'session.revoked')).at(-1)?.data).toEqual({ session_id: bId, reason: 'user' });
    expectError(await kit.call(`/v1/sessions/${bId}`, { method: 'DELETE', token: u.token }), 404, 'not_found');
  });

  it('revoking the current session is a sign-out', async () => {
    const u = await signedIn(kit);
    expect((await kit.call(`/v1/sessions/${u.sessionId}`, { method: 'DELETE', token: u.token })).status).toBe(204);
    expectError(await me(u.token), 401);
    expect((await eventsOf(kit, 'session.revoked')).at(-1)?.data).toEqual({
      session_id: u.sessionId,
      reason: 'signout',
    });
  });
});

describe('revoke all others', () => {
  it('DELETE /v1/sessions: 204, every other session is dead, the current one lives', async () => {
    const u = await signedIn(kit);
    const others = [await signInFrom(kit, u, '198.51.100.40', 'X/1'), await signInFrom(kit, u, '::1', 'Y/1')];
    const bystander = await signedIn(kit);
    for (const t of others) expect((await me(t)).status).toBe(200);
    const res = await kit.call('/v1/sessions', { method: 'DELETE', token: u.token });
    expect(res.status).toBe(204);
    for (const t of others) expectError(await me(t), 401);
    expect((await me(u.token)).status).toBe(200);
    expect((await me(bystander.token)).status).toBe(200);
    expect((await list(u.token)).body.data.map((s: { id: string }) => s.id)).toEqual([u.sessionId]);
    const reasons = (await eventsOf(kit, 'session.revoked')).slice(-2).map((e) => e.data.reason);
    expect(reasons).toEqual(['user', 'user']);
    // Nothing left to revoke is still a 204.
    expect((await kit.call('/v1/sessions', { method: 'DELETE', token: u.token })).status).toBe(204);
  });

  it('through an API key revokes every session of its owner', async () => {
    const u = await signedIn(kit);
    const key = await keyFor(kit, u.token, { scopes: ['sessions:write'] });
    expect((await kit.call('/v1/sessions', { method: 'DELETE', token: key.key })).status).toBe(204);
    expectError(await me(u.token), 401);
  });
});

describe('expiry', () => {
  it('an API session expires after 1 h: 401, and it is no longer listed', async () => {
    const u = await signedIn(kit);
    kit.deps.clock.advance(1800_000);
    const later = await signInFrom(kit, u, '198.51.100.50', 'Z/1');
    expect((await me(u.token)).status).toBe(200);
    kit.deps.clock.advance(1800_000);
    expectError(await me(u.token), 401);
    expect((await list(later)).body.data.map((s: { current: boolean }) => s.current)).toEqual([true]);
  });

  it('an API token stays a 1 h token when it is presented as a cookie (no sliding renewal)', async () => {
    const u = await signedIn(kit);
    kit.deps.clock.advance(60_000);
    const viaCookie = await kit.call('/v1/users/me', { cookie: u.token });
    expect(viaCookie.status).toBe(200);
    expect(viaCookie.headers.get('set-cookie')).toBeNull();
    expect((await eventsOf(kit, 'session.extended')).filter((e) => e.data.session_id === u.sessionId)).toEqual([]);
    kit.deps.clock.advance(3600_000);
    expectError(await me(u.token), 401);
  });
});
