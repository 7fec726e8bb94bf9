import type { Authenticator, Checkpointer, CoreContext, FailureRollup, NoteSigner, RateLimiter } from '@keyledger/core';
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
  /** The checkpoint signer and where notes are exported (outside the database). */
  readonly checkpoints: {
    readonly signer: NoteSigner;
    readonly exportDir: string;
    readonly checkpointer: Checkpointer | null;
  };
  /** Set when KEYLEDGER_ANONYMOUS=1. */
  readonly anonymous?: AnonymousMode | undefined;
}
