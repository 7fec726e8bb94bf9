/**
 * Requests per hour per credential (or per IP when unauthenticated), in fixed windows, in this process's memory:
 * cheap enough for every request. Behind a load balancer each instance counts its own share.
 */
export class RateLimiter {
  readonly #limit: number;
  readonly #windows = new Map<string, { start: number; count: number }>();

  constructor(limitPerHour: number) {
    this.#limit = limitPerHour;
  }

  get enabled(): boolean {
    return this.#limit > 0;
  }

  /** Counts a request; returns the headers' numbers and whether it is allowed. */
  hit(key: string, nowMs: number): { allowed: boolean; limit: number; remaining: number; resetSeconds: number } {
    let w = this.#windows.get(key);
    if (!w || nowMs - w.start >= 3600_000) {
      w = { start: nowMs, count: 0 };
      this.#windows.set(key, w);
      if (this.#windows.size > 100_000) this.#evict(nowMs);
    }
    w.count += 1;
    const resetSeconds = Math.max(1, Math.ceil((w.start + 3600_000 - nowMs) / 1000));
    return {
      allowed: w.count <= this.#limit,
      limit: this.#limit,
      remaining: Math.max(0, this.#limit - w.count),
      resetSeconds,
    };
  }

  #evict(nowMs: number): void {
    for (const [k, w] of this.#windows) if (nowMs - w.start >= 3600_000) this.#windows.delete(k);
  }
}
