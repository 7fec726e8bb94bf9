import { passwordSignIn, registerUser, SYSTEM_META } from '@keyledger/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApp } from '../app.ts';
import { createSignedInUser, createTestDeps, TEST_PASSWORD, type TestDeps } from '../testing.ts';
import { createContextInner } from './context.ts';
import { createCallerFactory } from './init.ts';
import { appRouter } from './router.ts';
import type { AuditEvent } from './routers/audit.ts';
import { principalOf } from './test-kit.ts';

/** The live tail, `audit.onEvent`: through createCaller (an async iterable) and over HTTP as SSE. */
const createCaller = createCallerFactory(appRouter);

let deps: TestDeps;
let admin: { token: string; userId: string };
let member: { token: string; userId: string };
let controllers: AbortController[];
beforeEach(async () => {
  deps = await createTestDeps();
  controllers = [];
  admin = await createSignedInUser(deps, { email: 'root@example.com', role: 'admin' });
  member = await createSignedInUser(deps, { email: 'ada@example.com' });
});
afterEach(async () => {
  for (const c of controllers) c.abort();
  await deps.close();
});

type Envelope = readonly [string, AuditEvent, ...unknown[]];

/** Subscribes as the holder of `token`; the subscription stops when the returned controller aborts. */
async function subscribe(token: string, input: Parameters<ReturnType<typeof createCaller>['audit']['onEvent']>[0]) {
  const controller = new AbortController();
  controllers.push(controller);
  const ctx = createContextInner({ deps, principal: await principalOf(deps, token), credential: token });
  const iterable = (await createCaller(ctx, { signal: controller.signal }).audit.onEvent(input)) as AsyncIterable<
    Envelope,
    void,
    undefined
  >;
  return { iterator: iterable[Symbol.asyncIterator](), controller };
}

/** The next `n` envelopes, or a failure naming how many arrived when `ms` runs out. */
async function take(iterator: AsyncIterator<Envelope>, n: number, ms = 2_000): Promise<Envelope[]> {
  const got: Envelope[] = [];
  const deadline = Date.now() + ms;
  while (got.length < n) {
    const left = deadline - Date.now();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), Math.max(left, 0));
    });
    const next = await Promise.race([iterator.next(), timeout]);
    clearTimeout(timer);
    if (next === 'timeout') throw new Error(`only ${got.length} of ${n} events arrived within ${ms} ms`);
    if (next.done) throw new Error(`the subscription ended after ${got.length} of ${n} events`);
    got.push(next.value);
  }
  return got;
}

/** Nothing more arrives within `ms` (the iterator is left pending: abort its controller afterwards). */
async function expectQuiet(iterator: AsyncIterator<Envelope>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const next = await Promise.race([
    iterator.next(),
    new Promise<'quiet'>((resolve) => {
      timer = setTimeout(() => resolve('quiet'), ms);
    }),
  ]);
  clearTimeout(timer);
  expect(next).toBe('quiet');
}

const seqs = (events: Envelope[]) => events.map(([id, e]) => [Number(id), e.seq]);

async function register(email: string) {
  return registerUser(deps.core, SYSTEM_META, { email, name: null, role: 'member', method: 'admin' });
}

describe('audit.onEvent', () => {
  it('delivers events appended after subscribing, in order, within 2 s, each tracked by its seq', async () => {
    const { iterator } = await subscribe(admin.token, {});
    // Already waiting for the next event when the appends happen: woken by NOTIFY.
    const pending = take(iterator, 4);
    await register('bob@example.com');
    await createSignedInUser(deps, { email: 'cy@example.com' });
    const events = await pending;
    const ids = events.map(([id]) => Number(id));
    expect(ids[0]).toBe(7);
    expect(ids).toEqual([7, 8, 9, 10]);
    expect(seqs(events).every(([id, seq]) => id === seq)).toBe(true);
    expect(events[0]![1]).toMatchObject({ type: 'user.registered', hash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(events[1]![1].prev_hash).toBe(events[0]![1].hash);
    // Nothing from before the subscription was replayed.
    expect(ids.every((s) => s > 6)).toBe(true);
  });

  it('replays from lastEventId, then follows; a reconnect misses nothing appended while disconnected', async () => {
    const first = await subscribe(admin.token, { lastEventId: '4' });
    const replayed = await take(first.iterator, 2);
    expect(replayed.map(([id]) => id)).toEqual(['5', '6']);
    await register('bob@example.com');
    const [live] = await take(first.iterator, 1);
    expect(live![0]).toBe('7');
    // Disconnect, and the log moves on meanwhile.
    first.controller.abort();
    await first.iterator.return?.();
    await register('cy@example.com');
    await createSignedInUser(deps, { email: 'dee@example.com' });
    const second = await subscribe(admin.token, { lastEventId: live![0] });
    const caughtUp = await take(second.iterator, 4);
    expect(caughtUp.map(([id]) => Number(id))).toEqual([8, 9, 10, 11]);
    await register('eve@example.com');
    expect((await take(second.iterator, 1)).map(([id]) => id)).toEqual(['12']);
  });

  it('applies the filters, and gives a member only the events about themselves', async () => {
    const mine = await subscribe(member.token, {});
    const sessionsOnly = await subscribe(admin.token, { type: 'session.*', lastEventId: '0' });
    expect((await take(sessionsOnly.iterator, 2)).map(([, e]) => e.type)).toEqual([
      'session.created',
      'session.created',
    ]);
    // About someone else: the member must not see it.
    await createSignedInUser(deps, { email: 'bob@example.com' });
    // About the member: a new session of theirs.
    await passwordSignIn(deps.core, SYSTEM_META, {
      email: 'ada@example.com',
      password: TEST_PASSWORD,
      ip: '127.0.0.1',
      lifetime: 'api',
    });
    const [own] = await take(mine.iterator, 1);
    expect(own![1]).toMatchObject({
      type: 'session.created',
      data: expect.objectContaining({ user_id: member.userId }),
    });
    await expectQuiet(mine.iterator, 300);
    const more = await take(sessionsOnly.iterator, 2);
    expect(more.map(([, e]) => e.type)).toEqual(['session.created', 'session.created']);
    expect(more.map(([, e]) => e.data)).toContainEqual(expect.objectContaining({ user_id: member.userId }));
  });

  it('refuses bad input and a caller without audit:read', async () => {
    const ctx = createContextInner({ deps, principal: null });
    await expect(createCaller(ctx).audit.onEvent({})).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    const adminCtx = createContextInner({ deps, principal: await principalOf(deps, admin.token) });
    await expect(createCaller(adminCtx).audit.onEvent({ lastEventId: 'x' })).rejects.toMatchObject({
      code: 'BAD_REQUEST',
    });
  });

  it('streams over HTTP as text/event-stream, resuming after lastEventId', async () => {
    const controller = new AbortController();
    controllers.push(controller);
    const input = encodeURIComponent(JSON.stringify({ lastEventId: '5' }));
    const res = await createApp(deps).request(`/trpc/audit.onEvent?input=${input}`, {
      headers: { authorization: `Bearer ${admin.token}` },
      signal: controller.signal,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    // SSE frames are separated by a blank line; tRPC sends a `connected` frame first, then the events.
    const isEvent = (f: string) => /^id: ?\d+$/m.test(f) && /^data: /m.test(f);
    let text = '';
    const deadline = Date.now() + 5_000;
    while (!text.split('\n\n').slice(0, -1).some(isEvent)) {
      if (Date.now() > deadline) throw new Error(`no data frame within 5 s: ${JSON.stringify(text)}`);
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    controller.abort();
    await reader.cancel().catch(() => {});
    const frame = text.split('\n\n').find(isEvent);
    expect(frame, text).toMatch(/^id: ?6$/m);
    const data = JSON.parse(frame!.match(/^data: (.*)$/m)![1]!) as AuditEvent;
    expect(data.seq).toBe(6);
  });
});
