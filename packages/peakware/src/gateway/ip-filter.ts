/**
 * Allow and deny lists of addresses and CIDR blocks (IPv4 and IPv6) on node's `BlockList`.
 * Deny wins; with an allow list, only what it holds may pass. An IPv4 address a dual-stack
 * socket reports as `::ffff:10.0.0.1` is checked as `10.0.0.1`.
 */
import { BlockList, isIP } from 'node:net';

/** A compiled allow/deny pair. */
export class IpFilter {
  readonly #allow: BlockList | undefined;
  readonly #deny: BlockList | undefined;

  /** Throws with the bad entry when an address or block does not parse. */
  constructor(allow: readonly string[] | undefined, deny: readonly string[] | undefined) {
    this.#allow = allow === undefined || allow.length === 0 ? undefined : toList(allow);
    this.#deny = deny === undefined || deny.length === 0 ? undefined : toList(deny);
  }

  /** True when the filter has no lists (every address passes). */
  get open(): boolean {
    return this.#allow === undefined && this.#deny === undefined;
  }

  /** True when `address` may pass. */
  allows(address: string | undefined): boolean {
    if (this.open) return true;
    if (address === undefined) return false;
    const a =
      address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
    const family = isIP(a) === 6 ? 'ipv6' : 'ipv4';
    if (this.#deny?.check(a, family) === true) return false;
    return this.#allow === undefined || this.#allow.check(a, family);
  }
}

function toList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [addr, bits] = entry.split('/');
    const family = isIP(addr ?? '');
    if (family === 0) throw new Error(`'${entry}' is not an IP address or CIDR block`);
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(addr!, type);
    else {
      const n = Number(bits);
      if (!Number.isInteger(n) || n < 0 || n > (family === 6 ? 128 : 32))
        throw new Error(`'${entry}': prefix length must be 0-${family === 6 ? 128 : 32}`);
      list.addSubnet(addr!, n, type);
    }
  }
  return list;
}
