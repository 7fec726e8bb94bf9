import { createDb } from '@keyledger/db';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApp } from './app.ts';
import { createTestDeps, type TestDeps } from './testing.ts';

let deps: TestDeps;
beforeEach(async () => {
  deps = await createTestDeps();
});
afterEach(async () => {
  await deps.close();
});

describe('health and the error envelope', () => {
  it('answers liveness and readiness with a request id and security headers', async () => {
    const app = createApp(deps);
    const live = await app.request('/healthz');
    expect(live.status).toBe(200);
    expect(await live.json()).toEqual({ status: 'ok' });
    expect(live.headers.get('x-request-id')).toMatch(/^req_[A-Za-z0-9_-]{16}$/);
    expect(live.headers.get('x-content-type-options')).toBe('nosniff');
    const ready = await app.request('/readyz');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', database: deps.t.dialect });
  });

  it('keeps a well-formed incoming request id and replaces a hostile one', async () => {
    const app = createApp(deps);
    expect(
      (await app.request('/healthz', { headers: { 'x-request-id': 'abc.DEF_123-x' } })).headers.get('x-request-id'),
    ).toBe('abc.DEF_123-x');
    for (const bad of ['a b', 'x'.repeat(129), '<script>', '']) {
      const id = (await app.request('/healthz', { headers: { 'x-request-id': bad } })).headers.get('x-request-id');
      expect(id).not.toBe(bad);
      expect(id).toMatch(/^req_/);
    }
  });

  it('answers unknown routes with the JSON 404 envelope', async () => {
    const app = createApp(deps);
    for (const path of ['/v1/nothing', '/api/nothing', '/nope']) {
      const res = await app.request(path, { headers: { 'x-request-id': 'rid-1' } });
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ error: 'Not found', code: 'not_found', request_id: 'rid-1' });
    }
  });

  it('reports not ready (503, no stack) when the database is gone', async () => {
    // Nothing listens on port 1: every query fails to connect, as when the database is down.
    const gone = await createDb({ databaseUrl: 'postgres://keyledger@127.0.0.1:1/keyledger' });
    const app = createApp({ ...deps, handle: gone });
    const res = await app.request('/readyz');
    expect(res.status).toBe(503);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ code: 'database_unavailable' });
    expect(JSON.stringify(body)).not.toMatch(/\bat .*\.ts:\d+|ECONNREFUSED/);
    await gone.close();
  });
});
