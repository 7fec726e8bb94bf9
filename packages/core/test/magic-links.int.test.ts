import { createTestDb, type TestDb } from '@keyledger/db/testing';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { catalogue } from '../src/catalogue.ts';
import { ManualClock } from '../src/clock.ts';
import { DomainError } from '../src/errors.ts';
import type { CoreContext } from '../src/event-store/command.ts';
import { EventStore } from '../src/event-store/event-store.ts';
import { checkProjections } from '../src/event-store/projections.ts';
import { verifyChain } from '../src/event-store/verify.ts';
import { MAGIC_LINK_TTL_MS } from '../src/magic-links/decider.ts';
import {
  type MagicLinkRequest,
  type MailPayload,
  requestMagicLink,
  verifyMagicLink,
} from '../src/magic-links/service.ts';
import { projections } from '../src/projections.ts';
import { registerUser } from '../src/users/service.ts';
import { meta } from './helpers.ts';

let t: TestDb;
let ctx: CoreContext;
let clock: ManualClock;
const secrets: string[] = [];
const PUBLIC = 'https://auth.example.com';

beforeEach(async () => {
  t = await createTestDb();
  clock = new ManualClock('2026-11-22T14:00:00.000Z');
  ctx = { db: t.db, store: new EventStore({ db: t.db, catalogue, projections }), clock };
  secrets.length = 0;
});
afterEach(async () => {
  // No code or token this suite handled may appear in the log.
  const { rows } = await sql<{ j: string }>`select (data::text || meta::text) as j from events`.execute(t.db);
  const log = rows.map((r) => r.j).join('\n');
  for (const s of secrets) expect(log).not.toContain(s);
  expect((await verifyChain(t.db)).ok).toBe(true);
  expect((await checkProjections(t.db, projections)).ok).toBe(true);
  await t.close();
});

const request = (email: string, over: Partial<MagicLinkRequest> = {}) =>
  requestMagicLink(ctx, meta, {
    email,
    requesterKey: 'ip:203.0.113.7',
    signup: 'invite',
    publicUrl: PUBLIC,
    ...over,
  });

async function mails(): Promise<MailPayload[]> {
  const rows = await t.db
    .selectFrom('outbox')
    .select('payload')
    .where('topic', '=', 'mail')
    .orderBy('event_seq')
    .execute();
  return rows.map((r) => (typeof r.payload === 'string' ? JSON.parse(r.payload) : r.payload) as MailPayload);
}
async function lastCode(): Promise<string> {
  const all = await mails();
  const link = new URL((all.at(-1)?.text.match(/https?:\/\/\S+/) ?? [''])[0]);
  const code = link.searchParams.get('code') ?? '';
  secrets.push(code);
  return code;
}
const types = async () =>
  (await sql<{ type: string }>`select type from events order by seq`.execute(t.db)).rows.map((r) => r.type);
const rejections = async () =>
  (
    await sql<{
      reason: string;
    }>`select data->>'reason' as reason from events where type = 'magic_link.rejected' order by seq`.execute(t.db)
  ).rows.map((r) => r.reason);

async function expectInvalid(p: Promise<unknown>) {
  await expect(p).rejects.toMatchObject({ code: 'unauthorized', details: { reason: 'invalid_link' } });
}

const ada = () => registerUser(ctx, meta, { email: 'ada@example.com', name: 'Ada', role: 'member', method: 'admin' });

describe('magic links', () => {
  it('issues a link by mail (outbox, same transaction) and verifies it once into a session', async () => {
    const user = await ada();
    await request('Ada@Example.com', { next: '/keys' });
    const [mail] = await mails();
    expect(mail?.to).toBe('ada@example.com');
    expect(mail?.text).toContain('Keyledger');
    expect(mail?.text).toContain('203.0.113.7');
    expect(mail?.text).toContain(new Date(clock.now().getTime() + MAGIC_LINK_TTL_MS).toISOString());
    expect(mail?.html).toContain('203.0.113.7');
    expect(mail?.text).toMatch(
      /https:\/\/auth\.example\.com\/auth\/magic\?code=[0-9A-Za-z]{32}&email=ada%40example\.com/,
    );
    const code = await lastCode();
    const outboxSeq = await t.db.selectFrom('outbox').select('event_seq').executeTakeFirstOrThrow();
    const issuedSeq = await t.db
      .selectFrom('events')
      .select('seq')
      .where('type', '=', 'magic_link.issued')
      .executeTakeFirstOrThrow();
    expect(Number(outboxSeq.event_seq)).toBe(Number(issuedSeq.seq));

    const s = await verifyMagicLink(ctx, meta, { email: 'ada@example.com', code, lifetime: 'api' });
    secrets.push(s.token);
    expect(s.userId).toBe(user.id);
    expect(s.next).toBe('/keys');
    expect(await types()).toEqual([
      'user.registered',
      'magic_link.issued',
      'magic_link.verified',
      'user.email_verified',
      'session.created',
    ]);
    // Replay.
    await expectInvalid(verifyMagicLink(ctx, meta, { email: 'ada@example.com', code, lifetime: 'api' }));
    expect(await rejections()).toEqual(['used']);
  });

  it('refuses an expired link (ManualClock)', async () => {
    await ada();
    await request('ada@example.com');
    const code = await lastCode();
    clock.advance(MAGIC_LINK_TTL_MS);
    await expectInvalid(verifyMagicLink(ctx, meta, { email: 'ada@example.com', code, lifetime: 'api' }));
    expect(await rejections()).toEqual(['expired']);
  });

  it('a newer link supersedes older ones', async () => {
    await ada();
    await request('ada@example.com');
    const first = await lastCode();
    await request('ada@example.com');
    const second = await lastCode();
    await expectInvalid(verifyMagicLink(ctx, meta, { email: 'ada@example.com', code: first, lifetime: 'api' }));
    const s = await verifyMagicLink(ctx, meta, { email: 'ada@example.com', code: second, lifetime: 'api' });
    secrets.push(s.token);
    expect(await rejections()).toEqual(['superseded']);
  });

  it('refuses unknown codes, another address and malformed input alike', async () => {
    await ada();
    await request('ada@example.com');
    const code = await lastCode();
    await expectInvalid(verifyMagicLink(ctx, meta, { email: 'eve@example.com', code, lifetime: 'api' }));
    await expectInvalid(
      verifyMagicLink(ctx, meta, { email: 'ada@example.com', code: 'x'.repeat(32), lifetime: 'api' }),
    );
    await expectInvalid(verifyMagicLink(ctx, meta, { email: 'ada@example.com', code: ['a'], lifetime: 'api' }));
    expect(await rejections()).toEqual(['unknown', 'unknown', 'unknown']);
  });

  it('20 concurrent verifies of one link make exactly one session', async () => {
    await ada();
    await request('ada@example.com');
    const code = await lastCode();
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () => verifyMagicLink(ctx, meta, { email: 'ada@example.com', code, lifetime: 'api' })),
    );
    const ok = results.filter((r) => r.status === 'fulfilled');
    expect(ok).toHaveLength(1);
    for (const r of ok) secrets.push(r.value.token);
    for (const r of results) {
      if (r.status === 'rejected') expect((r.reason as DomainError).details.reason).toBe('invalid_link');
    }
    const sessions = await t.db.selectFrom('sessions').select('id').execute();
    expect(sessions).toHaveLength(1);
    expect(await rejections()).toEqual(Array(19).fill('used'));
  });

  it('under invite-only sign-up an unknown address gets nothing, answered and counted the same', async () => {
    await expect(request('nobody@example.com')).resolves.toBeUndefined();
    expect(await mails()).toEqual([]);
    expect(await types()).toEqual([]);
    const counted = await t.db.selectFrom('magic_link_requests').select('email').execute();
    expect(counted).toEqual([{ email: 'nobody@example.com' }]);
  });

  it('under open sign-up an unknown address gets a link and verifying it creates the user', async () => {
    await request('new@example.com', { signup: 'open' });
    const code = await lastCode();
    const s = await verifyMagicLink(ctx, meta, { email: 'new@example.com', code, lifetime: 'browser' });
    secrets.push(s.token);
    const user = await t.db.selectFrom('users').selectAll().executeTakeFirstOrThrow();
    expect(user).toMatchObject({
      id: s.userId,
      email: 'new@example.com',
      email_verified: true,
      registration_method: 'magic_link',
    });
    expect(await types()).toEqual([
      'magic_link.issued',
      'magic_link.verified',
      'user.registered',
      'user.email_verified',
      'session.created',
    ]);
  });

  it('limits: 10 per requester, 20 per address, known and unknown alike, with retry_after and an event', async () => {
    await ada();
    for (let i = 0; i < 10; i++) await request(i % 2 ? 'ada@example.com' : 'nobody@example.com');
    const over = await request('other@example.com').catch((e: unknown) => e);
    expect(over).toBeInstanceOf(DomainError);
    expect(over).toMatchObject({ code: 'rate_limited', details: { retry_after_seconds: 24 * 3600 } });
    // Per address, from many requesters: the unknown address hits its limit exactly as the known one.
    for (const email of ['ada@example.com', 'nobody@example.com']) {
      for (let i = 0; i < 20; i++) {
        const r = await request(email, { requesterKey: `ip:198.51.100.${i}` }).catch((e: unknown) => e);
        if (i < 15) expect(r).toBeUndefined();
        else expect(r).toMatchObject({ code: 'rate_limited' });
      }
    }
    clock.advance(3600_000);
    const later = await request('ada@example.com', { requesterKey: 'ip:192.0.2.1' }).catch((e: unknown) => e);
    expect(later).toMatchObject({ code: 'rate_limited', details: { retry_after_seconds: 23 * 3600 } });
    clock.advance(23 * 3600_000 + 1);
    await expect(request('ada@example.com', { requesterKey: 'ip:192.0.2.1' })).resolves.toBeUndefined();
    const limited = (
      await sql<{
        scope: string;
      }>`select data->>'scope' as scope from events where type = 'magic_link.rate_limited' order by seq`.execute(t.db)
    ).rows.map((r) => r.scope);
    expect(limited).toEqual(['requester', ...Array(11).fill('address')]);
  });

  it.each([
    '//evil.example',
    '/\\evil.example',
    'https:evil.example',
    'javascript:alert(1)',
    '%2F%2Fevil.example',
    '/%09/evil.example',
    '\t/evil.example',
    ['/ok'],
  ])('refuses next %j with 400 invalid_next and stores nothing', async (next) => {
    await ada();
    await expect(request('ada@example.com', { next })).rejects.toMatchObject({
      code: 'invalid_input',
      details: { reason: 'invalid_next', field: 'next' },
    });
    expect(await t.db.selectFrom('magic_links').selectAll().execute()).toEqual([]);
    expect(await mails()).toEqual([]);
    expect(await t.db.selectFrom('magic_link_requests').selectAll().execute()).toEqual([]);
  });
});
