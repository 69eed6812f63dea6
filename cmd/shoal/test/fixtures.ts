import type { Network, Node, Service, Task } from '@shoal/api';

/** Builders for API objects used by the format and CLI tests (plain data, no fakes). */

const meta = (createdAt = '2026-01-01T00:00:00.000Z') => ({ version: 1, createdAt, updatedAt: createdAt });

export function service(over: { id: string; name: string; replicas?: number; global?: boolean; image?: string; maxReplicas?: number; ports?: Service['spec']['endpoint'] }): Service {
  return {
    id: over.id,
    meta: meta(),
    specVersion: 1,
    spec: {
      name: over.name,
      labels: {},
      mode: over.global ? { global: {} } : { replicated: { replicas: over.replicas ?? 1 } },
      task: {
        container: { image: over.image ?? 'shoal/busybox:latest', env: [] },
        restart: { condition: 'any', delayMs: 5000, maxAttempts: 0, windowMs: 0 },
        placement: { constraints: [], maxReplicas: over.maxReplicas ?? 0 },
        networks: [],
        forceUpdate: 0,
      },
      ...(over.ports ? { endpoint: over.ports } : {}),
    },
  };
}

export function task(over: { id: string; service?: string; slot: number; nodeId?: string; state: Task['status']['state']; desired?: Task['desiredState']; at: string; createdAt?: string; err?: string; image?: string; ports?: Task['status']['ports']; specVersion?: number }): Task {
  return {
    id: over.id,
    meta: meta(over.createdAt ?? over.at),
    serviceId: 'svc1',
    serviceName: over.service ?? 'web',
    slot: over.slot,
    nodeId: over.nodeId ?? 'n1',
    spec: {
      container: { image: over.image ?? 'shoal/busybox:latest' },
      restart: { condition: 'any', delayMs: 5000, maxAttempts: 0, windowMs: 0 },
      placement: { constraints: [], maxReplicas: 0 },
      networks: [],
      forceUpdate: 0,
    },
    specVersion: over.specVersion ?? 1,
    desiredState: over.desired ?? 'running',
    status: { state: over.state, timestamp: over.at, message: '', ...(over.err ? { err: over.err } : {}), ...(over.ports ? { ports: over.ports } : {}) },
    networks: [],
  };
}

export function node(over: { id: string; hostname: string; state?: Node['status']['state']; availability?: Node['spec']['availability']; leader?: boolean; reachability?: 'reachable' | 'unreachable' | 'unknown'; worker?: boolean; engine?: string }): Node {
  return {
    id: over.id,
    meta: meta(),
    spec: { labels: {}, desiredRole: over.worker ? 'worker' : 'manager', availability: over.availability ?? 'active' },
    role: over.worker ? 'worker' : 'manager',
    description: {
      hostname: over.hostname,
      platform: { os: 'linux', architecture: 'x86_64' },
      resources: { nanoCpus: 2e9, memoryBytes: 2 * 1024 ** 3 },
      engine: { engineVersion: over.engine ?? '26.1.5', labels: {} },
    },
    status: { state: over.state ?? 'ready', message: '', addr: '10.0.0.1' },
    ...(over.worker ? {} : { managerStatus: { leader: over.leader ?? false, reachability: over.reachability ?? 'reachable', addr: '10.0.0.1:2377', raftId: '1' } }),
  };
}

export function network(id: string, name: string): Network {
  return { id, meta: meta(), spec: { name, labels: {}, driver: 'overlay', attachable: false, ingress: name === 'ingress' } };
}
