import { createServer, type Server, type Socket } from 'node:net';
import { passwordSignIn, registerUser, SYSTEM_META } from '@keyledger/core';
import { sql } from 'kysely';
import { OAuth2Server } from 'oauth2-mock-server';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createApp } from '../app.ts';
import { validateNext } from '../oauth/next.ts';
import { configureOauth } from '../oauth/providers.ts';
import { createTestDeps, type TestDeps } from '../testing.ts';

/** OAuth / OpenID Connect against a real provider on loopback (oauth2-mock-server), through the whole dance. */

type Claims = Record<string, unknown>;
type Token = { header: Record<string, unknown>; payload: Claims };

let provider: OAuth2Server;
let silent: Server;
const sockets: Socket[] = [];
let silentIssuer: string;
let deps: TestDeps;
let app: ReturnType<typeof createApp>;
/** Per test: what the next ID token says, and how the token endpoint's answer is changed. */
let claims: Claims;
let tamper: ((token: Token) => void) | null;
const seen: string[] = [];

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

beforeAll(async () => {
  provider = new OAuth2Server();
  await provider.issuer.keys.generate('RS256');
  await provider.start(0, '127.0.0.1');
  provider.service.on('beforeTokenSigning', (token: Token) => {
    // Times on the server's (manual) clock, which is what the ID token is checked against.
    const now = Math.floor(deps.clock.now().getTime() / 1000);
    Object.assign(token.payload, { iat: now, nbf: now - 10, exp: now + 3600 }, claims);
    tamper?.(token);
  });
  provider.service.on('beforeResponse', async (response: { body: Record<string, unknown> }) => {
    if (typeof response.body.id_token === 'string') seen.push(response.body.id_token);
    if (typeof response.body.access_token === 'string') seen.push(response.body.access_token);
  });
  // A provider that accepts connections and never answers.
  silent = createServer((socket) => {
    sockets.push(socket);
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const address = silent.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  silentIssuer = `http://127.0.0.1:${address.port}`;
  deps = await createTestDeps({
    KEYLEDGER_SIGNUP: 'open',
    KEYLEDGER_OIDC_PROVIDERS: JSON.stringify([
      {
        id: 'mock',
        name: 'Mock ID',
        issuer: provider.issuer.url,
        client_id: 'keyledger-test',
        client_secret: 's3cret',
      },
      { id: 'silent', name: 'Silent', issuer: silentIssuer, client_id: 'x', client_secret: 'y' },
    ]),
  });
  configureOauth(deps, { timeoutMs: 500 });
  app = createApp(deps);
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((resolve) => silent.close(resolve));
  await provider.stop();
  await deps.close();
});

beforeEach(() => {
  claims = {
    sub: `sub-${Math.random().toString(36).slice(2)}`,
    email: `${Math.random().toString(36).slice(2)}@example.test`,
    email_verified: true,
  };
  tamper = null;
});

/** A browser: a cookie jar and `redirect: manual`, through the Hono app and the provider. */
class Browser {
  readonly jar = new Map<string, string>();
  readonly codes: string[] = [];
  async get(url: string): Promise<Response> {
    const u = new URL(url, 'http://localhost:3000');
    if (u.origin === 'http://localhost:3000') {
      const cookie = [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
      const res = await app.request(
        u.pathname + u.search,
        { headers: cookie ? { cookie } : {} },
        { incoming: { socket: { remoteAddress: '127.0.0.1' } } },
      );
      for (const line of res.headers.getSetCookie()) {
        const [pair, ...attrs] = line.split(';');
        const [name, value] = (pair as string).split('=') as [string, string];
        if (attrs.some((a) => /max-age=0\b/i.test(a.trim())) || value === '') this.jar.delete(name.trim());
        else this.jar.set(name.trim(), value);
      }
      return res;
    }
    return fetch(u, { redirect: 'manual' });
  }
  /** Login, the provider's authorize page, and the callback URL it sends the browser to (not yet followed). */
  async toCallback(next?: string, id = 'mock', link = false): Promise<URL> {
    const query = new URLSearchParams();
    if (next !== undefined) query.set('next', next);
    if (link) query.set('link', '1');
    const login = await this.get(`/v1/auth/oauth/${id}/login${query.size > 0 ? `?${query}` : ''}`);
    expect(login.status).toBe(302);
    const authorize = new URL(login.headers.get('location') as string);
    expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorize.searchParams.get('nonce')).toMatch(/.{20,}/);
    expect(authorize.searchParams.get('state')).toMatch(/.{20,}/);
    const back = await this.get(authorize.toString());
    expect(back.status).toBe(302);
    const callback = new URL(back.headers.get('location') as string);
    const code = callback.searchParams.get('code');
    if (code) this.codes.push(code);
    return callback;
  }
  async callback(url: URL): Promise<Response> {
    return this.get(url.pathname + url.search);
  }
}

const failures = async () =>
  (
    await sql<{
      data: { provider: string; reason: string };
    }>`select data from events where type = 'oauth.signin_failed' order by seq`.execute(deps.t.db)
  ).rows.map((r) => r.data);

async function expectRefusal(res: Response, reason: string, before: number) {
  expect(res.status).toBe(302);
  expect(res.headers.get('location')).toBe(`/login?error=${reason}`);
  const after = await failures();
  expect(after.slice(before)).toEqual([{ provider: expect.any(String), reason }]);
}

async function expectNoSecretsInLog(browser: Browser) {
  const { rows } = await sql<{ j: string }>`select (data::text || meta::text) as j from events`.execute(deps.t.db);
  const log = rows.map((r) => r.j).join('\n');
  for (const s of [...browser.codes, ...seen, ...browser.jar.values()]) expect(log).not.toContain(s);
}

describe('GET /v1/auth/oauth/providers', () => {
  it('lists the configured providers with their login URLs', async () => {
    const res = await new Browser().get('/v1/auth/oauth/providers');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      data: [
        { id: 'mock', name: 'Mock ID', type: 'oidc', login_url: 'http://localhost:3000/v1/auth/oauth/mock/login' },
        { id: 'silent', name: 'Silent', type: 'oidc', login_url: 'http://localhost:3000/v1/auth/oauth/silent/login' },
      ],
      next_cursor: null,
    });
  });
});

describe('the redirect dance', () => {
  it('signs a new person up, sets the session cookie and lands on next', async () => {
    const browser = new Browser();
    const callback = await browser.toCallback('/settings?tab=keys');
    const res = await browser.callback(callback);
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/settings?tab=keys');
    expect(browser.jar.get('keyledger_session')).toMatch(/^kl_ses_/);
    const me = await browser.get('/v1/users/me');
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({ email: claims.email, auth: { method: 'session' } });
    const account = await deps.t.db
      .selectFrom('oauth_accounts')
      .selectAll()
      .where('subject', '=', String(claims.sub))
      .executeTakeFirstOrThrow();
    expect(account).toMatchObject({ issuer: provider.issuer.url, provider: 'mock', email_verified: true });
    // A second sign-in by the same subject reaches the same user.
    const again = new Browser();
    expect((await again.callback(await again.toCallback())).headers.get('location')).toBe('/');
    const me2 = await again.get('/v1/users/me');
    expect(((await me2.json()) as { id: string }).id).toBe(account.user_id);
    await expectNoSecretsInLog(browser);
    await expectNoSecretsInLog(again);
  });

  it('refuses a next that leaves the origin with 400 invalid_next', async () => {
    for (const next of [
      '//evil.example',
      '/\\evil.example',
      'https://evil.example',
      'javascript:alert(1)',
      '/%2F/evil.example',
      '/%252F%252Fevil',
      '/%09/evil.example',
      ' /x',
    ]) {
      const res = await new Browser().get(`/v1/auth/oauth/mock/login?next=${encodeURIComponent(next)}`);
      expect(res.status, next).toBe(400);
      expect(((await res.json()) as { code: string }).code).toBe('invalid_next');
    }
    expect(validateNext('/a/b?c=d')).toBe('/a/b?c=d');
    expect(validateNext(undefined)).toBe('/');
  });
});

describe('refusals: 302 /login?error=<code> and one oauth.signin_failed', () => {
  it('a callback without the state cookie is state_mismatch', async () => {
    const browser = new Browser();
    const callback = await browser.toCallback();
    browser.jar.delete('keyledger_oauth');
    const before = (await failures()).length;
    await expectRefusal(await browser.callback(callback), 'state_mismatch', before);
    await expectNoSecretsInLog(browser);
  });

  it('a mismatched state is state_mismatch', async () => {
    const browser = new Browser();
    const callback = await browser.toCallback();
    callback.searchParams.set('state', 'forged-state-value-000000000000');
    const before = (await failures()).length;
    await expectRefusal(await browser.callback(callback), 'state_mismatch', before);
  });

  it('a missing state is state_mismatch', async () => {
    const browser = new Browser();
    const callback = await browser.toCallback();
    callback.searchParams.delete('state');
    const before = (await failures()).length;
    await expectRefusal(await browser.callback(callback), 'state_mismatch', before);
  });

  it('a replayed callback is state_mismatch (state is single use)', async () => {
    const browser = new Browser();
    const callback = await browser.toCallback();
    const cookie = browser.jar.get('keyledger_oauth') as string;
    expect((await browser.callback(callback)).headers.get('location')).toBe('/');
    browser.jar.set('keyledger_oauth', cookie);
    const before = (await failures()).length;
    await expectRefusal(await browser.callback(callback), 'state_mismatch', before);
    await expectNoSecretsInLog(browser);
  });

  const idTokenCases: [string, (t: Token) => void][] = [
    [
      'a wrong aud',
      (t) => {
        t.payload.aud = 'someone-else';
      },
    ],
    [
      'a wrong iss',
      (t) => {
        t.payload.iss = 'http://127.0.0.1:1/other';
      },
    ],
    [
      'a wrong nonce',
      (t) => {
        t.payload.nonce = 'not-the-nonce';
      },
    ],
    [
      'no nonce',
      (t) => {
        delete t.payload.nonce;
      },
    ],
    [
      'an expired ID token',
      (t) => {
        const now = Math.floor(deps.clock.now().getTime() / 1000);
        t.payload.iat = now - 7200;
        t.payload.nbf = now - 7200;
        t.payload.exp = now - 3600;
      },
    ],
  ];
  for (const [name, change] of idTokenCases) {
    it(`${name} is id_token_invalid`, async () => {
      tamper = change;
      const browser = new Browser();
      const callback = await browser.toCallback();
      const before = (await failures()).length;
      await expectRefusal(await browser.callback(callback), 'id_token_invalid', before);
      expect(browser.jar.has('keyledger_session')).toBe(false);
    });
  }

  it('alg none is id_token_invalid', async () => {
    provider.service.once('beforeResponse', (response: { body: Record<string, unknown> }) => {
      const [, payload] = (response.body.id_token as string).split('.');
      response.body.id_token = `${b64({ alg: 'none', typ: 'JWT' })}.${payload}.`;
    });
    const browser = new Browser();
    const callback = await browser.toCallback();
    const before = (await failures()).length;
    await expectRefusal(await browser.callback(callback), 'id_token_invalid', before);
  });

  it('an unknown kid is id_token_invalid', async () => {
    tamper = (t) => {
      t.header.kid = 'no-such-key';
    };
    const browser = new Browser();
    const callback = await browser.toCallback();
    const before = (await failures()).length;
    await expectRefusal(await browser.callback(callback), 'id_token_invalid', before);
  });

  it('an unverified email matching an existing account is account_exists_unverified', async () => {
    const address = `taken-${Math.random().toString(36).slice(2)}@example.test`;
    await registerUser(deps.core, SYSTEM_META, { email: address, name: null, role: 'member', method: 'admin' });
    claims = { ...claims, email: address, email_verified: false };
    const browser = new Browser();
    const callback = await browser.toCallback();
    const before = (await failures()).length;
    await expectRefusal(await browser.callback(callback), 'account_exists_unverified', before);
    expect(browser.jar.has('keyledger_session')).toBe(false);
  });

  it('a verified email matching an existing account links it (oauth.account_linked) and signs that user in', async () => {
    const address = `linked-${Math.random().toString(36).slice(2)}@example.test`;
    const existing = await registerUser(deps.core, SYSTEM_META, {
      email: address,
      name: 'Existing',
      role: 'member',
      method: 'admin',
    });
    claims = { ...claims, email: address.toUpperCase(), email_verified: true };
    const browser = new Browser();
    const res = await browser.callback(await browser.toCallback());
    expect(res.headers.get('location')).toBe('/');
    const me = await browser.get('/v1/users/me');
    expect(((await me.json()) as { id: string }).id).toBe(existing.id);
    const linked = await sql<{ data: Record<string, unknown> }>`
      select data from events where type = 'oauth.account_linked' and data->>'user_id' = ${existing.id}`.execute(
      deps.t.db,
    );
    expect(linked.rows.map((r) => r.data)).toEqual([
      expect.objectContaining({ user_id: existing.id, provider: 'mock', subject: claims.sub, email_verified: true }),
    ]);
    // No second user was made for the address.
    const users = await deps.t.db.selectFrom('users').select('id').where('email', '=', address).execute();
    expect(users).toHaveLength(1);
  });

  it('a signed-in person links an identity from their account page (any email), and nobody else can take it', async () => {
    const owner = await registerUser(deps.core, SYSTEM_META, {
      email: `owner-${Math.random().toString(36).slice(2)}@example.test`,
      name: null,
      role: 'member',
      method: 'admin',
      password: 'violet-otter-lantern-42',
    });
    const signIn = async (email: string) =>
      (
        await passwordSignIn(deps.core, SYSTEM_META, {
          email,
          password: 'violet-otter-lantern-42',
          ip: '127.0.0.1',
          lifetime: 'browser',
        })
      ).token;
    // The provider's address is another one, and not verified: linking by email would refuse it.
    claims = { ...claims, email: 'elsewhere@example.test', email_verified: false };
    const browser = new Browser();
    browser.jar.set('keyledger_session', await signIn(owner.email));
    const res = await browser.callback(await browser.toCallback('/account', 'mock', true));
    expect(res.headers.get('location')).toBe('/account');
    const me = await browser.get('/v1/users/me');
    expect(((await me.json()) as { id: string }).id).toBe(owner.id);
    const account = await deps.t.db
      .selectFrom('oauth_accounts')
      .select('user_id')
      .where('subject', '=', String(claims.sub))
      .executeTakeFirstOrThrow();
    expect(account.user_id).toBe(owner.id);
    // The account page lists it over tRPC.
    const linked = await browser.get('/trpc/auth.linkedAccounts');
    expect(((await linked.json()) as { result: { data: unknown } }).result.data).toEqual([
      { provider: 'mock', email: 'elsewhere@example.test', email_verified: false, linked_at: expect.any(String) },
    ]);

    // Signing in later with that identity reaches the owner.
    const later = new Browser();
    await later.callback(await later.toCallback());
    expect(((await (await later.get('/v1/users/me')).json()) as { id: string }).id).toBe(owner.id);

    // Someone else trying to link the same identity is refused.
    const other = await registerUser(deps.core, SYSTEM_META, {
      email: `other-${Math.random().toString(36).slice(2)}@example.test`,
      name: null,
      role: 'member',
      method: 'admin',
      password: 'violet-otter-lantern-42',
    });
    const thief = new Browser();
    thief.jar.set('keyledger_session', await signIn(other.email));
    const callback = await thief.toCallback(undefined, 'mock', true);
    const before = (await failures()).length;
    await expectRefusal(await thief.callback(callback), 'access_denied', before);

    // Linking needs a cookie session.
    const anonymous = await new Browser().get('/v1/auth/oauth/mock/login?link=1');
    expect(anonymous.status).toBe(401);
  });

  it('an unknown person under invite-only sign-up is signup_closed, and no user is made', async () => {
    const open = app;
    app = createApp({ ...deps, config: { ...deps.config, signup: 'invite' } });
    try {
      const browser = new Browser();
      const callback = await browser.toCallback();
      const before = (await failures()).length;
      await expectRefusal(await browser.callback(callback), 'signup_closed', before);
      expect(browser.jar.has('keyledger_session')).toBe(false);
      const users = await deps.t.db
        .selectFrom('users')
        .select('id')
        .where('email', '=', String(claims.email))
        .execute();
      expect(users).toEqual([]);
    } finally {
      app = open;
    }
  });

  it('the provider answering error=access_denied is access_denied', async () => {
    const browser = new Browser();
    const callback = await browser.toCallback();
    callback.searchParams.delete('code');
    callback.searchParams.set('error', 'access_denied');
    const before = (await failures()).length;
    await expectRefusal(await browser.callback(callback), 'access_denied', before);
  });

  it('a provider that never answers is provider_unavailable (timeout injected)', async () => {
    const before = (await failures()).length;
    const started = Date.now();
    const res = await new Browser().get('/v1/auth/oauth/silent/login');
    expect(Date.now() - started).toBeLessThan(5000);
    await expectRefusal(res, 'provider_unavailable', before);
  });

  it('an unknown provider is 404', async () => {
    expect((await new Browser().get('/v1/auth/oauth/nope/login')).status).toBe(404);
  });
});
