import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { navigate } from 'wouter/use-browser-location';
import { App, Providers } from './app.tsx';
import { loginPathFor } from './session.tsx';
import { createClient, createQueryClient } from './trpc.ts';
import './styles.css';

const trpcClient = createClient();
// A 401 on any query means the session ended (signed out elsewhere, revoked, disabled): back to sign-in.
const queryClient = createQueryClient(() => {
  const { pathname, search } = window.location;
  if (pathname === '/login') return;
  const to = loginPathFor(pathname, search.replace(/^\?/, ''));
  navigate(`${to}${to.includes('?') ? '&' : '?'}signed_out=1`, { replace: true });
});

const root = document.getElementById('root');
if (root) {
  createRoot(root).render(
    <StrictMode>
      <Providers queryClient={queryClient} trpcClient={trpcClient}>
        <App />
      </Providers>
    </StrictMode>,
  );
}
