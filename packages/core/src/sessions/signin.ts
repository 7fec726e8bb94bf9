import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { DomainError } from '../errors.ts';
import type { EventMeta } from '../event-store/catalogue.ts';
import type { CoreContext } from '../event-store/command.ts';
import { burnPasswordCheck, hashPassword, needsRehash, verifyPassword } from '../passwords/hash.ts';
import { findUserByEmail, normalizeEmail } from '../users/service.ts';
import { createSession, type IssuedSession, type SessionLifetime } from './service.ts';
import { emailKey, ipKey, resetSigninThrottle } from './throttle.ts';

/** After this many consecutive failures for an address, each further attempt waits 1 s, 2 s, 4 s … */
export const FREE_FAILURES = 5;
export const MAX_DELAY_S = 15 * 60;
/**
 * NIST 800-63B: no more than 100 consecutive failures on one account. At 100 the address takes no more password
 * attempts until its owner signs in another way (a magic link, OAuth) or a password is set for it.
 */
export const ACCOUNT_FAILURE_CAP = 100;
/** What `Retry-After` says to an address at the cap: a hint, since only another way in unlocks it. */
export const ACCOUNT_LOCKED_RETRY_S = 24 * 3600;
/** Per client IP: the 101st failure within an hour, and every attempt after it in that hour, is refused. */
export const IP_FAILURES_PER_HOUR = 100;

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
 *
 * Throttling is decided before the password is looked at, atomically: each attempt is admitted by one statement
 * per counter that counts it as a failure in advance and, for the address, already sets the wait that failure would
 * bring. Attempts sent in parallel are therefore counted one by one (the sixth of forty concurrent wrong passwords
 * is a 429, not a sixth argon2 verification); a success takes its count back by resetting the address and returning
 * the client IP's charge.
 */
export async function passwordSignIn(
  ctx: CoreContext,
  meta: EventMeta,
  input: { email: string; password: string; ip: string; lifetime: SessionLifetime },
): Promise<IssuedSession> {
  const now = ctx.clock.now();
  const refusedFor = await admit(ctx, input.email, input.ip, now);
  if (refusedFor !== null) {
    // A throttled attempt is refused before the password is looked at, and is not counted as a failure.
    await recordFailure(ctx, meta, input.email, 'throttled');
    throw new ThrottledError(refusedFor);
  }

  const user = await findUserByEmail(ctx, input.email);
  const stored =
    user &&
    (await ctx.db.selectFrom('password_credentials').select('hash').where('user_id', '=', user.id).executeTakeFirst());
  const ok = stored ? await verifyPassword(stored.hash, input.password) : await burnPasswordCheck(input.password);
  if (!user || !stored || !ok || user.disabled) {
    // Already counted at admission.
    await recordFailure(ctx, meta, input.email, !user || !stored ? 'unknown_user' : !ok ? 'bad_password' : 'disabled');
    throw invalid();
  }
  await resetSigninThrottle(ctx, input.email);
  await refundIp(ctx, input.ip);
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

/**
 * Admits an attempt, counting it as a failure in advance: first against the client IP (a fixed hour from its first
 * failure), then against the address (consecutive failures; the wait the failure would bring is set at once, so a
 * parallel attempt already sees it). Returns null when admitted, else the seconds to wait; an attempt refused by the
 * address gives the IP its charge back.
 */
async function admit(ctx: CoreContext, email: string, ip: string, now: Date): Promise<number | null> {
  const hourAgo = new Date(now.getTime() - 3600_000);
  const ipRow = await sql<{ failures: number }>`
    insert into signin_throttle (key, failures, window_start, last_failure_at)
    values (${ipKey(ip)}, 1, ${now}, ${now})
    on conflict (key) do update set
      failures = case when signin_throttle.window_start <= ${hourAgo} then 1 else signin_throttle.failures + 1 end,
      window_start = case when signin_throttle.window_start <= ${hourAgo} then excluded.window_start else signin_throttle.window_start end,
      last_failure_at = excluded.last_failure_at
    where signin_throttle.window_start <= ${hourAgo} or signin_throttle.failures < ${IP_FAILURES_PER_HOUR}
    returning failures`.execute(ctx.db);
  if (ipRow.rows.length === 0) {
    const row = await ctx.db
      .selectFrom('signin_throttle')
      .select('window_start')
      .where('key', '=', ipKey(ip))
      .executeTakeFirst();
    return secondsUntil((row?.window_start.getTime() ?? now.getTime()) + 3600_000, now);
  }
  const emailRow = await sql<{ failures: number }>`
    insert into signin_throttle (key, failures, window_start, last_failure_at)
    values (${emailKey(email)}, 1, ${now}, ${now})
    on conflict (key) do update set
      failures = signin_throttle.failures + 1,
      last_failure_at = excluded.last_failure_at,
      blocked_until = case when signin_throttle.failures + 1 < ${FREE_FAILURES} then null
        else ${now}::timestamptz + make_interval(secs => least(power(2, signin_throttle.failures + 1 - ${FREE_FAILURES}), ${MAX_DELAY_S})) end
    where signin_throttle.failures < ${ACCOUNT_FAILURE_CAP}
      and (signin_throttle.blocked_until is null or signin_throttle.blocked_until <= ${now})
    returning failures`.execute(ctx.db);
  if (emailRow.rows.length > 0) return null;
  await refundIp(ctx, ip);
  const row = await ctx.db
    .selectFrom('signin_throttle')
    .select(['failures', 'blocked_until'])
    .where('key', '=', emailKey(email))
    .executeTakeFirst();
  // Gone since the upsert: a success or another way in reset it just now.
  if (!row) return 1;
  if (row.failures >= ACCOUNT_FAILURE_CAP) return ACCOUNT_LOCKED_RETRY_S;
  return secondsUntil(row.blocked_until?.getTime() ?? now.getTime(), now);
}

/** Gives the client IP back the failure its attempt was charged in advance (a success, or a refusal). */
async function refundIp(ctx: CoreContext, ip: string): Promise<void> {
  await ctx.db
    .updateTable('signin_throttle')
    .set((eb) => ({ failures: eb('failures', '-', 1) }))
    .where('key', '=', ipKey(ip))
    .where('failures', '>', 0)
    .execute();
}

function secondsUntil(ms: number, now: Date): number {
  return Math.max(1, Math.ceil((ms - now.getTime()) / 1000));
}
