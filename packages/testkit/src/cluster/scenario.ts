/**
 * The scenario language of `packages/testkit/testdata/*.txt` (data-driven, see `datadriven.ts`):
 * each command drives a {@link FakeCluster} and prints what it shows. `on=NODE` runs a control
 * command on that node (default: the leader, or the first manager that is up).
 *
 *   cluster managers=3 workers=2 [seed=N]     node1 inits, the others join; waits until all are Ready
 *   add-node NAME [role=worker|manager] [via=NODE]
 *   create-service name=web [replicas=N] [mode=global] [image=IMG] [constraint=EXPR]… [max-per-node=N]
 *                  [restart-condition=any|on-failure|none] [restart-delay=5s] [restart-max-attempts=N]
 *                  [restart-window=D] [update-order=start-first|stop-first] [publish=P:T] [on=NODE]
 *   scale web=N [on=NODE]                     update web [image=IMG] [force=true] [update-order=…] [on=NODE]
 *   rm-service web                            swarm-update [task-history-limit=N]
 *   drain NODE | activate NODE | pause NODE   label NODE k=v… [-k]…      (node update)
 *   promote NODE | demote NODE                rm-node NODE [force=true]
 *   kill-node NODE | restart-node NODE        force-new-cluster NODE
 *   partition A B | C D | isolate NODE | cut A B [one-way=true] | heal | delay 100ms [from=A] [to=B]
 *   exit-task web.1 [code=N]                  the running container of that slot exits (a crash)
 *   tick 5s                                   run the cluster for that long (fake time)
 *   stabilize                                 run until nothing changes for 10 s (at most 2 min)
 *   tasks [SERVICE] [desired=running] [node=NODE] [on=NODE]     services [on=NODE]
 *   nodes [on=NODE]   leader   members [on=NODE]   hosts   network   inspect-service SERVICE
 *   containers [NODE] [all=true]              the containers on the nodes' engines
 *   remember-tasks SERVICE | changed-tasks SERVICE     which slots got a new task since, and where
 *
 * Errors print as `error: <message>` (a failed command is an output, not a test failure).
 */
import type { Params, ServiceSpecInput } from '@shoal/api';
import { checkParams } from '@shoal/api/check';
import type { ControlMethod } from '@shoal/manager';
import { LABELS } from '@shoal/agent';
import type { Stanza } from '../datadriven.js';
import { FakeCluster, type FakeClusterOptions } from './cluster.js';
import { renderHosts, renderMembers, renderNodes, renderServices, renderTasks } from './render.js';

/** `5s`, `500ms`, `2m`, `1.5s` → ms. @throws Error naming the value. */
export function parseDuration(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(v);
  if (!m) throw new Error(`duration ${JSON.stringify(v)}: write it like 500ms, 5s or 2m`);
  const n = Number(m[1]);
  return Math.round(m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000);
}

export class ScenarioRunner {
  cluster: FakeCluster | undefined;
  private readonly remembered = new Map<string, Map<number | string, { id: string; node: string }>>();

  constructor(private readonly defaults: FakeClusterOptions = {}) {}

  private get c(): FakeCluster {
    if (!this.cluster) throw new Error('no cluster yet; start with `cluster managers=N workers=M`');
    return this.cluster;
  }

  async close(): Promise<void> {
    await this.cluster?.close();
  }

  private call<M extends ControlMethod>(s: Stanza, method: M, params: Params<M>): Promise<unknown> {
    return this.c.call(method, checkParams(method, params) as Params<M>, s.args.get('on'));
  }

  /** Runs one stanza; @returns its output. */
  async handle(s: Stanza): Promise<string> {
    const a = s.args;
    const pos = a.pos;
    switch (s.cmd) {
      case 'cluster': {
        if (this.cluster) throw new Error('a cluster is running already; one per file');
        this.cluster = new FakeCluster({ ...this.defaults, ...(a.get('seed') ? { seed: a.int('seed')! } : {}) });
        await this.cluster.build(a.int('managers', 1)!, a.int('workers', 0)!);
        return renderNodes((await this.c.call('node.ls', {})).nodes);
      }
      case 'add-node': {
        const role = (a.get('role') ?? 'worker') as 'worker' | 'manager';
        await this.c.join(need(pos[0], 'add-node NAME'), role, a.get('via'));
        return 'ok';
      }
      case 'create-service': {
        const spec: ServiceSpecInput = { name: need(a.get('name'), 'create-service name=NAME'), image: a.get('image') ?? 'shoal/busybox:latest' };
        if (a.get('replicas') !== undefined) spec.replicas = a.int('replicas')!;
        if (a.get('mode')) spec.mode = a.get('mode')!;
        if (a.all('constraint').length) spec.constraints = a.all('constraint');
        if (a.get('max-per-node') !== undefined) spec.maxReplicasPerNode = a.int('max-per-node')!;
        const restart: NonNullable<ServiceSpecInput['restart']> = {};
        if (a.get('restart-condition')) restart.condition = a.get('restart-condition')!;
        if (a.get('restart-delay')) restart.delayMs = parseDuration(a.get('restart-delay')!);
        if (a.get('restart-max-attempts') !== undefined) restart.maxAttempts = a.int('restart-max-attempts')!;
        if (a.get('restart-window')) restart.windowMs = parseDuration(a.get('restart-window')!);
        if (Object.keys(restart).length) spec.restart = restart;
        if (a.get('update-order')) spec.update = { order: a.get('update-order')! };
        if (a.get('publish')) {
          const [pub, target] = a.get('publish')!.split(':').map(Number);
          spec.ports = [{ publishedPort: pub!, targetPort: target! }];
        }
        await this.call(s, 'service.create', spec);
        return 'ok';
      }
      case 'scale': {
        const out: string[] = [];
        for (const [name, vals] of a.kv) {
          if (name === 'on') continue;
          await this.call(s, 'service.scale', { ref: name, replicas: Number(vals.at(-1)) });
          out.push(`${name} scaled to ${vals.at(-1)}`);
        }
        return out.join('\n');
      }
      case 'update': {
        const spec: Partial<ServiceSpecInput> = {};
        if (a.get('image')) spec.image = a.get('image')!;
        if (a.get('update-order')) spec.update = { order: a.get('update-order')! };
        await this.call(s, 'service.update', { ref: need(pos[0], 'update SERVICE'), spec, ...(a.bool('force') ? { force: true } : {}) });
        return 'ok';
      }
      case 'rm-service':
        await this.call(s, 'service.rm', { ref: need(pos[0], 'rm-service SERVICE') });
        return 'ok';
      case 'swarm-update':
        await this.call(s, 'swarm.update', a.get('task-history-limit') !== undefined ? { taskHistoryLimit: a.int('task-history-limit')! } : {});
        return 'ok';
      case 'drain':
      case 'activate':
      case 'pause':
        await this.call(s, 'node.update', { ref: need(pos[0], `${s.cmd} NODE`), availability: s.cmd === 'activate' ? 'active' : s.cmd });
        return 'ok';
      case 'label': {
        const labelAdd: Record<string, string> = {};
        for (const [k, v] of a.kv) if (k !== 'on') labelAdd[k] = v.at(-1)!;
        const labelRm = pos.slice(1).filter((x) => x.startsWith('-')).map((x) => x.slice(1));
        await this.call(s, 'node.update', { ref: need(pos[0], 'label NODE k=v'), labelAdd, ...(labelRm.length ? { labelRm } : {}) });
        return 'ok';
      }
      case 'promote':
      case 'demote': {
        const ref = need(pos[0], `${s.cmd} NODE`);
        const n = (await this.c.call('node.inspect', { ref }, a.get('on')));
        const role = s.cmd === 'promote' ? 'manager' : 'worker';
        if (n.spec.desiredRole === role && n.role === role) return `Node ${ref} is already a ${role}.`;
        await this.call(s, 'node.update', { ref, role });
        // The CLI's words (cmd/shoal node.ts `setRole`).
        return role === 'manager' ? `Node ${ref} promoted to a manager in the swarm.` : `Manager ${ref} demoted in the swarm.`;
      }
      case 'rm-node':
        await this.call(s, 'node.rm', { ref: need(pos[0], 'rm-node NODE'), ...(a.bool('force') ? { force: true } : {}) });
        return 'ok';
      case 'kill-node':
        await this.c.kill(need(pos[0], 'kill-node NODE'));
        return 'ok';
      case 'restart-node':
        await this.c.restart(need(pos[0], 'restart-node NODE'));
        return 'ok';
      case 'force-new-cluster':
        await this.c.forceNewCluster(need(pos[0], 'force-new-cluster NODE'));
        return 'ok';
      case 'partition': {
        const groups: string[][] = [[]];
        for (const w of pos) (w === '|' ? groups.push([]) : groups.at(-1)!.push(w));
        if (groups.length < 2 || groups.some((g) => g.length === 0)) throw new Error('partition A B | C D: name the groups, separated by |');
        for (const g of groups) for (const n of g) this.c.host(n);
        this.c.net.partition(...groups);
        return this.c.net.describe();
      }
      case 'isolate':
        this.c.net.isolate(this.c.host(need(pos[0], 'isolate NODE')).name);
        return this.c.net.describe();
      case 'cut':
        this.c.net.cut(this.c.host(need(pos[0], 'cut A B')).name, this.c.host(need(pos[1], 'cut A B')).name, a.bool('one-way', false));
        return this.c.net.describe();
      case 'heal':
        for (const h of this.c.hosts.values()) if (!h.up) this.c.net.isolate(h.name);
        this.c.net.heal();
        for (const h of this.c.hosts.values()) if (!h.up) this.c.net.isolate(h.name);
        return this.c.net.describe();
      case 'delay':
        this.c.net.delay(parseDuration(need(pos[0], 'delay 100ms')), a.get('from'), a.get('to'));
        return 'ok';
      case 'network':
        return this.c.net.describe();
      case 'exit-task': {
        const [svc, slot] = need(pos[0], 'exit-task SERVICE.SLOT').split('.');
        for (const h of this.c.hosts.values()) {
          const ct = h.executor?.running().find((x) => x.labels[LABELS.serviceName] === svc && x.labels[LABELS.slot] === slot);
          if (ct) {
            h.executor.stop(ct, a.int('code', 1)!);
            return `${pos[0]} exited on ${h.name}`;
          }
        }
        throw new Error(`no running container for ${pos[0]}`);
      }
      case 'tick':
        await this.c.runFor(parseDuration(need(pos[0], 'tick 5s')));
        return 'ok';
      case 'stabilize':
        await this.c.stabilize();
        return 'ok';
      case 'tasks': {
        const services = pos[0] ? [pos[0]] : (await this.c.call('service.ls', {}, a.get('on'))).map((x) => x.service.spec.name);
        const lines: string[] = [];
        for (const ref of services) {
          const list = await this.c.call('service.ps', { ref, ...(a.get('desired') ? { desiredState: a.get('desired')! } : {}), ...(a.get('node') ? { node: a.get('node')! } : {}) }, a.get('on'));
          const text = renderTasks(list, (id) => this.c.hostByNodeId(id)?.name ?? id);
          if (text) lines.push(text);
        }
        return lines.join('\n') || '(none)';
      }
      case 'containers': {
        // The containers on each node's engine: running ones, or all with all=true (stopped: `(exited N)`).
        const all = a.bool('all', false);
        const lines: string[] = [];
        for (const h of this.c.hosts.values()) {
          if (pos[0] && h.name !== pos[0]) continue;
          const cs = [...(h.executor?.containers.values() ?? [])].filter((x) => all || x.running)
            .map((x) => `${x.labels[LABELS.serviceName]}.${x.labels[LABELS.slot] === '0' ? h.name : x.labels[LABELS.slot]}${x.running ? '' : ` (exited ${x.exitCode})`}`)
            .sort((x, y) => x.localeCompare(y, undefined, { numeric: true }));
          lines.push(`${h.name}:${cs.length ? ' ' + cs.join(' ') : ''}`);
        }
        return lines.join('\n');
      }
      case 'inspect-service': {
        const svc = await this.c.call('service.inspect', { ref: need(pos[0], 'inspect-service SERVICE') }, a.get('on'));
        const u = svc.updateStatus;
        return [
          `${svc.spec.name} image=${svc.spec.task.container.image} spec-version=${svc.specVersion}`,
          `update: ${u ? `${u.state}${u.message ? ` ${JSON.stringify(u.message)}` : ''}` : 'none'}`,
        ].join('\n');
      }
      case 'remember-tasks': {
        // Remembers the desired-running task of each slot, for changed-tasks.
        const ref = need(pos[0], 'remember-tasks SERVICE');
        const list = await this.c.call('service.ps', { ref, desiredState: 'running' }, a.get('on'));
        this.remembered.set(ref, new Map(list.tasks.map((t) => [t.slot || t.nodeId, { id: t.id, node: this.c.hostByNodeId(t.nodeId)?.name ?? '-' }])));
        return `${list.tasks.length} tasks`;
      }
      case 'changed-tasks': {
        // Which slots' desired-running tasks changed since remember-tasks (a new task ID), and where they are.
        const ref = need(pos[0], 'changed-tasks SERVICE');
        const before = this.remembered.get(ref);
        if (!before) throw new Error(`remember-tasks ${ref} first`);
        const list = await this.c.call('service.ps', { ref, desiredState: 'running' }, a.get('on'));
        const lines: string[] = [];
        let kept = 0;
        for (const t of [...list.tasks].sort((x, y) => x.slot - y.slot)) {
          const was = before.get(t.slot || t.nodeId);
          const node = this.c.hostByNodeId(t.nodeId)?.name ?? '-';
          if (was?.id === t.id) kept++;
          else lines.push(`${ref}.${t.slot}: ${was ? `${was.node} -> ` : 'new on '}${node}`);
        }
        return [`${kept} unchanged`, ...lines].join('\n');
      }
      case 'services':
        return renderServices(await this.c.call('service.ls', {}, a.get('on'))) || '(none)';
      case 'nodes':
        return renderNodes((await this.c.call('node.ls', {}, a.get('on'))).nodes);
      case 'leader':
        return this.c.leader()?.name ?? 'none';
      case 'members':
        return renderMembers(this.c, a.get('on') ?? this.c.leader()?.name ?? need(undefined, 'members on=NODE (there is no leader)'));
      case 'hosts':
        return renderHosts(this.c);
      default:
        throw new Error(`unknown command ${s.cmd}`);
    }
  }
}

function need(v: string | undefined, usage: string): string {
  if (!v) throw new Error(`usage: ${usage}`);
  return v;
}
