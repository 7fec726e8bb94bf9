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
