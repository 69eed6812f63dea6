/**
 * Text views of a {@link FakeCluster} for scenario files: stable (no IDs, no times), one line per
 * object, in the order the CLI lists them.
 */
import type { Node, ServiceSummary, Task, TaskList } from '@shoal/api';
import type { FakeCluster } from './cluster.js';

/** `web.1`, or `agent.node2` for a global service's task. */
export function taskName(t: Task, nodes: Record<string, string>): string {
  return t.slot > 0 ? `${t.serviceName}.${t.slot}` : `${t.serviceName}.${nodes[t.nodeId] ?? t.nodeId ?? '-'}`;
}

/**
 * One line per task, as `service ps` lists them (by service, slot, newest first):
 * `NAME NODE DESIRED CURRENT ["ERROR"]`.
 */
export function renderTasks(list: TaskList, hostOf: (nodeId: string) => string): string {
  const nodes: Record<string, string> = {};
  for (const t of list.tasks) if (t.nodeId) nodes[t.nodeId] = hostOf(t.nodeId);
  return list.tasks
    .map((t) => {
      const err = t.status.err ? ` ${JSON.stringify(t.status.err)}` : '';
      return `${taskName(t, nodes)} ${t.nodeId ? nodes[t.nodeId] : '-'} ${t.desiredState} ${t.status.state}${err}`;
    })
    .join('\n');
}

/** One line per node: `NAME STATE AVAILABILITY ROLE [leader|reachable|unreachable]`, by name. */
export function renderNodes(nodes: Node[]): string {
  return [...nodes]
    .sort((a, b) => (a.description?.hostname ?? '').localeCompare(b.description?.hostname ?? '', undefined, { numeric: true }))
    .map((n) => {
      const ms = n.managerStatus ? ` ${n.managerStatus.leader ? 'leader' : n.managerStatus.reachability}` : '';
      const want = n.spec.desiredRole !== n.role ? ` (to be ${n.spec.desiredRole})` : '';
      return `${n.description?.hostname ?? n.id} ${n.status.state} ${n.spec.availability} ${n.role}${ms}${want}`;
    })
    .join('\n');
}

/** One line per service: `NAME MODE RUNNING/DESIRED`. */
export function renderServices(list: ServiceSummary[]): string {
  return list
    .map((s) => `${s.service.spec.name} ${'replicated' in s.service.spec.mode ? 'replicated' : 'global'} ${s.running}/${s.desired}`)
    .join('\n');
}

/** Raft membership as node `on`'s manager sees it: `RAFT-ID NODE voter|learner [leader]`, then removed IDs. */
export function renderMembers(c: FakeCluster, on: string): string {
  const m = c.host(on).manager;
  if (!m) return `${on} runs no manager`;
  const st = m.raftStatus();
  const lines = m.members().map((x) => `${x.id} ${c.hostByNodeId(x.nodeId)?.name ?? x.nodeId} ${x.voter ? 'voter' : 'learner'}${x.id === st.leader ? ' leader' : ''}`);
  if (st.removed.length) lines.push(`removed: ${[...st.removed].sort().join(' ')}`);
  return lines.join('\n');
}

/** Each node's own view: `NAME up|down ROLE [raft=ID] [leader=NAME] [removed-notice]`. */
export function renderHosts(c: FakeCluster): string {
  return [...c.hosts.values()]
    .map((h) => {
      if (!h.up) return `${h.name} down`;
      const st = h.state;
      if (!st) return `${h.name} not in a swarm`;
      const m = h.manager;
      const parts = [h.name, 'up', st.role];
      if (m) {
        parts.push(`raft=${st.raftId}`);
        const l = c.hostByNodeId(m.leaderNodeId());
        parts.push(`leader=${l?.name ?? 'none'}`);
      }
      if (st.notice) parts.push('(removed from the managers)');
      return parts.join(' ');
    })
    .join('\n');
}
