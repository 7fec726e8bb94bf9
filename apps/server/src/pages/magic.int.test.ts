import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApp } from '../app.ts';
import { createTestDeps, type TestDeps } from '../testing.ts';

let deps: TestDeps;
beforeEach(async () => {
  deps = await createTestDeps({ KEYLEDGER_SIGNUP: 'open' });
});
afterEach(async () => {
  await deps.close();
});

const ORIGIN = 'http://localhost:3000';
const postJson = (app: ReturnType<typeof createApp>, path: string, body: unknown) =>
  app.request(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const postForm = (app: ReturnType<typeof createApp>, fields: Record<string, string>, origin = ORIGIN) =>
  app.request('/auth/magic', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin },
    body: new URLSearchParams(fields).toString(),
  });

async function lastLink(): Promise<URL> {
  const rows = await deps.t.db.selectFrom('outbox').select('payload').orderBy('id', 'desc').execute();
  const payload = rows[0]?.payload;
  const mail = (typeof payload === 'string' ? JSON.parse(payload) : payload) as { text: string };
  return new URL((mail.text.match(/https?:\/\/\S+/) ?? [''])[0]);
}

describe('magic links over REST and the confirm page', () => {
  it('request, confirm page (consumes nothing), form post → cookie and 303 to next; replay → 400 page', async () => {
    const app = createApp(deps);
    const sent = await postJson(app, '/v1/auth/magic-link', { email: 'new@example.com', next: '/keys' });
    expect(sent.status).toBe(200);
    expect(await sent.json()).toEqual({ status: 'sent' });
    const link = await lastLink();
    expect(link.origin).toBe(ORIGIN);
    const code = link.searchParams.get('code') as string;
    const email = link.searchParams.get('email') as string;
    const confirm = await app.request(`${link.pathname}${link.search}`);
    expect(confirm.status).toBe(200);
    expect(await confirm.text()).toContain('<form method="post" action="/auth/magic">');
    expect((await deps.t.db.selectFrom('magic_links').select('used_at').executeTakeFirstOrThrow()).used_at).toBeNull();

    expect((await postForm(app, { email, code }, 'https://evil.example')).status).toBe(403);
    const done = await postForm(app, { email, code });
    expect(done.status).toBe(303);
    expect(done.headers.get('location')).toBe('/keys');
    const cookie = /keyledger_session=([^;]+)/.exec(done.headers.get('set-cookie') ?? '')?.[1] as string;
    const me = await app.request('/v1/users/me', { headers: { cookie: `keyledger_session=${cookie}` } });
    expect(await me.json()).toMatchObject({ email: 'new@example.com', role: 'member' });

    const again = await postForm(app, { email, code });
    expect(again.status).toBe(400);
    expect(await again.text()).toContain('new link');
    const { rows } = await sql<{ j: string }>`select (data::text || meta::text) as j from events`.execute(deps.t.db);
    for (const r of rows) {
      expect(r.j).not.toContain(code);
      expect(r.j).not.toContain(cookie);
    }
  });

  it('verify for API clients: 200 token once, then 401 invalid_link; bad next is 400 invalid_next', async () => {
    const app = createApp(deps);
    expect((await postJson(app, '/v1/auth/magic-link', { email: 'ada@example.com' })).status).toBe(200);
    const link = await lastLink();
    const body = { email: 'ada@example.com', code: link.searchParams.get('code') };
    const ok = await postJson(app, '/v1/auth/magic-link/verify', body);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ token_type: 'bearer', access_token: expect.stringMatching(/^kl_ses_/) });
    const replay = await postJson(app, '/v1/auth/magic-link/verify', body);
    expect(replay.status).toBe(401);
    expect(await replay.json()).toMatchObject({ code: 'invalid_link' });
    for (const next of ['//evil.example', '/\\evil.example', 'javascript:alert(1)', ['/a']]) {
      const r = await postJson(app, '/v1/auth/magic-link', { email: 'ada@example.com', next });
      expect(r.status).toBe(400);
      expect(await r.json()).toMatchObject({ code: 'invalid_next' });
    }
  });

  it('over the per-requester limit: 429 with Retry-After', async () => {
    const app = createApp(deps);
    for (let i = 0; i < 10; i++) {
      expect((await postJson(app, '/v1/auth/magic-link', { email: `u${i}@example.com` })).status).toBe(200);
    }
    const over = await postJson(app, '/v1/auth/magic-link', { email: 'u10@example.com' });
    expect(over.status).toBe(429);
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});
