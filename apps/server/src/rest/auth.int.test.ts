import { describe, expect, it } from 'vitest';
import {
  email,
  eventsOf,
  expectError,
  type Kit,
  keyFor,
  STRONG_PASSWORD,
  signedIn,
  unknownToken,
  useRestKit,
} from '../../test/rest-kit.ts';
import { TEST_PASSWORD } from '../testing.ts';

/** /v1/auth: sign-up, sign-in with throttling, refresh rotation, sign-out and password change (DESIGN §4, §5). */

const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const SESSION_TOKEN = /^kl_ses_[0-9A-Za-z]{36}$/;

const signin = (kit: Kit, address: string, password: string, ip?: string) =>
  kit.call('/v1/auth/pw/signin', { method: 'POST', body: { email: address, password }, ip });
const me = (kit: Kit, token: string) => kit.call('/v1/users/me', { token });

describe('sign-up under the default invite policy', () => {
  const kit = useRestKit();

  it('is closed: 403 signup_closed, and no user is created', async () => {
    const address = email('closed');
    const res = await kit.call('/v1/auth/pw/signup', {
      method: 'POST',
      body: { email: address, password: STRONG_PASSWORD },
    });
    expectError(res, 403, 'signup_closed');
    expectError(await signin(kit, address, STRONG_PASSWORD), 401);
  });
});

describe('sign-up when open', () => {
  const kit = useRestKit({ KEYLEDGER_SIGNUP: 'open' });
  const signup = (body: unknown) => kit.call('/v1/auth/pw/signup', { method: 'POST', body });

  it('creates a member and answers 201 with a working bearer token that expires in 1 h', async () => {
    const address = email('open');
    const res = await signup({ email: address, password: STRONG_PASSWORD, name: 'Ada' });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({ token_type: 'bearer', user: { email: address, name: 'Ada', role: 'member' } });
    expect(res.body.access_token).toMatch(SESSION_TOKEN);
    expect(res.body.expires_at).toMatch(ISO_MS);
    expect(Date.parse(res.body.expires_at) - kit.deps.clock.now().getTime()).toBe(3600_000);
    const who = await me(kit, res.body.access_token);
    expect(who.body).toMatchObject({ id: res.body.user.id, email: address, auth: { method: 'session' } });
    const registered = await eventsOf(kit, 'user.registered');
    expect(registered.at(-1)?.data).toMatchObject({ user_id: res.body.user.id, method: 'password', role: 'member' });
  });

  it('refuses a common password, a short one and a bad email with 400 naming the field', async () => {
    for (const password of ['password123', 'Password1', 'qwertyuiop']) {
      const res = await signup({ email: email(), password });
      expectError(res, 400, 'password_common');
      expect(res.body.error.toLowerCase()).toContain('password');
    }
    expectError(await signup({ email: email(), password: 'short' }), 400, 'password_too_short');
    const bad = await signup({ email: 'not-an-email', password: STRONG_PASSWORD });
    expectError(bad, 400, 'invalid_request');
    expect(bad.body.error).toContain('email');
    const extra = await signup({ email: email(), password: STRONG_PASSWORD, role: 'admin' });
    expectError(extra, 400, 'invalid_request');
  });

  it('refuses a taken address with 409', async () => {
    const address = email('taken');
    expect((await signup({ email: address, password: STRONG_PASSWORD })).status).toBe(201);
    expectError(await signup({ email: address.toUpperCase(), password: STRONG_PASSWORD }), 409, 'email_taken');
  });
});

describe('sign-in', () => {
  const kit = useRestKit();

  it('answers 200 with a bearer token, a new session every time', async () => {
    const u = await signedIn(kit);
    const a = await signin(kit, u.email, TEST_PASSWORD);
    const b = await signin(kit, u.email.toUpperCase(), TEST_PASSWORD);
    expect(a.status).toBe(200);
    expect(Object.keys(a.body).sort()).toEqual(['access_token', 'expires_at', 'token_type']);
    expect(a.body.access_token).toMatch(SESSION_TOKEN);
    expect(b.body.access_token).not.toBe(a.body.access_token);
    expect((await me(kit, b.body.access_token)).body.id).toBe(u.userId);
  });

  it('answers a wrong password, an unknown address and a disabled account identically', async () => {
    const u = await signedIn(kit);
    const disabled = await signedIn(kit);
    const admin = await signedIn(kit, 'admin');
    await kit.call(`/v1/users/${disabled.userId}`, { method: 'PATCH', token: admin.token, body: { disabled: true } });
    const answers = [
      await signin(kit, u.email, 'wrong-password-123'),
      await signin(kit, email('nobody'), 'wrong-password-123'),
      await signin(kit, disabled.email, TEST_PASSWORD),
    ];
    for (const res of answers) expectError(res, 401, 'invalid_credentials');
    const shape = (r: (typeof answers)[number]) => ({
      error: r.body.error,
      code: r.body.code,
      challenge: r.headers.get('www-authenticate'),
      type: r.headers.get('content-type'),
    });
    expect(shape(answers[1]!)).toEqual(shape(answers[0]!));
    expect(shape(answers[2]!)).toEqual(shape(answers[0]!));
    const reasons = (await eventsOf(kit, 'signin.failed')).map((e) => e.data.reason);
    expect(reasons.slice(-3)).toEqual(['bad_password', 'unknown_user', 'disabled']);
  });

  it('throttles an address after 5 failures: 429 with Retry-After, even with the right password', async () => {
    const u = await signedIn(kit);
    for (let i = 0; i < 5; i++) expectError(await signin(kit, u.email, `wrong-${i}-password`), 401);
    const sixth = await signin(kit, u.email, TEST_PASSWORD);
    expectError(sixth, 429, 'rate_limited');
    expect(sixth.headers.get('retry-after')).toBe('1');
    expect((await eventsOf(kit, 'signin.failed')).at(-1)?.data.reason).toBe('throttled');
    // The throttled attempt was not a failure: after 1 s, one more wrong one doubles the wait to 2 s.
    kit.deps.clock.advance(1000);
    expectError(await signin(kit, u.email, 'wrong-again-pw'), 401);
    expect((await signin(kit, u.email, TEST_PASSWORD)).headers.get('retry-after')).toBe('2');
    kit.deps.clock.advance(2000);
    expect((await signin(kit, u.email, TEST_PASSWORD)).status).toBe(200);
    // Unknown addresses are throttled the same way (no enumeration).
    const ghost = email('ghost');
    for (let i = 0; i < 5; i++) expectError(await signin(kit, ghost, 'whatever-pw-1'), 401);
    expectError(await signin(kit, ghost, 'whatever-pw-1'), 429, 'rate_limited');
  });
});

/** The last refresh was refused as reuse and revoked the session, in the log. */
async function expectRevokedForReuse(kit: Kit, sessionId: string): Promise<void> {
  const rejected = (await eventsOf(kit, 'session.refresh_rejected')).at(-1);
  expect(rejected?.data).toMatchObject({ session_id: sessionId, reason: 'reused' });
  const revoked = (await eventsOf(kit, 'session.revoked')).at(-1);
  expect(revoked?.data).toMatchObject({ session_id: sessionId, reason: 'reuse' });
}

describe('refresh: POST /v1/auth/uat', () => {
  const kit = useRestKit();
  const refresh = (token: string) => kit.call('/v1/auth/uat', { method: 'POST', token });

  it('rotates the token with a fresh expiry; the old one works 10 s more and refreshes to the same successor', async () => {
    const u = await signedIn(kit);
    kit.deps.clock.advance(60_000);
    const first = await refresh(u.token);
    expect(first.status, first.text).toBe(200);
    expect(first.body.access_token).toMatch(SESSION_TOKEN);
    expect(first.body.access_token).not.toBe(u.token);
    expect(first.body.token_type).toBe('bearer');
    expect(Date.parse(first.body.expires_at)).toBe(kit.deps.clock.now().getTime() + 3600_000);
    expect((await me(kit, first.body.access_token)).status).toBe(200);
    kit.deps.clock.advance(5_000);
    expect((await me(kit, u.token)).status).toBe(200);
    const again = await refresh(u.token);
    expect(again.status).toBe(200);
    expect(again.body.access_token).toBe(first.body.access_token);
    const refreshed = (await eventsOf(kit, 'session.refreshed')).filter((e) => e.data.session_id === u.sessionId);
    expect(refreshed).toHaveLength(1);
  });

  it('after the grace the old token is 401, and refreshing with it revokes the session', async () => {
    const u = await signedIn(kit);
    const next = (await refresh(u.token)).body.access_token as string;
    expect((await me(kit, u.token)).status).toBe(200);
    kit.deps.clock.advance(10_001);
    expectError(await me(kit, u.token), 401);
    expect((await me(kit, next)).status).toBe(200);
    expectError(await refresh(u.token), 401);
    expectError(await me(kit, next), 401);
    await expectRevokedForReuse(kit, u.sessionId);
  });

  it('a token two rotations old is reuse too: refreshing with it revokes the session', async () => {
    const u = await signedIn(kit);
    const second = (await refresh(u.token)).body.access_token as string;
    kit.deps.clock.advance(10_001);
    const third = (await refresh(second)).body.access_token as string;
    kit.deps.clock.advance(10_001);
    expect((await me(kit, third)).status).toBe(200);
    // Not the current token, nor the previous one: the first, stolen long ago.
    expectError(await refresh(u.token), 401);
    expectError(await me(kit, third), 401);
    await expectRevokedForReuse(kit, u.sessionId);
    // A token never issued is only a 401: no session is touched.
    const before = (await eventsOf(kit, 'session.revoked')).length;
    expectError(await refresh(unknownToken('session')), 401);
    expect((await eventsOf(kit, 'session.revoked')).length).toBe(before);
  });

  it('refuses an API key or a cookie with 400 not_a_session_token', async () => {
    const u = await signedIn(kit);
    const key = await keyFor(kit, u.token);
    expectError(await refresh(key.key), 400, 'not_a_session_token');
    expectError(await kit.call('/v1/auth/uat', { method: 'POST', apiKey: key.key }), 400, 'not_a_session_token');
    const viaCookie = await kit.call('/v1/auth/uat', {
      method: 'POST',
      cookie: u.token,
      headers: { origin: kit.deps.config.publicUrl.origin },
    });
    expectError(viaCookie, 400, 'not_a_session_token');
    expect((await me(kit, u.token)).status).toBe(200);
  });

  it('20 concurrent refreshes of one token agree on one live successor', async () => {
    const u = await signedIn(kit);
    const answers = await Promise.all(Array.from({ length: 20 }, () => refresh(u.token)));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    const successors = new Set(answers.map((a) => a.body.access_token));
    expect(successors.size).toBe(1);
    const refreshed = (await eventsOf(kit, 'session.refreshed')).filter((e) => e.data.session_id === u.sessionId);
    expect(refreshed).toHaveLength(1);
    expect((await me(kit, [...successors][0] as string)).status).toBe(200);
  });
});

describe('sign-out and password change', () => {
  const kit = useRestKit();

  it('sign-out is 204 and the token is dead at once', async () => {
    const u = await signedIn(kit);
    expect((await me(kit, u.token)).status).toBe(200); // now in the authenticator's cache
    const out = await kit.call('/v1/auth/signout', { method: 'POST', token: u.token });
    expect(out.status).toBe(204);
    expect(out.text).toBe('');
    expectError(await me(kit, u.token), 401);
    expectError(await kit.call('/v1/auth/signout', { method: 'POST', token: u.token }), 401);
    expect((await eventsOf(kit, 'session.revoked')).at(-1)?.data).toMatchObject({
      session_id: u.sessionId,
      reason: 'signout',
    });
    const key = await keyFor(kit, (await signedIn(kit)).token);
    expectError(await kit.call('/v1/auth/signout', { method: 'POST', token: key.key }), 400, 'not_a_session_token');
  });

  it('changing the password revokes the other sessions, keeps this one, and retires the old password', async () => {
    const u = await signedIn(kit);
    const other = (await signin(kit, u.email, TEST_PASSWORD)).body.access_token as string;
    const change = (body: unknown) => kit.call('/v1/auth/password', { method: 'POST', token: u.token, body });
    expectError(await change({ new_password: STRONG_PASSWORD }), 400);
    expectError(await change({ current_password: 'not-the-password', new_password: STRONG_PASSWORD }), 403);
    expectError(await change({ current_password: TEST_PASSWORD, new_password: 'password123' }), 400, 'password_common');
    expect((await me(kit, other)).status).toBe(200);
    const ok = await change({ current_password: TEST_PASSWORD, new_password: STRONG_PASSWORD });
    expect(ok.status, ok.text).toBe(204);
    expectError(await me(kit, other), 401);
    expect((await me(kit, u.token)).status).toBe(200);
    expectError(await signin(kit, u.email, TEST_PASSWORD), 401, 'invalid_credentials');
    expect((await signin(kit, u.email, STRONG_PASSWORD)).status).toBe(200);
    const revoked = await eventsOf(kit, 'session.revoked');
    expect(revoked.at(-1)?.data.reason).toBe('password_changed');
    const set = (await eventsOf(kit, 'user.password_set')).at(-1);
    expect(Object.keys(set?.data ?? {})).toEqual(['user_id']);
  });
});
