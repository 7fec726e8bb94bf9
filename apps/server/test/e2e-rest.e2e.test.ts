import { testDatabaseUrl } from '@keyledger/db/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContractClient, OPERATIONS, OpenApiContract, type Res, SecretLedger } from './openapi-contract.ts';
import { type Backend, createBackend, randomSecret, type Spawned, spawnServer } from './spawn-server.ts';

/**
 * The REST contract end to end, as a third party sees it: the real server process on real Postgres (the embedded
 * database when the run has none), driven with plain `fetch`, every answer checked against the OpenAPI document
 * the server serves, and afterwards no secret the suite handled anywhere in its logs, error bodies or database.
 */

const KEY_FORMAT = /^kl_key_[0-9A-Za-z]{36}$/;
const SESSION_FORMAT = /^kl_ses_[0-9A-Za-z]{36}$/;
const run = randomSecret(8).toLowerCase();
const email = (who: string) => `${who}-${run}@example.com`;

describe('REST end to end (real server process)', () => {
  const secrets = new SecretLedger();
  const adminKey = `env-admin-${randomSecret(40)}`;
  let backend: Backend;
  let server: Spawned;
  let limited: Spawned | undefined;
  let limitedBackend: Backend | undefined;
  let contract: OpenApiContract;
  let api: ContractClient;

  // Filled in as the story goes on.
  const alice = { email: email('alice'), password: randomSecret(24), id: '', token: '' };

  beforeAll(async () => {
    secrets.add(adminKey, alice.password);
    backend = await createBackend(testDatabaseUrl());
    server = await spawnServer({
      ...backend.env,
      KEYLEDGER_ADMIN_API_KEY: adminKey,
      KEYLEDGER_SIGNUP: 'open',
      KEYLEDGER_API_RATE_LIMIT: '100000',
    });
    contract = await OpenApiContract.load(server.url);
    api = new ContractClient(server.url, contract, secrets);
  });

  afterAll(async () => {
    await limited?.stop();
    await server?.stop();
    await limitedBackend?.close();
    await backend?.close();
    if (contract) console.log(`REST e2e on ${backend?.kind}: statuses seen per operation\n${contract.coverage()}`);
  });

  it('serves a valid OpenAPI 3.1 document that describes every REST operation', async () => {
    expect(contract.doc.openapi).toBe('3.1.0');
    const result = await contract.validateDocument();
    expect(result.version).toBe('3.1');
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    for (const op of OPERATIONS) expect(contract.operation(op), op).toBeDefined();
    expect(Object.keys(contract.doc.components?.securitySchemes ?? {}).sort()).toEqual([
      'apiKeyHeader',
      'bearerAuth',
      'cookieAuth',
    ]);
  });

  it('has a response validator that does catch a wrong body, a wrong status and a wrong media type', () => {
    const fake = (status: number, body: unknown, type = 'application/json'): Res => ({
      status,
      headers: new Headers({ 'content-type': type }),
      text: JSON.stringify(body),
      body,
    });
    const user = {
      id: 'usr_1',
      email: 'a@example.com',
      name: null,
      role: 'member',
      disabled: false,
      email_verified: false,
      created_at: '2026-01-01T00:00:00.000Z',
    };
    expect(contract.problems('GET /v1/users/{id}', fake(200, user))).toEqual([]);
    expect(contract.problems('GET /v1/users/{id}', fake(200, { ...user, role: 'root' }))).not.toEqual([]);
    expect(contract.problems('GET /v1/users/{id}', fake(200, { ...user, disabled: undefined }))).not.toEqual([]);
    expect(contract.problems('GET /v1/users/{id}', fake(200, { ...user, created_at: '2026-01-01' }))).not.toEqual([]);
    expect(contract.problems('GET /v1/users/{id}', fake(200, user, 'text/html'))).not.toEqual([]);
    expect(contract.problems('GET /v1/users/{id}', fake(418, user))).not.toEqual([]);
    expect(contract.problems('DELETE /v1/sessions', fake(204, { unexpected: true }))).not.toEqual([]);
    expect(contract.problems('POST /v1/api-keys', fake(403, { error: 'x', code: 'y' }))).not.toEqual([]);
    const key = { ...user, start: 'kl_key_AbCdE', scopes: ['keys:read'], expires_at: null, ip_allowlist: null };
    const full = { ...key, last_used_at: null, key: 'kl_key_x' };
    expect(contract.problems('POST /v1/api-keys/{id}/rotate', fake(201, full))).toEqual([]);
    expect(contract.problems('POST /v1/api-keys/{id}/rotate', fake(201, { ...full, key: undefined }))).not.toEqual([]);
  });

  it('signs up and signs in with a password, and says who the caller is', async () => {
    const signup = await api.call('POST /v1/auth/pw/signup', {
      body: { email: alice.email, password: alice.password, name: 'Alice' },
    });
    expect(signup.status).toBe(201);
    expect(signup.body.user).toMatchObject({ email: alice.email, name: 'Alice', role: 'member', disabled: false });
    expect(signup.body.token_type).toBe('bearer');
    expect(signup.body.access_token).toMatch(SESSION_FORMAT);
    const ttl = Date.parse(signup.body.expires_at) - Date.now();
    expect(ttl).toBeGreaterThan(50 * 60_000);
    expect(ttl).toBeLessThanOrEqual(60 * 60_000);
    alice.id = signup.body.user.id;

    const again = await api.call('POST /v1/auth/pw/signup', { body: { email: alice.email, password: randomSecret() } });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('email_taken');

    const common = await api.call('POST /v1/auth/pw/signup', {
      body: { email: email('common'), password: 'qwertyuiop' },
    });
    expect(common.status).toBe(400);
    expect(common.body.code).toBe('password_common');

    const signin = await api.call('POST /v1/auth/pw/signin', {
      body: { email: alice.email, password: alice.password },
    });
    expect(signin.status).toBe(200);
    expect(signin.body.access_token).toMatch(SESSION_FORMAT);
    expect(signin.body.access_token).not.toBe(signup.body.access_token);
    alice.token = signin.body.access_token;

    const me = await api.call('GET /v1/users/me', { token: alice.token });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ id: alice.id, email: alice.email, role: 'member', auth: { method: 'session' } });
    expect(me.body.auth.scopes).toContain('keys:write');
    expect(me.body.auth.scopes).not.toContain('users:read');

    // Unknown user and wrong password answer alike.
    const wrong = await api.call('POST /v1/auth/pw/signin', {
      body: { email: alice.email, password: `${alice.password}x` },
    });
    const unknown = await api.call('POST /v1/auth/pw/signin', {
      body: { email: email('nobody'), password: alice.password },
    });
    secrets.add(`${alice.password}x`);
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect({ ...wrong.body, request_id: '' }).toEqual({ ...unknown.body, request_id: '' });
  });

  it('creates API keys and accepts them as Bearer and as x-api-key, within their scopes', async () => {
    const created = await api.call('POST /v1/api-keys', {
      token: alice.token,
      body: { name: 'ci', scopes: ['profile:read', 'keys:read'] },
    });
    expect(created.status).toBe(201);
    const key: string = created.body.key;
    expect(key).toMatch(KEY_FORMAT);
    expect(created.body).toMatchObject({
      name: 'ci',
      start: key.slice(0, 12),
      scopes: ['profile:read', 'keys:read'],
      expires_at: null,
    });

    const viaBearer = await api.call('GET /v1/users/me', { token: key });
    expect(viaBearer.status).toBe(200);
    expect(viaBearer.body.auth).toEqual({
      method: 'api_key',
      scopes: ['profile:read', 'keys:read'],
      key_id: created.body.id,
    });
    const viaHeader = await api.call('GET /v1/users/me', { apiKey: key });
    expect(viaHeader.status).toBe(200);
    expect(viaHeader.body.id).toBe(alice.id);

    const list = await api.call('GET /v1/api-keys', { apiKey: key });
    expect(list.status).toBe(200);
    expect(list.body.next_cursor).toBeNull();
    const listed = list.body.data.find((k: { id: string }) => k.id === created.body.id);
    expect(listed).toMatchObject({ id: created.body.id, start: key.slice(0, 12) });
    expect(JSON.stringify(list.body)).not.toContain(key);
    expect(listed).not.toHaveProperty('key');

    const one = await api.call('GET /v1/api-keys/{id}', { token: key, params: { id: created.body.id } });
    expect(one.status).toBe(200);
    expect(one.body).toEqual(listed);

    // The key lacks keys:write: it may read its keys but not make more.
    const denied = await api.call('POST /v1/api-keys', { token: key, body: { name: 'more' } });
    expect(denied.status).toBe(403);
    expect(denied.body.code).toBe('insufficient_scope');
    expect(denied.body.error).toContain('keys:write');
    const noSessions = await api.call('GET /v1/sessions', { apiKey: key });
    expect(noSessions.status).toBe(403);
    expect(noSessions.body.error).toContain('sessions:read');

    // A member cannot mint a key with rights they do not hold.
    const beyond = await api.call('POST /v1/api-keys', { token: alice.token, body: { scopes: ['users:read'] } });
    expect(beyond.status).toBe(403);
    expect(beyond.body.code).toBe('scope_exceeds_owner');
    const past = await api.call('POST /v1/api-keys', {
      token: alice.token,
      body: { expires_at: new Date(Date.now() - 60_000).toISOString() },
    });
    expect(past.status).toBe(400);
    expect(past.body.error).toContain('expires_at');
    const badScope = await api.call('POST /v1/api-keys', { token: alice.token, body: { scopes: ['root'] } });
    expect(badScope.status).toBe(400);
    expect(badScope.body.error).toContain('scopes');

    // Idempotency-Key: the repeat creates nothing and never shows the secret again.
    const idem = `idem-${randomSecret(12)}`;
    const first = await api.call('POST /v1/api-keys', {
      token: alice.token,
      headers: { 'idempotency-key': idem },
      body: { name: 'deploy', ip_allowlist: ['127.0.0.1', '::1/128'] },
    });
    expect(first.status).toBe(201);
    const replay = await api.call('POST /v1/api-keys', {
      token: alice.token,
      headers: { 'idempotency-key': idem },
      body: { name: 'deploy', ip_allowlist: ['127.0.0.1', '::1/128'] },
    });
    expect(replay.status).toBe(200);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body.id).toBe(first.body.id);
    expect(replay.body).not.toHaveProperty('key');
    const conflict = await api.call('POST /v1/api-keys', {
      token: alice.token,
      headers: { 'idempotency-key': idem },
      body: { name: 'other' },
    });
    expect(conflict.status).toBe(409);
    // The allowlisted key works from here (127.0.0.1).
    expect((await api.call('GET /v1/users/me', { apiKey: first.body.key })).status).toBe(200);
  });

  it('rotates a key (the old one works through its grace period) and revokes keys', async () => {
    const created = await api.call('POST /v1/api-keys', { token: alice.token, body: { name: 'rotating' } });
    expect(created.status).toBe(201);
    const oldKey: string = created.body.key;

    const rotated = await api.call('POST /v1/api-keys/{id}/rotate', {
      token: alice.token,
      params: { id: created.body.id },
      body: { grace_seconds: 600 },
    });
    expect(rotated.status).toBe(201);
    expect(rotated.body.key).toMatch(KEY_FORMAT);
    expect(rotated.body.id).not.toBe(created.body.id);
    expect(rotated.body).toMatchObject({ name: 'rotating', scopes: created.body.scopes });
    expect((await api.call('GET /v1/users/me', { apiKey: rotated.body.key })).status).toBe(200);
    expect((await api.call('GET /v1/users/me', { apiKey: oldKey })).status).toBe(200);

    // Rotating the old key again is a conflict; a rotation without a body takes the default grace.
    const twice = await api.call('POST /v1/api-keys/{id}/rotate', {
      token: alice.token,
      params: { id: created.body.id },
    });
    expect(twice.status).toBe(409);
    const third = await api.call('POST /v1/api-keys/{id}/rotate', {
      token: alice.token,
      params: { id: rotated.body.id },
      body: { grace_seconds: 0 },
    });
    expect(third.status).toBe(201);
    expect((await api.call('GET /v1/users/me', { apiKey: third.body.key })).status).toBe(200);
    const afterZeroGrace = await api.call('GET /v1/users/me', { apiKey: rotated.body.key });
    expect(afterZeroGrace.status).toBe(401);
    expect(afterZeroGrace.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    const badGrace = await api.call('POST /v1/api-keys/{id}/rotate', {
      token: alice.token,
      params: { id: third.body.id },
      body: { grace_seconds: 31 * 24 * 3600 },
    });
    expect(badGrace.status).toBe(400);
    expect(badGrace.body.error).toContain('grace_seconds');

    const revoked = await api.call('DELETE /v1/api-keys/{id}', { token: alice.token, params: { id: third.body.id } });
    expect(revoked.status).toBe(204);
    expect((await api.call('GET /v1/users/me', { apiKey: third.body.key })).status).toBe(401);
    const again = await api.call('DELETE /v1/api-keys/{id}', { token: alice.token, params: { id: third.body.id } });
    expect(again.status).toBe(404);
    const listed = await api.call('GET /v1/api-keys', { token: alice.token, query: { limit: '1000' } });
    expect(listed.body.data.map((k: { id: string }) => k.id)).not.toContain(third.body.id);
  });

  it('refreshes a session token: a new token, the old one good for the grace window with the same successor', async () => {
    const signin = await api.call('POST /v1/auth/pw/signin', {
      body: { email: alice.email, password: alice.password },
    });
    const t1: string = signin.body.access_token;
    const r1 = await api.call('POST /v1/auth/uat', { token: t1 });
    expect(r1.status).toBe(200);
    expect(r1.body.token_type).toBe('bearer');
    expect(r1.body.access_token).toMatch(SESSION_FORMAT);
    expect(r1.body.access_token).not.toBe(t1);
    expect(Date.parse(r1.body.expires_at)).toBeGreaterThan(Date.now() + 50 * 60_000);
    const r2 = await api.call('POST /v1/auth/uat', { token: t1 });
    expect(r2.status).toBe(200);
    expect(r2.body.access_token).toBe(r1.body.access_token);
    expect((await api.call('GET /v1/users/me', { token: t1 })).status).toBe(200);
    expect((await api.call('GET /v1/users/me', { token: r1.body.access_token })).status).toBe(200);

    // Not with an API key, not without a credential.
    const key = await api.call('POST /v1/api-keys', { token: alice.token, body: { name: 'not-a-session' } });
    const withKey = await api.call('POST /v1/auth/uat', { token: key.body.key });
    expect(withKey.status).toBe(400);
    expect(withKey.body.code).toBe('not_a_session_token');
    const anonymous = await api.call('POST /v1/auth/uat');
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toBe('Bearer');
  });

  it('lists sessions, revokes one and all the others, and changes the password (other sessions die)', async () => {
    const signIn = async (password = alice.password) =>
      api.call('POST /v1/auth/pw/signin', {
        body: { email: alice.email, password },
        headers: { 'user-agent': `e2e-device-${randomSecret(6)}` },
      });
    const s2: string = (await signIn()).body.access_token;
    const s3: string = (await signIn()).body.access_token;

    const list = await api.call('GET /v1/sessions', { token: alice.token });
    expect(list.status).toBe(200);
    expect(list.body.data.length).toBeGreaterThanOrEqual(3);
    expect(list.body.data.filter((s: { current: boolean }) => s.current)).toHaveLength(1);
    const idOf = async (token: string) =>
      (await api.call('GET /v1/sessions', { token })).body.data.find((s: { current: boolean }) => s.current).id;
    const s3Id = await idOf(s3);
    expect(list.body.data.map((s: { id: string }) => s.id)).toContain(s3Id);

    expect((await api.call('DELETE /v1/sessions/{id}', { token: alice.token, params: { id: s3Id } })).status).toBe(204);
    expect((await api.call('GET /v1/users/me', { token: s3 })).status).toBe(401);
    const gone = await api.call('DELETE /v1/sessions/{id}', { token: alice.token, params: { id: 'ses_nope' } });
    expect(gone.status).toBe(404);

    expect((await api.call('DELETE /v1/sessions', { token: alice.token })).status).toBe(204);
    expect((await api.call('GET /v1/users/me', { token: s2 })).status).toBe(401);
    expect((await api.call('GET /v1/users/me', { token: alice.token })).status).toBe(200);
    const left = await api.call('GET /v1/sessions', { token: alice.token });
    expect(left.body.data).toHaveLength(1);
    expect(left.body.data[0].current).toBe(true);

    // Password change: the current password is required and checked; every other session is revoked.
    const s4: string = (await signIn()).body.access_token;
    const newPassword = randomSecret(24);
    secrets.add(newPassword);
    const missing = await api.call('POST /v1/auth/password', {
      token: alice.token,
      body: { new_password: newPassword },
    });
    expect(missing.status).toBe(400);
    expect(missing.body.error).toContain('current_password');
    const wrongCurrent = await api.call('POST /v1/auth/password', {
      token: alice.token,
      body: { current_password: `not-${alice.password}`, new_password: newPassword },
    });
    secrets.add(`not-${alice.password}`);
    expect([400, 403]).toContain(wrongCurrent.status);
    const tooShort = await api.call('POST /v1/auth/password', {
      token: alice.token,
      body: { current_password: alice.password, new_password: 'short' },
    });
    expect(tooShort.status).toBe(400);
    const changed = await api.call('POST /v1/auth/password', {
      token: alice.token,
      body: { current_password: alice.password, new_password: newPassword },
    });
    expect(changed.status).toBe(204);
    expect((await api.call('GET /v1/users/me', { token: s4 })).status).toBe(401);
    expect((await api.call('GET /v1/users/me', { token: alice.token })).status).toBe(200);
    expect((await signIn()).status).toBe(401);
    const fresh = await signIn(newPassword);
    expect(fresh.status).toBe(200);
    alice.password = newPassword;
  });

  it('signs out: the token is dead at once', async () => {
    const token: string = (
      await api.call('POST /v1/auth/pw/signin', { body: { email: alice.email, password: alice.password } })
    ).body.access_token;
    expect((await api.call('GET /v1/users/me', { token })).status).toBe(200);
    expect((await api.call('POST /v1/auth/signout', { token })).status).toBe(204);
    const after = await api.call('GET /v1/users/me', { token });
    expect(after.status).toBe(401);
    expect(after.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    expect((await api.call('POST /v1/auth/signout', { token })).status).toBe(401);
    // Sign-out takes a session, not an API key.
    const key = await api.call('POST /v1/api-keys', { token: alice.token, body: { name: 'no-signout' } });
    const withKey = await api.call('POST /v1/auth/signout', { apiKey: key.body.key });
    expect(withKey.status).toBe(400);
  });

  it('administers users with the environment admin key', async () => {
    const me = await api.call('GET /v1/users/me', { apiKey: adminKey });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ email: null, role: 'admin', auth: { method: 'env_key' } });
    expect(me.body.id).toMatch(/^env:/);
    expect(me.body.auth.scopes).toEqual(expect.arrayContaining(['users:read', 'users:write']));

    const bob = { email: email('bob'), password: randomSecret(24) };
    secrets.add(bob.password);
    const idem = `user-${randomSecret(10)}`;
    const body = { email: bob.email, name: 'Bob', role: 'member', password: bob.password };
    const created = await api.call('POST /v1/users', { token: adminKey, headers: { 'idempotency-key': idem }, body });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ email: bob.email, name: 'Bob', role: 'member', disabled: false });
    const replay = await api.call('POST /v1/users', { token: adminKey, headers: { 'idempotency-key': idem }, body });
    expect(replay.status).toBe(200);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body.id).toBe(created.body.id);
    const taken = await api.call('POST /v1/users', { apiKey: adminKey, body: { email: bob.email } });
    expect(taken.status).toBe(409);
    const badEmail = await api.call('POST /v1/users', { apiKey: adminKey, body: { email: 'not-an-email' } });
    expect(badEmail.status).toBe(400);
    expect(badEmail.body.error).toContain('email');

    const found = await api.call('GET /v1/users', { apiKey: adminKey, query: { query: `bob-${run}`, limit: '10' } });
    expect(found.status).toBe(200);
    expect(found.body.data.map((u: { id: string }) => u.id)).toEqual([created.body.id]);
    const page = await api.call('GET /v1/users', { apiKey: adminKey, query: { limit: '1' } });
    expect(page.status).toBe(200);
    expect(page.body.data).toHaveLength(1);
    expect(typeof page.body.next_cursor).toBe('string');
    const next = await api.call('GET /v1/users', {
      apiKey: adminKey,
      query: { limit: '1', after: page.body.next_cursor },
    });
    expect(next.status).toBe(200);
    expect(next.body.data[0]?.id).not.toBe(page.body.data[0].id);
    const badLimit = await api.call('GET /v1/users', { apiKey: adminKey, query: { limit: '0' } });
    expect(badLimit.status).toBe(400);
    expect(badLimit.body.error).toContain('limit');

    const one = await api.call('GET /v1/users/{id}', { apiKey: adminKey, params: { id: created.body.id } });
    expect(one.status).toBe(200);
    expect(one.body).toEqual(created.body);
    const missing = await api.call('GET /v1/users/{id}', { apiKey: adminKey, params: { id: 'usr_nope' } });
    expect(missing.status).toBe(404);

    // A member may not list users; promoted, the same session may at once.
    const bobToken: string = (
      await api.call('POST /v1/auth/pw/signin', { body: { email: bob.email, password: bob.password } })
    ).body.access_token;
    const bobKey: string = (await api.call('POST /v1/api-keys', { token: bobToken, body: { name: 'bob' } })).body.key;
    const asMember = await api.call('GET /v1/users', { token: bobToken });
    expect(asMember.status).toBe(403);
    expect(asMember.body.code).toBe('insufficient_scope');
    expect(asMember.body.error).toContain('users:read');
    const promoted = await api.call('PATCH /v1/users/{id}', {
      apiKey: adminKey,
      params: { id: created.body.id },
      body: { role: 'admin' },
    });
    expect(promoted.status).toBe(200);
    expect(promoted.body.role).toBe('admin');
    expect((await api.call('GET /v1/users', { token: bobToken })).status).toBe(200);
    // Bob is now the only admin: demoting him would leave nobody to administer Keyledger.
    const lastAdmin = await api.call('PATCH /v1/users/{id}', {
      apiKey: adminKey,
      params: { id: created.body.id },
      body: { role: 'member' },
    });
    expect(lastAdmin.status).toBe(409);
    expect(lastAdmin.body.code).toBe('last_admin');
    const dora = await api.call('POST /v1/users', { apiKey: adminKey, body: { email: email('dora'), role: 'admin' } });
    expect(dora.status).toBe(201);
    const demoted = await api.call('PATCH /v1/users/{id}', {
      token: bobToken,
      params: { id: created.body.id },
      body: { role: 'member' },
    });
    expect(demoted.status).toBe(200);
    expect((await api.call('GET /v1/users', { token: bobToken })).status).toBe(403);
    const badRole = await api.call('PATCH /v1/users/{id}', {
      apiKey: adminKey,
      params: { id: created.body.id },
      body: { role: 'root' },
    });
    expect(badRole.status).toBe(400);
    expect(badRole.body.error).toContain('role');
    const patchMissing = await api.call('PATCH /v1/users/{id}', {
      apiKey: adminKey,
      params: { id: 'usr_nope' },
      body: { disabled: true },
    });
    expect(patchMissing.status).toBe(404);

    // Disabling kills every session and key of theirs; the sign-in then answers like a wrong password.
    const disabled = await api.call('PATCH /v1/users/{id}', {
      apiKey: adminKey,
      params: { id: created.body.id },
      body: { disabled: true },
    });
    expect(disabled.status).toBe(200);
    expect(disabled.body.disabled).toBe(true);
    expect((await api.call('GET /v1/users/me', { token: bobToken })).status).toBe(401);
    expect((await api.call('GET /v1/users/me', { apiKey: bobKey })).status).toBe(401);
    const refused = await api.call('POST /v1/auth/pw/signin', { body: { email: bob.email, password: bob.password } });
    expect(refused.status).toBe(401);
    expect(refused.body.code).toBe('invalid_credentials');
    const enabled = await api.call('PATCH /v1/users/{id}', {
      apiKey: adminKey,
      params: { id: created.body.id },
      body: { disabled: false },
    });
    expect(enabled.status).toBe(200);
    expect(enabled.body.disabled).toBe(false);

    // An admin revokes all of a user's sessions.
    const bobAgain: string = (
      await api.call('POST /v1/auth/pw/signin', { body: { email: bob.email, password: bob.password } })
    ).body.access_token;
    expect((await api.call('GET /v1/users/me', { token: bobAgain })).status).toBe(200);
    const revoked = await api.call('DELETE /v1/users/{id}/sessions', {
      apiKey: adminKey,
      params: { id: created.body.id },
    });
    expect(revoked.status).toBe(204);
    expect((await api.call('GET /v1/users/me', { token: bobAgain })).status).toBe(401);
    const alicesRevoke = await api.call('DELETE /v1/users/{id}/sessions', {
      token: alice.token,
      params: { id: created.body.id },
    });
    expect(alicesRevoke.status).toBe(403);
  });

  it('answers bad input, bad credentials, missing scopes, unknown things and bad bodies with the documented errors', async () => {
    // 400: malformed JSON, a missing field, an unknown field; the message names the field.
    const malformed = await api.call('POST /v1/auth/pw/signin', {
      rawBody: '{"email": "x@example.com", "password": ',
      contentType: 'application/json',
    });
    expect(malformed.status).toBe(400);
    const noPassword = await api.call('POST /v1/auth/pw/signin', { body: { email: alice.email } });
    expect(noPassword.status).toBe(400);
    expect(noPassword.body.code).toBe('invalid_request');
    expect(noPassword.body.error).toContain('password');
    const extra = await api.call('POST /v1/api-keys', { token: alice.token, body: { name: 'x', admin: true } });
    expect(extra.status).toBe(400);

    // 401: no credential, a malformed header, a bad checksum, an unknown token.
    const none = await api.call('GET /v1/users/me');
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    const basic = await api.call('GET /v1/users/me', { headers: { authorization: 'Basic YWxhZGRpbjpvcGVuc2VzYW1l' } });
    expect(basic.status).toBe(401);
    const badChecksum = `kl_key_${'A'.repeat(30)}000000`;
    const checksum = await api.call('GET /v1/api-keys', { apiKey: badChecksum });
    expect(checksum.status).toBe(401);
    expect(checksum.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    const unknownEnvLike = await api.call('GET /v1/users/me', { token: randomSecret(40) });
    expect(unknownEnvLike.status).toBe(401);
    const noCredsOnWrite = await api.call('POST /v1/api-keys', { body: { name: 'x' } });
    expect(noCredsOnWrite.status).toBe(401);

    // 403 is covered by the scope checks above; 404: someone else's key or session, an unknown route.
    const carol = { email: email('carol'), password: randomSecret(24) };
    secrets.add(carol.password);
    expect((await api.call('POST /v1/users', { apiKey: adminKey, body: carol })).status).toBe(201);
    const carolToken: string = (await api.call('POST /v1/auth/pw/signin', { body: carol })).body.access_token;
    expect(carolToken).toMatch(SESSION_FORMAT);
    const carolKey = await api.call('POST /v1/api-keys', { token: carolToken, body: { name: 'carol' } });
    const notYours = await api.call('GET /v1/api-keys/{id}', { token: alice.token, params: { id: carolKey.body.id } });
    expect(notYours.status).toBe(404);
    const notYoursDelete = await api.call('DELETE /v1/api-keys/{id}', {
      token: alice.token,
      params: { id: carolKey.body.id },
    });
    expect(notYoursDelete.status).toBe(404);
    expect((await api.call('GET /v1/users/me', { apiKey: carolKey.body.key })).status).toBe(200);
    const notYourSession = await api.call('DELETE /v1/sessions/{id}', {
      token: alice.token,
      params: { id: (await api.call('GET /v1/sessions', { token: carolToken })).body.data[0].id },
    });
    expect(notYourSession.status).toBe(404);
    expect((await api.call('GET /v1/users/me', { token: carolToken })).status).toBe(200);
    const unknownRoute = await api.raw('GET', '/v1/no-such-thing', { token: alice.token });
    expect(unknownRoute.status).toBe(404);
    expect(unknownRoute.body.code).toBe('not_found');
    const unknownApi = await api.raw('GET', '/api/no-such-thing');
    expect(unknownApi.status).toBe(404);

    // 413 over 64 KiB; 415 for a body that is not JSON.
    const big = await api.call('POST /v1/auth/pw/signin', {
      body: { email: alice.email, password: 'x'.repeat(70 * 1024) },
    });
    expect(big.status).toBe(413);
    const text = await api.call('POST /v1/auth/pw/signin', {
      rawBody: `email=${encodeURIComponent(alice.email)}`,
      contentType: 'application/x-www-form-urlencoded',
    });
    expect(text.status).toBe(415);
    const plain = await api.call('POST /v1/api-keys', {
      token: alice.token,
      rawBody: '{"name":"x"}',
      contentType: 'text/plain',
    });
    expect(plain.status).toBe(415);
    // A route without a body takes an empty one with no type.
    expect(
      (await api.call('POST /v1/api-keys/{id}/rotate', { token: alice.token, params: { id: 'key_nope' } })).status,
    ).toBe(404);

    // The request id: a good incoming one is kept, a bad one replaced.
    const kept = await api.call('GET /v1/users/me', {
      token: alice.token,
      headers: { 'x-request-id': 'trace.42-A_b' },
    });
    expect(kept.headers.get('x-request-id')).toBe('trace.42-A_b');
    const replaced = await api.call('GET /v1/users/me', { headers: { 'x-request-id': 'no spaces allowed' } });
    expect(replaced.headers.get('x-request-id')).not.toBe('no spaces allowed');
    expect(replaced.body.request_id).toBe(replaced.headers.get('x-request-id'));
  });

  // The shared pipeline (credential extraction, body guards) runs before every /v1 route, so every operation can
  // answer its errors: each status here must be listed for the operation that gave it.
  it('documents for each operation the errors the shared pipeline gives on it', async () => {
    const inQuery = await api.call('GET /v1/users/me', { query: { access_token: alice.token } });
    expect(inQuery.status).toBe(400);
    expect(inQuery.body.code).toBe('credential_in_query');
    const twice = await api.call('GET /v1/sessions', { headers: { authorization: `Bearer ${alice.token}, Bearer x` } });
    expect(twice.status).toBe(400);
    expect(twice.body.code).toBe('duplicate_authorization');
    const badToken = await api.call('POST /v1/auth/pw/signup', {
      token: randomSecret(40),
      body: { email: email('dave'), password: randomSecret(24) },
    });
    expect(badToken.status).toBe(401);
    const notJson = await api.call('POST /v1/auth/uat', {
      token: alice.token,
      rawBody: 'refresh please',
      contentType: 'text/plain',
    });
    expect(notJson.status).toBe(415);
  });

  it('answers 405 for a known path with a method it does not serve (DESIGN §5)', async () => {
    const res = await api.raw('PUT', '/v1/users/me', { token: alice.token, body: { name: 'x' } });
    expect(res.status).toBe(405);
  });

  it('documents the health checks in the OpenAPI document (DESIGN §5)', async () => {
    expect((await api.raw('GET', '/healthz')).status).toBe(200);
    expect((await api.raw('GET', '/readyz')).status).toBe(200);
    expect(Object.keys(contract.doc.paths)).toEqual(expect.arrayContaining(['/healthz', '/readyz']));
  });

  it('rate-limits per credential over KEYLEDGER_API_RATE_LIMIT with RateLimit headers and a documented 429', async () => {
    // A second server with a low limit: on Postgres on the same database, on PGlite on its own data directory
    // (the embedded database belongs to one process).
    limitedBackend = backend.kind === 'postgres' ? undefined : await createBackend(undefined);
    limited = await spawnServer({
      ...(limitedBackend ?? backend).env,
      KEYLEDGER_ADMIN_API_KEY: adminKey,
      KEYLEDGER_SIGNUP: 'open',
      KEYLEDGER_API_RATE_LIMIT: '3',
    });
    const client = new ContractClient(limited.url, contract, secrets);
    const answers: Res[] = [];
    for (let i = 0; i < 4; i++) answers.push(await client.call('GET /v1/users/me', { apiKey: adminKey }));
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 429]);
    expect(answers.map((r) => r.headers.get('ratelimit-remaining'))).toEqual(['2', '1', '0', '0']);
    expect(answers[0]?.headers.get('ratelimit-limit')).toBe('3');
    const over = answers[3] as Res;
    expect(over.body.code).toBe('rate_limited');
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Number(over.headers.get('ratelimit-reset'))).toBeGreaterThan(0);
    // Per credential: another caller (here anonymous, counted per IP) still has its own budget.
    const anonymous = await client.call('POST /v1/auth/pw/signin', {
      body: { email: email('nobody'), password: randomSecret(20) },
    });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('ratelimit-remaining')).toBe('2');
  });

  it('leaves no password, token or key it used in any log line, error body or database row', async () => {
    expect(secrets.size).toBeGreaterThan(10);
    // Both servers stop cleanly on SIGTERM (the rate-limited one exists once its test has run).
    expect(await Promise.all([server.stop(), limited?.stop()])).toEqual([0, limited ? 0 : undefined]);
    const logs = server.output() + (limited?.output() ?? '');
    expect(logs).toContain('listening on');
    expect(secrets.foundIn(logs)).toEqual([]);
    expect(secrets.errorBodies.length).toBeGreaterThan(20);
    expect(secrets.foundIn(secrets.errorBodies.join('\n'))).toEqual([]);

    const rows = await backend.dumpRows();
    expect(rows.some((r) => r.table === 'events')).toBe(true);
    const leaks = rows.flatMap((r) => secrets.foundIn(r.text).map((s) => `${r.table}: ${s}`));
    expect(leaks).toEqual([]);
  });
});
