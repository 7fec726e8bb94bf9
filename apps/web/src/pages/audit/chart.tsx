import { useMemo } from 'react';
import { formatNumber } from '../../lib/format.ts';
import { FAMILY_COLORS, familyOf } from './filters.ts';

export interface HourCount {
  hour: string;
  type: string;
  count: number;
}

const HOUR = 3600_000;
const DAY = 24 * HOUR;
const MAX_BARS = 72;

interface Bucket {
  start: number;
  total: number;
  byFamily: Map<string, number>;
  byType: Map<string, number>;
}

/** Hourly counts into at most MAX_BARS buckets (hours, or days over a longer span), stacked by event family. */
export function bucketize(
  rows: HourCount[],
  now = Date.now(),
): { buckets: Bucket[]; size: number; families: [string, number][] } {
  if (rows.length === 0) return { buckets: [], size: HOUR, families: [] };
  const times = rows.map((r) => new Date(r.hour).getTime());
  // At least the last day, up to this hour: one busy hour is a bar in its context, not a wall of colour.
  const lastHour = Math.max(...times, now - (now % HOUR));
  const firstHour = Math.min(...times, lastHour - 23 * HOUR);
  const size = (lastHour - firstHour) / HOUR + 1 > MAX_BARS ? DAY : HOUR;
  const floor = (t: number) => (size === DAY ? t - (t % DAY) : t);
  const end = floor(lastHour);
  const start = Math.max(floor(firstHour), end - (MAX_BARS - 1) * size);
  const buckets: Bucket[] = [];
  for (let t = start; t <= end; t += size) buckets.push({ start: t, total: 0, byFamily: new Map(), byType: new Map() });
  const families = new Map<string, number>();
  for (const r of rows) {
    const t = floor(new Date(r.hour).getTime());
    if (t < start) continue;
    const b = buckets[Math.round((t - start) / size)];
    if (!b) continue;
    const f = familyOf(r.type);
    b.total += r.count;
    b.byFamily.set(f, (b.byFamily.get(f) ?? 0) + r.count);
    b.byType.set(r.type, (b.byType.get(r.type) ?? 0) + r.count);
    families.set(f, (families.get(f) ?? 0) + r.count);
  }
  return { buckets, size, families: [...families.entries()].sort((a, b) => b[1] - a[1]) };
}

const label = (t: number, size: number) =>
  new Intl.DateTimeFormat(
    undefined,
    size === DAY
      ? { month: 'short', day: 'numeric' }
      : { hour: '2-digit', minute: '2-digit', day: 'numeric', month: 'short' },
  ).format(new Date(t));

/** A small stacked bar chart of our own (no chart library): events over time, coloured by family. */
export function EventsChart({ rows, onPickFamily }: { rows: HourCount[]; onPickFamily?: (family: string) => void }) {
  const { buckets, size, families } = useMemo(() => bucketize(rows), [rows]);
  if (buckets.length === 0) return null;
  const max = Math.max(...buckets.map((b) => b.total), 1);
  const W = 720;
  const H = 140;
  const gap = 2;
  const bw = W / buckets.length;
  const total = buckets.reduce((n, b) => n + b.total, 0);
  const order = families.map(([f]) => f);
  const first = buckets[0];
  const lastBucket = buckets.at(-1);
  return (
    <figure className="chart">
      <svg
        viewBox={`0 0 ${W} ${H}`}
        preserveAspectRatio="none"
        role="img"
        aria-label={`Events over time by type: ${formatNumber(total)} events in ${buckets.length} ${size === DAY ? 'days' : 'hours'}`}
        className="chart-svg"
      >
        {buckets.map((b, i) => {
          let y = H;
          return (
            <g key={b.start}>
              <title>{`${label(b.start, size)}: ${b.total} event${b.total === 1 ? '' : 's'}${[...b.byType.entries()]
                .sort((x, y) => y[1] - x[1])
                .map(([t, n]) => `\n${t}: ${n}`)
                .join('')}`}</title>
              <rect x={i * bw} y={0} width={bw} height={H} fill="transparent" />
              {order.map((f) => {
                const n = b.byFamily.get(f) ?? 0;
                if (!n) return null;
                const h = (n / max) * (H - 4);
                y -= h;
                return (
                  <rect
                    key={f}
                    x={i * bw + gap / 2}
                    y={y}
                    width={Math.max(bw - gap, 1)}
                    height={h}
                    fill={FAMILY_COLORS[f] ?? 'var(--muted)'}
                  />
                );
              })}
            </g>
          );
        })}
      </svg>
      <div className="chart-axis muted small">
        <span>{first ? label(first.start, size) : ''}</span>
        <span>
          peak {formatNumber(max)} per {size === DAY ? 'day' : 'hour'}
        </span>
        <span>{lastBucket ? label(lastBucket.start, size) : ''}</span>
      </div>
      <figcaption className="legend">
        {families.map(([f, n]) => (
          <button
            key={f}
            type="button"
            className="legend-item"
            onClick={() => onPickFamily?.(f)}
            title={`Show only ${f}.* events`}
          >
            <span className="dot" style={{ background: FAMILY_COLORS[f] ?? 'var(--muted)' }} aria-hidden="true" />
            {f} <span className="muted">{formatNumber(n)}</span>
          </button>
        ))}
      </figcaption>
    </figure>
  );
}
