import type { Database } from '@keyledger/db';
import { type Kysely, sql } from 'kysely';
import { generateToken, hashToken, randomBase62 } from '../credentials/tokens.ts';
import { ConcurrencyError, DomainError } from '../errors.ts';
import type { EventMeta } from '../event-store/catalogue.ts';
import { type CoreContext, runCommand } from '../event-store/command.ts';
import { fold } from '../event-store/decider.ts';
import { readStream } from '../event-store/read.ts';
import type { StreamAppend } from '../event-store/types.ts';
import { typeId } from '../ids.ts';
import { sessionStream } from '../sessions/decider.ts';
import { API_SESSION_MS, BROWSER_SESSION_MS, type SessionLifetime } from '../sessions/service.ts';
import { resetSigninThrottle } from '../sessions/throttle.ts';
import { userStream } from '../users/decider.ts';
import { normalizeEmail } from '../users/service.ts';
import { MAGIC_LINK_TTL_MS, magicLinkDecider, magicLinkStream } from './decider.ts';
import { MAIL_TOPIC, magicLinkMail, magicLinkUrl } from './mail.ts';
import { validateNext } from './next.ts';

export { MAIL_TOPIC, type MailPayload, magicLinkMail, magicLinkUrl } from './mail.ts';

export interface MagicLinkLimits {
  /** Per requester (the signed-in user, else the client IP) per window. */
  readonly perRequester: number;
  /** Per address per window, counted the same whether or not the address is known. */
  readonly perAddress: number;
  readonly windowMs: number;
}
export const DEFAULT_MAGIC_LINK_LIMITS: MagicLinkLimits = { perRequester: 10, perAddress: 20, windowMs: 24 * 3600_000 };

export interface MagicLinkRequest {
  readonly email: unknown;
  readonly next?: unknown;
  /** `user:<id>` for a signed-in requester, else `ip:<client ip>`. */
  readonly requesterKey: string;
  readonly signup: 'invite' | 'open';
  /** The public origin links point at, e.g. `https://auth.example.com`. */
  readonly publicUrl: string;
  readonly serviceName?: string;
  readonly limits?: MagicLinkLimits;
  /** Pads answers that issue no link to the usual time of one that does (DESIGN §5: same answer, same time). */
  readonly timing?: ResponseTiming;
}

/**
 * Keeps a moving estimate of how long issuing a link takes, and makes a request that issues none wait about as long
 * (the estimate, ±10 %), so neither the answer nor its timing tells whether an address is known.
 */
export class ResponseTiming {
  #estimateMs: number | null = null;

  record(ms: number): void {
    this.#estimateMs = this.#estimateMs === null ? ms : this.#estimateMs * 0.8 + ms * 0.2;
  }

  get estimateMs(): number | null {
    return this.#estimateMs;
  }

  async pad(elapsedMs: number): Promise<void> {
    if (this.#estimateMs === null) return;
    const target = this.#estimateMs * (0.9 + Math.random() * 0.2);
    if (target > elapsedMs) await new Promise((resolve) => setTimeout(resolve, target - elapsedMs));
  }
}

const CODE_PATTERN = /^[0-9A-Za-z]{32}$/;

function checkEmail(raw: unknown): string {
  const email = typeof raw === 'string' ? normalizeEmail(raw) : '';
  if (email.length < 3 || email.length > 320 || !/^[^\s@]+@[^\s@]+$/.test(email)) {
    throw new DomainError('invalid_input', 'email must be an email address', {
      details: { field: 'email', reason: 'invalid_email' },
    });
  }
  return email;
}

const LIMIT_LOCK_SPACE = 0x6d6c; // 'ml'

async function countSince(db: Kysely<Database>, column: 'requester' | 'email', value: string, since: Date) {
  const row = await db
    .selectFrom('magic_link_requests')
    .select([sql<number>`count(*)::int`.as('n'), sql<Date | null>`min(created_at)`.as('oldest')])
    .where(column, '=', value)
    .where('created_at', '>', since)
    .executeTakeFirstOrThrow();
  return { n: Number(row.n), oldest: row.oldest ? new Date(row.oldest) : null };
}

/**
 * Sends a sign-in link. The answer is the same for a known and an unknown address (under invite-only sign-up an
 * unknown address gets nothing, but the request is counted like any other). The code appears only in the mail
 * (the outbox, outside the log); the log holds its SHA-256.
 */
export async function requestMagicLink(ctx: CoreContext, meta: EventMeta, input: MagicLinkRequest): Promise<void> {
  const started = performance.now();
  const next = validateNext(input.next);
  const email = checkEmail(input.email);
  const limits = input.limits ?? DEFAULT_MAGIC_LINK_LIMITS;
  const now = ctx.clock.now();
  const since = new Date(now.getTime() - limits.windowMs);

  const requestRow = { id: typeId('mlr'), requester: input.requesterKey, email, created_at: now };
  // Count and record under per-requester and per-address advisory locks (taken in that order, so never a deadlock),
  // so concurrent requests on several instances cannot all slip under a limit.
  const over = await ctx.db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(${LIMIT_LOCK_SPACE}, hashtext(${input.requesterKey}))`.execute(trx);
    await sql`select pg_advisory_xact_lock(${LIMIT_LOCK_SPACE + 1}, hashtext(${email}))`.execute(trx);
    const byRequester = await countSince(trx, 'requester', input.requesterKey, since);
    const byAddress = await countSince(trx, 'email', email, since);
    const refused =
      byRequester.n >= limits.perRequester
        ? { scope: 'requester' as const, oldest: byRequester.oldest }
        : byAddress.n >= limits.perAddress
          ? { scope: 'address' as const, oldest: byAddress.oldest }
          : null;
    if (!refused) await trx.insertInto('magic_link_requests').values(requestRow).execute();
    return refused;
  });
  if (over) {
    await ctx.store.append({
      streams: [
        {
          stream: `magic_link_limit-${hashToken(email).slice(0, 32)}`,
          expectedVersion: 'any',
          events: [{ type: 'magic_link.rate_limited', data: { email, scope: over.scope } }],
        },
      ],
      meta,
      occurredAt: now,
    });
    const until = (over.oldest ?? now).getTime() + limits.windowMs;
    throw new DomainError('rate_limited', 'Too many sign-in links requested; try again later', {
      details: { retry_after_seconds: Math.max(1, Math.ceil((until - now.getTime()) / 1000)) },
    });
  }

  const user = await ctx.db
    .selectFrom('users')
    .select(['id', 'disabled'])
    .where(sql<string>`lower(email)`, '=', email)
    .executeTakeFirst();
  const known = user !== undefined && !user.disabled;
  if (!known && (user !== undefined || input.signup !== 'open')) {
    // No link for this address: answer no sooner than a link is usually issued, so the time tells nothing.
    await input.timing?.pad(performance.now() - started);
    return;
  }

  const code = randomBase62(32);
  const linkId = typeId('ml');
  const expiresAt = new Date(now.getTime() + MAGIC_LINK_TTL_MS);
  const mail = magicLinkMail({
    to: email,
    link: magicLinkUrl(input.publicUrl, code, email),
    ip: meta.ip,
    expiresAt,
    linkId,
    publicUrl: input.publicUrl,
    serviceName: input.serviceName ?? 'Keyledger',
  });
  await runCommand(
    ctx,
    magicLinkStream(linkId),
    magicLinkDecider,
    {
      type: 'IssueLink',
      data: { linkId, email, userId: user?.id ?? null, codeHash: hashToken(code), expiresAt, next },
    },
    meta,
    { outbox: () => [{ topic: MAIL_TOPIC, payload: mail }] },
  );
  input.timing?.record(performance.now() - started);
}

export interface VerifiedMagicLink {
  readonly token: string;
  readonly sessionId: string;
  readonly userId: string;
  readonly expiresAt: Date;
  /** The `next` stored when the link was issued. */
  readonly next: string;
}

const invalidLink = () =>
  new DomainError('unauthorized', 'This sign-in link is invalid or has expired', {
    details: { reason: 'invalid_link' },
  });

/**
 * Consumes a link: exactly one caller wins (the link's stream version is the lock), every other one gets the one
 * refusal and a `magic_link.rejected` event naming why. A new user is created here under open sign-up.
 */
export async function verifyMagicLink(
  ctx: CoreContext,
  meta: EventMeta,
  input: { email: unknown; code: unknown; lifetime: SessionLifetime },
): Promise<VerifiedMagicLink> {
  const email = typeof input.email === 'string' ? normalizeEmail(input.email) : '';
  const code = typeof input.code === 'string' ? input.code : '';
  const codeHash = hashToken(code);
  const row = CODE_PATTERN.test(code)
    ? await ctx.db
        .selectFrom('magic_links')
        .select(['id', 'superseded_at'])
        .where('code_hash', '=', codeHash)
        .executeTakeFirst()
    : undefined;

  for (let attempt = 1; attempt <= 8; attempt++) {
    const now = ctx.clock.now();
    const stream = row ? magicLinkStream(row.id) : 'magic_link-unknown';
    const history = row ? await readStream(ctx.db, stream) : [];
    const state = fold(magicLinkDecider, history);
    const sessionId = typeId('ses');
    const events = magicLinkDecider.decide(
      { type: 'VerifyLink', data: { email, codeHash, now, superseded: row?.superseded_at != null, sessionId } },
      state,
    );
    const first = events[0];
    if (!state || first?.type !== 'magic_link.verified') {
      await ctx.store.append({ streams: [{ stream, expectedVersion: 'any', events }], meta, occurredAt: now });
      throw invalidLink();
    }

    const streams: StreamAppend[] = [{ stream, expectedVersion: history.length, events }];
    const user = await ctx.db
      .selectFrom('users')
      .select(['id', 'disabled', 'email_verified'])
      .where(sql<string>`lower(email)`, '=', state.email)
      .executeTakeFirst();
    let userId: string;
    if (user) {
      if (user.disabled) {
        await ctx.store.append({
          streams: [
            {
              stream,
              expectedVersion: 'any',
              events: [{ type: 'magic_link.rejected', data: { link_id: state.id, reason: 'unknown' } }],
            },
          ],
          meta,
          occurredAt: now,
        });
        throw invalidLink();
      }
      userId = user.id;
      if (!user.email_verified) {
        streams.push({
          stream: userStream(userId),
          expectedVersion: 'any',
          events: [{ type: 'user.email_verified', data: { user_id: userId } }],
        });
      }
    } else {
      // Only a link issued under open sign-up exists for an unknown address.
      userId = typeId('user');
      streams.push({
        stream: userStream(userId),
        expectedVersion: 0,
        events: [
          {
            type: 'user.registered',
            data: { user_id: userId, email: state.email, name: null, role: 'member', method: 'magic_link' },
          },
          { type: 'user.email_verified', data: { user_id: userId } },
        ],
      });
    }
    const token = generateToken('session');
    const expiresAt = new Date(now.getTime() + (input.lifetime === 'browser' ? BROWSER_SESSION_MS : API_SESSION_MS));
    streams.push({
      stream: sessionStream(sessionId),
      expectedVersion: 0,
      events: [
        {
          type: 'session.created',
          data: {
            session_id: sessionId,
            user_id: userId,
            method: 'magic_link',
            token_hash: hashToken(token),
            expires_at: expiresAt.toISOString(),
          },
        },
      ],
    });
    try {
      await ctx.store.append({ streams, meta, occurredAt: now });
    } catch (error) {
      const unique = (error as { code?: unknown })?.code === '23505';
      if ((error instanceof ConcurrencyError || unique) && attempt < 8) continue;
      throw error;
    }
    // Getting in by mail proves the address: its password failures are forgotten (and a capped address unlocked).
    // After the commit, and not worth failing a sign-in that worked for: at worst the address stays throttled.
    await resetSigninThrottle(ctx, email).catch(() => undefined);
    return { token, sessionId, userId, expiresAt, next: state.next };
  }
  throw invalidLink();
}
