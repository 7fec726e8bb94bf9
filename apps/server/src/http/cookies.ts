import type { Config } from '../env.ts';

/** `__Host-keyledger_session` with Secure on https public URLs, else `keyledger_session`. */
export function sessionCookieName(config: Config): string {
  return config.publicUrl.protocol === 'https:' ? '__Host-keyledger_session' : 'keyledger_session';
}

export function sessionCookieOptions(config: Config, expires: Date) {
  return {
    httpOnly: true,
    sameSite: 'Lax' as const,
    path: '/',
    secure: config.publicUrl.protocol === 'https:',
    expires,
  };
}

/** The characters RFC 6265 allows in a cookie value (as Hono's cookie parser checks them). */
const COOKIE_VALUE = /^[ !#-:<-[\]-~]*$/;

/**
 * The value of the first cookie called `name` in a Cookie header, as `hono/cookie`'s getCookie reads it (trimmed,
 * one pair of quotes removed, percent-decoded when it holds a `%`, skipped when it holds a character a cookie value
 * may not), without parsing the other cookies: it runs on every request that brings a session cookie.
 */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined || !header.includes(name)) return undefined;
  // Pair by pair, by position: no array of pairs and no string per pair other than the one asked for.
  for (let start = 0; start < header.length; ) {
    let end = header.indexOf(';', start);
    if (end < 0) end = header.length;
    const eq = header.indexOf('=', start);
    if (eq >= 0 && eq < end && header.slice(start, eq).trim() === name) {
      let value = header.slice(eq + 1, end).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
      if (COOKIE_VALUE.test(value)) {
        if (!value.includes('%')) return value;
        try {
          return decodeURIComponent(value);
        } catch {
          return value;
        }
      }
    }
    start = end + 1;
  }
  return undefined;
}
