import type { TestDb } from '@keyledger/db/testing';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestCore, meta } from '../../test/helpers.ts';
import type { ManualClock } from '../clock.ts';
import { DomainError } from '../errors.ts';
import type { CoreContext } from '../event-store/command.ts';
import { completeSetup, createSetupToken } from './bootstrap.ts';

// That a used link cannot be used a second time is already proved in test/identity.int.test.ts (core) and in
// apps/server's setup page and tRPC tests; this file proves the one-hour lifetime.

const HOUR = 3600_000;
const PASSWORD = 'violet-otter-lantern-42';

let t: TestDb;
let clock: ManualClock;
let ctx: CoreContext;

beforeEach(async () => {
  ({ t, clock, ctx } = await createTestCore());
});
afterEach(async () => {
  await t.close();
});

const setup = (token: string) =>
  completeSetup(ctx, meta, { token, email: 'root@example.com', password: PASSWORD, name: 'Root' });

const count = async (table: 'users' | 'events') =>
  (await sql<{ n: number }>`select count(*)::int as n from ${sql.table(table)}`.execute(t.db)).rows[0]?.n;

describe('the first-admin setup link', () => {
  it('still works a millisecond before the hour is up', async () => {
    const token = (await createSetupToken(ctx)) as string;
    clock.advance(HOUR - 1);
    const session = await setup(token);
    const admin = await t.db
      .selectFrom('users')
      .select(['id', 'role'])
      .where('email', '=', 'root@example.com')
      .executeTakeFirstOrThrow();
    expect(admin).toEqual({ id: session.userId, role: 'admin' });
  });

  it('is refused from the hour on, like any invalid link, and the refusal creates nothing', async () => {
    const token = (await createSetupToken(ctx)) as string;
    for (const after of [HOUR, 1]) {
      clock.advance(after);
      const refused = await setup(token).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(DomainError);
      expect(refused).toMatchObject({
        code: 'unauthorized',
        message: 'This setup link is invalid, used or expired',
        details: { reason: 'invalid_setup_token' },
      });
    }
    expect(await count('users')).toBe(0);
    expect(await count('events')).toBe(0);
    // Nothing was consumed: the link is dead by time alone, and there is still no admin, so a new link can be made.
    const row = await t.db.selectFrom('setup_tokens').select('used_at').executeTakeFirstOrThrow();
    expect(row.used_at).toBeNull();
    const fresh = (await createSetupToken(ctx)) as string;
    await expect(setup(fresh)).resolves.toMatchObject({ token: expect.stringMatching(/^kl_ses_/) });
  });
});

describe('a setup that fails', () => {
  it('leaves the link usable: it is used up only with the admin it creates, in one transaction', async () => {
    const token = (await createSetupToken(ctx)) as string;
    // An address the event schema refuses (over 320 characters) fails the registration after the password is hashed.
    const tooLong = `${'a'.repeat(330)}@example.com`;
    const refused = await completeSetup(ctx, meta, { token, email: tooLong, password: PASSWORD, name: null }).catch(
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(Error);
    expect(await count('users')).toBe(0);
    const session = await setup(token);
    expect(session.userId).toMatch(/^user_/);
    // And then it is used: a second setup with it is refused.
    await expect(setup(token)).rejects.toMatchObject({ details: { reason: 'invalid_setup_token' } });
  });
});

describe('two setups at once', () => {
  it('with two different links (one minted per start) make one admin, not two', async () => {
    const first = (await createSetupToken(ctx)) as string;
    const second = (await createSetupToken(ctx)) as string;
    expect(second).not.toBe(first);
    const outcomes = await Promise.allSettled([
      completeSetup(ctx, meta, { token: first, email: 'one@example.com', password: PASSWORD, name: null }),
      completeSetup(ctx, meta, { token: second, email: 'two@example.com', password: PASSWORD, name: null }),
    ]);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    const refused = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
    expect(refused.reason).toMatchObject({ code: 'conflict', details: { reason: 'already_set_up' } });
    const admins = await t.db.selectFrom('users').select('id').where('role', '=', 'admin').execute();
    expect(admins).toHaveLength(1);
  });
});
