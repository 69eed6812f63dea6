import test from 'ava';
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Shoald, containers, docker, waitFor, IMAGE, SHOAL, type CliResult } from '../lib/harness.js';

// Issue 10 on one machine, real dockerd and LevelDB: secrets and configs in task containers, a
// templated config, autolock across a restart, and no plaintext in the manager's data directory.
// Steps share one daemon, so they run in order.

const d = new Shoald('sec');
const SECRET = 'pg-password-e2e-51c0';
let nodeId = '';
let unlockKey = '';

const tasksOf = async (svc: string) => (await containers({ 'shoal.service.name': svc, 'shoal.node.id': nodeId })).filter((c) => c.State === 'running');
const exec = (id: string, cmd: string) => execFileSync('docker', ['exec', id, 'sh', '-c', cmd], { encoding: 'utf8' });

/** The real `shoal` CLI against this daemon, with `input` on STDIN (`swarm unlock`). */
function cliInput(input: string, ...args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [SHOAL, '--host', `unix://${d.socket}`, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
    child.stdin!.end(input);
  });
}

/** Files under `dir` holding `needle`. */
function grep(dir: string, needle: string): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    for (const e of fs.readdirSync(p, { withFileTypes: true })) {
      const f = path.join(p, e.name);
      if (e.isDirectory()) walk(f);
      else if (e.isFile() && fs.readFileSync(f).includes(needle)) out.push(f);
    }
  };
  walk(dir);
  return out;
}

test.before(async () => {
  await d.start();
});

test.after.always(async () => {
  await d.cli('service', 'rm', 'app').catch(() => undefined);
  await waitFor(async () => !fs.existsSync(path.join(d.dir, 'tasks', nodeId)) || fs.readdirSync(path.join(d.dir, 'tasks', nodeId)).length === 0, { what: 'task files gone', timeoutMs: 30_000 }).catch(() => undefined);
  await d.destroy().catch(() => undefined);
});

test.serial('swarm init --autolock prints the unlock key', async (t) => {
  const r = await d.cli('swarm', 'init', '--autolock');
  t.is(r.code, 0, r.stderr);
  unlockKey = /SWMKEY-1-[A-Za-z0-9+/]{43}/.exec(r.stdout)?.[0] ?? '';
  t.truthy(unlockKey, r.stdout);
  t.regex(r.stdout, /To unlock a swarm manager after it restarts, run the `shoal swarm unlock`/);
  nodeId = (await d.client.call<{ nodeId: string }>('swarm.info')).nodeId;
});

test.serial('a secret (mode 0400, target db, uid 1000) and a templated config in the tasks; bound from a tmpfs', async (t) => {
  const file = path.join(d.dir, 'pw.txt');
  fs.writeFileSync(file, SECRET);
  t.is((await d.cli('secret', 'create', 'db_pass', file)).code, 0);
  fs.rmSync(file);
  const conf = path.join(d.dir, 'app.tmpl');
  fs.writeFileSync(conf, 'slot={{ .Task.Slot }} host={{ .Node.Hostname }} db={{ secret "db" }}\n');
  t.is((await d.cli('config', 'create', '--template-driver', 'golang', 'app_conf', conf)).code, 0);
  fs.rmSync(conf);
  const r = await d.cli('service', 'create', '--name', 'app', '--replicas', '2', '-d',
    '--secret', 'source=db_pass,target=db,uid=1000,gid=1000,mode=0400', '--config', 'source=app_conf,target=/etc/app.conf',
    IMAGE, 'sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait');
  t.is(r.code, 0, r.stderr);
  const cs = await waitFor(async () => {
    const l = await tasksOf('app');
    return l.length === 2 ? l : undefined;
  }, { what: '2 running tasks of app' });
  const seen: string[] = [];
  for (const c of cs) {
    t.is(exec(c.Id, 'stat -c "%a %u %g" /run/secrets/db').trim(), '400 1000 1000');
    t.is(exec(c.Id, 'cat /run/secrets/db'), SECRET);
    seen.push(exec(c.Id, 'cat /etc/app.conf').trim());
    const mounts = (await docker.getContainer(c.Id).inspect()).Mounts as { Type: string; Source: string; Destination: string }[];
    for (const m of mounts.filter((x) => x.Type === 'bind')) {
      t.true(m.Source.startsWith(path.join(d.dir, 'tasks', nodeId)), `${m.Destination} from ${m.Source}`);
      const fsType = execFileSync('stat', ['-f', '-c', '%T', m.Source], { encoding: 'utf8' }).trim();
      t.is(fsType, 'tmpfs', `${m.Destination} comes from a tmpfs`);
    }
  }
  t.deepEqual(seen.sort(), [1, 2].map((slot) => `slot=${slot} host=sec-host db=${SECRET}`));
  const inspect = await d.cli('secret', 'inspect', 'db_pass');
  t.false(inspect.stdout.includes(Buffer.from(SECRET).toString('base64')), 'secret inspect never shows the data');
  const rm = await d.cli('secret', 'rm', 'db_pass');
  t.is(rm.code, 1);
  t.is(rm.stderr, 'Error: secret \'db_pass\' is in use by the following service: app\n');
});

test.serial('no plaintext in the manager\'s data directory', (t) => {
  const data = path.join(d.dir, 'data');
  t.deepEqual(grep(data, SECRET), []);
  t.deepEqual(grep(data, Buffer.from(SECRET).toString('base64')), []);
  t.false(fs.existsSync(path.join(data, 'certs', 'swarm-node.key')), 'the node key is wrapped by the unlock key');
});

test.serial('restart: locked, commands refused with Docker\'s message; a wrong key refused; the key brings the services back', async (t) => {
  await d.stop();
  await d.start();
  const info = await d.cli('info');
  t.regex(info.stdout, /^Swarm: locked$/m);
  const ls = await d.cli('service', 'ls');
  t.is(ls.code, 1);
  t.is(ls.stderr, 'Error: Swarm is encrypted and needs to be unlocked before it can be used. Please use "shoal swarm unlock" to unlock it.\n');
  const wrong = await cliInput(`SWMKEY-1-${'B'.repeat(43)}\n`, 'swarm', 'unlock');
  t.is(wrong.code, 1);
  t.is(wrong.stderr, 'Error: swarm could not be unlocked: invalid key provided\n');
  const ok = await cliInput(`${unlockKey}\n`, 'swarm', 'unlock');
  t.is(ok.code, 0, ok.stderr);
  await waitFor(async () => /app\s+replicated\s+2\/2/.test((await d.cli('service', 'ls')).stdout), { what: 'app 2/2 again' });
});

test.serial('rotate the unlock key; after a restart only the new key unlocks', async (t) => {
  const r = await d.cli('swarm', 'unlock-key', '--rotate', '-q');
  t.is(r.code, 0, r.stderr);
  const fresh = r.stdout.trim();
  t.not(fresh, unlockKey);
  await d.stop();
  await d.start();
  t.is((await cliInput(`${unlockKey}\n`, 'swarm', 'unlock')).code, 1);
  const ok = await cliInput(`${fresh}\n`, 'swarm', 'unlock');
  t.is(ok.code, 0, ok.stderr);
  t.regex((await d.cli('info')).stdout, /^Swarm: active$/m);
});
