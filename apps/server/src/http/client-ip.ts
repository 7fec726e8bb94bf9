import { isIP } from 'node:net';
import { createIpMatcher, normalizeIp } from '@keyledger/core';

/**
 * The client IP: the socket peer, or — when the peer is a trusted proxy — the rightmost X-Forwarded-For address
 * that is not itself a trusted proxy (the leftmost entries are whatever the client chose to send). Entries a proxy
 * wrote with a port (`198.51.100.7:4711`, `[2001:db8::1]:443`) or in brackets are read as their address. An entry
 * that is not an address at all stops the walk at the nearest trusted hop: what lies left of it cannot be told
 * apart from what the client wrote, so it is never taken for the client.
 */
export function createClientIpResolver(
  trustedProxies: readonly string[],
): (peer: string, forwardedFor: string | undefined) => string {
  const trusted = trustedProxies.length > 0 ? createIpMatcher(trustedProxies) : () => false;
  return (rawPeer, forwardedFor) => {
    const peer = normalizeIp(rawPeer);
    if (!forwardedFor || !trusted(peer)) return peer;
    const entries = forwardedFor.split(',');
    let nearest = peer;
    for (let i = entries.length - 1; i >= 0; i--) {
      const hop = forwardedAddress(entries[i] as string);
      if (hop === null) return nearest;
      if (!trusted(hop)) return hop;
      nearest = hop;
    }
    return nearest;
  };
}

/** One X-Forwarded-For entry as an address (a port or brackets taken off), or null when it is none. */
function forwardedAddress(entry: string): string | null {
  let host = entry.trim();
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end < 0) return null;
    host = host.slice(1, end);
  } else {
    const colon = host.indexOf(':');
    // One colon: an IPv4 address with a port. More: IPv6, whose colons are its own.
    if (colon >= 0 && colon === host.lastIndexOf(':')) host = host.slice(0, colon);
  }
  const ip = normalizeIp(host);
  return isIP(ip) !== 0 ? ip : null;
}
