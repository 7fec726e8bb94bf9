import { createSetupToken } from '@keyledger/core';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApp } from '../app.ts';
import { createTestDeps, TEST_PASSWORD, type TestDeps } from '../testing.ts';

let deps: TestDeps;
beforeEach(async () => {
  deps = await createTestDeps();
});
afterEach(async () => {
  await deps.close();
});

const post = (app: ReturnType<typeof createApp>, fields: Record<string, string>, origin = 'http://localhost:3000') =>
  app.request('/setup', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin },
    body: new URLSearchParams(fields).toString(),
  });

describe('the first-admin setup page', () => {
  it('shows a form, creates the admin once, sets the session cookie and goes home', async () => {
    const token = (await createSetupToken(deps.core)) as string;
    const app = createApp(deps);
    const form = await app.request(`/setup?token=${token}`);
    expect(form.status).toBe(200);
    expect(await form.text()).toContain(`value="${token}"`);
    const done = await post(app, { token, email: 'root@example.com', name: 'Root', password: TEST_PASSWORD });
    expect(done.status).toBe(303);
    expect(done.headers.get('location')).toBe('/');
    const cookie = /keyledger_session=([^;]+)/.exec(done.headers.get('set-cookie') ?? '')?.[1] as string;
    const me = await app.request('/v1/users/me', { headers: { cookie: `keyledger_session=${cookie}` } });
    expect(await me.json()).toMatchObject({ email: 'root@example.com', role: 'admin' });
    const again = await post(app, { token, email: 'x@example.com', password: TEST_PASSWORD });
    expect(again.status).toBe(401);
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from users`.execute(deps.t.db);
    expect(rows[0]?.n).toBe(1);
  });

  it('refuses a cross-site post, a weak password (keeping the form) and a malformed link', async () => {
    const token = (await createSetupToken(deps.core)) as string;
    const app = createApp(deps);
    expect(
      (await post(app, { token, email: 'root@example.com', password: TEST_PASSWORD }, 'https://evil.example')).status,
    ).toBe(403);
    const weak = await post(app, { token, email: 'root@example.com', password: 'password1' });
    expect(weak.status).toBe(400);
    expect(await weak.text()).toContain('too common');
    expect((await app.request('/setup?token=<script>')).status).toBe(400);
  });
});
