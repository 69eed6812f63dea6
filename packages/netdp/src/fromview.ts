/**
 * Glue from the dispatcher's cluster-wide {@link NetworkView} (`@shoal/api`) to the dataplane
 * inputs: the {@link ServiceTable} (same on every node, but for the hairpin subnet) and the
 * {@link DnsRecords} of the node's resolver. Pure. In the routed overlay a task has one address
 * that serves every network it is attached to, so a service's backends are the same on each of
 * its VIPs (docs/NETWORKING.md).
 */
import type { NetworkView } from '@shoal/api';
import type { HairpinNet, LbBackend, LbService, ServiceTable } from './table.js';
import type { DnsRecords, DnsServiceRecord } from './dns.js';

/** LbService id of a service's VIP on its i-th network (first = the service id). */
export function lbServiceId(serviceId: string, networkId: string, i: number): string {
  return i === 0 ? serviceId : `${serviceId}x${networkId.replace(/[^a-z0-9]/g, '').slice(0, 8)}`;
}

/**
 * One {@link LbService} per (service, VIP), with `vipAllPorts` (swarm forwards every port of a
 * VIP); ingress-mode published ports on the first entry only (they are node-wide); a service
 * without VIPs (dnsrr) but with ingress ports gets a VIP-less entry for the mesh. Backends: the
 * service's tasks that are `active` or `draining` in the view. Host-mode ports are not here
 * (the engine binds them where a task runs).
 */
export function serviceTableFromView(view: NetworkView, opts: { hairpin?: HairpinNet[] } = {}): ServiceTable {
  const byService = new Map<string, LbBackend[]>();
  for (const t of view.tasks) {
    if (!t.backend) continue;
    const l = byService.get(t.serviceId) ?? [];
    l.push({ ip: t.addr, taskId: t.id, state: t.backend });
    byService.set(t.serviceId, l);
  }
  const out: LbService[] = [];
  for (const s of view.services) {
    const ports = s.ports.map((p) => ({ protocol: p.protocol, targetPort: p.targetPort, publishedPort: p.publishMode === 'ingress' && p.publishedPort ? p.publishedPort : undefined }));
    const backends = byService.get(s.id) ?? [];
    if (s.virtualIps.length === 0) {
      const mesh = ports.filter((p) => p.publishedPort);
      if (mesh.length) out.push({ id: s.id, name: s.name, ports: mesh, backends: backends.map((b) => ({ ...b })) });
      continue;
    }
    s.virtualIps.forEach((v, i) => {
      out.push({
        id: lbServiceId(s.id, v.networkId, i), name: s.name, vip: v.addr.split('/')[0]!, vipAllPorts: true,
        ports: i === 0 ? ports : ports.map((p) => ({ protocol: p.protocol, targetPort: p.targetPort })),
        backends: backends.map((b) => ({ ...b })),
      });
    });
  }
  return { services: out, clusterCidr: view.clusterCidr, ...(opts.hairpin ? { hairpin: opts.hairpin } : {}) };
}

/**
 * DNS records: per service and attached network its name (+ aliases), the VIP on that network
 * (vip mode) and the addresses of its `active` tasks; clients = every task of the view, scoped
 * to the networks it is attached to.
 */
export function dnsRecordsFromView(view: NetworkView): DnsRecords {
  const active = new Map<string, string[]>();
  for (const t of view.tasks) {
    if (t.backend !== 'active') continue;
    const l = active.get(t.serviceId) ?? [];
    l.push(t.addr);
    active.set(t.serviceId, l);
  }
  const services: DnsServiceRecord[] = [];
  for (const s of view.services) {
    for (const n of s.networks) {
      const vip = s.virtualIps.find((v) => v.networkId === n.id)?.addr.split('/')[0];
      services.push({
        name: s.name, ...(n.aliases?.length ? { aliases: n.aliases } : {}), networkId: n.id, mode: s.mode,
        ...(s.mode === 'vip' && vip ? { vip } : {}), taskIps: [...(active.get(s.id) ?? [])],
      });
    }
  }
  return { services, clients: view.tasks.map((t) => ({ ip: t.addr, networks: [...t.networks] })) };
}
