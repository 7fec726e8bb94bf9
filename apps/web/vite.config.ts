import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// In development Vite serves the UI and proxies the API to the server (same origin in production). Start the server
// with KEYLEDGER_PUBLIC_URL=http://localhost:5173 so its Origin check, cookies and links match the page's origin.
const api = process.env.KEYLEDGER_DEV_API ?? 'http://127.0.0.1:3000';
const proxied = ['/trpc', '/v1', '/api', '/auth', '/setup', '/healthz', '/readyz'];

export default defineConfig({
  plugins: [react()],
  server: { proxy: Object.fromEntries(proxied.map((p) => [p, api])) },
  build: { outDir: 'dist', sourcemap: true },
});
