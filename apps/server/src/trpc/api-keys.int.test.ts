import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSignedInUser, createTestDeps, TEST_PASSWORD, type TestDeps } from '../testing.ts';
import {
  callerFor,
  callerWithToken,
  expectBadRequest,
  expectNoSecretsInEvents,
  expectTrpcError,
  principalOf,
  reasonOf,
} from './test-kit.ts';

const ENV_KEY = 'env-admin-key-for-trpc-api-key-tests-0123456';
const MEMBER_SCOPES = ['profile:read', 'keys:read', 'keys:write', 'sessions:read', 'sessions:write', 'audit:read'];

let deps: TestDeps;
let secrets: string[];
beforeEach(async () => {
  deps = await createTestDeps({ KEYLEDGER_ADMIN_API_KEY: ENV_KEY });
  secrets = [TEST_PASSWORD, ENV_KEY];
});
afterEach(async () => {
  await expectNoSecretsInEvents(deps, secrets);
  await deps.close();
});

async function signedIn(email: string) {
  const u = await createSignedInUser(deps, { email });
  secrets.push(u.token);
  return { ...u, caller: (await callerWithToken(deps, u.token)).caller };
}

type Caller = Awaited<ReturnType<typeof signedIn>>['caller'];
async function create(caller: Caller, input: Parameters<Caller['apiKeys']['create']>[0] = {}) {
  const key = await caller.apiKeys.create(input);
  secrets.push(key.key);
  return key;
}

const check = (token: string) => deps.authenticator.authenticate(token, { ip: '127.0.0.1' });

describe('apiKeys.create', () => {
  it("creates a key with the caller's scopes by default; the plaintext is in this answer only", async () => {
    const ada = await signedIn('ada@example.com');
    const key = await create(ada.caller, {
      name: ' deploy bot ',
      expires_at: '2027-01-01T00:00:00+01:00',
      ip_allowlist: ['127.0.0.1', '2001:db8::/32'],
    });
    expect(key).toEqual({
      id: expect.stringMatching(/^key_/),
      key: expect.stringMatching(/^kl_key_[0-9A-Za-z]{36}$/),
      name: 'deploy bot',
      start: key.key.slice(0, 12),
      scopes: MEMBER_SCOPES,
      created_at: '2026-11-22T14:00:00.000Z',
      expires_at: '2026-12-31T23:00:00.000Z',
      ip_allowlist: ['127.0.0.1', '2001:db8::/32'],
      last_used_at: null,
    });
    expect(await principalOf(deps, key.key)).toMatchObject({ auth: 'api_key', keyId: key.id, userId: ada.userId });
    expect(JSON.stringify(await ada.caller.apiKeys.get({ id: key.id }))).not.toContain(key.key);
    const created = await deps.t.db
      .selectFrom('events')
      .select(sql<string>`meta->>'via'`.as('via'))
      .where('type', '=', 'api_key.created')
      .executeTakeFirstOrThrow();
    expect(created.via).toBe('trpc');
  });

  it('narrows scopes on request and refuses scopes beyond the owner (FORBIDDEN scope_exceeds_owner)', async () => {
    const ada = await signedIn('ada@example.com');
    const narrow = await create(ada.caller, { scopes: ['keys:read', 'keys:read'] });
    expect(narrow.scopes).toEqual(['keys:read']);
    const beyond = await expectTrpcError(ada.caller.apiKeys.create({ scopes: ['users:write'] }), 'FORBIDDEN');
    expect(reasonOf(beyond)).toBe('scope_exceeds_owner');
    // A key holding keys:read only cannot create keys at all.
    await expectTrpcError((await callerWithToken(deps, narrow.key)).caller.apiKeys.create({}), 'FORBIDDEN');
  });

  it('refuses bad input naming the field', async () => {
    const { caller } = await signedIn('ada@example.com');
    await expectBadRequest(caller.apiKeys.create({ expires_at: '2020-01-01T00:00:00Z' }), 'expires_at');
    await expectBadRequest(caller.apiKeys.create({ expires_at: 'tomorrow' }), 'expires_at');
    await expectBadRequest(caller.apiKeys.create({ ip_allowlist: ['10.0.0.0/33'] }), 'ip_allowlist');
    await expectBadRequest(caller.apiKeys.create({ scopes: ['everything'] as never }), 'scopes');
    await expectBadRequest(caller.apiKeys.create({ name: 'x'.repeat(201) }), 'name');
    await expectBadRequest(caller.apiKeys.create({ owner_id: 'user_x' } as never), 'owner_id');
    expect(await caller.apiKeys.list()).toEqual({ data: [], next_cursor: null });
  });

  it('refuses no credential and an environment key (which cannot own keys)', async () => {
    await expectTrpcError(callerFor(deps).caller.apiKeys.create({}), 'UNAUTHORIZED');
    const env = await expectTrpcError((await callerWithToken(deps, ENV_KEY)).caller.apiKeys.create({}), 'FORBIDDEN');
    expect(reasonOf(env)).toBe('user_required');
  });
});

describe('apiKeys.list and apiKeys.get', () => {
  it("pages through the caller's own live keys, newest first, without secrets", async () => {
    const ada = await signedIn('ada@example.com');
    const bob = await signedIn('bob@example.com');
    await create(bob.caller, { name: 'bob' });
    const made = [];
    for (const name of ['one', 'two', 'three']) made.push(await create(ada.caller, { name }));
    await ada.caller.apiKeys.revoke({ id: made[1]!.id });

    const first = await ada.caller.apiKeys.list({ limit: 1 });
    expect(first.data.map((k) => k.name)).toEqual(['three']);
    expect(first.next_cursor).toBe(made[2]!.id);
    const second = await ada.caller.apiKeys.list({ after: first.next_cursor!, limit: 1 });
    expect(second).toEqual({ data: [expect.objectContaining({ name: 'one' })], next_cursor: null });
    const all = await ada.caller.apiKeys.list();
    expect(all.data.map((k) => k.id)).toEqual([made[2]!.id, made[0]!.id]);
    expect(Object.keys(all.data[0]!).sort()).toEqual(
      ['created_at', 'expires_at', 'id', 'ip_allowlist', 'last_used_at', 'name', 'scopes', 'start'].sort(),
    );
    for (const k of made) expect(JSON.stringify(all)).not.toContain(k.key);
    await expectBadRequest(ada.caller.apiKeys.list({ limit: 0 }), 'limit');
    await expectBadRequest(ada.caller.apiKeys.list({ limit: 1001 }), 'limit');
  });

  it("gets one of the caller's keys; another user's key is NOT_FOUND like an unknown one", async () => {
    const ada = await signedIn('ada@example.com');
    const bob = await signedIn('bob@example.com');
    const mine = await create(ada.caller, { name: 'mine' });
    const theirs = await create(bob.caller, { name: 'theirs' });
    expect(await ada.caller.apiKeys.get({ id: mine.id })).toMatchObject({ id: mine.id, name: 'mine' });
    const a = await expectTrpcError(ada.caller.apiKeys.get({ id: theirs.id }), 'NOT_FOUND');
    const b = await expectTrpcError(ada.caller.apiKeys.get({ id: 'key_00000000000000000000000000' }), 'NOT_FOUND');
    expect(a.message).toBe(b.message);
    const denied = await deps.t.db
      .selectFrom('events')
      .select(sql<string>`data->>'reason'`.as('reason'))
      .where('type', '=', 'access.denied')
      .execute();
    expect(denied).toEqual([{ reason: 'not_owner' }]);
    await expectBadRequest(ada.caller.apiKeys.get({ id: '' }), 'id');
  });

  it('refuses no credential and a key without keys:read', async () => {
    const ada = await signedIn('ada@example.com');
    const key = await create(ada.caller, { scopes: ['profile:read'] });
    await expectTrpcError(callerFor(deps).caller.apiKeys.list(), 'UNAUTHORIZED');
    await expectTrpcError(callerFor(deps).caller.apiKeys.get({ id: key.id }), 'UNAUTHORIZED');
    const narrow = (await callerWithToken(deps, key.key)).caller;
    expect((await expectTrpcError(narrow.apiKeys.list(), 'FORBIDDEN')).message).toContain('keys:read');
    await expectTrpcError(narrow.apiKeys.get({ id: key.id }), 'FORBIDDEN');
  });
});

describe('apiKeys.rotate', () => {
  it('issues a successor shown once; the old key works for the grace period only', async () => {
    const ada = await signedIn('ada@example.com');
    const old = await create(ada.caller, { name: 'ci', scopes: ['keys:read'] });
    const next = await ada.caller.apiKeys.rotate({ id: old.id, grace_seconds: 60 });
    secrets.push(next.key);
    expect(next).toMatchObject({ name: 'ci', scopes: ['keys:read'] });
    expect(next.id).not.toBe(old.id);
    expect(next.key).not.toBe(old.key);
    expect((await check(old.key)).ok).toBe(true);
    expect((await check(next.key)).ok).toBe(true);
    deps.clock.advance(60_000);
    expect(await check(old.key)).toMatchObject({ ok: false, reason: 'expired' });
    expect((await check(next.key)).ok).toBe(true);

    const immediate = await ada.caller.apiKeys.rotate({ id: next.id, grace_seconds: 0 });
    secrets.push(immediate.key);
    expect(await check(next.key)).toMatchObject({ ok: false });
  });

  it("refuses another user's key (NOT_FOUND), bad grace_seconds and a key without keys:write", async () => {
    const ada = await signedIn('ada@example.com');
    const bob = await signedIn('bob@example.com');
    const theirs = await create(bob.caller);
    await expectTrpcError(ada.caller.apiKeys.rotate({ id: theirs.id }), 'NOT_FOUND');
    expect((await check(theirs.key)).ok).toBe(true);
    const mine = await create(ada.caller, { scopes: ['keys:read'] });
    await expectBadRequest(ada.caller.apiKeys.rotate({ id: mine.id, grace_seconds: -1 }), 'grace_seconds');
    await expectBadRequest(ada.caller.apiKeys.rotate({ id: mine.id, grace_seconds: 1.5 }), 'grace_seconds');
    await expectBadRequest(ada.caller.apiKeys.rotate({ id: mine.id, grace_seconds: 31 * 24 * 3600 }), 'grace_seconds');
    await expectTrpcError((await callerWithToken(deps, mine.key)).caller.apiKeys.rotate({ id: mine.id }), 'FORBIDDEN');
    await expectTrpcError(callerFor(deps).caller.apiKeys.rotate({ id: mine.id }), 'UNAUTHORIZED');
  });
});

describe('apiKeys.revoke', () => {
  it('revokes at once; a second revoke is NOT_FOUND', async () => {
    const ada = await signedIn('ada@example.com');
    const key = await create(ada.caller);
    expect((await check(key.key)).ok).toBe(true);
    expect(await ada.caller.apiKeys.revoke({ id: key.id })).toEqual({ ok: true });
    expect(await check(key.key)).toMatchObject({ ok: false, reason: 'revoked' });
    await expectTrpcError(ada.caller.apiKeys.revoke({ id: key.id }), 'NOT_FOUND');
    const revoked = await deps.t.db.selectFrom('events').select('type').where('type', '=', 'api_key.revoked').execute();
    expect(revoked).toHaveLength(1);
  });

  it("refuses another user's key (NOT_FOUND, the key keeps working), no credential and missing keys:write", async () => {
    const ada = await signedIn('ada@example.com');
    const bob = await signedIn('bob@example.com');
    const theirs = await create(bob.caller);
    await expectTrpcError(ada.caller.apiKeys.revoke({ id: theirs.id }), 'NOT_FOUND');
    expect((await check(theirs.key)).ok).toBe(true);
    await expectTrpcError(callerFor(deps).caller.apiKeys.revoke({ id: theirs.id }), 'UNAUTHORIZED');
    const readOnly = await create(bob.caller, { scopes: ['keys:read'] });
    await expectTrpcError(
      (await callerWithToken(deps, readOnly.key)).caller.apiKeys.revoke({ id: theirs.id }),
      'FORBIDDEN',
    );
    expect((await check(theirs.key)).ok).toBe(true);
    await expectBadRequest(ada.caller.apiKeys.revoke({ id: 'key with spaces' }), 'id');
  });
});
