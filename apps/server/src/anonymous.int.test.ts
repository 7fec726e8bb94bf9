import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAnonymousMode, LOCAL_USER_EMAIL } from './anonymous.ts';
import { createApp } from './app.ts';
import { createTestDeps, type TestDeps } from './testing.ts';

let deps: TestDeps;
beforeEach(async () => {
  deps = await createTestDeps({ KEYLEDGER_ANONYMOUS: '1' });
});
afterEach(async () => {
  await deps.close();
});

const from = (ip: string) => ({ incoming: { socket: { remoteAddress: ip } } });

describe('anonymous mode', () => {
  it('acts as the built-in local admin for loopback requests without a credential, and logs actions as that user', async () => {
    const app = createApp({ ...deps, anonymous: await createAnonymousMode(deps.core) });
    const me = await app.request('/v1/users/me', { headers: { host: 'localhost:3000' } }, from('127.0.0.1'));
    expect(me.status).toBe(200);
    const body = (await me.json()) as { id: string; email: string; role: string };
    expect(body).toMatchObject({ email: LOCAL_USER_EMAIL, role: 'admin' });
    const created = await app.request(
      '/v1/api-keys',
      {
        method: 'POST',
        headers: { host: '127.0.0.1:3000', 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'local' }),
      },
      from('::1'),
    );
    expect(created.status).toBe(201);
    const { rows } = await sql<{
      actor: string;
    }>`select meta->'actor'->>'id' as actor from events where type = 'api_key.created'`.execute(deps.t.db);
    expect(rows).toEqual([{ actor: body.id }]);
  });

  it('refuses non-loopback peers and non-loopback Host names (DNS rebinding)', async () => {
    const app = createApp({ ...deps, anonymous: await createAnonymousMode(deps.core) });
    expect((await app.request('/v1/users/me', { headers: { host: 'localhost:3000' } }, from('192.0.2.1'))).status).toBe(
      403,
    );
    expect(
      (await app.request('/v1/users/me', { headers: { host: 'evil.example:3000' } }, from('127.0.0.1'))).status,
    ).toBe(403);
  });

  it('refuses a mutation a browser sends from another site or port (the implicit user is ambient, like a cookie)', async () => {
    const app = createApp({ ...deps, anonymous: await createAnonymousMode(deps.core) });
    const signout = (headers: Record<string, string>) =>
      app.request(
        '/v1/auth/signout',
        { method: 'POST', headers: { host: 'localhost:3000', ...headers } },
        from('127.0.0.1'),
      );
    const crossSite = await signout({ origin: 'https://evil.example' });
    expect(crossSite.status).toBe(403);
    expect(((await crossSite.json()) as { code: string }).code).toBe('csrf_rejected');
    expect((await signout({ 'sec-fetch-site': 'same-site' })).status).toBe(403);
    expect((await signout({ origin: 'http://localhost:8080', 'sec-fetch-site': 'same-site' })).status).toBe(403);
    const tokens = await sql<{
      n: number;
    }>`select count(*)::int as n from events where type = 'session.revoked'`.execute(deps.t.db);
    expect(tokens.rows[0]?.n).toBe(0);
    const denied = await sql<{
      reason: string;
    }>`select data->>'reason' as reason from events where type = 'access.denied'`.execute(deps.t.db);
    expect(denied.rows[0]?.reason).toBe('csrf');
    // From the UI's own origin, or from a program that names no origin, it works.
    const own = await app.request(
      '/v1/api-keys',
      {
        method: 'POST',
        headers: {
          host: 'localhost:3000',
          origin: deps.config.publicUrl.origin,
          'sec-fetch-site': 'same-origin',
          'content-type': 'application/json',
        },
        body: '{"name":"ui"}',
      },
      from('127.0.0.1'),
    );
    expect(own.status).toBe(201);
    // Opened at the loopback address the server prints: that origin is its own too.
    const printed = await app.request(
      '/v1/api-keys',
      {
        method: 'POST',
        headers: {
          host: '127.0.0.1:3000',
          origin: 'http://127.0.0.1:3000',
          'sec-fetch-site': 'same-origin',
          'content-type': 'application/json',
        },
        body: '{"name":"printed"}',
      },
      from('127.0.0.1'),
    );
    expect(printed.status).toBe(201);
    // But not another port of it.
    expect((await signout({ host: '127.0.0.1:3000', origin: 'http://127.0.0.1:8080' })).status).toBe(403);
    expect((await signout({})).status).toBe(204);
  });

  it('reuses one local user across restarts', async () => {
    await createAnonymousMode(deps.core);
    await createAnonymousMode(deps.core);
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from users`.execute(deps.t.db);
    expect(rows[0]?.n).toBe(1);
  });
});
