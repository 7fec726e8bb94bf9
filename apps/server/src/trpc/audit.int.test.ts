import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSignedInUser, createTestDeps, type TestDeps } from '../testing.ts';
import { callerFor, callerWithToken, expectBadRequest, expectTrpcError, principalOf } from './test-kit.ts';

let deps: TestDeps;
let admin: { token: string; userId: string };
let member: { token: string; userId: string };
beforeEach(async () => {
  deps = await createTestDeps();
  // Three events per user (registration, password, session): six in all.
  admin = await createSignedInUser(deps, { email: 'root@example.com', role: 'admin' });
  member = await createSignedInUser(deps, { email: 'ada@example.com' });
});
afterEach(async () => {
  await deps.close();
});

const as = async (token: string) => (await callerWithToken(deps, token)).caller;

async function tamper(seq: number) {
  // A superuser edits one event behind the triggers' back.
  await deps.t.db.transaction().execute(async (trx) => {
    await sql`set local session_replication_role = replica`.execute(trx);
    await sql`update events set data = jsonb_set(data, '{email}', '"mallory@example.com"') where seq = ${seq}`.execute(
      trx,
    );
  });
}

describe('audit.query', () => {
  it('pages by seq with the REST event shape, in both orders', async () => {
    const caller = await as(admin.token);
    const first = await caller.audit.query({ limit: 2 });
    expect(first.data.map((e) => e.seq)).toEqual([1, 2]);
    expect(first.next_cursor).toBe(2);
    expect(first.data[1]?.prev_hash).toBe(first.data[0]?.hash);
    expect(first.data[0]).toMatchObject({
      hash: expect.stringMatching(/^[0-9a-f]{64}$/),
      prev_hash: '0'.repeat(64),
      occurred_at: '2026-11-22T14:00:00.000Z',
      meta: { actor: expect.any(Object), via: expect.any(String) },
    });
    const rest = await caller.audit.query({ after: 2, limit: 100 });
    expect(rest.data.map((e) => e.seq)).toEqual([3, 4, 5, 6]);
    expect(rest.next_cursor).toBeNull();
    const desc = await caller.audit.query({ order: 'desc', limit: 3 });
    expect(desc.data.map((e) => e.seq)).toEqual([6, 5, 4]);
    const descNext = await caller.audit.query({ order: 'desc', after: desc.next_cursor!, limit: 3 });
    expect(descNext.data.map((e) => e.seq)).toEqual([3, 2, 1]);
    expect((await caller.audit.query()).data).toHaveLength(6);
  });

  it('filters by type (exact, prefix, list or array), actor, subject, stream, outcome and time', async () => {
    const caller = await as(admin.token);
    const sessions = await caller.audit.query({ type: 'session.*' });
    expect(sessions.data.map((e) => e.type)).toEqual(['session.created', 'session.created']);
    const types = new Set((await caller.audit.query()).data.map((e) => e.type));
    const [someType] = [...types].filter((t) => !t.startsWith('session.'));
    const listed = await caller.audit.query({ type: `session.*,${someType}` });
    const arrayed = await caller.audit.query({ type: ['session.*', someType!] });
    expect(arrayed.data).toEqual(listed.data);
    expect(listed.data.length).toBeGreaterThan(2);

    const aboutAda = await caller.audit.query({ subject: member.userId });
    expect(aboutAda.data).toHaveLength(3);
    const stream = aboutAda.data[0]!.stream;
    expect((await caller.audit.query({ stream })).data.every((e) => e.stream === stream)).toBe(true);

    // A refused sign-in from a known IP: a failure event.
    await expectTrpcError(
      callerFor(deps, { clientIp: '198.51.100.9' }).caller.auth.signIn({
        email: 'ada@example.com',
        password: 'wrong-password-for-sure',
      }),
      'UNAUTHORIZED',
    );
    const failures = await caller.audit.query({ outcome: 'failure' });
    expect(failures.data.map((e) => e.type)).toEqual(['signin.failed']);
    expect((await caller.audit.query({ ip: '198.51.100.9' })).data.map((e) => e.type)).toEqual(['signin.failed']);
    expect((await caller.audit.query({ outcome: 'success' })).data).toHaveLength(6);

    await caller.apiKeys.create({ name: 'ci' });
    const byActor = await caller.audit.query({ actor: admin.userId });
    expect(byActor.data.map((e) => [e.type, e.meta.actor])).toEqual([
      ['api_key.created', { type: 'user', id: admin.userId }],
    ]);

    deps.clock.advance(3_600_000);
    await createSignedInUser(deps, { email: 'bob@example.com' });
    const later = await caller.audit.query({ since: '2026-11-22T15:00:00.000Z' });
    expect(later.data).toHaveLength(3);
    const earlier = await caller.audit.query({ until: '2026-11-22T15:00:00.000Z' });
    expect(earlier.data).toHaveLength(8);
  });

  it('lets members see only the events about themselves', async () => {
    const mine = await (await as(member.token)).audit.query({ limit: 100 });
    expect(mine.data).toHaveLength(3);
    const mineBySubject = await (await as(admin.token)).audit.query({ subject: member.userId });
    expect(mine.data).toEqual(mineBySubject.data);
    // A member cannot widen it by asking about someone else.
    expect((await (await as(member.token)).audit.query({ subject: admin.userId })).data).toEqual([]);
  });

  it('refuses bad input naming the field, no credential, and a key without audit:read', async () => {
    const caller = await as(admin.token);
    await expectBadRequest(caller.audit.query({ type: 'DROP TABLE' }), 'type');
    await expectBadRequest(caller.audit.query({ since: 'yesterday' }), 'since');
    await expectBadRequest(caller.audit.query({ limit: 1001 }), 'limit');
    await expectBadRequest(caller.audit.query({ bogus: 1 } as never), 'bogus');
    await expectTrpcError(callerFor(deps).caller.audit.query(), 'UNAUTHORIZED');
    const narrow = await caller.apiKeys.create({ scopes: ['keys:read'] });
    const denied = await expectTrpcError((await as(narrow.key)).audit.query(), 'FORBIDDEN');
    expect(denied.message).toContain('audit:read');
  });
});

describe('audit.get and audit.countsByHour', () => {
  it('answers one event with the first checkpoint covering it; NOT_FOUND for someone else’s or a bad id', async () => {
    const caller = await as(admin.token);
    const [adminEvent] = (await caller.audit.query({ subject: admin.userId, limit: 1 })).data;
    const got = await caller.audit.get({ id: adminEvent!.id });
    expect(got).toEqual({ ...adminEvent, checkpoint: null });
    await expectTrpcError((await as(member.token)).audit.get({ id: adminEvent!.id }), 'NOT_FOUND');
    await expectTrpcError(caller.audit.get({ id: 'not-a-uuid' }), 'NOT_FOUND');

    const made = await caller.audit.checkpoints.make();
    expect(made?.size).toBe(6);
    await createSignedInUser(deps, { email: 'bob@example.com' });
    const second = await caller.audit.checkpoints.make();
    expect(second?.size).toBe(9);
    expect((await caller.audit.get({ id: adminEvent!.id })).checkpoint).toEqual({ size: 6, note: made!.note });
    const [late] = (await caller.audit.query({ after: 6, limit: 1 })).data;
    expect((await caller.audit.get({ id: late!.id })).checkpoint).toEqual({ size: 9, note: second!.note });
  });

  it('counts events per type per UTC hour, with the same filters and visibility', async () => {
    const caller = await as(admin.token);
    const memberCaller = await as(member.token);
    deps.clock.advance(2 * 3_600_000 + 5 * 60_000);
    await createSignedInUser(deps, { email: 'bob@example.com' });
    const counts = await caller.audit.countsByHour();
    const total = counts.reduce((n, c) => n + c.count, 0);
    expect(total).toBe(9);
    expect(new Set(counts.map((c) => c.hour))).toEqual(
      new Set(['2026-11-22T14:00:00.000Z', '2026-11-22T16:00:00.000Z']),
    );
    expect(counts).toContainEqual({ hour: '2026-11-22T14:00:00.000Z', type: 'session.created', count: 2 });
    expect(counts).toContainEqual({ hour: '2026-11-22T16:00:00.000Z', type: 'session.created', count: 1 });
    expect(await caller.audit.countsByHour({ type: 'session.*' })).toEqual([
      { hour: '2026-11-22T14:00:00.000Z', type: 'session.created', count: 2 },
      { hour: '2026-11-22T16:00:00.000Z', type: 'session.created', count: 1 },
    ]);
    const mine = await memberCaller.audit.countsByHour();
    expect(mine.reduce((n, c) => n + c.count, 0)).toBe(3);
  });
});

describe('audit.verify', () => {
  it('is ok on an intact log, holds it to the exported checkpoint, and finds an edited row', async () => {
    const caller = await as(member.token);
    expect(await caller.audit.verify()).toEqual({
      ok: true,
      checked: 6,
      head: { seq: 6, hash: expect.stringMatching(/^[0-9a-f]{64}$/) },
      first_bad_seq: null,
      reason: null,
      checkpoint: null,
    });
    await (await as(admin.token)).audit.checkpoints.make();
    expect(await caller.audit.verify()).toMatchObject({ ok: true, checkpoint: { size: 6, ok: true } });
    await tamper(2);
    expect(await caller.audit.verify()).toMatchObject({
      ok: false,
      first_bad_seq: 2,
      reason: 'hash_mismatch',
      checkpoint: { size: 6, ok: false },
    });
  });
});

describe('audit.verifyStream', () => {
  const collect = async (stream: AsyncIterable<unknown>) => {
    const items: unknown[] = [];
    for await (const item of stream) items.push(item);
    return items;
  };

  it('reports progress, then the same result as audit.verify', async () => {
    const caller = await as(member.token);
    const items = (await collect(await caller.audit.verifyStream())) as {
      type: string;
      checked?: number;
      total?: number;
    }[];
    const progress = items.filter((i) => i.type === 'progress');
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toEqual({ type: 'progress', checked: 6, total: 6 });
    expect(items.at(-1)).toEqual({ type: 'result', result: await caller.audit.verify() });
    await tamper(3);
    const broken = (await collect(await caller.audit.verifyStream())).at(-1);
    expect(broken).toMatchObject({ type: 'result', result: { ok: false, first_bad_seq: 3, reason: 'hash_mismatch' } });
  });
});

describe('audit.checkpoints', () => {
  it('makes (admins only), lists newest first with a cursor, and answers the latest', async () => {
    const adminCaller = await as(admin.token);
    const memberCaller = await as(member.token);
    await expectTrpcError(adminCaller.audit.checkpoints.latest(), 'NOT_FOUND');
    expect(await adminCaller.audit.checkpoints.list()).toEqual({ data: [], next_cursor: null });
    const first = await adminCaller.audit.checkpoints.make();
    expect(first).toEqual({
      size: 6,
      origin: 'test.keyledger.local/keyledger',
      head_hash: (await adminCaller.audit.query({ after: 5 })).data[0]!.hash,
      note: expect.stringMatching(/^test\.keyledger\.local\/keyledger\n6\n/),
      created_at: '2026-11-22T14:00:00.000Z',
    });
    // Nothing new: the covering checkpoint again, nothing stored twice.
    expect(await adminCaller.audit.checkpoints.make()).toEqual(first);
    for (const email of ['bob@example.com', 'cy@example.com']) {
      await createSignedInUser(deps, { email });
      await adminCaller.audit.checkpoints.make();
    }
    const all = await memberCaller.audit.checkpoints.list();
    expect(all.data.map((c) => c.size)).toEqual([12, 9, 6]);
    const page = await memberCaller.audit.checkpoints.list({ limit: 2 });
    expect(page.data.map((c) => c.size)).toEqual([12, 9]);
    expect(page.next_cursor).toBe(9);
    const next = await memberCaller.audit.checkpoints.list({ after: 9, limit: 2 });
    expect(next).toEqual({ data: [first], next_cursor: null });

    const latest = await memberCaller.audit.checkpoints.latest();
    expect(latest).toEqual({ size: 12, origin: 'test.keyledger.local/keyledger', note: all.data[0]!.note });
    expect((await memberCaller.audit.checkpoints.publicKey()).key).toMatch(
      /^test\.keyledger\.local\/keyledger\+[0-9a-f]{8}\+/,
    );
    // Members hold audit:read but not users:write (the refusal is itself logged as access.denied).
    await expectTrpcError(memberCaller.audit.checkpoints.make(), 'FORBIDDEN');
    expect((await memberCaller.audit.checkpoints.list()).data).toHaveLength(3);
  });

  it('uses the running checkpointer when there is one, and refuses to sign over a rewritten log', async () => {
    const calls: string[] = [];
    const checkpointer = {
      checkpointNow: async () => {
        calls.push('now');
        return null;
      },
    };
    const withCheckpointer = { ...deps, checkpoints: { ...deps.checkpoints, checkpointer } } as unknown as TestDeps;
    const caller = callerFor(withCheckpointer, { principal: await principalOf(deps, admin.token) }).caller;
    expect(await caller.audit.checkpoints.make()).toBeNull();
    expect(calls).toEqual(['now']);

    const adminCaller = await as(admin.token);
    await adminCaller.audit.checkpoints.make();
    // A superuser rewrites the checkpointed event's hash: the log no longer extends what was signed.
    await deps.t.db.transaction().execute(async (trx) => {
      await sql`set local session_replication_role = replica`.execute(trx);
      await sql`update events set hash = decode(repeat('ab', 32), 'hex') where seq = 6`.execute(trx);
    });
    await createSignedInUser(deps, { email: 'bob@example.com' });
    await expectTrpcError(adminCaller.audit.checkpoints.make(), 'CONFLICT');
    expect((await adminCaller.audit.checkpoints.list()).data.map((c) => c.size)).toEqual([6]);
  });

  it('keeps checkpoints out of the event log', async () => {
    await (await as(admin.token)).audit.checkpoints.make();
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from events`.execute(deps.t.db);
    expect(rows[0]?.n).toBe(6);
  });
});
