/**
 * Secret and config files of task containers, kept in memory (docs/SECURITY.md): each task that has
 * any gets its own tmpfs at `<root>/<taskId>` (mode 0700, `nosuid,nodev,noexec`, sized to its
 * files), the files are written there with their owner and mode, the tmpfs is remounted read-only,
 * and each file is bind-mounted read-only into the container at its target. Nothing of it touches
 * the node's disk (tmpfs pages can only reach swap, as Docker's own secrets can). When the task's
 * container is removed the tmpfs is unmounted, and with it the data.
 *
 * Docker does the same for swarm secrets (moby `daemon/container_operations_unix.go`
 * `setupSecretDir`: a tmpfs under the container's directory, files written, remounted read-only,
 * bound into the container). Shoal cannot reach into dockerd's container directories, so the agent
 * mounts the tmpfs itself, on the same host: the Docker engine must run on the machine shoald runs on
 * (a `unix://` `--docker-host`), as it does in every supported setup.
 *
 * Needs root (mount, umount, chown), as shoald does anyway.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { TaskFile } from '@shoal/agent';

/** A bind mount of one file into a container (Engine API `HostConfig.Mounts` item). */
export interface FileMount {
  Type: 'bind';
  Source: string;
  Target: string;
  ReadOnly: true;
}

/** Runs a command; rejects with its stderr. Replaceable in tests. */
export type RunCommand = (cmd: string, args: string[]) => Promise<void>;

const runCommand: RunCommand = (cmd, args) => new Promise((resolve, reject) => {
  execFile(cmd, args, { timeout: 15_000 }, (err, _out, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${String(stderr).trim() || err.message}`)) : resolve()));
});

/** Mount points of this process's mount namespace (`/proc/self/mountinfo`, octal escapes decoded). */
export function mountPoints(): Set<string> {
  const out = new Set<string>();
  let text = '';
  try {
    text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length > 4) out.add(f[4]!.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))));
  }
  return out;
}

/** The per-task tmpfs mounts of one node's secrets and configs, under `root`. */
export class TaskFileMounts {
  /** Per task: the operation in progress (ensure, release and prune of one task never overlap). */
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(
    /** e.g. `/run/shoal/tasks/<nodeId>`: one directory per task with files. */
    readonly root: string,
    private readonly run: RunCommand = runCommand,
  ) {}

  /** The directory of a task's tmpfs. */
  dirOf(taskId: string): string {
    if (!/^[A-Za-z0-9_.-]+$/.test(taskId) || taskId.startsWith('.')) throw new Error(`invalid task id ${JSON.stringify(taskId)}`);
    return path.join(this.root, taskId);
  }

  /**
   * Makes sure task `taskId`'s files are on its tmpfs (mounting and filling it unless it is already
   * there, e.g. after an agent restart) and returns the container's bind mounts, in `files` order.
   * @throws Error naming the step that failed (mount, write, chown).
   */
  ensure(taskId: string, files: readonly TaskFile[]): Promise<FileMount[]> {
    return this.locked(taskId, async () => {
      const dir = this.dirOf(taskId);
      const names = files.map((f, i) => `${f.kind === 'secret' ? 's' : 'c'}${i}`);
      const mounts = files.map((f, i): FileMount => ({ Type: 'bind', Source: path.join(dir, names[i]!), Target: f.target, ReadOnly: true }));
      if (files.length === 0) return mounts;
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      if (this.isMounted(dir)) {
        if (names.every((n) => fs.existsSync(path.join(dir, n)))) return mounts;
        await this.unmount(dir); // a fill cut short: start over
      }
      const bytes = files.reduce((n, f) => n + f.data.byteLength + 4096, 0);
      const size = Math.ceil((bytes + 65536) / 4096) * 4096;
      await this.run('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700,nosuid,nodev,noexec`, 'tmpfs', dir]);
      try {
        files.forEach((f, i) => {
          const p = path.join(dir, names[i]!);
          fs.writeFileSync(p, f.data, { mode: 0o600 });
          fs.chownSync(p, f.uid, f.gid);
          fs.chmodSync(p, f.mode);
        });
        // Read-only from now on (moby remounts its secrets tmpfs the same way).
        await this.run('mount', ['-o', 'remount,ro,nosuid,nodev,noexec', dir]);
      } catch (e) {
        await this.unmount(dir).catch(() => undefined);
        throw new Error(`could not write the secrets and configs of task ${taskId}: ${(e as Error).message}`);
      }
      return mounts;
    });
  }

  /** Unmounts task `taskId`'s tmpfs (its data is gone with it) and removes its directory. Idempotent. */
  release(taskId: string): Promise<void> {
    return this.locked(taskId, async () => {
      const dir = this.dirOf(taskId);
      if (!fs.existsSync(dir)) return;
      if (this.isMounted(dir)) await this.unmount(dir);
      fs.rmSync(dir, { recursive: true, force: true });
    });
  }

  /** Releases every task directory under the root for which `keep(taskId)` is false when its turn comes. */
  async prune(keep: (taskId: string) => boolean): Promise<void> {
    let entries: string[];
    try {
      entries = fs.readdirSync(this.root);
    } catch {
      return;
    }
    for (const id of entries) {
      await this.locked(id, async () => {
        if (keep(id)) return;
        const dir = path.join(this.root, id);
        if (this.isMounted(dir)) await this.unmount(dir);
        fs.rmSync(dir, { recursive: true, force: true });
      });
    }
  }

  /** Task IDs that have files mounted now (for tests and diagnostics). */
  mounted(): string[] {
    let entries: string[];
    try {
      entries = fs.readdirSync(this.root);
    } catch {
      return [];
    }
    return entries.filter((id) => this.isMounted(path.join(this.root, id)));
  }

  private isMounted(dir: string): boolean {
    let real: string;
    try {
      real = fs.realpathSync(dir);
    } catch {
      return false;
    }
    return mountPoints().has(real);
  }

  private async unmount(dir: string): Promise<void> {
    try {
      await this.run('umount', [dir]);
    } catch {
      // Busy (a container still holds it): detach it now; the kernel frees it with the last user.
      await this.run('umount', ['-l', dir]);
    }
  }

  private locked<T>(taskId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(taskId) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.locks.set(taskId, tail);
    void tail.then(() => {
      if (this.locks.get(taskId) === tail) this.locks.delete(taskId);
    });
    return next;
  }
}
