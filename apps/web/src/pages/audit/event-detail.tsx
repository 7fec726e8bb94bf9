import { useQuery } from '@tanstack/react-query';
import { CopyButton } from '../../components/copy-button.tsx';
import { formatDateTime, formatExact } from '../../lib/format.ts';
import { useTRPC } from '../../trpc.ts';
import { type AuditEvent, actorLabel } from './event-table.tsx';

const ZERO_HASH = '0'.repeat(64);

/** One event in full: where it sits in the chain, what it says, who did it, and its link to the previous event. */
export function EventDetail({
  event,
  onClose,
  onOpen,
  onFilterActor,
}: {
  event: AuditEvent;
  onClose: () => void;
  onOpen: (event: AuditEvent) => void;
  onFilterActor: (actor: string) => void;
}) {
  const trpc = useTRPC();
  // The previous event in the whole chain (not the filtered view): the first one after seq - 2.
  const prev = useQuery(
    trpc.audit.query.queryOptions(
      { after: Math.max(0, event.seq - 2), order: 'asc', limit: 1 },
      { enabled: event.seq > 1, staleTime: Number.POSITIVE_INFINITY },
    ),
  );
  const prevEvent = prev.data?.data[0]?.seq === event.seq - 1 ? prev.data.data[0] : undefined;
  // The first signed checkpoint that covers this event, if one does yet.
  const full = useQuery(trpc.audit.get.queryOptions({ id: event.id }, { staleTime: 30_000 }));
  return (
    <aside className="detail" aria-label={`Event ${event.seq}`}>
      <div className="detail-head">
        <div>
          <div className="muted small">Event #{event.seq}</div>
          <h2 className="detail-title mono">{event.type}</h2>
        </div>
        <button type="button" className="btn btn-small" onClick={onClose} aria-label="Close event details">
          Close
        </button>
      </div>
      <dl className="detail-facts">
        <dt>Time</dt>
        <dd>
          <time dateTime={event.occurred_at} title={event.occurred_at}>
            {formatDateTime(event.occurred_at)}
          </time>{' '}
          <span className="muted small mono">{formatExact(event.occurred_at)}</span>
        </dd>
        <dt>Seq</dt>
        <dd className="mono">{event.seq}</dd>
        <dt>Stream</dt>
        <dd className="mono break">
          {event.stream} <span className="muted">v{event.stream_version}</span>
        </dd>
        <dt>Actor</dt>
        <dd className="mono break">
          {actorLabel(event)}
          {event.meta.actor.id ? (
            <button type="button" className="btn-link small" onClick={() => onFilterActor(event.meta.actor.id ?? '')}>
              filter by this actor
            </button>
          ) : null}
        </dd>
        <dt>Via</dt>
        <dd>{event.meta.via}</dd>
        <dt>IP</dt>
        <dd className="mono">{event.meta.ip ?? '—'}</dd>
        <dt>User agent</dt>
        <dd className="break small">{event.meta.user_agent ?? '—'}</dd>
        <dt>Request</dt>
        <dd className="mono break small">{event.meta.request_id ?? '—'}</dd>
        <dt>Event id</dt>
        <dd className="mono break small">{event.id}</dd>
      </dl>
      <h3 className="detail-section">Data</h3>
      <pre className="code" data-testid="event-data">
        {JSON.stringify(event.data, null, 2)}
      </pre>
      <h3 className="detail-section">Meta</h3>
      <pre className="code">{JSON.stringify(event.meta, null, 2)}</pre>
      <h3 className="detail-section">Chain</h3>
      <dl className="detail-facts">
        <dt>Hash</dt>
        <dd className="mono break small" data-testid="event-hash">
          {event.hash}
        </dd>
        <dt>Previous hash</dt>
        <dd className="mono break small">{event.prev_hash}</dd>
        <dt>Previous</dt>
        <dd>
          {event.seq === 1 || event.prev_hash === ZERO_HASH ? (
            <span className="muted">None: this is the first event of the log.</span>
          ) : prev.isPending ? (
            <span className="muted">Looking…</span>
          ) : prevEvent ? (
            <>
              <button type="button" className="btn-link" onClick={() => onOpen(prevEvent)}>
                ← #{prevEvent.seq} {prevEvent.type}
              </button>{' '}
              {prevEvent.hash === event.prev_hash ? (
                <span className="badge badge-success">linked</span>
              ) : (
                <span className="badge badge-danger">hash does not match</span>
              )}
            </>
          ) : (
            <span className="muted">#{event.seq - 1} is not visible to you.</span>
          )}
        </dd>
        <dt>Checkpoint</dt>
        <dd>
          {full.isPending ? (
            <span className="muted">Looking…</span>
          ) : full.data?.checkpoint ? (
            <>
              Covered by the signed checkpoint of size {full.data.checkpoint.size}{' '}
              <span className="badge badge-success">signed</span>
            </>
          ) : (
            <span className="muted">Not covered by a signed checkpoint yet.</span>
          )}
        </dd>
      </dl>
      <div className="detail-actions">
        <CopyButton text={JSON.stringify(event, null, 2)} label="Copy as JSON" />
      </div>
    </aside>
  );
}
