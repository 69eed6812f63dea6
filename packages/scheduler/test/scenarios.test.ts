/**
 * Scheduler scenario traces: `testdata/*.txt`, each a list of commands with their expected output
 * (the data-driven format shared by every such test, `@shoal/testkit` `runDataDriven`). A command is
 * a line, its output follows `----` up to a blank line. Run with SHOAL_REWRITE=1 to rewrite the
 * expected outputs from what the scheduler does now.
 *
 *   node <id> [labels=k:v,k:v] [availability=active|pause|drain] [state=ready|down] [role=manager] [cpus=N] [gpu=N]
 *   update-node <id> <same keys>        (labels=… replaces all labels)
 *   service <name> replicas=N [constraint=expr]… [max=N] [cpus=N] [gpu=N] [hostport=P] [pref=node.labels.X]…
 *                                        adds N pending tasks <name>.<slot> after the highest slot
 *   set <task> [state=S] [desired=S]     changes a task's observed / desired state
 *   node-down-replace <id>               marks the node down; its tasks get desired shutdown and a
 *                                        pending replacement each (what the orchestrator does)
 *   schedule                             runs one scheduler pass; prints placements and reasons
 */
import test from 'ava';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Node, Task, TaskSpec } from '@shoal/api';
import type { MemoryStore } from '@shoal/store';
import { FakeClock, newTestStore, parseArgs, runDataDriven } from '@shoal/testkit';
import { Scheduler } from '../src/index.js';

const dir = fileURLToPath(new URL('../../testdata/', import.meta.url));
const meta = { version: 0, createdAt: '', updatedAt: '' };

const one = (kv: Map<string, string[]>, k: string) => kv.get(k)?.[0];

function applyNode(n: Node, kv: Map<string, string[]>): void {
  const labels = one(kv, 'labels');
  if (labels !== undefined) n.spec.labels = Object.fromEntries(labels.split(',').filter(Boolean).map((x) => x.split(':') as [string, string]));
  const av = one(kv, 'availability');
  if (av) n.spec.availability = av as Node['spec']['availability'];
  const st = one(kv, 'state');
  if (st) n.status.state = st as Node['status']['state'];
  const role = one(kv, 'role');
  if (role) n.role = role as Node['role'];
  const cpus = one(kv, 'cpus');
  if (cpus) n.description!.resources.nanoCpus = Number(cpus) * 1e9;
  const gpu = one(kv, 'gpu');
  if (gpu) n.description!.resources.generic = [{ kind: 'gpu', value: Number(gpu) }];
}

async function run(store: MemoryStore, sched: Scheduler, line: string): Promise<string> {
  const [cmd, ...rest] = line.trim().split(/\s+/);
  const { kv, pos } = parseArgs(rest);
  switch (cmd) {
    case 'node': {
      const n: Node = {
        id: pos[0]!, meta, role: 'worker', spec: { labels: {}, desiredRole: 'worker', availability: 'active' },
        description: { hostname: pos[0]!, platform: { os: 'linux', architecture: 'x86_64' }, resources: { nanoCpus: 4e9, memoryBytes: 2 ** 33 }, engine: { engineVersion: 'x', labels: {} } },
        status: { state: 'ready', message: '', addr: '' },
      };
      applyNode(n, kv);
      await store.update((tx) => tx.create('nodes', n));
      return '';
    }
    case 'update-node':
      await store.update((tx) => { const n = tx.get('nodes', pos[0]!)!; applyNode(n, kv); tx.update('nodes', n); });
      return '';
    case 'service': {
      const name = pos[0]!;
      const cpus = one(kv, 'cpus');
      const hostport = one(kv, 'hostport');
      const spec: TaskSpec = {
        container: { image: 'busybox' }, restart: { condition: 'any', delayMs: 0, maxAttempts: 0, windowMs: 0 },
        placement: {
          constraints: [...(kv.get('constraint') ?? [])], maxReplicas: Number(one(kv, 'max') ?? 0),
          ...(kv.has('pref') ? { preferences: kv.get('pref')!.map((spread) => ({ spread })) } : {}),
        },
        networks: [], forceUpdate: 0,
        ...(cpus || kv.has('gpu') ? {
          resources: { reservations: { nanoCpus: Number(cpus ?? 0) * 1e9, ...(kv.has('gpu') ? { genericResources: [{ kind: 'gpu', value: Number(one(kv, 'gpu')) }] } : {}) } },
        } : {}),
      };
      await store.update((tx) => {
        const have = tx.tasksByService(name);
        const start = Math.max(0, ...have.map((x) => x.slot));
        for (let i = 1; i <= Number(one(kv, 'replicas') ?? 1); i++) {
          tx.create('tasks', {
            id: `${name}.${start + i}`, meta, serviceId: name, serviceName: name, slot: start + i, nodeId: '', spec, specVersion: 1,
            desiredState: 'running', status: { state: 'pending', timestamp: '', message: '' }, networks: [],
            ...(hostport ? { endpoint: { ports: [{ protocol: 'tcp', targetPort: 80, publishedPort: Number(hostport), publishMode: 'host' }], virtualIps: [] } } : {}),
          } satisfies Task);
        }
      });
      return '';
    }
    case 'set':
      await store.update((tx) => {
        const t = tx.get('tasks', pos[0]!)!;
        const st = one(kv, 'state');
        const de = one(kv, 'desired');
        if (st) t.status.state = st as Task['status']['state'];
        if (de) t.desiredState = de as Task['desiredState'];
        tx.update('tasks', t);
      });
      return '';
    case 'node-down-replace':
      await store.update((tx) => {
        const n = tx.get('nodes', pos[0]!)!;
        n.status.state = 'down';
        tx.update('nodes', n);
        for (const t of tx.tasksByNode(n.id)) {
          if (t.desiredState !== 'running') continue;
          t.desiredState = 'shutdown';
          tx.update('tasks', t);
          tx.create('tasks', { ...t, id: `${t.id}'`, nodeId: '', desiredState: 'running', status: { state: 'pending', timestamp: '', message: '' } });
        }
      });
      return '';
    case 'schedule': {
      await sched.tick();
      return render(store);
    }
    default:
      throw new Error(`unknown command '${cmd}'`);
  }
}

function render(store: MemoryStore): string {
  const tasks = store.view((tx) => tx.list('tasks')).filter((t) => t.desiredState === 'running' && !['complete', 'failed', 'shutdown', 'rejected'].includes(t.status.state));
  const byNode = new Map<string, string[]>();
  const pending: string[] = [];
  for (const t of tasks.sort((a, b) => (a.id < b.id ? -1 : 1))) {
    if (t.status.state === 'pending') pending.push(`${t.id}: ${t.status.err ?? '(no reason)'}`);
    else byNode.set(t.nodeId, [...(byNode.get(t.nodeId) ?? []), t.id]);
  }
  const nodes = store.view((tx) => tx.list('nodes')).map((n) => n.id).sort();
  const lines = nodes.map((id) => `${id}: ${(byNode.get(id) ?? []).length} ${(byNode.get(id) ?? []).join(' ')}`.trimEnd());
  return [...lines, ...pending].join('\n');
}

for (const file of readdirSync(dir).filter((f) => f.endsWith('.txt')).sort()) {
  test(`scenario ${file}`, async (t) => {
    const store = newTestStore();
    // A fake clock that never moves: passes run only on the script's `schedule` (tick()).
    const sched = new Scheduler(store, { clock: new FakeClock() });
    sched.start();
    try {
      await runDataDriven(dir + file, (s) => run(store, sched, s.command), t);
    } finally {
      await sched.stop();
    }
    t.pass();
  });
}
