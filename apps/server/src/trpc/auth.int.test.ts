import { createSetupToken } from '@keyledger/core';
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

const ADMIN_ENV_KEY = 'env-admin-key-for-trpc-auth-tests-0123456789';
const NEW_PASSWORD = 'amber-heron-quietly-93';

let deps: TestDeps;
let secrets: string[];
beforeEach(async () => {
  deps = await createTestDeps({ KEYLEDGER_ADMIN_API_KEY: ADMIN_ENV_KEY });
  secrets = [TEST_PASSWORD, ADMIN_ENV_KEY];
});
afterEach(async () => {
  await expectNoSecretsInEvents(deps, secrets);
  await deps.close();
});

async function member(email = 'ada@example.com') {
  const u = await createSignedInUser(deps, { email });
  secrets.push(u.token);
  return u;
}

async function eventTypes(): Promise<string[]> {
  const rows = await deps.t.db.selectFrom('events').select('type').orderBy('seq').execute();
  return rows.map((r) => r.type);
}

describe('auth.signIn', () => {
  it('creates a new browser session per sign-in and sets it as an HttpOnly cookie, never returning the token', async () => {
    const { userId } = await member();
    const { caller, resHeaders } = callerFor(deps);
    const out = await caller.auth.signIn({ email: 'ADA@example.com', password: TEST_PASSWORD });
    expect(out).toEqual({
      user_id: userId,
      session_id: expect.stringMatching(/^ses_/),
      expires_at: '2026-12-22T14:00:00.000Z', // 30 days on the test clock
    });
    const cookie = parseSetCookie(resHeaders, 'keyledger_session');
    expect(cookie?.value).toMatch(/^kl_ses_[0-9A-Za-z]{36}$/);
    expect(cookie?.attributes).toEqual(expect.arrayContaining(['Path=/', 'HttpOnly', 'SameSite=Lax']));
    expect(cookie?.attributes.some((a) => a.startsWith('Expires=Tue, 22 Dec 2026 14:00:00'))).toBe(true);
    expect(cookie?.attributes).not.toContain('Secure');
    expect(JSON.stringify(out)).not.toContain(cookie?.value);
    secrets.push(cookie!.value);

    const p = await principalOf(deps, cookie!.value);
    expect(p).toMatchObject({ kind: 'user', auth: 'session', userId, sessionId: out.session_id });

    const again = callerFor(deps);
    const second = await again.caller.auth.signIn({ email: 'ada@example.com', password: TEST_PASSWORD });
    expect(second.session_id).not.toBe(out.session_id);
    const secondCookie = parseSetCookie(again.resHeaders, 'keyledger_session')!.value;
    secrets.push(secondCookie);
    expect(secondCookie).not.toBe(cookie?.value);
  });

  it('uses the __Host- cookie with Secure when the public URL is https', async () => {
    const https = await createTestDeps({ KEYLEDGER_PUBLIC_URL: 'https://auth.example.com' });
    try {
      await createSignedInUser(https, { email: 'ada@example.com' });
      const { caller, resHeaders } = callerFor(https);
      await caller.auth.signIn({ email: 'ada@example.com', password: TEST_PASSWORD });
      const cookie = parseSetCookie(resHeaders, '__Host-keyledger_session');
      expect(cookie?.attributes).toEqual(expect.arrayContaining(['Secure', 'HttpOnly', 'Path=/', 'SameSite=Lax']));
      expect(cookie?.attributes.some((a) => a.toLowerCase().startsWith('domain='))).toBe(false);
    } finally {
      await https.close();
    }
  });

  it('answers a wrong password and an unknown address alike, with no cookie, and logs the precise reason', async () => {
    await member();
    const a = callerFor(deps);
    const wrong = await expectTrpcError(
      a.caller.auth.signIn({ email: 'ada@example.com', password: 'not-the-password-1' }),
      'UNAUTHORIZED',
    );
    const b = callerFor(deps);
    const unknown = await expectTrpcError(
      b.caller.auth.signIn({ email: 'nobody@example.com', password: 'not-the-password-1' }),
      'UNAUTHORIZED',
    );
    secrets.push('not-the-password-1');
    expect(wrong.message).toBe(unknown.message);
    expect(reasonOf(wrong)).toBe('invalid_credentials');
    expect(a.resHeaders.getSetCookie()).toEqual([]);
    expect(b.resHeaders.getSetCookie()).toEqual([]);
    const failed = await deps.t.db
      .selectFrom('events')
      .select(sql<string>`data->>'reason'`.as('reason'))
      .where('type', '=', 'signin.failed')
      .orderBy('seq')
      .execute();
    expect(failed.map((r) => r.reason)).toEqual(['bad_password', 'unknown_user']);
  });

  it('throttles after five failures: TOO_MANY_REQUESTS with Retry-After, even with the right password', async () => {
    await member();
    for (let i = 0; i < 5; i++) {
      await expectTrpcError(
        callerFor(deps).caller.auth.signIn({ email: 'ada@example.com', password: `wrong-password-${i}` }),
        'UNAUTHORIZED',
      );
      secrets.push(`wrong-password-${i}`);
    }
    const { caller, resHeaders } = callerFor(deps);
    const error = await expectTrpcError(
      caller.auth.signIn({ email: 'ada@example.com', password: TEST_PASSWORD }),
      'TOO_MANY_REQUESTS',
    );
    expect(reasonOf(error)).toBe('rate_limited');
    expect(resHeaders.get('retry-after')).toBe('1');
    expect(resHeaders.getSetCookie()).toEqual([]);
    expect((await eventTypes()).at(-1)).toBe('signin.failed');

    deps.clock.advance(1000);
    const later = callerFor(deps);
    await later.caller.auth.signIn({ email: 'ada@example.com', password: TEST_PASSWORD });
    secrets.push(parseSetCookie(later.resHeaders, 'keyledger_session')!.value);
  });

  it('refuses bad input with BAD_REQUEST naming the field', async () => {
    const { caller } = callerFor(deps);
    await expectBadRequest(caller.auth.signIn({ password: 'x' } as never), 'email');
    await expectBadRequest(caller.auth.signIn({ email: 'ada@example.com', password: '' }), 'password');
    await expectBadRequest(caller.auth.signIn({ email: 'ada@example.com', password: 'p'.repeat(1025) }), 'password');
    await expectTrpcError(
      caller.auth.signIn({ email: 'ada@example.com', password: 'x', remember: true } as never),
      'BAD_REQUEST',
    );
  });
});

describe('auth.signOut', () => {
  it("revokes the caller's session at once and clears the cookie", async () => {
    const u = await member();
    const { caller, resHeaders } = await callerWithToken(deps, u.token, 'cookie');
    expect(await caller.auth.signOut()).toEqual({ ok: true });
    const cleared = parseSetCookie(resHeaders, 'keyledger_session');
    expect(cleared?.value).toBe('');
    expect(cleared?.attributes).toContain('Max-Age=0');
    const result = await deps.authenticator.authenticate(u.token, { ip: '127.0.0.1' });
    expect(result).toMatchObject({ ok: false, reason: 'revoked' });
    const revoked = await deps.t.db
      .selectFrom('events')
      .select(sql<string>`data->>'reason'`.as('reason'))
      .where('type', '=', 'session.revoked')
      .executeTakeFirstOrThrow();
    expect(revoked.reason).toBe('signout');
  });

  it('needs a session: UNAUTHORIZED without one, BAD_REQUEST for an API key', async () => {
    await expectTrpcError(callerFor(deps).caller.auth.signOut(), 'UNAUTHORIZED');
    const u = await member();
    const key = await (await callerWithToken(deps, u.token)).caller.apiKeys.create({ name: 'ci' });
    secrets.push(key.key);
    const error = await expectTrpcError((await callerWithToken(deps, key.key)).caller.auth.signOut(), 'BAD_REQUEST');
    expect(reasonOf(error)).toBe('not_a_session_token');
  });
});

describe('auth.me', () => {
  it('describes a session caller, an API key caller and the environment admin key', async () => {
    const u = await member();
    const bySession = await (await callerWithToken(deps, u.token)).caller.auth.me();
    expect(bySession).toEqual({
      id: u.userId,
      email: 'ada@example.com',
      name: null,
      role: 'member',
      created_at: '2026-11-22T14:00:00.000Z',
      auth: {
        method: 'session',
        scopes: ['profile:read', 'keys:read', 'keys:write', 'sessions:read', 'sessions:write', 'audit:read'],
      },
    });
    const key = await (await callerWithToken(deps, u.token)).caller.apiKeys.create({ scopes: ['profile:read'] });
    secrets.push(key.key);
    const byKey = await (await callerWithToken(deps, key.key)).caller.auth.me();
    expect(byKey.auth).toEqual({ method: 'api_key', scopes: ['profile:read'], key_id: key.id });
    const byEnv = await (await callerWithToken(deps, ADMIN_ENV_KEY)).caller.auth.me();
    expect(byEnv).toMatchObject({ id: 'env:admin', email: null, role: 'admin', created_at: null });
    expect(byEnv.auth.method).toBe('env_key');
    expect(byEnv.auth.scopes).toContain('users:write');
  });

  it('is UNAUTHORIZED without a credential', async () => {
    await expectTrpcError(callerFor(deps).caller.auth.me(), 'UNAUTHORIZED');
  });
});

describe('auth.changePassword', () => {
  it('changes the password and revokes the other sessions, keeping the current one', async () => {
    const u = await member();
    const other = await createSignedInUser(deps, { email: 'bob@example.com' }); // someone else: untouched
    secrets.push(other.token, NEW_PASSWORD);
    const second = callerFor(deps);
    await second.caller.auth.signIn({ email: 'ada@example.com', password: TEST_PASSWORD });
    const secondToken = parseSetCookie(second.resHeaders, 'keyledger_session')!.value;
    secrets.push(secondToken);

    const { caller } = await callerWithToken(deps, u.token);
    expect(await caller.auth.changePassword({ current_password: TEST_PASSWORD, new_password: NEW_PASSWORD })).toEqual({
      ok: true,
    });
    expect((await deps.authenticator.authenticate(u.token, { ip: '127.0.0.1' })).ok).toBe(true);
    expect(await deps.authenticator.authenticate(secondToken, { ip: '127.0.0.1' })).toMatchObject({ ok: false });
    expect((await deps.authenticator.authenticate(other.token, { ip: '127.0.0.1' })).ok).toBe(true);
    await expectTrpcError(
      callerFor(deps).caller.auth.signIn({ email: 'ada@example.com', password: TEST_PASSWORD }),
      'UNAUTHORIZED',
    );
    const again = callerFor(deps);
    await again.caller.auth.signIn({ email: 'ada@example.com', password: NEW_PASSWORD });
    secrets.push(parseSetCookie(again.resHeaders, 'keyledger_session')!.value);
    expect(await eventTypes()).toContain('user.password_set');
  });

  it('refuses a wrong or missing current password, a weak new one, an API key and no credential', async () => {
    const u = await member();
    secrets.push('wrong-current-pass-1', NEW_PASSWORD);
    const { caller } = await callerWithToken(deps, u.token);
    const wrong = await expectTrpcError(
      caller.auth.changePassword({ current_password: 'wrong-current-pass-1', new_password: NEW_PASSWORD }),
      'FORBIDDEN',
    );
    expect(reasonOf(wrong)).toBe('bad_password');
    await expectBadRequest(caller.auth.changePassword({ new_password: NEW_PASSWORD }), 'current_password');
    await expectBadRequest(
      caller.auth.changePassword({ current_password: TEST_PASSWORD, new_password: 'short' }),
      'new_password',
    );
    await expectBadRequest(caller.auth.changePassword({ current_password: TEST_PASSWORD } as never), 'new_password');
    const key = await caller.apiKeys.create({});
    secrets.push(key.key);
    const byKey = await expectTrpcError(
      (await callerWithToken(deps, key.key)).caller.auth.changePassword({
        current_password: TEST_PASSWORD,
        new_password: NEW_PASSWORD,
      }),
      'FORBIDDEN',
    );
    expect(reasonOf(byKey)).toBe('session_required');
    await expectTrpcError(callerFor(deps).caller.auth.changePassword({ new_password: NEW_PASSWORD }), 'UNAUTHORIZED');
  });
});

describe('auth.completeSetup', () => {
  it('creates the first admin from the one-time link and signs them in with the cookie, once', async () => {
    const token = (await createSetupToken(deps.core))!;
    secrets.push(token, NEW_PASSWORD);
    const { caller, resHeaders } = callerFor(deps);
    const input = { token, email: 'root@example.com', password: NEW_PASSWORD, name: 'Root' };
    const out = await caller.auth.completeSetup(input);
    const cookie = parseSetCookie(resHeaders, 'keyledger_session')!.value;
    secrets.push(cookie);
    const p = await principalOf(deps, cookie);
    expect(p).toMatchObject({ kind: 'user', auth: 'session', role: 'admin', userId: out.user_id });
    const me = await (await callerWithToken(deps, cookie, 'cookie')).caller.auth.me();
    expect(me).toMatchObject({ email: 'root@example.com', name: 'Root', role: 'admin' });

    const reused = await expectTrpcError(callerFor(deps).caller.auth.completeSetup(input), 'UNAUTHORIZED');
    expect(reasonOf(reused)).toBe('invalid_setup_token');
  });

  it('refuses a malformed or unknown token, and bad input naming the field', async () => {
    const { caller } = callerFor(deps);
    const input = { token: 'x'.repeat(32), email: 'root@example.com', password: NEW_PASSWORD };
    await expectTrpcError(caller.auth.completeSetup(input), 'UNAUTHORIZED');
    await expectTrpcError(caller.auth.completeSetup({ ...input, token: 'short' }), 'UNAUTHORIZED');
    await expectBadRequest(caller.auth.completeSetup({ ...input, email: 'not-an-email' }), 'email');
    await expectBadRequest(caller.auth.completeSetup({ ...input, token: '' }), 'token');
    expect(await deps.t.db.selectFrom('users').select('id').execute()).toEqual([]);
  });
});

describe('auth.signUp', () => {
  it('is FORBIDDEN signup_closed under the default invite policy', async () => {
    const error = await expectTrpcError(
      callerFor(deps).caller.auth.signUp({ email: 'eve@example.com', password: NEW_PASSWORD }),
      'FORBIDDEN',
    );
    expect(reasonOf(error)).toBe('signup_closed');
    expect(await deps.t.db.selectFrom('users').select('id').execute()).toEqual([]);
  });

  it('registers a member under open sign-up, who can then sign in; a taken email is CONFLICT', async () => {
    const open = await createTestDeps({ KEYLEDGER_SIGNUP: 'open' });
    try {
      const { caller } = callerFor(open);
      const user = await caller.auth.signUp({ email: 'Eve@Example.com', password: NEW_PASSWORD, name: 'Eve' });
      expect(user).toEqual({
        id: expect.stringMatching(/^user_/),
        email: 'eve@example.com',
        name: 'Eve',
        role: 'member',
        disabled: false,
        email_verified: false,
        created_at: '2026-11-22T14:00:00.000Z',
      });
      const signIn = callerFor(open);
      expect((await signIn.caller.auth.signIn({ email: 'eve@example.com', password: NEW_PASSWORD })).user_id).toBe(
        user.id,
      );
      const conflict = await expectTrpcError(
        caller.auth.signUp({ email: 'eve@example.com', password: NEW_PASSWORD }),
        'CONFLICT',
      );
      expect(reasonOf(conflict)).toBe('email_taken');
      await expectBadRequest(caller.auth.signUp({ email: 'nope', password: NEW_PASSWORD }), 'email');
      await expectBadRequest(caller.auth.signUp({ email: 'fay@example.com', password: 'password' }), 'password');
      await expectNoSecretsInEvents(open, [
        NEW_PASSWORD,
        parseSetCookie(signIn.resHeaders, 'keyledger_session')!.value,
      ]);
    } finally {
      await open.close();
    }
  });
});
