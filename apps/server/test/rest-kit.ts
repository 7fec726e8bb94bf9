import {
  type CreatedApiKey,
  createApiKey,
  generateToken,
  type Principal,
  type Scope,
  SYSTEM_META,
} from '@keyledger/core';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { createApp } from '../src/app.ts';
import { createSignedInUser, createTestDeps, TEST_PASSWORD, type TestDeps } from '../src/testing.ts';

/**
 * The REST suites' harness: one fresh database per file, requests through `app.request()`, and a ledger of every
 * secret the tests used or received, checked against the whole event log after each test.
 */

export type App = ReturnType<typeof createApp>;

export interface CallInit {
  readonly method?: string;
  /** Sent as `Authorization: Bearer <token>`. */
  readonly token?: string;
  readonly apiKey?: string;
  /** The keyledger_session cookie. */
  readonly cookie?: string;
  /** JSON-encoded with Content-Type: application/json. */
  readonly body?: unknown;
  /** Sent as is (set the content type yourself through `headers`). */
  readonly rawBody?: string;
  readonly headers?: Record<string, string> | Headers;
  /** The socket peer (the client IP unless trusted proxies say otherwise). */
  readonly ip?: string;
}

export interface Res {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly body: any;
}

const SECRET_FIELDS = ['password', 'new_password', 'current_password', 'access_token', 'key'];

/** Every password, token and key a test sent or received: none may ever appear in an event or an error body. */
export class SecretLedger {
  readonly #secrets = new Set<string>([TEST_PASSWORD]);

  add(...secrets: (string | null | undefined)[]): void {
    for (const s of secrets) if (typeof s === 'string' && s.length >= 8) this.#secrets.add(s);
  }

  /** Picks the secret fields out of a request or response body. */
  collect(body: unknown): void {
    if (!body || typeof body !== 'object') return;
    for (const [k, v] of Object.entries(body)) {
      if (SECRET_FIELDS.includes(k) && typeof v === 'string') this.add(v);
    }
  }

  found(text: string): string[] {
    return [...this.#secrets].filter((s) => text.includes(s));
  }

  async assertNotInEvents(deps: TestDeps): Promise<void> {
    await deps.rollup.flush(true);
    const rows = await sql<{ t: string }>`select data::text || meta::text as t from events`.execute(deps.core.db);
    const leaked = rows.rows.flatMap((r) => this.found(r.t));
    expect(leaked.map((s) => `${s.slice(0, 10)}…`)).toEqual([]);
  }
}

export interface Kit {
  readonly deps: TestDeps;
  readonly app: App;
  readonly secrets: SecretLedger;
  call(path: string, init?: CallInit): Promise<Res>;
}

/** Sends one request and checks what every response must have: an X-Request-Id and, on errors, the envelope. */
export async function send(app: App, secrets: SecretLedger, path: string, init: CallInit = {}): Promise<Res> {
  const headers = new Headers(init.headers);
  if (init.token !== undefined) headers.set('authorization', `Bearer ${init.token}`);
  if (init.apiKey !== undefined) headers.set('x-api-key', init.apiKey);
  if (init.cookie !== undefined) headers.set('cookie', `keyledger_session=${init.cookie}`);
  let body: string | undefined = init.rawBody;
  if (init.body !== undefined) {
    body = JSON.stringify(init.body);
    if (!headers.has('content-type')) headers.set('content-type', 'application/json');
  }
  secrets.add(init.token, init.apiKey, init.cookie);
  secrets.collect(init.body);
  const res = await app.request(
    path,
    { method: init.method ?? 'GET', headers, body },
    { incoming: { socket: { remoteAddress: init.ip ?? '127.0.0.1' } } },
  );
  const text = await res.text();
  let parsed: unknown = text;
  if (/^application\/([\w.-]+\+)?json\b/.test(res.headers.get('content-type') ?? '') && text) parsed = JSON.parse(text);
  const requestId = res.headers.get('x-request-id');
  expect(requestId, `X-Request-Id on ${init.method ?? 'GET'} ${path}`).toMatch(/^[A-Za-z0-9._-]{1,128}$/);
  if (res.status >= 400) {
    if (path.startsWith('/trpc/')) expectTrpcError(parsed, res.status);
    else expectEnvelope(parsed, requestId as string);
    expect(secrets.found(text), `a secret in the ${res.status} body of ${path}`).toEqual([]);
  } else {
    secrets.collect(parsed);
  }
  return { status: res.status, headers: res.headers, text, body: parsed };
}

/** On /trpc, refusals come in tRPC's error shape (typed clients read them), with our code alongside. */
export function expectTrpcError(body: unknown, status: number): void {
  const b = body as { error?: { message?: unknown; data?: { httpStatus?: unknown; keyledgerCode?: unknown } } };
  expect(b.error?.message).toBeTypeOf('string');
  expect(b.error?.data?.httpStatus).toBe(status);
  expect(JSON.stringify(b)).not.toMatch(/\bat \S+ \(|\.[cm]?[jt]s:\d+|node_modules|Error:/);
}

/** `{error, code, request_id}` and nothing else: no stack, no internals. */
export function expectEnvelope(body: unknown, requestId: string): void {
  expect(body, 'a JSON error envelope').toBeTypeOf('object');
  const b = body as Record<string, unknown>;
  expect(Object.keys(b).sort()).toEqual(['code', 'error', 'request_id']);
  expect(b.error).toBeTypeOf('string');
  expect(b.code).toMatch(/^[a-z][a-z0-9_]*$/);
  expect(b.request_id).toBe(requestId);
  expect(JSON.stringify(b)).not.toMatch(/\bat \S+ \(|\.[cm]?[jt]s:\d+|node_modules|Error:/);
}

/** Asserts status and code of an error response (the envelope itself is checked by `send`). */
export function expectError(res: Res, status: number, code?: string): void {
  expect(res.status, res.text).toBe(status);
  if (code !== undefined) expect(res.body.code, res.text).toBe(code);
}

/**
 * Registers the per-file lifecycle: a fresh database before the file, the secret check after every test, and
 * closing after the file. Returns the kit (its fields are live once beforeAll has run).
 */
export function useRestKit(env: Record<string, string> = {}): Kit {
  const kit = { secrets: new SecretLedger() } as { -readonly [K in keyof Kit]: Kit[K] };
  kit.call = (path, init) => send(kit.app, kit.secrets, path, init);
  beforeAll(async () => {
    kit.deps = await createTestDeps(env);
    kit.app = createApp(kit.deps);
    kit.secrets.add(env.KEYLEDGER_ADMIN_API_KEY, ...(env.KEYLEDGER_API_KEYS ?? '').split(','));
  });
  afterEach(async () => {
    await kit.secrets.assertNotInEvents(kit.deps);
  });
  afterAll(async () => {
    await kit.deps?.close();
  });
  return kit;
}

let seq = 0;
/** A unique email address for this file. */
export function email(tag = 'u'): string {
  seq += 1;
  return `${tag}-${seq}-${Math.random().toString(36).slice(2, 8)}@example.test`;
}

export interface TestUser {
  readonly userId: string;
  readonly token: string;
  readonly sessionId: string;
  readonly email: string;
}

/** A registered, signed-in user (Bearer API session); their token goes into the ledger. */
export async function signedIn(kit: Kit, role: 'admin' | 'member' = 'member'): Promise<TestUser> {
  const address = email(role);
  const u = await createSignedInUser(kit.deps, { email: address, role });
  kit.secrets.add(u.token);
  return { ...u, email: address };
}

/** The principal a token stands for, as the pipeline resolves it. */
export async function principalOf(kit: Kit, token: string): Promise<Principal> {
  const r = await kit.deps.authenticator.authenticate(token, { ip: '127.0.0.1' });
  if (!r.ok) throw new Error(`fixture token refused: ${r.reason}`);
  return r.principal;
}

/** Creates an API key for the owner of `token` straight through the core. */
export async function keyFor(
  kit: Kit,
  token: string,
  input: { scopes?: Scope[]; expiresAt?: Date; ipAllowlist?: string[]; name?: string } = {},
): Promise<CreatedApiKey> {
  const created = await createApiKey(kit.deps.core, SYSTEM_META, await principalOf(kit, token), {
    name: input.name ?? 'fixture',
    scopes: input.scopes,
    expiresAt: input.expiresAt ?? null,
    ipAllowlist: input.ipAllowlist,
  });
  kit.secrets.add(created.key);
  return created;
}

/** The same token with one character of its random part changed: the checksum no longer matches. */
export function flipOneChar(token: string): string {
  const i = 10;
  const c = token[i] === 'a' ? 'b' : 'a';
  return token.slice(0, i) + c + token.slice(i + 1);
}

/** A well-formed token with a valid checksum that was never issued. */
export function unknownToken(kind: 'key' | 'session' = 'key'): string {
  return generateToken(kind);
}

/** Events of a type, oldest first. */
export async function eventsOf(
  kit: Kit,
  type: string,
): Promise<{ data: Record<string, unknown>; meta: Record<string, unknown> }[]> {
  await kit.deps.rollup.flush(true);
  const rows = await kit.deps.core.db
    .selectFrom('events')
    .select(['data', 'meta'])
    .where('type', '=', type)
    .orderBy('seq')
    .execute();
  return rows as { data: Record<string, unknown>; meta: Record<string, unknown> }[];
}

export const STRONG_PASSWORD = 'quartz-heron-mileage-77';
