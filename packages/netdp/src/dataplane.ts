/**
 * The one interface every load-balancer backend implements (docs/NETWORKING.md, "Load-balancer
 * backends"), and the probe
 * that picks one at agent start.
 */
import { access, constants } from 'node:fs/promises';
import { release } from 'node:os';
import type { ServiceTable } from './table.js';
import { NFT, run } from './exec.js';

export type DataplaneKind = 'nftables' | 'ipvs' | 'userspace';

/** What this host can run. */
export interface Capabilities {
  /** `/proc/net/ip_vs` exists (kernel has IPVS loaded). */
  ipvs: boolean;
  /** `/usr/sbin/nft list tables` succeeded (binary present, nf_tables usable, privileged). */
  nft: boolean;
  /** Effective uid 0. */
  root: boolean;
  /** `uname -r`. */
  kernel: string;
}

export interface SyncResult {
  /** `full` = whole state rewritten, `incremental` = only changes, `noop` = nothing to do. */
  mode: 'full' | 'incremental' | 'noop';
  /** Size of what was sent to the kernel (nft/ipvsadm text bytes); 0 for userspace. */
  bytes: number;
  /** Wall time of the sync, ms. */
  ms: number;
}

/**
 * Level-triggered dataplane: each `sync` gets the full desired table and makes the host match it;
 * calling it twice with the same table is a no-op. Not re-entrant: callers serialise syncs
 * (implementations queue overlapping calls).
 */
export interface Dataplane {
  readonly kind: DataplaneKind;
  probe(): Promise<Capabilities>;
  /** @throws Error (e.g. NftError with nft's stderr) when the host rejects the change; state is then unchanged. */
  sync(table: ServiceTable): Promise<SyncResult>;
  /** Remove everything this dataplane installed (own table, listeners). Idempotent. */
  close(): Promise<void>;
}

/** Probe the host (or a netns: nft runs inside it; IPVS presence is per kernel). */
export async function probeHost(opts: { netns?: string } = {}): Promise<Capabilities> {
  const ipvs = await access('/proc/net/ip_vs', constants.R_OK).then(() => true, () => false);
  const r = await run([NFT, 'list', 'tables'], { netns: opts.netns, timeoutMs: 10000 });
  return { ipvs, nft: r.code === 0, root: process.getuid?.() === 0, kernel: release() };
}

/** Serialises async calls (one sync at a time). */
export class Serial {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(f: () => Promise<T>): Promise<T> {
    const p = this.tail.then(f, f);
    this.tail = p.catch(() => undefined);
    return p;
  }
}
