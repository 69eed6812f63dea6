/** Test helpers: golden files and throwaway network namespaces (real `ip netns`, cleaned up on teardown). */
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import type { ExecutionContext } from 'ava';
import { run, runOk } from '../src/exec.js';
import type { ServiceTable } from '../src/table.js';

/** packages/netdp/test/golden, from dist/test/*.js. */
export const GOLDEN_DIR = fileURLToPath(new URL('../../test/golden/', import.meta.url));

/** Compare `text` with golden file `name`; `UPDATE_GOLDEN=1` rewrites it instead. */
export function golden(t: ExecutionContext, name: string, text: string): void {
  const path = GOLDEN_DIR + name;
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(path)) {
    writeFileSync(path, text);
    if (process.env.UPDATE_GOLDEN !== '1') t.log(`wrote missing golden file ${name}`);
  }
  t.is(text, readFileSync(path, 'utf8'), `golden ${name} differs; rerun with UPDATE_GOLDEN=1 if the change is intended`);
}

export const rand = (): string => randomBytes(3).toString('hex');

/**
 * Create network namespaces `shoalt-<rand>-<suffix>` with `lo` up; all are deleted in
 * `t.teardown` (also when the test fails). Fails loudly when not root / no `ip netns`.
 */
export async function netnsSet(t: ExecutionContext, suffixes: string[]): Promise<{ id: string; ns: Record<string, string> }> {
  if (process.getuid?.() !== 0) throw new Error('netns tests need root (CI runs as root); run the suite as root');
  const id = rand();
  const ns: Record<string, string> = {};
  t.teardown(async () => {
    for (const name of Object.values(ns)) await run(['ip', 'netns', 'del', name]);
  });
  for (const s of suffixes) {
    const name = `shoalt-${id}-${s}`;
    await runOk(['ip', 'netns', 'add', name]);
    ns[s] = name;
    await runOk(['ip', '-n', name, 'link', 'set', 'lo', 'up']);
  }
  return { id, ns };
}

/** A table exercising every renderer branch. */
export function sampleTable(): ServiceTable {
  return {
    clusterCidr: '10.97.0.0/16',
    hairpin: [{ subnet: '10.97.1.0/24', bridge: 'ovl0' }],
    services: [
      {
        id: 'web0000000000000000000001', name: 'web', vip: '10.96.0.10', vipAllPorts: true,
        ports: [{ protocol: 'tcp', targetPort: 80, publishedPort: 8080 }],
        backends: [
          { ip: '10.97.2.2', taskId: 'b2tsk00000000000000000000', state: 'active' },
          { ip: '10.97.1.2', taskId: 'a1tsk00000000000000000000', state: 'active', weight: 2 },
          { ip: '10.97.3.2', taskId: 'c3tsk00000000000000000000', state: 'draining' },
        ],
      },
      {
        id: 'dns0000000000000000000002', name: 'coredns', vip: '10.96.0.11',
        ports: [{ protocol: 'udp', targetPort: 53 }, { protocol: 'tcp', targetPort: 53 }],
        backends: [],
      },
      {
        id: 'api0000000000000000000003', name: 'api',
        ports: [{ protocol: 'tcp', targetPort: 8000, publishedPort: 30001 }],
        backends: [{ ip: '10.97.1.7', taskId: 'a7tsk00000000000000000000', state: 'active', port: 9000 }],
      },
    ],
  };
}
