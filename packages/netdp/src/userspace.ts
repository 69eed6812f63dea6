/**
 * Userspace TCP proxy dataplane: the last resort where neither nftables nor IPVS works, and the
 * unprivileged test double of the others (docs/NETWORKING.md, "Load-balancer backends"; kube-proxy's old
 * userspace mode retried the next endpoint too). One `net.Server` per VIP:targetPort and per
 * published port; round-robin over active backends; one retry on the next backend when the
 * connect fails (before any byte moved); half-open connections and backpressure through
 * `stream.pipeline`. UDP ports are not proxied (reported in `skipped`). Costs an extra copy per
 * byte and hides the client address from the backend.
 */
import net from 'node:net';
import { pipeline } from 'node:stream';
import type { LbBackend, ServiceTable } from './table.js';
import { activeBackends, validateTable } from './table.js';
import type { Capabilities, Dataplane, SyncResult } from './dataplane.js';
import { Serial, probeHost } from './dataplane.js';

export interface UserspaceOptions {
  /** Address the routing-mesh listeners bind (default `0.0.0.0`). */
  meshHost?: string;
  /** Give up a backend connect after this many ms and try the next one (default 3000). */
  connectTimeoutMs?: number;
  /** Called on listener and proxy errors (default: ignore). */
  onError?: (err: Error, where: string) => void;
}

interface Target {
  ip: string;
  port: number;
  taskId: string;
}

interface Listener {
  key: string;
  server: net.Server;
  serviceName: string;
  targets: Target[];
  next: number;
  sockets: Set<net.Socket>;
}

/** Counters for tests and `node inspect`-style reporting. */
export interface ProxyStats {
  /** Listening `host:port` keys. */
  listeners: string[];
  /** Accepted client connections per listener key. */
  accepted: Record<string, number>;
  /** Connections handed to each backend, by `ip:port`. */
  perBackend: Record<string, number>;
  /** Backend connects that failed (then retried once). */
  connectFailures: number;
  /** Clients reset because no backend was available or both tries failed. */
  rejected: number;
}

/** Listener set a table asks for (pure): `host:port` → service name and targets. */
export function userspaceListeners(t: ServiceTable, meshHost = '0.0.0.0'): { listeners: Map<string, { serviceName: string; host: string; port: number; targets: Target[] }>; skipped: string[] } {
  validateTable(t);
  const listeners = new Map<string, { serviceName: string; host: string; port: number; targets: Target[] }>();
  const skipped: string[] = [];
  for (const s of t.services) {
    const bs = activeBackends(s);
    for (const p of s.ports) {
      if (p.protocol !== 'tcp') {
        skipped.push(`${s.name} ${p.protocol}/${p.targetPort}`);
        continue;
      }
      const targets = bs.map((b: LbBackend) => ({ ip: b.ip, port: b.port ?? p.targetPort, taskId: b.taskId }));
      if (s.vip) listeners.set(`${s.vip}:${p.targetPort}`, { serviceName: s.name, host: s.vip, port: p.targetPort, targets });
      if (p.publishedPort) listeners.set(`${meshHost}:${p.publishedPort}`, { serviceName: s.name, host: meshHost, port: p.publishedPort, targets });
    }
  }
  return { listeners, skipped };
}

/**
 * Userspace {@link Dataplane}. The VIPs must already be local addresses (127.0.0.0/8 in tests,
 * or `/32`s on a dummy device); this class does not add addresses. Listeners removed from the
 * table stop accepting while their open connections finish (drain).
 */
export class UserspaceDataplane implements Dataplane {
  readonly kind = 'userspace' as const;
  private readonly listeners = new Map<string, Listener>();
  /** Every proxied socket, including those of listeners already removed (draining). */
  private readonly sockets = new Set<net.Socket>();
  private readonly serial = new Serial();
  private readonly counters = { accepted: {} as Record<string, number>, perBackend: {} as Record<string, number>, connectFailures: 0, rejected: 0 };
  /** Ports skipped by the last sync (UDP). */
  skipped: string[] = [];

  constructor(private readonly opts: UserspaceOptions = {}) {}

  probe(): Promise<Capabilities> {
    return probeHost();
  }

  /**
   * Open/close listeners to match the table and swap backend lists in place.
   * @throws Error naming every `host:port` that could not be bound (the others are applied).
   */
  sync(table: ServiceTable): Promise<SyncResult> {
    return this.serial.run(async () => {
      const t0 = performance.now();
      const { listeners: want, skipped } = userspaceListeners(table, this.opts.meshHost);
      this.skipped = skipped;
      let changed = false;
      for (const [key, l] of this.listeners) {
        if (!want.has(key)) {
          this.listeners.delete(key);
          l.server.close();
          changed = true;
        }
      }
      const failures: string[] = [];
      for (const [key, w] of want) {
        const have = this.listeners.get(key);
        if (have) {
          if (JSON.stringify(have.targets) !== JSON.stringify(w.targets)) {
            have.targets = w.targets;
            have.next = 0;
            changed = true;
          }
          have.serviceName = w.serviceName;
          continue;
        }
        try {
          this.listeners.set(key, await this.listen(key, w.host, w.port, w.serviceName, w.targets));
          changed = true;
        } catch (e) {
          failures.push(`${key}: ${(e as Error).message}`);
        }
      }
      if (failures.length) throw new Error(`userspace proxy could not listen on ${failures.join('; ')}; make the VIP a local address or free the port`);
      return { mode: changed ? 'incremental' : 'noop', bytes: 0, ms: performance.now() - t0 };
    });
  }

  stats(): ProxyStats {
    return { listeners: [...this.listeners.keys()].sort(), ...structuredClone(this.counters) };
  }

  /** Close every listener and destroy open proxied connections. */
  close(): Promise<void> {
    return this.serial.run(async () => {
      const all = [...this.listeners.values()];
      this.listeners.clear();
      for (const s of this.sockets) s.destroy();
      await Promise.all(all.map((l) => new Promise<void>((res) => l.server.close(() => res()))));
    });
  }

  private listen(key: string, host: string, port: number, serviceName: string, targets: Target[]): Promise<Listener> {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
    const l: Listener = { key, server, serviceName, targets, next: 0, sockets: new Set() };
    server.on('connection', (c) => this.accept(l, c));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port }, () => {
        server.off('error', reject);
        server.on('error', (e) => this.opts.onError?.(e, key));
        resolve(l);
      });
    });
  }

  private track(l: Listener, s: net.Socket): void {
    l.sockets.add(s);
    this.sockets.add(s);
    s.on('close', () => {
      l.sockets.delete(s);
      this.sockets.delete(s);
    });
  }

  private accept(l: Listener, client: net.Socket): void {
    this.counters.accepted[l.key] = (this.counters.accepted[l.key] ?? 0) + 1;
    this.track(l, client);
    client.on('error', () => {});
    const n = l.targets.length;
    if (n === 0) {
      this.counters.rejected++;
      client.resetAndDestroy();
      return;
    }
    const first = l.next++ % n;
    l.next %= n;
    const tries = n > 1 ? [l.targets[first]!, l.targets[(first + 1) % n]!] : [l.targets[first]!];
    this.connect(l, client, tries, 0);
  }

  private connect(l: Listener, client: net.Socket, tries: Target[], i: number): void {
    const t = tries[i];
    if (!t || client.destroyed) {
      this.counters.rejected++;
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect({ host: t.ip, port: t.port, allowHalfOpen: true });
    upstream.setTimeout(this.opts.connectTimeoutMs ?? 3000);
    const fail = (e: Error) => {
      upstream.destroy();
      this.counters.connectFailures++;
      this.opts.onError?.(e, `${l.key} -> ${t.ip}:${t.port}`);
      this.connect(l, client, tries, i + 1);
    };
    const onTimeout = () => fail(new Error(`connect timed out after ${this.opts.connectTimeoutMs ?? 3000} ms`));
    upstream.once('error', fail);
    upstream.once('timeout', onTimeout);
    upstream.once('connect', () => {
      upstream.off('error', fail);
      upstream.off('timeout', onTimeout);
      upstream.setTimeout(0);
      const k = `${t.ip}:${t.port}`;
      this.counters.perBackend[k] = (this.counters.perBackend[k] ?? 0) + 1;
      this.track(l, upstream);
      let open = 2;
      const done = (err?: Error | null) => {
        if (err) {
          client.destroy();
          upstream.destroy();
        } else if (--open === 0) {
          client.destroy();
          upstream.destroy();
        }
      };
      pipeline(client, upstream, done);
      pipeline(upstream, client, done);
      client.resume();
    });
  }
}
