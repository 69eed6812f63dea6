import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadProject, toStack, type ComposeSource } from '../src/index.js';

const FIX = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../test/fixtures/compose');
const src = (rel: string): ComposeSource => ({ path: rel, text: fs.readFileSync(path.join(FIX, rel), 'utf8') });
const opts = (dir: string) => ({
  projectDir: path.join(FIX, dir), env: { HOME: '/root' },
  readFile: (p: string) => (fs.existsSync(p) ? fs.readFileSync(p) : undefined),
});

test('voting stack: Docker\'s names, labels, networks with the short name as alias, volumes, deploy options', (t) => {
  const { project } = loadProject([src('voting/docker-stack.yml')], { env: {} });
  const plan = toStack(project, 'vote', opts('voting'));
  t.deepEqual(plan.networks.map((n) => [n.name, n.external, n.labels['com.docker.stack.namespace']]), [['vote_backend', false, 'vote'], ['vote_frontend', false, 'vote']]);
  const worker = plan.services.find((s) => s.name === 'worker')!.spec;
  t.is(worker.name, 'vote_worker');
  t.deepEqual(worker.networks, [{ target: 'vote_backend', aliases: ['worker'] }, { target: 'vote_frontend', aliases: ['worker'] }]);
  t.deepEqual(worker.labels, { APP: 'VOTING', 'com.docker.stack.namespace': 'vote', 'com.docker.stack.image': 'example/worker' });
  t.deepEqual(worker.restart, { condition: 'on-failure', delayMs: 10_000, maxAttempts: 3, windowMs: 120_000 });
  t.deepEqual(worker.constraints, ['node.role == manager']);
  const db = plan.services.find((s) => s.name === 'db')!.spec;
  t.deepEqual(db.mounts, [{ type: 'volume', target: '/var/lib/postgresql/data', source: 'vote_db-data', volumeOptions: { labels: { 'com.docker.stack.namespace': 'vote' } } }]);
  t.deepEqual(db.env, ['POSTGRES_PASSWORD=postgres', 'POSTGRES_USER=postgres']);
  const vote = plan.services.find((s) => s.name === 'vote')!.spec;
  t.is(vote.replicas, 2);
  t.deepEqual(vote.ports, [{ targetPort: 80, protocol: 'tcp', publishMode: 'ingress', publishedPort: 5000 }]);
  t.deepEqual(vote.update, { parallelism: 2 });
  t.deepEqual(plan.waves, [['db', 'redis', 'result', 'vote', 'worker']]);
});

test('counter stack: secrets and configs from files, health check, depends_on, command and args', (t) => {
  const { project } = loadProject([src('counter/docker-compose.yml')], { env: { WEB_REPLICAS: '2' } });
  const plan = toStack(project, 'c', opts('counter'));
  t.deepEqual(plan.secrets.map((s) => [s.name, Buffer.from(s.data!, 'base64').toString().trim()]), [['c_redis_pw', fs.readFileSync(path.join(FIX, 'counter/redis_pw.txt'), 'utf8').trim()]]);
  t.deepEqual(plan.configs.map((s) => s.name), ['c_web_conf']);
  const web = plan.services.find((s) => s.name === 'web')!;
  t.deepEqual((web.spec as Record<string, unknown>)['secrets'], [{ source: 'c_redis_pw', target: 'redis_password', mode: 0o400 }]);
  t.deepEqual((web.spec as Record<string, unknown>)['configs'], [{ source: 'c_web_conf', target: '/etc/counter.conf' }]);
  t.deepEqual(web.dependsOn, { redis: { condition: 'service_healthy', required: true } });
  t.deepEqual(web.spec.update, { parallelism: 1, order: 'start-first' });
  t.deepEqual(web.spec.restart, { condition: 'any', delayMs: 1000 });
  const redis = plan.services.find((s) => s.name === 'redis')!;
  t.true(redis.hasHealthcheck);
  t.deepEqual(redis.spec.healthcheck, { test: ['CMD-SHELL', 'redis-cli -a "$(cat /run/secrets/redis_pw)" ping | grep -q PONG'], intervalMs: 2000, retries: 10 });
  t.deepEqual(redis.spec.args, ['sh', '-c', 'exec redis-server --requirepass "$(cat /run/secrets/redis_pw)"']);
  t.is(redis.spec.command, undefined);
  t.deepEqual(plan.waves, [['redis'], ['web']]);
});

test('webapp: build contexts become tags STACK_SERVICE; bind sources resolve against the project', (t) => {
  const { project } = loadProject([src('webapp/docker-compose.yml')], { env: {} });
  const plan = toStack(project, 'w', opts('webapp'));
  const web = plan.services.find((s) => s.name === 'web')!;
  t.deepEqual(web.build, { context: path.join(FIX, 'webapp'), args: {}, tag: 'w_web' });
  t.is(web.spec.image, 'w_web');
  t.deepEqual(web.spec.mounts, [{ type: 'bind', source: path.join(FIX, 'webapp'), target: '/usr/src/app' }]);
  t.deepEqual(plan.networks.map((n) => n.name), ['w_default']);
});

test('a missing secret file is named at its key; a bad stack name is refused', (t) => {
  const { project } = loadProject([{ path: 'f.yml', text: 'services:\n  a:\n    image: x\n    secrets: [s]\nsecrets:\n  s:\n    file: ./nope.txt\n' }], { env: {} });
  t.throws(() => toStack(project, 'x', { projectDir: '/tmp', env: {}, readFile: () => undefined }), { message: /f\.yml:7:\d+: secrets\.s\.file: secret file "\.\/nope\.txt" not found/ });
  t.throws(() => toStack(project, '-bad', { projectDir: '/tmp', env: {}, readFile: () => undefined }), { message: /invalid stack name "-bad"/ });
});

test('restart: is mapped when deploy.restart_policy is absent (Docker\'s conversion); resources and logging', (t) => {
  const text = 'services:\n  a:\n    image: x\n    restart: "no"\n    logging: {driver: json-file, options: {max-size: 1m}}\n    deploy:\n      resources:\n        limits: {cpus: "0.5", memory: 64M, pids: 100}\n        reservations: {memory: 32M}\n';
  const { project } = loadProject([{ path: 'f.yml', text }], { env: {} });
  const a = toStack(project, 's', { projectDir: '/tmp', env: {}, readFile: () => undefined }).services[0]!.spec;
  t.deepEqual(a.restart, { condition: 'none' });
  t.is(a.limitNanoCpus, 500_000_000);
  t.is(a.limitMemoryBytes, 64 << 20);
  t.is(a.limitPids, 100);
  t.is(a.reserveMemoryBytes, 32 << 20);
  t.deepEqual(a.logDriver, { name: 'json-file', options: { 'max-size': '1m' } });
});
