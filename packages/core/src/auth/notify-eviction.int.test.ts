import type { TestDb } from '@keyledger/db/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestCore, meta } from '../../test/helpers.ts';
import { createApiKey, revokeApiKey } from '../api-keys/service.ts';
import { catalogue } from '../catalogue.ts';
import type { ManualClock } from '../clock.ts';
import type { CoreContext } from '../event-store/command.ts';
import { EventStore } from '../event-store/event-store.ts';
import { projections } from '../projections.ts';
import { createSession, revokeSession } from '../sessions/service.ts';
import { registerUser } from '../users/service.ts';
import { Authenticator } from './authenticator.ts';

/**
 * Two server instances over one database. Instance A is the core commands with A's EventStore. Instance B is an
 * Authenticator whose `start()` gets an EventStore of its own that never appends, so B's `onAppended` hook never
 * fires: only `NOTIFY keyledger_events` (heard through `handle.listen`) can empty B's cache. On Postgres that is a
 * dedicated LISTEN connection; on PGlite, which one process opens once, it is `pglite.listen` on the same engine,
 * so the notification still goes through the server's NOTIFY path, not through any in-process call.
 *
 * B caches for 60 s and its clock never moves, so its TTL cannot evict anything during the test: a deaf
 * authenticator with the same TTL (never started) shows the revoked credentials would still be served from cache.
 * Measured from commit to B's refusal (polling every 20 ms) over a dozen runs: 1–18 ms on PGlite, 1–30 ms on
 * Postgres; the slowest seen was 161 ms, with both projects running at once.
 */

const POLL_MS = 20;
const BOUND_MS = 1000;
const IP = '203.0.113.7';

let t: TestDb;
let clock: ManualClock;
let ctx: CoreContext;
let b: Authenticator;

beforeEach(async () => {
  ({ t, clock, ctx } = await createTestCore());
  b = new Authenticator({ db: t.db, clock, cacheTtlMs: 60_000 });
  await b.start(new EventStore({ db: t.db, catalogue, projections }), t);
});
afterEach(async () => {
  await b.stop();
  await t.close();
});

/** Asks B every 20 ms until it refuses the token (or the bound has clearly passed); returns the time taken. */
async function msUntilRefused(token: string): Promise<number> {
  const start = performance.now();
  for (;;) {
    const result = await b.authenticate(token, { ip: IP });
    const elapsed = performance.now() - start;
    if (!result.ok) {
      expect(result.reason).toBe('revoked');
      return elapsed;
    }
    if (elapsed > 2 * BOUND_MS) return elapsed;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

describe('cross-instance revocation by NOTIFY', () => {
  it(`another instance refuses a revoked API key and a signed-out session within ${BOUND_MS} ms, with a 60 s cache`, async () => {
    const user = await registerUser(ctx, meta, {
      email: 'ada@example.com',
      name: 'Ada',
      role: 'member',
      method: 'admin',
    });
    const session = await createSession(ctx, meta, { userId: user.id, method: 'password', lifetime: 'api' });
    const bySession = await b.authenticate(session.token, { ip: IP });
    if (!bySession.ok) throw new Error(`session refused: ${bySession.reason}`);
    const key = await createApiKey(ctx, meta, bySession.principal, { name: 'ci' });
    expect(await b.authenticate(key.key, { ip: IP })).toMatchObject({ ok: true, credential: 'api_key' });

    const deaf = new Authenticator({ db: t.db, clock, cacheTtlMs: 60_000 });
    expect((await deaf.authenticate(key.key, { ip: IP })).ok).toBe(true);
    expect((await deaf.authenticate(session.token, { ip: IP })).ok).toBe(true);

    await revokeApiKey(ctx, meta, bySession.principal, key.id);
    const keyDelay = await msUntilRefused(key.key);
    expect(keyDelay).toBeLessThan(BOUND_MS);

    // The key's eviction emptied B's whole cache: put the session back in it before signing it out.
    expect(await b.authenticate(session.token, { ip: IP })).toMatchObject({ ok: true, credential: 'session' });
    await revokeSession(ctx, meta, session.sessionId, 'signout');
    const sessionDelay = await msUntilRefused(session.token);
    expect(sessionDelay).toBeLessThan(BOUND_MS);

    // Without NOTIFY both would still be served: the TTL has not run out.
    expect((await deaf.authenticate(key.key, { ip: IP })).ok).toBe(true);
    expect((await deaf.authenticate(session.token, { ip: IP })).ok).toBe(true);
  });
});
