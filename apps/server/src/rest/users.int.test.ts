import { createHash } from 'node:crypto';
import { SCOPES } from '@keyledger/core';
import { describe, expect, it } from 'vitest';
import { email, eventsOf, expectError, keyFor, STRONG_PASSWORD, signedIn, useRestKit } from '../../test/rest-kit.ts';
import { TEST_PASSWORD } from '../testing.ts';

/** /v1/users: who am I (sessions, keys, environment keys) and the admin routes (DESIGN §5, §7). */

const ADMIN_ENV_KEY = 'env-admin-7f3a9c1e5b2d4f6a8c0e1b3d5f7a9c2e';
const READ_ENV_KEYS = ['env-reader-one-5d1c8e2a4b6f0a9c3e7d1b5f9a2c', 'env-reader-two-8b3e1f7c5a9d2e4b6c0f8a1d3e5b'];
const MEMBER_SCOPES = SCOPES.filter((s) => !s.startsWith('users:'));
const kit = useRestKit({ KEYLEDGER_ADMIN_API_KEY: ADMIN_ENV_KEY, KEYLEDGER_API_KEYS: READ_ENV_KEYS.join(',') });
const me = (token: string) => kit.call('/v1/users/me', { token });
const signin = (address: string, password: string) =>
  kit.call('/v1/auth/pw/signin', { method: 'POST', body: { email: address, password } });

describe('GET /v1/users/me', () => {
  it('a session: the user and the role’s full rights', async () => {
    const u = await signedIn(kit);
    const res = await me(u.token);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      id: u.userId,
      email: u.email,
      name: null,
      role: 'member',
      created_at: kit.deps.clock.now().toISOString(),
      auth: { method: 'session', scopes: MEMBER_SCOPES },
    });
    const admin = await signedIn(kit, 'admin');
    expect((await me(admin.token)).body.auth.scopes).toEqual([...SCOPES]);
  });

  it('an API key: the owner, the key’s scopes and its id', async () => {
    const u = await signedIn(kit);
    const key = await keyFor(kit, u.token, { scopes: ['profile:read', 'audit:read'] });
    const res = await kit.call('/v1/users/me', { apiKey: key.key });
    expect(res.body).toMatchObject({ id: u.userId, email: u.email });
    expect(res.body.auth).toEqual({ method: 'api_key', scopes: ['profile:read', 'audit:read'], key_id: key.id });
  });

  it('KEYLEDGER_ADMIN_API_KEY: principal env:admin, no email, every scope', async () => {
    for (const res of [await me(ADMIN_ENV_KEY), await kit.call('/v1/users/me', { apiKey: ADMIN_ENV_KEY })]) {
      expect(res.status, res.text).toBe(200);
      expect(res.body).toEqual({
        id: 'env:admin',
        email: null,
        name: null,
        role: 'admin',
        created_at: null,
        auth: { method: 'env_key', scopes: [...SCOPES] },
      });
    }
    expect((await kit.call('/v1/users', { token: ADMIN_ENV_KEY })).status).toBe(200);
    const made = await kit.call('/v1/users', { method: 'POST', token: ADMIN_ENV_KEY, body: { email: email('env') } });
    expect(made.status, made.text).toBe(201);
    expect((await eventsOf(kit, 'user.registered')).at(-1)?.meta.actor).toEqual({ type: 'env_key', id: 'env:admin' });
    // An environment key owns nothing: it cannot make API keys.
    expectError(await kit.call('/v1/api-keys', { method: 'POST', token: ADMIN_ENV_KEY, body: {} }), 403);
  });

  it('KEYLEDGER_API_KEYS: principal env:<8 hex of its SHA-256> with the read scopes only', async () => {
    for (const key of READ_ENV_KEYS) {
      const id = `env:${createHash('sha256').update(key).digest('hex').slice(0, 8)}`;
      const res = await me(key);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ id, email: null, auth: { method: 'env_key' } });
      expect(res.body.auth.scopes).toEqual(SCOPES.filter((s) => s.endsWith(':read')));
      expect((await kit.call('/v1/users', { token: key })).status).toBe(200);
      const write = await kit.call('/v1/users', { method: 'POST', token: key, body: { email: email('no') } });
      expectError(write, 403, 'insufficient_scope');
      expect(write.body.error).toContain('users:write');
    }
    // Near misses are refused.
    expectError(await me(`${READ_ENV_KEYS[0]}x`), 401);
    expectError(await me(ADMIN_ENV_KEY.slice(0, 31)), 401);
  });
});

describe('GET /v1/users: search and pagination', () => {
  it('finds by email or name and pages with next_cursor in creation order', async () => {
    const admin = await signedIn(kit, 'admin');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const body = i === 4 ? { email: email('other'), name: 'Zebra Person' } : { email: email('zebra') };
      const res = await kit.call('/v1/users', { method: 'POST', token: admin.token, body });
      expect(res.status).toBe(201);
      ids.push(res.body.id);
      kit.deps.clock.advance(1000);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q = `/v1/users?query=ZEBRA&limit=2${cursor ? `&after=${cursor}` : ''}`;
      const page = await kit.call(q, { token: admin.token });
      expect(page.status, page.text).toBe(200);
      expect(page.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.data.map((u: { id: string }) => u.id));
      cursor = page.body.next_cursor;
      pages++;
    } while (cursor);
    expect(seen).toEqual(ids);
    expect(pages).toBe(3);
    const wild = await kit.call(`/v1/users?query=${encodeURIComponent('%')}`, { token: admin.token });
    expect(wild.body.data).toEqual([]);
    expectError(await kit.call('/v1/users?after=user_nope', { token: admin.token }), 400);
    expectError(await kit.call('/v1/users?limit=1001', { token: admin.token }), 400);
  });

  it('is for admins: a member is 403 naming users:read', async () => {
    const m = await signedIn(kit);
    const res = await kit.call('/v1/users', { token: m.token });
    expectError(res, 403, 'insufficient_scope');
    expect(res.body.error).toContain('users:read');
  });
});

describe('POST /v1/users', () => {
  it('creates a user (201) who can sign in with the given password', async () => {
    const admin = await signedIn(kit, 'admin');
    const address = email('made');
    const body = { email: address, name: 'Made Up', role: 'admin', password: STRONG_PASSWORD };
    const res = await kit.call('/v1/users', { method: 'POST', token: admin.token, body });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({ email: address, name: 'Made Up', role: 'admin', disabled: false });
    expect(Object.keys(res.body).sort()).toEqual(
      ['created_at', 'disabled', 'email', 'email_verified', 'id', 'name', 'role'].sort(),
    );
    expect((await signin(address, STRONG_PASSWORD)).status).toBe(200);
    const registered = (await eventsOf(kit, 'user.registered')).at(-1);
    expect(registered?.data).toMatchObject({ user_id: res.body.id, method: 'admin', role: 'admin' });
    expectError(await kit.call('/v1/users', { method: 'POST', token: admin.token, body }), 409, 'email_taken');
    const weak = { email: email(), password: 'password1' };
    expectError(
      await kit.call('/v1/users', { method: 'POST', token: admin.token, body: weak }),
      400,
      'password_common',
    );
    const role = await kit.call('/v1/users', {
      method: 'POST',
      token: admin.token,
      body: { email: email(), role: 'x' },
    });
    expectError(role, 400, 'invalid_request');
    expect(role.body.error).toContain('role');
  });

  it('honours Idempotency-Key: a replay is 200 with the same user, another body 409', async () => {
    const admin = await signedIn(kit, 'admin');
    const headers = { 'idempotency-key': 'user-1' };
    const body = { email: email('idem') };
    const first = await kit.call('/v1/users', { method: 'POST', token: admin.token, body, headers });
    expect(first.status).toBe(201);
    const again = await kit.call('/v1/users', { method: 'POST', token: admin.token, body, headers });
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(first.body);
    const other = { email: email('idem') };
    const clash = await kit.call('/v1/users', { method: 'POST', token: admin.token, body: other, headers });
    expectError(clash, 409, 'idempotency_key_reused');
  });
});

describe('GET and PATCH /v1/users/{id}', () => {
  it('gets one user, 404 for an unknown id', async () => {
    const admin = await signedIn(kit, 'admin');
    const m = await signedIn(kit);
    const res = await kit.call(`/v1/users/${m.userId}`, { token: admin.token });
    expect(res.body).toMatchObject({ id: m.userId, email: m.email, role: 'member', disabled: false });
    expectError(await kit.call('/v1/users/user_nobody', { token: admin.token }), 404, 'not_found');
    const patch = { method: 'PATCH', token: admin.token, body: { role: 'admin' } };
    expectError(await kit.call('/v1/users/user_nobody', patch), 404, 'not_found');
  });

  it('renames with PATCH {name} (user.renamed; GET /v1/users/me shows it at once); an empty name is 400', async () => {
    const admin = await signedIn(kit, 'admin');
    const m = await signedIn(kit);
    const rename = (name: unknown) =>
      kit.call(`/v1/users/${m.userId}`, { method: 'PATCH', token: admin.token, body: { name } });
    const res = await rename('Grace Hopper');
    expect(res.status).toBe(200);
    expect(res.body.name).toBe('Grace Hopper');
    expect((await me(m.token)).body.name).toBe('Grace Hopper');
    expect((await eventsOf(kit, 'user.renamed')).at(-1)?.data).toEqual({
      user_id: m.userId,
      from: null,
      to: 'Grace Hopper',
    });
    expectError(await rename(''), 400, 'invalid_request');
    expectError(await rename('x'.repeat(201)), 400, 'invalid_request');
    expect((await rename(null)).body.name).toBeNull();
  });

  it('a promoted member’s existing session gains the admin rights at once, and loses them on demotion', async () => {
    const admin = await signedIn(kit, 'admin');
    const m = await signedIn(kit);
    const patch = (role: string) =>
      kit.call(`/v1/users/${m.userId}`, { method: 'PATCH', token: admin.token, body: { role } });
    expectError(await kit.call('/v1/users', { token: m.token }), 403);
    const up = await patch('admin');
    expect(up.status).toBe(200);
    expect(up.body.role).toBe('admin');
    expect((await kit.call('/v1/users', { token: m.token })).status).toBe(200);
    expect((await me(m.token)).body.auth.scopes).toContain('users:write');
    expect((await eventsOf(kit, 'user.role_changed')).at(-1)?.data).toMatchObject({ from: 'member', to: 'admin' });
    expect((await patch('member')).status).toBe(200);
    expectError(await kit.call('/v1/users', { token: m.token }), 403, 'insufficient_scope');
    const noop = await kit.call(`/v1/users/${m.userId}`, { method: 'PATCH', token: admin.token, body: {} });
    expect(noop.body).toMatchObject({ id: m.userId, role: 'member' });
  });

  it('disabling refuses the user’s sessions and keys at once; enabling lets them sign in again', async () => {
    const admin = await signedIn(kit, 'admin');
    const d = await signedIn(kit);
    const key = await keyFor(kit, d.token);
    expect((await me(d.token)).status).toBe(200);
    expect((await me(key.key)).status).toBe(200);
    const patch = (disabled: boolean) =>
      kit.call(`/v1/users/${d.userId}`, { method: 'PATCH', token: admin.token, body: { disabled } });
    const off = await patch(true);
    expect(off.status, off.text).toBe(200);
    expect(off.body.disabled).toBe(true);
    expectError(await me(d.token), 401);
    expectError(await me(key.key), 401);
    expectError(await signin(d.email, TEST_PASSWORD), 401, 'invalid_credentials');
    const revokedKeys = (await eventsOf(kit, 'api_key.revoked')).filter((e) => e.data.key_id === key.id);
    expect(revokedKeys.map((e) => e.data.reason)).toEqual(['user_disabled']);
    const revokedSessions = (await eventsOf(kit, 'session.revoked')).filter((e) => e.data.session_id === d.sessionId);
    expect(revokedSessions.map((e) => e.data.reason)).toEqual(['user_disabled']);
    expect((await patch(false)).body.disabled).toBe(false);
    expect((await signin(d.email, TEST_PASSWORD)).status).toBe(200);
    expectError(await me(d.token), 401);
    expectError(await me(key.key), 401);
  });
});

describe('DELETE /v1/users/{id}/sessions', () => {
  it('revokes every session of that user (reason admin) and leaves their keys alone', async () => {
    const admin = await signedIn(kit, 'admin');
    const t = await signedIn(kit);
    const second = (await signin(t.email, TEST_PASSWORD)).body.access_token as string;
    const key = await keyFor(kit, t.token);
    for (const tok of [t.token, second, key.key]) expect((await me(tok)).status).toBe(200);
    const res = await kit.call(`/v1/users/${t.userId}/sessions`, { method: 'DELETE', token: admin.token });
    expect(res.status).toBe(204);
    expectError(await me(t.token), 401);
    expectError(await me(second), 401);
    expect((await me(key.key)).status).toBe(200);
    expect((await me(admin.token)).status).toBe(200);
    const reasons = (await eventsOf(kit, 'session.revoked')).slice(-2).map((e) => e.data.reason);
    expect(reasons).toEqual(['admin', 'admin']);
    const missing = await kit.call('/v1/users/user_nobody/sessions', { method: 'DELETE', token: admin.token });
    expectError(missing, 404, 'not_found');
  });
});
