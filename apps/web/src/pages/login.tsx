import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useEffect, useState } from 'react';
import { Link, useLocation, useSearch } from 'wouter';
import { BrandMark, MailIcon } from '../components/icons.tsx';
import { messageOf } from '../lib/errors.ts';
import { useTRPC } from '../trpc.ts';

/** What the OAuth callback's `?error=` codes mean, in words a person can act on. */
export const OAUTH_ERRORS: Record<string, string> = {
  state_mismatch: 'That sign-in attempt expired or was already used. Start again.',
  id_token_invalid: 'The identity provider sent an answer we could not verify. Try again, or use another way in.',
  access_denied: 'Sign-in was cancelled or refused, or this account is not allowed in.',
  provider_unavailable: 'The identity provider did not answer in time. Try again in a moment.',
  account_exists_unverified:
    'An account with this email already exists, and the provider has not verified the address. Sign in another way first.',
  signup_closed: 'There is no account for this address, and sign-up is by invitation only. Ask an admin to invite you.',
};

export interface Provider {
  id: string;
  name: string;
  type: string;
  login_url: string;
}

/** Only a local path may be a destination after sign-in (never another origin). */
export function safeNext(next: string | null): string {
  if (!next?.startsWith('/') || next.startsWith('//') || next.includes('\\')) return '/';
  return next;
}

export function LoginPage() {
  const params = new URLSearchParams(useSearch());
  const next = safeNext(params.get('next'));
  const oauthError = params.get('error');
  const [, navigate] = useLocation();
  const trpc = useTRPC();
  // Asked afresh on every visit: a cached answer from before a revocation must not bounce the person back in.
  const me = useQuery({ ...trpc.auth.me.queryOptions(), retry: false, refetchOnMount: 'always' });
  // Arriving with an address (from a used or expired link's page) means asking for a new link.
  const [mode, setMode] = useState<'password' | 'link'>(params.has('email') ? 'link' : 'password');
  const [email, setEmail] = useState(params.get('email') ?? '');

  const signedIn = me.isSuccess && !me.isFetching;
  useEffect(() => {
    // Already signed in (e.g. the back button): straight on, unless there is a refusal to explain.
    if (signedIn && !oauthError) navigate(next, { replace: true });
  }, [signedIn, oauthError, next, navigate]);

  return (
    <div className="auth-page">
      <div className="auth-card">
        <div className="brand brand-large">
          <BrandMark />
          Keyledger
        </div>
        <h1 className="auth-title">Sign in</h1>
        {oauthError ? (
          <div className="callout callout-danger" role="alert">
            {OAUTH_ERRORS[oauthError] ?? 'Sign-in did not complete. Try again.'}
            {signedIn ? (
              <>
                {' '}
                You are still signed in as {me.data.email ?? me.data.id}:{' '}
                <Link href="/account" className="link">
                  back to your account
                </Link>
                .
              </>
            ) : null}
          </div>
        ) : null}
        {params.get('signed_out') ? (
          <div className="callout" role="status">
            Your session ended (signed out here or on another device). Sign in again to continue.
          </div>
        ) : null}
        <div className="segmented" role="tablist" aria-label="How to sign in">
          <button
            type="button"
            role="tab"
            aria-selected={mode === 'password'}
            aria-controls="sign-in-panel"
            className={mode === 'password' ? 'active' : ''}
            onClick={() => setMode('password')}
          >
            Password
          </button>
          <button
            type="button"
            role="tab"
            aria-selected={mode === 'link'}
            aria-controls="sign-in-panel"
            className={mode === 'link' ? 'active' : ''}
            onClick={() => setMode('link')}
          >
            Email link
          </button>
        </div>
        <div id="sign-in-panel" role="tabpanel">
          {mode === 'password' ? (
            <PasswordForm email={email} setEmail={setEmail} next={next} />
          ) : (
            <MagicLinkForm email={email} setEmail={setEmail} next={next} />
          )}
        </div>
        <Providers next={next} />
      </div>
    </div>
  );
}

function PasswordForm({ email, setEmail, next }: { email: string; setEmail: (v: string) => void; next: string }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [, navigate] = useLocation();
  const [password, setPassword] = useState('');
  const signIn = useMutation(
    trpc.auth.signIn.mutationOptions({
      onSuccess: () => {
        // A new person may be signing in: nothing of the previous one stays in the cache.
        queryClient.clear();
        navigate(next, { replace: true });
      },
    }),
  );
  const submit = (e: FormEvent) => {
    e.preventDefault();
    signIn.mutate({ email, password });
  };
  // A wrong password, an unknown address and a disabled account answer alike (no enumeration), and so does this.
  const error = signIn.error
    ? signIn.error.data?.httpStatus === 401
      ? 'That email and password do not match an account.'
      : messageOf(signIn.error)
    : null;
  return (
    <form className="stack" onSubmit={submit}>
      <label className="field">
        <span className="field-label">Email</span>
        <input
          className="input"
          type="email"
          name="email"
          autoComplete="username"
          required
          value={email}
          onChange={(e) => setEmail(e.target.value)}
        />
      </label>
      <label className="field">
        <span className="field-label">Password</span>
        <input
          className="input"
          type="password"
          name="password"
          autoComplete="current-password"
          required
          value={password}
          onChange={(e) => setPassword(e.target.value)}
        />
      </label>
      {error ? (
        <p className="form-error" role="alert">
          {error}
        </p>
      ) : null}
      <button type="submit" className="btn btn-primary btn-block" disabled={signIn.isPending}>
        {signIn.isPending ? 'Signing in…' : 'Sign in'}
      </button>
    </form>
  );
}

function MagicLinkForm({ email, setEmail, next }: { email: string; setEmail: (v: string) => void; next: string }) {
  const send = useMutation({
    mutationFn: async (address: string) => {
      const res = await fetch('/v1/auth/magic-link', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(next === '/' ? { email: address } : { email: address, next }),
      });
      if (res.status === 429) throw new Error('Too many sign-in links were asked for. Try again later.');
      if (!res.ok) {
        const body = (await res.json().catch(() => null)) as { error?: string } | null;
        throw new Error(body?.error ?? 'The link could not be sent. Try again.');
      }
    },
  });
  if (send.isSuccess) {
    return (
      <div className="stack inbox" role="status">
        <div className="inbox-icon">
          <MailIcon />
        </div>
        <h2 className="inbox-title">Check your inbox</h2>
        <p>
          If <strong>{send.variables}</strong> has an account, a sign-in link is on its way. It works once, for 15
          minutes. Open it on this device.
        </p>
        <button type="button" className="btn btn-block" onClick={() => send.reset()}>
          Use another address or send again
        </button>
      </div>
    );
  }
  return (
    <form
      className="stack"
      onSubmit={(e) => {
        e.preventDefault();
        send.mutate(email);
      }}
    >
      <label className="field">
        <span className="field-label">Email</span>
        <input
          className="input"
          type="email"
          name="email"
          autoComplete="username"
          required
          value={email}
          onChange={(e) => setEmail(e.target.value)}
        />
      </label>
      <p className="muted small">We will email you a link that signs you in. No password needed.</p>
      {send.error ? (
        <p className="form-error" role="alert">
          {send.error.message}
        </p>
      ) : null}
      <button type="submit" className="btn btn-primary btn-block" disabled={send.isPending}>
        {send.isPending ? 'Sending…' : 'Email me a sign-in link'}
      </button>
    </form>
  );
}

/** The configured Google/OIDC providers, each with the URL that starts its sign-in (or linking). */
export function useProviders() {
  return useQuery({
    queryKey: ['oauth-providers'],
    queryFn: async (): Promise<Provider[]> => {
      const res = await fetch('/v1/auth/oauth/providers');
      if (!res.ok) return [];
      return ((await res.json()) as { data: Provider[] }).data;
    },
    staleTime: Number.POSITIVE_INFINITY,
  });
}

function Providers({ next }: { next: string }) {
  const providers = useProviders();
  const list = providers.data ?? [];
  if (list.length === 0) return null;
  return (
    <div className="providers">
      <div className="divider">
        <span>or</span>
      </div>
      {list.map((p) => {
        const url = new URL(p.login_url, window.location.origin);
        if (next !== '/') url.searchParams.set('next', next);
        // Same origin as the page: a relative link keeps the dev proxy and the production server alike.
        return (
          <a key={p.id} className="btn btn-block btn-provider" href={`${url.pathname}${url.search}`}>
            Continue with {p.name}
          </a>
        );
      })}
    </div>
  );
}
