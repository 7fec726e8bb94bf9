import { StrictMode, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';

/** The admin UI's shell. Until the sign-in and admin pages land, it shows whether the server is ready. */
function App() {
  const [state, setState] = useState<'checking' | 'ready' | 'unavailable'>('checking');
  useEffect(() => {
    fetch('/readyz')
      .then((r) => setState(r.ok ? 'ready' : 'unavailable'))
      .catch(() => setState('unavailable'));
  }, []);
  return (
    <main style={{ fontFamily: 'system-ui, sans-serif', maxWidth: 640, margin: '4rem auto', padding: '0 1rem' }}>
      <h1>Keyledger</h1>
      <p>Authentication with a log that proves it was not tampered with.</p>
      <p role="status">Server: {state}</p>
    </main>
  );
}

const root = document.getElementById('root');
if (root) {
  createRoot(root).render(
    <StrictMode>
      <App />
    </StrictMode>,
  );
}
