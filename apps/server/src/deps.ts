import {
  Authenticator,
  type Checkpointer,
  type Clock,
  type CoreContext,
  type EventStore,
  FailureRollup,
  type NoteSigner,
  RateLimiter,
  ResponseTiming,
} from '@keyledger/core';
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
  /** Pads magic-link requests that send nothing to the time of one that sends a link. */
  readonly magicLinkTiming: ResponseTiming;
  /** The checkpoint signer and where notes are exported (outside the database). */
  readonly checkpoints: {
    readonly signer: NoteSigner;
    readonly exportDir: string;
    readonly checkpointer: Checkpointer | null;
  };
  /** The mail delivery worker, kicked after a request that wrote mail (unset in tests that read the outbox). */
  readonly mail?: { kick(): Promise<unknown> } | undefined;
  /** Set when KEYLEDGER_ANONYMOUS=1. */
  readonly anonymous?: AnonymousMode | undefined;
}

/**
 * Builds the request-time dependencies over an open database and event store: the authenticator (started: it hears
 * commits here and NOTIFY from other instances), the failure roll-up and the rate limiter. The caller stops them.
 */
export async function createServerDeps(input: {
  handle: DbHandle;
  store: EventStore;
  config: Config;
  clock: Clock;
  checkpoints: ServerDeps['checkpoints'];
}): Promise<Omit<ServerDeps, 'anonymous' | 'mail'>> {
  const { handle, store, config, clock } = input;
  const authenticator = new Authenticator({
    db: handle.db,
    clock,
    adminApiKey: config.adminApiKey,
    apiKeys: config.apiKeys,
  });
  await authenticator.start(store, handle);
  return {
    handle,
    core: { db: handle.db, store, clock },
    config,
    authenticator,
    rollup: new FailureRollup(store, clock),
    rateLimiter: new RateLimiter(config.apiRateLimit),
    magicLinkTiming: new ResponseTiming(),
    checkpoints: input.checkpoints,
  };
}
