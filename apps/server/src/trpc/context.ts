import type { EventMeta, Principal } from '@keyledger/core';
import type { ServerDeps } from '../deps.ts';
import type { CredentialSource } from '../http/variables.ts';
import { metaOf } from '../http/variables.ts';

/** Everything a procedure may use. Built from the HTTP pipeline's results, or directly in tests. */
export interface TrpcContext {
  readonly deps: ServerDeps;
  readonly principal: Principal | null;
  readonly clientIp: string;
  readonly requestId: string;
  readonly userAgent: string | undefined;
  readonly credentialSource: CredentialSource | null;
  /** The presented credential (never logged): sign-out acts on it. */
  readonly credential: string | null;
  /** Response headers a procedure may add to (Set-Cookie on sign-in and sign-out). */
  readonly resHeaders: Headers;
  /** The event meta for writes made by this call. */
  readonly meta: EventMeta;
}

export interface ContextInnerOptions {
  readonly deps: ServerDeps;
  readonly principal?: Principal | null;
  readonly clientIp?: string;
  readonly requestId?: string;
  readonly userAgent?: string | undefined;
  readonly credentialSource?: CredentialSource | null;
  readonly credential?: string | null;
  readonly resHeaders?: Headers;
}

/** The context without HTTP: routers are tested with `createCaller(createContextInner({...}))`. */
export function createContextInner(o: ContextInnerOptions): TrpcContext {
  const principal = o.principal ?? null;
  const clientIp = o.clientIp ?? '127.0.0.1';
  const requestId = o.requestId ?? `req_trpc_${Date.now().toString(36)}`;
  return {
    deps: o.deps,
    principal,
    clientIp,
    requestId,
    userAgent: o.userAgent,
    credentialSource: o.credentialSource ?? null,
    credential: o.credential ?? null,
    resHeaders: o.resHeaders ?? new Headers(),
    meta: metaOf({ principal, clientIp, requestId }, 'trpc', o.userAgent),
  };
}
