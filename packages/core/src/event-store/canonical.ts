import { createHash } from 'node:crypto';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Thrown for a value that cannot be hashed the same before and after a jsonb round trip. */
export class NotCanonicalError extends Error {
  override readonly name = 'NotCanonicalError';
}

/** Deepest nesting `canonicalJson` accepts: far beyond any event, and it turns a cycle into a NotCanonicalError. */
export const MAX_JSON_DEPTH = 128;

/**
 * RFC 8785 (JCS) serialisation, restricted to the values that survive Postgres jsonb unchanged: integers within
 * ±2^53 (jsonb keeps numerics exactly, but floats do not print back the same everywhere), well-formed strings
 * without NUL (jsonb rejects \u0000 and lone surrogates), plain objects and arrays, nested at most
 * MAX_JSON_DEPTH deep. Anything else throws, so a hash computed at append time is always reproducible by
 * `verify()` from what the database returns.
 */
export function canonicalJson(value: unknown): string {
  return canonicalValue(value, 0);
}

function canonicalValue(value: unknown, depth: number): string {
  switch (typeof value) {
    case 'string':
      return canonicalString(value);
    case 'number':
      if (!Number.isSafeInteger(value)) throw new NotCanonicalError(`number ${value} is not a safe integer`);
      return Object.is(value, -0) ? '0' : String(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      // Without a bound, a cyclic or absurdly deep value overflows the stack with a RangeError instead.
      if (depth >= MAX_JSON_DEPTH) throw new NotCanonicalError(`value is nested deeper than ${MAX_JSON_DEPTH}`);
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) out += (i ? ',' : '') + canonicalValue(value[i], depth + 1);
        return `${out}]`;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        throw new NotCanonicalError(`${proto?.constructor?.name ?? 'object'} is not plain JSON`);
      }
      // JCS orders members by the UTF-16 code units of their names, which is what the default sort compares.
      const keys = Object.keys(value).sort();
      let out = '{';
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i] as string;
        const member = (value as Record<string, unknown>)[key];
        if (member === undefined) throw new NotCanonicalError(`member ${JSON.stringify(key)} is undefined`);
        out += `${i ? ',' : ''}${canonicalString(key)}:${canonicalValue(member, depth + 1)}`;
      }
      return `${out}}`;
    }
    default:
      throw new NotCanonicalError(`${typeof value} is not JSON`);
  }
}

function canonicalString(s: string): string {
  if (!s.isWellFormed()) throw new NotCanonicalError('string holds a lone surrogate');
  if (s.includes('\u0000')) throw new NotCanonicalError('string holds a NUL character');
  // ECMAScript's JSON.stringify escapes strings exactly as RFC 8785 requires.
  return JSON.stringify(s);
}

/** The part of an event that its hash covers, in the order of DESIGN §2. */
export interface HashedEventFields {
  seq: number;
  id: string;
  stream: string;
  stream_version: number;
  type: string;
  schema_version: number;
  data: unknown;
  meta: unknown;
  /** ISO 8601 UTC with milliseconds. */
  occurred_at: string;
}

export function canonicalEvent(e: HashedEventFields): string {
  return canonicalJson({
    seq: e.seq,
    id: e.id,
    stream: e.stream,
    stream_version: e.stream_version,
    type: e.type,
    schema_version: e.schema_version,
    data: e.data,
    meta: e.meta,
    occurred_at: e.occurred_at,
  });
}

export const ZERO_HASH: Uint8Array = new Uint8Array(32);

/** hash = SHA-256(prev_hash || JCS(event without hashes)). */
export function eventHash(prevHash: Uint8Array, e: HashedEventFields): Uint8Array {
  return createHash('sha256').update(prevHash).update(canonicalEvent(e), 'utf8').digest();
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function fromHex(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, 'hex'));
}
