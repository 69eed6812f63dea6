import { UsageError } from '../errors.js';
import { parseCount, parseDuration, parseManagerAddr } from '../parse/values.js';
import { type Args, bool, connect, out, str } from './common.js';

/** The text `swarm join-token` prints (Docker's layout, `shoal` in place of `docker`). */
export function joinCommandText(role: 'worker' | 'manager', token: string, addr: string): string {
  return `To add a ${role} to this swarm, run the following command:\n\n    shoal swarm join --token ${token} ${addr}\n\n`;
}

/** `swarm init`: prints the node ID and the worker join command. */
export async function init(a: Args): Promise<void> {
  const call = connect(a);
  const params: { advertiseAddr?: string; listenAddr?: string; forceNewCluster?: boolean; taskHistoryLimit?: number } = {};
  const adv = str(a, 'advertise-addr');
  if (adv !== undefined) params.advertiseAddr = adv;
  const listen = str(a, 'listen-addr');
  if (listen !== undefined) params.listenAddr = listen;
  if (bool(a, 'force-new-cluster')) params.forceNewCluster = true;
  const thl = str(a, 'task-history-limit');
  if (thl !== undefined) params.taskHistoryLimit = parseCount(thl, '--task-history-limit');
  const { nodeId } = await call('swarm.init', params);
  out(`Swarm initialized: current node (${nodeId}) is now a manager.\n`);
  let tok: { token: string; managerAddr: string } | undefined;
  try {
    tok = await call('swarm.joinToken', { role: 'worker' });
  } catch {
    // Join tokens may not be available (single-node daemon); the first line is the essential part.
    return;
  }
  out(`\n${joinCommandText('worker', tok.token, tok.managerAddr)}`);
  out("To add a manager to this swarm, run 'shoal swarm join-token manager' and follow the instructions.\n\n");
}

/** `swarm join --token T HOST[:PORT]` (port 2377 when not given, as Docker). */
export async function join(a: Args): Promise<void> {
  const remote = parseManagerAddr(str(a, 'host-port') ?? '');
  const token = str(a, 'token') ?? '';
  if (token.trim() === '') throw new UsageError('missing --token: get one with \'shoal swarm join-token worker\' on a manager');
  const params: { token: string; remoteAddr: string; advertiseAddr?: string; listenAddr?: string } = { token, remoteAddr: remote };
  const adv = str(a, 'advertise-addr');
  if (adv !== undefined) params.advertiseAddr = adv;
  const listen = str(a, 'listen-addr');
  if (listen !== undefined) params.listenAddr = listen;
  const r = await connect(a)('swarm.join', params);
  out(`This node joined a swarm as a ${r.role}.\n`);
}

/** `swarm join-token worker|manager [-q] [--rotate]`. */
export async function joinToken(a: Args): Promise<void> {
  const role = str(a, 'role');
  if (role !== 'worker' && role !== 'manager') {
    throw new UsageError(`invalid role ${JSON.stringify(role ?? '')}: use worker or manager`);
  }
  const rotate = bool(a, 'rotate');
  const r = rotate ? await connect(a)('swarm.rotateJoinToken', { role }) : await connect(a)('swarm.joinToken', { role });
  if (bool(a, 'quiet')) {
    out(`${r.token}\n`);
    return;
  }
  if (rotate) out(`Successfully rotated ${role} join token.\n\n`);
  out(joinCommandText(role, r.token, r.managerAddr));
}

/** `swarm leave [-f]`. */
export async function leave(a: Args): Promise<void> {
  const r = await connect(a)('swarm.leave', bool(a, 'force') ? { force: true } : {});
  out('Node left the swarm.\n');
  // A manager that left with --force: what is left to do on the remaining managers.
  if (r.message) process.stderr.write(`${r.message}\n`);
}

/** `swarm update --task-history-limit N [--dispatcher-heartbeat DUR]`. */
export async function update(a: Args): Promise<void> {
  const params: { taskHistoryLimit?: number; heartbeatPeriodMs?: number } = {};
  const thl = str(a, 'task-history-limit');
  if (thl !== undefined) params.taskHistoryLimit = parseCount(thl, '--task-history-limit');
  const hb = str(a, 'dispatcher-heartbeat');
  if (hb !== undefined) {
    params.heartbeatPeriodMs = parseDuration(hb, '--dispatcher-heartbeat');
    if (params.heartbeatPeriodMs <= 0) throw new UsageError(`invalid --dispatcher-heartbeat value ${JSON.stringify(hb)}: must be greater than 0`);
  }
  if (Object.keys(params).length === 0) {
    throw new UsageError('nothing to update; give --task-history-limit N or --dispatcher-heartbeat DURATION');
  }
  await connect(a)('swarm.update', params);
  out('Swarm updated.\n');
}
