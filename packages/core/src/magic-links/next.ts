import { DomainError } from '../errors.ts';

const invalidNext = () =>
  new DomainError('invalid_input', 'next must be a path on this site', {
    details: { field: 'next', reason: 'invalid_next' },
  });

/**
 * DESIGN §5: a path that starts with exactly one `/` and, after percent-decoding until it no longer changes,
 * holds no `\`, no control character or whitespace, and does not start with `//`; empty or absent means `/`.
 * Anything else (arrays included) is 400 `invalid_next`.
 */
export function validateNext(next: unknown): string {
  if (next === undefined || next === null || next === '') return '/';
  if (typeof next !== 'string' || next.length > 2048) throw invalidNext();
  const bad = (s: string) => !s.startsWith('/') || s.startsWith('//') || /[\\\s\p{Cc}]/u.test(s);
  if (bad(next)) throw invalidNext();
  let decoded = next;
  for (let i = 0; i < 10; i++) {
    let once: string;
    try {
      once = decodeURIComponent(decoded);
    } catch {
      throw invalidNext();
    }
    if (once === decoded) break;
    decoded = once;
    if (bad(decoded)) throw invalidNext();
    if (i === 9) throw invalidNext();
  }
  return next;
}
