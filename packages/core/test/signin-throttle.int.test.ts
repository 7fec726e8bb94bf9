import type { TestDb } from '@keyledger/db/testing';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ManualClock } from '../src/clock.ts';
import type { CoreContext } from '../src/event-store/command.ts';
import { createSession } from '../src/sessions/service.ts';
import {
  ACCOUNT_FAILURE_CAP,
  FREE_FAILURES,
  IP_FAILURES_PER_HOUR,
  MAX_DELAY_S,
  passwordSignIn,
  ThrottledError,
} from '../src/sessions/signin.ts';
import { registerUser, setPassword } from '../src/users/service.ts';
import { createTestCore, meta } from './helpers.ts';

/**
 * Sign-in throttling (DESIGN §4, ADR 0008) under the conditions an attacker chooses: attempts in parallel, many
 * addresses from one IP, and persistence past the progressive delay's cap.
 */
let t: TestDb;
let ctx: CoreContext;
let clock: ManualClock;
const PASSWORD = 'violet-otter-lantern-42';

beforeEach(async () => {
  ({ t, clock, ctx } = await createTestCore());
});
afterEach(async () => {
  await t.close();
});

const attempt = (email: string, password: string, ip = '198.51.100.1') =>
  passwordSignIn(ctx, meta, { email, password, ip, lifetime: 'api' }).then(
    () => 'ok' as const,
    (e: unknown) => (e instanceof ThrottledError ? e : e instanceof Error ? e.message : String(e)),
  );

/** A member with PASSWORD, registered by an admin. */
const member = (email: string) =>
  registerUser(ctx, meta, { email, name: null, role: 'member', method: 'admin', password: PASSWORD });

const failureReasons = async () =>
  (
    await sql<{ reason: string }>`select data->>'reason' as reason from events where type = 'signin.failed'`.execute(
      t.db,
    )
  ).rows.map((r) => r.reason);

describe('sign-in throttling', () => {
  it('counts parallel attempts one by one: of 40 wrong passwords at once, 5 are checked and 35 are 429', async () => {
    await member('ada@example.com');
    const results = await Promise.all(Array.from({ length: 40 }, () => attempt('ada@example.com', 'wrong-password-1')));
    const throttled = results.filter((r) => r instanceof ThrottledError);
    expect(throttled).toHaveLength(35);
    expect(results.filter((r) => r === 'Invalid email or password')).toHaveLength(5);
    const reasons = await failureReasons();
    expect(reasons.filter((r) => r === 'bad_password')).toHaveLength(5);
    expect(reasons.filter((r) => r === 'throttled')).toHaveLength(35);
    // The right password is refused too while the address waits, then works once the wait is over.
    expect(await attempt('ada@example.com', PASSWORD)).toBeInstanceOf(ThrottledError);
    clock.advance(1000);
    expect(await attempt('ada@example.com', PASSWORD)).toBe('ok');
  });

  it('refuses the 101st failure from one IP within the hour, across addresses and in parallel, until the hour has passed', async () => {
    const ip = '203.0.113.99';
    const results = await Promise.all(
      Array.from({ length: IP_FAILURES_PER_HOUR + 20 }, (_, i) =>
        attempt(`nobody-${i}@example.com`, 'whatever-pw-1', ip),
      ),
    );
    expect(results.filter((r) => r === 'Invalid email or password')).toHaveLength(IP_FAILURES_PER_HOUR);
    const refused = results.filter((r): r is ThrottledError => r instanceof ThrottledError);
    expect(refused).toHaveLength(20);
    expect(refused[0]?.retryAfterSeconds).toBe(3600);
    // Another IP is not affected; this one is, even for a known address with the right password.
    await member('bo@example.com');
    expect(await attempt('bo@example.com', PASSWORD, ip)).toBeInstanceOf(ThrottledError);
    expect(await attempt('bo@example.com', PASSWORD, '203.0.113.100')).toBe('ok');
    clock.advance(3600_000);
    expect(await attempt('bo@example.com', PASSWORD, ip)).toBe('ok');
  });

  it('a success gives the IP its charge back: sign-ins that work never add up to a block', async () => {
    await member('cy@example.com');
    for (let i = 0; i < IP_FAILURES_PER_HOUR + 5; i++)
      expect(await attempt('cy@example.com', PASSWORD, '192.0.2.5')).toBe('ok');
  });

  it('waits 1 s, 2 s, 4 s … after 5 failures, never more than 15 min, and locks the address at 100 failures until its owner gets in another way', async () => {
    const user = await member('di@example.com');
    const waits: number[] = [];
    for (let failures = 1; failures <= ACCOUNT_FAILURE_CAP; failures++) {
      // From a new IP each time: only the address's counter is under test here.
      expect(await attempt('di@example.com', 'wrong-password-1', `10.0.${failures >> 8}.${failures & 255}`)).toBe(
        'Invalid email or password',
      );
      if (failures >= FREE_FAILURES && failures < ACCOUNT_FAILURE_CAP) {
        // Straight after the failure, even the right password waits; then the wait runs out.
        const probe = await attempt('di@example.com', PASSWORD, '10.9.9.9');
        if (!(probe instanceof ThrottledError)) throw new Error(`attempt after failure ${failures}: ${String(probe)}`);
        waits.push(probe.retryAfterSeconds);
        clock.advance(probe.retryAfterSeconds * 1000);
      }
    }
    expect(waits.slice(0, 4)).toEqual([1, 2, 4, 8]);
    expect(Math.max(...waits)).toBe(MAX_DELAY_S);
    expect(waits.filter((w) => w === MAX_DELAY_S).length).toBeGreaterThan(80);
    // At the cap: refused even with the right password, and still a day, a week later.
    const atCap = await attempt('di@example.com', PASSWORD, '10.8.8.8');
    expect(atCap).toBeInstanceOf(ThrottledError);
    clock.advance(7 * 24 * 3600_000);
    expect(await attempt('di@example.com', PASSWORD, '10.8.8.8')).toBeInstanceOf(ThrottledError);
    const consecutive = await sql<{
      failures: number;
    }>`select failures from signin_throttle where key like 'email:%'`.execute(t.db);
    expect(consecutive.rows[0]?.failures).toBe(ACCOUNT_FAILURE_CAP);
    // Signed in on another device, the owner sets a new password: the address is unlocked.
    const other = await createSession(ctx, meta, { userId: user.id, method: 'magic_link', lifetime: 'api' });
    await setPassword(ctx, meta, {
      userId: user.id,
      currentSessionId: other.sessionId,
      currentPassword: PASSWORD,
      newPassword: 'a-brand-new-passphrase-7',
    });
    expect(await attempt('di@example.com', 'a-brand-new-passphrase-7', '10.8.8.8')).toBe('ok');
  });
});
