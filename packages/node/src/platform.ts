/**
 * What a node needs of its machine, given by the entry point (`shoald` wires Docker and the netdp
 * dataplanes; tests wire fakes): an executor for the agent, the network plane, and the clean-up
 * when the node leaves the swarm. One {@link NodeRuntime} per activation of the node's services.
 */
import type { NetworkView, NodeDescription } from '@shoal/api';
import type { Executor } from '@shoal/agent';
import type { Metrics } from '@shoal/runtime';

/** pino-compatible logger (object first, then message). */
export interface Logger {
  info(o: unknown, msg?: string): void;
  warn(o: unknown, msg?: string): void;
  error(o: unknown, msg?: string): void;
  debug(o: unknown, msg?: string): void;
}

/** The node's network plane as the agent drives it (overlay, load balancer, DNS). */
export interface NodeNetworkPlane {
  /** Load-balancer dataplane in use (`nftables`, `ipvs`, `userspace`), shown in `node inspect`. */
  readonly kind: string;
  /** ms a stopping backend keeps running after it left the load balancer. */
  readonly drainDelayMs: number;
  onView(view: NetworkView): void;
  close(): Promise<void>;
}

export interface NodeRuntime {
  /** The agent's executor (the node's container engine). */
  executor: Executor;
  /** The network plane; absent: tasks get no overlay (tests). */
  network?: NodeNetworkPlane;
  /** What the node reports about itself (the engine's view; the node overrides the hostname). */
  describe(): Promise<NodeDescription>;
  /**
   * The node leaves the swarm (after its services stopped): remove its task containers and what
   * its network plane added to the host. Best effort; never throws.
   */
  leave(): Promise<void>;
}

/** What the node lends the machine's parts: its metrics (a no-op without `--metrics-addr`). */
export interface PlatformContext {
  metrics: Metrics;
}

/** Makes the runtime of node `nodeId` (called at each activation). @throws when the machine cannot run it (e.g. a chosen dataplane is missing). */
export type PlatformFactory = (nodeId: string, log: Logger, ctx?: PlatformContext) => Promise<NodeRuntime>;
