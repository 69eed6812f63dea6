/**
 * In-process swarm nodes for tests: real `SwarmNode`s (real gRPC with mutual TLS on loopback, real
 * Raft on LevelDB in temp directories, real control sockets) on a fake engine (`FakeExecutor`) and
 * no network plane. One process, several nodes: what `scripts/testnet` does with namespaces and
 * dockerd, minus the containers.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ShoalClient } from '@shoal/client';
import { FakeExecutor, until } from '@shoal/testkit';
import type { Call } from '@shoal/api';
import { SwarmNode, type Logger, type NodeOptions, type PlatformFactory } from '../src/index.js';

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const loud = (name: string): Logger => ({
  debug() {},
  info: (o, m) => console.log(name, 'INFO', m, JSON.stringify(o)),
  warn: (o, m) => console.log(name, 'WARN', m, JSON.stringify(o)),
  error: (o, m) => console.log(name, 'ERROR', m, JSON.stringify(o)),
});

export interface TestNode {
  name: string;
  dir: string;
  node: SwarmNode;
  call: Call;
  executor?: FakeExecutor;
  /** Stops the node's daemon (as `kill` would, minus the containers: the fake engine keeps them). */
  stop(): Promise<void>;
  /** Starts it again on the same data. */
  start(): Promise<void>;
}

export function fakePlatform(onExecutor: (e: FakeExecutor) => void): PlatformFactory {
  return async (nodeId) => {
    const executor = new FakeExecutor(nodeId);
    onExecutor(executor);
    return { executor, describe: () => executor.describe(), leave: async () => undefined };
  };
}

/**
 * Starts node `name`. `o.options` adds node options, e.g. `{ metricsAddr: '127.0.0.1:0', uiAddr:
 * '127.0.0.1:0' }` (then `node.metricsUrl` / `node.uiUrl` say where; a restart picks new ports);
 * `o.tickMs` is the Raft tick (default 50 ms; elections take 5–10 ticks).
 */
export async function startNode(name: string, o: { dir?: string; tickMs?: number; options?: Partial<NodeOptions> } = {}): Promise<TestNode> {
  const dir = o.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), `shoal-node-${name}-`));
  const socket = path.join(dir, 'shoal.sock');
  const client = new ShoalClient(`unix://${socket}`);
  const t: TestNode = {
    name, dir,
    node: undefined as unknown as SwarmNode,
    call: ((m: string, p: unknown) => client.call(m, p)) as Call,
    stop: async () => t.node.stop(),
    start: async () => {
      t.node = make();
      await t.node.start();
    },
  };
  const make = () => new SwarmNode({
    dataDir: path.join(dir, 'data'), socket, hostname: name, listenAddr: '127.0.0.1:0', advertiseAddr: '127.0.0.1',
    logger: process.env['SHOAL_TEST_LOG'] ? loud(name) : quiet,
    platform: fakePlatform((e) => (t.executor = e)), roleCheckMs: 200, tickMs: o.tickMs ?? 50,
    onFatal: (e) => { throw e; },
    ...o.options,
  });
  await t.start();
  return t;
}

/** A swarm: `managers` managers (the first inits) and `workers` workers, all joined. */
export async function startSwarm(managers: number, workers = 0, o: { tickMs?: number; options?: Partial<NodeOptions> } = {}): Promise<{ nodes: TestNode[]; leaderAddr: string; tokens: { manager: string; worker: string } }> {
  const nodes: TestNode[] = [];
  const first = await startNode('node1', o);
  nodes.push(first);
  await first.call('swarm.init', {});
  const addr = first.node.identity!.advertiseAddr;
  const manager = (await first.call('swarm.joinToken', { role: 'manager' })).token;
  const worker = (await first.call('swarm.joinToken', { role: 'worker' })).token;
  for (let i = 2; i <= managers + workers; i++) {
    const n = await startNode(`node${i}`, o);
    nodes.push(n);
    await n.call('swarm.join', { token: i <= managers ? manager : worker, remoteAddr: addr });
  }
  await until(async () => {
    const ls = await first.call('node.ls', {});
    return ls.nodes.length === managers + workers && ls.nodes.filter((x) => x.managerStatus?.reachability === 'reachable').length === managers;
  }, 'every node joined, every manager reachable', 30_000);
  return { nodes, leaderAddr: addr, tokens: { manager, worker } };
}

export async function stopAll(nodes: TestNode[]): Promise<void> {
  for (const n of nodes) await n.stop().catch(() => undefined);
  for (const n of nodes) fs.rmSync(n.dir, { recursive: true, force: true });
}

/** The node whose manager leads. */
export function leaderOf(nodes: TestNode[]): TestNode | undefined {
  return nodes.find((n) => n.node.managerForTests?.isLeader());
}

/** Retries `fn` until it resolves (a write during an election). */
export async function eventually<T>(fn: () => Promise<T>, what: string, timeoutMs = 20_000): Promise<T> {
  let last: unknown;
  const v = await until(async () => {
    try {
      return { v: await fn() };
    } catch (e) {
      last = e;
      return undefined;
    }
  }, `${what} (last error: ${String(last)})`, timeoutMs);
  return v!.v;
}
