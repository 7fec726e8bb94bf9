import { describe, expect, it } from 'vitest';
import { bucketize } from '../pages/audit/chart.tsx';
import { apiFilters, exportHref, filtersFromSearch, searchFromFilters } from '../pages/audit/filters.ts';
import { safeNext } from '../pages/login.tsx';
import { trpcError } from '../test/render.tsx';
import { messageOf } from './errors.ts';
import { describeUserAgent } from './format.ts';

describe('explorer filters', () => {
  it('round-trip through the URL and become API filters', () => {
    const f = filtersFromSearch('type=api_key.*,signin.failed&actor=user_1&user=user_2&range=24h');
    expect(filtersFromSearch(searchFromFilters(f).slice(1))).toEqual(f);
    const now = Date.UTC(2026, 10, 22, 12);
    expect(apiFilters(f, now)).toEqual({
      type: ['api_key.*', 'signin.failed'],
      actor: 'user_1',
      subject: 'user_2',
      since: '2026-11-21T12:00:00.000Z',
    });
    expect(exportHref(apiFilters(f, now), 'csv')).toBe(
      '/v1/audit/export?format=csv&type=api_key.*%2Csignin.failed&actor=user_1&subject=user_2&since=2026-11-21T12%3A00%3A00.000Z',
    );
  });

  it('ignore an unknown range', () => {
    expect(filtersFromSearch('range=forever').range).toBe('all');
  });
});

describe('the chart buckets', () => {
  it('stack hourly counts by family over at least a day', () => {
    const now = Date.UTC(2026, 10, 22, 12, 30);
    const { buckets, families } = bucketize(
      [
        { hour: '2026-11-22T12:00:00.000Z', type: 'session.created', count: 3 },
        { hour: '2026-11-22T12:00:00.000Z', type: 'session.revoked', count: 1 },
        { hour: '2026-11-22T10:00:00.000Z', type: 'signin.failed', count: 2 },
      ],
      now,
    );
    expect(buckets).toHaveLength(24);
    expect(buckets.at(-1)?.byFamily.get('session')).toBe(4);
    expect(buckets.at(-3)?.byFamily.get('signin')).toBe(2);
    expect([...(buckets.at(-1)?.byType.entries() ?? [])]).toEqual([
      ['session.created', 3],
      ['session.revoked', 1],
    ]);
    expect(families).toEqual([
      ['session', 4],
      ['signin', 2],
    ]);
  });
});

describe('the chart over a long span', () => {
  it('counts by day, at most 72 bars, the newest last', () => {
    const now = Date.UTC(2026, 10, 22, 12);
    const rows = Array.from({ length: 100 }, (_, d) => ({
      hour: new Date(now - d * 86_400_000).toISOString(),
      type: 'user.registered',
      count: 1,
    }));
    const { buckets, size } = bucketize(rows, now);
    expect(size).toBe(86_400_000);
    expect(buckets).toHaveLength(72);
    expect(buckets.at(-1)?.start).toBe(Date.UTC(2026, 10, 22));
    expect(buckets.every((b) => b.total === 1)).toBe(true);
  });
});

describe('safeNext', () => {
  it('keeps local paths and refuses anything that could leave the origin', () => {
    expect(safeNext('/audit?type=x')).toBe('/audit?type=x');
    for (const bad of [null, '', 'https://evil.example', '//evil.example', '/\\evil.example']) {
      expect(safeNext(bad)).toBe('/');
    }
  });
});

describe('describeUserAgent', () => {
  it('names common browsers and systems', () => {
    expect(
      describeUserAgent(
        'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36',
      ),
    ).toBe('Chrome on macOS');
    expect(describeUserAgent('Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Version/17.0 Mobile Safari/604.1')).toBe(
      'Safari on iOS',
    );
    expect(describeUserAgent(null)).toBe('Unknown device');
  });
});

describe('messageOf', () => {
  it('tells someone on the wrong address where to go instead of a bare refusal', () => {
    expect(messageOf(trpcError('Cross-origin request refused', 403, 'csrf_rejected'))).toMatch(/public URL/);
    expect(messageOf(trpcError('API key not found', 404, 'not_found'))).toBe('API key not found');
    expect(messageOf(trpcError('whatever', 401))).toBe('Your session has ended. Sign in again.');
  });
});
