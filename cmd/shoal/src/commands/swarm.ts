import { UsageError } from '../errors.js';
import { parseCount, parseDuration, parseManagerAddr } from '../parse/values.js';
import { type Args, bool, connect, out, str } from './common.js';

/** The text `swarm join-token` prints (Docker's layout, `shoal` in place of `docker`). */
export function joinCommandText(role: 'worker' | 'manager', token: string, addr: string): string {
  return `To add a ${role} to this swarm, run the following command:\n\n    shoal swarm join --token ${token} ${addr}\n\n`;
}

/** The text `swarm init --autolock`, `swarm update --autolock` and `swarm unlock-key` print (Docker's, with `shoal`). */
export function unlockKeyText(key: string): string {
  return 'To unlock a swarm manager after it restarts, run the `shoal swarm unlock`\ncommand and provide the following key:\n\n'
    + `    ${key}\n\nRemember to store this key in a password manager, since without it you\nwill not be able to restart the manager.\n`;
}

/** `swarm init`: prints the node ID and the worker join command (and the unlock key with `--autolock`). */
export async function init(a: Args): Promise<void> {
  const call = connect(a);
  const params: { advertiseAddr?: string; listenAddr?: string; forceNewCluster?: boolean; taskHistoryLimit?: number; autolock?: boolean } = {};
  const adv = str(a, 'advertise-addr');
  if (adv !== undefined) params.advertiseAddr = adv;
  const listen = str(a, 'listen-addr');
  if (listen !== undefined) params.listenAddr = listen;
  if (bool(a, 'force-new-cluster')) params.forceNewCluster = true;
  const thl = str(a, 'task-history-limit');
  if (thl !== undefined) params.taskHistoryLimit = parseCount(thl, '--task-history-limit');
  if (bool(a, 'autolock')) params.autolock = true;
  const { nodeId } = await call('swarm.init', params);
  out(`Swarm initialized: current node (${nodeId}) is now a manager.\n`);
  let tok: { token: string; managerAddr: string } | undefined;
  try {
    tok = await call('swarm.joinToken', { role: 'worker' });
  } catch {
    // Join tokens may not be available (single-node daemon); the first line is the essential part.
  }
  if (tok) {
    out(`\n${joinCommandText('worker', tok.token, tok.managerAddr)}`);
    out("To add a manager to this swarm, run 'shoal swarm join-token manager' and follow the instructions.\n\n");
  }
  if (params.autolock) out(unlockKeyText((await call('swarm.unlockKey', {})).key));
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

/** `swarm update --task-history-limit N [--dispatcher-heartbeat DUR] [--autolock=true|false]`. */
export async function update(a: Args): Promise<void> {
  const params: { taskHistoryLimit?: number; heartbeatPeriodMs?: number; autolock?: boolean } = {};
  const thl = str(a, 'task-history-limit');
  if (thl !== undefined) params.taskHistoryLimit = parseCount(thl, '--task-history-limit');
  const hb = str(a, 'dispatcher-heartbeat');
  if (hb !== undefined) {
    params.heartbeatPeriodMs = parseDuration(hb, '--dispatcher-heartbeat');
    if (params.heartbeatPeriodMs <= 0) throw new UsageError(`invalid --dispatcher-heartbeat value ${JSON.stringify(hb)}: must be greater than 0`);
  }
  if (a['autolock'] !== undefined) params.autolock = bool(a, 'autolock');
  if (Object.keys(params).length === 0) {
    throw new UsageError('nothing to update; give --task-history-limit N, --dispatcher-heartbeat DURATION or --autolock=true|false');
  }
  const call = connect(a);
  const wasLocked = params.autolock ? (await call('swarm.unlockKey', {})).key !== '' : true;
  await call('swarm.update', params);
  out('Swarm updated.\n');
  // Turned on just now: show the key, as Docker does.
  if (!wasLocked) out(unlockKeyText((await call('swarm.unlockKey', {})).key));
}

/** `swarm unlock-key [-q] [--rotate]`. */
export async function unlockKey(a: Args): Promise<void> {
  const call = connect(a);
  const quiet = bool(a, 'quiet');
  let key: string;
  if (bool(a, 'rotate')) {
    key = (await call('swarm.rotateUnlockKey', {})).key;
    if (!quiet) out('Successfully rotated manager unlock key.\n\n');
  } else {
    key = (await call('swarm.unlockKey', {})).key;
  }
  if (key === '') throw new UsageError('no unlock key is set');
  out(quiet ? `${key}\n` : unlockKeyText(key));
}

/**
 * `swarm unlock`: reads the key at a prompt (hidden) on a terminal, else the first line of STDIN,
 * and unlocks this manager. Refused at once on a node that is in no swarm or not locked (Docker).
 */
export async function unlock(a: Args): Promise<void> {
  const call = connect(a);
  const info = await call('swarm.info', {});
  if (info.localNodeState === 'inactive') throw new UsageError('This node is not part of a swarm');
  if (info.localNodeState !== 'locked') throw new UsageError('swarm is not locked');
  const key = await readKey('Enter unlock key: ');
  await call('swarm.unlock', { key });
}

/** Reads a key: hidden at a terminal prompt, else the first line of STDIN (trimmed). */
async function readKey(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const c of stdin) chunks.push(c as Buffer);
    return (Buffer.concat(chunks).toString('utf8').split('\n')[0] ?? '').trim();
  }
  process.stdout.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  let key = '';
  try {
    await new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer) => {
        for (const ch of d.toString('utf8')) {
          if (ch === '\r' || ch === '\n') {
            stdin.off('data', onData);
            return resolve();
          }
          if (ch === '\u0003') {
            stdin.off('data', onData);
            return reject(new UsageError('interrupted'));
          }
          if (ch === '\u007f') key = key.slice(0, -1);
          else key += ch;
        }
      };
      stdin.on('data', onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    process.stdout.write('\n');
  }
  return key.trim();
}
