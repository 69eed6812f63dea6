/**
 * Conntrack clean-up for backends that left a service (docs/NETWORKING.md, "Load-balancer backends"): NAT is
 * decided on a flow's first packet, so removing a backend from the map keeps established flows
 * (the drain); on a hard removal their entries must go, UDP especially (kube-proxy does the same).
 */
import type { L4Protocol } from './table.js';
import { run } from './exec.js';

export const CONNTRACK = '/usr/sbin/conntrack';

/** argv deleting the DNATed flows of one backend (pure). */
export function conntrackDeleteArgv(protocol: L4Protocol, ip: string): string[] {
  return [CONNTRACK, '-D', '-p', protocol, '--dst-nat', ip];
}

/**
 * Delete DNATed conntrack entries towards each removed backend. Skips quietly when the
 * `conntrack` tool is not installed. Exit 1 with "0 flow entries" is not an error.
 * @returns how many commands ran (0 when skipped).
 */
export async function conntrackCleanup(removed: { protocol: L4Protocol; ip: string }[], opts: { netns?: string } = {}): Promise<number> {
  const seen = new Set<string>();
  let n = 0;
  for (const r of removed) {
    const k = `${r.protocol}/${r.ip}`;
    if (seen.has(k)) continue;
    seen.add(k);
    const res = await run(conntrackDeleteArgv(r.protocol, r.ip), { netns: opts.netns, timeoutMs: 10000 });
    if (res.code === 127) return n; // not installed: skip quietly
    n++;
  }
  return n;
}
