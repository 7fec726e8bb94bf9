import { createTestDb, type TestDb } from '@keyledger/db/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApiKey } from '../src/api-keys/service.ts';
import { countEventsByHour, getAuditEvent, queryAuditEvents, streamAuditEvents } from '../src/audit/query.ts';
import { Authenticator } from '../src/auth/authenticator.ts';
import type { Principal } from '../src/auth/principal.ts';
import { catalogue } from '../src/catalogue.ts';
import { ManualClock } from '../src/clock.ts';
import type { CoreContext } from '../src/event-store/command.ts';
import { EventStore } from '../src/event-store/event-store.ts';
import { checkProjections } from '../src/event-store/projections.ts';
import { projections } from '../src/projections.ts';
import { passwordSignIn } from '../src/sessions/signin.ts';
import { registerUser } from '../src/users/service.ts';
import { meta } from './helpers.ts';

let t: TestDb;
let ctx: CoreContext;
let clock: ManualClock;
let admin: Principal;
let ada: Principal;
let bob: Principal;
const PASSWORD = 'violet-otter-lantern-42';

async function signIn(email: string, role: 'admin' | 'member', ip: string): Promise<Principal> {
  await registerUser(ctx, meta, { email, name: null, role, method: 'admin', password: PASSWORD });
  const s = await passwordSignIn(ctx, { ...meta, ip }, { email, password: PASSWORD, ip, lifetime: 'api' });
  const r = await new Authenticator({ db: t.db, clock }).authenticate(s.token, { ip });
  if (!r.ok) throw new Error(r.reason);
  return r.principal;
}

beforeEach(async () => {
  t = await createTestDb();
  clock = new ManualClock('2026-11-22T14:00:00.000Z');
  ctx = { db: t.db, store: new EventStore({ db: t.db, catalogue, projections }), clock };
  admin = await signIn('root@example.com', 'admin', '192.0.2.1');
  clock.advance(3600_000);
  ada = await signIn('ada@example.com', 'member', '198.51.100.7');
  bob = await signIn('bob@example.com', 'member', '203.0.113.9');
  await createApiKey(ctx, { ...meta, actor: { type: 'user', id: (ada as { userId: string }).userId } }, ada, {
    name: 'ada-ci',
  });
  await passwordSignIn(
    ctx,
    { ...meta, ip: '203.0.113.9' },
    { email: 'bob@example.com', password: 'wrong-password', ip: '203.0.113.9', lifetime: 'api' },
  ).catch(() => {});
});
afterEach(async () => {
  expect((await checkProjections(t.db, projections)).ok).toBe(true);
  await t.close();
});

const types = (events: { type: string }[]) => events.map((e) => e.type);
const uid = (p: Principal) => (p.kind === 'user' ? p.userId : p.id);

describe('audit queries', () => {
  it('show admins every event and members only the events about themselves', async () => {
    const all = await queryAuditEvents(t.db, admin, {}, { limit: 1000 });
    expect(all.data.length).toBe(11);
    const mine = await queryAuditEvents(t.db, ada, {}, { limit: 1000 });
    expect(types(mine.data)).toEqual(['user.registered', 'user.password_set', 'session.created', 'api_key.created']);
    const bobs = await queryAuditEvents(t.db, bob, {}, { limit: 1000 });
    expect(types(bobs.data)).toEqual(['user.registered', 'user.password_set', 'session.created', 'signin.failed']);
  });

  it('filter by type prefix, actor, subject, stream, IP, outcome and time, with keyset pages both ways', async () => {
    expect(types((await queryAuditEvents(t.db, admin, { types: ['api_key.*', 'signin.failed'] })).data)).toEqual([
      'api_key.created',
      'signin.failed',
    ]);
    expect(types((await queryAuditEvents(t.db, admin, { actor: uid(ada) })).data)).toEqual(['api_key.created']);
    expect((await queryAuditEvents(t.db, admin, { subject: uid(bob) })).data).toHaveLength(4);
    expect(types((await queryAuditEvents(t.db, admin, { ip: '203.0.113.9' })).data)).toEqual([
      'session.created',
      'signin.failed',
    ]);
    expect(types((await queryAuditEvents(t.db, admin, { outcome: 'failure' })).data)).toEqual(['signin.failed']);
    expect((await queryAuditEvents(t.db, admin, { outcome: 'success' })).data).toHaveLength(10);
    expect((await queryAuditEvents(t.db, admin, { until: new Date('2026-11-22T15:00:00.000Z') })).data).toHaveLength(3);
    expect((await queryAuditEvents(t.db, admin, { since: new Date('2026-11-22T15:00:00.000Z') })).data).toHaveLength(8);
    const first = await queryAuditEvents(t.db, admin, {}, { limit: 4 });
    expect(first.data.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(first.next_cursor).toBe(4);
    const second = await queryAuditEvents(t.db, admin, {}, { after: 4, limit: 4 });
    expect(second.data.map((e) => e.seq)).toEqual([5, 6, 7, 8]);
    const desc = await queryAuditEvents(t.db, admin, {}, { order: 'desc', limit: 2 });
    expect(desc.data.map((e) => e.seq)).toEqual([11, 10]);
    expect((await queryAuditEvents(t.db, admin, {}, { order: 'desc', after: 2 })).data.map((e) => e.seq)).toEqual([1]);
    expect((await queryAuditEvents(t.db, admin, {}, { after: 11 })).next_cursor).toBeNull();
  });

  it('find one event by id only for those who may see it', async () => {
    const [someoneElses] = (await queryAuditEvents(t.db, admin, { subject: uid(bob) })).data;
    expect(await getAuditEvent(t.db, admin, someoneElses!.id)).toMatchObject({ seq: someoneElses!.seq });
    expect(await getAuditEvent(t.db, ada, someoneElses!.id)).toBeUndefined();
    expect(await getAuditEvent(t.db, admin, 'not-a-uuid')).toBeUndefined();
  });

  it('stream every matching event in order, in pages', async () => {
    const seen: number[] = [];
    for await (const e of streamAuditEvents(t.db, admin, {}, 3)) seen.push(e.seq);
    expect(seen).toEqual(Array.from({ length: 11 }, (_, i) => i + 1));
  });

  it('count events per type per hour', async () => {
    const counts = await countEventsByHour(t.db, admin, { types: ['session.created'] });
    expect(counts).toEqual([
      { hour: '2026-11-22T14:00:00.000Z', type: 'session.created', count: 1 },
      { hour: '2026-11-22T15:00:00.000Z', type: 'session.created', count: 2 },
    ]);
  });
});
