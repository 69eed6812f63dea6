/**
 * Glue from the object model (`@shoal/api` Service/Task) to the dataplane inputs: the
 * {@link ServiceTable} every host's Dataplane is synced to and the {@link DnsRecords} its resolver
 * serves. Pure; the agent calls both whenever its view of services/tasks changes (the same view on
 * every node: backends on all nodes, not only local tasks).
 */
import type { Service, Task } from '@shoal/api';
import type { HairpinNet, LbBackend, LbService, ServiceTable } from './table.js';
import type { DnsRecords, DnsServiceRecord } from './dns.js';

/**
 * Backend state of a task: `active` when RUNNING and meant to run; `draining` while RUNNING but
 * told to stop (removed from the LB first, then stopped after the drain delay); `null` otherwise.
 * Health checks need nothing here: the agent keeps a task with a health check STARTING until the
 * engine reports it healthy and makes it FAILED when it turns unhealthy, so RUNNING means healthy.
 */
export type BackendStateOf = (task: Task) => LbBackend['state'] | null;

export const defaultBackendState: BackendStateOf = (t) => {
  if (t.status.state !== 'running') return null;
  return t.desiredState === 'running' ? 'active' : 'draining';
};

/** The task's address on a network, without prefix length, or undefined. */
export function taskAddress(t: Task, networkId: string): string | undefined {
  return t.networks.find((n) => n.networkId === networkId)?.addresses[0]?.split('/')[0];
}

export interface TableFromApiOptions {
  clusterCidr?: string;
  hairpin?: HairpinNet[];
  backendState?: BackendStateOf;
}

/**
 * One {@link LbService} per (service, VIP): id = service id for its first VIP, `<serviceId>x<first 8
 * of networkId>` for the others; ingress-mode published ports are attached to the first entry
 * only (they are node-wide); `vipAllPorts` is on (swarm forwards every port of a VIP). A dnsrr
 * service with ingress ports gets a VIP-less entry for the mesh.
 */
export function serviceTableFromApi(services: readonly Service[], tasks: readonly Task[], opts: TableFromApiOptions = {}): ServiceTable {
  const state = opts.backendState ?? defaultBackendState;
  const byService = new Map<string, Task[]>();
  for (const t of tasks) {
    const l = byService.get(t.serviceId) ?? [];
    l.push(t);
    byService.set(t.serviceId, l);
  }
  const out: LbService[] = [];
  for (const s of services) {
    const ports = s.endpoint?.ports ?? s.spec.endpoint?.ports ?? [];
    const lbPorts = ports.map((p) => ({ protocol: p.protocol, targetPort: p.targetPort, publishedPort: p.publishMode === 'ingress' && p.publishedPort ? p.publishedPort : undefined }));
    const vips = s.endpoint?.virtualIps ?? [];
    const backendsOn = (networkId: string | undefined): LbBackend[] => {
      const bs: LbBackend[] = [];
      for (const t of byService.get(s.id) ?? []) {
        const st = state(t);
        const ip = networkId ? taskAddress(t, networkId) : t.networks[0]?.addresses[0]?.split('/')[0];
        if (st && ip) bs.push({ ip, taskId: t.id, state: st });
      }
      return bs;
    };
    if (vips.length === 0) {
      const mesh = lbPorts.filter((p) => p.publishedPort);
      if (mesh.length) out.push({ id: s.id, name: s.spec.name, ports: mesh, backends: backendsOn(undefined) });
      continue;
    }
    vips.forEach((v, i) => {
      out.push({
        id: i === 0 ? s.id : `${s.id}x${v.networkId.replace(/[^a-z0-9]/g, '').slice(0, 8)}`,
        name: s.spec.name,
        vip: v.addr.split('/')[0]!,
        vipAllPorts: true,
        ports: i === 0 ? lbPorts : lbPorts.map((p) => ({ protocol: p.protocol, targetPort: p.targetPort })),
        backends: backendsOn(v.networkId),
      });
    });
  }
  return { services: out, clusterCidr: opts.clusterCidr, hairpin: opts.hairpin };
}

/**
 * DNS records: per service and attached network, its VIP (vip mode) and the addresses of its
 * `active` tasks; clients = every non-terminal task with an address, scoped to its networks.
 * Network aliases from `spec.task.networks[].aliases` become extra names.
 */
export function dnsRecordsFromApi(services: readonly Service[], tasks: readonly Task[], opts: { backendState?: BackendStateOf } = {}): DnsRecords {
  const state = opts.backendState ?? defaultBackendState;
  const recs: DnsServiceRecord[] = [];
  for (const s of services) {
    const mine = tasks.filter((t) => t.serviceId === s.id && state(t) === 'active');
    const mode = s.spec.endpoint?.mode ?? 'vip';
    for (const n of s.spec.task.networks) {
      const vip = s.endpoint?.virtualIps.find((v) => v.networkId === n.target)?.addr.split('/')[0];
      recs.push({
        name: s.spec.name, aliases: n.aliases, networkId: n.target, mode, vip: mode === 'vip' ? vip : undefined,
        taskIps: mine.map((t) => taskAddress(t, n.target)).filter((x): x is string => !!x),
      });
    }
  }
  const clients: DnsRecords['clients'] = [];
  for (const t of tasks) {
    if (['complete', 'shutdown', 'failed', 'rejected', 'remove', 'orphaned'].includes(t.status.state)) continue;
    for (const n of t.networks) {
      const ip = n.addresses[0]?.split('/')[0];
      if (ip) clients.push({ ip, networks: t.networks.map((x) => x.networkId) });
    }
  }
  return { services: recs, clients };
}
