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
}

/** Validates a request completely before it is queued, so a refused append has written nothing. */
export function prepareAppend(catalogue: Catalogue, request: AppendRequest): PreparedAppend {
  if (request.streams.length === 0) throw new InvalidEventError('empty', 'an append needs at least one stream');
  const occurredAt = request.occurredAt;
  if (!(occurredAt instanceof Date) || Number.isNaN(occurredAt.getTime())) {
    throw new InvalidEventError('schema', 'occurredAt must be a valid Date');
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
        if (dataJson.length + metaJson.length > MAX_EVENT_BYTES) {
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

  const outbox = (request.outbox ?? []).map((m) => ({
    topic: m.topic,
    payloadJson: encode(m.payload, 'outbox payload'),
    availableAt: m.availableAt ?? occurredAt,
  }));
  return { streams, meta, metaJson, occurredAt, occurredAtIso: occurredAt.toISOString(), outbox };
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
