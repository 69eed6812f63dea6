/**
 * IPv4 address management, pure: subnets carved from a pool (libnetwork's default pool
 * 10.0.0.0/8 split into /24s) and per-network address pools (bitmap, gateway = first host).
 * Addresses are numbers internally; strings are dotted quads, subnets `a.b.c.d/nn`.
 */

export interface Cidr {
  /** Network address as an unsigned 32-bit number. */
  base: number;
  bits: number;
  /** Number of addresses (2^(32-bits)). */
  size: number;
}

/** Parses `a.b.c.d` to an unsigned 32-bit number. @throws Error naming the bad address. */
export function parseIp(s: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  const parts = m ? [m[1], m[2], m[3], m[4]].map(Number) : [];
  if (!m || parts.some((p) => p > 255)) throw new Error(`invalid IPv4 address '${s}': expected a.b.c.d`);
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

export function formatIp(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/**
 * Parses `a.b.c.d/nn` (8 ≤ nn ≤ 30).
 * @throws Error naming the bad subnet and the fix (e.g. host bits set → the network address to use).
 */
export function parseCidr(s: string): Cidr {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(s);
  if (!m) throw new Error(`invalid subnet '${s}': expected CIDR notation like 10.0.1.0/24`);
  const addr = parseIp(m[1]!);
  const bits = Number(m[2]);
  if (bits < 8 || bits > 30) throw new Error(`invalid subnet '${s}': prefix length must be between /8 and /30`);
  const base = (addr & maskOf(bits)) >>> 0;
  if (base !== addr) throw new Error(`invalid subnet '${s}': host bits are set; did you mean ${formatIp(base)}/${bits}?`);
  return { base, bits, size: 2 ** (32 - bits) };
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.base)}/${c.bits}`;
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.base < b.base + b.size && b.base < a.base + a.size;
}

function maskOf(bits: number): number {
  return bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
}

/**
 * Addresses of one network's subnet. The network address, the broadcast address and the gateway
 * (first host, `.1` in a /24) are never handed out. Allocation is next-fit, so a freed address is
 * reused only after the rest of the subnet has been used (fewer stale ARP/conntrack surprises).
 * Every address has an owner (a task or `vip:<service>`); release by another owner is ignored.
 */
export class AddressPool {
  readonly subnet: Cidr;
  readonly gateway: string;
  private readonly bitmap: Uint32Array;
  private readonly owners = new Map<number, string>();
  private cursor = 2;
  private used = 0;

  /** @throws as {@link parseCidr}. */
  constructor(subnet: string) {
    this.subnet = parseCidr(subnet);
    this.bitmap = new Uint32Array(Math.ceil(this.subnet.size / 32));
    this.gateway = formatIp(this.subnet.base + 1);
    this.mark(0);
    this.mark(1);
    this.mark(this.subnet.size - 1);
  }

  /** Addresses still free. */
  get free(): number {
    return this.subnet.size - 3 - this.used;
  }

  /** `ip/bits` for an address of this subnet, as stored in task attachments and VIPs. */
  withPrefix(ip: string): string {
    return `${ip}/${this.subnet.bits}`;
  }

  /** Hands out a free address to `owner`. @throws Error when the subnet is full. */
  allocate(owner: string): string {
    const n = this.subnet.size;
    for (let k = 0; k < n; k++) {
      const i = (this.cursor + k) % n;
      if (!this.isSet(i)) {
        this.mark(i);
        this.owners.set(i, owner);
        this.used++;
        this.cursor = (i + 1) % n;
        return formatIp(this.subnet.base + i);
      }
    }
    throw new Error(`no free address left in ${formatCidr(this.subnet)}`);
  }

  /**
   * Marks `ip` (plain or `ip/bits`) as owned by `owner` (rebuilding state from the store).
   * Returns false when it is outside the subnet, reserved, or owned by someone else.
   */
  reserve(ip: string, owner: string): boolean {
    const i = this.index(ip);
    if (i === undefined) return false;
    if (this.isSet(i)) return this.owners.get(i) === owner;
    this.mark(i);
    this.owners.set(i, owner);
    this.used++;
    return true;
  }

  /** Frees `ip` if `owner` holds it. Returns whether it was freed. */
  release(ip: string, owner: string): boolean {
    const i = this.index(ip);
    if (i === undefined || this.owners.get(i) !== owner) return false;
    this.owners.delete(i);
    this.bitmap[i >>> 5]! &= ~(1 << (i & 31));
    this.used--;
    return true;
  }

  ownerOf(ip: string): string | undefined {
    const i = this.index(ip);
    return i === undefined ? undefined : this.owners.get(i);
  }

  private index(ip: string): number | undefined {
    let n: number;
    try {
      n = parseIp(ip.replace(/\/\d+$/, ''));
    } catch {
      return undefined;
    }
    const i = n - this.subnet.base;
    return i >= 0 && i < this.subnet.size ? i : undefined;
  }

  private isSet(i: number): boolean {
    return (this.bitmap[i >>> 5]! & (1 << (i & 31))) !== 0;
  }

  private mark(i: number): void {
    this.bitmap[i >>> 5]! |= 1 << (i & 31);
  }
}

/**
 * Subnets for networks: explicit ones are reserved (no overlaps allowed), the rest are the next
 * free `/size` block of the pool (default 10.0.0.0/8 in /24s, like libnetwork's default pool).
 */
export class SubnetAllocator {
  private readonly pool: Cidr;
  private readonly step: number;
  private taken: { cidr: Cidr; owner: string }[] = [];
  private cursor = 0;

  /** `nameOf` turns an owner (network ID) into the name used in error messages. */
  constructor(pool = '10.0.0.0/8', readonly size = 24, private readonly nameOf: (owner: string) => string = (o) => o) {
    this.pool = parseCidr(pool);
    if (size < this.pool.bits || size > 30) throw new Error(`invalid subnet size /${size} for pool ${pool}`);
    this.step = 2 ** (32 - size);
  }

  /**
   * Reserves an explicit subnet for `owner` (idempotent for the same owner).
   * @throws Error when it overlaps another owner's subnet, naming both.
   */
  reserve(subnet: string, owner: string): string {
    const cidr = parseCidr(subnet);
    for (const t of this.taken) {
      if (!overlaps(t.cidr, cidr)) continue;
      if (t.owner === owner && t.cidr.base === cidr.base && t.cidr.bits === cidr.bits) return subnet;
      throw new Error(`subnet ${subnet} overlaps ${formatCidr(t.cidr)} already used by network ${this.nameOf(t.owner)}`);
    }
    this.taken.push({ cidr, owner });
    return formatCidr(cidr);
  }

  /** Picks the next free block of the pool for `owner`. @throws Error when the pool is exhausted. */
  allocate(owner: string): string {
    const blocks = this.pool.size / this.step;
    for (let k = 0; k < blocks; k++) {
      const b = (this.cursor + k) % blocks;
      const cidr: Cidr = { base: this.pool.base + b * this.step, bits: this.size, size: this.step };
      if (this.taken.some((t) => overlaps(t.cidr, cidr))) continue;
      this.taken.push({ cidr, owner });
      this.cursor = (b + 1) % blocks;
      return formatCidr(cidr);
    }
    throw new Error(`address pool ${formatCidr(this.pool)} has no free /${this.size} subnet left`);
  }

  /** Frees every subnet `owner` holds. */
  release(owner: string): void {
    this.taken = this.taken.filter((t) => t.owner !== owner);
  }

  /** Subnet held by `owner`, if any. */
  ownedBy(owner: string): string | undefined {
    const t = this.taken.find((x) => x.owner === owner);
    return t && formatCidr(t.cidr);
  }
}

/** Integers from a range with owners (VXLAN network identifiers: 4097 and up, as Docker). */
export class IdAllocator {
  private owners = new Map<number, string>();
  private cursor: number;

  constructor(readonly min = 4097, readonly max = 16_777_215) {
    this.cursor = min;
  }

  allocate(owner: string): number {
    const n = this.max - this.min + 1;
    for (let k = 0; k < n; k++) {
      const v = this.min + ((this.cursor - this.min + k) % n);
      if (!this.owners.has(v)) {
        this.owners.set(v, owner);
        this.cursor = v + 1 > this.max ? this.min : v + 1;
        return v;
      }
    }
    throw new Error(`no free identifier left in ${this.min}-${this.max}`);
  }

  /** Returns false when `v` is out of range or owned by someone else. */
  reserve(v: number, owner: string): boolean {
    if (v < this.min || v > this.max) return false;
    const cur = this.owners.get(v);
    if (cur !== undefined) return cur === owner;
    this.owners.set(v, owner);
    return true;
  }

  release(v: number, owner: string): void {
    if (this.owners.get(v) === owner) this.owners.delete(v);
  }
}
