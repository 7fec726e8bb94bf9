import { InvalidEventError } from '../errors.ts';
import { uuidv7 } from '../ids.ts';
import { canonicalJson, NotCanonicalError } from './canonical.ts';
import { type Catalogue, eventMetaSchema } from './catalogue.ts';
import type { AppendRequest, ExpectedVersion } from './types.ts';

/** The largest canonical `data` plus `meta` one event may carry. Auth events are small; a large one is a bug. */
export const MAX_EVENT_BYTES = 16 * 1024;
const STREAM_PATTERN = /^[a-z][a-z_]*-[A-Za-z0-9_:.-]{1,128}$/;
// A credential in Keyledger's own format, wherever it appears, means a secret is about to be logged.
const CREDENTIAL_PATTERN = /kl_(?:key|ses)_[0-9A-Za-z]{30,}/;
const MAX_OCCURRED_AT = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
const SECRET_FIELD =
  /^(?:password|passwd|secret|client_secret|plaintext|access_token|refresh_token|api_key|token|code)$/i;

export interface PreparedEvent {
  readonly id: string;
  readonly type: string;
  readonly schemaVersion: number;
  readonly data: unknown;
  readonly dataJson: string;
}

export interface PreparedStream {
  readonly stream: string;
  readonly expectedVersion: ExpectedVersion;
  readonly events: readonly PreparedEvent[];
}

export interface PreparedAppend {
  readonly streams: readonly PreparedStream[];
  readonly meta: unknown;
  readonly metaJson: string;
  readonly occurredAt: Date;
  readonly occurredAtIso: string;
  readonly outbox: readonly { topic: string; payloadJson: string; availableAt: Date }[];
  readonly within: AppendRequest['within'];
}

/** Validates a request completely before it is queued, so a refused append has written nothing. */
export function prepareAppend(catalogue: Catalogue, request: AppendRequest): PreparedAppend {
  if (request.streams.length === 0) throw new InvalidEventError('empty', 'an append needs at least one stream');
  const occurredAt = request.occurredAt;
  if (!(occurredAt instanceof Date) || Number.isNaN(occurredAt.getTime())) {
    throw new InvalidEventError('schema', 'occurredAt must be a valid Date');
  }
  // The hash covers toISOString(), and verify() rebuilds it with to_char(… 'YYYY-…'): past year 9999 the two differ
  // ('+010000-…' against '10000-…'), so such an event would be stored and then fail verification forever. Before
  // 1970 the id's 48-bit millisecond field (UUIDv7) has no meaning. Neither is a real clock reading.
  const time = occurredAt.getTime();
  if (time < 0 || time > MAX_OCCURRED_AT) {
    throw new InvalidEventError('schema', 'occurredAt must lie between 1970 and the end of year 9999 (UTC)');
  }
  const metaResult = eventMetaSchema.safeParse(request.meta);
  if (!metaResult.success) {
    throw new InvalidEventError('schema', `event meta is invalid: ${metaResult.error.issues[0]?.message}`, {
      cause: metaResult.error,
    });
  }
  const meta = metaResult.data;
  const metaJson = encode(meta, 'meta');
  scanForSecrets(meta, 'meta');

  const seen = new Set<string>();
  const streams = request.streams.map((s): PreparedStream => {
    if (!STREAM_PATTERN.test(s.stream))
      throw new InvalidEventError('schema', `stream name ${JSON.stringify(s.stream)} is not <kind>-<id>`);
    if (seen.has(s.stream)) throw new InvalidEventError('schema', `stream ${s.stream} appears twice in one append`);
    seen.add(s.stream);
    const ev = s.expectedVersion;
    if (ev !== 'any' && !(Number.isSafeInteger(ev) && ev >= 0)) {
      throw new InvalidEventError('schema', `expected version of ${s.stream} must be a whole number ≥ 0 or 'any'`);
    }
    if (s.events.length === 0) throw new InvalidEventError('empty', `no events for stream ${s.stream}`);
    return {
      stream: s.stream,
      expectedVersion: ev,
      events: s.events.map((e) => {
        const def = catalogue.get(e.type);
        if (!def)
          throw new InvalidEventError('unknown_type', `unknown event type ${JSON.stringify(e.type)}`, { type: e.type });
        scanForSecrets(e.data, 'data', e.type);
        const parsed = def.data.safeParse(e.data);
        if (!parsed.success) {
          const issue = parsed.error.issues[0];
          throw new InvalidEventError('schema', `${e.type}: ${issue?.path.join('.') || 'data'}: ${issue?.message}`, {
            cause: parsed.error,
            type: e.type,
          });
        }
        const dataJson = encode(parsed.data, 'data', e.type);
        // Bytes as stored (UTF-8), not UTF-16 code units: '€' is one unit but three bytes.
        if (Buffer.byteLength(dataJson, 'utf8') + Buffer.byteLength(metaJson, 'utf8') > MAX_EVENT_BYTES) {
          throw new InvalidEventError('too_large', `${e.type} is over ${MAX_EVENT_BYTES} bytes`, { type: e.type });
        }
        return {
          id: uuidv7(occurredAt.getTime()),
          type: e.type,
          schemaVersion: def.schemaVersion,
          data: parsed.data,
          dataJson,
        };
      }),
    };
  });

  const outbox = (request.outbox ?? []).map((m) => {
    if (m.availableAt !== undefined && !(m.availableAt instanceof Date && !Number.isNaN(m.availableAt.getTime()))) {
      throw new InvalidEventError('schema', `outbox message ${m.topic}: availableAt must be a valid Date`);
    }
    return {
      topic: m.topic,
      payloadJson: encode(m.payload, 'outbox payload'),
      availableAt: m.availableAt ?? occurredAt,
    };
  });
  return {
    streams,
    meta,
    metaJson,
    occurredAt,
    occurredAtIso: occurredAt.toISOString(),
    outbox,
    within: request.within,
  };
}

function encode(value: unknown, what: string, type?: string): string {
  try {
    return canonicalJson(value);
  } catch (error) {
    if (error instanceof NotCanonicalError) {
      throw new InvalidEventError('not_canonical', `${type ? `${type} ` : ''}${what}: ${error.message}`, {
        cause: error,
        type,
      });
    }
    throw error;
  }
}

function scanForSecrets(value: unknown, where: string, type?: string, depth = 0): void {
  if (depth > 32) throw new InvalidEventError('too_large', `${where} is nested too deeply`, { type });
  if (typeof value === 'string') {
    if (CREDENTIAL_PATTERN.test(value)) {
      throw new InvalidEventError(
        'secret',
        `${type ?? 'event'} ${where} holds a credential; events never carry secrets`,
        { type },
      );
    }
  } else if (Array.isArray(value)) {
    for (const v of value) scanForSecrets(v, where, type, depth + 1);
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      // JSON.parse makes '__proto__' an own key, but zod's record/json schemas drop it without an error, so the
      // event would silently lose a member the caller sent. Refuse it instead.
      if (k === '__proto__') {
        throw new InvalidEventError('schema', `${type ?? 'event'} ${where} has a member named __proto__`, { type });
      }
      if (SECRET_FIELD.test(k)) {
        throw new InvalidEventError(
          'secret',
          `${type ?? 'event'} ${where} has a field named ${k}; events never carry secrets`,
          { type },
        );
      }
      scanForSecrets(v, where, type, depth + 1);
    }
  }
}
