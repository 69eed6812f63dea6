import type { ClusterSpec, RestartPolicy, UpdateConfig } from './objects.js';

/**
 * Defaults Shoal chooses. Identical to Docker where users script against the behaviour (restart
 * delay, update monitor, task history); tighter where failover speed is the point (heartbeats).
 */
export const DEFAULTS = {
  /** Docker's default restart delay: 5 s. */
  restart: { condition: 'any', delayMs: 5000, maxAttempts: 0, windowMs: 0 } satisfies RestartPolicy,
  /** Docker's default stop grace period: 10 s. */
  stopGracePeriodMs: 10_000,
  update: { parallelism: 1, delayMs: 0, failureAction: 'pause', monitorMs: 5000, maxFailureRatio: 0, order: 'stop-first' } satisfies UpdateConfig,
  cluster: {
    name: 'default',
    taskHistoryRetentionLimit: 5,
    /** Agents heartbeat every 1 s; a node is Down after 3 missed periods (SwarmKit: 5 s × 3). */
    dispatcher: { heartbeatPeriodMs: 1000 },
    caConfig: { nodeCertExpiryMs: 90 * 24 * 3600 * 1000 },
  } satisfies ClusterSpec,
  heartbeatGraceMultiplier: 3,
  /** Dynamic published ports (ingress) come from this range. */
  dynamicPortRange: [30000, 32767] as const,
  listenPort: 2377,
  /**
   * The routed overlay (docs/NETWORKING.md): node subnets (/24) from `clusterCidr`, service VIPs
   * from `vipCidr`, VXLAN `vni` on UDP `dataPathPort`, MTU 1500 − 50 for the encapsulation.
   */
  overlay: { clusterCidr: '10.97.0.0/16', vipCidr: '10.96.0.0/16', vni: 4097, dataPathPort: 4789, mtu: 1450 },
} as const;
