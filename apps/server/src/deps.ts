import type { Authenticator, CoreContext, FailureRollup, RateLimiter } from '@keyledger/core';
import type { DbHandle } from '@keyledger/db';
import type { AnonymousMode } from './anonymous.ts';
import type { Config } from './env.ts';

/** Everything a request handler may use, built once at start (or per test). */
export interface ServerDeps {
  readonly handle: DbHandle;
  readonly core: CoreContext;
  readonly config: Config;
  readonly authenticator: Authenticator;
  readonly rollup: FailureRollup;
  readonly rateLimiter: RateLimiter;
  /** Set when KEYLEDGER_ANONYMOUS=1. */
  readonly anonymous?: AnonymousMode | undefined;
}
