import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestDb, type TestDb, testDatabaseUrl } from '@keyledger/db/testing';

/** What the CLI e2e suites share: the binary as a process, a real server process, and a pseudo-terminal. */
export const BIN = fileURLToPath(new URL('../bin/keyledger.js', import.meta.url));
/** tsx as a loader in the server's own process (tsx's CLI would run it as a child that a SIGKILL leaves behind). */
const TSX_LOADER = import.meta.resolve('tsx');
const SERVER_MAIN = fileURLToPath(import.meta.resolve('@keyledger/server/main'));

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment every CLI run starts from: nothing inherited that could point it at another server or database. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DATABASE_URL: '',
    TEST_DATABASE_URL: '',
    KEYLEDGER_URL: '',
    KEYLEDGER_TOKEN: '',
    KEYLEDGER_SESSION_TOKEN: '',
    ...extra,
  };
}

export function runCli(args: string[], options: { env?: Record<string, string>; stdin?: string; cwd?: string } = {}) {
  return new Promise<Ran>((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd,
      env: cleanEnv(options.env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.stdin.end(options.stdin ?? '');
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

export interface TestServer {
  readonly url: string;
  readonly log: () => string;
  /**
   * Stops the server process (its database stays, for a restart). SIGKILL is a crash: SIGTERM waits for open
   * connections, an SSE tail's too.
   */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Where a test server keeps its state: the suite's Postgres when it has one, else an embedded data directory. */
export interface ServerStore {
  readonly dataDir: string;
  readonly databaseUrl: string;
  /** Offline CLI commands on the same database. */
  readonly env: Record<string, string>;
  close(): Promise<void>;
}

export async function createServerStore(): Promise<ServerStore> {
  const dataDir = mkdtempSync(join(tmpdir(), 'keyledger-cli-server-'));
  const pg: TestDb | undefined = testDatabaseUrl() ? await createTestDb() : undefined;
  const databaseUrl = pg?.url ?? '';
  return {
    dataDir,
    databaseUrl,
    env: { KEYLEDGER_DATA_DIR: dataDir, DATABASE_URL: databaseUrl },
    async close() {
      await pg?.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The real server as a process on the store's database (PORT 0: any free port unless `env` names one). */
export async function startServer(store: ServerStore, env: Record<string, string> = {}): Promise<TestServer> {
  let log = '';
  const server: ChildProcess = spawn(process.execPath, ['--import', TSX_LOADER, SERVER_MAIN], {
    env: {
      ...process.env,
      DATABASE_URL: store.databaseUrl,
      TEST_DATABASE_URL: '',
      DATABASE_MIGRATION_URL: '',
      KEYLEDGER_REQUIRE_POSTGRES: '',
      PORT: '0',
      HOST: '127.0.0.1',
      KEYLEDGER_DATA_DIR: store.dataDir,
      KEYLEDGER_SIGNUP: 'open',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout?.on('data', (d) => (log += d));
  server.stderr?.on('data', (d) => (log += d));
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (server.exitCode === null && server.signalCode === null) {
      const exited = new Promise((resolve) => server.once('exit', resolve));
      server.kill(signal);
      await exited;
    }
  };
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start:\n${log}`)), 120_000);
      const onData = () => {
        const m = log.match(/listening on (http:\/\/[^"\s]+)/);
        if (m?.[1]) {
          clearTimeout(timer);
          resolve(m[1].replace(/\/+$/, ''));
        }
      };
      server.stdout?.on('data', onData);
      server.stderr?.on('data', onData);
      server.once('exit', (code) => reject(new Error(`server exited with ${code}:\n${log}`)));
    });
    return { url, log: () => log, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<any> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${url}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/**
 * The CLI on a real pseudo-terminal, through util-linux `script` (stdin, stdout and stderr are all the terminal).
 * `expect` waits for text on the screen; `type` sends keys as a person would, one write per call.
 */
export interface Pty {
  /** Everything the terminal showed so far, escape sequences included. */
  readonly screen: () => string;
  /** Waits for text shown after the previous match (so an answer is never typed at an earlier prompt's words). */
  expect(pattern: RegExp | string, timeoutMs?: number): Promise<void>;
  type(keys: string): void;
  readonly exited: Promise<number | null>;
  kill(): void;
}

export function spawnPty(args: string[], options: { env?: Record<string, string>; cwd?: string } = {}): Pty {
  const quoted = [process.execPath, BIN, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
  // A terminal of a known size: the default 0x0 would make prompts and bars wrap at random places.
  const child = spawn('script', ['-qfec', `stty cols 120 rows 40; exec ${quoted}`, '/dev/null'], {
    cwd: options.cwd,
    env: cleanEnv({ TERM: 'xterm-256color', ...options.env }),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let screen = '';
  let mark = 0;
  const waiters = new Set<() => void>();
  const onData = (d: Buffer) => {
    screen += d.toString('utf8');
    for (const w of waiters) w();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    screen: () => screen,
    expect(pattern, timeoutMs = 30_000) {
      const seen = () => {
        const rest = plain(screen.slice(mark));
        const m = typeof pattern === 'string' ? rest.indexOf(pattern) : rest.search(pattern);
        if (m < 0) return false;
        mark = screen.length;
        return true;
      };
      if (seen()) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!seen()) return;
          cleanup();
          resolve();
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for ${pattern}; the screen:\n${screen}`));
        }, timeoutMs);
        const onExit = () => {
          if (seen()) return;
          cleanup();
          reject(new Error(`exited before ${pattern}; the screen:\n${screen}`));
        };
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
          child.off('exit', onExit);
        };
        waiters.add(check);
        child.once('exit', onExit);
      });
    },
    type(keys) {
      child.stdin.write(keys);
    },
    exited,
    kill() {
      child.kill('SIGKILL');
    },
  };
}

/** The screen without ANSI escape sequences. */
export const plain = (s: string) =>
  // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escape sequences are what it removes
  s.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]|\r/g, '');
