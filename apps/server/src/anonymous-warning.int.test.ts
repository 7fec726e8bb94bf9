import { testDatabaseUrl } from '@keyledger/db/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type Backend, createBackend } from '../test/spawn-server.ts';
import { LOCAL_USER_EMAIL } from './anonymous.ts';
import { loadEnv } from './env.ts';
import { type RunningServer, startServer } from './server.ts';

/**
 * KEYLEDGER_ANONYMOUS=1 "says loudly at start what it is" (DESIGN §7): the real start-up function, on a fresh
 * database, with what the logger writes to stderr (what an operator reads) captured line by line.
 */

interface Line {
  readonly level: string;
  readonly msg: string;
}

/** A log line in either of log.ts's forms: JSON off a terminal, `WARN: …` / `ERROR: …` / plain text on one. */
function parseLine(text: string): Line {
  if (text.startsWith('{')) {
    try {
      const j = JSON.parse(text) as { level?: unknown; msg?: unknown };
      if (typeof j.level === 'string' && typeof j.msg === 'string') return { level: j.level, msg: j.msg };
    } catch {}
  }
  const m = /^(WARN|ERROR): (.*)$/s.exec(text);
  return m ? { level: (m[1] as string).toLowerCase(), msg: m[2] as string } : { level: 'info', msg: text };
}

let backend: Backend | undefined;
let server: RunningServer | undefined;

afterEach(async () => {
  vi.restoreAllMocks();
  await server?.stop();
  server = undefined;
  await backend?.close();
  backend = undefined;
});

/** Starts the server as main.ts does and returns every line it logged while starting. */
async function start(env: Record<string, string>): Promise<{ lines: Line[]; url: string }> {
  backend = await createBackend(testDatabaseUrl());
  const config = loadEnv({ ...backend.env, PORT: '0', HOST: '127.0.0.1', ...env });
  let written = '';
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    written += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    return true;
  });
  try {
    server = await startServer(config);
  } finally {
    vi.restoreAllMocks();
  }
  const lines = written
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map(parseLine);
  return { lines, url: server.url };
}

const show = (lines: Line[]) => lines.map((l) => `${l.level}: ${l.msg.slice(0, 160)}`).join('\n');

describe('anonymous mode at start', () => {
  it('logs a warning naming anonymous mode and the built-in user, before it listens', async () => {
    const { lines, url } = await start({ KEYLEDGER_ANONYMOUS: '1' });
    const warning = lines.findIndex((l) => /anonymous mode/i.test(l.msg));
    expect(warning, show(lines)).toBeGreaterThanOrEqual(0);
    const line = lines[warning] as Line;
    expect(line.level, line.msg).toBe('warn');
    expect(line.msg).toContain(LOCAL_USER_EMAIL);
    expect(line.msg).toMatch(/authentication is off/i);
    expect(line.msg).toMatch(/loopback/i);
    // Said before the server takes requests, not buried after the start-up chatter.
    const listening = lines.findIndex((l) => /listening on/.test(l.msg));
    expect(listening, show(lines)).toBeGreaterThan(warning);
    // No first-admin setup link: the built-in user is the admin.
    expect(
      lines.some((l) => l.msg.includes('/setup?token=')),
      show(lines),
    ).toBe(false);
    // And it is what it says: a loopback request without a credential acts as the built-in admin.
    const me = await fetch(`${url}/v1/users/me`);
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({ email: LOCAL_USER_EMAIL, role: 'admin' });
  });

  it('says nothing of the kind without KEYLEDGER_ANONYMOUS (or with it set to 0)', async () => {
    for (const env of [{}, { KEYLEDGER_ANONYMOUS: '0' }] as Record<string, string>[]) {
      const { lines, url } = await start(env);
      // The capture did see the start-up: the listening line and the first-admin setup link.
      expect(
        lines.some((l) => /listening on/.test(l.msg)),
        show(lines),
      ).toBe(true);
      expect(
        lines.some((l) => l.msg.includes('/setup?token=')),
        show(lines),
      ).toBe(true);
      expect(lines.filter((l) => /anonymous/i.test(l.msg) || l.msg.includes(LOCAL_USER_EMAIL))).toEqual([]);
      expect((await fetch(`${url}/v1/users/me`)).status).toBe(401);
      await server?.stop();
      server = undefined;
      await backend?.close();
      backend = undefined;
    }
  });
});
