import test from 'ava';
import { X509Certificate } from 'node:crypto';
import {
  createKeyAndCsr,
  DEFAULT_NODE_CERT_EXPIRY_MS,
  isRevoked,
  issueNodeCertificate,
  needsRenewal,
  parseCertificate,
  renewalTime,
  RootCA,
  verifyNodeCertificate,
} from '../src/index.js';

const HOUR = 3600_000;

test('root CA: created, reloaded, key mismatch refused', async (t) => {
  const root = await RootCA.create({ clusterId: 'cluster1' });
  const c = new X509Certificate(root.certPem);
  t.true(c.ca);
  t.is(c.subject, 'CN=swarm-ca\nO=cluster1');
  t.true(root.keyPem.startsWith('-----BEGIN PRIVATE KEY-----'));
  const again = await RootCA.load(root.certPem, root.keyPem);
  t.is(again.digest, root.digest);
  const other = await RootCA.create();
  const err = await t.throwsAsync(RootCA.load(root.certPem, other.keyPem));
  t.regex(err!.message, /root CA key does not match/);
  await t.throwsAsync(RootCA.load('not a pem', root.keyPem), { message: /root CA certificate is not a PEM X.509 certificate/ });
});

test('node certificate: subject, role, SANs, usages, validity; identity checks', async (t) => {
  const root = await RootCA.create({ clusterId: 'cluster1' });
  const now = new Date('2026-01-01T00:00:00Z');
  const { keyPem, csrPem } = await createKeyAndCsr('ignored-by-ca');
  const pem = await issueNodeCertificate(root, { csrPem, nodeId: 'node1abc', role: 'manager', clusterId: 'cluster1', now });
  const info = parseCertificate(pem);
  t.is(info.nodeId, 'node1abc');
  t.is(info.role, 'manager');
  t.is(info.clusterId, 'cluster1');
  t.is(info.notBefore.getTime(), now.getTime() - HOUR);
  t.is(info.notAfter.getTime(), now.getTime() + DEFAULT_NODE_CERT_EXPIRY_MS);
  const c = new X509Certificate(pem);
  t.is(c.subject, 'CN=node1abc\nOU=swarm-manager\nO=cluster1');
  t.is(c.subjectAltName, 'DNS:swarm-manager, DNS:node1abc, DNS:swarm-ca, DNS:shoal-manager');
  t.deepEqual(c.keyUsage?.sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
  t.false(c.ca);
  t.deepEqual(verifyNodeCertificate(root.certPem, pem, { now, keyPem }), info);

  const w = await createKeyAndCsr();
  const wpem = await issueNodeCertificate(root, { csrPem: w.csrPem, nodeId: 'node2', role: 'worker', clusterId: 'cluster1', expiryMs: 2 * HOUR, now });
  t.is(parseCertificate(wpem).role, 'worker');
  t.is(new X509Certificate(wpem).subjectAltName, 'DNS:swarm-worker, DNS:node2');

  // Wrong key, other root, outside validity.
  t.throws(() => verifyNodeCertificate(root.certPem, wpem, { now, keyPem }), { message: /does not match the local private key/ });
  const other = await RootCA.create();
  t.throws(() => verifyNodeCertificate(other.certPem, pem, { now }), { message: /not signed by this cluster's root CA/ });
  t.throws(() => verifyNodeCertificate(root.certPem, wpem, { now: new Date(now.getTime() + 3 * HOUR) }), { message: /is not valid at/ });
  // The root itself is not a node certificate.
  t.throws(() => parseCertificate(root.certPem), { message: /not a node role/ });
});

test('bad issuance input is refused with one-line errors', async (t) => {
  const root = await RootCA.create();
  const { csrPem } = await createKeyAndCsr();
  const base = { csrPem, nodeId: 'n1', role: 'worker' as const, clusterId: 'c1' };
  await t.throwsAsync(issueNodeCertificate(root, { ...base, csrPem: 'junk' }), { message: /CSR is not a PEM PKCS#10 request/ });
  await t.throwsAsync(issueNodeCertificate(root, { ...base, role: 'admin' as never }), { message: /invalid role "admin"/ });
  await t.throwsAsync(issueNodeCertificate(root, { ...base, nodeId: 'a,b=c' }), { message: /invalid node ID "a,b=c"/ });
  await t.throwsAsync(issueNodeCertificate(root, { ...base, expiryMs: 1000 }), { message: /too short/ });
  // Tampered CSR: flip a byte inside the signature.
  const lines = csrPem.trim().split('\n');
  const body = Buffer.from(lines.slice(1, -1).join(''), 'base64');
  body[body.length - 5] = (body[body.length - 5] ?? 0) ^ 0x01;
  const tampered = `${lines[0]}\n${body.toString('base64')}\n${lines.at(-1)}\n`;
  await t.throwsAsync(issueNodeCertificate(root, { ...base, csrPem: tampered }), { message: /CSR signature does not verify|not a PEM PKCS#10/ });
});

test('renewal happens at a seeded point in 50–80 % of the lifetime', async (t) => {
  const root = await RootCA.create();
  const { csrPem } = await createKeyAndCsr();
  const now = new Date('2026-01-01T00:00:00Z');
  const pem = await issueNodeCertificate(root, { csrPem, nodeId: 'n1', role: 'worker', clusterId: 'c1', expiryMs: 99 * HOUR, now });
  const nb = now.getTime() - HOUR;
  const life = 100 * HOUR;
  for (const seed of ['a', 'b', 'c', 'd', 'e', 'f']) {
    const at = renewalTime(pem, { seed }).getTime();
    t.true(at >= nb + 0.5 * life && at <= nb + 0.8 * life, seed);
    t.false(needsRenewal(pem, at - 1, { seed }));
    t.true(needsRenewal(pem, at, { seed }));
  }
  t.not(renewalTime(pem, { seed: 'a' }).getTime(), renewalTime(pem, { seed: 'b' }).getTime());
  // Default seed is the serial number: stable for one certificate.
  t.is(renewalTime(pem).getTime(), renewalTime(pem).getTime());
  t.false(needsRenewal(pem, new Date(nb + 0.5 * life - 1)));
  t.true(needsRenewal(pem, new Date(nb + 0.8 * life)));
  t.true(needsRenewal(pem, new Date(nb + 2 * life)), 'expired');
  t.is(renewalTime(pem, { window: [0.25, 0.25] }).getTime(), nb + 0.25 * life);
  t.throws(() => renewalTime(pem, { window: [0.9, 0.1] }), { message: /invalid renewal window/ });
});

test('denylist lookup', (t) => {
  t.true(isRevoked('a', new Set(['a', 'b'])));
  t.false(isRevoked('c', new Set(['a', 'b'])));
  t.true(isRevoked('b', ['a', 'b']));
  t.false(isRevoked('a', []));
});
