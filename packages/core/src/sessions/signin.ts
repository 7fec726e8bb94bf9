import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { DomainError } from '../errors.ts';
import type { EventMeta } from '../event-store/catalogue.ts';
import type { CoreContext } from '../event-store/command.ts';
import { burnPasswordCheck, hashPassword, needsRehash, verifyPassword } from '../passwords/hash.ts';
import { findUserByEmail, normalizeEmail } from '../users/service.ts';
import { createSession, type IssuedSession, type SessionLifetime } from './service.ts';

/** After this many consecutive failures for an address, each further attempt waits 1 s, 2 s, 4 s … */
export const FREE_FAILURES = 5;
export const MAX_DELAY_S = 15 * 60;
/** NIST 800-63B: no more than 100 consecutive failures on one account; then it rests for a day. */
export const ACCOUNT_FAILURE_CAP = 100;
export const ACCOUNT_REST_S = 24 * 3600;
/** Per client IP: the 101st failure within an hour, and every attempt after it in that hour, is refused. */
export const IP_FAILURES_PER_HOUR = 100;

const emailKey = (email: string) => `email:${createHash('sha256').update(normalizeEmail(email)).digest('hex')}`;
const ipKey = (ip: string) => `ip:${ip}`;

function delayAfter(failures: number): number {
  if (failures >= ACCOUNT_FAILURE_CAP) return ACCOUNT_REST_S;
  if (failures < FREE_FAILURES) return 0;
  return Math.min(2 ** (failures - FREE_FAILURES), MAX_DELAY_S);
}

export class ThrottledError extends DomainError {
  override readonly name = 'ThrottledError';
  constructor(readonly retryAfterSeconds: number) {
    super('rate_limited', 'Too many sign-in attempts; try again later', {
      details: { retry_after_seconds: retryAfterSeconds },
    });
  }
}

const invalid = () =>
  new DomainError('unauthorized', 'Invalid email or password', { details: { reason: 'invalid_credentials' } });

async function recordFailure(
  ctx: CoreContext,
  meta: EventMeta,
  email: string,
  reason: 'unknown_user' | 'bad_password' | 'disabled' | 'throttled',
): Promise<void> {
  const stream = `signin-${createHash('sha256').update(normalizeEmail(email)).digest('hex').slice(0, 32)}`;
  await ctx.store.append({
    streams: [
      {
        stream,
        expectedVersion: 'any',
        events: [{ type: 'signin.failed', data: { email: normalizeEmail(email).slice(0, 320), reason } }],
      },
    ],
    meta,
    occurredAt: ctx.clock.now(),
  });
}

/**
 * Password sign-in. An unknown address, a wrong password and a disabled account answer alike and take alike (a
 * real argon2 verification runs every time); the precise reason goes to the log as `signin.failed`.
 */
export async function passwordSignIn(
  ctx: CoreContext,
  meta: EventMeta,
  input: { email: string; password: string; ip: string; lifetime: SessionLifetime },
): Promise<IssuedSession> {
  const now = ctx.clock.now();
  const nowMs = now.getTime();
  const throttles = await ctx.db
    .selectFrom('signin_throttle')
    .selectAll()
    .where('key', 'in', [emailKey(input.email), ipKey(input.ip)])
    .execute();
  for (const t of throttles) {
    let until = t.blocked_until?.getTime() ?? 0;
    if (t.key.startsWith('ip:')) {
      const windowEnd = t.window_start.getTime() + 3600_000;
      until = t.failures >= IP_FAILURES_PER_HOUR && nowMs < windowEnd ? windowEnd : 0;
    }
    if (until > nowMs) {
      // A throttled attempt is refused before the password is looked at, and is not counted as a failure.
      await recordFailure(ctx, meta, input.email, 'throttled');
      throw new ThrottledError(Math.max(1, Math.ceil((until - nowMs) / 1000)));
    }
  }

  const user = await findUserByEmail(ctx, input.email);
  const stored =
    user &&
    (await ctx.db.selectFrom('password_credentials').select('hash').where('user_id', '=', user.id).executeTakeFirst());
  const ok = stored ? await verifyPassword(stored.hash, input.password) : await burnPasswordCheck(input.password);
  if (!user || !stored || !ok || user.disabled) {
    await countFailure(ctx, input.email, input.ip, now);
    await recordFailure(ctx, meta, input.email, !user || !stored ? 'unknown_user' : !ok ? 'bad_password' : 'disabled');
    throw invalid();
  }
  await ctx.db.deleteFrom('signin_throttle').where('key', '=', emailKey(input.email)).execute();
  if (needsRehash(stored.hash)) {
    const rehashed = await hashPassword(input.password);
    await ctx.db
      .updateTable('password_credentials')
      .set({ hash: rehashed, updated_at: now })
      .where('user_id', '=', user.id)
      .execute();
  }
  return createSession(ctx, meta, { userId: user.id, method: 'password', lifetime: input.lifetime });
}

async function countFailure(ctx: CoreContext, email: string, ip: string, now: Date): Promise<void> {
  // Consecutive failures per address (whether or not it exists), with the next allowed attempt.
  const emailRow = await sql<{ failures: number }>`
    insert into signin_throttle (key, failures, window_start, last_failure_at)
    values (${emailKey(email)}, 1, ${now}, ${now})
    on conflict (key) do update set failures = signin_throttle.failures + 1, last_failure_at = excluded.last_failure_at
    returning failures`.execute(ctx.db);
  const failures = emailRow.rows[0]?.failures ?? 1;
  const delay = delayAfter(failures);
  if (delay > 0) {
    await ctx.db
      .updateTable('signin_throttle')
      .set({ blocked_until: new Date(now.getTime() + delay * 1000) })
      .where('key', '=', emailKey(email))
      .execute();
  }
  // Failures per client IP in a fixed one-hour window that starts at its first failure.
  await sql`
    insert into signin_throttle (key, failures, window_start, last_failure_at)
    values (${ipKey(ip)}, 1, ${now}, ${now})
    on conflict (key) do update set
      failures = case when signin_throttle.window_start <= ${new Date(now.getTime() - 3600_000)} then 1 else signin_throttle.failures + 1 end,
      window_start = case when signin_throttle.window_start <= ${new Date(now.getTime() - 3600_000)} then excluded.window_start else signin_throttle.window_start end,
      last_failure_at = excluded.last_failure_at`.execute(ctx.db);
}
