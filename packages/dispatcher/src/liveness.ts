import type { Assignments } from '@shoal/api';
import type { Clock, TimerHandle } from '@shoal/runtime';

/** One assignment stream of a session. */
export interface Watcher {
  onAssignments: (a: Assignments) => void;
  onEnd: (err?: Error) => void;
  /**
   * Per task of the last set sent: the version seen, whether it was sent held for a handoff
   * (desired RUNNING in place of the store's), and the task as sent without status/meta.
   */
  sent: Map<string, { version: number; held: boolean; stable: string }> | undefined;
  /** JSON of the network view last sent (sessions that asked for it). */
  sentNet: string | undefined;
  /** JSON of the manager list last sent. */
  sentManagers?: string;
  /** IDs of the secrets and configs last sent (see `dependenciesOf`). */
  sentDeps?: string;
}

/** An agent's session with this dispatcher. */
export interface Session {
  id: string;
  nodeId: string;
  /** The heartbeat deadline. */
  timer: TimerHandle | undefined;
  watchers: Set<Watcher>;
  /** The agent asked for the cluster-wide network view in its assignments. */
  networkView: boolean;
}

/**
 * Sessions and heartbeats (SwarmKit `manager/dispatcher/heartbeat` and the session half of
 * `dispatcher.go`): which node has which session, each session's heartbeat deadline, and the
 * reconnect window nodes get when a new leader starts. It decides *when* a node is dead; the
 * dispatcher writes it Down (`onNodeDead`).
 *
 * - {@link open} replaces any older session of the node (ending it with the given error) and arms
 *   its deadline; {@link beat} re-arms it. A deadline passing ends the session (`onExpired`).
 * - {@link awaitReconnect} gives nodes `windowMs` from now to open a session; a node still without
 *   one then is reported to `onNodeDead`.
 * Times are on the injected clock (ms).
 */
export class Liveness {
  private readonly sessions = new Map<string, Session>();
  private readonly byNode = new Map<string, Session>();
  /** Nodes given a reconnect window and not yet back. */
  private readonly awaiting = new Map<string, TimerHandle>();

  /**
   * @param graceMs a session without a heartbeat for this long expires.
   * @param onExpired a session expired (already ended: removed, watchers told with `err`).
   * @param onNodeDead a node's reconnect window passed without a session.
   */
  constructor(
    private readonly clock: Clock,
    private readonly graceMs: number,
    private readonly onExpired: (s: Session) => void,
    private readonly onNodeDead: (nodeId: string) => void,
  ) {}

  /** The session `id`, if open. */
  get(id: string): Session | undefined {
    return this.sessions.get(id);
  }

  /** The open session of node `nodeId`, if any. */
  ofNode(nodeId: string): Session | undefined {
    return this.byNode.get(nodeId);
  }

  /** Whether node `nodeId` has an open session. */
  connected(nodeId: string): boolean {
    return this.byNode.has(nodeId);
  }

  /** Node IDs with an open session. */
  nodes(): string[] {
    return [...this.byNode.keys()];
  }

  /** Open sessions, one per connected node. */
  all(): Session[] {
    return [...this.byNode.values()];
  }

  /**
   * Opens a session for `nodeId` with ID `id`: ends the node's older session with `replaced(old)`,
   * closes the node's reconnect window, arms the heartbeat deadline.
   */
  open(id: string, nodeId: string, networkView: boolean, replaced: (old: Session) => Error): Session {
    const old = this.byNode.get(nodeId);
    if (old) this.end(old, replaced(old));
    const waiting = this.awaiting.get(nodeId);
    if (waiting) this.clock.clearTimeout(waiting);
    this.awaiting.delete(nodeId);
    const s: Session = { id, nodeId, timer: undefined, watchers: new Set(), networkView };
    this.sessions.set(s.id, s);
    this.byNode.set(s.nodeId, s);
    this.beat(s);
    return s;
  }

  /** A heartbeat: the deadline moves to `graceMs` from now. */
  beat(s: Session): void {
    if (s.timer) this.clock.clearTimeout(s.timer);
    s.timer = this.clock.setTimeout(() => this.onExpired(s), this.graceMs);
  }

  /** Ends session `s`: forgotten, deadline disarmed, every watcher's `onEnd(err)` called (on a microtask). */
  end(s: Session, err: Error): void {
    if (s.timer) this.clock.clearTimeout(s.timer);
    s.timer = undefined;
    this.sessions.delete(s.id);
    if (this.byNode.get(s.nodeId) === s) this.byNode.delete(s.nodeId);
    const ws = [...s.watchers];
    s.watchers.clear();
    for (const w of ws) queueMicrotask(() => w.onEnd(err));
  }

  /** Ends every session with `err`. */
  endAll(err: Error): void {
    for (const s of [...this.sessions.values()]) this.end(s, err);
  }

  /** Gives each of `nodeIds` without a session `windowMs` from now to open one (B08). */
  awaitReconnect(nodeIds: Iterable<string>, windowMs: number): void {
    for (const id of nodeIds) {
      if (this.byNode.has(id) || this.awaiting.has(id)) continue;
      this.awaiting.set(id, this.clock.setTimeout(() => {
        this.awaiting.delete(id);
        if (!this.byNode.has(id)) this.onNodeDead(id);
      }, windowMs));
    }
  }

  /** Closes every reconnect window (sessions stay). */
  stopAwaiting(): void {
    for (const h of this.awaiting.values()) this.clock.clearTimeout(h);
    this.awaiting.clear();
  }
}
