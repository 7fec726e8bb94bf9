import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { useLocation } from 'wouter';
import { ConfirmDialog } from '../components/confirm-dialog.tsx';
import { EmptyState, ErrorState, Loading, PageHeader } from '../components/states.tsx';
import { describeUserAgent, formatDateTime, formatRelative } from '../lib/format.ts';
import { type RouterOutputs, useTRPC } from '../trpc.ts';

type Session = RouterOutputs['sessions']['list']['data'][number];

const METHOD: Record<string, string> = {
  password: 'Password',
  magic_link: 'Email link',
  oauth: 'Single sign-on',
  setup: 'First-admin setup',
};

export function SessionsPage() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [, navigate] = useLocation();
  const sessions = useQuery(trpc.sessions.list.queryOptions());
  const [revoking, setRevoking] = useState<Session | null>(null);
  const [revokingOthers, setRevokingOthers] = useState(false);
  const refresh = () => queryClient.invalidateQueries({ queryKey: trpc.sessions.list.queryKey() });
  const revoke = useMutation(
    trpc.sessions.revoke.mutationOptions({
      onSuccess: (_r, input) => {
        const wasCurrent = sessions.data?.data.find((s) => s.id === input.id)?.current;
        setRevoking(null);
        if (wasCurrent) {
          queryClient.clear();
          navigate('/login', { replace: true });
        } else void refresh();
      },
    }),
  );
  const revokeOthers = useMutation(
    trpc.sessions.revokeOthers.mutationOptions({
      onSuccess: () => {
        setRevokingOthers(false);
        void refresh();
      },
    }),
  );
  const list = sessions.data?.data ?? [];
  const others = list.filter((s) => !s.current).length;
  return (
    <>
      <PageHeader
        title="Sessions"
        description="The devices and programs signed in as you. Sign out any you do not recognise."
        actions={
          others > 0 ? (
            <button type="button" className="btn btn-danger-ghost" onClick={() => setRevokingOthers(true)}>
              Sign out all other sessions
            </button>
          ) : null
        }
      />
      {sessions.isPending ? (
        <Loading label="Loading your sessions…" />
      ) : sessions.isError ? (
        <ErrorState error={sessions.error} onRetry={() => sessions.refetch()} />
      ) : list.length === 0 ? (
        <EmptyState title="No sessions">
          You are signed in with an API key, which has no sessions of its own.
        </EmptyState>
      ) : (
        <ul className="cards" aria-label="Sessions">
          {[...list]
            .sort((a, b) => Number(b.current) - Number(a.current))
            .map((s) => (
              <li key={s.id} className={s.current ? 'card card-current' : 'card'} data-testid={`session-${s.id}`}>
                <div className="card-main">
                  <div className="card-title">
                    {describeUserAgent(s.user_agent)}
                    {s.current ? <span className="badge badge-success">This device</span> : null}
                  </div>
                  <dl className="facts">
                    <div>
                      <dt>IP address</dt>
                      <dd className="mono">{s.ip ?? '—'}</dd>
                    </div>
                    <div>
                      <dt>Last seen</dt>
                      <dd>
                        {s.current ? (
                          'Now'
                        ) : s.last_seen_at ? (
                          <time dateTime={s.last_seen_at} title={formatDateTime(s.last_seen_at)}>
                            {formatRelative(s.last_seen_at)}
                          </time>
                        ) : (
                          '—'
                        )}
                      </dd>
                    </div>
                    <div>
                      <dt>Signed in</dt>
                      <dd>
                        <time dateTime={s.created_at}>{formatDateTime(s.created_at)}</time> ·{' '}
                        {METHOD[s.method] ?? s.method}
                      </dd>
                    </div>
                    <div>
                      <dt>Expires</dt>
                      <dd>
                        <time dateTime={s.expires_at} title={formatDateTime(s.expires_at)}>
                          {formatRelative(s.expires_at)}
                        </time>
                      </dd>
                    </div>
                  </dl>
                </div>
                <div className="card-actions">
                  <button type="button" className="btn btn-small btn-danger-ghost" onClick={() => setRevoking(s)}>
                    {s.current ? 'Sign out' : 'Sign out this session'}
                  </button>
                </div>
              </li>
            ))}
        </ul>
      )}
      {revoking ? (
        <ConfirmDialog
          open
          title={revoking.current ? 'Sign out here?' : 'Sign out this session?'}
          confirmLabel="Sign out"
          onConfirm={() => revoke.mutate({ id: revoking.id })}
          onClose={() => {
            revoke.reset();
            setRevoking(null);
          }}
          pending={revoke.isPending}
          error={revoke.error}
        >
          <p>
            {revoking.current
              ? 'You will need to sign in again on this device.'
              : `${describeUserAgent(revoking.user_agent)} (${revoking.ip ?? 'unknown IP'}) will be signed out at once.`}
          </p>
        </ConfirmDialog>
      ) : null}
      {revokingOthers ? (
        <ConfirmDialog
          open
          title="Sign out all other sessions?"
          confirmLabel={`Sign out ${others} session${others === 1 ? '' : 's'}`}
          onConfirm={() => revokeOthers.mutate()}
          onClose={() => setRevokingOthers(false)}
          pending={revokeOthers.isPending}
          error={revokeOthers.error}
        >
          <p>Every device except this one is signed out at once. Your API keys keep working.</p>
        </ConfirmDialog>
      ) : null}
    </>
  );
}
