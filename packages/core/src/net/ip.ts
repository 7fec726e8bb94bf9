import { BlockList, isIP } from 'node:net';

/** An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) is read as the IPv4 address it carries. */
export function normalizeIp(ip: string): string {
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  return m?.[1] ?? ip;
}

export function isIpOrCidr(entry: string): boolean {
  const [ip = '', prefix, extra] = entry.split('/');
  const family = isIP(normalizeIp(ip));
  if (family === 0 || extra !== undefined) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

/** A matcher for a list of IPs and CIDR ranges, v4 and v6. Throws on an entry that is neither. */
export function createIpMatcher(entries: readonly string[]): (ip: string) => boolean {
  const list = new BlockList();
  for (const entry of entries) {
    if (!isIpOrCidr(entry)) throw new Error(`"${entry}" is not an IP address or CIDR range`);
    const [raw = '', prefix] = entry.split('/');
    const ip = normalizeIp(raw);
    const type = isIP(ip) === 4 ? 'ipv4' : 'ipv6';
    if (prefix === undefined) list.addAddress(ip, type);
    else list.addSubnet(ip, Number(prefix), type);
  }
  return (candidate) => {
    const ip = normalizeIp(candidate);
    const family = isIP(ip);
    if (family === 0) return false;
    return list.check(ip, family === 4 ? 'ipv4' : 'ipv6');
  };
}
