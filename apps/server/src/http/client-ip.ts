import { isIP } from 'node:net';
import { createIpMatcher, normalizeIp } from '@keyledger/core';

/**
 * The client IP: the socket peer, or — when the peer is a trusted proxy — the rightmost X-Forwarded-For address
 * that is not itself a trusted proxy (the leftmost entries are whatever the client chose to send).
 */
export function createClientIpResolver(
  trustedProxies: readonly string[],
): (peer: string, forwardedFor: string | undefined) => string {
  const trusted = trustedProxies.length > 0 ? createIpMatcher(trustedProxies) : () => false;
  return (rawPeer, forwardedFor) => {
    const peer = normalizeIp(rawPeer);
    if (!forwardedFor || !trusted(peer)) return peer;
    const hops = forwardedFor
      .split(',')
      .map((h) => normalizeIp(h.trim()))
      .filter((h) => isIP(h) !== 0);
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i] as string;
      if (!trusted(hop)) return hop;
    }
    return hops[0] ?? peer;
  };
}
