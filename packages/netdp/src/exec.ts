/**
 * Thin shell over `child_process.spawn` for the network tools (`nft`, `ip`, `bridge`, `iptables`,
 * `conntrack`, `ipvsadm`). No shell is involved: argv goes straight to execve.
 */
import { spawn } from 'node:child_process';

/** Absolute paths: `node_modules/.bin/nft` (an unrelated npm tool) shadows `nft` under `npm run`. */
export const NFT = '/usr/sbin/nft';
export const NSENTER = '/usr/bin/nsenter';

export interface RunOptions {
  /** Text fed to stdin (e.g. an nft transaction). */
  input?: string;
  /**
   * Network namespace to run in: a name under /var/run/netns (`ip netns add`) or an absolute path
   * to a netns file. Runs `nsenter --net=<path> <argv…>`.
   */
  netns?: string;
  /** Kill the process after this many ms (default 30000). */
  timeoutMs?: number;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export const netnsPath = (ns: string): string => (ns.startsWith('/') ? ns : `/var/run/netns/${ns}`);

/** argv actually spawned for `argv` in `netns` (pure; exported for tests). */
export function wrapNetns(argv: readonly string[], netns?: string): string[] {
  return netns ? [NSENTER, `--net=${netnsPath(netns)}`, ...argv] : [...argv];
}

/**
 * Run a command; resolves with its exit code and output (never rejects on a non-zero exit).
 * A command that cannot be started (ENOENT) resolves with code 127 and the error in stderr.
 */
export function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const full = wrapNetns(argv, opts.netns);
  return new Promise((resolve) => {
    const child = spawn(full[0]!, full.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let done = false;
    const finish = (r: RunResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(r);
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish({ code: 124, stdout, stderr: `${stderr}\n${full.join(' ')}: timed out after ${opts.timeoutMs ?? 30000} ms` });
    }, opts.timeoutMs ?? 30000);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (e) => finish({ code: 127, stdout, stderr: `${full[0]}: ${e.message}` }));
    child.on('close', (code, sig) => finish({ code: code ?? (sig ? 128 : 1), stdout, stderr }));
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

/** Error thrown when a command exits non-zero; `stderr` holds the tool's own message. */
export class CommandError extends Error {
  constructor(readonly argv: readonly string[], readonly code: number, readonly stderr: string) {
    super(`${argv.join(' ')} exited ${code}: ${stderr.trim().split('\n').slice(0, 20).join('\n')}`);
    this.name = 'CommandError';
  }
}

/** Run and return stdout. @throws CommandError on a non-zero exit. */
export async function runOk(argv: readonly string[], opts: RunOptions = {}): Promise<string> {
  const r = await run(argv, opts);
  if (r.code !== 0) throw new CommandError(wrapNetns(argv, opts.netns), r.code, r.stderr);
  return r.stdout;
}
