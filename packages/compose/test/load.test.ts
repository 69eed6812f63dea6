import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ComposeError, deployWaves, interpolateString, loadProject, type ComposeSource } from '../src/index.js';

// The files of ../shared/acceptance/compose, copied into test/fixtures/compose (the repository's).
const FIX = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../test/fixtures/compose');
const src = (rel: string): ComposeSource => ({ path: rel, text: fs.readFileSync(path.join(FIX, rel), 'utf8') });
const reader = (dir: string) => (p: string) => {
  const f = path.join(FIX, dir, p);
  return fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : undefined;
};
const err = (f: () => unknown): ComposeError => {
  try {
    f();
  } catch (e) {
    if (e instanceof ComposeError) return e;
    throw e;
  }
  throw new Error('no ComposeError');
};

test('interpolation: every form, nesting, $$ and unset variables', (t) => {
  const env = { A: 'a', EMPTY: '', N: '3' };
  const unset: string[] = [];
  const i = (s: string) => interpolateString(s, env, (n) => unset.push(n));
  t.is(i('${A}-$A-$$A-$'), 'a-a-$A-$');
  t.is(i('${NOPE:-d} ${NOPE-d} ${EMPTY:-d} ${EMPTY-d}'), 'd d d ');
  t.is(i('${A:+yes}${NOPE:+no}${EMPTY+set}'), 'yesset');
  t.is(i('${NOPE:-${A}}/${NOPE:-${ALSO:-deep}}'), 'a/deep');
  t.is(i('x$NOPE.y'), 'x.y');
  t.deepEqual(unset, ['NOPE']);
  t.throws(() => i('${NOPE:?must be set}'), { message: /NOPE.*must be set/ });
  t.throws(() => i('${EMPTY:?}'), { message: /EMPTY is empty/ });
  t.notThrows(() => i('${EMPTY?}'));
  t.throws(() => i('${A'), { message: /never closed/ });
});

test('counter: anchors and merge keys, x- fields, .env and defaults, long ports, secrets and configs', (t) => {
  const r = loadProject([src('counter/docker-compose.yml')], { env: {}, envFile: { path: '.env', text: 'WEB_REPLICAS=3\nGREETING=hi\n' }, readFile: reader('counter') });
  const web = r.project.services['web']!;
  t.is(web.image, 'example/counter:1');
  t.deepEqual(web.environment, { REDIS_HOST: 'redis', GREETING: 'hi' });
  t.is((web.deploy as { replicas: number }).replicas, 3, 'cast from the interpolated string');
  t.deepEqual((web.deploy as { restart_policy: unknown }).restart_policy, { condition: 'any', delay: '1s' });
  t.deepEqual(web.ports, [{ target: 8080, published: 8080, protocol: 'tcp', mode: 'ingress' }]);
  t.deepEqual(web.secrets, [{ source: 'redis_pw', target: 'redis_password', mode: 0o400 }]);
  t.deepEqual(web.configs, [{ source: 'web_conf', target: '/etc/counter.conf' }]);
  t.deepEqual(web.depends_on, { redis: { condition: 'service_healthy', required: true } });
  const redis = r.project.services['redis']!;
  t.deepEqual(redis.volumes, [{ type: 'volume', source: 'redis-data', target: '/data' }]);
  t.deepEqual(redis.command, ['sh', '-c', 'exec redis-server --requirepass "$(cat /run/secrets/redis_pw)"']);
  t.deepEqual(deployWaves(r.project), [['redis'], ['web']]);
  t.deepEqual(r.warnings, []);
});

test('counter + override: a second file merges (replicas, one more variable, one more port)', (t) => {
  const r = loadProject([src('counter/docker-compose.yml'), src('counter/override.yml')], { env: { WEB_REPLICAS: '1' } });
  const web = r.project.services['web']!;
  t.is((web.deploy as { replicas: number }).replicas, 2);
  t.is(web.environment?.['EXTRA'], 'from-override');
  t.is(web.environment?.['REDIS_HOST'], 'redis');
  t.deepEqual(web.ports, [
    { target: 8080, published: 8080, protocol: 'tcp', mode: 'ingress' },
    { target: 8080, published: 9090, protocol: 'tcp', mode: 'ingress' },
  ]);
  // The environment wins over the env file.
  const r2 = loadProject([src('counter/docker-compose.yml')], { env: { WEB_REPLICAS: '5' }, envFile: { path: '.env', text: 'WEB_REPLICAS=3' } });
  t.is((r2.project.services['web']!.deploy as { replicas: number }).replicas, 5);
});

test('an unset variable without a default is blank, with Docker\'s warning', (t) => {
  const e = err(() => loadProject([src('counter/docker-compose.yml')], { env: {} }));
  // replicas: ${WEB_REPLICAS} → "" → not an integer
  t.regex(e.message, /^counter\/docker-compose.yml:\d+:\d+: services\.web\.deploy\.replicas: must be an integer, got ""$/);
  const r = loadProject([{ path: 'x.yml', text: 'services:\n  a:\n    image: "img${TAG}"\n' }], { env: {} });
  t.is(r.project.services['a']!.image, 'img');
  t.deepEqual(r.warnings, ['The "TAG" variable is not set. Defaulting to a blank string.']);
});

test('voting stack: networks, a named volume, deploy options', (t) => {
  const r = loadProject([src('voting/docker-stack.yml')], { env: {} });
  t.deepEqual(Object.keys(r.project.services).sort(), ['db', 'redis', 'result', 'vote', 'worker']);
  t.deepEqual(r.project.services['worker']!.networks, { frontend: null, backend: null });
  t.deepEqual((r.project.services['worker']!.deploy as { labels: unknown }).labels, { APP: 'VOTING' });
  t.deepEqual(r.project.services['vote']!.ports, [{ target: 80, published: 5000, protocol: 'tcp', mode: 'ingress' }]);
  t.deepEqual(r.project.services['db']!.volumes, [{ type: 'volume', source: 'db-data', target: '/var/lib/postgresql/data' }]);
});

test('legacy version 1 file: services at the top level, links become aliases, a warning', (t) => {
  const r = loadProject([src('voting/docker-compose.v1.yml')], { env: {} });
  t.deepEqual(Object.keys(r.project.services).sort(), ['db', 'redis', 'result', 'vote', 'worker']);
  t.is(r.project.services['vote']!.links, undefined);
  t.regex(r.warnings[0]!, /no "services:" key: reading it as the legacy version 1 format/);
});

test('webapp: build contexts, depends_on order, bind mounts, a Compose v3 version key', (t) => {
  const r = loadProject([src('webapp/docker-compose.yml')], { env: {} });
  t.is(r.project.services['web']!.build, '.');
  t.deepEqual(r.project.services['web']!.volumes, [{ type: 'bind', source: '.', target: '/usr/src/app' }]);
  t.deepEqual(r.project.services['migration']!.command, ['python3', 'manage.py', 'migrate']);
  t.deepEqual(deployWaves(r.project), [['db'], ['migration'], ['web']]);
});

/** Each invalid file says in its first comment line what the error must name. */
for (const f of fs.readdirSync(path.join(FIX, 'invalid')).filter((x) => x.endsWith('.yml')).sort()) {
  test(`invalid/${f}: one line naming the file, line, key path and what was expected`, (t) => {
    const text = fs.readFileSync(path.join(FIX, 'invalid', f), 'utf8');
    let e: ComposeError | undefined;
    try {
      loadProject([{ path: `invalid/${f}`, text }], { env: {} });
    } catch (x) {
      e = x as ComposeError;
    }
    if (f === 'external-network.yml') {
      // A missing external network is found at deploy time (the cluster knows its networks).
      t.is(e, undefined);
      return;
    }
    t.true(e instanceof ComposeError, String(e));
    t.false(e!.message.includes('\n'));
    const want: Record<string, RegExp> = {
      'bad-port.yml': /^invalid\/bad-port\.yml:5:\d+: services\.web\.ports\[0\]: "80800" is not a port/,
      'cycle.yml': /depends_on cycle: a -> b -> a/,
      'interpolation.yml': /services\.web\.image: required variable IMAGE is missing a value: IMAGE must be set/,
      'replicas-string.yml': /^invalid\/replicas-string\.yml:7:\d+: services\.web\.deploy\.replicas: must be an integer, got "three"/,
      'unknown-key.yml': /^invalid\/unknown-key\.yml:4:\d+: services\.web\.imagee: unknown key "imagee"/,
    };
    t.regex(e!.message, want[f]!, f);
  });
}

test('references: an undefined network, volume, secret or dependency is named with its position', (t) => {
  const load = (text: string) => err(() => loadProject([{ path: 'f.yml', text }], { env: {} }));
  t.regex(load('services:\n  a:\n    image: x\n    networks: [nope]\n').message, /f\.yml:4:\d+: services\.a\.networks: uses network "nope"/);
  t.regex(load('services:\n  a:\n    image: x\n    volumes: ["data:/d"]\n').message, /services\.a\.volumes\[0\]: uses volume "data"/);
  t.regex(load('services:\n  a:\n    image: x\n    secrets: [pw]\n').message, /services\.a\.secrets\[0\]: uses secret "pw"/);
  t.regex(load('services:\n  a:\n    image: x\n    depends_on: [b]\n').message, /services\.a\.depends_on\.b: depends on "b"/);
  t.regex(load('services:\n  a:\n    build: {}\n    image: x\n    volumes_from: [b]\n').message, /volumes_from is not supported/);
  t.regex(load('services:\n  a:\n    command: x\n').message, /services\.a: has neither image nor build/);
  t.regex(load('services: [1, 2]\n').message, /f\.yml:1:\d+: services: must be object, got a list/);
  t.regex(load('services:\n  a:\n   image: x\n  b: [\n').message, /^f\.yml:\d+:\d+: invalid YAML/);
});

test('keys a swarm ignores are listed in one warning', (t) => {
  const r = loadProject([{ path: 'f.yml', text: 'services:\n  a:\n    image: x\n    privileged: true\n    container_name: cname\n    restart: always\n' }], { env: {} });
  t.deepEqual(r.warnings, ['Ignoring unsupported options: container_name, privileged, restart']);
});
