import type { Node, Service } from '@shoal/api';
import { goDuration } from './duration.js';
import { formatTable } from './table.js';
import { prettyEnum } from './text.js';

/**
 * `inspect --pretty` renderings: `Key: value` lines, nested keys indented by one space, values
 * aligned per block, in the spirit of Docker's pretty templates (not byte-identical).
 */
type Line = [string, string] | [string];

function render(lines: Line[]): string {
  // Align values of consecutive key/value lines; section headers (one cell) break the blocks.
  let outText = '';
  let block: string[][] = [];
  const flush = () => {
    if (block.length) outText += formatTable(block, { minWidth: 0, padding: 1 });
    block = [];
  };
  for (const l of lines) {
    if (l.length === 1) {
      flush();
      outText += `${l[0]}\n`;
    } else {
      block.push([`${l[0]}:`, l[1]]);
    }
  }
  flush();
  return outText;
}

/** Bytes in Docker's binary units (`units.BytesSize`): `1.944GiB`. */
export function bytesSize(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number(v.toPrecision(4))}${units[i]}`;
}

/** `node inspect --pretty`. */
export function prettyNode(n: Node): string {
  const lines: Line[] = [
    ['ID', n.id],
    ...(n.spec.name ? [['Name', n.spec.name] as Line] : []),
    ...(Object.keys(n.spec.labels).length ? [['Labels:'] as Line, ...Object.entries(n.spec.labels).map(([k, v]) => [` - ${k}`, v] as Line)] : []),
    ['Hostname', n.description?.hostname ?? ''],
    ['Joined at', n.meta.createdAt],
    ['Status:'],
    [' State', prettyEnum(n.status.state)],
    [' Availability', prettyEnum(n.spec.availability)],
    [' Address', n.status.addr],
  ];
  if (n.status.message) lines.push([' Message', n.status.message]);
  if (n.managerStatus) {
    lines.push(['Manager Status:'], [' Address', n.managerStatus.addr], [' Raft Status', prettyEnum(n.managerStatus.reachability)], [' Leader', n.managerStatus.leader ? 'Yes' : 'No']);
  }
  if (n.description) {
    lines.push(['Platform:'], [' Operating System', n.description.platform.os], [' Architecture', n.description.platform.architecture]);
    lines.push(['Resources:'], [' CPUs', String(n.description.resources.nanoCpus / 1e9)], [' Memory', bytesSize(n.description.resources.memoryBytes)]);
    lines.push(['Engine Version', n.description.engine.engineVersion]);
    if (n.description.dataplane) lines.push(['Dataplane', n.description.dataplane]);
  }
  return render(lines);
}

/** `service inspect --pretty`. */
export function prettyService(s: Service): string {
  const spec = s.spec;
  const c = spec.task.container;
  const lines: Line[] = [['ID', s.id], ['Name', spec.name]];
  if (Object.keys(spec.labels).length) {
    lines.push(['Labels:']);
    for (const [k, v] of Object.entries(spec.labels)) lines.push([` ${k}`, v]);
  }
  if ('replicated' in spec.mode) lines.push(['Service Mode', 'Replicated'], [' Replicas', String(spec.mode.replicated.replicas)]);
  else if ('replicatedJob' in spec.mode) {
    lines.push(['Service Mode', 'Replicated Job'], [' Max Concurrent', String(spec.mode.replicatedJob.maxConcurrent)], [' Total Completions', String(spec.mode.replicatedJob.totalCompletions)]);
  } else lines.push(['Service Mode', 'globalJob' in spec.mode ? 'Global Job' : 'Global']);
  if (s.jobStatus) lines.push(['JobStatus:'], [' Job Iteration', String(s.jobStatus.jobIteration)], [' Last Execution', s.jobStatus.lastExecution]);
  if (s.updateStatus) {
    lines.push(['UpdateStatus:'], [' State', s.updateStatus.state]);
    if (s.updateStatus.startedAt) lines.push([' Started', s.updateStatus.startedAt]);
    if (s.updateStatus.completedAt) lines.push([' Completed', s.updateStatus.completedAt]);
    lines.push([' Message', s.updateStatus.message]);
  }
  lines.push(['Placement:']);
  if (spec.task.placement.constraints.length) lines.push([' Constraints', `[${spec.task.placement.constraints.join(' ')}]`]);
  const prefs = spec.task.placement.preferences ?? [];
  if (prefs.length) lines.push([' Preferences', `[${prefs.map((p) => `spread=${p.spread}`).join(' ')}]`]);
  if (spec.task.placement.maxReplicas) lines.push([' Max Replicas Per Node', String(spec.task.placement.maxReplicas)]);
  for (const [title, u] of [['UpdateConfig', spec.update], ['RollbackConfig', spec.rollback]] as const) {
    if (!u) continue;
    lines.push([`${title}:`], [' Parallelism', String(u.parallelism)]);
    if (u.delayMs) lines.push([' Delay', goDuration(u.delayMs)]);
    lines.push([' On failure', u.failureAction], [' Monitoring Period', goDuration(u.monitorMs)], [' Max failure ratio', String(u.maxFailureRatio)], [title === 'UpdateConfig' ? ' Update order' : ' Rollback order', u.order]);
  }
  lines.push(['ContainerSpec:'], [' Image', c.image]);
  if (c.command?.length) lines.push([' Command', c.command.join(' ')]);
  if (c.args?.length) lines.push([' Args', c.args.join(' ')]);
  if (c.env?.length) lines.push([' Env', c.env.join(' ')]);
  if (c.hostname) lines.push([' Hostname', c.hostname]);
  lines.push(...runtimeLines(s));
  if (c.secrets?.length) {
    lines.push([' Secrets:']);
    for (const r of c.secrets) lines.push(['  Target', r.file.name], ['   Source', r.secretName]);
  }
  if (c.configs?.length) {
    lines.push([' Configs:']);
    for (const r of c.configs) lines.push(['  Target', r.file.name], ['   Source', r.configName]);
  }
  const hc = c.healthcheck;
  if (hc) {
    lines.push([' Healthcheck:']);
    if (hc.test[0] === 'NONE') lines.push(['  Test', 'NONE (disabled)']);
    else lines.push(['  Test', hc.test.length ? hc.test.join(' ') : '(the image\'s)']);
    if (hc.intervalMs) lines.push(['  Interval', goDuration(hc.intervalMs)]);
    if (hc.timeoutMs) lines.push(['  Timeout', goDuration(hc.timeoutMs)]);
    if (hc.startPeriodMs) lines.push(['  Start Period', goDuration(hc.startPeriodMs)]);
    if (hc.retries) lines.push(['  Retries', String(hc.retries)]);
  }
  lines.push(...runtimeSections(s));
  const r = spec.task.resources?.reservations;
  const lim = spec.task.resources?.limits;
  const generic = r?.genericResources ?? [];
  const hasRes = !!(r && (r.nanoCpus || r.memoryBytes || generic.length));
  const hasLim = !!(lim && (lim.nanoCpus || lim.memoryBytes || lim.pids));
  if (hasRes || hasLim) lines.push(['Resources:']);
  if (hasRes) {
    lines.push([' Reservations:']);
    if (r!.nanoCpus) lines.push(['  CPU', String(r!.nanoCpus / 1e9)]);
    if (r!.memoryBytes) lines.push(['  Memory', bytesSize(r!.memoryBytes)]);
    for (const g of generic) lines.push([`  ${g.kind}`, String(g.value)]);
  }
  if (hasLim) {
    lines.push([' Limits:']);
    if (lim!.nanoCpus) lines.push(['  CPU', String(lim!.nanoCpus / 1e9)]);
    if (lim!.memoryBytes) lines.push(['  Memory', bytesSize(lim!.memoryBytes)]);
    if (lim!.pids) lines.push(['  PIDs', String(lim!.pids)]);
  }
  const log = spec.task.logDriver;
  if (log) {
    lines.push(['Log Driver:'], [' Name', log.name]);
    if (Object.keys(log.options).length) {
      lines.push([' LogOpts:']);
      for (const [k, v] of Object.entries(log.options)) lines.push([`  ${k}`, v]);
    }
  }
  if (spec.task.networks.length) lines.push(['Networks', spec.task.networks.map((n) => n.target).join(' ')]);
  lines.push(['Endpoint Mode', spec.endpoint?.mode ?? 'vip']);
  const ports = s.endpoint?.ports ?? spec.endpoint?.ports ?? [];
  if (ports.length) {
    lines.push(['Ports:']);
    for (const p of ports) {
      lines.push([` PublishedPort = ${p.publishedPort}`], [`  Protocol = ${p.protocol}`], [`  TargetPort = ${p.targetPort}`], [`  PublishMode = ${p.publishMode}`]);
    }
  }
  return render(lines);
}

/** The runtime options of a service's container (issue 9), in the order of Docker's pretty template, then Shoal's extras. */
function runtimeLines(s: Service): Line[] {
  const c = s.spec.task.container;
  const out: Line[] = [];
  if (c.dir) out.push([' Dir', c.dir]);
  if (c.init !== undefined) out.push([' Init', String(c.init)]);
  if (c.user) out.push([' User', c.user]);
  if (c.groups?.length) out.push([' Groups', c.groups.join(' ')]);
  if (c.tty) out.push([' TTY', 'true']);
  if (c.readOnly) out.push([' Read Only', 'true']);
  if (c.stopSignal) out.push([' Stop Signal', c.stopSignal]);
  const dns = c.dnsConfig;
  if (dns?.nameservers?.length) out.push([' DNS', dns.nameservers.join(' ')]);
  if (dns?.search?.length) out.push([' DNS Search', dns.search.join(' ')]);
  if (dns?.options?.length) out.push([' DNS Options', dns.options.join(' ')]);
  if (c.hosts?.length) out.push([' Hosts', c.hosts.join(', ')]);
  return out;
}

/** The sections after the container's own lines: capabilities, sysctls, ulimits, mounts. */
function runtimeSections(s: Service): Line[] {
  const c = s.spec.task.container;
  const out: Line[] = [];
  if (c.capabilityAdd?.length || c.capabilityDrop?.length) {
    out.push(['Capabilities:']);
    if (c.capabilityAdd?.length) out.push([' Add', c.capabilityAdd.join(', ')]);
    if (c.capabilityDrop?.length) out.push([' Drop', c.capabilityDrop.join(', ')]);
  }
  if (c.sysctls && Object.keys(c.sysctls).length) {
    out.push(['SysCtls:']);
    for (const [k, v] of Object.entries(c.sysctls)) out.push([` ${k}`, v]);
  }
  if (c.ulimits?.length) {
    out.push(['Ulimits:']);
    for (const u of c.ulimits) out.push([` ${u.name}`, `${u.soft}:${u.hard}`]);
  }
  if (c.mounts?.length) {
    out.push(['Mounts:']);
    for (const m of c.mounts) {
      out.push([' Target', m.target], ['  Source', m.source ?? ''], ['  ReadOnly', String(m.readOnly ?? false)], ['  Type', m.type]);
      const d = m.volumeOptions?.driverConfig;
      if (d) out.push(['  Driver', [d.name, ...Object.entries(d.options ?? {}).map(([k, v]) => `${k}=${v}`)].join(' ')]);
      if (m.tmpfsOptions?.sizeBytes) out.push(['  Size', bytesSize(m.tmpfsOptions.sizeBytes)]);
      if (m.tmpfsOptions?.mode !== undefined) out.push(['  Mode', m.tmpfsOptions.mode.toString(8)]);
    }
  }
  return out;
}
