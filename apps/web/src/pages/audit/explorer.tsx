import { keepPreviousData, useInfiniteQuery, useQuery, useQueryClient } from '@tanstack/react-query';
import { useSubscription } from '@trpc/tanstack-react-query';
import { type FormEvent, useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { useLocation, useSearch } from 'wouter';
import { PageHeader } from '../../components/states.tsx';
import { messageOf } from '../../lib/errors.ts';
import { formatNumber } from '../../lib/format.ts';
import { isAdmin, useMe } from '../../session.tsx';
import { useTRPC, useTRPCClient } from '../../trpc.ts';
import { EventsChart } from './chart.tsx';
import { EventDetail } from './event-detail.tsx';
import { type AuditEvent, EventTable } from './event-table.tsx';
import {
  apiFilters,
  EMPTY_FILTERS,
  EVENT_TYPES,
  exportHref,
  type Filters,
  filtersFromSearch,
  RANGES,
  type RangeKey,
  searchFromFilters,
} from './filters.ts';
import { useVerify, VerifyButton, VerifyStatus } from './verify.tsx';

const PAGE = 100;

export function AuditPage() {
  const trpc = useTRPC();
  const client = useTRPCClient();
  const me = useMe();
  const search = useSearch();
  const [, navigate] = useLocation();
  // The filters as a string: opening an event (also in the URL) does not change them.
  const filterKey = searchFromFilters(filtersFromSearch(search));
  const filters = useMemo(() => filtersFromSearch(filterKey.slice(1)), [filterKey]);
  const eventId = new URLSearchParams(search).get('event');
  // Relative ranges are anchored when the filters change, so the query key stays put between renders.
  // biome-ignore lint/correctness/useExhaustiveDependencies: re-anchor exactly when the filters change
  const anchor = useMemo(() => Date.now(), [filters]);
  const api = useMemo(() => apiFilters(filters, anchor), [filters, anchor]);
  const filtered = Object.keys(api).length > 0;
  const setFilters = useCallback(
    (f: Filters) => navigate(`/audit${searchFromFilters(f)}`, { replace: false }),
    [navigate],
  );

  const pages = useInfiniteQuery({
    queryKey: [...trpc.audit.query.queryKey(), { explorer: api }],
    queryFn: ({ pageParam, signal }) =>
      client.audit.query.query({ ...api, order: 'desc', limit: PAGE, after: pageParam ?? undefined }, { signal }),
    initialPageParam: null as number | null,
    getNextPageParam: (last) => last.next_cursor,
    placeholderData: keepPreviousData,
  });
  const counts = useQuery(trpc.audit.countsByHour.queryOptions(api, { placeholderData: keepPreviousData }));

  const [live, setLive] = useState(false);
  const [liveEvents, setLiveEvents] = useState<AuditEvent[]>([]);
  // biome-ignore lint/correctness/useExhaustiveDependencies: a new filter starts a new tail
  useEffect(() => setLiveEvents([]), [api]);
  const tail = useSubscription(
    trpc.audit.onEvent.subscriptionOptions(api, {
      enabled: live,
      onData: (tracked) => setLiveEvents((prev) => [tracked.data as AuditEvent, ...prev].slice(0, 5000)),
    }),
  );

  const rows = useMemo(() => {
    const seen = new Set<string>();
    const out: AuditEvent[] = [];
    for (const e of [...liveEvents, ...(pages.data?.pages.flatMap((p) => p.data) ?? [])]) {
      if (seen.has(e.id)) continue;
      seen.add(e.id);
      out.push(e);
    }
    return out.sort((a, b) => b.seq - a.seq);
  }, [liveEvents, pages.data]);
  const fresh = useMemo(() => new Set(liveEvents.map((e) => e.id)), [liveEvents]);
  const queryClient = useQueryClient();
  // New events from the tail reach the chart too, at most every three seconds.
  const chartTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(() => {
    if (liveEvents.length === 0 || chartTimer.current) return;
    chartTimer.current = setTimeout(() => {
      chartTimer.current = null;
      void queryClient.invalidateQueries({ queryKey: trpc.audit.countsByHour.queryKey() });
    }, 3000);
  }, [liveEvents.length, queryClient, trpc]);
  useEffect(() => () => clearTimeout(chartTimer.current ?? undefined), []);
  // The open event lives in the URL (a link to it can be shared); it is found in the rows or fetched by id.
  const linked = useQuery(
    trpc.audit.get.queryOptions(
      { id: eventId ?? '' },
      { enabled: eventId !== null && !rows.some((e) => e.id === eventId) },
    ),
  );
  const selected = eventId ? (rows.find((e) => e.id === eventId) ?? linked.data ?? null) : null;
  const setSelected = (e: AuditEvent | null) =>
    navigate(`/audit${searchFromFilters(filters, e?.id ?? null)}`, { replace: true });
  const head = rows[0]?.seq ?? null;
  const verify = useVerify();

  const openSeq = async (seq: number) => {
    const page = await client.audit.query.query({ after: Math.max(0, seq - 1), order: 'asc', limit: 1 });
    const e = page.data[0];
    if (e) setSelected(e);
  };

  return (
    <>
      <PageHeader
        title="Audit log"
        description={
          isAdmin(me)
            ? 'Every authentication event, hash-chained and signed. Nothing here can be edited.'
            : 'Every event about you, hash-chained and signed. Nothing here can be edited.'
        }
        actions={<VerifyButton verify={verify} />}
      />
      <VerifyStatus verify={verify} expected={head} onShowSeq={openSeq} />
      <FilterBar value={filters} onApply={setFilters} admin={isAdmin(me)} />
      <section className="panel chart-panel" aria-label="Events over time">
        {counts.isError ? (
          <p className="muted small">The chart could not be loaded: {messageOf(counts.error)}</p>
        ) : counts.data && counts.data.length > 0 ? (
          <EventsChart rows={counts.data} onPickFamily={(f) => setFilters({ ...filters, type: `${f}.*` })} />
        ) : counts.isPending ? (
          <div className="chart-skeleton" aria-hidden="true" />
        ) : (
          <p className="muted small">No events in this range to chart.</p>
        )}
      </section>
      <div className="toolbar toolbar-split">
        <div className="toolbar-group">
          <label className="switch">
            <input
              type="checkbox"
              role="switch"
              aria-checked={live}
              checked={live}
              onChange={(e) => setLive(e.target.checked)}
              aria-describedby="live-status"
            />
            <span>Live tail</span>
          </label>
          <span id="live-status" className="muted small" aria-live="polite">
            {live
              ? tail.status === 'pending'
                ? '● live: new events appear at the top'
                : tail.status === 'connecting'
                  ? 'connecting…'
                  : tail.status === 'error'
                    ? `reconnecting (${messageOf(tail.error)})`
                    : ''
              : `${formatNumber(rows.length)}${pages.hasNextPage ? '+' : ''} events`}
          </span>
        </div>
        <div className="toolbar-group">
          <span className="muted small">Export</span>
          <a className="btn btn-small" href={exportHref(api, 'jsonl')} download="keyledger-audit.jsonl">
            JSONL
          </a>
          <a className="btn btn-small" href={exportHref(api, 'csv')} download="keyledger-audit.csv">
            CSV
          </a>
        </div>
      </div>
      <div className={selected ? 'explorer explorer-with-detail' : 'explorer'}>
        <EventTable
          events={rows}
          status={pages.status}
          error={pages.error}
          onRetry={() => pages.refetch()}
          hasMore={pages.hasNextPage}
          loadingMore={pages.isFetchingNextPage}
          onLoadMore={() => void pages.fetchNextPage()}
          selectedId={selected?.id ?? null}
          onSelect={setSelected}
          fresh={fresh}
          filtered={filtered}
        />
        {selected ? (
          <EventDetail
            event={selected}
            onClose={() => setSelected(null)}
            onOpen={setSelected}
            onFilterActor={(actor) => setFilters({ ...filters, actor })}
          />
        ) : null}
      </div>
    </>
  );
}

function FilterBar({ value, onApply, admin }: { value: Filters; onApply: (f: Filters) => void; admin: boolean }) {
  const [draft, setDraft] = useState(value);
  // On a phone the filters fold behind a button, so the events are on the first screen.
  const [open, setOpen] = useState(false);
  const active = [value.type, value.actor, value.user].filter(Boolean).length + (value.range === 'all' ? 0 : 1);
  useEffect(() => setDraft(value), [value]);
  const set = <K extends keyof Filters>(k: K, v: Filters[K]) => setDraft((d) => ({ ...d, [k]: v }));
  const submit = (e: FormEvent) => {
    e.preventDefault();
    onApply(draft);
  };
  const dirty = JSON.stringify(draft) !== JSON.stringify(value);
  return (
    <>
      <button
        type="button"
        className="btn filter-toggle"
        aria-expanded={open}
        aria-controls="filter-bar"
        onClick={() => setOpen((o) => !o)}
      >
        Filters{active ? ` (${active})` : ''}
      </button>
      <form
        id="filter-bar"
        className={open ? 'filter-bar open' : 'filter-bar'}
        onSubmit={submit}
        aria-label="Filter events"
      >
        <label className="field">
          <span className="field-label">Type</span>
          <input
            className="input mono"
            list="event-types"
            placeholder="e.g. api_key.*, signin.failed"
            value={draft.type}
            onChange={(e) => set('type', e.target.value)}
            name="type"
          />
          <datalist id="event-types">
            {EVENT_TYPES.map((t) => (
              <option key={t} value={t} />
            ))}
          </datalist>
        </label>
        <label className="field">
          <span className="field-label">Actor</span>
          <input
            className="input mono"
            placeholder="a user, key or env: id"
            value={draft.actor}
            onChange={(e) => set('actor', e.target.value)}
            name="actor"
          />
        </label>
        {admin ? (
          <label className="field">
            <span className="field-label">User</span>
            <input
              className="input mono"
              placeholder="the user an event is about"
              value={draft.user}
              onChange={(e) => set('user', e.target.value)}
              name="user"
            />
          </label>
        ) : null}
        <label className="field">
          <span className="field-label">Time</span>
          <select
            className="input"
            value={draft.range}
            name="range"
            onChange={(e) => {
              const range = e.target.value as RangeKey;
              const next = { ...draft, range };
              setDraft(next);
              // A preset needs nothing more: apply it at once. A custom range waits for its dates.
              if (range !== 'custom') onApply(next);
            }}
          >
            {Object.entries(RANGES).map(([k, r]) => (
              <option key={k} value={k}>
                {r.label}
              </option>
            ))}
          </select>
        </label>
        {draft.range === 'custom' ? (
          <>
            <label className="field">
              <span className="field-label">From</span>
              <input
                className="input"
                type="datetime-local"
                value={draft.since}
                onChange={(e) => set('since', e.target.value)}
              />
            </label>
            <label className="field">
              <span className="field-label">Until</span>
              <input
                className="input"
                type="datetime-local"
                value={draft.until}
                onChange={(e) => set('until', e.target.value)}
              />
            </label>
          </>
        ) : null}
        <div className="filter-actions">
          <button type="submit" className="btn btn-primary" disabled={!dirty}>
            Apply
          </button>
          <button
            type="button"
            className="btn"
            onClick={() => {
              setDraft(EMPTY_FILTERS);
              onApply(EMPTY_FILTERS);
            }}
          >
            Clear
          </button>
        </div>
      </form>
    </>
  );
}
