import { spawn, execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';
import { ShoalClient } from '@shoal/client';

/** Repository root (test/dist/lib → ../../..). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const SHOALD = path.join(ROOT, 'cmd/shoald/bin/shoald.js');
export const SHOAL = path.join(ROOT, 'cmd/shoal/bin/shoal.js');
export const IMAGE = 'shoal/busybox:latest';
/**
 * An HTTP server answering with the container's hostname (busybox httpd). The shell stays PID 1
 * and exits on SIGTERM (httpd as PID 1 ignores it, so every stop would wait the whole grace period).
 */
export const HTTPD = ['sh', '-c', 'mkdir -p /www; hostname > /www/index.html; trap "exit 0" TERM; httpd -f -p 80 -h /www & wait'];

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * A real `shoald` process on the machine's real dockerd, with its own data dir and control
 * socket under a temp directory. `kill9()` + `start()` simulate a crash and restart.
 */
export class Shoald {
  proc: ChildProcess | undefined;
  readonly dir: string;
  readonly socket: string;
  readonly client: ShoalClient;
  log = '';

  constructor(readonly name = 'e2e', readonly extraArgs: string[] = []) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `shoal-${name}-`));
    this.socket = path.join(this.dir, 'shoal.sock');
    this.client = new ShoalClient(`unix://${this.socket}`);
  }

  async start(): Promise<void> {
    const logFile = fs.openSync(path.join(this.dir, 'shoald.log'), 'a');
    this.proc = spawn(process.execPath, [SHOALD, '--data-dir', path.join(this.dir, 'data'), '--socket', this.socket,
      '--hostname', `${this.name}-host`, '--listen-addr', '127.0.0.1:0', '--log-level', 'debug', ...this.extraArgs], {
      stdio: ['ignore', logFile, logFile],
    });
    fs.closeSync(logFile);
    await waitFor(async () => fs.existsSync(this.socket) && (await this.client.call('swarm.info').then(() => true, () => false)), {
      what: `shoald ${this.name} to answer on ${this.socket}`, timeoutMs: 20_000,
    }).catch((e) => {
      throw new Error(`${(e as Error).message}\n--- shoald log ---\n${this.logTail()}`);
    });
  }

  logTail(lines = 40): string {
    try {
      return fs.readFileSync(path.join(this.dir, 'shoald.log'), 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  /** SIGKILL, like a crash: no clean-up runs. */
  async kill9(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 8000))]);
    if (p.exitCode === null) await this.kill9();
  }

  /** Runs the real `shoal` CLI against this daemon. */
  cli(...args: string[]): Promise<CliResult> {
    return runCli(['--host', `unix://${this.socket}`, ...args]);
  }

  /** Stops the daemon and removes every container it ran (by its node ID label) and its temp dir. */
  async destroy(): Promise<void> {
    const info = await this.client.call<{ nodeId: string }>('swarm.info').catch(() => ({ nodeId: '' }));
    await this.stop();
    if (info.nodeId) await removeContainers({ 'shoal.node.id': info.nodeId });
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export function runCli(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--', SHOAL, ...args], { env, timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

export const docker = new Docker({ socketPath: '/var/run/docker.sock' });

/** Containers carrying all the given labels, checked through the Docker API (independently of Shoal). */
export async function containers(labels: Record<string, string>, all = false): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all, filters: { label: Object.entries(labels).map(([k, v]) => `${k}=${v}`) } });
}

export async function removeContainers(labels: Record<string, string>): Promise<void> {
  for (const c of await containers(labels, true)) {
    await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
  }
}

/** Polls `fn` until it returns a truthy value; throws naming `what` after `timeoutMs`. */
export async function waitFor<T>(
  fn: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  opts: { what: string; timeoutMs?: number; intervalMs?: number; seen?: () => string },
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as T;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const seen = opts.seen ? `; seen: ${opts.seen()}` : '';
      throw new Error(`timed out waiting for ${opts.what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)}${seen})`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 200));
  }
}

/** HTTP GET through busybox-free plain TCP (the image's `wget` segfaults; the host has node). */
export async function httpGet(host: string, port = 80, timeoutMs = 3000): Promise<string> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port, timeout: timeoutMs });
    let buf = '';
    s.on('connect', () => s.write('GET / HTTP/1.0\r\n\r\n'));
    s.on('data', (d) => (buf += d.toString()));
    s.on('end', () => resolve(buf));
    s.on('timeout', () => s.destroy(new Error(`timeout reaching ${host}:${port}`)));
    s.on('error', reject);
  });
}
