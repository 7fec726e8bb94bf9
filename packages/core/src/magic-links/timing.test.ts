import { describe, expect, it } from 'vitest';
import { ResponseTiming } from './service.ts';

describe('ResponseTiming', () => {
  it('does not wait before any link was issued', async () => {
    const t = new ResponseTiming();
    const start = performance.now();
    await t.pad(0);
    expect(performance.now() - start).toBeLessThan(50);
  });

  it('makes a request that issued nothing last at least about as long as issuing one (a lower bound)', async () => {
    const t = new ResponseTiming();
    t.record(80);
    expect(t.estimateMs).toBe(80);
    const start = performance.now();
    await t.pad(10);
    // The estimate ±10 %, minus the 10 ms already spent: at least 62 ms of waiting.
    expect(performance.now() - start).toBeGreaterThanOrEqual(60);
  });

  it('follows the recent issue times (moving average)', () => {
    const t = new ResponseTiming();
    t.record(100);
    t.record(200);
    expect(t.estimateMs).toBeCloseTo(120);
  });
});
