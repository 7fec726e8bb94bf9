import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestDb, type TestDb, testDatabaseUrl } from '@keyledger/db/testing';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';

const SERVER_MAIN = fileURLToPath(import.meta.resolve('@keyledger/server/main'));
const TSX = fileURLToPath(new URL('../../server/node_modules/.bin/tsx', import.meta.url));
export const SCREENSHOTS = fileURLToPath(new URL('../../../docs/screenshots/', import.meta.url));
export const CHROMIUM = '/usr/bin/chromium';
export const PASSWORD = 'violet-otter-lantern-42';

export interface TestServer {
  readonly url: string;
  /** KEYLEDGER_ADMIN_API_KEY of this server: sets up users over REST without going through the UI. */
  readonly adminKey: string;
  readonly log: () => string;
  /** Waits for a line matching `pattern` printed after `from` characters of the log. */
  waitForLog(pattern: RegExp, from?: number, timeoutMs?: number): Promise<RegExpMatchArray>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      s.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/**
 * The real server as a process on a known port (its public URL must be the page's origin for the Origin check and
 * cookies), on the suite's Postgres when TEST_DATABASE_URL is set, else on an embedded data directory.
 */
export async function startServer(env: Record<string, string> = {}): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'keyledger-web-e2e-'));
  const pg: TestDb | undefined = testDatabaseUrl() ? await createTestDb() : undefined;
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const adminKey = `e2e-admin-${randomBytes(24).toString('hex')}`;
  let log = '';
  const child: ChildProcess = spawn(TSX, [SERVER_MAIN], {
    env: {
      ...process.env,
      DATABASE_URL: pg?.url ?? '',
      TEST_DATABASE_URL: '',
      DATABASE_MIGRATION_URL: '',
      KEYLEDGER_REQUIRE_POSTGRES: '',
      PORT: String(port),
      HOST: '127.0.0.1',
      KEYLEDGER_PUBLIC_URL: url,
      KEYLEDGER_DATA_DIR: dataDir,
      KEYLEDGER_ADMIN_API_KEY: adminKey,
      KEYLEDGER_API_RATE_LIMIT: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const listeners = new Set<() => void>();
  const onData = (d: Buffer) => {
    log += d.toString('utf8');
    for (const l of listeners) l();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await pg?.close();
    rmSync(dataDir, { recursive: true, force: true });
  };
  const waitForLog = (pattern: RegExp, from = 0, timeoutMs = 30_000) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const m = log.slice(from).match(pattern);
        if (!m) return false;
        cleanup();
        resolve(m);
        return true;
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for ${pattern} in the server log:\n${log.slice(-4000)}`));
      }, timeoutMs);
      const onExit = () => {
        if (check()) return;
        cleanup();
        reject(new Error(`the server exited before ${pattern}:\n${log.slice(-4000)}`));
      };
      const cleanup = () => {
        clearTimeout(timer);
        listeners.delete(check);
        child.off('exit', onExit);
      };
      listeners.add(check);
      child.once('exit', onExit);
      check();
    });
  try {
    await waitForLog(/listening on http/, 0, 120_000);
    return { url, adminKey, log: () => log, waitForLog, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

export async function api(
  server: TestServer,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any }> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {}
  return { status: res.status, body: parsed };
}

/** A user made over REST with the environment admin key, with the shared test password. */
export async function createUser(
  server: TestServer,
  email: string,
  role: 'admin' | 'member' = 'member',
  name?: string,
): Promise<{ id: string; email: string }> {
  const res = await api(
    server,
    'POST',
    '/v1/users',
    { email, role, password: PASSWORD, name },
    {
      'x-api-key': server.adminKey,
    },
  );
  if (res.status !== 201) throw new Error(`creating ${email}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

export async function launch(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
  return chromium.launch({
    executablePath: CHROMIUM,
    // Root in a container has no user namespace sandbox; the browser only ever loads the local server under test.
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
}

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

/** What the pages printed that should never be there: Content Security Policy refusals and uncaught errors. */
export const pageProblems: string[] = [];

export async function newContext(browser: Browser, server: TestServer): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: DESKTOP, baseURL: server.url, colorScheme: 'light' });
  context.on('page', (page) => {
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) pageProblems.push(`${page.url()}: ${m.text()}`);
    });
    page.on('pageerror', (error) => pageProblems.push(`${page.url()}: ${error.message}`));
  });
  context.setDefaultTimeout(10_000);
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
  return context;
}

/** Signs in through the sign-in page with the password form; ends on the page `next` leads to. */
export async function signIn(page: Page, email: string, next = '/keys'): Promise<void> {
  await page.goto(`/login?next=${encodeURIComponent(next)}`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForURL((u) => u.pathname === next.split('?')[0]);
}

/** The page at desktop and at phone width, into docs/screenshots/<name>-desktop.png and -phone.png. */
export async function screenshots(page: Page, name: string, ready?: () => Promise<void>): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  for (const [suffix, size] of [
    ['desktop', DESKTOP],
    ['phone', PHONE],
  ] as const) {
    await page.setViewportSize(size);
    await ready?.();
    // Let layout settle after the resize (virtualised rows re-measure).
    await page.waitForTimeout(250);
    await page.screenshot({ path: join(SCREENSHOTS, `${name}-${suffix}.png`), animations: 'disabled' });
  }
  await page.setViewportSize(DESKTOP);
}

export interface MailCapture {
  readonly url: string;
  readonly messages: { to: string[]; raw: string }[];
  /** The sign-in link of the first message to `address` after `from` messages, as the recipient would click it. */
  linkFor(address: string, from?: number, timeoutMs?: number): Promise<string>;
  close(): Promise<void>;
}

/** Undoes quoted-printable, so a link reads as the recipient's mail client shows it. */
const decodeQp = (raw: string) =>
  raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16)));

/** A real SMTP server on loopback that keeps every message: the server mails to it through KEYLEDGER_SMTP_URL. */
export async function startMailCapture(): Promise<MailCapture> {
  const { SMTPServer } = await import('smtp-server');
  const messages: { to: string[]; raw: string }[] = [];
  const smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        messages.push({
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: decodeQp(Buffer.concat(chunks).toString('utf8')),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    smtp.once('error', reject);
    smtp.listen(0, '127.0.0.1', () => resolve());
  });
  const address = smtp.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `smtp://127.0.0.1:${port}`,
    messages,
    async linkFor(to, from = 0, timeoutMs = 15_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const m = messages.slice(from).find((x) => x.to.includes(to));
        const link = m?.raw.match(/https?:\/\/[^\s"<>]+\/auth\/magic\?[^\s"<>]+/)?.[0];
        if (link) return link.replaceAll('&amp;', '&');
        if (Date.now() > end) throw new Error(`no sign-in link mailed to ${to} (${messages.length} messages)`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    close: () => new Promise<void>((resolve) => smtp.close(() => resolve())),
  };
}

export interface OidcProvider {
  readonly issuer: string;
  /** The claims the next ID token carries (sub, email, email_verified, name). */
  claims: Record<string, unknown>;
  close(): Promise<void>;
}

/** A loopback OpenID provider (oauth2-mock-server): its authorize endpoint answers at once with a code. */
export async function startOidcProvider(): Promise<OidcProvider> {
  const { OAuth2Server } = await import('oauth2-mock-server');
  const server = new OAuth2Server();
  await server.issuer.keys.generate('RS256');
  await server.start(0, '127.0.0.1');
  const provider: OidcProvider = {
    issuer: server.issuer.url ?? '',
    claims: {},
    close: () => server.stop(),
  };
  server.service.on('beforeTokenSigning', (token: { payload: Record<string, unknown> }) => {
    Object.assign(token.payload, provider.claims);
  });
  return provider;
}
