import { testDatabaseUrl } from '@keyledger/db/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Backend, createBackend, randomSecret, spawnServer } from './spawn-server.ts';

/** SIGTERM ends the server even while a live tail (audit.onEvent over SSE) holds a connection open. */
describe('shutdown', () => {
  let backend: Backend;
  beforeAll(async () => {
    backend = await createBackend(testDatabaseUrl());
  });
  afterAll(async () => {
    await backend?.close();
  });

  it('exits 0 within the grace period with a tail connected', async () => {
    const adminKey = `env-admin-${randomSecret(40)}`;
    const server = await spawnServer({ ...backend.env, KEYLEDGER_ADMIN_API_KEY: adminKey });
    const input = encodeURIComponent(JSON.stringify({}));
    const abort = new AbortController();
    const tail = await fetch(`${server.url}/trpc/audit.onEvent?input=${input}`, {
      headers: { authorization: `Bearer ${adminKey}`, accept: 'text/event-stream' },
      signal: abort.signal,
    });
    expect(tail.status).toBe(200);
    expect(tail.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = tail.body?.getReader();
    await reader?.read(); // the stream is open and flowing
    const started = performance.now();
    const code = await server.stop();
    const ms = performance.now() - started;
    abort.abort();
    expect(code).toBe(0);
    // The grace period is 2 s; well under the 10 s after which the harness would SIGKILL.
    expect(ms).toBeLessThan(8000);
    expect(server.output()).not.toContain(adminKey);
  }, 120_000);
});
