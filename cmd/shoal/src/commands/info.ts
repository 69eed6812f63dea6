import type { SwarmInfo } from '@shoal/api';
import { renderTemplate } from '../format/template.js';
import { type Args, connect, out, str } from './common.js';

/** The Swarm part of `docker info`, with Docker's field names (for `--format`). */
export function dockerSwarmInfo(i: SwarmInfo): Record<string, unknown> {
  return {
    NodeID: i.nodeId,
    LocalNodeState: i.localNodeState,
    ControlAvailable: i.role === 'manager' && i.localNodeState === 'active',
    Error: i.error ?? '',
    RemoteManagers: (i.managers ?? []).map((m) => ({ NodeID: m.nodeId, Addr: m.addr })),
    Nodes: i.nodes ?? 0,
    Managers: i.managers?.length ?? 0,
    Cluster: { ID: i.clusterId ?? '' },
  };
}

/** Human text of `info`'s Swarm section (Docker's layout). */
export function swarmInfoText(i: SwarmInfo): string {
  const lines = [`Swarm: ${i.localNodeState}`];
  if (i.localNodeState === 'active' || i.nodeId) lines.push(` NodeID: ${i.nodeId}`);
  if (i.error) lines.push(` Error: ${i.error}`);
  if (i.localNodeState === 'active') {
    lines.push(` Is Manager: ${i.role === 'manager'}`);
    if (i.role === 'manager') {
      if (i.clusterId) lines.push(` ClusterID: ${i.clusterId}`);
      lines.push(` Managers: ${i.managers?.length ?? 0}`, ` Nodes: ${i.nodes ?? 0}`);
      if (i.leaderId) lines.push(` Leader: ${i.leaderId}${i.isLeader ? ' (this node)' : ''}`);
    }
    if (i.managers?.length) {
      lines.push(' Manager Addresses:');
      for (const m of i.managers) lines.push(`  ${m.addr}${m.reachable ? '' : ' (unreachable)'}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** `info [--format TEMPLATE]`: the node's swarm state. */
export async function info(a: Args): Promise<void> {
  const i = await connect(a)('swarm.info', {});
  const format = str(a, 'format');
  if (format !== undefined) out(`${renderTemplate(format, { Swarm: dockerSwarmInfo(i), Shoal: i })}\n`);
  else out(swarmInfoText(i));
}
