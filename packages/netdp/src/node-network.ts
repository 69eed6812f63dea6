/**
 * The node's network plane (docs/NETWORKING.md): the routed VXLAN overlay, the load-balancer
 * dataplane and the service DNS, programmed from the dispatcher's cluster-wide network view.
 * Thin shell over `@shoal/netdp`; level-triggered: every view (and a periodic resync) brings the
 * host to the state the view implies.
 *
 * Per host, once it knows its subnet: the Docker bridge network `shoal_overlay` (`ovl0`, MTU
 * 1450, no masquerade), `vxlan0`, the DOCKER-USER accepts, the VIP route, the resolver on the
 * bridge gateway. Per peer: fdb/neigh/route entries. Per view: one dataplane sync and a DNS
 * record swap. Tasks wait (`taskNetwork.ready()`) until the host part is in place.
 */
import { DEFAULTS, type NetworkView } from '@shoal/api';
import { LATENCY_BUCKETS, nopMetrics, type Histogram, type Metrics } from '@shoal/runtime';
import type { Dataplane, DataplaneKind } from './dataplane.js';
import { chooseDataplane, type DataplanePreference } from './choose.js';
import { ServiceDns } from './dns.js';
import { OverlayExecutor, dockerNetworkCreateBody, dockerNetworkMatches, overlayAddresses, type OverlayConfig } from './overlay.js';
import { run } from './exec.js';
import { dnsRecordsFromView, serviceTableFromView } from './fromview.js';

/** The part of a Docker engine client (dockerode) the node network uses: the overlay's bridge network. */
export interface DockerNetworks {
  getNetwork(name: string): { inspect(): Promise<unknown>; remove(): Promise<unknown> };
  createNetwork(body: object): Promise<unknown>;
}
type Docker = DockerNetworks;

/** pino-compatible logger (object first, then message). */
interface Logger {
  debug(o: object, msg?: string): void;
  info(o: object, msg?: string): void;
  warn(o: object, msg?: string): void;
  error(o: object, msg?: string): void;
}

/** What task containers need of the node network: its Docker network and, once ready, the resolver. */
export interface TaskNetwork {
  /** Docker network name, e.g. `shoal_overlay`. */
  name: string;
  ready(): Promise<{ dns?: string[] }>;
}

export interface NodeNetworkOptions {
  /** `--lb-dataplane`: auto (default), nftables, ipvs or userspace. */
  prefer?: DataplanePreference;
  /** `--data-path-port`: VXLAN UDP port, the same on every node (default 4789). */
  dataPathPort?: number;
  /** ms a stopping backend keeps running after it left the load balancer (default 1000). */
  drainDelayMs?: number;
  /** ms between full re-checks of the host (default 30 000). */
  resyncMs?: number;
  /** ms a task waits for the overlay before it is REJECTED (default 60 000). */
  readyTimeoutMs?: number;
  /**
   * `shoal_dataplane_sync_duration_seconds{backend,mode}`: one load-balancer sync per view (mode
   * `noop` when nothing changed). Default {@link nopMetrics}.
   */
  metrics?: Metrics;
}

/** Docker network (and bridge) every task joins. */
export const OVERLAY_NETWORK = 'shoal_overlay';
const BRIDGE = 'ovl0';

/**
 * One per node, alive as long as the agent (`close()` is called by `Agent.stop()`). `close()`
 * removes the load balancer (nft table / IPVS services / proxy listeners: a stopped node must not
 * keep capturing published ports) and the resolver; the overlay plumbing (VXLAN device, routes,
 * the Docker network) stays, so tasks keep reaching each other by address while shoald restarts.
 * A crash (SIGKILL) leaves everything; the next start replaces it.
 */
export class NodeNetwork {
  readonly kind: DataplaneKind;
  readonly reason: string;
  readonly drainDelayMs: number;
  /** For the executor: the Docker network and DNS of task containers. */
  readonly taskNetwork: TaskNetwork;
  private docker: Docker | undefined;
  private view: NetworkView | undefined;
  private busy: Promise<void> | undefined;
  private again = false;
  private closed = false;
  private hostKey = '';
  /** The overlay configuration last applied to this host (for {@link removeHostPlumbing}). */
  private applied: OverlayConfig | undefined;
  private peersKey = '';
  private lastResync = 0;
  private dns: ServiceDns | undefined;
  private dnsHost = '';
  private ready: { dns: string[] } | undefined;
  private waiters: ((r: { dns: string[] }) => void)[] = [];
  private lastError = '';
  private dnsError = '';
  private retry: NodeJS.Timeout | undefined;
  private resync: NodeJS.Timeout | undefined;
  private underlay: { ip: string; dev: string; mtu: number } | undefined;
  private readonly syncSeconds: Histogram;

  private constructor(
    private readonly nodeId: string,
    private readonly dataplane: Dataplane,
    chosen: { kind: DataplaneKind; reason: string },
    private readonly opts: NodeNetworkOptions,
    private readonly log: Logger,
  ) {
    this.kind = chosen.kind;
    this.reason = chosen.reason;
    this.drainDelayMs = opts.drainDelayMs ?? 1000;
    this.syncSeconds = (opts.metrics ?? nopMetrics).histogram({
      name: 'shoal_dataplane_sync_duration_seconds',
      help: 'Duration of one load-balancer dataplane sync from the network view, by backend (nftables, ipvs, userspace) and mode (noop when nothing changed).',
      labelNames: ['backend', 'mode'],
      buckets: LATENCY_BUCKETS,
    });
    this.taskNetwork = { name: OVERLAY_NETWORK, ready: () => this.whenReady() };
    this.resync = setInterval(() => {
      this.hostKey = this.peersKey = '';
      this.kick();
    }, opts.resyncMs ?? 30_000);
    this.resync.unref();
  }

  /**
   * Picks the dataplane (`--lb-dataplane`). @throws Error when an explicit choice cannot run here
   * (the message names the fix), or on a bad data-path port.
   */
  static async create(nodeId: string, opts: NodeNetworkOptions, log: Logger): Promise<NodeNetwork> {
    const port = opts.dataPathPort ?? DEFAULTS.overlay.dataPathPort;
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`invalid --data-path-port ${port}; use an integer 1–65535 (default 4789)`);
    const chosen = await chooseDataplane({
      prefer: opts.prefer ?? 'auto',
      userspace: { onError: (err, where) => log.debug({ err: String(err), where }, 'userspace proxy error') },
    });
    log.info({ dataplane: chosen.kind, reason: chosen.reason }, 'load-balancer dataplane chosen');
    return new NodeNetwork(nodeId, chosen.dataplane, chosen, opts, log);
  }

  /** The Docker engine the overlay's bridge network lives in (the executor's). */
  attach(docker: Docker): void {
    this.docker = docker;
    this.kick();
  }

  /** A new cluster-wide view (from the agent's assignments). Never throws. */
  onView(view: NetworkView): void {
    this.view = view;
    this.kick();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.resync);
    clearTimeout(this.retry);
    await this.busy;
    await this.dns?.close().catch(() => undefined);
    this.dns = undefined;
    await this.dataplane.close().catch((err: unknown) => this.log.warn({ err: String(err) }, 'dataplane close failed'));
  }

  /**
   * After {@link close}, when the node leaves the swarm: removes what this node added to the host —
   * the VXLAN device (with its peer entries), the VIP route, its DOCKER-USER rules, the overlay
   * Docker network (once no container uses it) and, for the userspace proxy, VIP addresses on `lo`.
   * Best effort: a step that fails is logged and the rest still runs. Never throws.
   */
  async removeHostPlumbing(): Promise<void> {
    const cfg = this.applied;
    if (cfg) await new OverlayExecutor(cfg).teardown().catch((err: unknown) => this.log.warn({ err: String(err) }, 'overlay teardown failed'));
    if (this.docker) {
      await this.docker.getNetwork(OVERLAY_NETWORK).remove().catch((err: unknown) => {
        if ((err as { statusCode?: number }).statusCode !== 404) this.log.warn({ err: String(err), network: OVERLAY_NETWORK }, 'could not remove the overlay docker network');
      });
    }
    if (this.kind === 'userspace' && this.view) {
      const prefix = this.view.vipCidr.split('.').slice(0, 2).join('.') + '.';
      const r = await run(['ip', '-j', '-4', 'addr', 'show', 'dev', 'lo']);
      for (const l of JSON.parse(r.stdout || '[]') as { addr_info?: { local?: string; prefixlen?: number }[] }[]) {
        for (const a of l.addr_info ?? []) if (a.local?.startsWith(prefix) && a.prefixlen === 32) await run(['ip', 'addr', 'del', `${a.local}/32`, 'dev', 'lo']);
      }
    }
    this.applied = undefined;
    this.hostKey = '';
  }

  private whenReady(): Promise<{ dns: string[] }> {
    if (this.ready) return Promise.resolve(this.ready);
    const ms = this.opts.readyTimeoutMs ?? 60_000;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        reject(new Error(`the node's overlay network is not ready after ${ms} ms${this.lastError ? `: ${this.lastError}` : ' (no overlay subnet from the managers yet)'}`));
      }, ms);
      const done = (r: { dns: string[] }) => {
        clearTimeout(t);
        resolve(r);
      };
      this.waiters.push(done);
    });
  }

  private kick(): void {
    if (this.closed) return;
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = (async () => {
      do {
        this.again = false;
        try {
          await this.reconcile();
          if (this.lastError) this.log.info({}, 'node network reconciled');
          this.lastError = '';
        } catch (err) {
          const msg = (err as Error).message;
          if (msg !== this.lastError) this.log.error({ err: msg }, 'node network: reconcile failed; retrying');
          this.lastError = msg;
          this.hostKey = this.peersKey = '';
          clearTimeout(this.retry);
          this.retry = setTimeout(() => this.kick(), 2000);
        }
      } while (this.again && !this.closed);
    })().finally(() => {
      this.busy = undefined;
    });
  }

  private async reconcile(): Promise<void> {
    const view = this.view;
    if (!view || !this.docker || this.closed) return;
    const me = view.nodes.find((n) => n.id === this.nodeId);
    if (!me) return; // no subnet yet: the allocator gives one when the node registers
    const underlay = await this.underlayOf(me.addr);
    const cfg: OverlayConfig = {
      subnet: me.subnet, clusterCidr: view.clusterCidr, vipCidr: view.vipCidr, underlayIp: underlay.ip, underlayDev: underlay.dev,
      bridge: BRIDGE, dockerNetwork: OVERLAY_NETWORK, dstPort: this.opts.dataPathPort ?? DEFAULTS.overlay.dataPathPort,
      vni: DEFAULTS.overlay.vni, mtu: Math.min(DEFAULTS.overlay.mtu, underlay.mtu - 50),
    };
    const ex = new OverlayExecutor(cfg);
    const { gateway } = overlayAddresses(me.subnet);
    const hostKey = JSON.stringify(cfg);
    if (hostKey !== this.hostKey) {
      await this.ensureDockerNetwork(cfg);
      this.applied = cfg;
      const ran = await ex.ensureHost();
      if (ran.length) this.log.info({ commands: ran.map((c) => c.join(' ')) }, 'overlay: host plumbing');
      this.hostKey = hostKey;
    }
    await this.ensureDns(gateway);
    // Tasks may start once the bridge and the host's overlay part are in place; peers, LB and DNS follow (retried on error).
    if (!this.ready) {
      this.ready = { dns: [gateway] };
      this.log.info({ subnet: me.subnet, gateway, underlay: underlay.ip, dev: underlay.dev, dataplane: this.kind }, 'node network ready');
      for (const w of this.waiters.splice(0)) w(this.ready);
    }
    const peers = view.nodes.filter((n) => n.id !== this.nodeId).map((n) => ({ underlayIp: n.addr, subnet: n.subnet }));
    const peersKey = hostKey + JSON.stringify(peers);
    if (peersKey !== this.peersKey) {
      const ran = await ex.ensurePeers(peers);
      if (ran.length) this.log.info({ commands: ran.map((c) => c.join(' ')) }, 'overlay: peer entries');
      this.peersKey = peersKey;
    }
    this.dns?.setRecords(dnsRecordsFromView(view));
    if (this.kind === 'userspace') await this.ensureVipAddrs(view);
    const t0 = performance.now();
    const r = await this.dataplane.sync(serviceTableFromView(view, { hairpin: [{ subnet: me.subnet, bridge: BRIDGE }] }));
    this.syncSeconds.observe((performance.now() - t0) / 1000, { backend: this.kind, mode: r.mode });
    if (r.mode !== 'noop') this.log.debug({ mode: r.mode, bytes: r.bytes, ms: r.ms }, 'dataplane synced');
  }

  /** The interface holding this node's address (the VXLAN underlay). */
  private async underlayOf(ip: string): Promise<{ ip: string; dev: string; mtu: number }> {
    if (this.underlay?.ip === ip) return this.underlay;
    const r = await run(['ip', '-j', '-4', 'addr', 'show']);
    if (r.code !== 0) throw new Error(`ip -j -4 addr show failed: ${r.stderr.trim()}`);
    const links = JSON.parse(r.stdout || '[]') as { ifname: string; mtu?: number; addr_info?: { local?: string }[] }[];
    const l = links.find((x) => (x.addr_info ?? []).some((a) => a.local === ip));
    if (!l) throw new Error(`this node's address ${ip} is on no local interface; start the node with --advertise-addr set to one of its own addresses`);
    this.underlay = { ip, dev: l.ifname, mtu: l.mtu ?? 1500 };
    return this.underlay;
  }

  /** The bridge network on this node's subnet; recreated when it differs and no container uses it. */
  private async ensureDockerNetwork(cfg: OverlayConfig): Promise<void> {
    const docker = this.docker!;
    const net = docker.getNetwork(OVERLAY_NETWORK);
    try {
      const info = (await net.inspect()) as Parameters<typeof dockerNetworkMatches>[0] & { Containers?: Record<string, unknown> | null };
      if (dockerNetworkMatches(info, cfg)) return;
      const users = Object.keys(info.Containers ?? {}).length;
      if (users > 0) {
        throw new Error(`docker network ${OVERLAY_NETWORK} does not match this node's overlay subnet ${cfg.subnet} and ${users} container(s) use it; remove them (docker rm -f) so it can be recreated`);
      }
      this.log.warn({ network: OVERLAY_NETWORK, subnet: cfg.subnet }, 'recreating the overlay docker network (its subnet or options differ)');
      await net.remove();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
    await docker.createNetwork(dockerNetworkCreateBody(cfg));
  }

  /**
   * The resolver on the bridge gateway (re-bound when the gateway changes). A bind failure (e.g.
   * another process holds port 53 there) is logged and retried on the next reconcile; tasks still
   * start, without service names.
   */
  private async ensureDns(gateway: string): Promise<void> {
    if (this.dns && this.dnsHost === gateway) return;
    await this.dns?.close().catch(() => undefined);
    this.dns = undefined;
    const dns = new ServiceDns({ host: gateway, port: 53 });
    try {
      await dns.start();
    } catch (err) {
      const msg = (err as Error).message;
      if (msg !== this.dnsError) this.log.error({ err: msg }, 'service DNS not serving; retrying');
      this.dnsError = msg;
      return;
    }
    if (this.dnsError) this.log.info({ host: gateway }, 'service DNS serving');
    this.dnsError = '';
    this.dns = dns;
    this.dnsHost = gateway;
  }

  /** userspace only: every VIP a local address (on `lo`), so the proxy's listeners can bind it. */
  private async ensureVipAddrs(view: NetworkView): Promise<void> {
    const want = new Set(view.services.flatMap((s) => s.virtualIps.map((v) => v.addr.split('/')[0]!)));
    const r = await run(['ip', '-j', '-4', 'addr', 'show', 'dev', 'lo']);
    const have = new Set<string>();
    for (const l of JSON.parse(r.stdout || '[]') as { addr_info?: { local?: string; prefixlen?: number }[] }[]) {
      for (const a of l.addr_info ?? []) if (a.local && a.prefixlen === 32) have.add(a.local);
    }
    const prefix = view.vipCidr.split('.').slice(0, 2).join('.') + '.';
    for (const ip of have) if (ip.startsWith(prefix) && !want.has(ip)) await run(['ip', 'addr', 'del', `${ip}/32`, 'dev', 'lo']);
    for (const ip of want) if (!have.has(ip)) await run(['ip', 'addr', 'add', `${ip}/32`, 'dev', 'lo']);
  }
}
