import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { keyFor, signedIn, useRestKit } from '../../test/rest-kit.ts';

/**
 * DESIGN §4: verification never writes to the database on the hot path; last_used_at (keys) and last_seen_at / ip
 * (sessions) are held in memory and written in one batch by the authenticator's flush.
 */

const kit = useRestKit({ KEYLEDGER_API_RATE_LIMIT: '100000' });

/** Every row of every table of the test database, as text: a write anywhere shows up as a difference. */
async function snapshot(): Promise<Record<string, string[]>> {
  const { rows: tables } = await sql<{ name: string }>`
    select table_name as name from information_schema.tables
    where table_schema = current_schema() and table_type = 'BASE TABLE' order by table_name`.execute(kit.deps.core.db);
  const out: Record<string, string[]> = {};
  for (const { name } of tables) {
    const { rows } = await sql<{ r: string }>`select t::text as r from ${sql.table(name)} t`.execute(kit.deps.core.db);
    out[name] = rows.map((x) => x.r).sort();
  }
  return out;
}

describe('last use of keys and sessions', () => {
  it('is not written by authenticated requests, only by flushActivity(), and then shows the latest request', async () => {
    const u = await signedIn(kit);
    const key = await keyFor(kit, u.token, { scopes: ['profile:read', 'keys:read', 'sessions:read'] });
    // The fixtures authenticated once through the core; write that out so the baseline holds no pending use.
    await kit.deps.authenticator.flushActivity();
    await kit.deps.rollup.flush(true);
    const before = await snapshot();
    expect(Object.keys(before)).toEqual(expect.arrayContaining(['events', 'api_key_usage', 'session_activity']));
    expect(before.api_key_usage).toEqual([]);
    const sessionRowBefore = before.session_activity;
    expect(sessionRowBefore).toHaveLength(1);

    // Many requests with each credential, from their own address and user agent. The clock moves past the
    // authenticator's 1 s cache now and then, so both the cached path and the lookup path are taken.
    const keyClient = { ip: '198.51.100.20', headers: { 'user-agent': 'KeyClient/1.0' } };
    const sessionClient = { ip: '203.0.113.30', headers: { 'user-agent': 'SessionClient/2.0' } };
    let lastKeyUse = '';
    let lastSessionUse = '';
    for (let round = 0; round < 6; round++) {
      kit.deps.clock.advance(1500);
      for (let i = 0; i < 5; i++) {
        for (const path of ['/v1/users/me', '/v1/api-keys', `/v1/api-keys/${key.id}`, '/v1/sessions']) {
          const viaKey = await kit.call(path, { apiKey: key.key, ...keyClient });
          expect(viaKey.status, `${path} with the key`).toBe(200);
          lastKeyUse = kit.deps.clock.now().toISOString();
          const viaSession = await kit.call(path, { token: u.token, ...sessionClient });
          expect(viaSession.status, `${path} with the session`).toBe(200);
          lastSessionUse = kit.deps.clock.now().toISOString();
        }
        kit.deps.clock.advance(100);
      }
    }
    // One last session request from another device of the same session: the latest request is what counts.
    kit.deps.clock.advance(250);
    const lastDevice = { ip: '2001:db8::77', headers: { 'user-agent': 'SessionClient/3.0 (tablet)' } };
    expect((await kit.call('/v1/users/me', { token: u.token, ...lastDevice })).status).toBe(200);
    lastSessionUse = kit.deps.clock.now().toISOString();

    // 241 authenticated requests and not one write: no event, no usage row, nothing changed anywhere.
    await kit.deps.rollup.flush(true);
    expect(await snapshot()).toEqual(before);
    // Over the API too, nothing shows yet.
    const keyBefore = await kit.call(`/v1/api-keys/${key.id}`, { apiKey: key.key, ...keyClient });
    expect(keyBefore.body.last_used_at).toBeNull();
    const listedBefore = await kit.call('/v1/sessions', { apiKey: key.key, ...keyClient });
    const sessionBefore = listedBefore.body.data.find((s: { id: string }) => s.id === u.sessionId);
    expect(sessionBefore.ip).not.toBe(lastDevice.ip);
    expect(sessionBefore.last_seen_at).not.toBe(lastSessionUse);
    lastKeyUse = kit.deps.clock.now().toISOString();

    await kit.deps.authenticator.flushActivity();

    // The check requests below come later and are not flushed: what shows is the batch just written.
    kit.deps.clock.advance(5000);
    const keyAfter = await kit.call(`/v1/api-keys/${key.id}`, { token: u.token, ip: '192.0.2.99' });
    expect(keyAfter.status).toBe(200);
    expect(keyAfter.body.last_used_at).toBe(lastKeyUse);
    const listed = await kit.call('/v1/sessions', { token: u.token, ip: '192.0.2.99' });
    const session = listed.body.data.find((s: { id: string }) => s.id === u.sessionId);
    expect(session).toMatchObject({
      current: true,
      last_seen_at: lastSessionUse,
      ip: lastDevice.ip,
      user_agent: lastDevice.headers['user-agent'],
    });

    // The batch is one row per key and per session, not one per request; the events log is untouched by it.
    const after = await snapshot();
    expect(after.api_key_usage).toHaveLength(1);
    expect(after.session_activity).toHaveLength(1);
    expect(after.events).toEqual(before.events);
  });

  it('a flush with nothing new writes nothing', async () => {
    const u = await signedIn(kit);
    const key = await keyFor(kit, u.token, { scopes: ['profile:read', 'keys:read'] });
    await kit.deps.authenticator.flushActivity();
    kit.deps.clock.advance(2000);
    expect((await kit.call('/v1/users/me', { apiKey: key.key })).status).toBe(200);
    const used = kit.deps.clock.now().toISOString();
    await kit.deps.authenticator.flushActivity();
    const before = await snapshot();
    await kit.deps.authenticator.flushActivity();
    expect(await snapshot()).toEqual(before);
    const shown = await kit.call(`/v1/api-keys/${key.id}`, { token: u.token });
    expect(shown.body.last_used_at).toBe(used);
  });
});
