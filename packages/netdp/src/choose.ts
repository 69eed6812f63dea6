/**
 * Pick the load-balancer dataplane at agent start (`--lb-dataplane auto|nftables|ipvs|userspace`).
 * Order for `auto` (docs/NETWORKING.md, "Load-balancer backends"): nftables when `/usr/sbin/nft` works (the tested
 * default; kube-proxy measured it on par with IPVS), else IPVS when `/proc/net/ip_vs` exists, else
 * the userspace proxy. An explicit choice that the host cannot run is an error, not a fallback.
 * The agent reports `kind` in `NodeDescription.dataplane`.
 */
import type { Capabilities, Dataplane, DataplaneKind } from './dataplane.js';
import { probeHost } from './dataplane.js';
import { NftDataplane, type NftDataplaneOptions } from './nft.js';
import { IpvsDataplane, type IpvsOptions } from './ipvs.js';
import { UserspaceDataplane, type UserspaceOptions } from './userspace.js';

export type DataplanePreference = 'auto' | DataplaneKind;

export interface ChooseOptions {
  prefer?: DataplanePreference;
  /** Run nft/ipvsadm inside this network namespace. */
  netns?: string;
  nft?: NftDataplaneOptions;
  ipvs?: IpvsOptions;
  userspace?: UserspaceOptions;
  /** Injected probe result (tests). */
  capabilities?: Capabilities;
}

export interface Chosen {
  kind: DataplaneKind;
  dataplane: Dataplane;
  /** One line saying why, for logs and `node inspect`. */
  reason: string;
  capabilities: Capabilities;
}

/** The decision alone (pure). @throws Error when an explicit preference cannot run here. */
export function decideDataplane(prefer: DataplanePreference, caps: Capabilities): { kind: DataplaneKind; reason: string } {
  switch (prefer) {
    case 'nftables':
      if (!caps.nft) throw new Error('--lb-dataplane nftables: /usr/sbin/nft does not work here (install nftables, run as root); use auto or userspace');
      return { kind: 'nftables', reason: 'requested' };
    case 'ipvs':
      if (!caps.ipvs) throw new Error('--lb-dataplane ipvs: /proc/net/ip_vs is missing (kernel without IPVS or ip_vs not loaded); use auto or nftables');
      return { kind: 'ipvs', reason: 'requested' };
    case 'userspace':
      return { kind: 'userspace', reason: 'requested' };
    case 'auto':
      if (caps.nft) return { kind: 'nftables', reason: 'auto: nft works' };
      if (caps.ipvs) return { kind: 'ipvs', reason: 'auto: nft unusable, /proc/net/ip_vs present' };
      return { kind: 'userspace', reason: 'auto: neither nft nor IPVS usable' };
    default:
      throw new Error(`invalid --lb-dataplane "${String(prefer)}"; use auto, nftables, ipvs or userspace`);
  }
}

/** Probe the host and build the chosen dataplane (not yet synced). */
export async function chooseDataplane(opts: ChooseOptions = {}): Promise<Chosen> {
  const capabilities = opts.capabilities ?? (await probeHost({ netns: opts.netns }));
  const { kind, reason } = decideDataplane(opts.prefer ?? 'auto', capabilities);
  const dataplane: Dataplane =
    kind === 'nftables' ? new NftDataplane({ netns: opts.netns, ...opts.nft })
    : kind === 'ipvs' ? new IpvsDataplane({ netns: opts.netns, ...opts.ipvs })
    : new UserspaceDataplane(opts.userspace);
  return { kind, dataplane, reason, capabilities };
}
