import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// In development Vite serves the UI and proxies the API to the server on :3000 (same origin in production).
const api = process.env.KEYLEDGER_DEV_API ?? 'http://127.0.0.1:3000';

export default defineConfig({
  plugins: [react()],
  server: {
    proxy: Object.fromEntries(['/trpc', '/v1', '/api', '/auth', '/healthz', '/readyz'].map((p) => [p, api])),
  },
  build: { outDir: 'dist', sourcemap: true },
});
