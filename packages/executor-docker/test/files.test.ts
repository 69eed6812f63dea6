import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TaskFile } from '@shoal/agent';
import { fakeTask, until } from '@shoal/testkit';
import { DockerExecutor } from '../src/executor.js';
import { mountPoints } from '../src/files.js';
import { RUN_LABEL, cleanup, dockerClient, requireDocker, runId } from './helpers.js';

// Secrets and configs in task containers on a real dockerd: a per-task tmpfs, bind-mounted files
// (uses dockerd and mounts: run under the machine-wide lock).

const docker = dockerClient();
const RUN = runId();
const NODE = `${RUN}n1`;
const execRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-exec-'));
const exec = new DockerExecutor({ nodeId: NODE, execRoot });

test.before(async () => {
  await requireDocker(docker);
});
test.after.always(async () => {
  await cleanup(docker, RUN);
  await exec.pruneTaskFiles(() => false).catch(() => undefined);
  fs.rmSync(execRoot, { recursive: true, force: true });
});

/** The file-system type of the mount that holds `p` (longest mount point prefix). */
function fsTypeOf(p: string): string {
  let best = '';
  let type = '';
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const mp = f[4];
    const sep = f.indexOf('-');
    if (!mp || sep < 0) continue;
    if ((p === mp || p.startsWith(mp.endsWith('/') ? mp : `${mp}/`)) && mp.length >= best.length) {
      best = mp;
      type = f[sep + 1]!;
    }
  }
  return type;
}

const SECRET = 'hunter2-4b1d9e';
const file = (o: Partial<TaskFile> & Pick<TaskFile, 'target'>): TaskFile => ({ kind: 'secret', name: 'db_pass', data: Buffer.from(SECRET), uid: 0, gid: 0, mode: 0o444, ...o });

test.serial('a secret with mode 0400 and a target name: that content, mode and owner in the container; bound from a tmpfs, never the disk; gone with the task', async (t) => {
  const files = [
    file({ target: '/run/secrets/db', uid: 1000, gid: 1001, mode: 0o400 }),
    file({ kind: 'config', name: 'app.conf', target: '/etc/app.conf', data: Buffer.from('port=80\n'), mode: 0o444 }),
  ];
  const task = fakeTask({
    nodeId: NODE, serviceName: `${RUN}-svc`, labels: { [RUN_LABEL]: RUN },
    command: ['sh', '-c', 'stat -c "%a %u %g %s" /run/secrets/db /etc/app.conf; cat /run/secrets/db; echo; cat /etc/app.conf; echo x > /run/secrets/db 2>/dev/null || echo read-only; echo ready; trap "exit 0" TERM; sleep 60 & wait'],
  });
  const ctl = exec.controller(task, () => files);
  await ctl.prepare();
  await ctl.start();
  const id = (await ctl.inspect()).containerId!;
  const logs = async () => (await docker.getContainer(id).logs({ stdout: true, stderr: true })).toString('utf8').replace(/[\x00-\x08]/g, '');
  await until(async () => (await logs()).includes('ready'), 'the container read its files');
  const out = await logs();
  t.regex(out, /400 1000 1001 14\b/);
  t.regex(out, /444 0 0 8\b/);
  t.regex(out, new RegExp(SECRET));
  t.regex(out, /port=80/);
  t.regex(out, /read-only/);
  // The container's mounts: only binds of files on the task's tmpfs, read-only.
  const info = await docker.getContainer(id).inspect();
  const binds = (info.Mounts as { Type: string; Source: string; Destination: string; RW: boolean }[]).filter((m) => m.Type === 'bind');
  t.deepEqual(binds.map((m) => m.Destination).sort(), ['/etc/app.conf', '/run/secrets/db']);
  for (const m of binds) {
    t.false(m.RW);
    t.is(fsTypeOf(m.Source), 'tmpfs', `${m.Destination} comes from a tmpfs, not the node's disk (${m.Source})`);
    t.true(m.Source.startsWith(path.join(execRoot, 'tasks', NODE, task.id)));
  }
  const dir = path.join(execRoot, 'tasks', NODE, task.id);
  t.true(mountPoints().has(fs.realpathSync(dir)));
  t.deepEqual(exec.taskFiles.mounted(), [task.id]);
  // The task ends: the tmpfs goes with the data, before the container is removed.
  await ctl.shutdown();
  t.false(fs.existsSync(dir));
  t.deepEqual(exec.taskFiles.mounted(), []);
  await ctl.remove();
});

test.serial('an agent restart adopts a task whose tmpfs is still mounted; prune drops the files of tasks not kept; a task without files gets no tmpfs', async (t) => {
  const task = fakeTask({ nodeId: NODE, serviceName: `${RUN}-adopt`, labels: { [RUN_LABEL]: RUN }, command: ['sh', '-c', 'cat /run/secrets/db_pass; echo; sleep 30'] });
  await exec.controller(task, () => [file({ target: '/run/secrets/db_pass' })]).prepare();
  // A second controller (as after an agent restart) prepares again: same mount, nothing rewritten.
  const again = exec.controller(task, () => [file({ target: '/run/secrets/db_pass' })]);
  await again.prepare();
  await again.start();
  const id = (await again.inspect()).containerId!;
  await until(async () => (await docker.getContainer(id).logs({ stdout: true })).toString().includes(SECRET), 'the secret is read');
  const plain = fakeTask({ nodeId: NODE, serviceName: `${RUN}-plain`, labels: { [RUN_LABEL]: RUN }, command: ['true'] });
  await exec.controller(plain, () => []).prepare();
  t.deepEqual(exec.taskFiles.mounted(), [task.id]);
  await exec.pruneTaskFiles((taskId) => taskId === task.id);
  t.deepEqual(exec.taskFiles.mounted(), [task.id], 'kept');
  await again.terminate();
  await docker.getContainer(id).remove({ force: true });
  await exec.pruneTaskFiles(() => false);
  t.deepEqual(exec.taskFiles.mounted(), []);
  t.deepEqual(fs.readdirSync(path.join(execRoot, 'tasks', NODE)), []);
});
