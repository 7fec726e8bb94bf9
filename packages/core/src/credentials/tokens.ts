import { hash, randomFillSync } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { constantTimeEqual } from '@oslojs/crypto/subtle';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
export const TOKEN_PREFIXES = { key: 'kl_key_', session: 'kl_ses_' } as const;
export type TokenKind = keyof typeof TOKEN_PREFIXES;

/** Random part length: 30 base62 characters ≈ 178.6 bits. */
const BODY_LENGTH = 30;
const CHECKSUM_LENGTH = 6;
const TOKEN_PATTERN = /^kl_(key|ses)_[0-9A-Za-z]{36}$/;

/** `length` characters of base62, uniformly: bytes ≥ 248 are drawn again so `% 62` has no bias. */
export function randomBase62(length: number): string {
  let out = '';
  const buf = new Uint8Array(length * 2);
  while (out.length < length) {
    randomFillSync(buf);
    for (const b of buf) {
      if (b < 248) out += BASE62[b % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

function base62Fixed(n: number, width: number): string {
  let out = '';
  let v = n;
  while (v > 0) {
    out = BASE62[v % 62] + out;
    v = Math.floor(v / 62);
  }
  return out.padStart(width, '0');
}

/** CRC-32 (IEEE) of the prefix and random part, big-endian unsigned, in 6 base62 digits. */
export function tokenChecksum(prefixAndBody: string): string {
  return base62Fixed(crc32(Buffer.from(prefixAndBody, 'ascii')) >>> 0, CHECKSUM_LENGTH);
}

export function generateToken(kind: TokenKind): string {
  const head = TOKEN_PREFIXES[kind] + randomBase62(BODY_LENGTH);
  return head + tokenChecksum(head);
}

/** Builds a token of `kind` from 30 given base62 characters (used to derive refresh successors). */
export function tokenFromBody(kind: TokenKind, body: string): string {
  if (!/^[0-9A-Za-z]{30}$/.test(body)) throw new Error('a token body is 30 base62 characters');
  const head = TOKEN_PREFIXES[kind] + body;
  return head + tokenChecksum(head);
}

export type TokenCheck = { ok: true; kind: TokenKind } | { ok: false; reason: 'malformed' | 'bad_checksum' };

/**
 * Checks shape and checksum without touching the database: a typo or a forged token is refused here, so guessing
 * costs the attacker no lookups of ours.
 */
export function checkToken(token: string): TokenCheck {
  const m = TOKEN_PATTERN.exec(token);
  if (!m) return { ok: false, reason: 'malformed' };
  const head = token.slice(0, -CHECKSUM_LENGTH);
  const expected = tokenChecksum(head);
  if (!constantTimeEqual(Buffer.from(expected), Buffer.from(token.slice(-CHECKSUM_LENGTH)))) {
    return { ok: false, reason: 'bad_checksum' };
  }
  return { ok: true, kind: m[1] === 'key' ? 'key' : 'session' };
}

/**
 * SHA-256 hex of the whole token: what is stored and looked up; the token itself is never kept. Node's native
 * one-shot hash: this runs on every authenticated request, before the credential cache.
 */
export function hashToken(token: string): string {
  return hash('sha256', token, 'hex');
}

/** The first 12 characters, shown in lists so a person can tell their keys apart. */
export function tokenStart(token: string): string {
  return token.slice(0, 12);
}

/** Constant-time so the comparison does not reveal how many leading characters matched. */
export function secretsEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && constantTimeEqual(ab, bb);
}
