import {
  type AuditFilter,
  CheckpointForkError,
  countEventsByHour,
  EVENTS_CHANNEL,
  eventJson,
  getAuditEvent,
  latestStoredCheckpoint,
  makeCheckpoint,
  NoteError,
  type Principal,
  parseCheckpoint,
  queryAuditEvents,
  readChainHead,
  readLatestExportedCheckpoint,
  verifierKeyOf,
} from '@keyledger/core';
import type { CheckpointsTable, Database } from '@keyledger/db';
import { TRPCError, tracked } from '@trpc/server';
import type { Kysely, Selectable } from 'kysely';
import { z } from 'zod';
import {
  type AuditEvent,
  auditFilterOf,
  Event,
  splitTypes,
  TYPE_PATTERN,
  VerifyResult,
  verifyAgainstLatestCheckpoint,
} from '../../audit-shapes.ts';
import type { TrpcContext } from '../context.ts';
import { adminProcedure, router, scopedProcedure } from '../init.ts';
import { Id, Timestamp } from './shared.ts';

/**
 * The audit log over tRPC: the same semantics as REST `/v1/audit/*` (DESIGN §5), plus counts for charts,
 * checkpoints and a live tail. Members see the events about themselves; core applies that from the principal.
 */

export { type AuditEvent, Event } from '../../audit-shapes.ts';

const iso = z.iso.datetime({ offset: true });

/** `type` is a comma-separated list (as over REST) or an array of exact types or prefixes like `api_key.*`. */
const TypeList = z
  .union([z.string().max(1000), z.array(z.string().max(200)).max(50)])
  .transform((v) => splitTypes(v) ?? [])
  .refine((types) => types.every((t) => TYPE_PATTERN.test(t)), {
    message: 'an event type or a prefix like api_key.*',
  });

const filterShape = {
  type: TypeList.optional(),
  actor: Id.optional(),
  subject: Id.optional(),
  stream: z.string().max(200).optional(),
  ip: z.string().max(64).optional(),
  outcome: z.enum(['success', 'failure']).optional(),
  since: iso.optional(),
  until: iso.optional(),
};
const Filters = z.strictObject(filterShape);

const QueryInput = z
  .strictObject({
    ...filterShape,
    after: z.number().int().min(0).optional(),
    order: z.enum(['asc', 'desc']).default('asc'),
    limit: z.number().int().min(1).max(1000).default(50),
  })
  .prefault({});

/** A seq as text (the SSE event id): what the tail yields, and what a reconnecting client sends back. */
const SeqText = z.string().regex(/^(0|[1-9][0-9]{0,15})$/, 'a seq');

const OnEventInput = z.strictObject({ ...filterShape, lastEventId: SeqText.nullish() }).prefault({});

function filterOf(q: z.output<typeof Filters>): AuditFilter {
  return auditFilterOf({ ...q, types: q.type });
}

const Checkpoint = z.object({
  size: z.number().int(),
  origin: z.string(),
  /** hex, the hash of the event at seq = size */
  head_hash: z.string(),
  /** The C2SP tlog-checkpoint signed note. */
  note: z.string(),
  created_at: Timestamp,
});

function checkpointJson(row: Selectable<CheckpointsTable>): z.input<typeof Checkpoint> {
  return {
    size: Number(row.size),
    origin: row.origin,
    head_hash: Buffer.from(row.head_hash).toString('hex'),
    note: row.note,
    created_at: new Date(row.created_at).toISOString(),
  };
}

async function storedCheckpoint(db: Kysely<Database>, size: number) {
  const row = await db.selectFrom('checkpoints').selectAll().where('size', '=', size).executeTakeFirst();
  return row ? checkpointJson(row) : null;
}

/** The body of a signed note (before the blank line), parsed: enough to tell its size and origin. */
function checkpointBody(note: string): { size: number; origin: string } | null {
  try {
    const { size, origin } = parseCheckpoint(note.slice(0, note.indexOf('\n\n') + 1));
    return { size, origin };
  } catch (error) {
    if (error instanceof NoteError) return null;
    throw error;
  }
}

/** How often the tail polls the log when no NOTIFY arrives: the safety net for a lost notification. */
const TAIL_POLL_MS = 3_000;
/** Events read per page while the tail catches up. */
const TAIL_PAGE = 500;

/**
 * The live tail: yields the events after seq `after`, then reads the events after the last one it saw whenever a
 * NOTIFY arrives on EVENTS_CHANNEL, and every TAIL_POLL_MS as well. Each event is yielded as `tracked(seq)`, so a
 * client reconnecting with its last id resumes exactly after it.
 *
 * Nothing is skipped: seqs are assigned under the chain lock held until commit, so once seq N is visible every
 * earlier seq is too, and reading `seq > cursor` after each wake-up sees every event committed since.
 */
async function* tailEvents(
  ctx: TrpcContext,
  viewer: Principal,
  filter: AuditFilter,
  after: number,
  signal: AbortSignal | undefined,
) {
  const db = ctx.deps.core.db;
  let dirty = false;
  let wake: (() => void) | null = null;
  const poke = () => {
    dirty = true;
    wake?.();
  };
  // Listen before the first read, so an append made between that read and the LISTEN still wakes the tail.
  const unlisten = await ctx.deps.handle.listen(EVENTS_CHANNEL, poke);
  const onAbort = () => wake?.();
  signal?.addEventListener('abort', onAbort);
  try {
    let cursor = after;
    while (!signal?.aborted) {
      dirty = false;
      // Every event up to this head is visible to the reads below (it committed before the head was read).
      const head = (await readChainHead(db)).seq;
      while (true) {
        const page = await queryAuditEvents(db, viewer, filter, { after: cursor, order: 'asc', limit: TAIL_PAGE });
        for (const event of page.data) {
          cursor = event.seq;
          yield tracked(String(event.seq), eventJson(event) as AuditEvent);
        }
        if (page.next_cursor === null || signal?.aborted) break;
      }
      // Nothing the viewer may see lies between the cursor and the head: later reads need not rescan it.
      if (head > cursor) cursor = head;
      if (dirty || signal?.aborted) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => resolve(), TAIL_POLL_MS);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    await unlisten();
  }
}

export const auditRouter = router({
  /** A keyset page by seq; `next_cursor` is the next `after`, or null at the end. */
  query: scopedProcedure('audit:read')
    .input(QueryInput)
    .output(z.object({ data: z.array(Event), next_cursor: z.number().int().nullable() }))
    .query(async ({ ctx, input }) => {
      const page = await queryAuditEvents(ctx.deps.core.db, ctx.principal, filterOf(input), {
        after: input.after,
        order: input.order,
        limit: input.limit,
      });
      return { data: page.data.map((e) => eventJson(e) as AuditEvent), next_cursor: page.next_cursor };
    }),

  /** One event, with the first stored checkpoint that covers it (null until one does). */
  get: scopedProcedure('audit:read')
    .input(z.strictObject({ id: z.string().max(64) }))
    .output(Event.extend({ checkpoint: z.object({ size: z.number().int(), note: z.string() }).nullable() }))
    .query(async ({ ctx, input }) => {
      const event = await getAuditEvent(ctx.deps.core.db, ctx.principal, input.id);
      if (!event) throw new TRPCError({ code: 'NOT_FOUND', message: 'Event not found' });
      const covering = await ctx.deps.core.db
        .selectFrom('checkpoints')
        .select(['size', 'note'])
        .where('size', '>=', event.seq)
        .orderBy('size', 'asc')
        .limit(1)
        .executeTakeFirst();
      return {
        ...(eventJson(event) as AuditEvent),
        checkpoint: covering ? { size: Number(covering.size), note: covering.note } : null,
      };
    }),

  /** Events per type per UTC hour, for charts. */
  countsByHour: scopedProcedure('audit:read')
    .input(Filters.prefault({}))
    .output(z.array(z.object({ hour: Timestamp, type: z.string(), count: z.number().int() })))
    .query(({ ctx, input }) => countEventsByHour(ctx.deps.core.db, ctx.principal, filterOf(input))),

  /** Recomputes every hash and holds the log to the latest exported checkpoint; ok only when both hold. */
  verify: scopedProcedure('audit:read')
    .output(VerifyResult)
    .query(({ ctx, signal }) => verifyAgainstLatestCheckpoint(ctx.deps, signal)),

  /**
   * The same verification with its progress: `{type: 'progress', checked, total}` after each page the server has
   * walked, then `{type: 'result', result}` (over SSE, for a progress bar). Unsubscribing stops the walk.
   */
  verifyStream: scopedProcedure('audit:read').subscription(async function* ({ ctx, signal }) {
    type Progress = { checked: number; total: number };
    type Outcome = { result: z.infer<typeof VerifyResult> } | { error: unknown };
    // Written by the walk's callbacks, read by this loop (a holder, so neither looks constant to the compiler).
    const state: { latest: Progress | null; outcome: Outcome | null; wake: (() => void) | null } = {
      latest: null,
      outcome: null,
      wake: null,
    };
    void verifyAgainstLatestCheckpoint(ctx.deps, signal, (progress) => {
      state.latest = progress;
      state.wake?.();
    }).then(
      (result) => {
        state.outcome = { result };
        state.wake?.();
      },
      (error: unknown) => {
        state.outcome = { error };
        state.wake?.();
      },
    );
    for (;;) {
      const progress = state.latest;
      if (progress) {
        state.latest = null;
        yield { type: 'progress' as const, checked: progress.checked, total: progress.total };
        continue;
      }
      const outcome = state.outcome;
      if (outcome) {
        if ('error' in outcome) throw outcome.error;
        yield { type: 'result' as const, result: outcome.result };
        return;
      }
      await new Promise<void>((resolve) => {
        state.wake = resolve;
      });
      state.wake = null;
    }
  }),

  checkpoints: router({
    /** The latest checkpoint: the exported `latest` note, else the newest stored one. NOT_FOUND before any. */
    latest: scopedProcedure('audit:read')
      .output(z.object({ size: z.number().int(), origin: z.string(), note: z.string() }))
      .query(async ({ ctx }) => {
        const { deps } = ctx;
        const exported = await readLatestExportedCheckpoint(deps.checkpoints.exportDir);
        const exportedBody = exported ? checkpointBody(exported) : null;
        if (exported && exportedBody) return { ...exportedBody, note: exported };
        const stored = await latestStoredCheckpoint(deps.core.db);
        const storedBody = stored ? checkpointBody(stored.note) : null;
        if (!stored || !storedBody) throw new TRPCError({ code: 'NOT_FOUND', message: 'No checkpoint yet' });
        return { ...storedBody, note: stored.note };
      }),

    /** The verifier key, in C2SP signed-note vkey form. */
    publicKey: scopedProcedure('audit:read')
      .output(z.object({ key: z.string() }))
      .query(({ ctx }) => ({ key: verifierKeyOf(ctx.deps.checkpoints.signer) })),

    /** The stored checkpoints, newest first; `after` is an exclusive size cursor. */
    list: scopedProcedure('audit:read')
      .input(
        z
          .strictObject({
            after: z.number().int().min(0).optional(),
            limit: z.number().int().min(1).max(1000).default(50),
          })
          .prefault({}),
      )
      .output(z.object({ data: z.array(Checkpoint), next_cursor: z.number().int().nullable() }))
      .query(async ({ ctx, input }) => {
        let q = ctx.deps.core.db.selectFrom('checkpoints').selectAll();
        if (input.after !== undefined) q = q.where('size', '<', input.after);
        const rows = await q
          .orderBy('size', 'desc')
          .limit(input.limit + 1)
          .execute();
        const data = rows.slice(0, input.limit).map(checkpointJson);
        return { data, next_cursor: rows.length > input.limit ? (data.at(-1)?.size ?? null) : null };
      }),

    /** Signs the current head now (admins). Null on an empty log; the covering checkpoint when one exists. */
    make: adminProcedure.output(Checkpoint.nullable()).mutation(async ({ ctx }) => {
      const { deps } = ctx;
      const { signer, exportDir, checkpointer } = deps.checkpoints;
      try {
        const made = checkpointer
          ? await checkpointer.checkpointNow()
          : await makeCheckpoint(deps.core.db, { signer, origin: signer.name, exportDir, clock: deps.core.clock });
        const size = made?.size ?? (await latestStoredCheckpoint(deps.core.db))?.size;
        return size === undefined ? null : await storedCheckpoint(deps.core.db, size);
      } catch (error) {
        if (error instanceof CheckpointForkError) {
          throw new TRPCError({ code: 'CONFLICT', message: error.message, cause: error });
        }
        throw error;
      }
    }),
  }),

  /**
   * The live tail over SSE. Replays the events after `lastEventId` (a seq; absent: only events from now on), then
   * follows the log. Each event carries its seq as the SSE id, so a reconnecting client misses nothing.
   */
  onEvent: scopedProcedure('audit:read')
    .input(OnEventInput)
    .subscription(async ({ ctx, input, signal }) => {
      // The starting point is fixed when the call is made, not when the stream is first read: an event appended
      // between subscribing and the first pull is delivered, not skipped.
      const after = input.lastEventId != null ? Number(input.lastEventId) : (await readChainHead(ctx.deps.core.db)).seq;
      return tailEvents(ctx, ctx.principal, filterOf(input), after, signal);
    }),
});
