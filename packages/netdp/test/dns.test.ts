import test from 'ava';
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import * as dnsPacket from 'dns-packet';
import type { DecodedPacket, RecordType } from 'dns-packet';
import { ServiceDns, parseResolvConf, type DnsRecords } from '../src/dns.js';

/** Real UDP client bound to `from` (its address is how the resolver scopes the asker). */
async function query(server: { host: string; port: number }, name: string, from = '127.0.0.1', type: RecordType = 'A'): Promise<DecodedPacket> {
  const s = dgram.createSocket('udp4');
  s.bind(0, from);
  await once(s, 'listening');
  try {
    const id = Math.floor(Math.random() * 65535);
    s.send(dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name }] }), server.port, server.host);
    const [msg] = (await Promise.race([once(s, 'message'), new Promise((_, rej) => setTimeout(() => rej(new Error(`no DNS reply for ${name} in 5 s`)), 5000))])) as [Buffer];
    return dnsPacket.decode(msg);
  } finally {
    s.close();
  }
}

async function queryTcp(server: { host: string; port: number }, name: string, from: string): Promise<DecodedPacket> {
  const c = net.connect({ host: server.host, port: server.port, localAddress: from });
  await once(c, 'connect');
  c.write(dnsPacket.streamEncode({ type: 'query', id: 7, questions: [{ type: 'A', name }] }));
  let buf = Buffer.alloc(0);
  for await (const d of c) {
    buf = Buffer.concat([buf, d as Buffer]);
    if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) break;
  }
  c.destroy();
  return dnsPacket.decode(buf.subarray(2));
}

/** dns-packet decodes `rcode` but its types omit it. */
const rcode = (p: DecodedPacket): string => (p as DecodedPacket & { rcode: string }).rcode;
const ips = (p: DecodedPacket) => (p.answers ?? []).map((a) => (a as { data: string }).data).sort();

/** A stand-in upstream resolver on loopback (real UDP, dns-packet): `example.test` → 192.0.2.7, else NXDOMAIN. */
async function upstream(t: import('ava').ExecutionContext, silent = false) {
  const s = dgram.createSocket('udp4');
  s.on('message', (m, r) => {
    if (silent) return;
    const q = dnsPacket.decode(m);
    const name = q.questions![0]!.name;
    const known = name === 'example.test';
    s.send(dnsPacket.encode({
      type: 'response', id: q.id, flags: dnsPacket.RECURSION_AVAILABLE | (known ? 0 : 3), questions: q.questions,
      answers: known ? [{ type: 'A', name, ttl: 60, data: '192.0.2.7' }] : [],
    }), r.port, r.address);
  });
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  t.teardown(() => s.close());
  return { host: '127.0.0.1', port: s.address().port };
}

const records = (): DnsRecords => ({
  services: [
    { name: 'web', networkId: 'n1', mode: 'vip', vip: '10.96.0.10', taskIps: ['10.97.1.2', '10.97.2.2', '10.97.3.2'] },
    { name: 'web', networkId: 'n2', mode: 'vip', vip: '10.96.1.10', taskIps: ['10.98.1.2'] },
    { name: 'db', aliases: ['postgres'], networkId: 'n1', mode: 'dnsrr', taskIps: ['10.97.1.9', '10.97.2.9'] },
    { name: 'secret', networkId: 'n2', mode: 'vip', vip: '10.96.1.20', taskIps: ['10.98.1.5'] },
  ],
  clients: [{ ip: '127.0.6.2', networks: ['n1'] }, { ip: '127.0.6.3', networks: ['n1', 'n2'] }],
});

async function server(t: import('ava').ExecutionContext, up: { host: string; port: number }[], extra = {}) {
  const dns = new ServiceDns({ host: '127.0.0.1', port: 0, upstreams: up, forwardTimeoutMs: 500, ...extra });
  await dns.start();
  t.teardown(() => dns.close());
  dns.setRecords(records());
  return { dns, addr: dns.address() };
}

test('NAME → VIP, tasks.NAME → task IPs, dnsrr → task IPs, aliases; scoped to the asker\'s networks', async (t) => {
  const { addr } = await server(t, [await upstream(t)]);
  t.deepEqual(ips(await query(addr, 'web', '127.0.6.2')), ['10.96.0.10']);
  t.deepEqual(ips(await query(addr, 'WEB.', '127.0.6.2')), ['10.96.0.10']);
  t.deepEqual(ips(await query(addr, 'tasks.web', '127.0.6.2')), ['10.97.1.2', '10.97.2.2', '10.97.3.2']);
  t.deepEqual(ips(await query(addr, 'db', '127.0.6.2')), ['10.97.1.9', '10.97.2.9']);
  t.deepEqual(ips(await query(addr, 'postgres', '127.0.6.2')), ['10.97.1.9', '10.97.2.9']);
  // Attached to both networks: both VIPs.
  t.deepEqual(ips(await query(addr, 'web', '127.0.6.3')), ['10.96.0.10', '10.96.1.10']);
  // `secret` lives on n2 only: for a client on n1 it is not ours, the upstream says NXDOMAIN.
  const r = await query(addr, 'secret', '127.0.6.2');
  t.is(rcode(r), 'NXDOMAIN');
  t.deepEqual(ips(await query(addr, 'secret', '127.0.6.3')), ['10.96.1.20']);
  // Unknown askers see no service names.
  t.is(rcode(await query(addr, 'web', '127.0.6.9')), 'NXDOMAIN');
  // AAAA for a service name: NOERROR, no data (not forwarded).
  const aaaa = await query(addr, 'web', '127.0.6.2', 'AAAA');
  t.is(rcode(aaaa), 'NOERROR');
  t.deepEqual(aaaa.answers, []);
  t.true(aaaa.flag_aa);
});

test('other names are forwarded to the upstream resolvers', async (t) => {
  const { addr, dns } = await server(t, [await upstream(t, true), await upstream(t)]);
  const r = await query(addr, 'example.test', '127.0.6.2');
  t.deepEqual(ips(r), ['192.0.2.7']);
  t.is(dns.stats.forwarded, 1);
});

test('fail fast: SERVFAIL when no upstream answers, and when there is none', async (t) => {
  const { addr } = await server(t, [await upstream(t, true)]);
  t.is(rcode(await query(addr, 'example.test', '127.0.6.2')), 'SERVFAIL');
  const none = await server(t, []);
  t.is(rcode(await query(none.addr, 'example.test', '127.0.6.2')), 'SERVFAIL');
});

test('setRecords swaps the whole set at once', async (t) => {
  const { addr, dns } = await server(t, []);
  t.deepEqual(ips(await query(addr, 'tasks.web', '127.0.6.2')), ['10.97.1.2', '10.97.2.2', '10.97.3.2']);
  const next = records();
  next.services[0]!.taskIps = ['10.97.1.2'];
  dns.setRecords(next);
  t.deepEqual(ips(await query(addr, 'tasks.web', '127.0.6.2')), ['10.97.1.2']);
});

test('large answers: UDP truncates with TC, TCP returns them all', async (t) => {
  const { addr, dns } = await server(t, []);
  const many = Array.from({ length: 100 }, (_, i) => `10.97.${1 + (i >> 6)}.${10 + (i & 63)}`);
  dns.setRecords({ services: [{ name: 'big', networkId: 'n1', mode: 'dnsrr', taskIps: many }], clients: [{ ip: '127.0.6.2', networks: ['n1'] }] });
  const u = await query(addr, 'big', '127.0.6.2');
  t.true(u.flag_tc);
  t.true((u.answers ?? []).length < 100);
  const tcp = await queryTcp(addr, 'big', '127.0.6.2');
  t.deepEqual(ips(tcp), [...many].sort());
});

test('parseResolvConf keeps IPv4 nameservers, drops Docker\'s 127.0.0.11', (t) => {
  t.deepEqual(parseResolvConf('# x\nsearch a.b\nnameserver 10.0.0.2\nnameserver 127.0.0.11\nnameserver ::1\n nameserver 1.1.1.1 \noptions ndots:0\n'), ['10.0.0.2', '1.1.1.1']);
});
