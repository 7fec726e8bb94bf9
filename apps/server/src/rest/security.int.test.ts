import {
  API_SESSION_MS,
  type CreatedApiKey,
  passwordSignIn,
  revokeApiKey,
  revokeSession,
  type Scope,
  SYSTEM_META,
} from '@keyledger/core';
import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type CallInit,
  email,
  expectError,
  flipOneChar,
  keyFor,
  principalOf,
  type Res,
  signedIn,
  type TestUser,
  unknownToken,
  useRestKit,
} from '../../test/rest-kit.ts';
import { createApp } from '../app.ts';
import { createTestDeps, TEST_PASSWORD } from '../testing.ts';

/**
 * The one security suite, run against every operation the OpenAPI document marks as needing a credential: the
 * list comes from the served document, so a new route without a row below fails here instead of going untested.
 */

type Doc = { paths: Record<string, Record<string, { security?: unknown[] } & Record<string, any>>> };
const doc: Doc = await (async () => {
  const deps = await createTestDeps();
  try {
    return (await (await createApp(deps).request('/api/openapi')).json()) as Doc;
  } finally {
    await deps.close();
  }
})();
const operations = Object.entries(doc.paths).flatMap(([path, ops]) =>
  Object.entries(ops).map(([method, op]) => ({
    key: `${method.toUpperCase()} ${path}`,
    secured: !!op.security?.length,
  })),
);
const protectedOps = operations.filter((o) => o.secured).map((o) => o.key);
// Routes that take no credential: sign-up and sign-in, and the passwordless and federated sign-in steps.
const PUBLIC = [
  'POST /v1/auth/pw/signup',
  'POST /v1/auth/pw/signin',
  'POST /v1/auth/magic-link',
  'POST /v1/auth/magic-link/verify',
  'GET /v1/auth/oauth/providers',
  'GET /v1/auth/oauth/{provider}/login',
  'GET /v1/auth/oauth/{provider}/callback',
  'GET /v1/auth/logout',
];

interface Fixture {
  caller: TestUser; // an admin, so every route is within reach
  password: string;
  ownKey: CreatedApiKey;
  ownSessionId: string;
  narrowKey: CreatedApiKey; // profile:read only
  ipKey: CreatedApiKey; // 10.0.0.0/8 only
  revokedKey: CreatedApiKey;
  revokedSession: string;
  expiredKey: CreatedApiKey;
  expiredSession: string;
  target: TestUser; // a member the admin routes act on
  other: TestUser; // a member with things of their own
  otherKey: CreatedApiKey;
  callerEventId: string; // an event about the caller (user.registered)
}

interface RouteCase {
  /** The scope the route needs; null when any credential of the right kind will do. */
  readonly scope: Scope | null;
  /** Refresh, sign-out and password change act on a session: an API key is refused. */
  readonly sessionOnly?: boolean;
  readonly ok: number;
  readonly id?: (fx: Fixture) => string;
  readonly body?: (fx: Fixture) => unknown;
  /** Another user's resource: 404 for things one owns, 403 for the admin routes (as a member). */
  readonly notYours?: { id: (fx: Fixture) => string; as: 'caller' | 'member'; status: 403 | 404 };
  /** The id of something that does not exist (the default is shaped like a key id). */
  readonly missingId?: string;
  readonly afterOk?: (fx: Fixture, body: unknown) => void;
}

const newPassword = () => `wren-${Math.random().toString(36).slice(2, 10)}-basalt`;
const ownKey: RouteCase['notYours'] = { id: (fx) => fx.otherKey.id, as: 'caller', status: 404 };
const adminOnly: RouteCase['notYours'] = { id: (fx) => fx.caller.userId, as: 'member', status: 403 };

const ROUTES: Record<string, RouteCase> = {
  'POST /v1/auth/uat': { scope: null, sessionOnly: true, ok: 200 },
  'POST /v1/auth/signout': { scope: null, sessionOnly: true, ok: 204 },
  'POST /v1/auth/password': {
    scope: null,
    sessionOnly: true,
    ok: 204,
    body: (fx) => ({ current_password: fx.password, new_password: newPassword() }),
    afterOk: (fx, body) => {
      fx.password = (body as { new_password: string }).new_password;
    },
  },
  'GET /v1/users/me': { scope: null, ok: 200 },
  'GET /v1/users': { scope: 'users:read', ok: 200 },
  'POST /v1/users': { scope: 'users:write', ok: 201, body: () => ({ email: email('created') }) },
  'GET /v1/users/{id}': { scope: 'users:read', ok: 200, id: (fx) => fx.target.userId, notYours: adminOnly },
  'PATCH /v1/users/{id}': {
    scope: 'users:write',
    ok: 200,
    id: (fx) => fx.target.userId,
    body: () => ({ role: 'admin' }),
    notYours: adminOnly,
  },
  'DELETE /v1/users/{id}/sessions': {
    scope: 'users:write',
    ok: 204,
    id: (fx) => fx.target.userId,
    notYours: adminOnly,
  },
  'POST /v1/api-keys': { scope: 'keys:write', ok: 201, body: () => ({ name: 'sec', scopes: ['profile:read'] }) },
  'GET /v1/api-keys': { scope: 'keys:read', ok: 200 },
  'GET /v1/api-keys/{id}': { scope: 'keys:read', ok: 200, id: (fx) => fx.ownKey.id, notYours: ownKey },
  'DELETE /v1/api-keys/{id}': { scope: 'keys:write', ok: 204, id: (fx) => fx.ownKey.id, notYours: ownKey },
  'POST /v1/api-keys/{id}/rotate': {
    scope: 'keys:write',
    ok: 201,
    id: (fx) => fx.ownKey.id,
    body: () => ({ grace_seconds: 0 }),
    notYours: ownKey,
  },
  'GET /v1/sessions': { scope: 'sessions:read', ok: 200 },
  'DELETE /v1/sessions': { scope: 'sessions:write', ok: 204 },
  'DELETE /v1/sessions/{id}': {
    scope: 'sessions:write',
    ok: 204,
    id: (fx) => fx.ownSessionId,
    notYours: { id: (fx) => fx.other.sessionId, as: 'caller', status: 404 },
  },
  'GET /v1/audit/events': { scope: 'audit:read', ok: 200 },
  'GET /v1/audit/events/{id}': {
    scope: 'audit:read',
    ok: 200,
    id: (fx) => fx.callerEventId,
    // A member holds audit:read for the events about themselves only: someone else's is not found.
    notYours: { id: (fx) => fx.callerEventId, as: 'member', status: 404 },
    missingId: '0190c0de-0000-7000-8000-000000000000',
  },
  'GET /v1/audit/export': { scope: 'audit:read', ok: 200 },
  'GET /v1/audit/verify': { scope: 'audit:read', ok: 200 },
  // No checkpoint is made in this database: the caller gets past every check to the route's own 404.
  'GET /v1/audit/checkpoints/latest': { scope: 'audit:read', ok: 404 },
  'GET /v1/audit/checkpoints/public-key': { scope: 'audit:read', ok: 200 },
};

const kit = useRestKit();

it('the OpenAPI document marks every /v1 route but sign-up and sign-in as protected, and each has a case', () => {
  const open = operations.filter((o) => !o.secured && o.key.includes(' /v1/')).map((o) => o.key);
  expect(open.sort()).toEqual([...PUBLIC].sort());
  expect(protectedOps.filter((k) => !ROUTES[k])).toEqual([]);
  // A row for a route the document no longer has means this table is out of date.
  expect(Object.keys(ROUTES).filter((k) => !protectedOps.includes(k))).toEqual([]);
});

it('the public routes run without a credential', async () => {
  const signin = await kit.call('/v1/auth/pw/signin', {
    method: 'POST',
    body: { email: email(), password: 'nobody-knows-this-9' },
  });
  expectError(signin, 401, 'invalid_credentials');
  const signup = await kit.call('/v1/auth/pw/signup', {
    method: 'POST',
    body: { email: email(), password: 'nobody-knows-this-9' },
  });
  expectError(signup, 403, 'signup_closed');
});

async function makeFixture(): Promise<Fixture> {
  const { deps } = kit;
  // The caller's first session is left to expire (verified once first, so it is in the authenticator's cache when
  // it dies); the caller goes on with a fresh one.
  const first = await signedIn(kit, 'admin');
  await principalOf(kit, first.token);
  deps.clock.advance(API_SESSION_MS + 1_000);
  const fresh = await passwordSignIn(deps.core, SYSTEM_META, {
    email: first.email,
    password: TEST_PASSWORD,
    ip: '127.0.0.1',
    lifetime: 'api',
  });
  kit.secrets.add(fresh.token);
  const caller: TestUser = { ...first, token: fresh.token, sessionId: fresh.sessionId };
  const second = await passwordSignIn(deps.core, SYSTEM_META, {
    email: caller.email,
    password: TEST_PASSWORD,
    ip: '127.0.0.1',
    lifetime: 'api',
  });
  const third = await passwordSignIn(deps.core, SYSTEM_META, {
    email: caller.email,
    password: TEST_PASSWORD,
    ip: '127.0.0.1',
    lifetime: 'api',
  });
  kit.secrets.add(second.token, third.token);
  const revokedKey = await keyFor(kit, caller.token);
  const expiredKey = await keyFor(kit, caller.token, { expiresAt: new Date(deps.clock.now().getTime() + 60_000) });
  // Each is verified once first, so the authenticator's cache holds it when it dies.
  for (const t of [revokedKey.key, third.token, expiredKey.key]) await principalOf(kit, t);
  await revokeApiKey(deps.core, SYSTEM_META, await principalOf(kit, caller.token), revokedKey.id);
  await revokeSession(deps.core, SYSTEM_META, third.sessionId, 'user');
  const other = await signedIn(kit, 'member');
  const fx: Fixture = {
    caller,
    password: TEST_PASSWORD,
    ownKey: await keyFor(kit, caller.token),
    ownSessionId: second.sessionId,
    narrowKey: await keyFor(kit, caller.token, { scopes: ['profile:read'] }),
    ipKey: await keyFor(kit, caller.token, { ipAllowlist: ['10.0.0.0/8'] }),
    revokedKey,
    revokedSession: third.token,
    expiredKey,
    expiredSession: first.token,
    target: await signedIn(kit, 'member'),
    other,
    otherKey: await keyFor(kit, other.token),
    callerEventId: (
      await deps.core.db
        .selectFrom('events')
        .select('id')
        .where('type', '=', 'user.registered')
        .where(sql<string>`data->>'user_id'`, '=', caller.userId)
        .executeTakeFirstOrThrow()
    ).id,
  };
  deps.clock.advance(61_000);
  return fx;
}

function expectUnauthorized(res: Res, credentialSent: boolean): void {
  expectError(res, 401);
  const challenge = res.headers.get('www-authenticate') ?? '';
  expect(challenge).toMatch(/^Bearer\b/);
  if (credentialSent) expect(challenge).toContain('error="invalid_token"');
  else expect(challenge).not.toContain('error=');
}

describe.each(protectedOps)('%s', (op) => {
  const spec = ROUTES[op];
  if (!spec) {
    it('has a security case in this suite', () => expect.fail(`add ${op} to ROUTES`));
    return;
  }
  const [method, template] = op.split(' ') as [string, string];
  let fx: Fixture;
  beforeAll(async () => {
    fx = await makeFixture();
  });
  const path = (id?: string) => template.replace('{id}', id ?? spec.id?.(fx) ?? '');
  const req = (init: CallInit & { id?: string } = {}) =>
    kit.call(path(init.id), { method, body: spec.body?.(fx), ...init });

  it(`accepts the owner's session (${spec.ok})`, async () => {
    const body = spec.body?.(fx);
    const res = await req({ token: fx.caller.token, body });
    expect(res.status, res.text).toBe(spec.ok);
    spec.afterOk?.(fx, body);
  });

  it('no credential: 401 with a bare Bearer challenge', async () => {
    expectUnauthorized(await req(), false);
  });

  it('malformed credential: 401 invalid_token', async () => {
    for (const authorization of ['Bearer garbage', 'Bearer', 'Basic dXNlcjpwYXNz', 'Bearer kl_key_short']) {
      expectUnauthorized(await req({ headers: { authorization } }), true);
    }
  });

  it('bad checksum (a real key or session with one character changed): 401', async () => {
    expectUnauthorized(await req({ token: flipOneChar(fx.ownKey.key) }), true);
    expectUnauthorized(await req({ token: flipOneChar(fx.caller.token) }), true);
    expectUnauthorized(await req({ apiKey: flipOneChar(fx.ownKey.key) }), true);
  });

  it('unknown (well-formed, valid checksum, never issued): 401', async () => {
    expectUnauthorized(await req({ token: unknownToken('key') }), true);
    expectUnauthorized(await req({ token: unknownToken('session') }), true);
    expectUnauthorized(await req({ apiKey: unknownToken('key') }), true);
  });

  it('revoked key and revoked session: 401', async () => {
    expectUnauthorized(await req({ token: fx.revokedKey.key }), true);
    expectUnauthorized(await req({ apiKey: fx.revokedKey.key }), true);
    expectUnauthorized(await req({ token: fx.revokedSession }), true);
  });

  it('expired key and expired session: 401', async () => {
    expectUnauthorized(await req({ token: fx.expiredKey.key }), true);
    expectUnauthorized(await req({ apiKey: fx.expiredKey.key }), true);
    expectUnauthorized(await req({ token: fx.expiredSession }), true);
    expectUnauthorized(await req({ cookie: fx.expiredSession }), true);
  });

  it(spec.scope ? `wrong scope: 403 naming ${spec.scope}` : 'a profile:read key', async () => {
    const res = await req({ token: fx.narrowKey.key });
    if (spec.scope) {
      expectError(res, 403, 'insufficient_scope');
      expect(res.body.error).toContain(spec.scope);
    } else if (spec.sessionOnly) {
      // A session route refuses an API key outright: refresh and sign-out act on the presented token, so it is
      // 400 not_a_session_token (DESIGN §4); a password change is 403 session_required.
      if (op === 'POST /v1/auth/password') expectError(res, 403, 'session_required');
      else expectError(res, 400, 'not_a_session_token');
    } else {
      expect(res.status, res.text).toBe(spec.ok);
    }
  });

  it('key used outside its IP allowlist: 403', async () => {
    expectError(await req({ token: fx.ipKey.key, ip: '192.0.2.1' }), 403, 'ip_not_allowed');
  });

  if (spec.notYours) {
    const notYours = spec.notYours;
    it(`another user's resource: ${notYours.status}`, async () => {
      const token = notYours.as === 'caller' ? fx.caller.token : fx.other.token;
      const res = await req({ token, id: notYours.id(fx) });
      expectError(res, notYours.status, notYours.status === 404 ? 'not_found' : 'insufficient_scope');
      // Nothing happened to it: the other user's key and session still work.
      await principalOf(kit, fx.otherKey.key);
      await principalOf(kit, fx.other.token);
      const row = await kit.deps.core.db
        .selectFrom('api_keys')
        .select('rotated_to')
        .where('id', '=', fx.otherKey.id)
        .executeTakeFirstOrThrow();
      expect(row.rotated_to).toBeNull();
    });

    it('an id that does not exist: 404', async () => {
      const res = await req({ token: fx.caller.token, id: spec.missingId ?? 'key_doesnotexist000000000000' });
      expectError(res, 404, 'not_found');
    });

    it('a malformed id: 400 or 404, never a 500', async () => {
      for (const id of ['abc', 'x'.repeat(64), 'user_01', '..%2F..']) {
        const res = await req({ token: fx.caller.token, id });
        expect([400, 404], `${id}: ${res.text}`).toContain(res.status);
      }
    });
  }
});
