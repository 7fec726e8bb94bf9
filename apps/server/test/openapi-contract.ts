import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { expect } from 'vitest';

/**
 * Checks responses against the OpenAPI document the server itself serves, with validators that share no code with
 * the server: the document against the OpenAPI 3.1 schema (@seriousme/openapi-schema-validator), and each body
 * against its operation's response schema (Ajv, JSON Schema 2020-12, which OpenAPI 3.1 uses), after inlining the
 * document's `$ref`s here. A status the operation does not list is a violation, as is a body that does not match.
 */

// ajv-formats is CommonJS: its default export arrives wrapped under ESM.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ??
  addFormatsModule) as unknown as (ajv: Ajv2020) => Ajv2020;

type Json = any;

export const OPERATIONS = [
  'POST /v1/auth/pw/signup',
  'POST /v1/auth/pw/signin',
  'POST /v1/auth/uat',
  'POST /v1/auth/signout',
  'POST /v1/auth/password',
  'GET /v1/users/me',
  'GET /v1/users',
  'POST /v1/users',
  'GET /v1/users/{id}',
  'PATCH /v1/users/{id}',
  'DELETE /v1/users/{id}/sessions',
  'POST /v1/api-keys',
  'GET /v1/api-keys',
  'GET /v1/api-keys/{id}',
  'POST /v1/api-keys/{id}/rotate',
  'DELETE /v1/api-keys/{id}',
  'GET /v1/sessions',
  'DELETE /v1/sessions',
  'DELETE /v1/sessions/{id}',
] as const;
export type Operation = (typeof OPERATIONS)[number];

export interface Res {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly body: any;
}

/** expect.soft inside a test (it goes on and fails at its end, listing every violation); expect in a hook. */
function soft(): typeof expect {
  return expect.getState().currentTestName === undefined ? expect : (expect.soft as typeof expect);
}

const ISO_MS_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Replaces every local `$ref` by (a copy of) what it points to. */
function inlineRefs(node: Json, doc: Json, trail: string[] = []): Json {
  if (Array.isArray(node)) return node.map((n) => inlineRefs(n, doc, trail));
  if (!node || typeof node !== 'object') return node;
  if (typeof node.$ref === 'string') {
    const ref: string = node.$ref;
    if (!ref.startsWith('#/')) throw new Error(`external $ref not supported: ${ref}`);
    if (trail.includes(ref)) throw new Error(`recursive $ref: ${[...trail, ref].join(' -> ')}`);
    const target = ref
      .slice(2)
      .split('/')
      .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
      .reduce((at: Json, key) => at?.[key], doc);
    if (target === undefined) throw new Error(`unresolvable $ref: ${ref}`);
    const { $ref: _, ...siblings } = node;
    const resolved = inlineRefs(target, doc, [...trail, ref]);
    return Object.keys(siblings).length ? { allOf: [resolved], ...inlineRefs(siblings, doc, trail) } : resolved;
  }
  return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, inlineRefs(v, doc, trail)]));
}

/** Every timestamp field (`*_at`) must be ISO 8601 UTC with milliseconds, or null (DESIGN §5). */
function timestampProblems(body: Json, path = '$'): string[] {
  if (Array.isArray(body)) return body.flatMap((b, i) => timestampProblems(b, `${path}[${i}]`));
  if (!body || typeof body !== 'object') return [];
  return Object.entries(body).flatMap(([k, v]) => {
    if (k.endsWith('_at') && v !== null && !(typeof v === 'string' && ISO_MS_UTC.test(v)))
      return [`${path}.${k}: ${JSON.stringify(v)} is not an ISO 8601 UTC timestamp with milliseconds`];
    return timestampProblems(v, `${path}.${k}`);
  });
}

export class OpenApiContract {
  readonly #ajv: Ajv2020;
  readonly #compiled = new Map<string, ValidateFunction>();
  /** Which (operation, status) pairs the suite has seen, for the coverage report. */
  readonly seen = new Map<string, Set<number>>();

  private constructor(readonly doc: Json) {
    this.#ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true });
    addFormats(this.#ajv);
    // OpenAPI 3.1's own vocabulary on top of JSON Schema 2020-12.
    for (const keyword of ['example', 'discriminator', 'xml', 'externalDocs']) this.#ajv.addKeyword(keyword);
  }

  static async load(baseUrl: string): Promise<OpenApiContract> {
    const res = await fetch(`${baseUrl}/api/openapi`);
    if (res.status !== 200) throw new Error(`GET /api/openapi answered ${res.status}`);
    return new OpenApiContract(await res.json());
  }

  /** The document itself, checked against the OpenAPI 3.1 specification's schema. */
  async validateDocument(): Promise<{ version: string; valid: boolean; errors: unknown }> {
    const validator = new Validator({ strict: false });
    const result = await validator.validate(structuredClone(this.doc));
    return { version: validator.version, valid: result.valid, errors: result.errors };
  }

  operation(op: Operation): Json {
    const [method = '', path = ''] = op.split(' ');
    return this.doc.paths?.[path]?.[method.toLowerCase()];
  }

  #validator(key: string, schema: Json): ValidateFunction {
    let v = this.#compiled.get(key);
    if (!v) {
      v = this.#ajv.compile(inlineRefs(schema, this.doc));
      this.#compiled.set(key, v);
    }
    return v;
  }

  #bodyProblems(key: string, schema: Json, res: Res): string[] {
    const validate = this.#validator(key, schema);
    if (validate(res.body)) return timestampProblems(res.body);
    return (validate.errors ?? []).map((e) => `body${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`);
  }

  /** Everything wrong with `res` as an answer of `op`, by the served document. */
  problems(op: Operation, res: Res): string[] {
    const operation = this.operation(op);
    if (!operation) return [`${op} is not in the document`];
    const status = String(res.status);
    const documented =
      operation.responses?.[status] ?? operation.responses?.[`${status[0]}XX`] ?? operation.responses?.default;
    if (!documented) {
      return [
        `${op} answered ${status}, which the document does not list (it lists ${Object.keys(operation.responses ?? {}).join(', ')}): ${res.text.slice(0, 200)}`,
      ];
    }
    const problems: string[] = [];
    const mediaType = (res.headers.get('content-type') ?? '').split(';')[0]?.trim() ?? '';
    const content = documented.content as Record<string, { schema?: Json }> | undefined;
    if (!content || Object.keys(content).length === 0) {
      if (res.text !== '') problems.push(`${op} ${status}: documented without a body, got ${res.text.slice(0, 200)}`);
      return problems;
    }
    const media = content[mediaType];
    if (!media) {
      problems.push(`${op} ${status}: content-type ${mediaType || '(none)'} is not one of ${Object.keys(content)}`);
      return problems;
    }
    if (media.schema) problems.push(...this.#bodyProblems(`${op} ${status} ${mediaType}`, media.schema, res));
    return problems;
  }

  /** For answers outside any operation (unknown routes): the JSON error envelope of components.schemas.Error. */
  errorProblems(res: Res): string[] {
    const schema = this.doc.components?.schemas?.Error;
    if (!schema) return ['the document has no components.schemas.Error'];
    const mediaType = (res.headers.get('content-type') ?? '').split(';')[0]?.trim();
    if (mediaType !== 'application/json') return [`error answered as ${mediaType}, not application/json`];
    return this.#bodyProblems('#Error', schema, res);
  }

  /** Soft assertion: the test goes on, but fails at its end, so one report lists every violation. */
  check(op: Operation, res: Res): void {
    const seen = this.seen.get(op) ?? new Set<number>();
    seen.add(res.status);
    this.seen.set(op, seen);
    soft()(this.problems(op, res), `${op} → ${res.status} against /api/openapi`).toEqual([]);
  }

  coverage(): string {
    return OPERATIONS.map((op) => `${op}: ${[...(this.seen.get(op) ?? [])].sort().join(' ') || '—'}`).join('\n');
  }
}

/** Every password, token and key a suite sent or received: none may appear in a log line, error body or row. */
export class SecretLedger {
  readonly #secrets = new Set<string>();
  /** The raw text of every answer with a status of 400 or more. */
  readonly errorBodies: string[] = [];

  add(...secrets: (string | null | undefined)[]): void {
    for (const s of secrets) if (typeof s === 'string' && s.length >= 8) this.#secrets.add(s);
  }

  /** Picks the secret fields out of a request or response body. */
  collect(body: unknown): void {
    if (!body || typeof body !== 'object') return;
    for (const [k, v] of Object.entries(body)) {
      if (['password', 'new_password', 'current_password', 'access_token', 'key'].includes(k) && typeof v === 'string')
        this.add(v);
    }
  }

  get size(): number {
    return this.#secrets.size;
  }

  /** The secrets found in `text`, shortened so a failure report does not print them whole. */
  foundIn(text: string): string[] {
    return [...this.#secrets].filter((s) => text.includes(s)).map((s) => `${s.slice(0, 10)}…`);
  }
}

export interface CallOptions {
  readonly params?: Record<string, string>;
  readonly query?: Record<string, string>;
  /** JSON-encoded with Content-Type: application/json. */
  readonly body?: unknown;
  /** Sent as is, with `contentType` if given. */
  readonly rawBody?: string;
  readonly contentType?: string;
  /** `Authorization: Bearer <token>`. */
  readonly token?: string;
  /** `x-api-key: <key>`. */
  readonly apiKey?: string;
  readonly headers?: Record<string, string>;
}

/**
 * A third party's view of the server: plain `fetch`, every answer checked against the served document, the
 * request id and error envelope checked, and every secret in either direction written to the ledger.
 */
export class ContractClient {
  constructor(
    readonly baseUrl: string,
    readonly contract: OpenApiContract,
    readonly secrets: SecretLedger,
  ) {}

  /** Calls a documented operation; the answer must be one the document lists for it. */
  async call(op: Operation, options: CallOptions = {}): Promise<Res> {
    const [method = 'GET', template = ''] = op.split(' ');
    const path = template.replace(/\{(\w+)\}/g, (_, name: string) => {
      const value = options.params?.[name];
      if (value === undefined) throw new Error(`${op}: missing path parameter ${name}`);
      return encodeURIComponent(value);
    });
    const res = await this.fetch(method, path, options);
    this.contract.check(op, res);
    return res;
  }

  /** A request outside the documented operations: an error must still be the JSON envelope. */
  async raw(method: string, path: string, options: CallOptions = {}): Promise<Res> {
    const res = await this.fetch(method, path, options);
    if (res.status >= 400)
      soft()(this.contract.errorProblems(res), `${method} ${path} → ${res.status} error envelope`).toEqual([]);
    return res;
  }

  async fetch(method: string, path: string, options: CallOptions): Promise<Res> {
    const url = new URL(path, this.baseUrl);
    for (const [k, v] of Object.entries(options.query ?? {})) url.searchParams.set(k, v);
    const headers = new Headers(options.headers);
    if (options.token !== undefined) headers.set('authorization', `Bearer ${options.token}`);
    if (options.apiKey !== undefined) headers.set('x-api-key', options.apiKey);
    let body: string | undefined;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers.set('content-type', 'application/json');
      this.secrets.collect(options.body);
    } else if (options.rawBody !== undefined) {
      body = options.rawBody;
      if (options.contentType) headers.set('content-type', options.contentType);
    }
    this.secrets.add(options.token, options.apiKey);
    const response = await fetch(url, { method, headers, body });
    const text = await response.text();
    const type = response.headers.get('content-type') ?? '';
    let parsed: unknown;
    if (type.startsWith('application/json') && text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        soft()(text, `${method} ${path}: the body is not valid JSON`).toBe('valid JSON');
      }
    }
    const res: Res = { status: response.status, headers: response.headers, text, body: parsed };
    this.secrets.collect(parsed);
    const requestId = response.headers.get('x-request-id');
    soft()(requestId, `${method} ${path}: X-Request-Id`).toMatch(/^[A-Za-z0-9._-]{1,128}$/);
    if (response.status >= 400) {
      this.secrets.errorBodies.push(text);
      soft()(res.body?.request_id, `${method} ${path}: error request_id is the X-Request-Id`).toBe(requestId);
      soft()(text, `${method} ${path}: no stack trace in an error`).not.toMatch(/\bat .+\(.+:\d+:\d+\)|\.ts:\d+/);
    }
    soft()(response.status, `${method} ${path}: never a 500`).toBeLessThan(500);
    return res;
  }
}
