import { createTestDb, type TestDb } from '@keyledger/db/testing';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApiKey, revokeApiKey, rotateApiKey } from '../src/api-keys/service.ts';
import { Authenticator } from '../src/auth/authenticator.ts';
import type { Principal } from '../src/auth/principal.ts';
import { catalogue } from '../src/catalogue.ts';
import { ManualClock } from '../src/clock.ts';
import { DomainError } from '../src/errors.ts';
import type { CoreContext } from '../src/event-store/command.ts';
import { EventStore } from '../src/event-store/event-store.ts';
import { checkProjections } from '../src/event-store/projections.ts';
import { verifyChain } from '../src/event-store/verify.ts';
import { projections } from '../src/projections.ts';
import { refreshSession, revokeOtherSessions, revokeSession } from '../src/sessions/service.ts';
import { passwordSignIn, ThrottledError } from '../src/sessions/signin.ts';
import { completeSetup, createSetupToken } from '../src/users/bootstrap.ts';
import { changeRole, disableUser, registerUser, setPassword } from '../src/users/service.ts';
import { meta } from './helpers.ts';

let t: TestDb;
let ctx: CoreContext;
let clock: ManualClock;
let auth: Authenticator;
const secrets: string[] = [];
const PASSWORD = 'violet-otter-lantern-42';

beforeEach(async () => {
  t = await createTestDb();
  clock = new ManualClock('2026-11-22T14:00:00.000Z');
  ctx = { db: t.db, store: new EventStore({ db: t.db, catalogue, projections }), clock };
  auth = new Authenticator({ db: t.db, clock, cacheTtlMs: 1000 });
  await auth.start(ctx.store, t);
  secrets.length = 0;
  secrets.push(PASSWORD);
});
afterEach(async () => {
  await auth.stop();
  // No password, token or key this suite handled may appear anywhere in the log.
  const { rows } = await sql<{ j: string }>`select (data::text || meta::text) as j from events`.execute(t.db);
  const log = rows.map((r) => r.j).join('\n');
  for (const s of secrets) expect(log).not.toContain(s);
  expect((await verifyChain(t.db)).ok).toBe(true);
  expect((await checkProjections(t.db, projections)).ok).toBe(true);
  await t.close();
});

async function signedIn(email = 'ada@example.com', role: 'admin' | 'member' = 'member') {
  const user = await registerUser(ctx, meta, { email, name: 'Ada', role, method: 'admin', password: PASSWORD });
  const session = await passwordSignIn(ctx, meta, { email, password: PASSWORD, ip: '203.0.113.7', lifetime: 'api' });
  secrets.push(session.token);
  const result = await auth.authenticate(session.token, { ip: '203.0.113.7' });
  if (!result.ok) throw new Error(`sign-in token refused: ${result.reason}`);
  return { user, session, principal: result.principal };
}

const types = async () =>
  (await sql<{ type: string }>`select type from events order by seq`.execute(t.db)).rows.map((r) => r.type);

describe('password sign-in', () => {
  it('registers, signs in and authenticates with the role’s scopes', async () => {
    const { principal, session } = await signedIn();
    expect(principal).toMatchObject({
      kind: 'user',
      auth: 'session',
      email: 'ada@example.com',
      role: 'member',
      sessionId: session.sessionId,
    });
    expect(principal.scopes).not.toContain('users:read');
    expect(await types()).toEqual(['user.registered', 'user.password_set', 'session.created']);
  });

  it('answers an unknown email, a wrong password and a disabled user alike, logging the reason', async () => {
    const { user } = await signedIn();
    const attempt = (email: string, password: string) =>
      passwordSignIn(ctx, meta, { email, password, ip: '198.51.100.1', lifetime: 'api' }).catch((e: unknown) => e);
    const unknown = await attempt('nobody@example.com', PASSWORD);
    const wrong = await attempt('ada@example.com', 'not-the-password');
    await disableUser(ctx, meta, user.id);
    const disabled = await attempt('ada@example.com', PASSWORD);
    for (const e of [unknown, wrong, disabled]) {
      expect(e).toBeInstanceOf(DomainError);
      expect((e as DomainError).message).toBe('Invalid email or password');
    }
    const { rows } = await sql<{
      reason: string;
    }>`select data->>'reason' as reason from events where type = 'signin.failed' order by seq`.execute(t.db);
    expect(rows.map((r) => r.reason)).toEqual(['unknown_user', 'bad_password', 'disabled']);
  });

  it('throttles an address after five consecutive failures, even for the right password, without counting 429s', async () => {
    await signedIn();
    for (let i = 0; i < 5; i++) {
      await expect(
        passwordSignIn(ctx, meta, {
          email: 'ada@example.com',
          password: 'wrong-password',
          ip: '198.51.100.2',
          lifetime: 'api',
        }),
      ).rejects.toThrow('Invalid');
    }
    const throttled = await passwordSignIn(ctx, meta, {
      email: 'ada@example.com',
      password: PASSWORD,
      ip: '198.51.100.2',
      lifetime: 'api',
    }).catch((e: unknown) => e);
    expect(throttled).toBeInstanceOf(ThrottledError);
    expect((throttled as ThrottledError).retryAfterSeconds).toBe(1);
    clock.advance(1000);
    const ok = await passwordSignIn(ctx, meta, {
      email: 'ada@example.com',
      password: PASSWORD,
      ip: '198.51.100.2',
      lifetime: 'api',
    });
    secrets.push(ok.token);
    const { rows } = await sql<{
      n: number;
    }>`select count(*)::int as n from events where type = 'signin.failed' and data->>'reason' = 'throttled'`.execute(
      t.db,
    );
    expect(rows[0]?.n).toBe(1);
  });
});

describe('sessions', () => {
  it('refresh rotates; the old token works 10 s and refreshes to the same successor; later reuse kills the session', async () => {
    const { session } = await signedIn();
    const first = await refreshSession(ctx, meta, session.token);
    const again = await refreshSession(ctx, meta, session.token);
    secrets.push(first.token);
    expect(again.token).toBe(first.token);
    expect(first.token).not.toBe(session.token);
    auth.clearCache();
    expect((await auth.authenticate(session.token, { ip: '1.1.1.1' })).ok).toBe(true);
    clock.advance(10_001);
    auth.clearCache();
    expect(await auth.authenticate(session.token, { ip: '1.1.1.1' })).toMatchObject({ ok: false, reason: 'unknown' });
    await expect(refreshSession(ctx, meta, session.token)).rejects.toMatchObject({ code: 'unauthorized' });
    expect(await auth.authenticate(first.token, { ip: '1.1.1.1' })).toMatchObject({ ok: false, reason: 'revoked' });
    expect((await types()).slice(-2)).toEqual(['session.refresh_rejected', 'session.revoked']);
  });

  it('20 concurrent refreshes of one token leave exactly one live successor', async () => {
    const { session } = await signedIn();
    const results = await Promise.all(Array.from({ length: 20 }, () => refreshSession(ctx, meta, session.token)));
    secrets.push(...results.map((r) => r.token));
    expect(new Set(results.map((r) => r.token)).size).toBe(1);
    const { rows } = await sql<{
      n: number;
    }>`select count(*)::int as n from events where type = 'session.refreshed'`.execute(t.db);
    expect(rows[0]?.n).toBe(1);
  });

  it('refuses to refresh with an API key', async () => {
    const { principal } = await signedIn();
    const key = await createApiKey(ctx, meta, principal, { name: 'ci' });
    secrets.push(key.key);
    await expect(refreshSession(ctx, meta, key.key)).rejects.toMatchObject({
      details: { reason: 'not_a_session_token' },
    });
  });

  it('sign-out kills the token at once; revoking the others keeps the current one', async () => {
    const { session, principal } = await signedIn();
    const other = await passwordSignIn(ctx, meta, {
      email: 'ada@example.com',
      password: PASSWORD,
      ip: '1.1.1.1',
      lifetime: 'browser',
    });
    secrets.push(other.token);
    expect(
      await revokeOtherSessions(ctx, meta, principal.kind === 'user' ? principal.userId : '', session.sessionId),
    ).toBe(1);
    expect(await auth.authenticate(other.token, { ip: '1.1.1.1' })).toMatchObject({ ok: false, reason: 'revoked' });
    await revokeSession(ctx, meta, session.sessionId, 'signout');
    expect(await auth.authenticate(session.token, { ip: '1.1.1.1' })).toMatchObject({ ok: false, reason: 'revoked' });
  });

  it('changing the password revokes the other sessions, stores only a hash, and the new password signs in', async () => {
    const { session, user } = await signedIn();
    const other = await passwordSignIn(ctx, meta, {
      email: 'ada@example.com',
      password: PASSWORD,
      ip: '1.1.1.1',
      lifetime: 'api',
    });
    secrets.push(other.token, 'a-brand-new-passphrase');
    await expect(
      setPassword(ctx, meta, {
        userId: user.id,
        currentSessionId: session.sessionId,
        currentPassword: 'wrong',
        newPassword: 'a-brand-new-passphrase',
      }),
    ).rejects.toMatchObject({ code: 'forbidden' });
    await setPassword(ctx, meta, {
      userId: user.id,
      currentSessionId: session.sessionId,
      currentPassword: PASSWORD,
      newPassword: 'a-brand-new-passphrase',
    });
    expect(await auth.authenticate(other.token, { ip: '1.1.1.1' })).toMatchObject({ ok: false, reason: 'revoked' });
    expect((await auth.authenticate(session.token, { ip: '1.1.1.1' })).ok).toBe(true);
    const again = await passwordSignIn(ctx, meta, {
      email: 'ada@example.com',
      password: 'a-brand-new-passphrase',
      ip: '1.1.1.1',
      lifetime: 'api',
    });
    secrets.push(again.token);
  });
});

describe('API keys', () => {
  it('authenticate with the key’s scopes, refuse a bad checksum before any lookup, and honour the IP allowlist', async () => {
    const { principal } = await signedIn();
    const key = await createApiKey(ctx, meta, principal, {
      name: 'ci',
      scopes: ['keys:read'],
      ipAllowlist: ['10.0.0.0/8', '2001:db8::/32'],
    });
    secrets.push(key.key);
    expect(key.key).toMatch(/^kl_key_/);
    expect(key.start).toBe(key.key.slice(0, 12));
    const ok = await auth.authenticate(key.key, { ip: '10.1.2.3' });
    expect(ok).toMatchObject({ ok: true, principal: { auth: 'api_key', keyId: key.id, scopes: ['keys:read'] } });
    expect(await auth.authenticate(key.key, { ip: '::ffff:10.9.9.9' })).toMatchObject({ ok: true });
    expect(await auth.authenticate(key.key, { ip: '192.0.2.1' })).toMatchObject({
      ok: false,
      reason: 'ip_not_allowed',
    });
    const tampered = `${key.key.slice(0, -1)}${key.key.endsWith('A') ? 'B' : 'A'}`;
    expect(await auth.authenticate(tampered, { ip: '10.1.2.3' })).toMatchObject({ ok: false, reason: 'bad_checksum' });
  });

  it('refuse scopes beyond the owner’s, past expiry dates and bad allowlists', async () => {
    const { principal } = await signedIn();
    await expect(createApiKey(ctx, meta, principal, { scopes: ['users:write'] })).rejects.toMatchObject({
      details: { reason: 'scope_exceeds_owner' },
    });
    await expect(createApiKey(ctx, meta, principal, { expiresAt: new Date('2020-01-01') })).rejects.toMatchObject({
      details: { field: 'expires_at' },
    });
    await expect(createApiKey(ctx, meta, principal, { ipAllowlist: ['10.0.0.0/40'] })).rejects.toMatchObject({
      details: { field: 'ip_allowlist' },
    });
  });

  it('rotate with a grace period, then the old key stops; revoke is immediate; a promotion applies at once', async () => {
    const { principal, user } = await signedIn();
    const key = await createApiKey(ctx, meta, principal, {});
    const next = await rotateApiKey(ctx, meta, principal, key.id, 60);
    secrets.push(key.key, next.key);
    expect(next.rotated_from).toBe(key.id);
    expect((await auth.authenticate(key.key, { ip: '1.1.1.1' })).ok).toBe(true);
    expect((await auth.authenticate(next.key, { ip: '1.1.1.1' })).ok).toBe(true);
    clock.advance(60_000);
    expect(await auth.authenticate(key.key, { ip: '1.1.1.1' })).toMatchObject({ ok: false, reason: 'expired' });
    await changeRole(ctx, meta, user.id, 'admin');
    const promoted = await auth.authenticate(next.key, { ip: '1.1.1.1' });
    expect(promoted.ok && promoted.principal.role).toBe('admin');
    await revokeApiKey(ctx, meta, principal as Principal, next.id);
    expect(await auth.authenticate(next.key, { ip: '1.1.1.1' })).toMatchObject({ ok: false, reason: 'revoked' });
    await expect(revokeApiKey(ctx, meta, principal, next.id)).rejects.toMatchObject({ code: 'not_found' });
  });

  it('without any invalidation signal, the cache TTL alone bounds a revocation to one second', async () => {
    const { principal } = await signedIn();
    const key = await createApiKey(ctx, meta, principal, {});
    secrets.push(key.key);
    const deaf = new Authenticator({ db: t.db, clock, cacheTtlMs: 1000 }); // never started: hears no commits
    expect((await deaf.authenticate(key.key, { ip: '1.1.1.1' })).ok).toBe(true);
    await revokeApiKey(ctx, meta, principal, key.id);
    expect((await deaf.authenticate(key.key, { ip: '1.1.1.1' })).ok).toBe(true); // served from its cache
    clock.advance(1000);
    expect(await deaf.authenticate(key.key, { ip: '1.1.1.1' })).toMatchObject({ ok: false, reason: 'revoked' });
  });

  it('requests that find a credential uncached share one lookup; an eviction during it keeps it out of the cache', async () => {
    const { principal } = await signedIn();
    const key = await createApiKey(ctx, meta, principal, {});
    secrets.push(key.key);
    let lookups = 0;
    const counted = t.db.withPlugin({
      transformQuery(args) {
        if (JSON.stringify(args.node).includes('"api_keys"')) lookups += 1;
        return args.node;
      },
      async transformResult(args) {
        return args.result;
      },
    });
    const fresh = new Authenticator({ db: counted, clock });
    const results = await Promise.all(Array.from({ length: 20 }, () => fresh.authenticate(key.key, { ip: '1.1.1.1' })));
    expect(results.every((r) => r.ok)).toBe(true);
    expect(lookups).toBe(1);
    // Cached now: no more lookups.
    await fresh.authenticate(key.key, { ip: '1.1.1.1' });
    expect(lookups).toBe(1);

    // An eviction (a revocation heard) while a lookup is under way: its answer is used once, never cached.
    fresh.clearCache();
    const during = fresh.authenticate(key.key, { ip: '1.1.1.1' });
    fresh.clearCache();
    expect((await during).ok).toBe(true);
    await revokeApiKey(ctx, meta, principal, key.id);
    expect(await fresh.authenticate(key.key, { ip: '1.1.1.1' })).toMatchObject({ ok: false, reason: 'revoked' });
  });

  it('two concurrent revokes of one key write exactly one api_key.revoked', async () => {
    const { principal } = await signedIn();
    const key = await createApiKey(ctx, meta, principal, {});
    secrets.push(key.key);
    const outcomes = await Promise.allSettled([
      revokeApiKey(ctx, meta, principal, key.id),
      revokeApiKey(ctx, meta, principal, key.id),
    ]);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    const { rows } = await sql<{
      n: number;
    }>`select count(*)::int as n from events where type = 'api_key.revoked'`.execute(t.db);
    expect(rows[0]?.n).toBe(1);
  });
});

describe('users', () => {
  it('disabling a user revokes every session and key in the same transaction', async () => {
    const { principal, session, user } = await signedIn();
    const key = await createApiKey(ctx, meta, principal, {});
    secrets.push(key.key);
    await disableUser(ctx, meta, user.id);
    expect(await auth.authenticate(session.token, { ip: '1.1.1.1' })).toMatchObject({ ok: false });
    expect(await auth.authenticate(key.key, { ip: '1.1.1.1' })).toMatchObject({ ok: false });
    const { rows } = await sql<{ tx: string; n: number }>`
      select tx_id::text as tx, count(*)::int as n from events where type in ('user.disabled', 'session.revoked', 'api_key.revoked') group by tx_id`.execute(
      t.db,
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]?.n).toBe(3);
  });

  it('refuses a second account for the same address in any case', async () => {
    await signedIn();
    await expect(
      registerUser(ctx, meta, { email: 'ADA@example.com', name: null, role: 'member', method: 'admin' }),
    ).rejects.toMatchObject({ code: 'conflict' });
  });

  it('bootstrap: a one-time setup token creates the first admin, once', async () => {
    const token = await createSetupToken(ctx);
    expect(token).toMatch(/^[0-9A-Za-z]{32}$/);
    secrets.push(token as string);
    const session = await completeSetup(ctx, meta, {
      token: token as string,
      email: 'root@example.com',
      password: PASSWORD,
      name: 'Root',
    });
    secrets.push(session.token);
    const result = await auth.authenticate(session.token, { ip: '1.1.1.1' });
    expect(result.ok && result.principal.role).toBe('admin');
    await expect(
      completeSetup(ctx, meta, { token: token as string, email: 'x@example.com', password: PASSWORD, name: null }),
    ).rejects.toMatchObject({ code: 'unauthorized' });
    expect(await createSetupToken(ctx)).toBeNull();
  });
});

describe('the last admin', () => {
  it('cannot be demoted or disabled; once another admin exists, can', async () => {
    const { user: root } = await signedIn('root@example.com', 'admin');
    await expect(changeRole(ctx, meta, root.id, 'member')).rejects.toMatchObject({
      code: 'conflict',
      details: { reason: 'last_admin' },
    });
    await expect(disableUser(ctx, meta, root.id)).rejects.toMatchObject({ details: { reason: 'last_admin' } });
    const { user: other } = await signedIn('second@example.com', 'member');
    await changeRole(ctx, meta, other.id, 'admin');
    await expect(changeRole(ctx, meta, root.id, 'member')).resolves.toMatchObject({ role: 'member' });
  });
});
