import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSignedInUser, createTestDeps, TEST_PASSWORD, type TestDeps } from '../testing.ts';
import {
  callerFor,
  callerWithToken,
  expectBadRequest,
  expectNoSecretsInEvents,
  expectTrpcError,
  parseSetCookie,
  principalOf,
  reasonOf,
} from './test-kit.ts';

const ENV_KEY = 'env-admin-key-for-trpc-users-tests-012345678';
const ENV_READ_KEY = 'env-read-key-for-trpc-users-tests-0123456789';
const NEW_PASSWORD = 'cobalt-finch-meadow-17';

let deps: TestDeps;
let secrets: string[];
beforeEach(async () => {
  deps = await createTestDeps({ KEYLEDGER_ADMIN_API_KEY: ENV_KEY, KEYLEDGER_API_KEYS: ENV_READ_KEY });
  secrets = [TEST_PASSWORD, ENV_KEY, ENV_READ_KEY, NEW_PASSWORD];
});
afterEach(async () => {
  await expectNoSecretsInEvents(deps, secrets);
  await deps.close();
});

async function signedIn(email: string, role: 'admin' | 'member' = 'member') {
  const u = await createSignedInUser(deps, { email, role });
  secrets.push(u.token);
  return { ...u, caller: (await callerWithToken(deps, u.token)).caller };
}

const check = (token: string) => deps.authenticator.authenticate(token, { ip: '127.0.0.1' });

describe('users: who may call', () => {
  it('is UNAUTHORIZED without a credential and FORBIDDEN for a member, on every procedure', async () => {
    const member = await signedIn('mia@example.com');
    const anon = callerFor(deps).caller;
    const calls = (c: typeof anon) => [
      c.users.list(),
      c.users.get({ id: member.userId }),
      c.users.create({ email: 'new@example.com' }),
      c.users.update({ id: member.userId, role: 'admin' }),
      c.users.revokeSessions({ id: member.userId }),
    ];
    for (const p of calls(anon)) await expectTrpcError(p, 'UNAUTHORIZED');
    for (const p of calls(member.caller)) await expectTrpcError(p, 'FORBIDDEN');
    expect((await principalOf(deps, member.token)).role).toBe('member');
    expect(await deps.t.db.selectFrom('users').select('email').execute()).toEqual([{ email: 'mia@example.com' }]);
  });

  it('lets a read-only credential read but not write', async () => {
    const member = await signedIn('mia@example.com');
    const reader = (await callerWithToken(deps, ENV_READ_KEY)).caller;
    expect((await reader.users.get({ id: member.userId })).email).toBe('mia@example.com');
    const error = await expectTrpcError(reader.users.create({ email: 'new@example.com' }), 'FORBIDDEN');
    expect(error.message).toContain('users:write');
    const admin = await signedIn('root@example.com', 'admin');
    const key = await admin.caller.apiKeys.create({ scopes: ['users:read'] });
    secrets.push(key.key);
    const byKey = (await callerWithToken(deps, key.key)).caller;
    expect((await byKey.users.list()).data).toHaveLength(2);
    await expectTrpcError(byKey.users.revokeSessions({ id: member.userId }), 'FORBIDDEN');
  });
});

describe('users.create', () => {
  it('creates a user with a password who can sign in at once (environment admin key as caller)', async () => {
    const env = (await callerWithToken(deps, ENV_KEY)).caller;
    const user = await env.users.create({ email: 'New@Example.com', name: 'New', password: NEW_PASSWORD });
    expect(user).toEqual({
      id: expect.stringMatching(/^user_/),
      email: 'new@example.com',
      name: 'New',
      role: 'member',
      disabled: false,
      email_verified: false,
      created_at: '2026-11-22T14:00:00.000Z',
    });
    const signIn = callerFor(deps);
    await signIn.caller.auth.signIn({ email: 'new@example.com', password: NEW_PASSWORD });
    secrets.push(parseSetCookie(signIn.resHeaders, 'keyledger_session')!.value);
    const registered = await deps.t.db
      .selectFrom('events')
      .select([sql<string>`data->>'method'`.as('method'), sql<string>`meta->'actor'->>'id'`.as('actor')])
      .where('type', '=', 'user.registered')
      .executeTakeFirstOrThrow();
    expect(registered).toEqual({ method: 'admin', actor: 'env:admin' });
  });

  it('creates an admin without a password (no way in by password yet)', async () => {
    const admin = await signedIn('root@example.com', 'admin');
    const user = await admin.caller.users.create({ email: 'ops@example.com', role: 'admin' });
    expect(user.role).toBe('admin');
    await expectTrpcError(
      callerFor(deps).caller.auth.signIn({ email: 'ops@example.com', password: NEW_PASSWORD }),
      'UNAUTHORIZED',
    );
  });

  it('refuses a taken email (CONFLICT) and bad input naming the field', async () => {
    const admin = await signedIn('root@example.com', 'admin');
    const taken = await expectTrpcError(admin.caller.users.create({ email: 'ROOT@example.com' }), 'CONFLICT');
    expect(reasonOf(taken)).toBe('email_taken');
    await expectBadRequest(admin.caller.users.create({ email: 'not-an-email' }), 'email');
    await expectBadRequest(admin.caller.users.create({ email: 'a@example.com', role: 'owner' as never }), 'role');
    await expectBadRequest(admin.caller.users.create({ email: 'a@example.com', password: 'short' }), 'password');
    await expectBadRequest(admin.caller.users.create({ email: 'a@example.com', name: '' }), 'name');
    expect((await admin.caller.users.list()).data).toHaveLength(1);
  });
});

describe('users.list and users.get', () => {
  it('pages by creation order and filters by email or name', async () => {
    const admin = await signedIn('root@example.com', 'admin');
    for (const [email, name] of [
      ['ann@example.com', 'Ann Lee'],
      ['bo@other.org', 'Bo'],
      ['cy@example.com', null],
    ] as const) {
      deps.clock.advance(1000);
      await admin.caller.users.create({ email, ...(name ? { name } : {}) });
    }
    const first = await admin.caller.users.list({ limit: 2 });
    expect(first.data.map((u) => u.email)).toEqual(['root@example.com', 'ann@example.com']);
    const rest = await admin.caller.users.list({ after: first.next_cursor!, limit: 2 });
    expect(rest).toEqual({
      data: [expect.objectContaining({ email: 'bo@other.org' }), expect.objectContaining({ email: 'cy@example.com' })],
      next_cursor: null,
    });
    expect((await admin.caller.users.list({ query: 'other.org' })).data.map((u) => u.name)).toEqual(['Bo']);
    expect((await admin.caller.users.list({ query: 'lee' })).data.map((u) => u.email)).toEqual(['ann@example.com']);
    expect((await admin.caller.users.list({ query: '%' })).data).toEqual([]);
    await expectBadRequest(admin.caller.users.list({ after: 'user_unknown' }), 'after');
    await expectBadRequest(admin.caller.users.list({ limit: 0 }), 'limit');
  });

  it('gets one user; an unknown id is NOT_FOUND', async () => {
    const admin = await signedIn('root@example.com', 'admin');
    expect(await admin.caller.users.get({ id: admin.userId })).toMatchObject({ email: 'root@example.com' });
    await expectTrpcError(admin.caller.users.get({ id: 'user_00000000000000000000000000' }), 'NOT_FOUND');
    await expectBadRequest(admin.caller.users.get({ id: 'a/b' }), 'id');
  });
});

describe('users.update', () => {
  it("changes the role; the user's existing session gains or loses the rights at once", async () => {
    const admin = await signedIn('root@example.com', 'admin');
    const mia = await signedIn('mia@example.com');
    expect(await admin.caller.users.update({ id: mia.userId, role: 'admin' })).toMatchObject({ role: 'admin' });
    const promoted = (await callerWithToken(deps, mia.token)).caller;
    expect((await promoted.users.list()).data).toHaveLength(2);
    await admin.caller.users.update({ id: mia.userId, role: 'member' });
    await expectTrpcError((await callerWithToken(deps, mia.token)).caller.users.list(), 'FORBIDDEN');
    const changes = await deps.t.db
      .selectFrom('events')
      .select('type')
      .where('type', '=', 'user.role_changed')
      .execute();
    expect(changes).toHaveLength(2);
  });

  it('disabling revokes every session and key of the user; enabling lets them sign in again', async () => {
    const admin = await signedIn('root@example.com', 'admin');
    const mia = await signedIn('mia@example.com');
    const key = await mia.caller.apiKeys.create({});
    secrets.push(key.key);
    expect(await admin.caller.users.update({ id: mia.userId, disabled: true })).toMatchObject({ disabled: true });
    expect((await check(mia.token)).ok).toBe(false);
    expect((await check(key.key)).ok).toBe(false);
    expect((await check(admin.token)).ok).toBe(true);
    await expectTrpcError(
      callerFor(deps).caller.auth.signIn({ email: 'mia@example.com', password: TEST_PASSWORD }),
      'UNAUTHORIZED',
    );
    expect(await admin.caller.users.update({ id: mia.userId, disabled: false })).toMatchObject({ disabled: false });
    const back = callerFor(deps);
    await back.caller.auth.signIn({ email: 'mia@example.com', password: TEST_PASSWORD });
    secrets.push(parseSetCookie(back.resHeaders, 'keyledger_session')!.value);
    expect((await check(key.key)).ok).toBe(false);
  });

  it('applies role and disabled together, and an empty update returns the user unchanged', async () => {
    const admin = await signedIn('root@example.com', 'admin');
    const mia = await signedIn('mia@example.com');
    expect(await admin.caller.users.update({ id: mia.userId, role: 'admin', disabled: true })).toMatchObject({
      role: 'admin',
      disabled: true,
    });
    const seq = await deps.t.db
      .selectFrom('events')
      .select(sql<number>`count(*)::int`.as('n'))
      .executeTakeFirstOrThrow();
    expect(await admin.caller.users.update({ id: mia.userId })).toMatchObject({ role: 'admin', disabled: true });
    const after = await deps.t.db
      .selectFrom('events')
      .select(sql<number>`count(*)::int`.as('n'))
      .executeTakeFirstOrThrow();
    expect(after.n).toBe(seq.n);
  });

  it('renames (user.renamed, also seen by the user at once) and clears a name with null', async () => {
    const admin = await signedIn('root@example.com', 'admin');
    const mia = await signedIn('mia@example.com');
    expect(await admin.caller.users.update({ id: mia.userId, name: '  Mia Wong ', role: 'admin' })).toMatchObject({
      name: 'Mia Wong',
      role: 'admin',
    });
    // A fresh request by Mia sees it at once (the authenticator's cache is evicted by the event).
    expect((await (await callerWithToken(deps, mia.token)).caller.auth.me()).name).toBe('Mia Wong');
    // The same name again writes nothing; null clears it.
    await admin.caller.users.update({ id: mia.userId, name: 'Mia Wong' });
    expect((await admin.caller.users.update({ id: mia.userId, name: null })).name).toBeNull();
    const renames = await deps.t.db
      .selectFrom('events')
      .select('data')
      .where('type', '=', 'user.renamed')
      .orderBy('seq')
      .execute();
    expect(renames.map((r) => r.data)).toEqual([
      { user_id: mia.userId, from: null, to: 'Mia Wong' },
      { user_id: mia.userId, from: 'Mia Wong', to: null },
    ]);
  });

  it('refuses an empty name (BAD_REQUEST name), an unknown user (NOT_FOUND) and bad input', async () => {
    const admin = await signedIn('root@example.com', 'admin');
    const mia = await signedIn('mia@example.com');
    await expectBadRequest(admin.caller.users.update({ id: mia.userId, name: '', role: 'admin' }), 'name');
    expect((await admin.caller.users.get({ id: mia.userId })).role).toBe('member');
    await expectTrpcError(
      admin.caller.users.update({ id: 'user_00000000000000000000000000', role: 'admin' }),
      'NOT_FOUND',
    );
    await expectTrpcError(admin.caller.users.update({ id: 'user_00000000000000000000000000' }), 'NOT_FOUND');
    await expectBadRequest(admin.caller.users.update({ id: mia.userId, disabled: 'yes' as never }), 'disabled');
    await expectBadRequest(admin.caller.users.update({ id: mia.userId, email: 'x@example.com' } as never), 'email');
  });
});

describe('users.revokeSessions', () => {
  it('signs the user out everywhere (reason admin); their keys stay', async () => {
    const admin = await signedIn('root@example.com', 'admin');
    const mia = await signedIn('mia@example.com');
    const key = await mia.caller.apiKeys.create({});
    secrets.push(key.key);
    const browser = callerFor(deps);
    await browser.caller.auth.signIn({ email: 'mia@example.com', password: TEST_PASSWORD });
    const cookie = parseSetCookie(browser.resHeaders, 'keyledger_session')!.value;
    secrets.push(cookie);
    expect(await admin.caller.users.revokeSessions({ id: mia.userId })).toEqual({ revoked: 2 });
    expect((await check(mia.token)).ok).toBe(false);
    expect((await check(cookie)).ok).toBe(false);
    expect((await check(key.key)).ok).toBe(true);
    expect((await check(admin.token)).ok).toBe(true);
    const reasons = await deps.t.db
      .selectFrom('events')
      .select(sql<string>`data->>'reason'`.as('reason'))
      .where('type', '=', 'session.revoked')
      .execute();
    expect(reasons).toEqual([{ reason: 'admin' }, { reason: 'admin' }]);
    expect(await admin.caller.users.revokeSessions({ id: mia.userId })).toEqual({ revoked: 0 });
    await expectTrpcError(admin.caller.users.revokeSessions({ id: 'user_00000000000000000000000000' }), 'NOT_FOUND');
  });
});
