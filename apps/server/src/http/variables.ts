import type { EventMeta, Principal } from '@keyledger/core';
import type { ServerDeps } from '../deps.ts';

export type CredentialSource = 'bearer' | 'x-api-key' | 'cookie';

export type Variables = {
  requestId: string;
  clientIp: string;
  principal: Principal | null;
  credentialSource: CredentialSource | null;
  /** The raw presented credential (never logged): sign-out and refresh act on it. */
  credential: string | null;
  deps: ServerDeps;
};

export type AppEnv = { Variables: Variables; Bindings: { incoming?: { socket?: { remoteAddress?: string } } } };

/** The event meta for this request: who, through which surface, from where. */
export function metaOf(
  v: Pick<Variables, 'principal' | 'clientIp' | 'requestId'>,
  via: EventMeta['via'],
  userAgent: string | undefined,
  actor?: EventMeta['actor'],
): EventMeta {
  const p = v.principal;
  return {
    actor:
      actor ??
      (!p
        ? { type: 'anonymous', id: null }
        : p.kind === 'env'
          ? { type: 'env_key', id: p.id }
          : p.auth === 'api_key'
            ? { type: 'api_key', id: p.keyId }
            : { type: 'user', id: p.userId }),
    via,
    ip: v.clientIp.slice(0, 64),
    // A user agent is the caller's free text: cap it and strip anything shaped like one of our credentials.
    user_agent: userAgent ? userAgent.replace(/kl_(key|ses)_[0-9A-Za-z]+/g, '[redacted]').slice(0, 512) : null,
    request_id: v.requestId,
  };
}
