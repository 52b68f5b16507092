// Loopback addresses the sandbox's names resolve to: one per domain, random in
// 127.0.0.0/8 without its first and last /24 (127.0.0.1 and friends stay the sandbox's
// own), and in the private IPv6 prefix that uwrx-init routes to lo. uwrx-init makes a
// listener for any address of these ranges a connect names (src/native/init/net.c keeps
// the same ranges).
import { nodeCrypto } from '../crypto.js';

const randomInt = (max: number): number => nodeCrypto().randomInt(max);

/** fd75:7772:7800::/48 ("uwrx"): a unique local prefix, local-routed on the sandbox's lo. */
export const IPV6_PREFIX = 'fd75:7772:7800::';
export const IPV6_PREFIX_LENGTH = 48;
/** A second IPv4 address on lo: glibc's AI_ADDRCONFIG ignores 127.0.0.1 alone. */
export const ADDRCONFIG_IPV4 = '127.0.0.2';
/** An IPv6 address other than ::1 on lo, for AI_ADDRCONFIG's IPv6 check. */
export const ADDRCONFIG_IPV6 = 'fd75:7772:7800::1';

export function isAllocatedIpv4(ip: string): boolean {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return false;
  const [a, b, c] = parts as [number, number, number, number];
  return a === 127 && !(b === 0 && c === 0) && !(b === 255 && c === 255);
}

/** A fresh IPv4 address not in `taken`. */
export function allocateIpv4(taken: ReadonlySet<string>): string {
  for (;;) {
    const ip = `127.${randomInt(256)}.${randomInt(256)}.${1 + randomInt(254)}`;
    if (isAllocatedIpv4(ip) && !taken.has(ip)) return ip;
  }
}

/** A fresh IPv6 address of the prefix, not in `taken`. */
export function allocateIpv6(taken: ReadonlySet<string>): string {
  for (;;) {
    const groups = Array.from({ length: 5 }, () => randomInt(0x10000).toString(16));
    const ip = `fd75:7772:7800:${groups.join(':')}`;
    if (!taken.has(ip) && ip !== ADDRCONFIG_IPV6) return ip;
  }
}
