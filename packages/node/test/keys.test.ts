import test from 'ava';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WrongKeyError, generateUnlockKey } from '@shoal/ca';
import { NodeKeys, keyPaths } from '../src/index.js';
import { certPaths } from '../src/state.js';

// The manager key file (keys.ts): wrapping, autolock transitions, and kill -9 in the middle of them.

const NODE_KEY = '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIFAKEKEYFORTESTSONLYxxxxxxxxxxxxxxxxxxxxxx\n-----END PRIVATE KEY-----\n';

function tmpDir(t: { teardown(fn: () => void): void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-keys-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A manager data dir with a key file, its plain node key, then locked with `key` at version 10 (unless undefined). */
function manager(dir: string, key?: string): Buffer {
  fs.mkdirSync(certPaths(dir).dir, { recursive: true });
  fs.writeFileSync(certPaths(dir).key, NODE_KEY);
  const k = NodeKeys.load(dir);
  k.ensureManager();
  if (key) k.follow(key, 10, NODE_KEY);
  return k.dek().key;
}

/** Which key opens the key file now, and what it holds. */
function opens(dir: string, candidates: (string | undefined)[]): { key: string | undefined; dek: Buffer; nodeKey: string } {
  for (const c of candidates) {
    const k = NodeKeys.load(dir);
    try {
      if (c) {
        if (!k.autolocked) continue;
        k.unlock(c);
      }
      else {
        if (k.autolocked) continue;
        k.openWithLocalKek();
      }
    } catch (e) {
      if (e instanceof WrongKeyError) continue;
      throw e;
    }
    if (k.locked) continue;
    const nodeKey = k.nodeKeyPem() ?? fs.readFileSync(certPaths(dir).key, 'utf8');
    return { key: c, dek: k.dek().key, nodeKey };
  }
  throw new Error('no candidate key opens the key file');
}

test('locking moves the node key into the key file and removes the local KEK; unlocking puts them back; older cluster versions are ignored', (t) => {
  const dir = tmpDir(t);
  const dek = manager(dir);
  const p = keyPaths(dir);
  t.true(fs.existsSync(p.kek));
  const k = NodeKeys.load(dir);
  k.openWithLocalKek();
  const key1 = generateUnlockKey();
  t.is(k.follow(key1, 5, NODE_KEY), 'locked');
  t.false(fs.existsSync(p.kek));
  t.false(fs.existsSync(certPaths(dir).key));
  t.false(fs.readFileSync(p.file, 'utf8').includes('PRIVATE KEY'));
  t.is(k.follow(generateUnlockKey(), 4, NODE_KEY), undefined, 'an older cluster version (log replay) changes nothing');
  const locked = NodeKeys.load(dir);
  t.true(locked.locked);
  t.throws(() => locked.unlock(generateUnlockKey()), { instanceOf: WrongKeyError });
  t.throws(() => locked.unlock('SWMKEY-1-short'), { message: /^invalid unlock key/ });
  locked.unlock(key1);
  t.true(locked.dek().key.equals(dek));
  t.is(locked.nodeKeyPem(), NODE_KEY);
  const key2 = generateUnlockKey();
  t.is(locked.follow(key2, 6, NODE_KEY), 'rotated');
  t.is(opens(dir, [key1, key2]).key, key2);
  t.is(locked.follow(undefined, 7, NODE_KEY), 'unlocked');
  t.true(fs.existsSync(p.kek));
  t.is(fs.readFileSync(certPaths(dir).key, 'utf8'), NODE_KEY);
  const again = NodeKeys.load(dir);
  t.false(again.locked);
  again.openWithLocalKek();
  t.true(again.dek().key.equals(dek), 'the data key never changes, only its wrapping');
  again.drop(NODE_KEY);
  t.false(fs.existsSync(p.file));
  t.false(fs.existsSync(p.kek));
});

const CRASH = fileURLToPath(new URL('./fixtures/crash-keys.js', import.meta.url));

function child(arg: object): Promise<{ killed: boolean; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CRASH, JSON.stringify(arg)], (err, stdout, stderr) => {
      if (err && (err as { signal?: string }).signal !== 'SIGKILL') resolve({ killed: false, out: `${stdout}${stderr}` });
      else resolve({ killed: !!err, out: stdout });
    });
  });
}

for (const change of ['rotate', 'lock', 'unlock'] as const) {
  test(`kill -9 at every step of an unlock-key ${change}: the keys open with the old or the new key, the data key and node key intact`, async (t) => {
    const base = tmpDir(t);
    const oldKey = change === 'lock' ? undefined : generateUnlockKey();
    const newKey = change === 'unlock' ? undefined : generateUnlockKey();
    let killedAt = 0;
    for (let k = 1; k < 40; k++) {
      const dir = path.join(base, `run${k}`);
      const dek = manager(dir, oldKey);
      const r = await child({ dataDir: dir, killAt: k, ...(oldKey ? { openKey: oldKey } : {}), ...(newKey ? { nextKey: newKey } : {}), version: 20, nodeKeyPem: NODE_KEY });
      const got = opens(dir, [newKey, oldKey]);
      t.true(got.dek.equals(dek), `step ${k}: the data key is intact`);
      t.is(got.nodeKey, NODE_KEY, `step ${k}: the node key is intact`);
      if (!r.killed) {
        t.regex(r.out, /^DONE (rotated|locked|unlocked)/, `step ${k}: finished`);
        t.is(got.key, newKey, 'finished: the new key opens it');
        break;
      }
      killedAt = k;
      // The next start cleans up what the cut-short change left.
      NodeKeys.load(dir);
      const names = fs.readdirSync(certPaths(dir).dir).sort();
      t.false(names.some((n) => n.endsWith('.tmp')), `step ${k}: no temporary file left (${names.join(' ')})`);
      if (NodeKeys.load(dir).autolocked) {
        t.false(names.includes('swarm-kek.key'), `step ${k}: no local KEK beside a locked key file`);
        t.false(names.includes('swarm-node.key'), `step ${k}: no plain node key beside a locked key file`);
      }
    }
    t.true(killedAt >= 3, `killed at ${killedAt} points before it finished`);
  });
}
