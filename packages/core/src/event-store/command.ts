import type { Database } from '@keyledger/db';
import type { Kysely } from 'kysely';
import type { Clock } from '../clock.ts';
import { ConcurrencyError, DomainError } from '../errors.ts';
import type { EventMeta } from './catalogue.ts';
import { type Decider, fold } from './decider.ts';
import type { EventStore } from './event-store.ts';
import { readStream } from './read.ts';
import type { AppendRequest, AppendResult, OutboxMessage, StreamAppend } from './types.ts';

/** What every core command needs: the database (for reads), the store (for writes) and the clock. */
export interface CoreContext {
  readonly db: Kysely<Database>;
  readonly store: EventStore;
  readonly clock: Clock;
}

const MAX_ATTEMPTS = 8;

/**
 * Reads a stream, folds it, decides, and appends at the version it read; on a ConcurrencyError it starts again from
 * fresh state. `also` adds events to other streams in the same transaction (e.g. revoking a user's sessions).
 */
export async function runCommand<S, C, E extends { type: string; data: unknown }>(
  ctx: CoreContext,
  stream: string,
  decider: Decider<S, C, E>,
  command: C,
  meta: EventMeta,
  options: {
    also?: (state: S) => Promise<StreamAppend[]>;
    outbox?: (state: S) => OutboxMessage[];
    within?: AppendRequest['within'];
  } = {},
): Promise<{ state: S; result: AppendResult | null }> {
  for (let attempt = 1; ; attempt++) {
    const history = await readStream(ctx.db, stream);
    const state = fold(decider, history);
    const events = decider.decide(command, state);
    const also = options.also ? await options.also(state) : [];
    if (events.length === 0 && also.length === 0) return { state, result: null };
    const streams: StreamAppend[] = [];
    if (events.length > 0) streams.push({ stream, expectedVersion: history.length, events });
    streams.push(...also);
    try {
      const occurredAt = ctx.clock.now();
      const result = await ctx.store.append({
        streams,
        meta,
        occurredAt,
        outbox: options.outbox?.(state),
        within: options.within,
      });
      return { state: events.reduce((s, e) => decider.evolve(s, { ...e, occurred_at: occurredAt }), state), result };
    } catch (error) {
      if (error instanceof ConcurrencyError && attempt < MAX_ATTEMPTS) continue;
      throw translateStorageError(error);
    }
  }
}

/** A unique-index violation raised by a projection means the thing already exists: a 409, not a 500. */
export function translateStorageError(error: unknown): unknown {
  const code = (error as { code?: unknown })?.code;
  if (code === '23505') return new DomainError('conflict', 'It already exists', { cause: error });
  return error;
}
