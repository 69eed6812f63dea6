/**
 * A node's observation endpoints, both off by default: the Prometheus metrics
 * (`--metrics-addr`, {@link MetricsServer}) and the live web view (`--ui-addr`, {@link UiServer}).
 * Owns the node's metrics registry; components get {@link Observability.metrics} (the
 * `@shoal/runtime` port: a no-op without `--metrics-addr`).
 */
import { ShoalError } from '@shoal/api';
import { LATENCY_BUCKETS, nopMetrics, type Histogram, type Metrics } from '@shoal/runtime';
import type { ClusterHandler } from '@shoal/rpc';
import { MetricsServer } from './metrics-server.js';
import { PromMetrics } from './prom.js';
import { UiServer, type ViewSource } from './ui-server.js';
import { parseListenAddr, urlOf, type ListenAddr } from './http.js';

export { clusterView, unavailableView, categoryOf, currentTasks, type ClusterView, type ViewNode, type ViewService, type ViewTask, type TaskCategory } from './view.js';
export { PromMetrics } from './prom.js';
export { parseListenAddr, type ListenAddr } from './http.js';
export type { ViewSource } from './ui-server.js';

export interface ObservabilityOptions {
  /** `--metrics-addr`: `HOST:PORT` or `PORT` (127.0.0.1). Absent: no metrics endpoint, no-op metrics. */
  metricsAddr?: string;
  /** `--ui-addr`: `HOST:PORT` or `PORT` (127.0.0.1). Absent: no web view. */
  uiAddr?: string;
  log: { info(o: unknown, msg?: string): void; warn(o: unknown, msg?: string): void };
}

/** What `shoal_node_info` says about the node (read at scrape time). */
export interface NodeInfo {
  nodeId: string;
  clusterId: string;
  role: string;
  hostname: string;
}

export class Observability {
  /** The node's metrics: prom-client behind the runtime port with `--metrics-addr`, else no-op. */
  readonly metrics: Metrics;
  private readonly prom: PromMetrics | undefined;
  private readonly metricsAt: ListenAddr | undefined;
  private readonly uiAt: ListenAddr | undefined;
  private metricsServer: MetricsServer | undefined;
  private ui: UiServer | undefined;
  private readonly rpcSeconds: Histogram;

  /** @throws Error for a malformed address (one line naming the flag and the fix). */
  constructor(private readonly o: ObservabilityOptions) {
    this.metricsAt = o.metricsAddr !== undefined ? parseListenAddr('--metrics-addr', o.metricsAddr) : undefined;
    this.uiAt = o.uiAddr !== undefined ? parseListenAddr('--ui-addr', o.uiAddr) : undefined;
    if (this.metricsAt) {
      this.prom = new PromMetrics({ onHookError: (e) => o.log.warn({ err: String(e) }, 'metrics: a collector failed') });
      this.metrics = this.prom;
    } else {
      this.metrics = nopMetrics;
    }
    this.rpcSeconds = this.metrics.histogram({
      name: 'shoal_rpc_duration_seconds',
      help: 'Duration of calls this node answered, by transport (socket: the local control socket; cluster: the cluster port), method and result code (OK or the error code).',
      labelNames: ['transport', 'method', 'code'],
      buckets: LATENCY_BUCKETS,
    });
  }

  /**
   * Starts the endpoints that were asked for. `info` names the node in `shoal_node_info`;
   * `view` feeds the web view.
   * @throws Error when an address cannot be listened on.
   */
  async start(info: () => NodeInfo | undefined, view: ViewSource): Promise<void> {
    if (this.prom && this.metricsAt) {
      const g = this.prom.gauge({ name: 'shoal_node_info', help: 'Always 1; labels name this node, its swarm and its role (SwarmKit swarm_node_info).', labelNames: ['node_id', 'cluster_id', 'role', 'hostname'] });
      const m = this.prom.gauge({ name: 'shoal_node_manager', help: '1 when this node is a manager, else 0 (SwarmKit swarm_node_manager).' });
      this.prom.onCollect(() => {
        g.reset();
        const i = info();
        if (i) g.set(1, { node_id: i.nodeId, cluster_id: i.clusterId, role: i.role, hostname: i.hostname });
        m.set(i?.role === 'manager' ? 1 : 0);
      });
      this.metricsServer = new MetricsServer({ addr: this.metricsAt, metrics: this.prom, log: this.o.log });
      const a = await this.metricsServer.start();
      this.o.log.info({ url: `${urlOf(a)}/metrics` }, 'serving Prometheus metrics');
    }
    if (this.uiAt) {
      this.ui = new UiServer({ addr: this.uiAt, source: view, log: this.o.log });
      try {
        const a = await this.ui.start();
        this.o.log.info({ url: `${urlOf(a)}/` }, 'serving the web view');
      } catch (e) {
        await this.metricsServer?.stop();
        throw e;
      }
    }
  }

  async stop(): Promise<void> {
    await this.ui?.stop();
    await this.metricsServer?.stop();
  }

  /** `http://host:port/metrics` once serving (tests, logs). */
  get metricsUrl(): string | undefined {
    return this.metricsServer?.address ? `${urlOf(this.metricsServer.address)}/metrics` : undefined;
  }

  /** `http://host:port/` of the web view once serving. */
  get uiUrl(): string | undefined {
    return this.ui?.address ? `${urlOf(this.ui.address)}/` : undefined;
  }

  /** Records one call answered on the local socket (`code` OK or the error code). */
  observeSocketCall(method: string, seconds: number, code: string): void {
    this.rpcSeconds.observe(seconds, { transport: 'socket', method, code });
  }

  /** The cluster port's handler, with every unary call timed. */
  timeCluster(h: ClusterHandler): ClusterHandler {
    return {
      call: async (method, params, peer) => {
        const t0 = performance.now();
        try {
          const r = await h.call(method, params, peer);
          this.rpcSeconds.observe((performance.now() - t0) / 1000, { transport: 'cluster', method, code: 'OK' });
          return r;
        } catch (e) {
          const code = e instanceof ShoalError ? e.code : (e as Error)?.name === 'PeerAuthError' ? 'PermissionDenied' : 'Internal';
          // Unknown methods are not a label value (a client could invent any number of them).
          this.rpcSeconds.observe((performance.now() - t0) / 1000, { transport: 'cluster', method: code === 'Unimplemented' ? 'unknown' : method, code });
          throw e;
        }
      },
      watch: (method, params, peer, push, end) => h.watch(method, params, peer, push, end),
    };
  }
}
