import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  checkToken,
  generateToken,
  hashToken,
  randomBase62,
  tokenChecksum,
  tokenFromBody,
  tokenStart,
} from './tokens.ts';

describe('credential tokens', () => {
  it('have the documented shape: prefix, 30 random base62, 6 base62 checksum', () => {
    const key = generateToken('key');
    const ses = generateToken('session');
    expect(key).toMatch(/^kl_key_[0-9A-Za-z]{36}$/);
    expect(ses).toMatch(/^kl_ses_[0-9A-Za-z]{36}$/);
    expect(checkToken(key)).toEqual({ ok: true, kind: 'key' });
    expect(checkToken(ses)).toEqual({ ok: true, kind: 'session' });
  });

  it('compute the checksum as CRC-32 of prefix+body in big-endian base62', () => {
    // CRC-32 of "kl_key_" + 30 zeros, written out by hand in base62.
    const head = `kl_key_${'0'.repeat(30)}`;
    const crc = crc32(Buffer.from(head)) >>> 0;
    let n = crc;
    let digits = '';
    const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
    while (n > 0) {
      digits = alphabet[n % 62] + digits;
      n = Math.floor(n / 62);
    }
    expect(tokenChecksum(head)).toBe(digits.padStart(6, '0'));
    expect(tokenFromBody('key', '0'.repeat(30))).toBe(head + digits.padStart(6, '0'));
  });

  it('refuses a changed character, a wrong prefix and a bad length before any lookup', () => {
    const key = generateToken('key');
    const flipped = key.slice(0, 10) + (key[10] === 'a' ? 'b' : 'a') + key.slice(11);
    expect(checkToken(flipped)).toEqual({ ok: false, reason: 'bad_checksum' });
    expect(checkToken(key.replace('kl_key_', 'kl_xyz_'))).toEqual({ ok: false, reason: 'malformed' });
    expect(checkToken(`${key}x`)).toEqual({ ok: false, reason: 'malformed' });
    expect(checkToken('')).toEqual({ ok: false, reason: 'malformed' });
  });

  it('are random enough not to collide and use the whole alphabet', () => {
    const seen = new Set(Array.from({ length: 2000 }, () => generateToken('key')));
    expect(seen.size).toBe(2000);
    const chars = new Set(randomBase62(20_000));
    expect(chars.size).toBe(62);
  });

  it('hash to lowercase hex SHA-256 and show only a 12-character start', () => {
    const key = generateToken('key');
    expect(hashToken(key)).toMatch(/^[0-9a-f]{64}$/);
    expect(hashToken('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(tokenStart(key)).toBe(key.slice(0, 12));
    expect(tokenStart(key)).toHaveLength(12);
  });
});
