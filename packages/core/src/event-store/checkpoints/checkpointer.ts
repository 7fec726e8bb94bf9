import type { Database } from '@keyledger/db';
import type { Kysely } from 'kysely';
import type { EventStore } from '../event-store.ts';
import { readChainHead } from '../read.ts';
import { type CheckpointTarget, latestStoredCheckpoint, type MadeCheckpoint, makeCheckpoint } from './checkpoint.ts';

export interface CheckpointerOptions extends CheckpointTarget {
  readonly db: Kysely<Database>;
  /** Make one after this many new events (KEYLEDGER_CHECKPOINT_EVERY). */
  readonly every: number;
  /** And at least this often while the log grows (KEYLEDGER_CHECKPOINT_INTERVAL, in ms here). */
  readonly intervalMs: number;
  readonly onError?: (error: unknown) => void;
  readonly onCheckpoint?: (checkpoint: MadeCheckpoint) => void;
}

/** Makes checkpoints every N events or T seconds, one at a time, and one more when stopped. */
export class Checkpointer {
  readonly #options: CheckpointerOptions;
  #lastSize = -1;
  #chain: Promise<unknown> = Promise.resolve();
  /** A run queued behind the current one and not started yet: it will see every append made before it starts. */
  #queued: Promise<MadeCheckpoint | null> | null = null;
  #timer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;

  constructor(options: CheckpointerOptions) {
    this.#options = options;
  }

  async start(store?: EventStore): Promise<void> {
    this.#lastSize = (await latestStoredCheckpoint(this.#options.db))?.size ?? 0;
    this.#unsubscribe = store?.onAppended((head) => {
      if (head.seq - this.#lastSize >= this.#options.every) void this.checkpointNow().catch(() => {});
    });
    this.#timer = setInterval(() => void this.checkpointNow().catch(() => {}), this.#options.intervalMs);
    this.#timer.unref();
  }

  /**
   * Makes a checkpoint of the current head unless the last one already covers it (then resolves to null). Calls
   * made while a run is waiting to start join it, so a burst of appends queues at most one more checkpoint.
   */
  checkpointNow(): Promise<MadeCheckpoint | null> {
    if (this.#queued) return this.#queued;
    const run = this.#chain.then(async () => {
      this.#queued = null;
      try {
        const head = await readChainHead(this.#options.db);
        if (head.seq === this.#lastSize) return null;
        const made = await makeCheckpoint(this.#options.db, this.#options);
        if (made && made.size !== this.#lastSize) {
          this.#lastSize = made.size;
          this.#options.onCheckpoint?.(made);
        }
        return made;
      } catch (error) {
        this.#options.onError?.(error);
        throw error;
      }
    });
    this.#queued = run;
    this.#chain = run.catch(() => {});
    return run;
  }

  async stop(): Promise<void> {
    this.#unsubscribe?.();
    if (this.#timer) clearInterval(this.#timer);
    await this.#chain;
    await this.checkpointNow().catch(() => {});
  }
}
