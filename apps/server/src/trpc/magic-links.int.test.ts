import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSignedInUser, createTestDeps, type TestDeps } from '../testing.ts';
import { callerFor, expectTrpcError, principalOf, reasonOf } from './test-kit.ts';

let deps: TestDeps;
beforeEach(async () => {
  deps = await createTestDeps();
});
afterEach(async () => {
  await deps.close();
});

const outboxCount = async () => (await deps.t.db.selectFrom('outbox').select('id').execute()).length;

describe('auth.requestMagicLink and auth.providers over tRPC', () => {
  it('answers {status: sent} for known and unknown addresses; only the known one gets mail (invite-only)', async () => {
    await createSignedInUser(deps, { email: 'ada@example.com' });
    const { caller } = callerFor(deps, { clientIp: '192.0.2.10' });
    expect(await caller.auth.requestMagicLink({ email: 'ada@example.com', next: '/keys' })).toEqual({ status: 'sent' });
    expect(await outboxCount()).toBe(1);
    expect(await caller.auth.requestMagicLink({ email: 'nobody@example.com' })).toEqual({ status: 'sent' });
    expect(await outboxCount()).toBe(1);
    // Both were counted against the requester and the address.
    const rows = await deps.t.db.selectFrom('magic_link_requests').select(['requester', 'email']).execute();
    expect(rows.map((r) => r.requester)).toEqual(['ip:192.0.2.10', 'ip:192.0.2.10']);
    // The unknown address was answered no sooner than a link is usually issued.
    expect(deps.magicLinkTiming.estimateMs).toBeGreaterThan(0);
  });

  it('counts a signed-in requester by user; over the limit TOO_MANY_REQUESTS with Retry-After and an event', async () => {
    const u = await createSignedInUser(deps, { email: 'ada@example.com' });
    const principal = await principalOf(deps, u.token);
    for (let i = 0; i < 10; i++) {
      await callerFor(deps, { principal, clientIp: `192.0.2.${i}` }).caller.auth.requestMagicLink({
        email: `someone-${i}@example.com`,
      });
    }
    const { caller, resHeaders } = callerFor(deps, { principal, clientIp: '198.51.100.1' });
    const error = await expectTrpcError(caller.auth.requestMagicLink({ email: 'x@example.com' }), 'TOO_MANY_REQUESTS');
    expect(reasonOf(error)).toBe('rate_limited');
    expect(Number(resHeaders.get('retry-after'))).toBe(24 * 3600);
    const last = await deps.t.db
      .selectFrom('events')
      .select(['type', 'data'])
      .orderBy('seq', 'desc')
      .limit(1)
      .execute();
    expect(last[0]).toMatchObject({ type: 'magic_link.rate_limited', data: { scope: 'requester' } });
  });

  it('refuses a next that leaves the origin with BAD_REQUEST invalid_next, and issues nothing', async () => {
    await createSignedInUser(deps, { email: 'ada@example.com' });
    for (const next of ['//evil.example', '/\\evil.example', 'https:evil.example', '\t/x', '/%2F%2Fevil.example']) {
      const error = await expectTrpcError(
        callerFor(deps).caller.auth.requestMagicLink({ email: 'ada@example.com', next }),
        'BAD_REQUEST',
      );
      expect(reasonOf(error)).toBe('invalid_next');
    }
    expect(await outboxCount()).toBe(0);
  });

  it('lists configured providers (none by default)', async () => {
    expect(await callerFor(deps).caller.auth.providers()).toEqual([]);
  });
});

describe('concurrent requests cannot slip under the per-address limit', () => {
  it('25 concurrent requests for one address from different IPs: exactly 20 counted, 5 refused', async () => {
    await createSignedInUser(deps, { email: 'ada@example.com' });
    const results = await Promise.allSettled(
      Array.from({ length: 25 }, (_, i) =>
        callerFor(deps, { clientIp: `203.0.113.${i}` }).caller.auth.requestMagicLink({ email: 'ada@example.com' }),
      ),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(20);
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(5);
    expect(await deps.t.db.selectFrom('magic_link_requests').select('id').execute()).toHaveLength(20);
  });
});
