import { createSession, registerUser, SYSTEM_META } from '@keyledger/core';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApp } from '../app.ts';
import { createTestDeps, type TestDeps } from '../testing.ts';

let deps: TestDeps;
beforeEach(async () => {
  deps = await createTestDeps();
});
afterEach(async () => {
  await deps.close();
});

const DAY = 24 * 3600_000;

describe('browser sessions slide', () => {
  it('keep their token and get a new expiry and cookie once half of the 30 days is used', async () => {
    const user = await registerUser(deps.core, SYSTEM_META, {
      email: 'b@example.com',
      name: null,
      role: 'member',
      method: 'admin',
    });
    const session = await createSession(deps.core, SYSTEM_META, {
      userId: user.id,
      method: 'password',
      lifetime: 'browser',
    });
    const app = createApp(deps);
    const get = () => app.request('/v1/users/me', { headers: { cookie: `keyledger_session=${session.token}` } });

    deps.clock.advance(10 * DAY);
    const early = await get();
    expect(early.status).toBe(200);
    expect(early.headers.get('set-cookie')).toBeNull();

    deps.clock.advance(6 * DAY); // 16 days in: less than half of the lifetime is left
    const late = await get();
    expect(late.status).toBe(200);
    const cookie = late.headers.get('set-cookie') ?? '';
    expect(cookie).toContain(`keyledger_session=${session.token}`);
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Lax/i);
    const { rows } = await sql<{
      expires_at: string;
    }>`select data->>'expires_at' as expires_at from events where type = 'session.extended'`.execute(deps.t.db);
    expect(rows).toEqual([{ expires_at: new Date(deps.clock.now().getTime() + 30 * DAY).toISOString() }]);

    deps.clock.advance(20 * DAY); // past the original 30 days, inside the extended ones
    expect((await get()).status).toBe(200);
  });

  it('never slide a Bearer session', async () => {
    const user = await registerUser(deps.core, SYSTEM_META, {
      email: 'c@example.com',
      name: null,
      role: 'member',
      method: 'admin',
    });
    const session = await createSession(deps.core, SYSTEM_META, {
      userId: user.id,
      method: 'password',
      lifetime: 'browser',
    });
    deps.clock.advance(16 * DAY);
    const res = await createApp(deps).request('/v1/users/me', {
      headers: { authorization: `Bearer ${session.token}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('set-cookie')).toBeNull();
  });
});
