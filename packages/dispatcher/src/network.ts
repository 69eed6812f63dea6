import { DEFAULTS, handoffPending, isTerminal, type Network, type NetworkView, type Node, type Service, type Task } from '@shoal/api';

export interface NetworkViewOptions {
  /** Cluster overlay CIDR (default `DEFAULTS.overlay.clusterCidr`). */
  clusterCidr?: string;
  /** VIP range (default `DEFAULTS.overlay.vipCidr`). */
  vipCidr?: string;
}

/** Host part of `host:port` / `[v6]:port` / a bare host. */
export function hostOf(addr: string): string {
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(addr);
  if (m) return m[1]!;
  const i = addr.lastIndexOf(':');
  return i > 0 && addr.indexOf(':') === i ? addr.slice(0, i) : addr;
}

/**
 * The cluster-wide {@link NetworkView} every node's dataplane and DNS are programmed from (pure;
 * docs/NETWORKING.md). Rules:
 * - nodes: those with an overlay subnet and an address, not Down (a Down node's peers entries go);
 * - services: all of them; attached networks resolved to IDs (by ID or name),
 *   the ingress network left out (it only scopes VIPs of published ports);
 * - tasks: those with a data-path address (`status.networkAddrs`) whose observed state is not
 *   terminal, on a node that is not Down. Backend `active` = running, node Ready, and desired
 *   running — or desired past running while handing its slot over to a replacement that is not
 *   RUNNING yet ({@link handoffPending} at `data.nowMs`: a drained task of a start-first service
 *   still serves); `draining` = running, desired past running (no handoff pending), node Ready;
 *   else `null` (a DNS client only).
 * Sorted by id throughout, so equal states give equal JSON.
 * `data.nowMs`: the time (ms since the epoch) handoffs are judged at; default `Date.now()`.
 */
export function buildNetworkView(
  data: { nodes: readonly Node[]; services: readonly Service[]; tasks: readonly Task[]; networks: readonly Network[]; nowMs?: number },
  opts: NetworkViewOptions = {},
): NetworkView {
  const byId = <T extends { id: string }>(a: T, b: T) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  const nodeState = new Map(data.nodes.map((n) => [n.id, n.status.state]));
  const nodes: NetworkView['nodes'] = [];
  for (const n of [...data.nodes].sort(byId)) {
    if (!n.overlay || n.status.state === 'down') continue;
    const addr = hostOf(n.status.addr ?? '');
    if (!addr) continue;
    nodes.push({ id: n.id, addr, subnet: n.overlay.subnet, vtepMac: n.overlay.vtepMac, state: n.status.state });
  }
  const netIds = new Map<string, string>();
  for (const n of data.networks) {
    if (n.spec.ingress) continue;
    netIds.set(n.id, n.id);
    if (!netIds.has(n.spec.name)) netIds.set(n.spec.name, n.id);
  }
  const services: NetworkView['services'] = [];
  for (const s of [...data.services].sort(byId)) {
    const networks: NetworkView['services'][number]['networks'] = [];
    for (const a of s.spec.task.networks) {
      const id = netIds.get(a.target);
      if (!id || networks.some((x) => x.id === id)) continue;
      networks.push(a.aliases?.length ? { id, aliases: [...a.aliases] } : { id });
    }
    services.push({
      id: s.id, name: s.spec.name, mode: s.spec.endpoint?.mode ?? 'vip',
      ports: structuredClone(s.endpoint?.ports ?? []),
      virtualIps: structuredClone(s.endpoint?.virtualIps ?? []),
      networks,
    });
  }
  const nowMs = data.nowMs ?? Date.now();
  const taskById = new Map(data.tasks.map((t) => [t.id, t]));
  const tasks: NetworkView['tasks'] = [];
  for (const t of [...data.tasks].sort(byId)) {
    const addr = t.status.networkAddrs?.[0]?.split('/')[0];
    if (!addr || isTerminal(t.status.state)) continue;
    const st = nodeState.get(t.nodeId);
    if (!st || st === 'down') continue;
    let backend: NetworkView['tasks'][number]['backend'] = null;
    if (t.status.state === 'running' && st === 'ready') {
      const serving = t.desiredState === 'running' || (t.handoff !== undefined && handoffPending(t, taskById.get(t.handoff.to), nowMs));
      backend = serving ? 'active' : 'draining';
    }
    tasks.push({ id: t.id, serviceId: t.serviceId, nodeId: t.nodeId, addr, networks: t.networks.map((a) => a.networkId).sort(), backend });
  }
  return {
    clusterCidr: opts.clusterCidr ?? DEFAULTS.overlay.clusterCidr,
    vipCidr: opts.vipCidr ?? DEFAULTS.overlay.vipCidr,
    nodes, services, tasks,
  };
}
