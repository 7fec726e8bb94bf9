import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import {
  BIN,
  cleanEnv,
  createServerStore,
  plain,
  postJson,
  runCli,
  type ServerStore,
  spawnPty,
  startServer,
  type TestServer,
} from './harness.ts';

/**
 * `keyledger audit query|tail|export` as an auditor runs them: the binary against the real server process (on the
 * suite's Postgres when it has one), reading --json. The tail is followed across a server restart.
 */
const ADMIN_KEY = 'cli-audit-e2e-admin-environment-key-0123456789';
const PASSWORD = 'saffron-glacier-tandem-58';

interface Event {
  seq: number;
  type: string;
  stream: string;
  data: Record<string, unknown>;
  meta: { actor: { type: string; id: string | null } };
}

let store: ServerStore;
let server: TestServer;
let url: string;
let admin: Record<string, string>;
const members: { id: string; email: string; token: string }[] = [];
let scratch: string;

/** Every CLI output of the suite, searched for secrets at the end. */
const outputs: string[] = [];
async function cli(args: string[], options: Parameters<typeof runCli>[1] = {}) {
  const r = await runCli(args, options);
  outputs.push(r.stdout + r.stderr);
  return r;
}

async function json<T = any>(args: string[], env: Record<string, string> = admin): Promise<T> {
  const r = await cli([...args, '--json'], { env, cwd: scratch });
  expect(r.code, `${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout) as T;
}

const serverEnv = { KEYLEDGER_ADMIN_API_KEY: ADMIN_KEY };

async function signUp(email: string) {
  const signed = await postJson(`${url}/v1/auth/pw/signup`, { email, password: PASSWORD });
  const me = await fetch(`${url}/v1/users/me`, { headers: { authorization: `Bearer ${signed.access_token}` } });
  return { id: ((await me.json()) as { id: string }).id, email, token: signed.access_token as string };
}

async function signIn(email: string): Promise<string> {
  return (await postJson(`${url}/v1/auth/pw/signin`, { email, password: PASSWORD })).access_token;
}

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'keyledger-cli-audit-'));
  store = await createServerStore();
  server = await startServer(store, serverEnv);
  url = server.url;
  admin = { KEYLEDGER_URL: url, KEYLEDGER_TOKEN: ADMIN_KEY, HOME: scratch, XDG_CONFIG_HOME: scratch };
  for (const email of ['ann@example.com', 'bob@example.com']) members.push(await signUp(email));
  for (let i = 0; i < 3; i++) await signIn('ann@example.com');
}, 300_000);

afterAll(async () => {
  await server?.stop();
  await store?.close();
  rmSync(scratch, { recursive: true, force: true });
});

describe('keyledger audit query', () => {
  it('pages by seq with next_cursor, filters by type, prefix, subject and time, in a table or --json', async () => {
    const all = await json<{ data: Event[]; next_cursor: null }>(['audit', 'query', '--all', '--limit', '4']);
    expect(all.next_cursor).toBeNull();
    const seqs = all.data.map((e) => e.seq);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
    expect(seqs.length).toBeGreaterThanOrEqual(9);

    const first = await json<{ data: Event[]; next_cursor: number }>(['audit', 'query', '--limit', '4']);
    expect(first.data.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(first.next_cursor).toBe(4);
    const second = await json(['audit', 'query', '--limit', '4', '--after', String(first.next_cursor)]);
    expect(second.data.map((e: Event) => e.seq)).toEqual([5, 6, 7, 8]);
    const desc = await json(['audit', 'query', '--order', 'desc', '--limit', '2']);
    expect(desc.data.map((e: Event) => e.seq)).toEqual([seqs.length, seqs.length - 1]);

    const sessions = await json<{ data: Event[] }>(['audit', 'query', '--type', 'session.*', '--all']);
    expect(sessions.data.length).toBe(5);
    expect(new Set(sessions.data.map((e) => e.type))).toEqual(new Set(['session.created']));
    const mixed = await json<{ data: Event[] }>(['audit', 'query', '--type', 'user.registered, session.created']);
    expect(new Set(mixed.data.map((e) => e.type))).toEqual(new Set(['user.registered', 'session.created']));

    const bob = members[1] as { id: string };
    const aboutBob = await json<{ data: Event[] }>(['audit', 'query', '--subject', bob.id, '--all']);
    expect(aboutBob.data.length).toBeGreaterThan(0);
    for (const e of aboutBob.data) expect(JSON.stringify(e)).toContain(bob.id);

    expect((await json(['audit', 'query', '--since', '2099-01-01T00:00:00Z'])).data).toEqual([]);
    expect((await json(['audit', 'query', '--since', '1h'])).data.length).toBe(Math.min(50, seqs.length));
    expect((await json(['audit', 'query', '--until', '1h'])).data).toEqual([]);

    const human = await cli(['audit', 'query', '--limit', '2'], { env: admin });
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^SEQ\s+TIME\s+TYPE\s+ACTOR\s+STREAM\s+IP\n1\s+\S+\s+user\.registered\s/);
    expect(human.stdout).toContain('more: add --after 2');
  });

  it('shows a member only the events about themselves', async () => {
    const [ann, bob] = members as [(typeof members)[0], (typeof members)[0]];
    const mine = await json<{ data: Event[] }>(['audit', 'query', '--all'], {
      KEYLEDGER_URL: url,
      KEYLEDGER_SESSION_TOKEN: bob.token,
    });
    expect(mine.data.length).toBeGreaterThan(0);
    for (const e of mine.data) expect(JSON.stringify(e)).not.toContain(ann.id);
  });

  it('refuses bad flags with exit 2 naming the flag, and a refused credential with exit 3', async () => {
    for (const [args, message] of [
      [['--type', 'Not A Type'], /--type: "Not A Type" is not an event type/],
      [['--since', 'yesterday'], /--since: not a time/],
      [['--limit', '0'], /--limit: a whole number from 1 to 1000/],
      [['--outcome', 'maybe'], /--outcome: must be success or failure/],
      [['--since', '1h', '--until', '2h'], /--since must be before --until/],
    ] as const) {
      const r = await cli(['audit', 'query', ...args, '--json'], { env: admin });
      expect(r.code, args.join(' ')).toBe(2);
      expect(JSON.parse(r.stdout).error).toMatch(message);
    }
    // The server's own refusal of an input is a usage error too.
    expect((await cli(['audit', 'query', '--actor', 'bad id!'], { env: admin })).code).toBe(2);
    const refused = await cli(['audit', 'query'], {
      env: { KEYLEDGER_URL: url, KEYLEDGER_TOKEN: 'kl_key_not_a_real_key_0123456789' },
    });
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/^error: the server refused the API key from the environment .*\n$/);
  });
});

describe('keyledger audit verify --online', () => {
  it("has the server walk the chain (exit 0) with the profile's credential; refuses offline-only flags (2)", async () => {
    const head = (await json<{ data: Event[] }>(['audit', 'query', '--order', 'desc', '--limit', '1']))
      .data[0] as Event;
    const verified = await json(['audit', 'verify', '--online']);
    expect(verified).toMatchObject({ ok: true, first_bad_seq: null, head: { seq: head.seq } });
    expect(verified.checked).toBe(head.seq);
    const human = await cli(['audit', 'verify', '--online'], { env: admin });
    expect(human.stdout).toMatch(new RegExp(`^ok: ${head.seq} events verified, head ${head.seq} [0-9a-f]{64}`));
    const misuse = await cli(['audit', 'verify', '--online', '--public-key', 'x'], { env: admin });
    expect(misuse.code).toBe(2);
  });
});

describe('keyledger audit export', () => {
  it('streams JSON Lines to a 0600 file and CSV to stdout: the same events as the query, with the same filters', async () => {
    const all = (await json<{ data: Event[] }>(['audit', 'query', '--all'])).data;
    const file = join(scratch, 'audit.jsonl');
    const result = await json(['audit', 'export', '--format', 'jsonl', '-o', file]);
    expect(result).toMatchObject({ format: 'jsonl', path: file, events: all.length });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(lines.map((l) => JSON.parse(l) as Event)).toEqual(all);

    const csv = await cli(['audit', 'export', '--format', 'csv', '--type', 'session.*'], { env: admin });
    expect(csv.code, csv.stderr).toBe(0);
    expect(csv.stderr).toBe('');
    const rows = csv.stdout.trimEnd().split('\n');
    expect(rows[0]).toBe('seq,occurred_at,type,stream,actor_type,actor_id,ip,user_agent,request_id,data,hash');
    const sessionSeqs = all.filter((e) => e.type.startsWith('session.')).map((e) => e.seq);
    expect(rows.slice(1).map((r) => Number(r.split(',')[0]))).toEqual(sessionSeqs);
    const human = await cli(['audit', 'export', '--format', 'csv', '-o', join(scratch, 'a.csv')], { env: admin });
    expect(human.stdout).toBe(
      `exported ${all.length} events (${statSync(join(scratch, 'a.csv')).size} bytes) to ${join(scratch, 'a.csv')}\n`,
    );
  });

  it('draws its progress on a terminal only; refuses a missing format (2) and a refused credential (3), leaving no file', async () => {
    const file = join(scratch, 'progress.jsonl');
    const pty = spawnPty(['audit', 'export', '--format', 'jsonl', '-o', file], { env: admin, cwd: scratch });
    expect(await pty.exited).toBe(0);
    expect(plain(pty.screen())).toMatch(/exporting \[#{30}\] 100%/);
    // Events written to the terminal itself: no bar among them.
    const toScreen = spawnPty(['audit', 'export', '--format', 'csv'], { env: admin, cwd: scratch });
    expect(await toScreen.exited).toBe(0);
    expect(plain(toScreen.screen())).toContain('seq,occurred_at,type,stream');
    expect(plain(toScreen.screen())).not.toContain('exporting');
    expect((await cli(['audit', 'export'], { env: admin })).code).toBe(2);
    const out = join(scratch, 'refused.jsonl');
    const refused = await cli(['audit', 'export', '--format', 'jsonl', '-o', out], {
      env: { KEYLEDGER_URL: url, KEYLEDGER_TOKEN: 'kl_key_not_a_real_key_0123456789' },
    });
    expect(refused.code).toBe(3);
    expect(() => statSync(out)).toThrow();
    expect(() => statSync(`${out}.partial`)).toThrow();
  });
});

/** A long-running CLI process whose stdout is read line by line. */
function follow(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [BIN, ...args], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  child.on('exit', () => outputs.push(`${lines.join('\n')}${partial}${stderr}`));
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  const waiters = new Set<() => void>();
  child.stdout.on('data', (d: Buffer) => {
    partial += d.toString('utf8');
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
    for (const w of waiters) w();
  });
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    lines,
    stderr: () => stderr,
    exited,
    signal: (s: NodeJS.Signals) => child.kill(s),
    until(predicate: (lines: string[]) => boolean, timeoutMs = 60_000) {
      if (predicate(lines)) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!predicate(lines)) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out; stdout:\n${lines.join('\n')}\nstderr:\n${stderr}`));
        }, timeoutMs);
        waiters.add(check);
      });
    },
  };
}

describe('keyledger audit tail', () => {
  it('prints the latest events, oldest first, as a line or a JSON object each', async () => {
    const latest = (await json<{ data: Event[] }>(['audit', 'query', '--order', 'desc', '--limit', '3'])).data;
    const tail = await cli(['audit', 'tail', '-n', '3', '--json'], { env: admin });
    expect(tail.code).toBe(0);
    expect(
      tail.stdout
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as Event),
    ).toEqual([...latest].reverse());
    const human = await cli(['audit', 'tail', '-n', '2', '--type', 'user.*'], { env: admin });
    expect(human.code).toBe(0);
    const humanLines = human.stdout.trimEnd().split('\n');
    expect(humanLines).toHaveLength(2);
    for (const l of humanLines) expect(l).toMatch(/^\s*\d+\s+\S+Z\s+user\.\S+/);
  });

  it('-f follows new events as they are committed, across a server restart, missing none, until Ctrl-C (exit 0)', async () => {
    const head = (await json<{ data: Event[] }>(['audit', 'query', '--order', 'desc', '--limit', '1']))
      .data[0] as Event;
    const tail = follow(['audit', 'tail', '-f', '-n', '1', '--json'], admin);
    onTestFinished(() => {
      tail.signal('SIGKILL');
    });
    const seqs = () => tail.lines.map((l) => (JSON.parse(l) as Event).seq);
    await tail.until((l) => l.length >= 1);
    expect(seqs()).toEqual([head.seq]);

    // Appended right after the first page: delivered whether or not the stream is open yet.
    await signIn('ann@example.com');
    await signIn('bob@example.com');
    await tail.until(() => seqs().includes(head.seq + 2));

    // The server dies (SIGKILL: a crash; SIGTERM would wait for the open tail); events are appended meanwhile
    // (offline, straight on the database); it comes back on the same port and the tail resumes after the last seq
    // it printed.
    const port = new URL(url).port;
    await server.stop('SIGKILL');
    const created = await cli(['users', 'create', '--email', 'during.outage@example.com', '--json'], {
      env: store.env,
    });
    expect(created.code, created.stderr).toBe(0);
    server = await startServer(store, { ...serverEnv, PORT: port });
    await signIn('ann@example.com');
    // Three events from the outage (user.registered, user.invited, magic_link.issued), then the sign-in's session.
    await tail.until(() => seqs().includes(head.seq + 6), 90_000);
    const got = seqs();
    // Every seq from the first, once each, in order: nothing skipped across the restart, nothing repeated.
    expect(got).toEqual(Array.from({ length: got.length }, (_, i) => head.seq + i));
    const types = tail.lines.map((l) => (JSON.parse(l) as Event).type);
    expect(types.slice(3)).toEqual(['user.registered', 'user.invited', 'magic_link.issued', 'session.created']);

    tail.signal('SIGINT');
    expect(await tail.exited).toBe(0);
    expect(tail.stderr()).toMatch(/^connection lost \([^)\n]+\); reconnecting…\nreconnected\n$/);
  }, 300_000);

  it('printed no admin key, session token or password anywhere', () => {
    expect(outputs.length).toBeGreaterThan(20);
    const secrets = [ADMIN_KEY, PASSWORD, ...members.map((m) => m.token)];
    for (const text of outputs) for (const secret of secrets) expect(text.includes(secret)).toBe(false);
  });
});
