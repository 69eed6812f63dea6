import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { EntryType, MessageType, type Message } from '@shoal/raft';
import { GrpcTransport, RAFT_GRPC_SERVER_OPTIONS, type TransportHandler } from '../src/index.js';
import { waitFor } from './fixtures/cluster.js';

const msg = (from: string, to: string, fields: Partial<Message> = {}): Message => ({
  type: MessageType.App, from, to, term: 3, logTerm: 2, index: 7, commit: 6, reject: false, rejectHint: 0,
  entries: [{ term: 3, index: 8, type: EntryType.Normal, data: Buffer.from('hello') }], ...fields,
});

function collector(): TransportHandler & { got: Message[]; unreachable: string[]; snaps: [string, boolean][] } {
  const h = {
    got: [] as Message[], unreachable: [] as string[], snaps: [] as [string, boolean][],
    onMessage: (m: Message) => void h.got.push(m),
    onUnreachable: (p: string) => void h.unreachable.push(p),
    onSnapshotStatus: (p: string, ok: boolean) => void h.snaps.push([p, ok]),
  };
  return h;
}

test('messages and a multi-chunk snapshot cross the wire intact; senders learn reply addresses', async (t) => {
  const a = new GrpcTransport({ id: 'a', listen: '127.0.0.1:0' });
  const b = new GrpcTransport({ id: 'b', listen: '127.0.0.1:0' });
  t.teardown(async () => (await a.close(), await b.close()));
  await a.start();
  await b.start();
  const ha = collector();
  const hb = collector();
  a.setHandler(ha);
  b.setHandler(hb);
  a.addPeer('b', b.address());
  a.send([msg('a', 'b'), msg('a', 'b', { type: MessageType.Heartbeat, entries: [], context: Buffer.from('ctx') })]);
  await waitFor(() => hb.got.length === 2, 'b receives 2 messages');
  t.is(hb.got[0]!.type, MessageType.App);
  t.is(hb.got[0]!.index, 7);
  t.is(Buffer.from(hb.got[0]!.entries[0]!.data).toString(), 'hello');
  t.is(Buffer.from(hb.got[1]!.context!).toString(), 'ctx');
  // b never had a's address configured: it learned it from the envelope and can answer.
  t.is(b.peerAddr('a'), a.address());
  b.send([msg('b', 'a', { type: MessageType.AppResp, entries: [] })]);
  await waitFor(() => ha.got.length === 1, 'a receives the reply');

  const data = Buffer.alloc(3 * 1024 * 1024 + 123);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
  a.send([msg('a', 'b', { type: MessageType.Snap, entries: [], snapshot: { metadata: { index: 99, term: 3, confState: { voters: ['a', 'b'], learners: [] } }, data } })]);
  await waitFor(() => ha.snaps.length === 1, 'snapshot status reported');
  t.deepEqual(ha.snaps[0], ['b', true]);
  const snap = hb.got.find((m) => m.type === MessageType.Snap)!;
  t.is(snap.snapshot!.metadata.index, 99);
  t.true(Buffer.from(snap.snapshot!.data).equals(data));
});

test('an unreachable peer is reported, and the stream recovers when it comes up', async (t) => {
  const a = new GrpcTransport({ id: 'a', listen: '127.0.0.1:0', backoffMaxMs: 100 });
  t.teardown(() => a.close());
  await a.start();
  const ha = collector();
  a.setHandler(ha);
  // Reserve a port, then leave it closed.
  const probe = new GrpcTransport({ id: 'b', listen: '127.0.0.1:0' });
  await probe.start();
  const addr = probe.address();
  await probe.close();
  a.addPeer('b', addr);
  a.send([msg('a', 'b')]);
  await waitFor(() => ha.unreachable.includes('b'), 'b reported unreachable');
  const b = new GrpcTransport({ id: 'b', listen: addr });
  t.teardown(() => b.close());
  await b.start();
  const hb = collector();
  b.setHandler(hb);
  await waitFor(() => {
    a.send([msg('a', 'b')]);
    return hb.got.length > 0;
  }, 'b receives after it starts');
  t.pass();
});

test('a host-provided server carries the raft service next to other services', async (t) => {
  const server = new grpc.Server(RAFT_GRPC_SERVER_OPTIONS);
  const echo = {
    Echo: { path: '/test.Echo/Echo', requestStream: false, responseStream: false,
      requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b,
      responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b },
  } satisfies grpc.ServiceDefinition;
  server.addService(echo, { Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, call.request) });
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  const a = new GrpcTransport({ id: 'a', server, advertise: `127.0.0.1:${port}` });
  const b = new GrpcTransport({ id: 'b', listen: '127.0.0.1:0' });
  t.teardown(async () => (await a.close(), await b.close(), server.forceShutdown()));
  await b.start();
  const ha = collector();
  a.setHandler(ha);
  b.setHandler(collector());
  b.addPeer('a', a.address());
  b.send([msg('b', 'a')]);
  await waitFor(() => ha.got.length === 1, 'raft message over the shared server');
  // Above grpc-js's 4 MiB default: the host server must carry RAFT_GRPC_SERVER_OPTIONS.
  const big = Buffer.alloc(6 << 20, 7);
  b.send([msg('b', 'a', { entries: [{ term: 3, index: 8, type: EntryType.Normal, data: big }] })]);
  await waitFor(() => ha.got.length === 2, 'a 6 MiB entry over the shared server');
  t.is(ha.got[1]!.entries[0]!.data.byteLength, big.length);
  const Client = grpc.makeGenericClientConstructor(echo, 'Echo');
  const c = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & { Echo(b: Buffer, cb: (e: Error | null, r?: Buffer) => void): void };
  const r = await new Promise<Buffer>((res, rej) => c.Echo(Buffer.from('ping'), (e, v) => (e ? rej(e) : res(v!))));
  t.is(r.toString(), 'ping');
  c.close();
});

test('mutual TLS credentials: peers with cluster certificates talk, others are refused', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-tls-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=test-ca', '-days', '1');
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'evil.key', '-out', 'evil.crt', '-subj', '/CN=evil-ca', '-days', '1');
  await writeFile(join(dir, 'ext.cnf'), 'subjectAltName=DNS:raft-peer\n');
  for (const [n, ca] of [['a', 'ca'], ['b', 'ca'], ['m', 'evil']] as const) {
    execFileSync('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${n}.key`, '-out', `${n}.csr`, '-subj', `/CN=${n}`], { cwd: dir, stdio: 'pipe' });
    execFileSync('openssl', ['x509', '-req', '-in', `${n}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${n}.crt`, '-days', '1', '-extfile', 'ext.cnf'], { cwd: dir, stdio: 'pipe' });
  }
  const f = (n: string) => readFile(join(dir, n));
  const creds = async (n: string, ca: string) => {
    const [caPem, key, crt] = await Promise.all([f(`${ca}.crt`), f(`${n}.key`), f(`${n}.crt`)]);
    return {
      server: grpc.ServerCredentials.createSsl(caPem, [{ private_key: key, cert_chain: crt }], true),
      client: grpc.credentials.createSsl(caPem, key, crt),
    };
  };
  // Certificates name a role, not a host: override the TLS name checked against them.
  const tlsName = { 'grpc.ssl_target_name_override': 'raft-peer' };
  const a = new GrpcTransport({ id: 'a', listen: '127.0.0.1:0', credentials: await creds('a', 'ca'), channelOptions: tlsName });
  const b = new GrpcTransport({ id: 'b', listen: '127.0.0.1:0', credentials: await creds('b', 'ca'), channelOptions: tlsName });
  const m = new GrpcTransport({ id: 'm', listen: '127.0.0.1:0', credentials: await creds('m', 'evil'), channelOptions: tlsName });
  t.teardown(async () => (await a.close(), await b.close(), await m.close()));
  await Promise.all([a.start(), b.start(), m.start()]);
  const hb = collector();
  const hm = collector();
  b.setHandler(hb);
  a.setHandler(collector());
  m.setHandler(hm);
  a.addPeer('b', b.address());
  a.send([msg('a', 'b')]);
  await waitFor(() => hb.got.length === 1, 'TLS message delivered');
  m.addPeer('b', b.address());
  m.send([msg('m', 'b')]);
  await waitFor(() => hm.unreachable.includes('b'), 'foreign certificate refused');
  t.is(hb.got.length, 1);
});
