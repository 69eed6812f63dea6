import test from 'ava';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SHOALD, Shoald } from '../lib/harness.js';

// One daemon per socket and per data directory; bad flags are refused before anything starts.

const d = new Shoald('daemon');

function shoald(...args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [SHOALD, ...args], { timeout: 20_000 }, (err, _out, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stderr: String(stderr) });
    });
  });
}

test.before(async () => {
  await d.start();
});

test.after.always(async () => {
  await d.destroy();
});

test.serial('a second shoald on the same socket or data directory is refused; the first keeps answering', async (t) => {
  const other = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-daemon2-'));
  t.teardown(() => fs.rmSync(other, { recursive: true, force: true }));
  const sameSocket = await shoald('--data-dir', path.join(other, 'data'), '--socket', d.socket, '--listen-addr', '127.0.0.1:0');
  t.is(sameSocket.code, 1);
  t.regex(sameSocket.stderr, new RegExp(`another shoald is serving ${d.socket.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  const sameDir = await shoald('--data-dir', path.join(d.dir, 'data'), '--socket', path.join(other, 's.sock'), '--listen-addr', '127.0.0.1:0');
  t.is(sameDir.code, 1);
  t.regex(sameDir.stderr, /another shoald \(pid \d+\) uses --data-dir/);
  t.false(fs.existsSync(path.join(other, 's.sock')), 'the refused daemon made no socket');
  const ls = await d.cli('swarm', 'init');
  t.is(ls.code, 0, ls.stderr);
});

test.serial('bad flags: one line naming the value, exit 2', async (t) => {
  for (const [args, re] of [
    [['--listen-addr', 'bogus'], /invalid --listen-addr "bogus"/],
    [['--data-path-port', '99999'], /invalid --data-path-port "99999"; use an integer 1–65535/],
    [['--advertise-addr', 'a/b'], /invalid --advertise-addr "a\/b"/],
  ] as const) {
    const r = await shoald('--data-dir', '/nonexistent/never-made', ...args);
    t.is(r.code, 2, r.stderr);
    t.regex(r.stderr, re);
    t.is(r.stderr.trim().split('\n').length, 1);
  }
  t.false(fs.existsSync('/nonexistent/never-made'));
});
