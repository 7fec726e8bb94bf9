import { randomFillSync } from 'node:crypto';

const CROCKFORD = '0123456789abcdefghjkmnpqrstvwxyz';

/** A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits, so ids sort by creation time. */
export function uuidv7(now: number = Date.now()): string {
  const b = randomFillSync(new Uint8Array(16));
  b[0] = Math.floor(now / 2 ** 40) & 0xff;
  b[1] = Math.floor(now / 2 ** 32) & 0xff;
  b[2] = (now >>> 24) & 0xff;
  b[3] = (now >>> 16) & 0xff;
  b[4] = (now >>> 8) & 0xff;
  b[5] = now & 0xff;
  b[6] = 0x70 | ((b[6] ?? 0) & 0x0f);
  b[8] = 0x80 | ((b[8] ?? 0) & 0x3f);
  const hex = Buffer.from(b).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A TypeID: `prefix_` and a UUIDv7 in 26 Crockford base32 characters, e.g. `key_01jd...`. */
export function typeId(prefix: string, now: number = Date.now()): string {
  let n = BigInt(`0x${uuidv7(now).replaceAll('-', '')}`);
  const out = new Array<string>(26);
  for (let i = 25; i >= 0; i--) {
    out[i] = CROCKFORD[Number(n & 31n)] as string;
    n >>= 5n;
  }
  return `${prefix}_${out.join('')}`;
}

export const TYPE_ID_PATTERN = /^[a-z]+_[0-7][0-9a-hjkmnp-tv-z]{25}$/;
