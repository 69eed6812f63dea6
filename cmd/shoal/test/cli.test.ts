import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { node, service, task } from './fixtures.js';

/**
 * End-to-end tests of the bundled `shoal` executable (bin/shoal.js → dist/shoal.mjs): real
 * processes, real exit codes, a real HTTP server on a unix socket. The server is a FakeDaemon (it
 * answers the RPC contract from canned data) because these tests are about the CLI, not shoald.
 */

const BIN = join(dirname(fileURLToPath(import.meta.url)), '../../bin/shoal.js');
const BUNDLE = join(dirname(BIN), '../dist/shoal.mjs');

type Handler = (params: Record<string, unknown>) => unknown;

/** Error a FakeDaemon handler throws to answer with `{error:{code,message}}`. */
class RpcFailure extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

/** A stand-in for shoald's control socket: `POST /shoal/v1/<method>` answered by `handlers`. */
class FakeDaemon {
  readonly calls: { method: string; params: Record<string, unknown> }[] = [];
  readonly dir = mkdtempSync(join(tmpdir(), 'shoal-cli-'));
  readonly socketPath = join(this.dir, 'shoal.sock');
  private readonly server: http.Server;

  constructor(readonly handlers: Record<string, Handler> = {}) {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const method = (req.url ?? '').replace('/shoal/v1/', '');
        const params = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
        this.calls.push({ method, params });
        const h = this.handlers[method];
        let status = 200;
        let body: unknown;
        try {
          if (!h) throw new RpcFailure('Unimplemented', `method ${method} is not implemented`);
          body = { result: h(params) };
        } catch (e) {
          status = e instanceof RpcFailure && e.code === 'NotFound' ? 404 : 400;
          body = { error: { code: e instanceof RpcFailure ? e.code : 'Internal', message: (e as Error).message } };
        }
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      });
    });
  }

  get host(): string {
    return `unix://${this.socketPath}`;
  }

  start(): Promise<void> {
    return new Promise((resolve) => this.server.listen(this.socketPath, resolve));
  }

  async stop(): Promise<void> {
    await new Promise((resolve) => this.server.close(resolve));
    rmSync(this.dir, { recursive: true, force: true });
  }

  methods(): string[] {
    return this.calls.map((c) => c.method);
  }
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function shoal(args: string[], host = 'unix:///nonexistent/shoal.sock'): Promise<Result> {
  if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing; build it with \`npx tsc -b cmd/shoal && node cmd/shoal/build.mjs\``);
  return new Promise((resolve) => {
    execFile(process.execPath, ['--', BIN, ...args], { env: { ...process.env, SHOAL_HOST: host }, timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function withDaemon(handlers: Record<string, Handler>, fn: (d: FakeDaemon) => Promise<void>): Promise<void> {
  const d = new FakeDaemon(handlers);
  await d.start();
  try {
    await fn(d);
  } finally {
    await d.stop();
  }
}

const oneLineError = (t: import('ava').ExecutionContext, r: Result, expected: string | RegExp) => {
  t.is(r.code, 1);
  t.is(r.stdout, '');
  t.is(r.stderr.split('\n').length, 2, `expected one line, got: ${r.stderr}`);
  if (typeof expected === 'string') t.is(r.stderr, `Error: ${expected}\n`);
  else t.regex(r.stderr, expected);
};

test('bad input: one line on stderr, exit 1, nothing sent to the daemon', async (t) => {
  await withDaemon({}, async (d) => {
    const cases: [string[], string | RegExp][] = [
      [['service', 'create', '--replicas', 'abc', 'img'], 'invalid replicas value "abc": must be a whole number >= 0'],
      [['service', 'create', '--replicas', '-1', 'img'], 'invalid replicas value "-1": must be a whole number >= 0'],
      [['service', 'scale', 'web'], 'invalid scale argument "web": expected SERVICE=REPLICAS, e.g. web=3'],
      [['service', 'scale', 'web=x'], 'invalid replicas value "x" for service web: must be a whole number >= 0'],
      [['service', 'create', '--restart-delay', '5', 'img'], 'invalid --restart-delay value "5": missing unit; e.g. 5s'],
      [['service', 'create', '-p', '80:80/sctp', 'img'], /^Error: invalid --publish value "80:80\/sctp": protocol must be tcp or udp\n$/],
      [['service', 'ls', '--bogus'], /^Error: unknown flag: --bogus; see 'shoal service ls --help'\n$/],
      [['service', 'create', '--name', 'x', '--no-such-flag', 'img', 'top'], /^Error: unknown flag: --no-such-flag; see 'shoal service create --help'\n$/],
      [['service', 'frobnicate'], `unknown command "frobnicate" for "shoal service"; commands: create, inspect, ls, ps, rm, rollback, scale, update; see 'shoal service --help'`],
      [['service', 'lss'], `unknown command "lss" for "shoal service"; did you mean "ls"? See 'shoal service --help'`],
      [['servce', 'ls'], `unknown command "servce" for "shoal"; did you mean "service"? See 'shoal --help'`],
      [['service', 'ls', 'extra'], `unknown argument "extra" for "shoal service ls"; see 'shoal service ls --help'`],
      // An unknown command is named as such whatever flags or `-` follow it (not "unknown flag: -c").
      [['frobnicate', 'deploy', '-c', 'F'], /^Error: unknown command "frobnicate" for "shoal"; commands: [a-z, ]*\bservice\b[a-z, ]*; see 'shoal --help'\n$/],
      [['frobnicate', 'create', 'x', '-'], /^Error: unknown command "frobnicate" for "shoal"; /],
      [['-H', d.host, 'frobnicate', '--bogus'], /^Error: unknown command "frobnicate" for "shoal"; /],
      [['servce', 'ls', '-q'], `unknown command "servce" for "shoal"; did you mean "service"? See 'shoal --help'`],
      [['service', 'lss', '-q'], `unknown command "lss" for "shoal service"; did you mean "ls"? See 'shoal service --help'`],
      [['node', 'frob', '--format', '{{.ID}}', 'x'], /^Error: unknown command "frob" for "shoal node"; commands: [a-z, ]*\bpromote\b[a-z, ]*; see 'shoal node --help'\n$/],
      [['service', 'create', '--name', 'x.y', 'img'], `invalid service name "x.y": use letters, digits, '-' and '_', starting and ending with a letter or digit, at most 63 characters (no dots)`],
      [['service', 'create', '-p', '-1:80', 'img'], 'invalid --publish value "-1:80": published port "-1" must be a number 1-65535'],
      [['service', 'create', '--stop-grace-period', '1000000000h', 'img'], 'invalid --stop-grace-period value "1000000000h": longer than the longest duration, 2562047h47m16.854775807s'],
      [['swarm', 'join', '--token', 'T', '10.0.0.1:0'], 'invalid manager address "10.0.0.1:0": expected HOST[:PORT], e.g. 10.0.0.1 or 10.0.0.1:2377 (default port 2377)'],
      [['service', 'ps'], /^Error: "shoal service ps" requires at least 1 argument/],
      [['service', 'create'], /^Error: "shoal service create" requires at least 1 argument/],
      [['swarm', 'join-token', 'admin'], 'invalid role "admin": use worker or manager'],
      [['node', 'update', '--availability', 'sleep', 'n1'], 'invalid --availability value "sleep": use active, pause or drain'],
      [['service'], /^Error: missing subcommand; run 'shoal service --help' for the list\n$/],
    ];
    for (const [args, expected] of cases) oneLineError(t, await shoal(args, d.host), expected);
    t.deepEqual(d.methods(), []);
  });
});

test('--version and --help succeed', async (t) => {
  const v = await shoal(['--version']);
  t.is(v.code, 0);
  t.is(v.stdout, 'shoal version 0.1.0\n');
  const h = await shoal(['service', '--help']);
  t.is(h.code, 0);
  t.regex(h.stdout, /shoal service create <image>/);
  t.is(h.stderr, '');
});

test('daemon not reachable: one line naming the socket', async (t) => {
  const r = await shoal(['service', 'ls'], 'unix:///nonexistent/shoal.sock');
  oneLineError(t, r, /^Error: cannot reach shoald at unix:\/\/\/nonexistent\/shoal\.sock \(ENOENT\)/);
});

test('a host other than a unix socket is refused in one line, from $SHOAL_HOST or --host', async (t) => {
  const msg = 'unsupported host tcp://1.2.3.4:1: shoal talks to the local shoald over unix:///path only';
  oneLineError(t, await shoal(['service', 'ls'], 'tcp://1.2.3.4:1'), msg);
  oneLineError(t, await shoal(['--host', 'tcp://1.2.3.4:1', 'service', 'ls']), msg);
  oneLineError(t, await shoal(['-H', 'tcp://1.2.3.4:1', 'node', 'ls']), msg);
  oneLineError(t, await shoal(['-H', '1.2.3.4:2375', 'service', 'ls']), 'unsupported host 1.2.3.4:2375: shoal talks to the local shoald over unix:///path only');
});

test('service ls renders the daemon answer as a Docker table, -q as IDs', async (t) => {
  const items = [
    { service: service({ id: 'bbbbbbbbbbbb999', name: 'web', replicas: 3 }), running: 3, desired: 3 },
    { service: service({ id: 'aaaaaaaaaaaa999', name: 'api', replicas: 1 }), running: 0, desired: 1 },
  ];
  await withDaemon({ 'service.ls': () => items }, async (d) => {
    const r = await shoal(['service', 'ls'], d.host);
    t.is(r.code, 0);
    t.is(r.stdout, [
      'ID             NAME      MODE         REPLICAS   IMAGE                  PORTS',
      'aaaaaaaaaaaa   api       replicated   0/1        shoal/busybox:latest   ',
      'bbbbbbbbbbbb   web       replicated   3/3        shoal/busybox:latest   ',
      '',
    ].join('\n'));
    const q = await shoal(['-H', d.host, 'service', 'ls', '-q'], 'unix:///nonexistent/shoal.sock');
    t.is(q.stdout, 'aaaaaaaaaaaa\nbbbbbbbbbbbb\n');
  });
});

test('service create sends the spec, prints the ID, then waits for convergence', async (t) => {
  const svc = service({ id: 'svc1', name: 'web', replicas: 2 });
  const at = new Date().toISOString();
  await withDaemon({
    'service.create': () => ({ id: 'svc1' }),
    'service.inspect': () => svc,
    'service.ps': () => ({ tasks: [task({ id: 'a', slot: 1, state: 'running', at }), task({ id: 'b', slot: 2, state: 'running', at })], nodes: { n1: 'node-1' } }),
  }, async (d) => {
    const r = await shoal(['service', 'create', '--name', 'web', '--replicas', '2', '-e', 'A=1', '-p', '8080:80', 'shoal/busybox:latest', 'httpd', '-f', '-p', '80'], d.host);
    t.is(r.code, 0, r.stderr);
    t.is(r.stdout, 'svc1\n');
    t.regex(r.stderr, /^overall progress: 2 out of 2 tasks$/m);
    t.regex(r.stderr, /^verify: Service svc1 converged$/m);
    t.deepEqual(d.calls[0], {
      method: 'service.create',
      params: {
        name: 'web', image: 'shoal/busybox:latest', replicas: 2, args: ['httpd', '-f', '-p', '80'], env: ['A=1'],
        ports: [{ protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress' }],
      },
    });
    const detached = await shoal(['service', 'create', '-d', '--name', 'web', 'shoal/busybox:latest'], d.host);
    t.is(detached.stdout, 'svc1\n');
    t.is(detached.stderr, '');
  });
});

test('service create exits 1 with the task error when every task is rejected', async (t) => {
  const svc = service({ id: 'svc1', name: 'web', replicas: 1, image: 'nosuch:latest' });
  const at = new Date().toISOString();
  const err = 'No such image: nosuch:latest (not present locally and could not be pulled)';
  await withDaemon({
    'service.create': () => ({ id: 'svc1' }),
    'service.inspect': () => svc,
    'service.ps': () => ({ tasks: [task({ id: 'a', slot: 1, state: 'rejected', desired: 'shutdown', at, err })], nodes: {} }),
  }, async (d) => {
    const r = await shoal(['service', 'create', '--name', 'web', 'nosuch:latest'], d.host);
    t.is(r.code, 1);
    t.is(r.stdout, 'svc1\n');
    t.is(r.stderr, `overall progress: 0 out of 1 tasks\nError: service web was created, but its tasks fail: ${err}. See 'shoal service ps web'; remove it with 'shoal service rm web'\n`);
  });
});

test('service create: a task stuck on a constraint shows why it is pending, as service ps does', async (t) => {
  const svc = service({ id: 'svc1', name: 'web', replicas: 1 });
  const at = new Date().toISOString();
  const why = 'no suitable node (scheduling constraints not satisfied on 1 node)';
  let polls = 0;
  await withDaemon({
    'service.create': () => ({ id: 'svc1' }),
    'service.inspect': () => svc,
    // Pending for three polls (the user then relaxes the constraint), then running.
    'service.ps': () => ({ tasks: [++polls <= 3 ? task({ id: 'a', slot: 1, state: 'pending', at, err: why }) : task({ id: 'a', slot: 1, state: 'running', at })], nodes: {} }),
  }, async (d) => {
    const r = await shoal(['service', 'create', '--name', 'web', '--constraint', 'node.labels.zone==x', 'shoal/busybox:latest'], d.host);
    t.is(r.code, 0, r.stderr);
    t.is(r.stderr, `overall progress: 0 out of 1 tasks\nweb.1: pending: ${why}\noverall progress: 1 out of 1 tasks\nverify: Service svc1 converged\n`);
  });
});

test('service update that changes no task: an old task\'s error is not repeated; a new one is shown', async (t) => {
  const svc = service({ id: 'svc1', name: 'web', replicas: 2 });
  const at = new Date().toISOString();
  const old = task({ id: 'old', slot: 1, state: 'failed', desired: 'shutdown', at, err: 'task: non-zero exit (1)' });
  let polls = 0;
  await withDaemon({
    'service.inspect': () => svc,
    'service.update': () => ({ id: 'svc1' }),
    'service.ps': () => {
      polls++;
      const tasks = [old, task({ id: 'a', slot: 1, state: 'running', at })];
      // Slot 2 (the new replica) fails once, then its replacement runs.
      if (polls >= 2) tasks.push(task({ id: 'b', slot: 2, state: 'failed', desired: 'shutdown', at, err: 'task: non-zero exit (2)' }));
      if (polls >= 3) tasks.push(task({ id: 'c', slot: 2, state: 'running', at }));
      return { tasks, nodes: {} };
    },
  }, async (d) => {
    const r = await shoal(['service', 'update', '--replicas', '2', 'web'], d.host);
    t.is(r.code, 0, r.stderr);
    t.notRegex(r.stderr, /non-zero exit \(1\)/);
    t.regex(r.stderr, /^web\.2: task: non-zero exit \(2\)$/m);
    t.regex(r.stderr, /verify: Service svc1 converged\n$/);
  });
});

test('service update whose new tasks all fail: exit 1, the message says the update was applied', async (t) => {
  const svc = service({ id: 'svc1', name: 'web', replicas: 1 });
  svc.specVersion = 2;
  const at = new Date().toISOString();
  const err = 'task: non-zero exit (127)';
  await withDaemon({
    'service.inspect': () => svc,
    'service.update': () => ({ id: 'svc1' }),
    'service.ps': () => ({ tasks: [task({ id: 'a', slot: 1, state: 'failed', desired: 'shutdown', at, err, specVersion: 2 })], nodes: {} }),
  }, async (d) => {
    const r = await shoal(['service', 'update', '--args', 'bogus', 'web'], d.host);
    t.is(r.code, 1);
    t.is(r.stdout, 'web\n');
    t.regex(r.stderr, /\nError: service web was updated \(the update is applied\), but its tasks fail: task: non-zero exit \(127\)\. See 'shoal service ps web'; undo it with 'shoal service rollback web'\n$/);
  });
});

test('daemon errors print "Error: <message>" and exit 1; multi-target commands go on', async (t) => {
  await withDaemon({
    'service.scale': (p) => {
      throw new RpcFailure('NotFound', `no such service: ${String(p['ref'])}`);
    },
    'service.rm': (p) => {
      if (p['ref'] === 'b') throw new RpcFailure('NotFound', 'no such service: b');
      return { id: String(p['ref']) };
    },
  }, async (d) => {
    oneLineError(t, await shoal(['service', 'scale', 'nosuch=3'], d.host), 'no such service: nosuch');
    const rm = await shoal(['service', 'rm', 'a', 'b', 'c'], d.host);
    t.is(rm.code, 1);
    t.is(rm.stdout, 'a\nc\n');
    t.is(rm.stderr, 'Error: no such service: b\n');
  });
});

test('service scale prints "<svc> scaled to N" and waits', async (t) => {
  const svc = service({ id: 'svc1', name: 'web', replicas: 1 });
  await withDaemon({
    'service.scale': (p) => ({ id: 'svc1', replicas: p['replicas'] }),
    'service.inspect': () => svc,
    'service.ps': () => ({ tasks: [task({ id: 'a', slot: 1, state: 'running', at: new Date().toISOString() })], nodes: {} }),
  }, async (d) => {
    const r = await shoal(['service', 'scale', 'web=1'], d.host);
    t.is(r.code, 0, r.stderr);
    t.is(r.stdout, 'web scaled to 1\n');
    t.deepEqual(d.calls[0], { method: 'service.scale', params: { ref: 'web', replicas: 1 } });
    t.regex(r.stderr, /verify: Service svc1 converged/);
  });
});

test('service ps shows history rows and resolves node names', async (t) => {
  const now = Date.now();
  const iso = (ago: number) => new Date(now - ago).toISOString();
  await withDaemon({
    'service.ps': () => ({
      tasks: [
        task({ id: 'old000000000aaaa', slot: 1, state: 'failed', desired: 'shutdown', at: iso(3 * 3_600_000), createdAt: iso(4 * 3_600_000), err: 'task: non-zero exit (1)' }),
        task({ id: 'new000000000bbbb', slot: 1, state: 'running', at: iso(2 * 3_600_000), createdAt: iso(2 * 3_600_000) }),
      ],
      nodes: { n1: 'node-1' },
    }),
  }, async (d) => {
    const r = await shoal(['service', 'ps', 'web'], d.host);
    t.is(r.code, 0, r.stderr);
    const ls = r.stdout.split('\n');
    t.regex(ls[0]!, /^ID +NAME +IMAGE +NODE +DESIRED STATE +CURRENT STATE +ERROR +PORTS$/);
    t.regex(ls[1]!, /^new000000000 +web\.1 +shoal\/busybox:latest +node-1 +Running +Running 2 hours ago +$/);
    t.regex(ls[2]!, /^old000000000 +\\_ web\.1 +shoal\/busybox:latest +node-1 +Shutdown +Failed 3 hours ago +"task: non-zero exit \(1\)" +$/);
    const f = await shoal(['service', 'ps', '-f', 'desired-state=running', 'web'], d.host);
    t.is(f.code, 0);
    t.deepEqual(d.calls.at(-1), { method: 'service.ps', params: { ref: 'web', desiredState: 'running' } });
  });
});

test('swarm init prints the join command, or only the first line without tokens', async (t) => {
  await withDaemon({
    'swarm.init': () => ({ nodeId: 'abc123' }),
    'swarm.joinToken': () => ({ token: 'SWMTKN-1-xyz-secret', managerAddr: '10.0.0.1:2377' }),
  }, async (d) => {
    const r = await shoal(['swarm', 'init', '--advertise-addr', '10.0.0.1'], d.host);
    t.is(r.code, 0, r.stderr);
    t.is(r.stdout, [
      'Swarm initialized: current node (abc123) is now a manager.',
      '',
      'To add a worker to this swarm, run the following command:',
      '',
      '    shoal swarm join --token SWMTKN-1-xyz-secret 10.0.0.1:2377',
      '',
      "To add a manager to this swarm, run 'shoal swarm join-token manager' and follow the instructions.",
      '',
      '',
    ].join('\n'));
    t.deepEqual(d.calls[0], { method: 'swarm.init', params: { advertiseAddr: '10.0.0.1' } });
  });
  await withDaemon({ 'swarm.init': () => ({ nodeId: 'abc123' }) }, async (d) => {
    const r = await shoal(['swarm', 'init'], d.host);
    t.is(r.code, 0);
    t.is(r.stdout, 'Swarm initialized: current node (abc123) is now a manager.\n');
  });
});

test('node ls marks the local node', async (t) => {
  await withDaemon({
    'node.ls': () => ({ nodes: [node({ id: 'b'.repeat(25), hostname: 'node-2', worker: true }), node({ id: 'a'.repeat(25), hostname: 'node-1', leader: true })], selfId: 'a'.repeat(25) }),
  }, async (d) => {
    const r = await shoal(['node', 'ls'], d.host);
    t.is(r.code, 0, r.stderr);
    t.is(r.stdout, [
      'ID                            HOSTNAME   STATUS    AVAILABILITY   MANAGER STATUS   ENGINE VERSION',
      `${'a'.repeat(25)} *   node-1     Ready     Active         Leader           26.1.5`,
      `${'b'.repeat(25)}     node-2     Ready     Active                          26.1.5`,
      '',
    ].join('\n'));
  });
});

test('the --format examples of every list command\'s --help use fields that exist', async (t) => {
  const at = new Date().toISOString();
  const svc = service({ id: 'svc1', name: 'web', replicas: 1 });
  await withDaemon({
    'node.ls': () => ({ nodes: [node({ id: 'a'.repeat(25), hostname: 'node-1', leader: true })], selfId: 'a'.repeat(25) }),
    'node.ps': () => ({ tasks: [task({ id: 't1', slot: 1, state: 'running', at })], nodes: { n1: 'node-1' } }),
    'service.ls': () => [{ service: svc, running: 1, desired: 1 }],
    'service.ps': () => ({ tasks: [task({ id: 't1', slot: 1, state: 'running', at })], nodes: { n1: 'node-1' } }),
    'network.ls': () => [],
  }, async (d) => {
    for (const cmd of [['node', 'ls'], ['node', 'ps'], ['service', 'ls'], ['service', 'ps', 'web']]) {
      const help = (await shoal([...cmd.slice(0, 2), '--help'], d.host)).stdout.replace(/\s+/g, ' ');
      const examples = [...help.matchAll(/"((?:table )?\{\{[^"]*)"/g)].map((m) => m[1]!.replace(/\\t/g, '\t'));
      t.true(examples.length > 0, `${cmd.join(' ')} --help has examples`);
      for (const format of examples) {
        const r = await shoal([...cmd, '--format', format], d.host);
        t.is(r.code, 0, `${cmd.join(' ')} --format ${format}: ${r.stderr}`);
        t.notRegex(r.stdout, /<no value>/, `${cmd.join(' ')} --format ${format}`);
        t.regex(r.stdout, /\S/, `${cmd.join(' ')} --format ${format}`);
      }
    }
  });
});

test('node promote/demote of a node already in that role: Docker\'s message on stdout, exit 0, no update sent', async (t) => {
  await withDaemon({
    'node.inspect': (p) => node({ id: String(p['ref']), hostname: String(p['ref']), worker: p['ref'] !== 'm1' }),
    'node.update': (p) => ({ id: String(p['ref']) }),
  }, async (d) => {
    const p = await shoal(['node', 'promote', 'm1', 'w1'], d.host);
    t.is(p.code, 0, p.stderr);
    t.is(p.stdout, 'Node m1 is already a manager.\nNode w1 promoted to a manager in the swarm.\n');
    t.is(p.stderr, '');
    const dm = await shoal(['node', 'demote', 'w1'], d.host);
    t.is(dm.code, 0, dm.stderr);
    t.is(dm.stdout, 'Node w1 is already a worker.\n');
    t.deepEqual(d.calls.filter((c) => c.method === 'node.update'), [{ method: 'node.update', params: { ref: 'w1', role: 'manager' } }]);
  });
});

test('an ambiguous node name: every node command sends the name as given and prints the daemon\'s refusal', async (t) => {
  // The daemon resolves names (controlapi resolveNode); two nodes named node2 are refused, never guessed.
  const ambiguous = 'node node2 is ambiguous (2 matches found: aaa, bbb); use the node ID';
  const refuse = (p: Record<string, unknown>) => {
    if (p['ref'] === 'node2') throw new RpcFailure('InvalidArgument', ambiguous);
    return { id: String(p['ref']) };
  };
  await withDaemon({
    'node.ls': () => ({ nodes: [], selfId: 'aaa' }),
    'node.inspect': refuse, 'node.rm': refuse, 'node.update': refuse, 'node.ps': refuse,
  }, async (d) => {
    for (const args of [['node', 'rm', 'node2'], ['node', 'rm', '-f', 'node2'], ['node', 'inspect', 'node2'], ['node', 'ps', 'node2'],
      ['node', 'update', '--availability', 'drain', 'node2'], ['node', 'promote', 'node2'], ['node', 'demote', 'node2']]) {
      const r = await shoal(args, d.host);
      t.is(r.code, 1, args.join(' '));
      t.is(r.stderr, `Error: ${ambiguous}\n`, args.join(' '));
      t.is(r.stdout.replace(/^\[\]\n$/, ''), '', `${args.join(' ')}: nothing reported as done`);
    }
    t.true(d.calls.every((c) => c.method === 'node.ls' || c.params['ref'] === 'node2'), 'the name goes to the daemon unresolved');
    t.false(d.calls.some((c) => c.method === 'node.update' && c.params['role'] !== undefined), 'no role change sent after the refusal');
  });
});

test('swarm join: a bare host gets port 2377', async (t) => {
  await withDaemon({ 'swarm.join': () => ({ role: 'worker' }) }, async (d) => {
    const r = await shoal(['swarm', 'join', '--token', 'SWMTKN-1-x', '10.0.0.1'], d.host);
    t.is(r.code, 0, r.stderr);
    t.is(r.stdout, 'This node joined a swarm as a worker.\n');
    t.deepEqual(d.calls.at(-1), { method: 'swarm.join', params: { token: 'SWMTKN-1-x', remoteAddr: '10.0.0.1:2377' } });
    await shoal(['swarm', 'join', '--token', 'SWMTKN-1-x', 'mgr1:4000'], d.host);
    t.like(d.calls.at(-1)!.params, { remoteAddr: 'mgr1:4000' });
  });
});

test('service update reads the service and sends the changed fields with its version', async (t) => {
  const svc = service({ id: 'svc1', name: 'web', replicas: 1 });
  svc.meta.version = 42;
  svc.spec.task.container.env = ['A=1', 'B=2'];
  await withDaemon({
    'service.inspect': () => svc,
    'service.update': () => ({ id: 'svc1' }),
  }, async (d) => {
    const r = await shoal(['service', 'update', '-d', '--env-add', 'C=3', '--env-rm', 'A', '--image', 'shoal/busybox:2', '--force', '--update-delay', '2s', 'web'], d.host);
    t.is(r.code, 0, r.stderr);
    t.is(r.stdout, 'web\n');
    t.deepEqual(d.calls.at(-1), {
      method: 'service.update',
      params: { ref: 'svc1', version: 42, spec: { image: 'shoal/busybox:2', env: ['B=2', 'C=3'], update: { delayMs: 2000 } }, force: true },
    });
    oneLineError(t, await shoal(['service', 'update', '--env', 'X=1', 'web'], d.host), /^Error: unknown flag: --env; see 'shoal service update --help'\n$/);
  });
});

test('node, network and info commands call the contract methods', async (t) => {
  await withDaemon({
    'node.ls': () => ({ nodes: [], selfId: 'me' }),
    'node.update': (p) => ({ id: String(p['ref']) }),
    'node.inspect': (p) => node({ id: String(p['ref']), hostname: String(p['ref']), worker: true }),
    'network.create': () => ({ id: 'net1' }),
    'swarm.info': () => ({ localNodeState: 'active', nodeId: 'me', role: 'manager' }),
  }, async (d) => {
    const u = await shoal(['node', 'update', '--availability', 'drain', '--label-add', 'zone=a', '--label-rm', 'old', 'self'], d.host);
    t.is(u.code, 0, u.stderr);
    t.is(u.stdout, 'self\n');
    t.deepEqual(d.calls.at(-1), { method: 'node.update', params: { ref: 'me', availability: 'drain', labelAdd: { zone: 'a' }, labelRm: ['old'] } });
    const p = await shoal(['node', 'promote', 'n2'], d.host);
    t.is(p.stdout, 'Node n2 promoted to a manager in the swarm.\n');
    t.deepEqual(d.calls.at(-1), { method: 'node.update', params: { ref: 'n2', role: 'manager' } });
    const n = await shoal(['network', 'create', '--subnet', '10.1.2.0/24', '--attachable', 'backend'], d.host);
    t.is(n.stdout, 'net1\n');
    t.deepEqual(d.calls.at(-1), { method: 'network.create', params: { name: 'backend', driver: 'overlay', subnet: '10.1.2.0/24', attachable: true } });
    oneLineError(t, await shoal(['network', 'create', '--subnet', '10.1.2.0', 'x'], d.host), 'invalid --subnet value "10.1.2.0": expected an IPv4 CIDR such as 10.0.9.0/24');
    const i = await shoal(['info', '--format', '{{.Swarm.LocalNodeState}} {{.Swarm.NodeID}}'], d.host);
    t.is(i.stdout, 'active me\n');
  });
});

test('health flags on the command line: create sends the check, update merges it, conflicts are one line', async (t) => {
  const svc = service({ id: 'svc1', name: 'hc' });
  svc.spec.task.container.healthcheck = { test: ['CMD-SHELL', 'test -f /tmp/ok'], intervalMs: 1000, retries: 2 };
  await withDaemon({
    'service.create': () => ({ id: 'svc1' }),
    'service.inspect': () => svc,
    'service.update': () => ({ id: 'svc1' }),
  }, async (d) => {
    const r = await shoal(['service', 'create', '-d', '--name', 'hc', '--health-cmd', 'test -f /tmp/ok', '--health-interval', '1s', '--health-retries', '2', '--no-healthcheck=false', 'shoal/busybox:latest', 'sleep', '100000'], d.host);
    t.is(r.code, 0, r.stderr);
    t.deepEqual(d.calls.at(-1), {
      method: 'service.create',
      params: { name: 'hc', image: 'shoal/busybox:latest', args: ['sleep', '100000'], healthcheck: { test: ['CMD-SHELL', 'test -f /tmp/ok'], intervalMs: 1000, retries: 2 } },
    });
    const none = await shoal(['service', 'create', '-d', '--no-healthcheck', 'shoal/busybox:latest', 'top'], d.host);
    t.is(none.code, 0, none.stderr);
    t.like(d.calls.at(-1)!.params, { args: ['top'], healthcheck: { test: ['NONE'] } });
    const u = await shoal(['service', 'update', '-d', '--health-timeout', '3s', 'hc'], d.host);
    t.is(u.code, 0, u.stderr);
    t.deepEqual(d.calls.at(-1)!.params.spec, { healthcheck: { test: ['CMD-SHELL', 'test -f /tmp/ok'], intervalMs: 1000, timeoutMs: 3000, retries: 2 } });
    const pretty = await shoal(['service', 'inspect', '--pretty', 'hc'], d.host);
    t.regex(pretty.stdout, /^ Healthcheck:\n {2}Test: +CMD-SHELL test -f \/tmp\/ok\n {2}Interval: +1s\n {2}Retries: +2\n/m);
    const json = await shoal(['service', 'inspect', 'hc'], d.host);
    t.deepEqual(JSON.parse(json.stdout)[0].spec.task.container.healthcheck, svc.spec.task.container.healthcheck);
    const sent = d.calls.length;
    oneLineError(t, await shoal(['service', 'create', '--no-healthcheck', '--health-cmd', 'true', 'img'], d.host), '--no-healthcheck conflicts with --health-cmd; give either --no-healthcheck or --health-* flags');
    oneLineError(t, await shoal(['service', 'update', '--no-healthcheck', '--health-retries', '1', 'hc'], d.host), /^Error: --no-healthcheck conflicts with --health-retries;/);
    oneLineError(t, await shoal(['service', 'create', '--health-retries', '-1', 'img'], d.host), 'invalid --health-retries value "-1": must be a whole number >= 0');
    oneLineError(t, await shoal(['service', 'create', '--health-interval', '-2s', 'img'], d.host), 'invalid --health-interval value "-2s": must not be negative');
    t.deepEqual(d.calls.slice(sent).map((c) => c.method), ['service.inspect'], 'only the update read the service; nothing was written');
  });
});

// ---- secrets, configs, autolock --------------------------------------------------------------

test('secret and config commands: create from a file or STDIN, ls tables, inspect (--pretty shows a config\'s data, never a secret\'s), rm', async (t) => {
  const created = '2024-01-02T03:04:05.000Z';
  const info = (id: string, name: string, labels: Record<string, string> = {}) => ({ id, meta: { version: 1, createdAt: created, updatedAt: created }, spec: { name, labels } });
  await withDaemon({
    'secret.create': () => ({ id: 'sec1' }),
    'config.create': () => ({ id: 'cfg1' }),
    'secret.ls': () => [info('s2'.padEnd(25, '0'), 'b_secret'), info('s1'.padEnd(25, '0'), 'a_secret', { env: 'prod' })],
    'config.ls': () => [info('c1'.padEnd(25, '0'), 'conf')],
    'secret.inspect': (p) => info('sec1', String(p['ref']), { env: 'prod' }),
    'config.inspect': (p) => ({ ...info('cfg1', String(p['ref'])), spec: { name: String(p['ref']), labels: {}, data: Buffer.from('port=80').toString('base64') } }),
    'secret.rm': () => ({ id: 'sec1' }),
  }, async (d) => {
    const dir = mkdtempSync(join(tmpdir(), 'shoal-secret-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'pw.txt');
    (await import('node:fs')).writeFileSync(file, 'hunter2');
    let r = await shoal(['secret', 'create', '--label', 'env=prod', 'db_pass', file], d.host);
    t.is(r.code, 0, r.stderr);
    t.is(r.stdout, 'sec1\n');
    t.deepEqual(d.calls.at(-1), { method: 'secret.create', params: { name: 'db_pass', data: Buffer.from('hunter2').toString('base64'), labels: { env: 'prod' } } });
    r = await new Promise<Result>((resolve) => {
      const child = execFile(process.execPath, [BIN, 'config', 'create', '--template-driver', 'golang', 'conf', '-'], { env: { ...process.env, SHOAL_HOST: d.host } }, (error, stdout, stderr) => resolve({ code: error ? 1 : 0, stdout, stderr }));
      child.stdin!.end('slot={{ .Task.Slot }}');
    });
    t.is(r.stdout, 'cfg1\n');
    t.deepEqual(d.calls.at(-1), { method: 'config.create', params: { name: 'conf', data: Buffer.from('slot={{ .Task.Slot }}').toString('base64'), templateDriver: 'golang' } });
    r = await shoal(['secret', 'ls'], d.host);
    const lines = r.stdout.split('\n');
    t.regex(lines[0]!, /^ID\s+NAME\s+DRIVER\s+CREATED\s+UPDATED$/);
    t.regex(lines[1]!, /^s1000+\s+a_secret\s+\d+ \w+ ago\s+\d+ \w+ ago$/);
    t.regex(lines[2]!, /^s2000+\s+b_secret\s/);
    t.is((await shoal(['secret', 'ls', '-q'], d.host)).stdout, `${'s1'.padEnd(25, '0')}\n${'s2'.padEnd(25, '0')}\n`);
    r = await shoal(['secret', 'ls', '--filter', 'name=a', '--filter', 'label=env=prod', '--format', '{{.Name}} {{.Labels}}'], d.host);
    t.deepEqual(d.calls.at(-1)!.params, { filters: { name: ['a'], label: ['env=prod'] } });
    t.regex((await shoal(['config', 'ls'], d.host)).stdout, /^ID\s+NAME\s+CREATED\s+UPDATED\n/);
    r = await shoal(['secret', 'inspect', '--pretty', 'db_pass'], d.host);
    t.is(r.stdout, 'ID:              sec1\nName:              db_pass\nLabels:\n - env=prod\nDriver:            \nCreated at:        2024-01-02 03:04:05.000 +0000 UTC\nUpdated at:        2024-01-02 03:04:05.000 +0000 UTC\n');
    r = await shoal(['config', 'inspect', '--pretty', 'conf'], d.host);
    t.regex(r.stdout, /^ID:\t\t\tcfg1\nName:\t\t\tconf\nCreated at: +\t2024-01-02 03:04:05.000 \+0000 UTC\nUpdated at: +\t.*\nData:\nport=80\n$/);
    t.is(JSON.parse((await shoal(['secret', 'inspect', 'db_pass'], d.host)).stdout)[0].id, 'sec1');
    r = await shoal(['secret', 'rm', 'db_pass'], d.host);
    t.is(r.stdout, 'db_pass\n');
  });
});

test('--secret and --config flags: create sends the references, update adds and removes; bad values are one line, nothing sent', async (t) => {
  const svc = service({ id: 'svc1', name: 'web' });
  svc.spec.task.container.secrets = [
    { secretId: 'id_v1', secretName: 's_v1', file: { name: 'db', uid: '0', gid: '0', mode: 0o400 } },
    { secretId: 'id_k', secretName: 'key', file: { name: 'key', uid: '0', gid: '0', mode: 0o444 } },
  ];
  await withDaemon({ 'service.create': () => ({ id: 'svc1' }), 'service.inspect': () => svc, 'service.update': () => ({ id: 'svc1' }) }, async (d) => {
    let r = await shoal(['service', 'create', '-d', '--name', 'web', '--secret', 'db_pass', '--secret', 'source=api_key,target=key,uid=1000,gid=1000,mode=0400',
      '--config', 'src=app.conf,target=/etc/app.conf', 'shoal/busybox:latest'], d.host);
    t.is(r.code, 0, r.stderr);
    t.like(d.calls.at(-1)!.params, {
      secrets: [{ source: 'db_pass' }, { source: 'api_key', target: 'key', uid: '1000', gid: '1000', mode: 0o400 }],
      configs: [{ source: 'app.conf', target: '/etc/app.conf' }],
    });
    r = await shoal(['service', 'update', '-d', '--secret-rm', 's_v1', '--secret-add', 'source=s_v2,target=db,mode=0400', 'web'], d.host);
    t.is(r.code, 0, r.stderr);
    t.deepEqual((d.calls.at(-1)!.params['spec'] as { secrets: unknown }).secrets, [
      { source: 'id_k', target: 'key', uid: '0', gid: '0', mode: 0o444 },
      { source: 's_v2', target: 'db', mode: 0o400 },
    ]);
    const sent = d.calls.length;
    const cases: [string[], string][] = [
      [['service', 'create', '--secret', 'source=x,mode=400', 'img'], 'invalid mode "400" in --secret: give octal permission bits with a leading 0, e.g. 0400'],
      [['service', 'create', '--secret', 'source=x,mode=0999', 'img'], 'invalid mode "0999" in --secret: give octal permission bits with a leading 0, e.g. 0400'],
      [['service', 'create', '--secret', 'source=x,uid=root', 'img'], 'invalid uid "root" in --secret: must be a numeric ID such as 0 or 1000'],
      [['service', 'create', '--config', 'target=/x', 'img'], 'invalid --config "target=/x": source is required, e.g. source=db_pass'],
      [['service', 'create', '--secret', 'source=x,owner=1', 'img'], 'invalid field key "owner" in --secret "source=x,owner=1": use source, target, uid, gid or mode'],
      [['secret', 'create', 'x', '/nonexistent/file'], 'error reading content from "/nonexistent/file": ENOENT'],
      [['secret', 'ls', '--filter', 'driver=x'], 'invalid filter "driver=x": use id=ID, name=NAME or label=KEY[=VALUE]'],
      [['config', 'create', '--template-driver', 'jinja', 'x', '-'], 'invalid --template-driver value "jinja": only golang is supported'],
    ];
    for (const [args, expected] of cases) oneLineError(t, await shoal(args, d.host), expected);
    t.is(d.calls.length, sent);
  });
});

test('autolock on the command line: init --autolock and update --autolock print the key; unlock-key [-q] [--rotate]; unlock reads STDIN', async (t) => {
  const key = `SWMKEY-1-${'A'.repeat(43)}`;
  let locked = false;
  let state = 'locked';
  const text = `To unlock a swarm manager after it restarts, run the \`shoal swarm unlock\`\ncommand and provide the following key:\n\n    ${key}\n\nRemember to store this key in a password manager, since without it you\nwill not be able to restart the manager.\n`;
  await withDaemon({
    'swarm.init': () => ({ nodeId: 'abc' }),
    'swarm.unlockKey': () => ({ key: locked ? key : '' }),
    'swarm.rotateUnlockKey': () => ({ key }),
    'swarm.update': (p) => {
      locked = p['autolock'] === true;
      return {};
    },
    'swarm.info': () => ({ localNodeState: state, nodeId: 'abc' }),
    'swarm.unlock': (p) => {
      if (p['key'] !== key) throw new RpcFailure('InvalidArgument', 'swarm could not be unlocked: invalid key provided');
      return {};
    },
  }, async (d) => {
    locked = true;
    let r = await shoal(['swarm', 'init', '--autolock'], d.host);
    t.is(r.code, 0, r.stderr);
    t.true(r.stdout.endsWith(text));
    t.deepEqual(d.calls[0], { method: 'swarm.init', params: { autolock: true } });
    locked = false;
    r = await shoal(['swarm', 'update', '--autolock=true'], d.host);
    t.is(r.stdout, `Swarm updated.\n${text}`);
    r = await shoal(['swarm', 'update', '--autolock=false'], d.host);
    t.is(r.stdout, 'Swarm updated.\n');
    t.deepEqual(d.calls.filter((c) => c.method === 'swarm.update').map((c) => c.params), [{ autolock: true }, { autolock: false }]);
    oneLineError(t, await shoal(['swarm', 'unlock-key'], d.host), 'no unlock key is set');
    locked = true;
    t.is((await shoal(['swarm', 'unlock-key', '-q'], d.host)).stdout, `${key}\n`);
    t.is((await shoal(['swarm', 'unlock-key', '--rotate'], d.host)).stdout, `Successfully rotated manager unlock key.\n\n${text}`);
    const unlock = (input: string) => new Promise<Result>((resolve) => {
      const child = execFile(process.execPath, [BIN, 'swarm', 'unlock'], { env: { ...process.env, SHOAL_HOST: d.host } }, (error, stdout, stderr) => resolve({ code: error ? 1 : 0, stdout, stderr }));
      child.stdin!.end(input);
    });
    oneLineError(t, await unlock('SWMKEY-1-wrong\n'), 'swarm could not be unlocked: invalid key provided');
    r = await unlock(`${key}\n`);
    t.is(r.code, 0, r.stderr);
    state = 'active';
    oneLineError(t, await unlock(`${key}\n`), 'swarm is not locked');
  });
});
