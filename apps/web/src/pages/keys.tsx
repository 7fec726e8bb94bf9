import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
import { ConfirmDialog } from '../components/confirm-dialog.tsx';
import { Dialog } from '../components/dialog.tsx';
import { SecretReveal } from '../components/secret-reveal.tsx';
import { EmptyState, ErrorState, Loading, PageHeader } from '../components/states.tsx';
import { messageOf } from '../lib/errors.ts';
import { formatDate, formatDateTime, formatRelative } from '../lib/format.ts';
import { useMe } from '../session.tsx';
import { type RouterOutputs, useTRPC } from '../trpc.ts';

export type ApiKey = RouterOutputs['apiKeys']['list']['data'][number];
type Created = RouterOutputs['apiKeys']['create'];

export const SCOPE_HELP: Record<string, string> = {
  'profile:read': 'Read the owner’s profile',
  'keys:read': 'List API keys',
  'keys:write': 'Create, rotate and revoke API keys',
  'sessions:read': 'List sessions',
  'sessions:write': 'Sign sessions out',
  'audit:read': 'Read the audit log',
  'users:read': 'List users (admins)',
  'users:write': 'Invite and manage users (admins)',
};

const EXPIRY_CHOICES = [
  { value: '30', label: '30 days' },
  { value: '90', label: '90 days' },
  { value: '365', label: '1 year' },
  { value: 'never', label: 'Never' },
  { value: 'custom', label: 'A date…' },
] as const;

export function KeysPage() {
  const trpc = useTRPC();
  const keys = useQuery(trpc.apiKeys.list.queryOptions({ limit: 1000 }));
  const [creating, setCreating] = useState(false);
  const [revealed, setRevealed] = useState<{ key: Created; rotated: boolean } | null>(null);
  const [rotating, setRotating] = useState<ApiKey | null>(null);
  const [revoking, setRevoking] = useState<ApiKey | null>(null);

  return (
    <>
      <PageHeader
        title="API keys"
        description="Keys let programs call the Keyledger API as you, with the scopes you give them."
        actions={
          <button type="button" className="btn btn-primary" onClick={() => setCreating(true)}>
            Create key
          </button>
        }
      />
      {keys.isPending ? (
        <Loading label="Loading your keys…" />
      ) : keys.isError ? (
        <ErrorState error={keys.error} onRetry={() => keys.refetch()} />
      ) : keys.data.data.length === 0 ? (
        <EmptyState
          title="No API keys yet"
          action={
            <button type="button" className="btn btn-primary" onClick={() => setCreating(true)}>
              Create your first key
            </button>
          }
        >
          Create a key for each program that calls the API, so you can revoke one without touching the others.
        </EmptyState>
      ) : (
        <KeyTable keys={keys.data.data} onRotate={setRotating} onRevoke={setRevoking} />
      )}
      {creating ? (
        <CreateKeyDialog
          onClose={() => setCreating(false)}
          onCreated={(key) => {
            setCreating(false);
            setRevealed({ key, rotated: false });
          }}
        />
      ) : null}
      {rotating ? (
        <RotateKeyDialog
          apiKey={rotating}
          onClose={() => setRotating(null)}
          onRotated={(key) => {
            setRotating(null);
            setRevealed({ key, rotated: true });
          }}
        />
      ) : null}
      {revoking ? <RevokeKeyDialog apiKey={revoking} onClose={() => setRevoking(null)} /> : null}
      {revealed ? (
        <SecretReveal
          title={revealed.rotated ? 'Key rotated' : 'Key created'}
          what="API key"
          secret={revealed.key.key}
          detail={
            revealed.rotated
              ? 'The old key keeps working until its grace period ends; switch your programs to this one.'
              : `“${revealed.key.name ?? revealed.key.start}” with ${revealed.key.scopes.length} scope${revealed.key.scopes.length === 1 ? '' : 's'}.`
          }
          onDone={() => setRevealed(null)}
        />
      ) : null}
    </>
  );
}

function KeyTable({
  keys,
  onRotate,
  onRevoke,
}: {
  keys: ApiKey[];
  onRotate: (k: ApiKey) => void;
  onRevoke: (k: ApiKey) => void;
}) {
  return (
    <div className="table-wrap">
      <table className="table table-cards">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Key</th>
            <th scope="col">Scopes</th>
            <th scope="col">Created</th>
            <th scope="col">Expires</th>
            <th scope="col">Last used</th>
            <th scope="col">
              <span className="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {keys.map((k) => {
            const expired = k.expires_at !== null && new Date(k.expires_at).getTime() < Date.now();
            return (
              <tr key={k.id} data-testid={`key-${k.id}`}>
                <td data-label="Name">
                  <div>
                    <span className="strong">{k.name ?? <span className="muted">Unnamed</span>}</span>
                    {k.ip_allowlist?.length ? (
                      <span className="muted small block" title={k.ip_allowlist.join(', ')}>
                        only from {k.ip_allowlist.slice(0, 2).join(', ')}
                        {k.ip_allowlist.length > 2 ? ` +${k.ip_allowlist.length - 2}` : ''}
                      </span>
                    ) : null}
                  </div>
                </td>
                <td data-label="Key">
                  <code className="mono">{k.start}…</code>
                </td>
                <td data-label="Scopes">
                  <div className="chips">
                    {k.scopes.map((s) => (
                      <span key={s} className="chip" title={SCOPE_HELP[s]}>
                        {s}
                      </span>
                    ))}
                  </div>
                </td>
                <td data-label="Created">
                  <time dateTime={k.created_at} title={formatDateTime(k.created_at)}>
                    {formatDate(k.created_at)}
                  </time>
                </td>
                <td data-label="Expires">
                  {k.expires_at === null ? (
                    <span className="muted">Never</span>
                  ) : (
                    <time dateTime={k.expires_at} title={formatDateTime(k.expires_at)}>
                      {expired ? <span className="badge badge-danger">Expired</span> : formatRelative(k.expires_at)}
                    </time>
                  )}
                </td>
                <td data-label="Last used">
                  {k.last_used_at === null ? (
                    <span className="muted">Never</span>
                  ) : (
                    <time dateTime={k.last_used_at} title={formatDateTime(k.last_used_at)}>
                      {formatRelative(k.last_used_at)}
                    </time>
                  )}
                </td>
                <td className="row-actions">
                  <button type="button" className="btn btn-small" onClick={() => onRotate(k)}>
                    Rotate
                  </button>
                  <button type="button" className="btn btn-small btn-danger-ghost" onClick={() => onRevoke(k)}>
                    Revoke
                  </button>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

/** A date `days` ahead at the end of that day, local time, as ISO. */
function daysAhead(days: number): string {
  const d = new Date();
  d.setDate(d.getDate() + days);
  d.setHours(23, 59, 59, 0);
  return d.toISOString();
}

export function CreateKeyDialog({ onClose, onCreated }: { onClose: () => void; onCreated: (key: Created) => void }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const me = useMe();
  const ownScopes = me.auth.scopes;
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState<string[]>(ownScopes.filter((s) => !s.startsWith('users:')));
  const [expiry, setExpiry] = useState<string>('90');
  const [customDate, setCustomDate] = useState('');
  const [ips, setIps] = useState('');
  const create = useMutation(
    trpc.apiKeys.create.mutationOptions({
      onSuccess: (key) => {
        void queryClient.invalidateQueries({ queryKey: trpc.apiKeys.list.queryKey() });
        onCreated(key);
      },
    }),
  );
  const submit = (e: FormEvent) => {
    e.preventDefault();
    let expires_at: string | null = null;
    if (expiry === 'custom') {
      if (!customDate) return;
      expires_at = new Date(`${customDate}T23:59:59`).toISOString();
    } else if (expiry !== 'never') {
      expires_at = daysAhead(Number(expiry));
    }
    const ip_allowlist = ips.split(/[\s,]+/).filter(Boolean);
    create.mutate({
      name: name.trim() || undefined,
      scopes: scopes as (typeof ownScopes)[number][],
      expires_at,
      ...(ip_allowlist.length > 0 ? { ip_allowlist } : {}),
    });
  };
  const today = new Date().toISOString().slice(0, 10);
  return (
    <Dialog open title="Create an API key" onClose={onClose}>
      <form className="stack" onSubmit={submit}>
        <div className="field">
          <label className="field" htmlFor="key-name">
            <span className="field-label">Name</span>
          </label>
          <input
            id="key-name"
            className="input"
            name="name"
            placeholder="e.g. billing-service"
            maxLength={200}
            value={name}
            aria-describedby="key-name-hint"
            onChange={(e) => setName(e.target.value)}
          />
          <span className="field-hint" id="key-name-hint">
            Say what uses it, so you know what breaks when you revoke it.
          </span>
        </div>
        <fieldset className="field">
          <legend className="field-label">Scopes</legend>
          <div className="checks">
            {ownScopes.map((s) => (
              <label key={s} className="check">
                <input
                  type="checkbox"
                  checked={scopes.includes(s)}
                  onChange={(e) => setScopes(e.target.checked ? [...scopes, s] : scopes.filter((x) => x !== s))}
                />
                <span>
                  <code className="mono">{s}</code>
                  <span className="muted small"> {SCOPE_HELP[s]}</span>
                </span>
              </label>
            ))}
          </div>
          <span className="field-hint">A key can never do more than you can.</span>
        </fieldset>
        <label className="field">
          <span className="field-label">Expires</span>
          <select className="input" value={expiry} onChange={(e) => setExpiry(e.target.value)} name="expiry">
            {EXPIRY_CHOICES.map((c) => (
              <option key={c.value} value={c.value}>
                {c.label}
              </option>
            ))}
          </select>
        </label>
        {expiry === 'custom' ? (
          <label className="field">
            <span className="field-label">Expiry date</span>
            <input
              className="input"
              type="date"
              min={today}
              required
              value={customDate}
              onChange={(e) => setCustomDate(e.target.value)}
            />
          </label>
        ) : null}
        <div className="field">
          <label className="field" htmlFor="key-ips">
            <span className="field-label">Allowed IP addresses (optional)</span>
          </label>
          <input
            id="key-ips"
            className="input mono"
            placeholder="e.g. 203.0.113.7, 10.0.0.0/8, 2001:db8::/32"
            value={ips}
            aria-describedby="key-ips-hint"
            onChange={(e) => setIps(e.target.value)}
          />
          <span className="field-hint" id="key-ips-hint">
            The key is refused from anywhere else. Leave empty to allow any address.
          </span>
        </div>
        {scopes.length === 0 ? (
          <p className="form-error" role="alert">
            Choose at least one scope.
          </p>
        ) : null}
        {create.error ? (
          <p className="form-error" role="alert">
            {messageOf(create.error)}
          </p>
        ) : null}
        <div className="dialog-actions">
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="btn btn-primary" disabled={create.isPending || scopes.length === 0}>
            {create.isPending ? 'Creating…' : 'Create key'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

const GRACE_CHOICES = [
  { value: 3600, label: '1 hour (default)' },
  { value: 86_400, label: '1 day' },
  { value: 7 * 86_400, label: '7 days' },
  { value: 0, label: 'No grace: stop the old key now' },
];

function RotateKeyDialog({
  apiKey,
  onClose,
  onRotated,
}: {
  apiKey: ApiKey;
  onClose: () => void;
  onRotated: (key: Created) => void;
}) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [grace, setGrace] = useState(3600);
  const rotate = useMutation(
    trpc.apiKeys.rotate.mutationOptions({
      onSuccess: (key) => {
        void queryClient.invalidateQueries({ queryKey: trpc.apiKeys.list.queryKey() });
        onRotated(key);
      },
    }),
  );
  return (
    <Dialog open title={`Rotate “${apiKey.name ?? apiKey.start}”`} onClose={onClose}>
      <p className="dialog-text">
        A new key with the same scopes replaces this one. The old key keeps working for the grace period, so you can
        switch your programs over.
      </p>
      <label className="field">
        <span className="field-label">Grace period for the old key</span>
        <select className="input" value={grace} onChange={(e) => setGrace(Number(e.target.value))}>
          {GRACE_CHOICES.map((c) => (
            <option key={c.value} value={c.value}>
              {c.label}
            </option>
          ))}
        </select>
      </label>
      {rotate.error ? (
        <p className="form-error" role="alert">
          {messageOf(rotate.error)}
        </p>
      ) : null}
      <div className="dialog-actions">
        <button type="button" className="btn" onClick={onClose}>
          Cancel
        </button>
        <button
          type="button"
          className="btn btn-primary"
          disabled={rotate.isPending}
          onClick={() => rotate.mutate({ id: apiKey.id, grace_seconds: grace })}
        >
          {rotate.isPending ? 'Rotating…' : 'Rotate key'}
        </button>
      </div>
    </Dialog>
  );
}

export function RevokeKeyDialog({ apiKey, onClose }: { apiKey: ApiKey; onClose: () => void }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const revoke = useMutation(
    trpc.apiKeys.revoke.mutationOptions({
      onSuccess: () => {
        void queryClient.invalidateQueries({ queryKey: trpc.apiKeys.list.queryKey() });
        onClose();
      },
    }),
  );
  return (
    <ConfirmDialog
      open
      title="Revoke this key?"
      confirmLabel="Revoke key"
      onConfirm={() => revoke.mutate({ id: apiKey.id })}
      onClose={onClose}
      pending={revoke.isPending}
      error={revoke.error}
    >
      <p>
        <strong>{apiKey.name ?? 'Unnamed key'}</strong> (<code className="mono">{apiKey.start}…</code>) stops working at
        once, everywhere. Programs using it will be refused. This cannot be undone.
      </p>
    </ConfirmDialog>
  );
}
