import test from 'ava';
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { UserspaceDataplane } from '../src/userspace.js';
import type { LbService, ServiceTable } from '../src/table.js';

/** A free TCP port on `host`. Each test uses its own 127.0.N.0/24 so concurrent tests never collide. */
async function freePort(host = '127.0.0.1'): Promise<number> {
  const s = net.createServer().listen(0, host);
  await once(s, 'listening');
  const p = (s.address() as net.AddressInfo).port;
  s.close();
  return p;
}

/** Real backend: answers every connection with its name, or runs `handler`. */
async function backend(t: import('ava').ExecutionContext, host: string, port: number, handler?: (s: net.Socket) => void) {
  const srv = net.createServer({ allowHalfOpen: true }, handler ?? ((s) => s.end(host)));
  srv.listen(port, host);
  await once(srv, 'listening');
  t.teardown(() => void srv.close());
  return srv;
}

/** Connect, optionally send, read everything until the server closes. */
function fetch(host: string, port: number, send?: Buffer | string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const c = net.connect({ host, port, allowHalfOpen: true });
    const parts: Buffer[] = [];
    c.on('data', (d: Buffer) => parts.push(d));
    c.on('end', () => { c.end(); resolve(Buffer.concat(parts)); });
    c.on('error', reject);
    c.on('connect', () => (send === undefined ? c.end() : c.end(send)));
  });
}

const svc = (vip: string, port: number, ips: string[], extra: Partial<LbService> = {}): ServiceTable => ({
  services: [{
    id: 'web', name: 'web', vip, ports: [{ protocol: 'tcp', targetPort: port }],
    backends: ips.map((ip, i) => ({ ip, taskId: `t${i}`, state: 'active' as const })), ...extra,
  }],
});

test('round-robin over active backends, draining ones skipped', async (t) => {
  const port = await freePort('127.0.1.10');
  for (const ip of ['127.0.1.2', '127.0.1.3', '127.0.1.4']) await backend(t, ip, port);
  const dp = new UserspaceDataplane();
  t.teardown(() => dp.close());
  const table = svc('127.0.1.10', port, ['127.0.1.2', '127.0.1.3', '127.0.1.4']);
  t.is((await dp.sync(table)).mode, 'incremental');
  t.is((await dp.sync(table)).mode, 'noop');
  const got: Record<string, number> = {};
  for (let i = 0; i < 30; i++) {
    const r = (await fetch('127.0.1.10', port)).toString();
    got[r] = (got[r] ?? 0) + 1;
  }
  t.deepEqual(got, { '127.0.1.2': 10, '127.0.1.3': 10, '127.0.1.4': 10 });
  table.services[0]!.backends[1]!.state = 'draining';
  await dp.sync(table);
  const after = new Set<string>();
  for (let i = 0; i < 6; i++) after.add((await fetch('127.0.1.10', port)).toString());
  t.deepEqual([...after].sort(), ['127.0.1.2', '127.0.1.4']);
});

test('a refused backend is retried once on the next one; no backend → reset', async (t) => {
  const port = await freePort('127.0.2.10');
  await backend(t, '127.0.2.3', port);
  const dp = new UserspaceDataplane();
  t.teardown(() => dp.close());
  await dp.sync(svc('127.0.2.10', port, ['127.0.2.2', '127.0.2.3'])); // nothing listens on 127.0.2.2
  for (let i = 0; i < 4; i++) t.is((await fetch('127.0.2.10', port)).toString(), '127.0.2.3');
  t.is(dp.stats().connectFailures, 2);
  await dp.sync(svc('127.0.2.10', port, []));
  await t.throwsAsync(fetch('127.0.2.10', port), { code: 'ECONNRESET' });
  t.is(dp.stats().rejected, 1);
});

test('half-close and a large transfer keep every byte (pipeline backpressure)', async (t) => {
  const port = await freePort('127.0.3.10');
  // Backend: reads until the client half-closes, then answers with the sha256 and 8 MiB of data.
  const big = randomBytes(8 << 20);
  await backend(t, '127.0.3.2', port, (s) => {
    const h = createHash('sha256');
    s.on('data', (d: Buffer) => h.update(d));
    s.on('end', () => { s.write(h.digest()); s.end(big); });
  });
  const dp = new UserspaceDataplane();
  t.teardown(() => dp.close());
  await dp.sync(svc('127.0.3.10', port, ['127.0.3.2']));
  const sent = randomBytes(4 << 20);
  const reply = await fetch('127.0.3.10', port, sent);
  t.deepEqual(reply.subarray(0, 32), createHash('sha256').update(sent).digest());
  t.true(reply.subarray(32).equals(big));
});

test('routing-mesh listener; removing a service keeps its open connection (drain)', async (t) => {
  const port = await freePort('127.0.4.10');
  const mesh = await freePort('127.0.4.1');
  let sock: net.Socket | undefined;
  await backend(t, '127.0.4.2', port, (s) => { sock = s; s.write('hello'); s.on('end', () => s.end()); });
  const dp = new UserspaceDataplane({ meshHost: '127.0.4.1' });
  t.teardown(() => dp.close());
  await dp.sync(svc('127.0.4.10', port, ['127.0.4.2'], { ports: [{ protocol: 'tcp', targetPort: port, publishedPort: mesh }, { protocol: 'udp', targetPort: 53 }] }));
  t.deepEqual(dp.stats().listeners, [`127.0.4.1:${mesh}`, `127.0.4.10:${port}`].sort());
  t.deepEqual(dp.skipped, ['web udp/53']);
  const c = net.connect(mesh, '127.0.4.1');
  const [first] = await once(c, 'data');
  t.is(String(first), 'hello');
  await dp.sync({ services: [] });
  t.deepEqual(dp.stats().listeners, []);
  // The open connection still works both ways after its listener is gone.
  sock!.write('still');
  const [second] = await once(c, 'data');
  t.is(String(second), 'still');
  c.destroy();
  await t.throwsAsync(fetch('127.0.4.1', mesh), { code: 'ECONNREFUSED' });
});

test('listen failures name the address', async (t) => {
  const dp = new UserspaceDataplane();
  t.teardown(() => dp.close());
  const table: ServiceTable = { services: [{ id: 'x', name: 'x', vip: '192.0.2.1', ports: [{ protocol: 'tcp', targetPort: 80 }], backends: [] }] };
  await t.throwsAsync(dp.sync(table), { message: /could not listen on 192\.0\.2\.1:80: .*EADDRNOTAVAIL/ });
});
