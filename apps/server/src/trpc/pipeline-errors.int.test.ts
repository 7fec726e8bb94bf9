import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../app.ts';
import { createTestDeps, type TestDeps } from '../testing.ts';

let deps: TestDeps;
beforeAll(async () => {
  deps = await createTestDeps();
});
afterAll(async () => {
  await deps.close();
});

describe('pipeline refusals on /trpc', () => {
  it('come in tRPC’s error shape, one per procedure of a batch, so typed clients can read them', async () => {
    const app = createApp(deps);
    const single = await app.request('/trpc/apiKeys.list', { headers: { authorization: 'Bearer kl_key_garbage' } });
    expect(single.status).toBe(401);
    expect(await single.json()).toMatchObject({
      error: {
        code: -32001,
        message: 'Invalid or expired credentials',
        data: { code: 'UNAUTHORIZED', httpStatus: 401, path: 'apiKeys.list', keyledgerCode: 'invalid_token' },
      },
    });
    const batch = await app.request('/trpc/apiKeys.list,sessions.list?batch=1', {
      headers: { authorization: 'Bearer kl_key_garbage' },
    });
    const body = (await batch.json()) as { error: { data: { path: string } } }[];
    expect(body.map((e) => e.error.data.path)).toEqual(['apiKeys.list', 'sessions.list']);
    const rest = await app.request('/v1/api-keys', { headers: { authorization: 'Bearer kl_key_garbage' } });
    expect(await rest.json()).toMatchObject({ code: 'invalid_token' });
  });
});
