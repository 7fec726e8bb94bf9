import { createTestDb, type TestDb } from '@keyledger/db/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { catalogue } from '../src/catalogue.ts';
import { ManualClock } from '../src/clock.ts';
import type { CoreContext } from '../src/event-store/command.ts';
import { EventStore } from '../src/event-store/event-store.ts';
import type { MailPayload } from '../src/magic-links/service.ts';
import { requestMagicLink } from '../src/magic-links/service.ts';
import { deliverDueMail, type MailTransport } from '../src/mail/worker.ts';
import { projections } from '../src/projections.ts';
import { registerUser } from '../src/users/service.ts';
import { meta } from './helpers.ts';

let t: TestDb;
let ctx: CoreContext;
let clock: ManualClock;

beforeEach(async () => {
  t = await createTestDb();
  clock = new ManualClock('2026-11-22T14:00:00.000Z');
  ctx = { db: t.db, store: new EventStore({ db: t.db, catalogue, projections }), clock };
  await registerUser(ctx, meta, { email: 'ada@example.com', name: 'Ada', role: 'member', method: 'admin' });
  await requestMagicLink(ctx, meta, {
    email: 'ada@example.com',
    requesterKey: 'ip:203.0.113.7',
    signup: 'invite',
    publicUrl: 'https://auth.example.com',
  });
});
afterEach(async () => {
  await t.close();
});

/** A transport that is down until `up` is set, recording every message it accepted. */
function flaky() {
  const sent: (MailPayload & { from: string })[] = [];
  const state = { up: false, tries: 0 };
  const transport: MailTransport = {
    async send(message) {
      state.tries++;
      if (!state.up) throw new Error('connect ECONNREFUSED 127.0.0.1:2525');
      sent.push(message);
    },
  };
  return { sent, state, transport };
}

describe('mail delivery worker', () => {
  it('retries with exponential backoff while the server is down, then delivers exactly once', async () => {
    const f = flaky();
    const opts = { from: 'Keyledger <no-reply@example.com>', baseBackoffMs: 1000 };
    expect(await deliverDueMail(ctx, f.transport, opts)).toEqual({ sent: 0, failed: 1 });
    let row = await t.db.selectFrom('outbox').selectAll().executeTakeFirstOrThrow();
    expect(row.attempts).toBe(1);
    expect(row.last_error).toContain('ECONNREFUSED');
    expect(row.available_at.getTime() - clock.now().getTime()).toBe(1000);
    // Not due yet: nothing is tried.
    expect(await deliverDueMail(ctx, f.transport, opts)).toEqual({ sent: 0, failed: 0 });
    clock.advance(1000);
    expect(await deliverDueMail(ctx, f.transport, opts)).toEqual({ sent: 0, failed: 1 });
    row = await t.db.selectFrom('outbox').selectAll().executeTakeFirstOrThrow();
    expect(row.available_at.getTime() - clock.now().getTime()).toBe(2000);
    f.state.up = true;
    clock.advance(2000);
    expect(await deliverDueMail(ctx, f.transport, opts)).toEqual({ sent: 1, failed: 0 });
    clock.advance(3600_000);
    expect(await deliverDueMail(ctx, f.transport, opts)).toEqual({ sent: 0, failed: 0 });
    expect(f.sent).toHaveLength(1);
    expect(f.sent[0]?.from).toBe('Keyledger <no-reply@example.com>');
    expect(f.sent[0]?.message_id).toMatch(/^<ml_[0-9a-z]+@auth\.example\.com>$/);
    row = await t.db.selectFrom('outbox').selectAll().executeTakeFirstOrThrow();
    expect(row.delivered_at).not.toBeNull();
    expect(row.attempts).toBe(3);
    // The link (and its code) is gone from the row once delivered.
    expect(JSON.stringify(row.payload)).not.toContain('/auth/magic');
  });

  it('two workers at once send a row once (for update skip locked)', async () => {
    const f = flaky();
    f.state.up = true;
    const opts = { from: 'x@example.com' };
    const results = await Promise.all([
      deliverDueMail(ctx, f.transport, opts),
      deliverDueMail(ctx, f.transport, opts),
      deliverDueMail(ctx, f.transport, opts),
    ]);
    expect(results.reduce((n, r) => n + r.sent, 0)).toBe(1);
    expect(f.sent).toHaveLength(1);
  });
});
