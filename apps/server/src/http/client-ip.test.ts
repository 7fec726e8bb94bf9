import { createIpMatcher } from '@keyledger/core';
import { describe, expect, it } from 'vitest';
import { createClientIpResolver } from './client-ip.ts';

/**
 * The client IP (DESIGN §5): the socket peer, or, when the peer is a trusted proxy, the rightmost X-Forwarded-For
 * address that is not itself a trusted proxy. Everything left of that is whatever the client chose to send.
 */

describe('without trusted proxies', () => {
  const resolve = createClientIpResolver([]);

  it('is the socket peer, whatever X-Forwarded-For says', () => {
    expect(resolve('203.0.113.5', undefined)).toBe('203.0.113.5');
    expect(resolve('203.0.113.5', '198.51.100.7')).toBe('203.0.113.5');
    // A client claiming to be loopback or an internal host gains nothing.
    expect(resolve('203.0.113.5', '127.0.0.1')).toBe('203.0.113.5');
    expect(resolve('203.0.113.5', '10.0.0.1, 127.0.0.1, ::1')).toBe('203.0.113.5');
    expect(resolve('2001:db8::5', '198.51.100.7')).toBe('2001:db8::5');
  });

  it('reads an IPv4-mapped IPv6 peer as IPv4', () => {
    expect(resolve('::ffff:203.0.113.5', undefined)).toBe('203.0.113.5');
    expect(resolve('::FFFF:203.0.113.5', '198.51.100.7')).toBe('203.0.113.5');
    expect(resolve('::1', undefined)).toBe('::1');
  });
});

describe('with trusted proxies', () => {
  const proxies = ['10.0.0.0/8', '192.0.2.10', '2001:db8:ff::/48'];
  const resolve = createClientIpResolver(proxies);

  it('ignores X-Forwarded-For from a peer that is not a trusted proxy', () => {
    expect(resolve('203.0.113.5', '198.51.100.7')).toBe('203.0.113.5');
    expect(resolve('192.0.2.11', '198.51.100.7')).toBe('192.0.2.11');
    expect(resolve('2001:db8:fe::1', '198.51.100.7')).toBe('2001:db8:fe::1');
  });

  it('is the trusted peer itself when there is no X-Forwarded-For', () => {
    expect(resolve('10.0.0.1', undefined)).toBe('10.0.0.1');
    expect(resolve('10.0.0.1', '')).toBe('10.0.0.1');
  });

  it('takes the one hop a trusted proxy forwarded', () => {
    expect(resolve('10.0.0.1', '198.51.100.7')).toBe('198.51.100.7');
    expect(resolve('192.0.2.10', '198.51.100.7')).toBe('198.51.100.7');
    expect(resolve('10.0.0.1', '2001:db8:1::9')).toBe('2001:db8:1::9');
  });

  it('skips trusted proxies on the right of a chain', () => {
    expect(resolve('10.0.0.1', '198.51.100.7, 10.0.0.3, 192.0.2.10')).toBe('198.51.100.7');
    expect(resolve('10.0.0.1', '198.51.100.7,10.200.0.1')).toBe('198.51.100.7');
    expect(resolve('2001:db8:ff::1', '198.51.100.7, 2001:db8:ff:1::2')).toBe('198.51.100.7');
  });

  it('ignores what the client put on the left: the rightmost untrusted address wins', () => {
    // The client sent "6.6.6.6, 127.0.0.1"; the proxy appended the address it saw.
    expect(resolve('10.0.0.1', '6.6.6.6, 127.0.0.1, 198.51.100.7')).toBe('198.51.100.7');
    expect(resolve('10.0.0.1', '6.6.6.6, 198.51.100.7, 10.0.0.2')).toBe('198.51.100.7');
    // Two X-Forwarded-For headers reach the resolver joined with ", " (Fetch Headers semantics).
    const joined = new Headers([
      ['x-forwarded-for', '6.6.6.6'],
      ['x-forwarded-for', '198.51.100.7'],
    ]).get('x-forwarded-for');
    expect(resolve('10.0.0.1', joined ?? undefined)).toBe('198.51.100.7');
  });

  it('when every forwarded address is a trusted proxy, takes the leftmost: still a trusted address, never the peer', () => {
    // Traffic from inside the proxy network (a health checker, an internal caller behind the load balancer).
    expect(resolve('10.0.0.1', '10.0.0.9')).toBe('10.0.0.9');
    expect(resolve('10.0.0.1', '10.0.0.9, 10.0.0.3, 192.0.2.10')).toBe('10.0.0.9');
    // Whatever the client put there, an all-trusted chain yields a trusted address: no outside address comes this way.
    const trusted = createIpMatcher(proxies);
    for (const xff of ['10.1.1.1, 10.0.0.3', '192.0.2.10', '2001:db8:ff::7, 10.0.0.3', 'unknown, 10.9.9.9']) {
      const ip = resolve('10.0.0.1', xff);
      expect(trusted(ip), `${xff} -> ${ip}`).toBe(true);
      expect(ip).not.toBe('10.0.0.1');
    }
  });

  it('skips entries that are not IP addresses', () => {
    expect(resolve('10.0.0.1', 'unknown, 198.51.100.7')).toBe('198.51.100.7');
    expect(resolve('10.0.0.1', 'not-an-ip, , 198.51.100.7, 10.0.0.2')).toBe('198.51.100.7');
    expect(resolve('10.0.0.1', '<script>, 999.1.1.1, 198.51.100.7')).toBe('198.51.100.7');
    expect(resolve('10.0.0.1', '  198.51.100.7  ')).toBe('198.51.100.7');
    // Nothing usable at all: the peer, not a garbage string.
    expect(resolve('10.0.0.1', 'unknown')).toBe('10.0.0.1');
    expect(resolve('10.0.0.1', ' , ,')).toBe('10.0.0.1');
    expect(resolve('10.0.0.1', 'a'.repeat(5000))).toBe('10.0.0.1');
    for (const xff of ['unknown', 'x, y', '1.2.3', '198.51.100.7/24', 'localhost', '']) {
      const ip = resolve('10.0.0.1', xff);
      expect(ip === '10.0.0.1' || ip === '198.51.100.7', `${xff} -> ${ip}`).toBe(true);
    }
  });

  it('reads entries a proxy wrote with a port or in brackets, and never takes what is left of an unreadable entry for the client', () => {
    expect(resolve('10.0.0.1', '6.6.6.6, 198.51.100.7:4711')).toBe('198.51.100.7');
    expect(resolve('10.0.0.1', '6.6.6.6, [2001:db8:1::5]:443')).toBe('2001:db8:1::5');
    expect(resolve('10.0.0.1', '6.6.6.6, [2001:db8:1::5]')).toBe('2001:db8:1::5');
    expect(resolve('10.0.0.1', '6.6.6.6, 2001:db8:1::5')).toBe('2001:db8:1::5');
    // Something no address: what is left of it may be the client's own writing, so the walk stops at the nearest
    // trusted hop (here the peer itself, or the proxy right of the entry).
    expect(resolve('10.0.0.1', '6.6.6.6, garbage')).toBe('10.0.0.1');
    expect(resolve('10.0.0.1', '6.6.6.6, [2001:db8:1::5, 10.0.0.2')).toBe('10.0.0.2');
    expect(resolve('10.0.0.1', '6.6.6.6, 198.51.100.7:4711:1, 10.0.0.2')).toBe('10.0.0.2');
  });

  it('matches CIDR ranges exactly at their edges, v4 and v6', () => {
    const narrow = createClientIpResolver(['10.0.0.0/30', '2001:db8::/127']);
    expect(narrow('10.0.0.3', '198.51.100.7')).toBe('198.51.100.7');
    expect(narrow('10.0.0.4', '198.51.100.7')).toBe('10.0.0.4');
    expect(narrow('2001:db8::1', '198.51.100.7')).toBe('198.51.100.7');
    expect(narrow('2001:db8::2', '198.51.100.7')).toBe('2001:db8::2');
    // The chain's own hops are judged by the same ranges.
    expect(narrow('10.0.0.1', '198.51.100.7, 10.0.0.4, 10.0.0.2')).toBe('10.0.0.4');
    expect(narrow('10.0.0.1', '198.51.100.7, 2001:db8::1, 10.0.0.2')).toBe('198.51.100.7');
  });

  it('reads IPv4-mapped IPv6 as IPv4, in the peer, in the chain and in the list', () => {
    expect(resolve('::ffff:10.0.0.1', '198.51.100.7')).toBe('198.51.100.7');
    expect(resolve('::ffff:203.0.113.5', '198.51.100.7')).toBe('203.0.113.5');
    expect(resolve('10.0.0.1', '::ffff:198.51.100.7')).toBe('198.51.100.7');
    expect(resolve('10.0.0.1', '198.51.100.7, ::ffff:10.0.0.2')).toBe('198.51.100.7');
    const mappedList = createClientIpResolver(['::ffff:10.0.0.1']);
    expect(mappedList('10.0.0.1', '198.51.100.7')).toBe('198.51.100.7');
    expect(mappedList('::ffff:10.0.0.1', '198.51.100.7, 10.0.0.1')).toBe('198.51.100.7');
  });

  it('trusts a single IPv6 address and a loopback proxy on the same host', () => {
    const local = createClientIpResolver(['127.0.0.1', '::1']);
    expect(local('::1', '198.51.100.7')).toBe('198.51.100.7');
    expect(local('127.0.0.1', '2001:db8::42')).toBe('2001:db8::42');
    expect(local('127.0.0.2', '198.51.100.7')).toBe('127.0.0.2');
  });
});
