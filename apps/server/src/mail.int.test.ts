import { type AddressInfo, createServer } from 'node:net';
import { sql } from 'kysely';
import { SMTPServer } from 'smtp-server';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApp } from './app.ts';
import { createMailWorker } from './mail.ts';
import { createSignedInUser, createTestDeps, type TestDeps } from './testing.ts';

const ORIGIN = 'http://localhost:3000';

interface Captured {
  readonly to: string[];
  readonly raw: string;
}

/** A real SMTP server on loopback that keeps every message it accepts. */
async function startCapture(port = 0): Promise<{ port: number; messages: Captured[]; close(): Promise<void> }> {
  const messages: Captured[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        messages.push({
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const address = server.server.address() as AddressInfo;
  return { port: address.port, messages, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** A port nothing listens on (yet). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Undoes quoted-printable so the link can be read back as the recipient's client would show it. */
const decodeQp = (raw: string) =>
  raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16)));

const linkIn = (raw: string) =>
  new URL((decodeQp(raw).match(/http:\/\/localhost:3000\/auth\/magic\?[^\s"<]+/) ?? [''])[0]);

async function until<T>(probe: () => T | undefined, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 25));
  }
}

const postJson = (app: ReturnType<typeof createApp>, path: string, body: unknown) =>
  app.request(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

let deps: TestDeps | undefined;
const cleanups: (() => Promise<unknown>)[] = [];
beforeEach(() => {
  deps = undefined;
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await deps?.close();
});

describe('magic links through a real SMTP server', () => {
  it('request → the mail arrives → confirm page → form post → a working session; nothing secret in the log', async () => {
    const capture = await startCapture();
    cleanups.push(capture.close);
    deps = await createTestDeps({
      KEYLEDGER_SIGNUP: 'open',
      KEYLEDGER_SMTP_URL: `smtp://127.0.0.1:${capture.port}`,
      KEYLEDGER_MAIL_FROM: 'Keyledger <auth@example.test>',
    });
    const mail = createMailWorker(deps.core, deps.config);
    cleanups.push(() => mail.stop());
    const app = createApp({ ...deps, mail });

    const sent = await postJson(app, '/v1/auth/magic-link', { email: 'Grace@Example.com', next: '/keys' });
    expect(sent.status).toBe(200);
    const message = await until(() => capture.messages[0]);
    expect(message.to).toEqual(['grace@example.com']);
    const text = decodeQp(message.raw);
    expect(text).toMatch(/^Subject: Your sign-in link for Keyledger/m);
    expect(text).toMatch(/^From: Keyledger <auth@example\.test>/m);
    expect(text).toMatch(/^Message-ID: <ml_[^>]+@localhost>/im);
    expect(text).toContain('Content-Type: text/html');
    expect(text).toContain('from IP');
    expect(text).toContain('15 minutes');

    const link = linkIn(message.raw);
    const confirm = await app.request(`${link.pathname}${link.search}`);
    expect(confirm.status).toBe(200);
    const done = await app.request('/auth/magic', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN },
      body: new URLSearchParams({
        email: link.searchParams.get('email') ?? '',
        code: link.searchParams.get('code') ?? '',
      }).toString(),
    });
    expect(done.status).toBe(303);
    expect(done.headers.get('location')).toBe('/keys');
    const cookie = /keyledger_session=([^;]+)/.exec(done.headers.get('set-cookie') ?? '')?.[1] ?? '';
    const me = await app.request('/v1/users/me', { headers: { cookie: `keyledger_session=${cookie}` } });
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({ email: 'grace@example.com', auth: { method: 'session' } });

    // Delivered once; the stored body (which held the link) is gone; the code is in no event.
    const rows = await deps.t.db.selectFrom('outbox').select(['delivered_at', 'payload', 'attempts']).execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]?.delivered_at).not.toBeNull();
    expect(rows[0]?.attempts).toBe(1);
    const code = link.searchParams.get('code') ?? '';
    expect(code).toMatch(/^[0-9A-Za-z]{32}$/);
    expect(JSON.stringify(rows[0]?.payload)).not.toContain(code);
    const { rows: events } = await sql<{ j: string }>`select (data::text || meta::text) as j from events`.execute(
      deps.t.db,
    );
    for (const e of events) {
      expect(e.j).not.toContain(code);
      expect(e.j).not.toContain(cookie);
    }
    expect(capture.messages).toHaveLength(1);
  });

  it('an SMTP server that is down: retried with backoff, survives a restart of the worker, delivered exactly once', async () => {
    const port = await freePort();
    deps = await createTestDeps({ KEYLEDGER_SMTP_URL: `smtp://127.0.0.1:${port}` });
    const { db } = deps.t;
    await createSignedInUser(deps, { email: 'ada@example.com' });

    const first = createMailWorker(deps.core, deps.config);
    const app = createApp({ ...deps, mail: first });
    expect((await postJson(app, '/v1/auth/magic-link', { email: 'ada@example.com' })).status).toBe(200);
    await first.kick();
    const failed = await db.selectFrom('outbox').select(['attempts', 'last_error', 'delivered_at']).execute();
    expect(failed).toEqual([{ attempts: 1, last_error: expect.stringMatching(/ECONNREFUSED/), delivered_at: null }]);
    // Not due again before its backoff (2 s) has passed.
    await first.kick();
    expect((await db.selectFrom('outbox').select('attempts').executeTakeFirstOrThrow()).attempts).toBe(1);
    await first.stop();

    // The SMTP server comes up; a new worker (a restarted server) delivers the row once it is due.
    const capture = await startCapture(port);
    cleanups.push(capture.close);
    const second = createMailWorker(deps.core, deps.config);
    cleanups.push(() => second.stop());
    deps.clock.advance(2_000);
    second.start();
    const message = await until(() => capture.messages[0]);
    expect(message.to).toEqual(['ada@example.com']);
    expect(linkIn(message.raw).searchParams.get('code')).toMatch(/^[0-9A-Za-z]{32}$/);
    // Later polls and kicks send nothing more.
    deps.clock.advance(3600_000);
    await second.kick();
    await new Promise((r) => setTimeout(r, 1200));
    expect(capture.messages).toHaveLength(1);
    const row = await db
      .selectFrom('outbox')
      .select(['attempts', 'delivered_at', 'last_error'])
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({ attempts: 2, last_error: null });
    expect(row.delivered_at).not.toBeNull();
  });

  it('POST /v1/users without a password invites by mail: user.invited, a magic link that signs them in, no limit counted', async () => {
    const capture = await startCapture();
    cleanups.push(capture.close);
    deps = await createTestDeps({ KEYLEDGER_SMTP_URL: `smtp://127.0.0.1:${capture.port}` });
    const mail = createMailWorker(deps.core, deps.config);
    cleanups.push(() => mail.stop());
    const app = createApp({ ...deps, mail });
    const admin = await createSignedInUser(deps, { email: 'root@example.com', role: 'admin', name: 'Ada Admin' });
    const auth = { authorization: `Bearer ${admin.token}`, 'content-type': 'application/json' };

    const created = await app.request('/v1/users', {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ email: 'newbie@example.com', name: 'New Bie' }),
    });
    expect(created.status).toBe(201);
    const user = (await created.json()) as { id: string };
    const message = await until(() => capture.messages[0]);
    expect(message.to).toEqual(['newbie@example.com']);
    const text = decodeQp(message.raw);
    expect(text).toMatch(/^Subject: You are invited to Keyledger/m);
    expect(text).toContain('Ada Admin invited you');

    const types = await deps.t.db
      .selectFrom('events')
      .select(['type', 'data'])
      .where('type', 'in', ['user.registered', 'user.invited', 'magic_link.issued'])
      .orderBy('seq')
      .execute();
    expect(types.slice(-3).map((e) => e.type)).toEqual(['user.registered', 'user.invited', 'magic_link.issued']);
    const invited = types.find((e) => e.type === 'user.invited')?.data as { user_id: string; link_id: string };
    const issued = types.at(-1)?.data as { link_id: string; user_id: string };
    expect(invited).toEqual({ user_id: user.id, link_id: issued.link_id });
    expect(issued.user_id).toBe(user.id);
    // Invitations are not counted toward the magic-link limits.
    expect(await deps.t.db.selectFrom('magic_link_requests').selectAll().execute()).toEqual([]);

    const link = linkIn(message.raw);
    const verified = await postJson(app, '/v1/auth/magic-link/verify', {
      email: link.searchParams.get('email'),
      code: link.searchParams.get('code'),
    });
    expect(verified.status).toBe(200);
    const { access_token } = (await verified.json()) as { access_token: string };
    const me = await app.request('/v1/users/me', { headers: { authorization: `Bearer ${access_token}` } });
    expect(await me.json()).toMatchObject({ id: user.id, email: 'newbie@example.com', name: 'New Bie' });
    expect(
      (await deps.t.db.selectFrom('users').select('email_verified').where('id', '=', user.id).executeTakeFirstOrThrow())
        .email_verified,
    ).toBe(true);

    // With a password there is no invitation.
    const withPassword = await app.request('/v1/users', {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ email: 'pw@example.com', password: 'a-long-enough-passphrase-7' }),
    });
    expect(withPassword.status).toBe(201);
    await mail.kick();
    expect(capture.messages).toHaveLength(1);
    expect(
      await deps.t.db.selectFrom('events').select('type').where('type', '=', 'user.invited').execute(),
    ).toHaveLength(1);
  });
});
