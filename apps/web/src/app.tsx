import { type QueryClient, QueryClientProvider, useMutation } from '@tanstack/react-query';
import { type ReactNode, useEffect, useRef, useState } from 'react';
import { Link, Redirect, Route, Switch, useLocation } from 'wouter';
import { BrandMark } from './components/icons.tsx';
import { AccountPage } from './pages/account.tsx';
import { AuditPage } from './pages/audit/explorer.tsx';
import { KeysPage } from './pages/keys.tsx';
import { LoginPage } from './pages/login.tsx';
import { SessionsPage } from './pages/sessions.tsx';
import { UserDetailPage } from './pages/user-detail.tsx';
import { UsersPage } from './pages/users.tsx';
import { isAdmin, NotFound, RequireAdmin, RequireAuth, useMe } from './session.tsx';
import { TRPCProvider, type TrpcClient, useTRPC } from './trpc.ts';

export function Providers({
  queryClient,
  trpcClient,
  children,
}: {
  queryClient: QueryClient;
  trpcClient: TrpcClient;
  children: ReactNode;
}) {
  return (
    <QueryClientProvider client={queryClient}>
      <TRPCProvider trpcClient={trpcClient} queryClient={queryClient}>
        {children}
      </TRPCProvider>
    </QueryClientProvider>
  );
}

export function App() {
  return (
    <Switch>
      <Route path="/login" component={LoginPage} />
      <Route>
        <RequireAuth>
          <Shell>
            <Switch>
              <Route path="/">
                <Redirect to="/keys" replace />
              </Route>
              <Route path="/keys" component={KeysPage} />
              <Route path="/sessions" component={SessionsPage} />
              <Route path="/account" component={AccountPage} />
              <Route path="/audit" component={AuditPage} />
              <Route path="/users">
                <RequireAdmin>
                  <UsersPage />
                </RequireAdmin>
              </Route>
              <Route path="/users/:id">
                {(params) => (
                  <RequireAdmin>
                    <UserDetailPage key={params.id} id={params.id} />
                  </RequireAdmin>
                )}
              </Route>
              <Route component={NotFound} />
            </Switch>
          </Shell>
        </RequireAuth>
      </Route>
    </Switch>
  );
}

function NavLink({ href, children }: { href: string; children: ReactNode }) {
  const [location] = useLocation();
  const active = location === href || location.startsWith(`${href}/`);
  return (
    <Link href={href} className={active ? 'nav-link active' : 'nav-link'} aria-current={active ? 'page' : undefined}>
      {children}
    </Link>
  );
}

function Shell({ children }: { children: ReactNode }) {
  const me = useMe();
  const trpc = useTRPC();
  const [, navigate] = useLocation();
  const [menu, setMenu] = useState(false);
  const [location] = useLocation();
  const main = useRef<HTMLElement>(null);
  const first = useRef(true);
  // biome-ignore lint/correctness/useExhaustiveDependencies: runs on each navigation, which is the point
  useEffect(() => {
    // After a client-side navigation, a screen reader starts at the new page, as after a full load.
    if (first.current) {
      first.current = false;
      return;
    }
    main.current?.focus({ preventScroll: true });
  }, [location]);
  const account = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!menu) return;
    // The menu closes on Escape (focus back on its button) and on a click anywhere else.
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== 'Escape') return;
      setMenu(false);
      account.current?.querySelector('button')?.focus();
    };
    const onPointer = (e: MouseEvent) => {
      if (!account.current?.contains(e.target as Node)) setMenu(false);
    };
    document.addEventListener('keydown', onKey);
    document.addEventListener('mousedown', onPointer);
    return () => {
      document.removeEventListener('keydown', onKey);
      document.removeEventListener('mousedown', onPointer);
    };
  }, [menu]);
  const signOut = useMutation(
    trpc.auth.signOut.mutationOptions({
      onSettled: () => {
        window.location.assign('/login');
      },
    }),
  );
  return (
    <div className="app">
      <a href="#main" className="skip-link">
        Skip to content
      </a>
      <header className="topbar">
        <Link href="/keys" className="brand">
          <BrandMark />
          Keyledger
        </Link>
        <nav className="nav" aria-label="Main">
          <NavLink href="/keys">API keys</NavLink>
          <NavLink href="/sessions">Sessions</NavLink>
          {isAdmin(me) ? <NavLink href="/users">Users</NavLink> : null}
          <NavLink href="/audit">Audit log</NavLink>
        </nav>
        <div className="account" ref={account}>
          <button
            type="button"
            className="account-button"
            aria-expanded={menu}
            aria-haspopup="true"
            onClick={() => setMenu((m) => !m)}
          >
            <span className="avatar" aria-hidden="true">
              {(me.name ?? me.email ?? '?').slice(0, 1).toUpperCase()}
            </span>
            <span className="account-name">{me.email ?? me.id}</span>
          </button>
          {menu ? (
            <div className="menu" role="menu">
              <div className="menu-head">
                <div className="strong">{me.name ?? me.email}</div>
                <div className="muted small">
                  {me.email} · {me.role}
                </div>
              </div>
              <button
                type="button"
                role="menuitem"
                className="menu-item"
                onClick={() => {
                  setMenu(false);
                  navigate('/account');
                }}
              >
                Your account
              </button>
              <button
                type="button"
                role="menuitem"
                className="menu-item"
                onClick={() => {
                  setMenu(false);
                  navigate('/sessions');
                }}
              >
                Your sessions
              </button>
              <button
                type="button"
                role="menuitem"
                className="menu-item"
                onClick={() => signOut.mutate()}
                disabled={signOut.isPending}
              >
                Sign out
              </button>
            </div>
          ) : null}
        </div>
      </header>
      <main id="main" className="content" tabIndex={-1} ref={main}>
        {children}
      </main>
    </div>
  );
}
