import { useQuery } from '@tanstack/react-query';
import { createContext, type ReactNode, useContext } from 'react';
import { Link, Redirect, useLocation, useSearch } from 'wouter';
import { ErrorState, Loading } from './components/states.tsx';
import { isUnauthorized, type RouterOutputs, useTRPC } from './trpc.ts';

export type Me = RouterOutputs['auth']['me'];

const MeContext = createContext<Me | null>(null);

export function useMeQuery() {
  const trpc = useTRPC();
  return useQuery(trpc.auth.me.queryOptions(undefined, { retry: false, staleTime: 30_000, refetchInterval: 60_000 }));
}

/** The signed-in person; only inside <RequireAuth>. */
export function useMe(): Me {
  const me = useContext(MeContext);
  if (!me) throw new Error('useMe outside RequireAuth');
  return me;
}

export const isAdmin = (me: Me) => me.auth.scopes.includes('users:read');

/** Where to come back to after signing in: the path only, never another origin. */
export function loginPathFor(location: string, search: string): string {
  const here = `${location}${search ? `?${search}` : ''}`;
  return here === '/' || here.startsWith('/login') ? '/login' : `/login?next=${encodeURIComponent(here)}`;
}

/** Renders its children for a signed-in person; anyone else goes to the sign-in page and comes back after. */
export function RequireAuth({ children }: { children: ReactNode }) {
  const me = useMeQuery();
  const [location] = useLocation();
  const search = useSearch();
  if (me.isPending) return <Loading label="Checking your session…" />;
  if (me.isError) {
    if (isUnauthorized(me.error)) {
      // Data from an earlier success means a session that just ended (revoked, signed out elsewhere, disabled).
      const to = loginPathFor(location, search);
      const ended = me.data ? `${to.includes('?') ? '&' : '?'}signed_out=1` : '';
      return <Redirect to={`${to}${ended}`} replace />;
    }
    return (
      <main className="content">
        <ErrorState error={me.error} onRetry={() => me.refetch()} />
      </main>
    );
  }
  return <MeContext.Provider value={me.data}>{children}</MeContext.Provider>;
}

/** Admin pages: a member is told there is nothing here (the server refuses them anyway). */
export function RequireAdmin({ children }: { children: ReactNode }) {
  const me = useMe();
  if (!isAdmin(me)) return <NotFound />;
  return <>{children}</>;
}

export function NotFound() {
  return (
    <div className="state state-empty">
      <p className="state-title">Page not found</p>
      <p className="muted">There is nothing at this address.</p>
      <Link className="btn" href="/keys">
        Go to your API keys
      </Link>
    </div>
  );
}
