import { execFile } from 'node:child_process';
import path from 'node:path';
import { ROOT, waitFor } from './harness.js';

/** The harness script; `SHOAL_TESTNET_SCRIPT` points at a private copy (other names and addresses) to run beside a busy one. */
const TESTNET = process.env['SHOAL_TESTNET_SCRIPT'] || path.join(ROOT, 'scripts/testnet');

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(args: string[], timeoutMs = 180_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(TESTNET, args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

async function must(args: string[], timeoutMs?: number): Promise<string> {
  const r = await run(args, timeoutMs);
  if (r.code !== 0) throw new Error(`scripts/testnet ${args.join(' ')} failed (${r.code}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

/**
 * Several hosts on one machine (`scripts/testnet`): network namespaces on one bridge, each with its
 * own dockerd and shoald. Used by the multi-host end-to-end tests.
 */
export const testnet = {
  up: (nodes: number) => must(['up', '--nodes', String(nodes)], 300_000),
  down: () => run(['down'], 300_000),
  kill: (node: string) => must(['kill', node]),
  start: (node: string) => must(['start', node], 180_000),
  partition: (...nodes: string[]) => must(['partition', ...nodes]),
  heal: () => must(['heal']),
  ip: async (node: string) => (await must(['ip', node])).trim(),
  logs: (node: string) => run(['logs', node]).then((r) => r.stdout),
  /** Runs a command as host `node` (its netns; `shoal` and `docker` on PATH and pointed at that host). */
  exec: (node: string, ...cmd: string[]) => run(['exec', node, '--', ...cmd], 120_000),
  /** `shoal ARGS…` on host `node`. */
  shoal: (node: string, ...args: string[]) => run(['exec', node, '--', 'shoal', ...args], 120_000),
  /** `docker ARGS…` against host `node`'s own dockerd. */
  docker: (node: string, ...args: string[]) => run(['exec', node, '--', 'docker', ...args], 60_000),
};

/** Running containers of `service` on `node`, by the Docker API of that host. */
export async function runningOn(node: string, service: string): Promise<string[]> {
  const r = await testnet.docker(node, 'ps', '-q', '--filter', `label=shoal.service.name=${service}`);
  return r.stdout.split('\n').filter(Boolean);
}

/** `shoal` on `node` until `pred(stdout)` holds. */
export async function shoalUntil(node: string, args: string[], pred: (out: string) => boolean, what: string, timeoutMs = 60_000): Promise<string> {
  let seen = '';
  return waitFor(async () => {
    const r = await testnet.shoal(node, ...args);
    seen = r.code === 0 ? r.stdout : `exit ${r.code}: ${r.stderr}`;
    return r.code === 0 && pred(r.stdout) ? r.stdout : undefined;
  }, { what, timeoutMs, intervalMs: 300, seen: () => seen.slice(-1500) });
}
