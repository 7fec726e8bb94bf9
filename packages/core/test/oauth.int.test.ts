import { createTestDb, type TestDb } from '@keyledger/db/testing';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { catalogue } from '../src/catalogue.ts';
import { ManualClock } from '../src/clock.ts';
import type { CoreContext } from '../src/event-store/command.ts';
import { EventStore } from '../src/event-store/event-store.ts';
import { checkProjections } from '../src/event-store/projections.ts';
import { verifyChain } from '../src/event-store/verify.ts';
import { OauthSigninRefused, type OidcIdentity, signInWithOidc } from '../src/oauth/service.ts';
import { projections } from '../src/projections.ts';
import { disableUser, registerUser } from '../src/users/service.ts';
import { meta } from './helpers.ts';

let t: TestDb;
let ctx: CoreContext;
const tokens: string[] = [];

beforeEach(async () => {
  t = await createTestDb();
  ctx = {
    db: t.db,
    store: new EventStore({ db: t.db, catalogue, projections }),
    clock: new ManualClock('2026-11-22T14:00:00.000Z'),
  };
  tokens.length = 0;
});
afterEach(async () => {
  const { rows } = await sql<{ j: string }>`select (data::text || meta::text) as j from events`.execute(t.db);
  const log = rows.map((r) => r.j).join('\n');
  for (const s of tokens) expect(log).not.toContain(s);
  expect((await verifyChain(t.db)).ok).toBe(true);
  expect((await checkProjections(t.db, projections)).ok).toBe(true);
  await t.close();
});

const types = async () =>
  (await sql<{ type: string }>`select type from events order by seq`.execute(t.db)).rows.map((r) => r.type);
const failures = async () =>
  (
    await sql<{
      data: { provider: string; reason: string };
    }>`select data from events where type = 'oauth.signin_failed' order by seq`.execute(t.db)
  ).rows.map((r) => r.data);

const identity = (over: Partial<OidcIdentity> = {}): OidcIdentity => ({
  provider: 'acme',
  issuer: 'https://id.acme.example',
  subject: 'sub-123',
  email: 'Ada@Example.com',
  emailVerified: true,
  signup: 'open',
  ...over,
});

async function refusal(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(OauthSigninRefused);
  return (error as OauthSigninRefused).reason;
}

describe('signInWithOidc', () => {
  it('registers a new user under open sign-up, links the account and opens a browser session in one append', async () => {
    const s = await signInWithOidc(ctx, meta, identity());
    tokens.push(s.token);
    expect(s.outcome).toBe('registered');
    expect(await types()).toEqual([
      'user.registered',
      'user.email_verified',
      'oauth.account_linked',
      'session.created',
    ]);
    const { rows } = await sql<{ tx: string }>`select distinct tx_id::text as tx from events`.execute(t.db);
    expect(rows).toHaveLength(1);
    const user = await t.db.selectFrom('users').selectAll().executeTakeFirstOrThrow();
    expect(user).toMatchObject({ email: 'ada@example.com', registration_method: 'oauth', email_verified: true });
    const account = await t.db.selectFrom('oauth_accounts').selectAll().executeTakeFirstOrThrow();
    expect(account).toMatchObject({
      issuer: 'https://id.acme.example',
      subject: 'sub-123',
      user_id: user.id,
      provider: 'acme',
    });
    const session = await t.db.selectFrom('sessions').selectAll().executeTakeFirstOrThrow();
    expect(session).toMatchObject({ user_id: user.id, method: 'oauth', kind: 'browser' });
  });

  it('signs a known (issuer, subject) back in whatever email it now claims', async () => {
    const first = await signInWithOidc(ctx, meta, identity());
    const again = await signInWithOidc(ctx, meta, identity({ email: 'other@example.com', emailVerified: false }));
    tokens.push(first.token, again.token);
    expect(again.outcome).toBe('existing');
    expect(again.userId).toBe(first.userId);
    expect(again.sessionId).not.toBe(first.sessionId);
    expect((await types()).slice(4)).toEqual(['session.created']);
  });

  it('the same subject at another issuer is another account', async () => {
    await signInWithOidc(ctx, meta, identity());
    await expect(
      signInWithOidc(ctx, meta, identity({ issuer: 'https://evil.example', emailVerified: false })),
    ).rejects.toThrow(OauthSigninRefused);
  });

  it('links an existing user by email only when the provider says the email is verified', async () => {
    const user = await registerUser(ctx, meta, {
      email: 'ada@example.com',
      name: 'Ada',
      role: 'member',
      method: 'admin',
    });
    expect(await refusal(signInWithOidc(ctx, meta, identity({ emailVerified: false })))).toBe(
      'account_exists_unverified',
    );
    expect(await failures()).toEqual([{ provider: 'acme', reason: 'account_exists_unverified' }]);
    expect(await t.db.selectFrom('oauth_accounts').selectAll().execute()).toEqual([]);
    const s = await signInWithOidc(ctx, meta, identity());
    tokens.push(s.token);
    expect(s).toMatchObject({ outcome: 'linked', userId: user.id });
    expect((await types()).slice(-2)).toEqual(['oauth.account_linked', 'session.created']);
  });

  it('refuses an unknown person under invite sign-up with signup_closed', async () => {
    expect(await refusal(signInWithOidc(ctx, meta, identity({ signup: 'invite' })))).toBe('signup_closed');
    expect(await types()).toEqual(['oauth.signin_failed']);
    expect(await failures()).toEqual([{ provider: 'acme', reason: 'signup_closed' }]);
  });

  it('refuses a disabled user', async () => {
    const first = await signInWithOidc(ctx, meta, identity());
    tokens.push(first.token);
    await registerUser(ctx, meta, { email: 'admin@example.com', name: null, role: 'admin', method: 'admin' });
    await disableUser(ctx, meta, first.userId);
    expect(await refusal(signInWithOidc(ctx, meta, identity()))).toBe('access_denied');
  });

  it('two concurrent first sign-ins make one user and one account', async () => {
    const results = await Promise.all([signInWithOidc(ctx, meta, identity()), signInWithOidc(ctx, meta, identity())]);
    tokens.push(...results.map((r) => r.token));
    expect(new Set(results.map((r) => r.userId)).size).toBe(1);
    expect(await t.db.selectFrom('users').selectAll().execute()).toHaveLength(1);
    expect(await t.db.selectFrom('oauth_accounts').selectAll().execute()).toHaveLength(1);
    expect(await t.db.selectFrom('sessions').selectAll().execute()).toHaveLength(2);
  });
});
