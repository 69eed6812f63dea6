import type Dockerode from 'dockerode';
import type { Mount, Task } from '@shoal/api';
import { expandTemplate, type TemplateContext } from '@shoal/agent';
import { engineMessage, statusCodeOf } from './docker-host.js';

/**
 * The runtime options of a task's container on the Engine API, the way moby's swarm executor maps a
 * ContainerSpec (`daemon/cluster/executor/container/container.go` `hostConfig`, `resources`,
 * `config`): mounts, limits, process options, DNS, extra hosts, log driver.
 */

/** Label every volume Shoal creates carries; its value is the service that created it. */
export const VOLUME_LABEL = 'shoal.volume';

/** The task's mounts with templates (`{{.Task.Slot}}`, …) expanded in source and target. */
export function expandedMounts(task: Task, ctx: TemplateContext): Mount[] {
  return (task.spec.container.mounts ?? []).map((m) => ({
    ...m,
    target: expandTemplate(m.target, ctx),
    ...(m.source ? { source: expandTemplate(m.source, ctx) } : {}),
  }));
}

/**
 * Creates the task's named volumes that this node's engine does not have yet (moby's
 * `adapter.createVolumes`): driver `local` unless the mount names one, its driver options and
 * volume labels, plus `shoal.volume=<service>`. An existing volume is used as it is — it outlives
 * tasks, their replacements and `shoald` restarts, and Shoal never removes it.
 * @throws Error with the engine's reason (unknown driver, bad options) — the task is REJECTED.
 */
export async function ensureVolumes(docker: Dockerode, task: Task, ctx: TemplateContext): Promise<void> {
  for (const m of expandedMounts(task, ctx)) {
    if (m.type !== 'volume' || !m.source) continue;
    try {
      await docker.getVolume(m.source).inspect();
      continue;
    } catch (err) {
      if (statusCodeOf(err) !== 404) throw new Error(`inspect volume ${m.source}: ${engineMessage(err)}`);
    }
    const d = m.volumeOptions?.driverConfig;
    try {
      await docker.createVolume({
        Name: m.source,
        Driver: d?.name || 'local',
        DriverOpts: d?.options ?? {},
        Labels: { ...(m.volumeOptions?.labels ?? {}), [VOLUME_LABEL]: task.serviceName },
      });
    } catch (err) {
      throw new Error(`create volume ${m.source}: ${engineMessage(err)}`);
    }
  }
}

/** One mount as the Engine API's `HostConfig.Mounts` entry. */
export function engineMount(m: Mount, serviceName: string): Record<string, unknown> {
  const out: Record<string, unknown> = { Type: m.type, Target: m.target };
  if (m.source) out['Source'] = m.source;
  if (m.readOnly) out['ReadOnly'] = true;
  if (m.consistency) out['Consistency'] = m.consistency;
  if (m.bindOptions) {
    out['BindOptions'] = {
      ...(m.bindOptions.propagation ? { Propagation: m.bindOptions.propagation } : {}),
      ...(m.bindOptions.nonRecursive ? { NonRecursive: true } : {}),
      ...(m.bindOptions.createMountpoint ? { CreateMountpoint: true } : {}),
    };
  }
  if (m.type === 'volume') {
    const v = m.volumeOptions;
    // A named volume exists by now (ensureVolumes); an anonymous one is created by the engine with
    // the mount's driver and labels, and removed with the container.
    const anon = !m.source;
    const opts: Record<string, unknown> = {
      ...(v?.noCopy ? { NoCopy: true } : {}),
      ...(v?.subpath ? { Subpath: v.subpath } : {}),
      ...(anon ? { Labels: { ...(v?.labels ?? {}), [VOLUME_LABEL]: serviceName } } : {}),
      ...(anon && v?.driverConfig ? { DriverConfig: { Name: v.driverConfig.name, Options: v.driverConfig.options ?? {} } } : {}),
    };
    if (Object.keys(opts).length) out['VolumeOptions'] = opts;
  }
  if (m.tmpfsOptions) {
    out['TmpfsOptions'] = {
      ...(m.tmpfsOptions.sizeBytes ? { SizeBytes: m.tmpfsOptions.sizeBytes } : {}),
      ...(m.tmpfsOptions.mode !== undefined ? { Mode: m.tmpfsOptions.mode } : {}),
    };
  }
  return out;
}

/**
 * Sets the runtime options of `task` on the container create options `o` (moby's mapping):
 * mounts, `--limit-*` (Memory, NanoCpus, PidsLimit), groups, init, tty, read-only root, sysctls,
 * capabilities, ulimits, DNS (the node's service resolver `serviceDns` first, then `--dns`), extra
 * hosts (`IP name…` → `name:IP`), the log driver, and `DOCKER_RESOURCE_<KIND>=<n>` for reserved
 * generic resources.
 */
export function applyRuntimeOptions(o: Dockerode.ContainerCreateOptions, task: Task, ctx: TemplateContext, serviceDns: readonly string[]): void {
  const c = task.spec.container;
  const hc = (o.HostConfig ??= {});
  const mounts = expandedMounts(task, ctx);
  if (mounts.length) hc.Mounts = mounts.map((m) => engineMount(m, task.serviceName)) as unknown as Dockerode.MountConfig;
  const limits = task.spec.resources?.limits;
  if (limits?.nanoCpus) hc.NanoCpus = limits.nanoCpus;
  if (limits?.memoryBytes) hc.Memory = limits.memoryBytes;
  if (limits?.pids) hc.PidsLimit = limits.pids;
  if (c.groups?.length) hc.GroupAdd = [...c.groups];
  if (c.init !== undefined) hc.Init = c.init;
  if (c.readOnly) hc.ReadonlyRootfs = true;
  if (c.tty) o.Tty = true;
  if (c.sysctls && Object.keys(c.sysctls).length) hc.Sysctls = { ...c.sysctls };
  if (c.capabilityAdd?.length) hc.CapAdd = [...c.capabilityAdd];
  if (c.capabilityDrop?.length) hc.CapDrop = [...c.capabilityDrop];
  if (c.ulimits?.length) hc.Ulimits = c.ulimits.map((u) => ({ Name: u.name, Soft: u.soft, Hard: u.hard }));
  const dns = [...serviceDns, ...(c.dnsConfig?.nameservers ?? [])];
  if (dns.length) hc.Dns = dns;
  if (c.dnsConfig?.search?.length) hc.DnsSearch = [...c.dnsConfig.search];
  if (c.dnsConfig?.options?.length) hc.DnsOptions = [...c.dnsConfig.options];
  const extra: string[] = [];
  for (const line of c.hosts ?? []) {
    const [ip, ...names] = line.trim().split(/\s+/);
    for (const n of names) extra.push(`${n}:${ip}`);
  }
  if (extra.length) hc.ExtraHosts = extra;
  const log = task.spec.logDriver;
  if (log?.name) hc.LogConfig = { Type: log.name, Config: { ...log.options } };
  const generic = task.spec.resources?.reservations?.genericResources ?? [];
  if (generic.length) o.Env = [...(o.Env ?? []), ...generic.map((g) => `DOCKER_RESOURCE_${g.kind.toUpperCase()}=${g.value}`)];
}
