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
  else lines.push(['Service Mode', 'Global']);
  if (s.updateStatus) {
    lines.push(['UpdateStatus:'], [' State', s.updateStatus.state]);
    if (s.updateStatus.startedAt) lines.push([' Started', s.updateStatus.startedAt]);
    if (s.updateStatus.completedAt) lines.push([' Completed', s.updateStatus.completedAt]);
    lines.push([' Message', s.updateStatus.message]);
  }
  lines.push(['Placement:']);
  if (spec.task.placement.constraints.length) lines.push([' Constraints', `[${spec.task.placement.constraints.join(' ')}]`]);
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
  const r = spec.task.resources?.reservations;
  if (r && (r.nanoCpus || r.memoryBytes)) {
    lines.push(['Resources:'], [' Reservations:']);
    if (r.nanoCpus) lines.push(['  CPU', String(r.nanoCpus / 1e9)]);
    if (r.memoryBytes) lines.push(['  Memory', bytesSize(r.memoryBytes)]);
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
