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
  reasonOf,
} from './test-kit.ts';

const ENV_KEY = 'env-admin-key-for-trpc-sessions-tests-012345';

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

async function user(email: string) {
  const u = await createSignedInUser(deps, { email });
  secrets.push(u.token);
  return u;
}

/** A browser sign-in over tRPC from a given IP: returns the cookie token and the session id. */
async function browserSession(email: string, clientIp = '203.0.113.7') {
  const { caller, resHeaders } = callerFor(deps, { clientIp });
  const out = await caller.auth.signIn({ email, password: TEST_PASSWORD });
  const token = parseSetCookie(resHeaders, 'keyledger_session')!.value;
  secrets.push(token);
  return { token, sessionId: out.session_id };
}

async function keyWith(token: string, scopes: string[]) {
  const key = await (await callerWithToken(deps, token)).caller.apiKeys.create({ scopes: scopes as never });
  secrets.push(key.key);
  return key.key;
}

const alive = async (token: string) => (await deps.authenticator.authenticate(token, { ip: '127.0.0.1' })).ok;

describe('sessions.list', () => {
  it("lists the caller's live sessions, newest first, marking the current one", async () => {
    const ada = await user('ada@example.com');
    await user('bob@example.com');
    deps.clock.advance(60_000);
    const browser = await browserSession('ada@example.com');
    const { caller } = await callerWithToken(deps, browser.token, 'cookie');
    const page = await caller.sessions.list();
    expect(page.next_cursor).toBeNull();
    expect(page.data).toEqual([
      {
        id: browser.sessionId,
        current: true,
        method: 'password',
        ip: '203.0.113.7',
        user_agent: 'vitest',
        created_at: '2026-11-22T14:01:00.000Z',
        last_seen_at: null,
        expires_at: '2026-12-22T14:01:00.000Z',
      },
      expect.objectContaining({ id: ada.sessionId, current: false, expires_at: '2026-11-22T15:00:00.000Z' }),
    ]);
    expect(JSON.stringify(page)).not.toMatch(/kl_ses_|token/);
  });

  it('refuses no credential, a key without sessions:read, and an environment key', async () => {
    const ada = await user('ada@example.com');
    await expectTrpcError(callerFor(deps).caller.sessions.list(), 'UNAUTHORIZED');
    const narrow = await keyWith(ada.token, ['keys:read']);
    const scope = await expectTrpcError((await callerWithToken(deps, narrow)).caller.sessions.list(), 'FORBIDDEN');
    expect(scope.message).toContain('sessions:read');
    const env = await expectTrpcError((await callerWithToken(deps, ENV_KEY)).caller.sessions.list(), 'FORBIDDEN');
    expect(reasonOf(env)).toBe('user_required');
  });
});

describe('sessions.revoke', () => {
  it("revokes another of the caller's sessions at once (reason user)", async () => {
    const ada = await user('ada@example.com');
    const browser = await browserSession('ada@example.com');
    const { caller, resHeaders } = await callerWithToken(deps, ada.token);
    expect(await caller.sessions.revoke({ id: browser.sessionId })).toEqual({ ok: true });
    expect(await alive(browser.token)).toBe(false);
    expect(await alive(ada.token)).toBe(true);
    expect(resHeaders.getSetCookie()).toEqual([]);
    expect((await caller.sessions.list()).data.map((s) => s.id)).toEqual([ada.sessionId]);
    const event = await deps.t.db
      .selectFrom('events')
      .select([sql<string>`data->>'reason'`.as('reason'), sql<string>`meta->>'via'`.as('via')])
      .where('type', '=', 'session.revoked')
      .executeTakeFirstOrThrow();
    expect(event).toEqual({ reason: 'user', via: 'trpc' });
  });

  it('revoking the current cookie session is a sign-out and clears the cookie', async () => {
    await user('ada@example.com');
    const browser = await browserSession('ada@example.com');
    const { caller, resHeaders } = await callerWithToken(deps, browser.token, 'cookie');
    await caller.sessions.revoke({ id: browser.sessionId });
    expect(await alive(browser.token)).toBe(false);
    expect(parseSetCookie(resHeaders, 'keyledger_session')?.attributes).toContain('Max-Age=0');
    const reason = await deps.t.db
      .selectFrom('events')
      .select(sql<string>`data->>'reason'`.as('reason'))
      .where('type', '=', 'session.revoked')
      .executeTakeFirstOrThrow();
    expect(reason.reason).toBe('signout');
  });

  it("answers NOT_FOUND for another user's session (logged as not_owner), an unknown one and a revoked one", async () => {
    const ada = await user('ada@example.com');
    const bob = await user('bob@example.com');
    const { caller } = await callerWithToken(deps, ada.token);
    const theirs = await expectTrpcError(caller.sessions.revoke({ id: bob.sessionId }), 'NOT_FOUND');
    const unknown = await expectTrpcError(
      caller.sessions.revoke({ id: 'ses_00000000000000000000000000' }),
      'NOT_FOUND',
    );
    expect(theirs.message).toBe(unknown.message);
    expect(await alive(bob.token)).toBe(true);
    const denied = await deps.t.db
      .selectFrom('events')
      .select(sql<string>`data::text`.as('data'))
      .where('type', '=', 'access.denied')
      .execute();
    expect(denied).toHaveLength(1);
    expect(JSON.parse(denied[0]!.data)).toMatchObject({
      principal: ada.userId,
      reason: 'not_owner',
      resource: `sessions/${bob.sessionId}`,
    });

    const browser = await browserSession('ada@example.com');
    await caller.sessions.revoke({ id: browser.sessionId });
    await expectTrpcError(caller.sessions.revoke({ id: browser.sessionId }), 'NOT_FOUND');
  });

  it('refuses bad input, no credential and a key without sessions:write', async () => {
    const ada = await user('ada@example.com');
    const { caller } = await callerWithToken(deps, ada.token);
    await expectBadRequest(caller.sessions.revoke({ id: 'has spaces' }), 'id');
    await expectBadRequest(caller.sessions.revoke({} as never), 'id');
    await expectTrpcError(callerFor(deps).caller.sessions.revoke({ id: ada.sessionId }), 'UNAUTHORIZED');
    const readOnly = await keyWith(ada.token, ['sessions:read']);
    const error = await expectTrpcError(
      (await callerWithToken(deps, readOnly)).caller.sessions.revoke({ id: ada.sessionId }),
      'FORBIDDEN',
    );
    expect(error.message).toContain('sessions:write');
    expect(await alive(ada.token)).toBe(true);
  });
});

describe('sessions.revokeOthers', () => {
  it("revokes every session but the caller's own, and nobody else's", async () => {
    const ada = await user('ada@example.com');
    const bob = await user('bob@example.com');
    const b1 = await browserSession('ada@example.com');
    const b2 = await browserSession('ada@example.com');
    const { caller } = await callerWithToken(deps, b1.token, 'cookie');
    expect(await caller.sessions.revokeOthers()).toEqual({ revoked: 2 });
    expect(await alive(b1.token)).toBe(true);
    expect(await alive(b2.token)).toBe(false);
    expect(await alive(ada.token)).toBe(false);
    expect(await alive(bob.token)).toBe(true);
    expect(await caller.sessions.revokeOthers()).toEqual({ revoked: 0 });
  });

  it('refuses no credential and a key without sessions:write', async () => {
    const ada = await user('ada@example.com');
    await expectTrpcError(callerFor(deps).caller.sessions.revokeOthers(), 'UNAUTHORIZED');
    const readOnly = await keyWith(ada.token, ['sessions:read']);
    await expectTrpcError((await callerWithToken(deps, readOnly)).caller.sessions.revokeOthers(), 'FORBIDDEN');
    expect(await alive(ada.token)).toBe(true);
  });
});
