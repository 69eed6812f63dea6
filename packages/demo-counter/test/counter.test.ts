import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startCounter } from '../src/server.js';

// The counter against a real Redis (Debian's redis-server, as in the shoal/redis image), on
// loopback: counts rise across replicas; Redis stopped and started again → the counter reconnects
// (and, with the same data directory, the count survives).

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return p;
}

function startRedis(port: number, dir: string, password: string): ChildProcess {
  return spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--requirepass', password, '--save', '1 1', '--appendonly', 'yes', '--protected-mode', 'no'], { stdio: 'ignore' });
}

function get(port: number, p = '/', accept = 'text/plain'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: p, headers: { accept } }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

async function until<T>(f: () => Promise<T | undefined>, what: string, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('counts in Redis across replicas, health follows Redis, reconnects when Redis comes back', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-counter-'));
  const rport = await freePort();
  let redis = startRedis(rport, dir, 's3cret');
  t.teardown(() => {
    redis.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const replicas = await Promise.all([1, 2].map((slot) => startCounter({ port: 0, redisHost: '127.0.0.1', redisPort: rport, password: 's3cret', slot: String(slot), key: 'hits', hostname: `h${slot}` })));
  t.teardown(() => replicas.forEach((r) => (r.server.close(), r.redis.disconnect())));
  const [a, b] = replicas as [typeof replicas[0], typeof replicas[0]];
  await until(async () => ((await get(a.port, '/healthz')).status === 200 ? true : undefined), 'replica 1 healthy');
  await until(async () => ((await get(b.port, '/healthz')).status === 200 ? true : undefined), 'replica 2 healthy');
  t.is((await get(a.port)).body, 'count=1 slot=1 host=h1\n');
  t.is((await get(b.port)).body, 'count=2 slot=2 host=h2\n');
  const html = await get(a.port, '/', 'text/html');
  t.regex(html.body, /<h1>3<\/h1>/);
  t.is((await get(a.port, '/nope')).status, 404);
  // Redis goes away: unhealthy, requests fail fast with 503; it comes back: the count goes on.
  redis.kill('SIGTERM');
  await until(async () => ((await get(a.port, '/healthz')).status === 503 ? true : undefined), 'unhealthy without Redis');
  t.is((await get(b.port)).status, 503);
  redis = startRedis(rport, dir, 's3cret');
  await until(async () => ((await get(a.port, '/healthz')).status === 200 ? true : undefined), 'healthy again');
  await until(async () => ((await get(b.port, '/healthz')).status === 200 ? true : undefined), 'replica 2 healthy again');
  t.regex((await get(b.port)).body, /^count=4 slot=2 host=h2\n$/);
});
