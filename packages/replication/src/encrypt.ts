/**
 * Bringing a member's Raft database under a data encryption key (docs/SECURITY.md): an unencrypted
 * database (written before encryption at rest existed) or one sealed with an earlier key is
 * rewritten record by record into a fresh database, which then replaces the old one. The old files
 * are deleted, so no plaintext record stays behind in LevelDB's tables or logs.
 *
 * Crash safety (a `kill -9` at any point leaves the data intact and readable with one of the keys
 * the caller holds), by three directories next to `<dir>`:
 *
 * 1. build `<dir>.rewrite` (every record re-sealed), close it, then write and fsync its marker
 *    file `REWRITE-COMPLETE`;
 * 2. rename `<dir>` → `<dir>.old`;
 * 3. rename `<dir>.rewrite` → `<dir>`;
 * 4. delete the marker and `<dir>.old`.
 *
 * {@link prepareEncryptedDir} first finishes or undoes whatever an earlier run left: an incomplete
 * `.rewrite` is deleted (`<dir>` is untouched until step 2), a complete one is moved into place,
 * a leftover `.old` is deleted once `<dir>` is in place. Each rename is atomic and fsynced
 * (the parent directory too).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Level } from 'level';
import type { RecordCipher } from './cipher.js';
import { CorruptLogError } from './errors.js';
import { CORRUPT_KEY, ENC_KEY, encRecord, hasRecords, readEncInfo, sealRecord, unsealRecord } from './level-storage.js';

/** Marker of a finished rewrite (inside `<dir>.rewrite`). */
export const REWRITE_MARKER = 'REWRITE-COMPLETE';
/** Bytes of records per LevelDB batch while rewriting. */
const BATCH_BYTES = 4 << 20;

/** What {@link prepareEncryptedDir} did. */
export type PrepareOutcome = 'fresh' | 'current' | 'migrated' | 'rekeyed';

interface Log {
  info(o: object, msg?: string): void;
  warn(o: object, msg?: string): void;
}

/**
 * Makes the Raft database at `dir` one sealed with `cipher`, finishing any rewrite an earlier run
 * left. An empty or absent database is left for `LevelStorage.open` to create (`fresh`); one
 * already sealed with `cipher` is left as it is (`current`); an unencrypted one is rewritten under
 * `cipher` (`migrated`); one sealed with a key in `previous` is rewritten under `cipher` (`rekeyed`).
 * Call it with the database closed, before `LevelStorage.open(dir, { cipher })`.
 * @throws CorruptLogError when the database is damaged (nothing is rewritten); Error naming the key
 *   id when it is sealed with a key that is neither `cipher` nor in `previous`.
 */
export async function prepareEncryptedDir(dir: string, cipher: RecordCipher, previous: readonly RecordCipher[] = [], log?: Log): Promise<PrepareOutcome> {
  recoverRewrite(dir, log);
  if (!fs.existsSync(dir)) return 'fresh';
  const db = new Level<string, Buffer>(dir, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
  await db.open();
  let from: RecordCipher | undefined;
  try {
    if (await db.get(CORRUPT_KEY)) throw new CorruptLogError(CORRUPT_KEY, 'an earlier open found damage; not rewriting it');
    const info = await readEncInfo(db);
    if (info?.keyId === cipher.keyId) return 'current';
    if (info) {
      from = previous.find((c) => c.keyId === info.keyId);
      if (!from) throw new Error(`the Raft data in ${dir} is encrypted with data key ${info.keyId}, which this node no longer holds`);
    } else if (!(await hasRecords(db))) {
      return 'fresh';
    }
  } finally {
    await db.close();
  }
  const tmp = `${dir}.rewrite`;
  log?.info({ dir, from: from?.keyId ?? 'plaintext', to: cipher.keyId }, from ? 'rewriting the Raft data under a new data key' : 'encrypting the Raft data (first start with encryption at rest)');
  const records = await rewrite(dir, tmp, from, cipher);
  writeMarker(tmp);
  swapIn(dir, log);
  log?.info({ dir, records }, 'Raft data rewritten; the old files are deleted');
  return from ? 'rekeyed' : 'migrated';
}

/** Copies every record of `src` into a new database `dst`, opened with `from` and sealed with `to`. @returns the record count. */
async function rewrite(src: string, dst: string, from: RecordCipher | undefined, to: RecordCipher): Promise<number> {
  fs.rmSync(dst, { recursive: true, force: true });
  const input = new Level<string, Buffer>(src, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
  const output = new Level<string, Buffer>(dst, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
  await input.open();
  await output.open();
  let count = 0;
  try {
    let batch = output.batch();
    let bytes = 0;
    for await (const [key, value] of input.iterator()) {
      if (key === ENC_KEY || key === CORRUPT_KEY) continue;
      const plain = unsealRecord(key, value, from);
      const sealed = sealRecord(key, plain, to);
      batch.put(key, sealed);
      bytes += sealed.byteLength;
      count++;
      if (bytes >= BATCH_BYTES) {
        await batch.write();
        batch = output.batch();
        bytes = 0;
      }
    }
    batch.put(ENC_KEY, encRecord(to.keyId));
    await batch.write({ sync: true });
  } finally {
    await input.close();
    await output.close();
  }
  return count;
}

function writeMarker(tmp: string): void {
  const file = path.join(tmp, REWRITE_MARKER);
  const fd = fs.openSync(file, 'w', 0o600);
  try {
    fs.writeSync(fd, 'done\n');
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fsyncDir(tmp);
}

/** Steps 2–4 for a complete `<dir>.rewrite`. */
function swapIn(dir: string, log?: Log): void {
  const tmp = `${dir}.rewrite`;
  const old = `${dir}.old`;
  if (fs.existsSync(dir)) {
    fs.rmSync(old, { recursive: true, force: true });
    fs.renameSync(dir, old);
    fsyncDir(path.dirname(dir));
  }
  fs.renameSync(tmp, dir);
  fsyncDir(path.dirname(dir));
  fs.rmSync(path.join(dir, REWRITE_MARKER), { force: true });
  fs.rmSync(old, { recursive: true, force: true });
  log?.info({ dir }, 'rewritten Raft data in place');
}

/** Finishes or undoes what an interrupted rewrite left next to `dir` (see the file header). */
export function recoverRewrite(dir: string, log?: Log): void {
  const tmp = `${dir}.rewrite`;
  const old = `${dir}.old`;
  if (fs.existsSync(tmp)) {
    if (fs.existsSync(path.join(tmp, REWRITE_MARKER))) {
      log?.warn({ dir }, 'finishing an interrupted rewrite of the Raft data');
      swapIn(dir, log);
    } else {
      log?.warn({ dir }, 'deleting an incomplete rewrite of the Raft data (the original is intact)');
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  // A marker inside `<dir>` means step 4 was cut short: the rewrite is in place.
  fs.rmSync(path.join(dir, REWRITE_MARKER), { force: true });
  if (fs.existsSync(old)) {
    if (fs.existsSync(dir)) fs.rmSync(old, { recursive: true, force: true });
    else {
      // Only reachable if `<dir>.rewrite` vanished after step 2: keep the data we have.
      fs.renameSync(old, dir);
      fsyncDir(path.dirname(dir));
    }
  }
}

function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Some file systems refuse fsync on directories; the rename itself is still atomic.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
