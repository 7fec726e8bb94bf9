import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hono } from 'hono';
import { afterAll, describe, expect, it } from 'vitest';
import type { AppEnv } from '../http/variables.ts';
import { serveWebUi } from './static.ts';

const dist = mkdtempSync(join(tmpdir(), 'keyledger-web-dist-'));
mkdirSync(join(dist, 'assets'));
writeFileSync(join(dist, 'index.html'), '<!doctype html><div id="root"></div>');
writeFileSync(join(dist, 'assets', 'index-abc123.js'), 'console.log(1)');
writeFileSync(join(dist, 'favicon.svg'), '<svg/>');
afterAll(() => rmSync(dist, { recursive: true, force: true }));

/** The UI in front of a stand-in for the rest of the app: what it does not serve must fall through to here. */
function appWith(dir: string) {
  const app = new Hono<AppEnv>();
  app.get('/setup', (c) => c.text('setup page'));
  serveWebUi(app, { dir });
  app.notFound((c) => c.json({ code: 'not_found' }, 404));
  return app;
}

const html = { accept: 'text/html,application/xhtml+xml' };

describe('serving the built web UI', () => {
  const app = appWith(dist);

  it('answers client routes with index.html, not cached, under a strict CSP', async () => {
    for (const path of ['/', '/login', '/keys', '/sessions', '/users/user_1', '/audit']) {
      const res = await app.request(path, { headers: html });
      expect(res.status, path).toBe(200);
      expect(await res.text()).toContain('<div id="root">');
      expect(res.headers.get('cache-control')).toBe('no-cache');
      expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    }
  });

  it('serves hashed assets for a year and other files for an hour', async () => {
    const js = await app.request('/assets/index-abc123.js');
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(js.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(await js.text()).toBe('console.log(1)');
    const icon = await app.request('/favicon.svg');
    expect(icon.headers.get('cache-control')).toBe('public, max-age=3600');
    const head = await app.request('/assets/index-abc123.js', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });

  it('never answers for the API, the server pages or the health checks', async () => {
    for (const path of ['/v1/users/me', '/api/openapi', '/trpc/auth.me', '/auth/magic', '/healthz', '/readyz']) {
      const res = await app.request(path, { headers: html });
      expect(res.status, path).toBe(404);
      expect(await res.json()).toEqual({ code: 'not_found' });
    }
    expect(await (await app.request('/setup', { headers: html })).text()).toBe('setup page');
  });

  it('gives a missing asset, a non-HTML request or a write the plain 404', async () => {
    expect((await app.request('/assets/missing.js', { headers: html })).status).toBe(404);
    expect((await app.request('/keys')).status).toBe(404);
    expect((await app.request('/keys', { method: 'POST', headers: html })).status).toBe(404);
  });

  it('serves only files of the build, whatever the path says', async () => {
    for (const path of ['/../package.json', '/assets/../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd']) {
      const res = await app.request(path);
      expect(res.status, path).toBe(404);
    }
  });

  it('says how to build the UI when there is no build', async () => {
    const res = await appWith(join(dist, 'nowhere')).request('/keys', { headers: html });
    expect(res.status).toBe(503);
    expect(await res.text()).toContain('pnpm --filter @keyledger/web build');
  });
});
