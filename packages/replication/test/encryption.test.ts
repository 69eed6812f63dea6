import test from 'ava';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EntryType, type Entry } from '@shoal/raft';
import { AesGcmCipher, CorruptLogError, DataKeyMismatchError, LevelStorage, prepareEncryptedDir, REWRITE_MARKER } from '../src/index.js';

// Encryption at rest of the Raft records (cipher.ts, level-storage.ts, encrypt.ts): real LevelDB.

const MARK = 'TOP-SECRET-PLAINTEXT-7f3a';
const ent = (index: number, term: number, text = `${MARK} entry ${index}`): Entry => ({ index, term, type: EntryType.Normal, data: Buffer.from(text) });
const text = (e: Entry | undefined): string => Buffer.from(e?.data ?? []).toString();
const cipherOf = (id: string, key = randomBytes(32)) => new AesGcmCipher(key, id);

async function tmp(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-enc-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Every file under `dir` (recursively) that contains `needle`, as bytes. */
function filesContaining(dir: string, needle: string): string[] {
  const hits: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (fs.readFileSync(p).includes(Buffer.from(needle))) hits.push(p);
    }
  };
  walk(dir);
  return hits;
}

/** A database with a snapshot (holding MARK) and entries after it, as a plaintext member would have. */
async function populate(dir: string, cipher?: AesGcmCipher): Promise<void> {
  const s = await LevelStorage.open(dir, cipher ? { cipher } : {});
  await s.save({ term: 2, vote: 'a', commit: 6 }, [1, 2, 3, 4, 5, 6].map((i) => ent(i, i < 4 ? 1 : 2)));
  await s.saveSnapshot(4, { voters: ['a'], learners: [] }, Buffer.from(`${MARK} snapshot state`), 3);
  await s.close();
}

async function check(t: import('ava').ExecutionContext, dir: string, cipher: AesGcmCipher): Promise<void> {
  const s = await LevelStorage.open(dir, { cipher });
  try {
    t.is(Buffer.from(s.snapshot().data).toString(), `${MARK} snapshot state`);
    t.is(s.snapshot().metadata.index, 4);
    t.deepEqual(s.entries(5, 7, Infinity).map(text), [`${MARK} entry 5`, `${MARK} entry 6`]);
    t.deepEqual(s.initialState().hardState, { term: 2, vote: 'a', commit: 6 });
  } finally {
    await s.close();
  }
}

test('records sealed with a data key: reopened with it; no plaintext in any file; refused without it or with another', async (t) => {
  const base = await tmp(t);
  const dir = join(base, 'raft');
  const a = cipherOf('key-a');
  await populate(dir, a);
  await check(t, dir, a);
  t.deepEqual(filesContaining(base, MARK), [], 'no file holds the plaintext');
  const e1 = await t.throwsAsync(LevelStorage.open(dir), { instanceOf: DataKeyMismatchError });
  t.regex(e1!.message, /encrypted with data key key-a; open it with that key/);
  const e2 = await t.throwsAsync(LevelStorage.open(dir, { cipher: cipherOf('key-b') }), { instanceOf: DataKeyMismatchError });
  t.regex(e2!.message, /encrypted with data key key-a, not key-b/);
  // The same id with the wrong bytes: records fail their tag check, named as damage.
  const e3 = await t.throwsAsync(LevelStorage.open(dir, { cipher: cipherOf('key-a') }), { instanceOf: CorruptLogError });
  t.regex(e3!.message, /does not decrypt with data key key-a/);
});

test('an unencrypted database is migrated on first start: same state, no plaintext left, not opened unencrypted by mistake', async (t) => {
  const base = await tmp(t);
  const dir = join(base, 'raft');
  await populate(dir);
  t.true(filesContaining(base, MARK).length > 0, 'the old layout holds plaintext');
  const a = cipherOf('key-a');
  await t.throwsAsync(LevelStorage.open(dir, { cipher: a }), { instanceOf: DataKeyMismatchError, message: /is not encrypted/ });
  t.is(await prepareEncryptedDir(dir, a), 'migrated');
  await check(t, dir, a);
  t.deepEqual(filesContaining(base, MARK), []);
  t.deepEqual(fs.readdirSync(base), ['raft'], 'no .rewrite or .old left');
  t.is(await prepareEncryptedDir(dir, a), 'current', 'a second start changes nothing');
  // A new member: nothing to migrate.
  t.is(await prepareEncryptedDir(join(base, 'none'), a), 'fresh');
});

test('re-keying from an earlier data key; a key the node no longer holds is refused', async (t) => {
  const base = await tmp(t);
  const dir = join(base, 'raft');
  const a = cipherOf('key-a');
  const b = cipherOf('key-b');
  await populate(dir, a);
  await t.throwsAsync(prepareEncryptedDir(dir, b), { message: /encrypted with data key key-a, which this node no longer holds/ });
  t.is(await prepareEncryptedDir(dir, b, [a]), 'rekeyed');
  await check(t, dir, b);
  await t.throwsAsync(LevelStorage.open(dir, { cipher: a }), { instanceOf: DataKeyMismatchError });
});

test('a damaged database is not rewritten', async (t) => {
  const base = await tmp(t);
  const dir = join(base, 'raft');
  await populate(dir);
  const { Level } = await import('level');
  const db = new Level<string, Buffer>(dir, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
  await db.put('corrupt', Buffer.from('test damage'));
  await db.close();
  await t.throwsAsync(prepareEncryptedDir(dir, cipherOf('key-a')), { instanceOf: CorruptLogError });
  t.deepEqual(fs.readdirSync(base), ['raft']);
});

const CRASH = fileURLToPath(new URL('./fixtures/crash-rewrite.js', import.meta.url));

function runChild(arg: object): Promise<{ killed: boolean; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CRASH, JSON.stringify(arg)], (err, stdout) => {
      resolve({ killed: !!err && (err as { signal?: string }).signal === 'SIGKILL', out: stdout });
    });
  });
}

for (const kind of ['migration', 'rekey'] as const) {
  test(`kill -9 at every step of a ${kind}: the data is intact and readable with one of the two keys`, async (t) => {
    const base = await tmp(t);
    const a = { key: randomBytes(32).toString('hex'), id: 'key-a' };
    const b = { key: randomBytes(32).toString('hex'), id: 'key-b' };
    const ca = new AesGcmCipher(Buffer.from(a.key, 'hex'), a.id);
    const cb = new AesGcmCipher(Buffer.from(b.key, 'hex'), b.id);
    let killedAt = 0;
    for (let k = 1; k < 40; k++) {
      const dir = join(base, `run${k}`, 'raft');
      await populate(dir, kind === 'rekey' ? ca : undefined);
      const r = await runChild({ dir, killAt: k, to: b, ...(kind === 'rekey' ? { from: a } : {}) });
      if (!r.killed) {
        t.regex(r.out, /^DONE (migrated|rekeyed)/, `step ${k}: finished`);
        break;
      }
      killedAt = k;
      // The next start finishes or undoes the interrupted rewrite.
      const outcome = await prepareEncryptedDir(dir, cb, [ca]);
      t.true(['migrated', 'rekeyed', 'current'].includes(outcome), `step ${k}: ${outcome}`);
      await check(t, dir, cb);
      t.deepEqual(fs.readdirSync(join(base, `run${k}`)), ['raft'], `step ${k}: nothing left beside raft`);
      t.false(fs.existsSync(join(dir, REWRITE_MARKER)));
      t.deepEqual(filesContaining(join(base, `run${k}`), MARK), [], `step ${k}: no plaintext`);
    }
    t.true(killedAt >= 8, `the child was killed at ${killedAt} points before it could finish`);
  });
}
