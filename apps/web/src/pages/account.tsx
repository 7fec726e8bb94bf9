import { useMutation, useQuery } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
import { ErrorState, Loading, PageHeader } from '../components/states.tsx';
import { messageOf } from '../lib/errors.ts';
import { formatDate, formatDateTime } from '../lib/format.ts';
import { useMe } from '../session.tsx';
import { useTRPC } from '../trpc.ts';
import { type Provider, useProviders } from './login.tsx';

/** The signed-in person's own account: who they are, their password, and the providers they can sign in with. */
export function AccountPage() {
  const me = useMe();
  return (
    <>
      <PageHeader title="Your account" description="How you sign in to Keyledger." />
      <section className="panel">
        <h2 className="panel-title">Profile</h2>
        <dl className="facts">
          <div>
            <dt>Email</dt>
            <dd>{me.email ?? '—'}</dd>
          </div>
          <div>
            <dt>Name</dt>
            <dd>{me.name ?? '—'}</dd>
          </div>
          <div>
            <dt>Role</dt>
            <dd>{me.role}</dd>
          </div>
          <div>
            <dt>Member since</dt>
            <dd>{me.created_at ? formatDate(me.created_at) : '—'}</dd>
          </div>
        </dl>
      </section>
      <div className="grid-2">
        <PasswordPanel />
        <ProvidersPanel />
      </div>
    </>
  );
}

function PasswordPanel() {
  const trpc = useTRPC();
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [repeat, setRepeat] = useState('');
  const change = useMutation(
    trpc.auth.changePassword.mutationOptions({
      onSuccess: () => {
        setCurrent('');
        setNext('');
        setRepeat('');
      },
    }),
  );
  const mismatch = repeat.length > 0 && next !== repeat;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (mismatch) return;
    change.mutate({ current_password: current || undefined, new_password: next });
  };
  return (
    <section className="panel">
      <h2 className="panel-title">Password</h2>
      <form className="stack" onSubmit={submit}>
        <label className="field">
          <span className="field-label">Current password</span>
          <input
            className="input"
            type="password"
            autoComplete="current-password"
            value={current}
            onChange={(e) => setCurrent(e.target.value)}
          />
        </label>
        <p className="field-hint">Leave it empty if you have never set one (you signed in by link or provider).</p>
        <label className="field">
          <span className="field-label">New password</span>
          <input
            className="input"
            type="password"
            autoComplete="new-password"
            required
            minLength={8}
            value={next}
            onChange={(e) => setNext(e.target.value)}
          />
        </label>
        <label className="field">
          <span className="field-label">Repeat the new password</span>
          <input
            className="input"
            type="password"
            autoComplete="new-password"
            required
            value={repeat}
            onChange={(e) => setRepeat(e.target.value)}
          />
        </label>
        <p className="field-hint">At least 8 characters; a long phrase is best. Common passwords are refused.</p>
        {mismatch ? (
          <p className="form-error" role="alert">
            The two new passwords differ.
          </p>
        ) : null}
        {change.error ? (
          <p className="form-error" role="alert">
            {messageOf(change.error)}
          </p>
        ) : null}
        {change.isSuccess ? (
          <p className="callout callout-success" role="status">
            Password saved. Your other sessions were signed out.
          </p>
        ) : null}
        <div>
          <button type="submit" className="btn btn-primary" disabled={change.isPending || mismatch}>
            {change.isPending ? 'Saving…' : 'Save password'}
          </button>
        </div>
      </form>
    </section>
  );
}

function ProvidersPanel() {
  const trpc = useTRPC();
  const linked = useQuery(trpc.auth.linkedAccounts.queryOptions());
  const providers = useProviders();
  const all: Provider[] = providers.data ?? [];
  if (linked.isPending || providers.isPending) {
    return (
      <section className="panel">
        <h2 className="panel-title">Sign-in providers</h2>
        <Loading />
      </section>
    );
  }
  if (linked.isError) {
    return (
      <section className="panel">
        <h2 className="panel-title">Sign-in providers</h2>
        <ErrorState error={linked.error} onRetry={() => linked.refetch()} />
      </section>
    );
  }
  return (
    <section className="panel">
      <h2 className="panel-title">Sign-in providers</h2>
      {all.length === 0 && linked.data.length === 0 ? (
        <p className="muted">No single sign-on provider is configured on this server.</p>
      ) : (
        <ul className="list">
          {all.map((p) => {
            const accounts = linked.data.filter((a) => a.provider === p.id);
            const url = new URL(p.login_url, window.location.origin);
            url.searchParams.set('link', '1');
            url.searchParams.set('next', '/account');
            return (
              <li key={p.id} className="list-row">
                <span>
                  <span className="strong">{p.name}</span>
                  <span className="muted small">
                    {accounts.length > 0
                      ? accounts.map((a) => `${a.email ?? 'linked'} · since ${formatDateTime(a.linked_at)}`).join('; ')
                      : ' Not linked'}
                  </span>
                </span>
                {accounts.length === 0 ? (
                  <a className="btn btn-small" href={`${url.pathname}${url.search}`}>
                    Connect {p.name}
                  </a>
                ) : (
                  <span className="badge badge-success">Linked</span>
                )}
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}
