import { hashToken } from '@keyledger/core';
import { describe, expect, it } from 'vitest';
import { eventsOf, expectError, type Kit, keyFor, signedIn, useRestKit } from '../../test/rest-kit.ts';

/** /v1/api-keys: create (shown once, idempotent), list, get, rotate with grace, revoke (DESIGN §4, §5). */

const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const MEMBER_SCOPES = ['profile:read', 'keys:read', 'keys:write', 'sessions:read', 'sessions:write', 'audit:read'];

const kit = useRestKit();
const create = (k: Kit, token: string, body: unknown = {}, headers?: Record<string, string>) =>
  k.call('/v1/api-keys', { method: 'POST', token, body, headers });
const me = (token: string, ip?: string) => kit.call('/v1/users/me', { token, ip });

describe('create', () => {
  it('answers 201 with the key shown once, scopes defaulting to the caller’s own', async () => {
    const u = await signedIn(kit);
    const res = await create(kit, u.token, { name: 'ci' });
    expect(res.status, res.text).toBe(201);
    expect(Object.keys(res.body).sort()).toEqual(
      ['created_at', 'expires_at', 'id', 'ip_allowlist', 'key', 'last_used_at', 'name', 'scopes', 'start'].sort(),
    );
    expect(res.body.key).toMatch(/^kl_key_[0-9A-Za-z]{36}$/);
    expect(res.body.start).toBe(res.body.key.slice(0, 12));
    expect(res.body).toMatchObject({ name: 'ci', expires_at: null, ip_allowlist: null, scopes: MEMBER_SCOPES });
    expect(res.body.created_at).toMatch(ISO_MS);
    const who = await me(res.body.key);
    expect(who.body.auth).toEqual({ method: 'api_key', scopes: MEMBER_SCOPES, key_id: res.body.id });
    const created = (await eventsOf(kit, 'api_key.created')).at(-1);
    expect(created?.data).toMatchObject({ key_id: res.body.id, token_hash: hashToken(res.body.key) });
    expect(created?.meta).toMatchObject({ via: 'rest', actor: { type: 'user', id: u.userId } });
    const traced = await create(kit, u.token, {}, { 'x-request-id': 'trace-create-1' });
    const event = (await eventsOf(kit, 'api_key.created')).at(-1);
    expect(event?.data.key_id).toBe(traced.body.id);
    expect(event?.meta.request_id).toBe('trace-create-1');
  });

  it('never shows the key or its hash again, in the list or one by one', async () => {
    const u = await signedIn(kit);
    const made = (await create(kit, u.token, { name: 'secret' })).body;
    const list = await kit.call('/v1/api-keys', { token: u.token });
    const one = await kit.call(`/v1/api-keys/${made.id}`, { token: u.token });
    expect(list.body.next_cursor).toBeNull();
    expect(list.body.data.map((k: { id: string }) => k.id)).toEqual([made.id]);
    expect(one.body).toEqual({ ...made, key: undefined });
    for (const text of [list.text, one.text]) {
      expect(text).not.toContain(made.key);
      expect(text).not.toContain(hashToken(made.key));
      expect(text).not.toMatch(/token_hash|"key"/);
    }
  });

  it('pages the list newest first with next_cursor', async () => {
    const u = await signedIn(kit);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await create(kit, u.token, { name: `k${i}` })).body.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await kit.call(`/v1/api-keys?limit=2${cursor ? `&after=${cursor}` : ''}`, { token: u.token });
      expect(page.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.data.map((k: { id: string }) => k.id));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());
    expectError(await kit.call('/v1/api-keys?limit=0', { token: u.token }), 400);
  });

  it('refuses scopes beyond the owner’s with 403 scope_exceeds_owner, a key’s scopes bounding its keys', async () => {
    const u = await signedIn(kit);
    const res = await create(kit, u.token, { scopes: ['keys:read', 'users:read'] });
    expectError(res, 403, 'scope_exceeds_owner');
    expect(res.body.error).toContain('users:read');
    const writer = await keyFor(kit, u.token, { scopes: ['keys:write', 'profile:read'] });
    expectError(await create(kit, writer.key, { scopes: ['sessions:write'] }), 403, 'scope_exceeds_owner');
    const child = await create(kit, writer.key, {});
    expect(child.status).toBe(201);
    expect(child.body.scopes).toEqual(['keys:write', 'profile:read']);
  });

  it('takes an expires_at in the future and refuses one in the past with 400', async () => {
    const u = await signedIn(kit);
    const now = kit.deps.clock.now().getTime();
    const past = await create(kit, u.token, { expires_at: new Date(now - 1000).toISOString() });
    expectError(past, 400);
    expect(past.body.error).toContain('expires_at');
    expectError(await create(kit, u.token, { expires_at: 'tomorrow' }), 400);
    // An offset is accepted and answered in UTC: local time +2 h at +02:00 is the same instant.
    const inOffset = (ms: number) => new Date(ms + 7200_000).toISOString().replace('Z', '+02:00');
    expectError(await create(kit, u.token, { expires_at: inOffset(now) }), 400);
    const ok = await create(kit, u.token, { expires_at: inOffset(now + 3600_000) });
    expect(ok.status, ok.text).toBe(201);
    expect(ok.body.expires_at).toBe(new Date(now + 3600_000).toISOString());
  });

  it('takes an ip_allowlist of IPv4 and IPv6 addresses and ranges, and enforces it', async () => {
    const u = await signedIn(kit);
    const allow = ['10.0.0.0/8', '192.0.2.7', '2001:db8::/32', '::1'];
    const res = await create(kit, u.token, { ip_allowlist: allow });
    expect(res.status, res.text).toBe(201);
    expect(res.body.ip_allowlist).toEqual(allow);
    for (const ip of ['10.20.30.40', '192.0.2.7', '2001:db8:1::5', '::1', '::ffff:10.0.0.1'])
      expect((await me(res.body.key, ip)).status, ip).toBe(200);
    for (const ip of ['192.0.2.8', '11.0.0.1', '2001:db9::1'])
      expectError(await me(res.body.key, ip), 403, 'ip_not_allowed');
    for (const bad of [['not-an-ip'], ['10.0.0.0/33'], ['2001:db8::/129'], ['10.0.0.1/8/1']]) {
      const refused = await create(kit, u.token, { ip_allowlist: bad });
      expectError(refused, 400);
      expect(refused.body.error).toContain('ip_allowlist');
    }
  });

  it('refuses unknown fields and unknown scopes with 400 naming the field', async () => {
    const u = await signedIn(kit);
    const scope = await create(kit, u.token, { scopes: ['keys:admin'] });
    expectError(scope, 400, 'invalid_request');
    expect(scope.body.error).toContain('scopes');
    expectError(await create(kit, u.token, { owner_id: 'user_x' }), 400, 'invalid_request');
  });
});

describe('Idempotency-Key', () => {
  it('replays the same request as 200 with Idempotent-Replayed and without the key', async () => {
    const u = await signedIn(kit);
    const headers = { 'idempotency-key': 'create-1' };
    const first = await create(kit, u.token, { name: 'idem' }, headers);
    expect(first.status).toBe(201);
    const replay = await create(kit, u.token, { name: 'idem' }, headers);
    expect(replay.status).toBe(200);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body.key).toBeUndefined();
    expect(replay.text).not.toContain(first.body.key);
    expect(replay.body).toEqual({ ...first.body, key: undefined });
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const created = (await eventsOf(kit, 'api_key.created')).filter((e) => e.data.owner_id === u.userId);
    expect(created).toHaveLength(1);
    // Another user's same Idempotency-Key is theirs alone.
    const v = await signedIn(kit);
    expect((await create(kit, v.token, { name: 'idem' }, headers)).status).toBe(201);
  });

  it('refuses the same key with another body with 409', async () => {
    const u = await signedIn(kit);
    const headers = { 'idempotency-key': 'create-2' };
    expect((await create(kit, u.token, { name: 'a' }, headers)).status).toBe(201);
    expectError(await create(kit, u.token, { name: 'b' }, headers), 409, 'idempotency_key_reused');
    expect((await create(kit, u.token, { name: 'b' }, { 'idempotency-key': 'create-3' })).status).toBe(201);
  });
});

describe('Idempotency-Key under concurrency', () => {
  it('five racing repeats create one key: one 201, the rest replays', async () => {
    const u = await signedIn(kit);
    const headers = { 'idempotency-key': 'race-1' };
    const answers = await Promise.all(Array.from({ length: 5 }, () => create(kit, u.token, { name: 'r' }, headers)));
    expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 200, 200, 201]);
    expect(new Set(answers.map((a) => a.body.id)).size).toBe(1);
    for (const a of answers.filter((x) => x.status === 200)) expect(a.body.key).toBeUndefined();
    const created = (await eventsOf(kit, 'api_key.created')).filter((e) => e.data.owner_id === u.userId);
    expect(created).toHaveLength(1);
  });
});

describe('rotate', () => {
  it('answers 201 with a new key; the old one works for grace_seconds, then not', async () => {
    const u = await signedIn(kit);
    const old = await keyFor(kit, u.token, { name: 'rot', scopes: ['profile:read', 'keys:read'] });
    expect((await me(old.key)).status).toBe(200);
    const res = await kit.call(`/v1/api-keys/${old.id}/rotate`, {
      method: 'POST',
      token: u.token,
      body: { grace_seconds: 30 },
    });
    expect(res.status, res.text).toBe(201);
    expect(res.body.key).toMatch(/^kl_key_/);
    expect(res.body.id).not.toBe(old.id);
    expect(res.body).toMatchObject({ name: 'rot', scopes: ['profile:read', 'keys:read'] });
    expect((await me(res.body.key)).status).toBe(200);
    kit.deps.clock.advance(29_000);
    expect((await me(old.key)).status).toBe(200);
    kit.deps.clock.advance(1_000);
    expectError(await me(old.key), 401);
    expect((await me(res.body.key)).status).toBe(200);
    const rotated = (await eventsOf(kit, 'api_key.rotated')).at(-1);
    expect(rotated?.data).toMatchObject({ key_id: old.id, new_key_id: res.body.id });
  });

  it('defaults to an hour of grace, allows 0 and refuses more than 30 days', async () => {
    const u = await signedIn(kit);
    const a = await keyFor(kit, u.token);
    const rotate = (id: string, body?: unknown) =>
      kit.call(`/v1/api-keys/${id}/rotate`, { method: 'POST', token: u.token, body });
    expectError(await rotate(a.id, { grace_seconds: 30 * 24 * 3600 + 1 }), 400);
    expectError(await rotate(a.id, { grace_seconds: -1 }), 400);
    expect((await rotate(a.id, {})).status).toBe(201);
    kit.deps.clock.advance(3599_000);
    expect((await me(a.key)).status).toBe(200);
    kit.deps.clock.advance(1_000);
    expectError(await me(a.key), 401);
    const v = await signedIn(kit);
    const c = await keyFor(kit, v.token);
    expect((await me(c.key)).status).toBe(200);
    const zero = await kit.call(`/v1/api-keys/${c.id}/rotate`, {
      method: 'POST',
      token: v.token,
      body: { grace_seconds: 0 },
    });
    expect(zero.status).toBe(201);
    expectError(await me(c.key), 401);
  });
});

describe('rotate an expiring key', () => {
  it('gives the successor the same expiry, and refuses an expired key with 409 key_expired', async () => {
    const u = await signedIn(kit);
    const expiresAt = new Date(kit.deps.clock.now().getTime() + 1800_000).toISOString();
    const created = await kit.call('/v1/api-keys', { method: 'POST', token: u.token, body: { expires_at: expiresAt } });
    expect(created.status).toBe(201);
    const rotate = (id: string) => kit.call(`/v1/api-keys/${id}/rotate`, { method: 'POST', token: u.token, body: {} });
    const rotations = async () => (await eventsOf(kit, 'api_key.rotated')).length;
    const before = await rotations();
    const next = await rotate(created.body.id);
    expect(next.status).toBe(201);
    expect(next.body.expires_at).toBe(expiresAt);
    kit.deps.clock.advance(1800_000);
    expectError(await rotate(next.body.id), 409, 'key_expired');
    expect(await rotations()).toBe(before + 1);
  });
});

describe('revoke', () => {
  it('answers 204, the key is refused at once, then 404 for it', async () => {
    const u = await signedIn(kit);
    const k = await keyFor(kit, u.token);
    expect((await me(k.key)).status).toBe(200);
    const del = await kit.call(`/v1/api-keys/${k.id}`, { method: 'DELETE', token: u.token });
    expect(del.status).toBe(204);
    expect(del.text).toBe('');
    expectError(await me(k.key), 401);
    expectError(await kit.call(`/v1/api-keys/${k.id}`, { token: u.token }), 404, 'not_found');
    expectError(await kit.call(`/v1/api-keys/${k.id}`, { method: 'DELETE', token: u.token }), 404, 'not_found');
    const list = await kit.call('/v1/api-keys', { token: u.token });
    expect(list.body.data.map((x: { id: string }) => x.id)).not.toContain(k.id);
  });

  it('a key may revoke itself', async () => {
    const u = await signedIn(kit);
    const k = await keyFor(kit, u.token);
    expect((await kit.call(`/v1/api-keys/${k.id}`, { method: 'DELETE', token: k.key })).status).toBe(204);
    expectError(await me(k.key), 401);
  });
});

describe('concurrency', () => {
  it('200 concurrent creations: every 201 key works afterwards', async () => {
    const u = await signedIn(kit);
    const answers = await Promise.all(
      Array.from({ length: 200 }, (_, i) => create(kit, u.token, { name: `c${i}`, scopes: ['profile:read'] })),
    );
    expect(answers.filter((a) => a.status !== 201).map((a) => a.text)).toEqual([]);
    const keys = answers.map((a) => a.body.key as string);
    expect(new Set(keys).size).toBe(200);
    for (const key of keys) expect((await me(key)).status).toBe(200);
    const created = (await eventsOf(kit, 'api_key.created')).filter((e) => e.data.owner_id === u.userId);
    expect(created).toHaveLength(200);
  });

  it('two concurrent revokes of one key: one 204, one 404, exactly one api_key.revoked', async () => {
    const u = await signedIn(kit);
    const k = await keyFor(kit, u.token);
    const del = () => kit.call(`/v1/api-keys/${k.id}`, { method: 'DELETE', token: u.token });
    const statuses = (await Promise.all([del(), del()])).map((r) => r.status).sort();
    expect(statuses).toEqual([204, 404]);
    const revoked = (await eventsOf(kit, 'api_key.revoked')).filter((e) => e.data.key_id === k.id);
    expect(revoked).toHaveLength(1);
  });
});
