import type { TestDb } from '@keyledger/db/testing';
import { hash, verify } from '@node-rs/argon2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestCore, meta } from '../../test/helpers.ts';
import type { ManualClock } from '../clock.ts';
import type { CoreContext } from '../event-store/command.ts';
import { passwordSignIn } from '../sessions/signin.ts';
import { registerUser } from '../users/service.ts';
import { normalizePassword } from './policy.ts';

const PASSWORD = 'violet-otter-lantern-42';
const CURRENT = /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/;
const T0 = new Date('2026-11-22T14:00:00.000Z');

let t: TestDb;
let clock: ManualClock;
let ctx: CoreContext;
let userId: string;

beforeEach(async () => {
  ({ t, clock, ctx } = await createTestCore(T0));
  userId = (
    await registerUser(ctx, meta, {
      email: 'ada@example.com',
      name: 'Ada',
      role: 'member',
      method: 'admin',
      password: PASSWORD,
    })
  ).id;
});
afterEach(async () => {
  await t.close();
});

/** Replaces the user's hash with one made as an older release would have: argon2id with weaker parameters. */
async function storeOldHash(): Promise<string> {
  const old = await hash(normalizePassword(PASSWORD), { algorithm: 2, memoryCost: 4096, timeCost: 3, parallelism: 1 });
  expect(old).toMatch(/^\$argon2id\$v=19\$m=4096,t=3,p=1\$/);
  await t.db
    .updateTable('password_credentials')
    .set({ hash: old, updated_at: T0 })
    .where('user_id', '=', userId)
    .execute();
  return old;
}

const stored = () =>
  t.db
    .selectFrom('password_credentials')
    .select(['hash', 'updated_at'])
    .where('user_id', '=', userId)
    .executeTakeFirstOrThrow();

const signIn = (password: string) =>
  passwordSignIn(ctx, meta, { email: 'ada@example.com', password, ip: '203.0.113.7', lifetime: 'api' });

describe('rehash on sign-in', () => {
  it('replaces a hash made with older argon2id parameters by one with today’s, which still verifies', async () => {
    const old = await storeOldHash();
    clock.advance(60_000);
    await signIn(PASSWORD);
    const after = await stored();
    expect(after.hash).toMatch(CURRENT);
    expect(after.hash).not.toBe(old);
    expect(after.updated_at.toISOString()).toBe(clock.now().toISOString());
    expect(await verify(after.hash, PASSWORD)).toBe(true);
    expect(await verify(after.hash, 'not-the-password')).toBe(false);
    // The new hash signs in, and is then left alone.
    clock.advance(60_000);
    await signIn(PASSWORD);
    expect(await stored()).toEqual(after);
  });

  it('leaves the old hash untouched after a wrong password', async () => {
    const old = await storeOldHash();
    clock.advance(60_000);
    await expect(signIn('not-the-password')).rejects.toMatchObject({ code: 'unauthorized' });
    expect(await stored()).toEqual({ hash: old, updated_at: T0 });
  });
});
