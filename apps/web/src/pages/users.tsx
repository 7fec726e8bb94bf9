import { keepPreviousData, useInfiniteQuery, useMutation, useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useDeferredValue, useState } from 'react';
import { Link, useLocation } from 'wouter';
import { Dialog } from '../components/dialog.tsx';
import { EmptyState, ErrorState, Loading, PageHeader } from '../components/states.tsx';
import { messageOf } from '../lib/errors.ts';
import { formatDate } from '../lib/format.ts';
import { type RouterOutputs, useTRPC, useTRPCClient } from '../trpc.ts';

export type User = RouterOutputs['users']['list']['data'][number];

export function UsersPage() {
  const trpc = useTRPC();
  const client = useTRPCClient();
  const [query, setQuery] = useState('');
  const deferred = useDeferredValue(query.trim());
  const [inviting, setInviting] = useState(false);
  const users = useInfiniteQuery({
    queryKey: [...trpc.users.list.queryKey(), { query: deferred }],
    queryFn: ({ pageParam }) =>
      client.users.list.query({ query: deferred || undefined, after: pageParam ?? undefined, limit: 50 }),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
    placeholderData: keepPreviousData,
  });
  const rows = users.data?.pages.flatMap((p) => p.data) ?? [];
  return (
    <>
      <PageHeader
        title="Users"
        description="Everyone who can sign in. Invited people sign in with an email link."
        actions={
          <button type="button" className="btn btn-primary" onClick={() => setInviting(true)}>
            Invite user
          </button>
        }
      />
      <div className="toolbar">
        <label className="search">
          <span className="visually-hidden">Search users</span>
          <input
            className="input"
            type="search"
            placeholder="Search by email or name"
            value={query}
            onChange={(e) => setQuery(e.target.value)}
          />
        </label>
      </div>
      {users.isPending ? (
        <Loading label="Loading users…" />
      ) : users.isError ? (
        <ErrorState error={users.error} onRetry={() => users.refetch()} />
      ) : rows.length === 0 ? (
        <EmptyState title={deferred ? 'No one matches that search' : 'No users yet'}>
          {deferred ? 'Try part of an email address.' : 'Invite the people who should sign in.'}
        </EmptyState>
      ) : (
        <div className="table-wrap">
          <table className="table table-cards">
            <thead>
              <tr>
                <th scope="col">Email</th>
                <th scope="col">Name</th>
                <th scope="col">Role</th>
                <th scope="col">Status</th>
                <th scope="col">Joined</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((u) => (
                <tr key={u.id}>
                  <td data-label="Email" className="strong">
                    <Link href={`/users/${u.id}`} className="link">
                      {u.email}
                    </Link>
                  </td>
                  <td data-label="Name">{u.name ?? <span className="muted">—</span>}</td>
                  <td data-label="Role">
                    <RoleBadge role={u.role} />
                  </td>
                  <td data-label="Status">
                    <StatusBadge user={u} />
                  </td>
                  <td data-label="Joined">
                    <time dateTime={u.created_at}>{formatDate(u.created_at)}</time>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {users.hasNextPage ? (
            <div className="load-more">
              <button
                type="button"
                className="btn"
                onClick={() => users.fetchNextPage()}
                disabled={users.isFetchingNextPage}
              >
                {users.isFetchingNextPage ? 'Loading…' : 'Load more'}
              </button>
            </div>
          ) : null}
        </div>
      )}
      {inviting ? <InviteDialog onClose={() => setInviting(false)} /> : null}
    </>
  );
}

export function RoleBadge({ role }: { role: string }) {
  return <span className={role === 'admin' ? 'badge badge-accent' : 'badge'}>{role}</span>;
}

export function StatusBadge({ user }: { user: User }) {
  if (user.disabled) return <span className="badge badge-danger">Disabled</span>;
  if (!user.email_verified) {
    return (
      <span className="badge badge-warning" title="Has not yet used an emailed link or a provider that vouches for it">
        Unverified
      </span>
    );
  }
  return <span className="badge badge-success">Active</span>;
}

function InviteDialog({ onClose }: { onClose: () => void }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [, navigate] = useLocation();
  const [email, setEmail] = useState('');
  const [name, setName] = useState('');
  const [role, setRole] = useState<'member' | 'admin'>('member');
  const create = useMutation(
    trpc.users.create.mutationOptions({
      onSuccess: (user) => {
        void queryClient.invalidateQueries({ queryKey: trpc.users.list.queryKey() });
        onClose();
        navigate(`/users/${user.id}`);
      },
    }),
  );
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate({ email, name: name.trim() || undefined, role });
  };
  return (
    <Dialog open title="Invite a user" onClose={onClose}>
      <form className="stack" onSubmit={submit}>
        <label className="field">
          <span className="field-label">Email</span>
          <input className="input" type="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </label>
        <label className="field">
          <span className="field-label">Name (optional)</span>
          <input className="input" value={name} maxLength={200} onChange={(e) => setName(e.target.value)} />
        </label>
        <label className="field">
          <span className="field-label">Role</span>
          <select className="input" value={role} onChange={(e) => setRole(e.target.value as 'member' | 'admin')}>
            <option value="member">Member: their own keys, sessions and events</option>
            <option value="admin">Admin: everything, including users and the whole log</option>
          </select>
        </label>
        <p className="muted small">
          They get an email with a sign-in link, valid for 15 minutes. No password is set; after the link expires they
          ask for a new one on the sign-in page.
        </p>
        {create.error ? (
          <p className="form-error" role="alert">
            {messageOf(create.error)}
          </p>
        ) : null}
        <div className="dialog-actions">
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="btn btn-primary" disabled={create.isPending}>
            {create.isPending ? 'Inviting…' : 'Invite'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
