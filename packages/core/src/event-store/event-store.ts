import type { Database } from '@keyledger/db';
import { type Kysely, sql, type Transaction } from 'kysely';
import { ConcurrencyError } from '../errors.ts';
import { uuidv7 } from '../ids.ts';
import { eventHash } from './canonical.ts';
import type { Catalogue, EventMeta } from './catalogue.ts';
import { type PreparedAppend, prepareAppend } from './prepare.ts';
import type { AppendRequest, AppendResult, ChainHead, Projection, StoredEvent } from './types.ts';

export const EVENTS_CHANNEL = 'keyledger_events';

export interface EventStoreOptions {
  readonly db: Kysely<Database>;
  readonly catalogue: Catalogue;
  readonly projections?: readonly Projection[];
  /** Most appends one transaction may carry. */
  readonly maxBatchSize?: number;
}

interface Pending {
  readonly prepared: PreparedAppend;
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (error: unknown) => void;
}

type Outcome = { ok: true; events: StoredEvent[] } | { ok: false; error: ConcurrencyError };

/**
 * The append side of the log. Every append is validated up front, then queued; one writer at a time takes the
 * whole queue into a single transaction (group commit), so concurrent callers share one lock, one chain-head
 * update and one commit instead of queueing on the chain lock one fsync at a time. Each caller still gets its own
 * outcome: a version conflict rejects only that append. A caller's promise settles only after the commit.
 */
export class EventStore {
  readonly #db: Kysely<Database>;
  readonly #catalogue: Catalogue;
  readonly #projections: readonly Projection[];
  readonly #maxBatch: number;
  #queue: Pending[] = [];
  #draining = false;
  #running: Promise<void> = Promise.resolve();
  readonly #listeners = new Set<(head: ChainHead, events: readonly StoredEvent[]) => void>();

  constructor(options: EventStoreOptions) {
    this.#db = options.db;
    this.#catalogue = options.catalogue;
    this.#projections = options.projections ?? [];
    this.#maxBatch = options.maxBatchSize ?? 256;
  }

  get projections(): readonly Projection[] {
    return this.#projections;
  }

  /** Appends events to one or more streams atomically. Throws InvalidEventError or ConcurrencyError. */
  async append(request: AppendRequest): Promise<AppendResult> {
    const prepared = prepareAppend(this.#catalogue, request);
    return new Promise<AppendResult>((resolve, reject) => {
      this.#queue.push({ prepared, resolve, reject });
      if (!this.#draining) {
        this.#draining = true;
        this.#running = this.#drainQueue();
      }
    });
  }

  /**
   * Called synchronously after every commit, before any caller's promise continues, with the new head and the
   * events committed (in this process only; other processes learn from NOTIFY).
   */
  onAppended(listener: (head: ChainHead, events: readonly StoredEvent[]) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Resolves when every queued append has been settled. */
  async drain(): Promise<void> {
    while (this.#draining) await this.#running;
  }

  async #drainQueue(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        // Let the callers released by the last commit queue their next append first: without this pause the
        // next batch is cut before they resume, and batches alternate between 1 and W-1 appends.
        await new Promise((resolve) => setImmediate(resolve));
        const batch = this.#queue.splice(0, this.#maxBatch);
        await this.#flush(batch);
      }
    } finally {
      // Cleared in the same tick the loop sees an empty queue, so a later append always starts a new drain.
      this.#draining = false;
    }
  }

  async #flush(batch: Pending[]): Promise<void> {
    let outcomes: Outcome[];
    let head: ChainHead;
    try {
      ({ outcomes, head } = await this.#write(batch.map((p) => p.prepared)));
    } catch (error) {
      // One append's projection failed (or the database did): retry each alone so only the culprit fails.
      if (batch.length > 1) {
        for (const p of batch) await this.#flush([p]);
      } else {
        batch[0]?.reject(error);
      }
      return;
    }
    const committed = outcomes.flatMap((o) => (o.ok ? o.events : []));
    // Listeners run before any caller continues: a cache evicted here is never read stale by the caller's next step.
    for (const listener of this.#listeners) {
      // A listener's failure is its own: the commit has happened and every caller must still hear so.
      try {
        listener(head, committed);
      } catch {}
    }
    batch.forEach((p, i) => {
      const o = outcomes[i] as Outcome;
      if (o.ok)
        p.resolve({
          events: o.events,
          head: { seq: o.events.at(-1)?.seq ?? head.seq, hash: o.events.at(-1)?.hash ?? head.hash },
        });
      else p.reject(o.error);
    });
  }

  async #write(batch: readonly PreparedAppend[]): Promise<{ outcomes: Outcome[]; head: ChainHead }> {
    return this.#db.transaction().execute(async (trx) => {
      // The chain lock: every appender, in every process, queues here, so seq is gap-free and the chain linear.
      const locked = await sql<{
        seq: number | string;
        hash: Uint8Array;
        latest_at: Date | string | null;
        max_lateness_ms: number | string;
      }>`select seq, hash, latest_at, max_lateness_ms from chain_head where id for update`.execute(trx);
      const headRow = locked.rows[0];
      if (!headRow) throw new Error('chain_head is missing: the database was not migrated');
      let seq = Number(headRow.seq);
      let prevHash: Uint8Array = headRow.hash;
      // How far out of time order the log is (clocks differ between instances): audit time filters rely on it.
      let latestMs = headRow.latest_at === null ? null : new Date(headRow.latest_at).getTime();
      let maxLatenessMs = Number(headRow.max_lateness_ms);

      const versions = await currentVersions(trx, [...new Set(batch.flatMap((a) => a.streams.map((s) => s.stream)))]);
      const outcomes: Outcome[] = [];
      const rows: StoredEvent[] = [];
      const outbox: { seq: number; topic: string; payloadJson: string; availableAt: Date; createdAt: Date }[] = [];
      const json = new Map<StoredEvent, { data: string; meta: string; at: string }>();

      for (const append of batch) {
        const conflict = append.streams.find(
          (s) => s.expectedVersion !== 'any' && s.expectedVersion !== (versions.get(s.stream) ?? 0),
        );
        if (conflict) {
          outcomes.push({
            ok: false,
            error: new ConcurrencyError(
              conflict.stream,
              conflict.expectedVersion as number,
              versions.get(conflict.stream) ?? 0,
            ),
          });
          continue;
        }
        const events: StoredEvent[] = [];
        for (const s of append.streams) {
          let version = versions.get(s.stream) ?? 0;
          for (const e of s.events) {
            seq += 1;
            version += 1;
            const fields = {
              seq,
              id: e.id,
              stream: s.stream,
              stream_version: version,
              type: e.type,
              schema_version: e.schemaVersion,
              data: e.data,
              meta: append.meta,
              occurred_at: append.occurredAtIso,
            };
            const hash = eventHash(prevHash, fields);
            const stored: StoredEvent = {
              ...fields,
              meta: append.meta as EventMeta,
              occurred_at: append.occurredAt,
              prev_hash: prevHash,
              hash,
            };
            // occurred_at goes in as the ISO text that was hashed: a JS Date would be sent in the local offset,
            // which drivers round to whole minutes.
            json.set(stored, { data: e.dataJson, meta: append.metaJson, at: append.occurredAtIso });
            events.push(stored);
            prevHash = hash;
          }
          versions.set(s.stream, version);
        }
        for (const m of append.outbox) outbox.push({ seq, ...m, createdAt: append.occurredAt });
        if (events.length > 0) {
          const at = append.occurredAt.getTime();
          if (latestMs !== null && at < latestMs) maxLatenessMs = Math.max(maxLatenessMs, latestMs - at);
          latestMs = latestMs === null ? at : Math.max(latestMs, at);
        }
        rows.push(...events);
        outcomes.push({ ok: true, events });
      }

      if (rows.length > 0) {
        for (let i = 0; i < rows.length; i += 500) {
          const chunk = rows.slice(i, i + 500);
          await sql`insert into events (seq, id, stream, stream_version, type, schema_version, data, meta, occurred_at, prev_hash, hash)
            values ${sql.join(
              chunk.map((r) => {
                const j = json.get(r) as { data: string; meta: string; at: string };
                return sql`(${r.seq}, ${r.id}, ${r.stream}, ${r.stream_version}, ${r.type}, ${r.schema_version},
                  cast(cast(${j.data} as text) as jsonb), cast(cast(${j.meta} as text) as jsonb), cast(${j.at} as timestamptz), ${r.prev_hash}, ${r.hash})`;
              }),
            )}`.execute(trx);
        }
        await sql`update chain_head set seq = ${seq}, hash = ${prevHash},
          latest_at = cast(${new Date(latestMs ?? 0).toISOString()} as timestamptz), max_lateness_ms = ${maxLatenessMs}
          where id`.execute(trx);
        for (const event of rows) {
          for (const projection of this.#projections) await projection.apply(trx, event);
        }
        for (const [i, append] of batch.entries()) {
          if (append.within && outcomes[i]?.ok) await append.within(trx);
        }
        if (outbox.length > 0) {
          await sql`insert into outbox (id, topic, payload, event_seq, created_at, available_at)
            values ${sql.join(
              outbox.map(
                (m) =>
                  sql`(${uuidv7(m.createdAt.getTime())}, ${m.topic}, cast(cast(${m.payloadJson} as text) as jsonb), ${m.seq}, ${m.createdAt}, ${m.availableAt})`,
              ),
            )}`.execute(trx);
        }
        // "<head seq> <distinct types>": enough for other instances to tell whether their caches are affected.
        const types = [...new Set(rows.map((r) => r.type))].join(',');
        await sql`select pg_notify(${EVENTS_CHANNEL}, ${`${seq} ${types}`})`.execute(trx);
      }
      return { outcomes, head: { seq, hash: prevHash } };
    });
  }
}

async function currentVersions(trx: Transaction<Database>, streams: string[]): Promise<Map<string, number>> {
  // One index probe per stream (the newest version), not a scan of every version of every stream.
  const { rows } = await sql<{ stream: string; version: number | null }>`
    select s.stream, (select e.stream_version from events e where e.stream = s.stream order by e.stream_version desc limit 1) as version
    from unnest(cast(${streams} as text[])) as s(stream)`.execute(trx);
  return new Map(rows.filter((r) => r.version !== null).map((r) => [r.stream, Number(r.version)]));
}
