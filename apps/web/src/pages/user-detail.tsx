import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { Link } from 'wouter';
import { ConfirmDialog } from '../components/confirm-dialog.tsx';
import { Dialog } from '../components/dialog.tsx';
import { EmptyState, ErrorState, Loading, PageHeader } from '../components/states.tsx';
import { messageOf } from '../lib/errors.ts';
import { describeUserAgent, formatDateTime, formatRelative } from '../lib/format.ts';
import { useMe } from '../session.tsx';
import { type RouterOutputs, useTRPC } from '../trpc.ts';
import { RoleBadge, StatusBadge } from './users.tsx';

type AuditEvent = RouterOutputs['audit']['query']['data'][number];

interface DerivedSession {
  id: string;
  method: string;
  ip: string | null;
  userAgent: string | null;
  createdAt: string;
  expiresAt: string;
}
interface DerivedKey {
  id: string;
  name: string | null;
  start: string;
  scopes: string[];
  createdAt: string;
  expiresAt: string | null;
  rotatedUntil: string | null;
}

/**
 * A user's live sessions and keys, folded from their events (the log is the source of truth; the tRPC API lists
 * only the caller's own). Expired ones are dropped at `now`.
 */
export function foldLive(events: AuditEvent[], now = Date.now()): { sessions: DerivedSession[]; keys: DerivedKey[] } {
  const sessions = new Map<string, DerivedSession>();
  const keys = new Map<string, DerivedKey>();
  for (const e of [...events].sort((a, b) => a.seq - b.seq)) {
    const d = e.data as Record<string, unknown>;
    const str = (k: string) => (typeof d[k] === 'string' ? (d[k] as string) : null);
    switch (e.type) {
      case 'session.created': {
        const id = str('session_id');
        if (id)
          sessions.set(id, {
            id,
            method: str('method') ?? '',
            ip: e.meta.ip,
            userAgent: e.meta.user_agent,
            createdAt: e.occurred_at,
            expiresAt: str('expires_at') ?? e.occurred_at,
          });
        break;
      }
      case 'session.refreshed':
      case 'session.extended': {
        const s = sessions.get(str('session_id') ?? '');
        if (s) s.expiresAt = str('expires_at') ?? s.expiresAt;
        break;
      }
      case 'session.revoked':
        sessions.delete(str('session_id') ?? '');
        break;
      case 'api_key.created': {
        const id = str('key_id');
        if (id)
          keys.set(id, {
            id,
            name: str('name'),
            start: str('start') ?? '',
            scopes: Array.isArray(d.scopes) ? (d.scopes as string[]) : [],
            createdAt: e.occurred_at,
            expiresAt: str('expires_at'),
            rotatedUntil: null,
          });
        break;
      }
      case 'api_key.rotated': {
        const k = keys.get(str('key_id') ?? '');
        if (k) k.rotatedUntil = str('grace_until');
        break;
      }
      case 'api_key.revoked':
        keys.delete(str('key_id') ?? '');
        break;
    }
  }
  const alive = (iso: string | null) => iso === null || new Date(iso).getTime() > now;
  return {
    sessions: [...sessions.values()].filter((s) => alive(s.expiresAt)).reverse(),
    keys: [...keys.values()].filter((k) => alive(k.expiresAt) && alive(k.rotatedUntil)).reverse(),
  };
}

export function UserDetailPage({ id }: { id: string }) {
  const trpc = useTRPC();
  const me = useMe();
  const queryClient = useQueryClient();
  const user = useQuery(trpc.users.get.queryOptions({ id }));
  const credentials = useQuery(
    trpc.audit.query.queryOptions({ subject: id, type: ['session.*', 'api_key.*'], order: 'asc', limit: 1000 }),
  );
  const events = useQuery(trpc.audit.query.queryOptions({ subject: id, order: 'desc', limit: 25 }));
  const [confirm, setConfirm] = useState<'disable' | 'enable' | 'signout' | null>(null);
  const [renaming, setRenaming] = useState(false);
  const invalidate = () => {
    void queryClient.invalidateQueries({ queryKey: trpc.users.pathKey() });
    void queryClient.invalidateQueries({ queryKey: trpc.audit.pathKey() });
  };
  const update = useMutation(
    trpc.users.update.mutationOptions({
      onSuccess: () => {
        setConfirm(null);
        invalidate();
      },
    }),
  );
  const signOut = useMutation(
    trpc.users.revokeSessions.mutationOptions({
      onSuccess: () => {
        setConfirm(null);
        invalidate();
      },
    }),
  );

  if (user.isPending) return <Loading label="Loading user…" />;
  if (user.isError) return <ErrorState error={user.error} onRetry={() => user.refetch()} />;
  const u = user.data;
  const self = u.id === me.id;
  const live = credentials.data ? foldLive(credentials.data.data) : null;

  return (
    <>
      <nav className="breadcrumbs" aria-label="Breadcrumb">
        <Link href="/users" className="link">
          Users
        </Link>
        <span aria-hidden="true"> / </span>
        <span>{u.email}</span>
      </nav>
      <PageHeader
        title={u.name ?? u.email}
        description={
          <>
            {u.email} · <RoleBadge role={u.role} /> <StatusBadge user={u} /> · joined {formatDateTime(u.created_at)}
          </>
        }
        actions={
          <>
            <button type="button" className="btn" onClick={() => setRenaming(true)}>
              Rename
            </button>
            <button type="button" className="btn" onClick={() => setConfirm('signout')}>
              Sign out everywhere
            </button>
            {u.disabled ? (
              <button type="button" className="btn btn-primary" onClick={() => setConfirm('enable')}>
                Enable user
              </button>
            ) : (
              <button type="button" className="btn btn-danger" onClick={() => setConfirm('disable')} disabled={self}>
                Disable user
              </button>
            )}
          </>
        }
      />
      <section className="panel">
        <h2 className="panel-title">Role</h2>
        <div className="inline-form">
          <label className="field field-inline">
            <span className="field-label">Role</span>
            <select
              className="input"
              value={u.role}
              disabled={update.isPending}
              onChange={(e) => update.mutate({ id: u.id, role: e.target.value as 'member' | 'admin' })}
            >
              <option value="member">Member</option>
              <option value="admin">Admin</option>
            </select>
          </label>
          <span className="muted small">
            Admins manage users and read the whole log; members see only their own things. Takes effect at once.
          </span>
        </div>
        {update.error && confirm === null ? (
          <p className="form-error" role="alert">
            {messageOf(update.error)}
          </p>
        ) : null}
      </section>

      <div className="grid-2">
        <section className="panel">
          <h2 className="panel-title">Sessions</h2>
          {credentials.isPending ? (
            <Loading />
          ) : credentials.isError ? (
            <ErrorState error={credentials.error} />
          ) : live && live.sessions.length > 0 ? (
            <ul className="list">
              {live.sessions.map((s) => (
                <li key={s.id}>
                  <span className="strong">{describeUserAgent(s.userAgent)}</span>
                  <span className="muted small">
                    {s.ip ?? 'unknown IP'} · signed in {formatRelative(s.createdAt)}
                  </span>
                </li>
              ))}
            </ul>
          ) : (
            <p className="muted">No active sessions.</p>
          )}
        </section>
        <section className="panel">
          <h2 className="panel-title">API keys</h2>
          {credentials.isPending ? (
            <Loading />
          ) : credentials.isError ? (
            <ErrorState error={credentials.error} />
          ) : live && live.keys.length > 0 ? (
            <ul className="list">
              {live.keys.map((k) => (
                <li key={k.id}>
                  <span className="strong">
                    {k.name ?? 'Unnamed'} <code className="mono muted">{k.start}…</code>
                  </span>
                  <span className="muted small">
                    {k.scopes.join(' ')} · created {formatRelative(k.createdAt)}
                    {k.rotatedUntil ? ` · rotated, valid until ${formatDateTime(k.rotatedUntil)}` : ''}
                  </span>
                </li>
              ))}
            </ul>
          ) : (
            <p className="muted">No active keys.</p>
          )}
        </section>
      </div>

      <section className="panel">
        <div className="panel-head">
          <h2 className="panel-title">Recent events</h2>
          <Link href={`/audit?user=${encodeURIComponent(u.id)}`} className="link">
            Open in the audit explorer →
          </Link>
        </div>
        {events.isPending ? (
          <Loading />
        ) : events.isError ? (
          <ErrorState error={events.error} />
        ) : events.data.data.length === 0 ? (
          <EmptyState title="No events about this user" />
        ) : (
          <ul className="list">
            {events.data.data.map((e) => (
              <li key={e.id}>
                <span>
                  <Link href={`/audit?user=${encodeURIComponent(u.id)}&event=${e.id}`} className="link mono">
                    {e.type}
                  </Link>{' '}
                  <span className="muted small">#{e.seq}</span>
                </span>
                <span className="muted small">
                  <time dateTime={e.occurred_at}>{formatDateTime(e.occurred_at)}</time> · {e.meta.actor.type}
                  {e.meta.ip ? ` · ${e.meta.ip}` : ''}
                </span>
              </li>
            ))}
          </ul>
        )}
      </section>

      {renaming ? <RenameDialog id={u.id} name={u.name ?? ''} onClose={() => setRenaming(false)} /> : null}
      {confirm === 'disable' ? (
        <ConfirmDialog
          open
          title={`Disable ${u.email}?`}
          confirmLabel="Disable user"
          onConfirm={() => update.mutate({ id: u.id, disabled: true })}
          onClose={() => setConfirm(null)}
          pending={update.isPending}
          error={update.error}
        >
          <p>
            They are signed out everywhere and every API key of theirs is revoked, at once. You can enable them again.
          </p>
        </ConfirmDialog>
      ) : null}
      {confirm === 'enable' ? (
        <ConfirmDialog
          open
          danger={false}
          title={`Enable ${u.email}?`}
          confirmLabel="Enable user"
          onConfirm={() => update.mutate({ id: u.id, disabled: false })}
          onClose={() => setConfirm(null)}
          pending={update.isPending}
          error={update.error}
        >
          <p>They can sign in again. Keys revoked when they were disabled stay revoked.</p>
        </ConfirmDialog>
      ) : null}
      {confirm === 'signout' ? (
        <ConfirmDialog
          open
          title={`Sign ${u.email} out everywhere?`}
          confirmLabel="Sign out everywhere"
          onConfirm={() => signOut.mutate({ id: u.id })}
          onClose={() => setConfirm(null)}
          pending={signOut.isPending}
          error={signOut.error}
        >
          <p>Every session of theirs ends at once{self ? ', including this one' : ''}. Their API keys keep working.</p>
        </ConfirmDialog>
      ) : null}
    </>
  );
}

function RenameDialog({ id, name, onClose }: { id: string; name: string; onClose: () => void }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [value, setValue] = useState(name);
  const rename = useMutation(
    trpc.users.update.mutationOptions({
      onSuccess: () => {
        void queryClient.invalidateQueries({ queryKey: trpc.users.pathKey() });
        onClose();
      },
    }),
  );
  return (
    <Dialog open title="Rename user" onClose={onClose}>
      <form
        className="stack"
        onSubmit={(e) => {
          e.preventDefault();
          rename.mutate({ id, name: value.trim() });
        }}
      >
        <label className="field">
          <span className="field-label">Name</span>
          <input className="input" required maxLength={200} value={value} onChange={(e) => setValue(e.target.value)} />
        </label>
        {rename.error ? (
          <p className="form-error" role="alert">
            {messageOf(rename.error)}
          </p>
        ) : null}
        <div className="dialog-actions">
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="btn btn-primary" disabled={rename.isPending || !value.trim()}>
            {rename.isPending ? 'Saving…' : 'Save name'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
