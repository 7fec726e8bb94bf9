import { passwordSignIn, SYSTEM_META } from '@keyledger/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../app.ts';
import { createSignedInUser, createTestDeps, TEST_PASSWORD, type TestDeps } from '../testing.ts';

let deps: TestDeps;
beforeAll(async () => {
  deps = await createTestDeps();
});
afterAll(async () => {
  await deps.close();
});

describe('the OpenAPI document', () => {
  it('is OpenAPI 3.1 JSON, public, and generated from the route schemas', async () => {
    const res = await createApp(deps).request('/api/openapi');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    const doc = (await res.json()) as {
      openapi: string;
      paths: Record<string, Record<string, { security?: unknown[]; responses: Record<string, unknown> }>>;
      components: { securitySchemes: Record<string, unknown>; schemas: Record<string, unknown> };
    };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(['apiKeyHeader', 'bearerAuth', 'cookieAuth']);
    for (const schema of ['Error', 'ApiKey', 'CreatedApiKey', 'User', 'Me', 'Session', 'TokenResponse'])
      expect(doc.components.schemas).toHaveProperty(schema);
    // Every /v1 operation documents the errors its pipeline can answer, in the one envelope.
    expect(doc.paths['/healthz']?.get).toBeDefined();
    expect(doc.paths['/readyz']?.get?.responses).toHaveProperty('503');
    for (const [path, methods] of Object.entries(doc.paths).filter(([p]) => p.startsWith('/v1/'))) {
      for (const [method, op] of Object.entries(methods)) {
        expect(
          Object.keys(op.responses).some((s) => s.startsWith('4')),
          `${method} ${path}`,
        ).toBe(true);
        for (const status of ['400', '401', '403', '429', '503'])
          expect(op.responses, `${method} ${path}`).toHaveProperty(status);
        if (method !== 'get')
          for (const status of ['413', '415']) expect(op.responses, `${method} ${path}`).toHaveProperty(status);
      }
    }
    expect(doc.paths['/v1/api-keys']?.post?.security).toBeDefined();
    expect(doc.paths['/v1/auth/pw/signin']?.post?.security).toBeUndefined();
    // The passwordless and federated steps, the pages a mail link opens, and the logout page are described too.
    for (const [path, method] of [
      ['/v1/auth/magic-link', 'post'],
      ['/v1/auth/magic-link/verify', 'post'],
      ['/auth/magic', 'get'],
      ['/auth/magic', 'post'],
      ['/v1/auth/oauth/providers', 'get'],
      ['/v1/auth/oauth/{provider}/login', 'get'],
      ['/v1/auth/oauth/{provider}/callback', 'get'],
      ['/v1/auth/logout', 'get'],
    ] as const)
      expect(doc.paths[path]?.[method], `${method} ${path}`).toBeDefined();
    expect(doc.paths['/auth/magic']?.post?.responses).toHaveProperty('303');
    expect(doc.paths['/v1/auth/oauth/{provider}/callback']?.get?.responses).toHaveProperty('302');
  });

  it('serves the logout page: a GET changes nothing; its form signs out and lands on /login', async () => {
    const app = createApp(deps);
    await createSignedInUser(deps, { email: 'logout@example.com', name: 'Lou <Out>' });
    const s = await passwordSignIn(deps.core, SYSTEM_META, {
      email: 'logout@example.com',
      password: TEST_PASSWORD,
      ip: '127.0.0.1',
      lifetime: 'browser',
    });
    const cookie = `keyledger_session=${s.token}`;
    const pageRes = await app.request('/v1/auth/logout', { headers: { cookie } });
    expect(pageRes.status).toBe(200);
    const html = await pageRes.text();
    expect(html).toContain('<form method="post" action="/v1/auth/signout">');
    expect(html).toContain('Lou &#60;Out&#62;');
    expect((await app.request('/v1/users/me', { headers: { cookie } })).status).toBe(200);

    const noOrigin = await app.request('/v1/auth/signout', { method: 'POST', headers: { cookie } });
    expect(noOrigin.status).toBe(403);
    const out = await app.request('/v1/auth/signout', {
      method: 'POST',
      headers: {
        cookie,
        origin: 'http://localhost:3000',
        accept: 'text/html',
        'sec-fetch-mode': 'navigate',
        'content-type': 'application/x-www-form-urlencoded',
      },
    });
    expect(out.status).toBe(303);
    expect(out.headers.get('location')).toBe('/login?signed_out=1');
    expect(out.headers.get('set-cookie')).toMatch(/keyledger_session=;/);
    expect((await app.request('/v1/users/me', { headers: { cookie } })).status).toBe(401);
    const after = await app.request('/v1/auth/logout');
    expect(await after.text()).toContain('You are not signed in');
  });

  it('answers a known path asked with another method with 405 and Allow', async () => {
    const res = await createApp(deps).request('/v1/users/me', { method: 'PUT' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, PATCH'); // /v1/users/{id} takes PATCH, and routes 'me' too
    expect(await res.json()).toMatchObject({ code: 'method_not_allowed' });
    expect((await createApp(deps).request('/v1/api-keys/key_x', { method: 'PUT' })).headers.get('allow')).toBe(
      'GET, DELETE',
    );
  });

  it('has a browsable reference page beside it, escaping what it shows', async () => {
    const res = await createApp(deps).request('/api/reference');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    const html = await res.text();
    expect(html).toContain('<code>/v1/api-keys/{id}/rotate</code>');
    expect(html).toContain('href="/api/openapi"');
    expect(html).not.toMatch(/<script/i);
  });
});
