import { type CoreContext, createSession, findUserByEmail, registerUser, SYSTEM_META } from '@keyledger/core';
import { log } from './log.ts';

export const LOCAL_USER_EMAIL = 'local@keyledger.localhost';
const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1)$/;
const LOOPBACK_HOST = /^(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/i;

export interface AnonymousMode {
  /** The built-in user's session token, created (and renewed) on demand; never leaves the process. */
  token(): Promise<string>;
  /** Only loopback peers addressing a loopback host name (no DNS rebinding) act as the local user. */
  admits(clientIp: string, host: string | undefined): boolean;
}

/**
 * KEYLEDGER_ANONYMOUS=1: for one person on their own machine. Requests without a credential act as one built-in
 * local admin, every action is logged as that user, and the server binds to loopback only.
 */
export async function createAnonymousMode(core: CoreContext): Promise<AnonymousMode> {
  const meta = { ...SYSTEM_META, actor: { type: 'system' as const, id: 'anonymous-mode' } };
  const user =
    (await findUserByEmail(core, LOCAL_USER_EMAIL)) ??
    (await registerUser(core, meta, {
      email: LOCAL_USER_EMAIL,
      name: 'Local user',
      role: 'admin',
      method: 'bootstrap',
    }));
  let current: { token: string; expiresAt: Date } | undefined;
  let pending: Promise<string> | undefined;
  log.warn(
    'ANONYMOUS MODE: authentication is off for this machine. Every request from loopback without a credential acts as ' +
      `the built-in admin ${LOCAL_USER_EMAIL}. Do not use this on a shared or networked machine.`,
  );
  return {
    token() {
      const now = core.clock.now().getTime();
      if (current && current.expiresAt.getTime() - now > 24 * 3600_000) return Promise.resolve(current.token);
      pending ??= createSession(core, meta, { userId: user.id, method: 'setup', lifetime: 'browser' })
        .then((s) => {
          current = { token: s.token, expiresAt: s.expiresAt };
          return s.token;
        })
        .finally(() => {
          pending = undefined;
        });
      return pending;
    },
    admits(clientIp, host) {
      return LOOPBACK.test(clientIp) && host !== undefined && LOOPBACK_HOST.test(host);
    },
  };
}
