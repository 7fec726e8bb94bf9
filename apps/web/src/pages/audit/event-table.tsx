import { useVirtualizer } from '@tanstack/react-virtual';
import { type KeyboardEvent, useEffect, useRef } from 'react';
import { EmptyState, ErrorState, Loading } from '../../components/states.tsx';
import { formatExact } from '../../lib/format.ts';
import type { RouterOutputs } from '../../trpc.ts';
import { FAMILY_COLORS, familyOf, isFailure } from './filters.ts';

export type AuditEvent = RouterOutputs['audit']['query']['data'][number];

const ROW_HEIGHT = 44;

export interface EventTableProps {
  events: AuditEvent[];
  status: 'pending' | 'error' | 'success';
  error?: unknown;
  onRetry?: () => void;
  hasMore: boolean;
  loadingMore: boolean;
  onLoadMore: () => void;
  selectedId: string | null;
  onSelect: (event: AuditEvent) => void;
  /** Ids that arrived through the live tail: highlighted for a moment. */
  fresh?: ReadonlySet<string>;
  filtered: boolean;
}

export const actorLabel = (e: AuditEvent) =>
  e.meta.actor.id ? `${e.meta.actor.type}:${e.meta.actor.id}` : e.meta.actor.type;

/**
 * The log as a virtualised list: only the rows in view are in the DOM, so tens of thousands of events scroll
 * smoothly. Nearing the end loads the next keyset page. Each row is a button (Enter opens it); arrow keys move.
 */
export function EventTable(props: EventTableProps) {
  const { events, status, hasMore, loadingMore, onLoadMore, selectedId, onSelect, fresh, filtered } = props;
  const scroller = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({
    count: events.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 12,
    initialRect: { width: 1000, height: 560 },
  });
  const items = virtualizer.getVirtualItems();
  const last = items.at(-1)?.index ?? -1;
  useEffect(() => {
    if (hasMore && !loadingMore && last >= events.length - 20) onLoadMore();
  }, [last, events.length, hasMore, loadingMore, onLoadMore]);

  if (status === 'pending') return <Loading label="Loading events…" />;
  if (status === 'error') return <ErrorState error={props.error} onRetry={props.onRetry} />;
  if (events.length === 0) {
    return (
      <EmptyState title={filtered ? 'No events match these filters' : 'No events yet'}>
        {filtered ? 'Widen the time range or clear a filter.' : 'Every sign-in, key and change will appear here.'}
      </EmptyState>
    );
  }

  const move = (e: KeyboardEvent<HTMLButtonElement>, index: number) => {
    const to = e.key === 'ArrowDown' ? index + 1 : e.key === 'ArrowUp' ? index - 1 : null;
    if (to === null || to < 0 || to >= events.length) return;
    e.preventDefault();
    virtualizer.scrollToIndex(to);
    requestAnimationFrame(() => {
      scroller.current?.querySelector<HTMLElement>(`[data-index="${to}"]`)?.focus();
    });
  };

  return (
    <div className="event-table">
      <div className="event-row event-head" aria-hidden="true">
        <span>Seq</span>
        <span>Time</span>
        <span>Type</span>
        <span className="col-actor">Actor</span>
        <span className="col-ip">IP</span>
      </div>
      <div ref={scroller} className="event-scroll" data-testid="event-scroll">
        <ul className="event-list" aria-label="Audit events" style={{ height: virtualizer.getTotalSize() }}>
          {items.map((item) => {
            const e = events[item.index];
            if (!e) return null;
            const classes = ['event-row'];
            if (e.id === selectedId) classes.push('selected');
            if (fresh?.has(e.id)) classes.push('fresh');
            return (
              <li
                key={e.id}
                className="event-item"
                style={{ height: ROW_HEIGHT, transform: `translateY(${item.start}px)` }}
              >
                <button
                  type="button"
                  data-index={item.index}
                  data-seq={e.seq}
                  aria-current={e.id === selectedId ? 'true' : undefined}
                  className={classes.join(' ')}
                  onClick={() => onSelect(e)}
                  onKeyDown={(k) => move(k, item.index)}
                >
                  <span className="mono muted">{e.seq}</span>
                  <span className="mono small">
                    <time dateTime={e.occurred_at}>{formatExact(e.occurred_at)}</time>
                  </span>
                  <span className="type-cell">
                    <span
                      className="dot"
                      style={{ background: FAMILY_COLORS[familyOf(e.type)] ?? 'var(--muted)' }}
                      aria-hidden="true"
                    />
                    <code className={isFailure(e.type) ? 'mono failure' : 'mono'}>{e.type}</code>
                  </span>
                  <span className="col-actor mono small truncate" title={actorLabel(e)}>
                    {actorLabel(e)}
                  </span>
                  <span className="col-ip mono small muted">{e.meta.ip ?? '—'}</span>
                </button>
              </li>
            );
          })}
        </ul>
        {loadingMore ? <div className="table-foot muted small">Loading more…</div> : null}
        {!hasMore && events.length > 0 ? (
          <div className="table-foot muted small">The beginning of the log{filtered ? ' for these filters' : ''}.</div>
        ) : null}
      </div>
    </div>
  );
}
