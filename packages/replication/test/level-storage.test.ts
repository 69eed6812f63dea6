import test from 'ava';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { EntryType, type Entry } from '@shoal/raft';
import { CorruptLogError, LevelStorage, entryKey } from '../src/index.js';

const ent = (index: number, term: number, text = `v${index}`): Entry => ({ index, term, type: EntryType.Normal, data: Buffer.from(text) });
const text = (e: Entry | undefined): string => Buffer.from(e?.data ?? []).toString();

async function tmp(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-ls-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('entries, hard state and snapshot survive a reopen', async (t) => {
  const dir = await tmp(t);
  let s = await LevelStorage.open(dir);
  t.true(s.loaded.fresh);
  await s.save({ term: 2, vote: 'a', commit: 3 }, [ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 2)]);
  await s.close();

  s = await LevelStorage.open(dir);
  t.false(s.loaded.fresh);
  t.deepEqual(s.initialState().hardState, { term: 2, vote: 'a', commit: 3 });
  t.is(s.firstIndex(), 1);
  t.is(s.lastIndex(), 4);
  t.is(s.term(3), 2);
  t.deepEqual(s.entries(1, 5, Infinity).map(text), ['v1', 'v2', 'v3', 'v4']);

  // Local snapshot at 3 keeping entries from 2 on.
  await s.saveSnapshot(3, { voters: ['a', 'b'], learners: [] }, Buffer.from('state@3'), 2);
  t.deepEqual(s.diskRange(), { first: 2, last: 4 });
  await s.close();

  s = await LevelStorage.open(dir);
  const snap = s.snapshot();
  t.is(snap.metadata.index, 3);
  t.is(snap.metadata.term, 2);
  t.deepEqual(snap.metadata.confState, { voters: ['a', 'b'], learners: [] });
  t.is(Buffer.from(snap.data).toString(), 'state@3');
  t.is(s.firstIndex(), 4);
  t.is(s.lastIndex(), 4);
  t.is(text(s.entries(4, 5, Infinity)[0]), 'v4');
  await s.close();
});

test('an entry at index i truncates persisted entries >= i, on disk too', async (t) => {
  const dir = await tmp(t);
  let s = await LevelStorage.open(dir);
  await s.save({ term: 1, vote: 'a', commit: 1 }, [ent(1, 1), ent(2, 1), ent(3, 1), ent(4, 1)]);
  await s.save({ term: 2, vote: 'b', commit: 1 }, [ent(2, 2, 'new2')]);
  t.is(s.lastIndex(), 2);
  await s.close();
  s = await LevelStorage.open(dir);
  t.is(s.lastIndex(), 2);
  t.deepEqual(s.entries(1, 3, Infinity).map(text), ['v1', 'new2']);
  t.deepEqual(s.diskRange(), { first: 1, last: 2 });
  await s.close();
});

test('a snapshot from the leader replaces the whole log (chunked data)', async (t) => {
  const dir = await tmp(t);
  let s = await LevelStorage.open(dir);
  await s.save({ term: 1, vote: 'a', commit: 2 }, [ent(1, 1), ent(2, 1), ent(3, 1)]);
  const big = Buffer.alloc(2.5 * 1024 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
  await s.save({ term: 3, vote: '', commit: 10 }, [ent(11, 3)], {
    metadata: { index: 10, term: 3, confState: { voters: ['a', 'b', 'c'], learners: ['d'] } },
    data: big,
  });
  await s.close();
  s = await LevelStorage.open(dir);
  t.is(s.snapshot().metadata.index, 10);
  t.true(Buffer.from(s.snapshot().data).equals(big));
  t.is(s.firstIndex(), 11);
  t.is(s.lastIndex(), 11);
  t.deepEqual(s.diskRange(), { first: 11, last: 11 });
  // A smaller snapshot later drops the stale chunks.
  await s.saveSnapshot(11, { voters: ['a'], learners: [] }, Buffer.from('small'), 11);
  await s.close();
  s = await LevelStorage.open(dir);
  t.is(Buffer.from(s.snapshot().data).toString(), 'small');
  await s.close();
});

test('a record altered in LevelDB is reported as CorruptLogError naming its key', async (t) => {
  const dir = await tmp(t);
  const s = await LevelStorage.open(dir);
  await s.save({ term: 1, vote: 'a', commit: 2 }, [ent(1, 1), ent(2, 1), ent(3, 1)]);
  await s.close();
  // Rewrite entry 2's value with one payload byte flipped (the checksum no longer matches).
  const db = new Level<string, Buffer>(dir, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
  await db.open();
  const v = (await db.get(entryKey(2)))!;
  v[v.length - 1]! ^= 0x01;
  await db.put(entryKey(2), v);
  await db.close();
  const err = await t.throwsAsync(LevelStorage.open(dir), { instanceOf: CorruptLogError });
  t.is(err?.key, entryKey(2));
});

test('a byte flipped in a LevelDB file on disk is reported, never applied', async (t) => {
  const dir = await tmp(t);
  const marker = 'MARKER-0123456789-abcdefghijklmnopqrstuvwxyz';
  const s = await LevelStorage.open(dir);
  await s.save({ term: 1, vote: 'a', commit: 2 }, [ent(1, 1), ent(2, 1, marker), ent(3, 1)]);
  await s.close();
  // The write-ahead .log (or a table) holds the marker: flip a byte inside it.
  let flipped = false;
  for (const f of await readdir(dir)) {
    if (!/\.(log|ldb)$/.test(f)) continue;
    const buf = await readFile(join(dir, f));
    const at = buf.indexOf(marker);
    if (at < 0) continue;
    buf[at + 10]! ^= 0x20;
    await writeFile(join(dir, f), buf);
    flipped = true;
  }
  t.true(flipped, 'marker found in a LevelDB file');
  // LevelDB either drops the damaged write-ahead record (then the commit index is past the log)
  // or returns it (then our CRC fails): both must surface as CorruptLogError.
  const err = await t.throwsAsync(LevelStorage.open(dir), { instanceOf: CorruptLogError });
  t.regex(err?.message ?? '', /corrupt raft record/);
  // The refusal is sticky: LevelDB already discarded the damaged record, a second open must not
  // come up looking healthy.
  await t.throwsAsync(LevelStorage.open(dir), { instanceOf: CorruptLogError });
});

test('a byte flipped inside a LevelDB table file is reported', async (t) => {
  const dir = await tmp(t);
  const marker = Buffer.alloc(300);
  for (let i = 0; i < marker.length; i++) marker[i] = (i * 131 + 7) & 0xff; // incompressible-ish
  let s = await LevelStorage.open(dir);
  await s.save({ term: 1, vote: 'a', commit: 3 }, [ent(1, 1), { index: 2, term: 1, type: EntryType.Normal, data: marker }, ent(3, 1)]);
  await s.close();
  s = await LevelStorage.open(dir); // recovery moves the write-ahead log into a table (.ldb)
  await s.close();
  let flipped = false;
  for (const f of await readdir(dir)) {
    if (!f.endsWith('.ldb')) continue;
    const buf = await readFile(join(dir, f));
    const at = buf.indexOf(marker.subarray(0, 64));
    if (at < 0) continue;
    buf[at + 100]! ^= 0x01;
    await writeFile(join(dir, f), buf);
    flipped = true;
  }
  t.true(flipped, 'payload found in a table file');
  await t.throwsAsync(LevelStorage.open(dir), { instanceOf: CorruptLogError });
});

test('a commit index past the log is reported', async (t) => {
  const dir = await tmp(t);
  const s = await LevelStorage.open(dir);
  await s.save({ term: 1, vote: 'a', commit: 1 }, [ent(1, 1)]);
  await s.close();
  const db = new Level<string, Buffer>(dir, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
  await db.open();
  await db.del(entryKey(1));
  await db.close();
  const err = await t.throwsAsync(LevelStorage.open(dir), { instanceOf: CorruptLogError });
  t.is(err?.key, 'hs');
});

test('chunks of a snapshot interrupted before its switch are discarded; the old snapshot stays', async (t) => {
  const dir = await tmp(t);
  let s = await LevelStorage.open(dir);
  await s.save({ term: 1, vote: 'a', commit: 5 }, [ent(1, 1), ent(2, 1), ent(3, 1), ent(4, 1), ent(5, 1)]);
  await s.saveSnapshot(3, { voters: ['a'], learners: [] }, Buffer.from('state@3'), 2);
  await s.close();
  // A crash after writing the data of a snapshot at 5 but before its meta switch.
  const db = new Level<string, Buffer>(dir, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
  await db.open();
  await db.put('snap/data/0000000000000005/00000000', Buffer.from('partial'));
  await db.close();
  s = await LevelStorage.open(dir);
  t.is(s.snapshot().metadata.index, 3);
  t.is(Buffer.from(s.snapshot().data).toString(), 'state@3');
  t.is(s.lastIndex(), 5);
  await s.close();
  const db2 = new Level<string, Buffer>(dir, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
  await db2.open();
  t.false(await db2.has('snap/data/0000000000000005/00000000'), 'orphan chunk deleted');
  await db2.close();
});

test('entries left behind a snapshot by an interrupted clear are ignored and removed', async (t) => {
  const dir = await tmp(t);
  let s = await LevelStorage.open(dir);
  await s.save({ term: 1, vote: 'a', commit: 3 }, [ent(1, 1), ent(2, 1), ent(3, 1)]);
  await s.save({ term: 3, vote: '', commit: 10 }, [ent(11, 3)], {
    metadata: { index: 10, term: 3, confState: { voters: ['a'], learners: [] } },
    data: Buffer.from('state@10'),
  });
  await s.close();
  // As if the process died before the background clear of entries 1..3 ran (one even torn).
  const db = new Level<string, Buffer>(dir, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
  await db.open();
  for (const i of [2, 3]) await db.put(entryKey(i), Buffer.from('torn'));
  await db.close();
  s = await LevelStorage.open(dir);
  t.is(s.snapshot().metadata.index, 10);
  t.is(s.firstIndex(), 11);
  t.is(s.lastIndex(), 11);
  await s.close();
  const db2 = new Level<string, Buffer>(dir, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
  await db2.open();
  t.false(await db2.has(entryKey(2)));
  t.true(await db2.has(entryKey(11)));
  await db2.close();
});
