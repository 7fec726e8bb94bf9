import { createHash } from 'node:crypto';
import type { Clock } from '../clock.ts';
import type { EventMeta } from '../event-store/catalogue.ts';
import type { EventStore } from '../event-store/event-store.ts';

export const ROLLUP_WINDOW_MS = 60_000;

type Kind = 'auth.rejected' | 'access.denied';

interface Window {
  readonly type: Kind;
  readonly data: Record<string, unknown>;
  readonly meta: EventMeta;
  readonly start: number;
  count: number;
}

/**
 * Keeps an attack from flooding the log: per source (credential kind or principal, and client IP) and per 60 s
 * window, the first failure is written at once with count 1; the rest are counted and written as one event with
 * count, window_start and window_end when the window closes (or at shutdown).
 */
export class FailureRollup {
  readonly #store: EventStore;
  readonly #clock: Clock;
  readonly #open = new Map<string, Window>();
  #timer: NodeJS.Timeout | undefined;

  constructor(store: EventStore, clock: Clock) {
    this.#store = store;
    this.#clock = clock;
  }

  start(intervalMs = 5_000): void {
    this.#timer = setInterval(() => void this.flush(false).catch(() => {}), intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.flush(true);
  }

  /** Records one failure; the first of its window is committed before this resolves. */
  async record(type: Kind, source: string, data: Record<string, unknown>, meta: EventMeta): Promise<void> {
    const now = this.#clock.now().getTime();
    const key = `${type}|${source}|${meta.ip ?? ''}`;
    const open = this.#open.get(key);
    if (open && now - open.start < ROLLUP_WINDOW_MS) {
      open.count += 1;
      return;
    }
    if (open) await this.#write(key, open);
    this.#open.set(key, { type, data, meta, start: now, count: 0 });
    await this.#append(type, key, { ...data, count: 1 }, meta, now);
  }

  /** Writes the roll-up of every window that has closed (or all of them). */
  async flush(all: boolean): Promise<void> {
    const now = this.#clock.now().getTime();
    for (const [key, w] of [...this.#open]) {
      if (all || now - w.start >= ROLLUP_WINDOW_MS) await this.#write(key, w);
    }
  }

  async #write(key: string, w: Window): Promise<void> {
    this.#open.delete(key);
    if (w.count === 0) return;
    const end = Math.min(this.#clock.now().getTime(), w.start + ROLLUP_WINDOW_MS);
    await this.#append(
      w.type,
      key,
      {
        ...w.data,
        count: w.count,
        window_start: new Date(w.start).toISOString(),
        window_end: new Date(end).toISOString(),
      },
      w.meta,
      end,
    );
  }

  async #append(type: Kind, key: string, data: Record<string, unknown>, meta: EventMeta, at: number): Promise<void> {
    const stream = `${type === 'auth.rejected' ? 'auth' : 'access'}-${createHash('sha256').update(key).digest('hex').slice(0, 32)}`;
    await this.#store.append({
      streams: [{ stream, expectedVersion: 'any', events: [{ type, data }] }],
      meta,
      occurredAt: new Date(at),
    });
  }
}
