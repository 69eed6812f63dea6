import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { until } from '@shoal/testkit';
import { AesGcmCipher, ENC_KEY, sealRecord, unsealRecord } from '@shoal/replication';
import { NodeKeys, SWARM_LOCKED, keyPaths } from '../src/index.js';
import { eventually, startNode, startSwarm, stopAll, type TestNode } from './fixtures.js';

// Encryption at rest and autolock of whole nodes, in process (real LevelDB, real gRPC with mTLS,
// fake engines): docs/SECURITY.md.

const SECRET = 'db-password-9c41e7-PLAINTEXT';
const b64 = (s: string) => Buffer.from(s).toString('base64');

/** Files under `dir` holding `needle` (as bytes), relative to `dir`. */
function grep(dir: string, needle: string | Buffer): string[] {
  const hits: string[] = [];
  const bytes = Buffer.isBuffer(needle) ? needle : Buffer.from(needle);
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && fs.readFileSync(p).includes(bytes)) hits.push(path.relative(dir, p));
    }
  };
  walk(dir);
  return hits;
}

const dataDir = (n: TestNode) => path.join(n.dir, 'data');

/**
 * Restarts a node's daemon, then waits until its socket answers on a fresh connection (the global
 * HTTP agent may hold a kept-alive connection to the daemon that just stopped).
 */
async function restart(n: TestNode): Promise<void> {
  await n.stop();
  await n.start();
  await until(() => n.call('swarm.info', {}).then(() => true, () => false), `${n.name} answers again`);
}

test('autolock: a restarted manager is locked and refuses everything but unlock and info; a wrong key is refused; the right one brings it back', async (t) => {
  const n = await startNode('lock1');
  t.teardown(() => stopAll([n]));
  await n.call('swarm.init', { autolock: true });
  const { key } = await n.call('swarm.unlockKey', {});
  t.regex(key, /^SWMKEY-1-[A-Za-z0-9+/]{43}$/);
  await n.call('secret.create', { name: 'db_pass', data: b64(SECRET) });
  await n.call('service.create', { name: 'web', image: 'shoal/busybox:latest', secrets: [{ source: 'db_pass' }] });
  // Nothing on disk opens the keys: no KEK file, no plain node key.
  const kp = keyPaths(dataDir(n));
  t.true(fs.existsSync(kp.file));
  t.false(fs.existsSync(kp.kek));
  t.false(fs.existsSync(path.join(dataDir(n), 'certs', 'swarm-node.key')));

  await restart(n);
  const info = await n.call('swarm.info', {});
  t.is(info.localNodeState, 'locked');
  for (const call of [() => n.call('service.ls', {}), () => n.call('secret.ls', {}), () => n.call('node.ls', {}), () => n.call('swarm.init', { forceNewCluster: true })]) {
    const e = await t.throwsAsync(call());
    t.is(e!.message, SWARM_LOCKED);
  }
  t.is((await t.throwsAsync(n.call('swarm.leave', {})))!.message, 'Swarm is encrypted and locked. Please unlock it first or use `--force` to ignore this message.');
  const wrong = 'SWMKEY-1-' + Buffer.alloc(32, 7).toString('base64').replace(/=+$/, '');
  t.is((await t.throwsAsync(n.call('swarm.unlock', { key: wrong })))!.message, 'swarm could not be unlocked: invalid key provided');
  t.regex((await t.throwsAsync(n.call('swarm.unlock', { key: 'not-a-key' })))!.message, /^invalid unlock key: expected SWMKEY-1-/);
  t.is((await n.call('swarm.info', {})).localNodeState, 'locked', 'still locked after bad keys');
  await n.call('swarm.unlock', { key });
  t.is((await n.call('swarm.info', {})).localNodeState, 'active');
  await eventually(async () => {
    const ls = await n.call('service.ls', {});
    if (ls.map((s) => s.service.spec.name).join() !== 'web') throw new Error('no service yet');
  }, 'the service is back');
  t.deepEqual((await n.call('secret.ls', {})).map((s) => s.spec.name), ['db_pass']);
  t.is((await t.throwsAsync(n.call('swarm.unlock', { key })))!.message, 'swarm is not locked');
});

test('unlock-key rotation re-wraps the keys: after a restart only the new key unlocks; autolock off: no key needed', async (t) => {
  const n = await startNode('lock2');
  t.teardown(() => stopAll([n]));
  await n.call('swarm.init', { autolock: true });
  const old = (await n.call('swarm.unlockKey', {})).key;
  const { key } = await n.call('swarm.rotateUnlockKey', {});
  t.not(key, old);
  t.is((await n.call('swarm.unlockKey', {})).key, key);
  await restart(n);
  t.is((await t.throwsAsync(n.call('swarm.unlock', { key: old })))!.message, 'swarm could not be unlocked: invalid key provided');
  await n.call('swarm.unlock', { key });
  await n.call('swarm.update', { autolock: false });
  t.is((await n.call('swarm.unlockKey', {})).key, '');
  t.is((await t.throwsAsync(n.call('swarm.rotateUnlockKey', {})))!.message, 'cannot rotate because autolock is not turned on');
  t.true(fs.existsSync(keyPaths(dataDir(n)).kek), 'the local KEK is back');
  await restart(n);
  t.is((await n.call('swarm.info', {})).localNodeState, 'active', 'not locked without autolock');
  // And on again, on a running swarm.
  await n.call('swarm.update', { autolock: true });
  const again = (await n.call('swarm.unlockKey', {})).key;
  t.regex(again, /^SWMKEY-1-/);
  await restart(n);
  t.is((await n.call('swarm.info', {})).localNodeState, 'locked');
  await n.call('swarm.unlock', { key: again });
});

test('no manager\'s data directory holds a secret\'s or config\'s plaintext or the root CA key; workers hold no manager keys', async (t) => {
  const { nodes } = await startSwarm(3, 1);
  t.teardown(() => stopAll(nodes));
  const [n1, n2] = nodes as [TestNode, TestNode];
  // Through another manager: the data is forwarded to the leader over the cluster port.
  await n2.call('secret.create', { name: 'db_pass', data: b64(SECRET) });
  await n1.call('config.create', { name: 'app_conf', data: b64(`listen=8080 ${SECRET}-config`) });
  await n1.call('service.create', { name: 'app', image: 'shoal/busybox:latest', replicas: 4, secrets: [{ source: 'db_pass' }], configs: [{ source: 'app_conf' }] });
  // Force snapshots too, so their chunks are checked as well as log entries.
  for (const n of nodes.slice(0, 3)) {
    await (n.node.managerForTests as unknown as { raft: { snapshotNow(): Promise<number> } }).raft.snapshotNow();
  }
  await until(async () => (await n1.call('service.ls', {}))[0]?.running === 4, 'the tasks run', 30_000);
  const caKey = (n1.node.managerForTests!.cluster()!.rootCaKey ?? '').split('\n').filter((l) => l && !l.startsWith('-----'))[0]!;
  t.truthy(caKey);
  for (const n of nodes) {
    t.deepEqual(grep(dataDir(n), SECRET), [], `${n.name}: no secret or config plaintext`);
    t.deepEqual(grep(dataDir(n), b64(SECRET)), [], `${n.name}: not even base64`);
    t.deepEqual(grep(dataDir(n), caKey), [], `${n.name}: no root CA key`);
  }
  t.false(fs.existsSync(keyPaths(dataDir(nodes[3]!)).file), 'the worker has no manager key file');
});

test('an unencrypted manager data directory (an older version\'s) is encrypted on first start, with its state', async (t) => {
  const n = await startNode('migr');
  t.teardown(() => stopAll([n]));
  await n.call('swarm.init', {});
  await n.call('secret.create', { name: 'db_pass', data: b64(SECRET) });
  await n.stop();
  // Turn it into what an older Shoal left: plaintext Raft data, no key file.
  const dir = dataDir(n);
  const keys = NodeKeys.load(dir);
  keys.openWithLocalKek();
  const dek = keys.dek();
  await decryptInPlace(path.join(dir, 'raft'), new AesGcmCipher(dek.key, dek.id));
  fs.rmSync(keyPaths(dir).file);
  fs.rmSync(keyPaths(dir).kek);
  t.true(grep(dir, b64(SECRET)).length > 0, 'the old layout holds the plaintext (base64, as the store keeps it)');
  await n.start();
  t.is((await n.call('swarm.info', {})).localNodeState, 'active');
  t.deepEqual((await n.call('secret.ls', {})).map((s) => s.spec.name), ['db_pass']);
  t.deepEqual(grep(dir, b64(SECRET)), [], 'migrated: no plaintext left');
  t.true(fs.existsSync(keyPaths(dir).file));
});

/** Rewrites an encrypted Raft database in the clear (what versions before encryption at rest wrote). */
async function decryptInPlace(dir: string, cipher: AesGcmCipher): Promise<void> {
  const { Level } = await import('level');
  const src = new Level<string, Buffer>(dir, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
  const records: [string, Buffer][] = [];
  for await (const [k, v] of src.iterator()) if (k !== ENC_KEY) records.push([k, sealRecord(k, unsealRecord(k, v, cipher))]);
  await src.close();
  fs.rmSync(dir, { recursive: true });
  const dst = new Level<string, Buffer>(dir, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
  for (const [k, v] of records) await dst.put(k, v);
  await dst.close();
}
