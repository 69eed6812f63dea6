import test from 'ava';
import { createHash } from 'node:crypto';
import {
  assertCaDigest,
  caDigest,
  DIGEST_CHARS,
  generateJoinToken,
  generateJoinTokens,
  JOIN_TOKEN_LENGTH,
  parseJoinToken,
  roleForToken,
  rotateJoinToken,
  RootCA,
  SECRET_CHARS,
  verifyCaDigest,
} from '../src/index.js';

const MALFORMED = 'invalid join token: expected SWMTKN-1-<50 chars>-<25 chars>';

test('token has the exact SwarmKit v1 shape and round-trips', async (t) => {
  const root = await RootCA.create({ clusterId: 'c1' });
  const secret = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
  const token = generateJoinToken(root.certPem, secret);
  t.is(token.length, 85);
  t.is(JOIN_TOKEN_LENGTH, 85);
  const [prefix, version, d, s] = token.split('-');
  t.is(prefix, 'SWMTKN');
  t.is(version, '1');
  t.is(d?.length, DIGEST_CHARS);
  t.is(s?.length, SECRET_CHARS);
  // D is base36 of the SHA-256 of the whole PEM bundle; S is base36 of the 16 secret bytes.
  const hex = createHash('sha256').update(root.certPem).digest('hex');
  t.is(d, BigInt('0x' + hex).toString(36).padStart(50, '0'));
  t.is(s, BigInt('0x00112233445566778899aabbccddeeff').toString(36).padStart(25, '0'));
  const parsed = parseJoinToken(token);
  t.deepEqual(parsed, { version: 1, caDigest: hex, secret: s! });
  t.is(caDigest(root.certPem), root.digest);
  // Random secrets: always 85 chars, distinct, same digest part.
  const tokens = generateJoinTokens(root.certPem);
  t.is(tokens.worker.length, 85);
  t.is(tokens.manager.length, 85);
  t.not(tokens.worker, tokens.manager);
  t.is(tokens.worker.slice(0, 60), tokens.manager.slice(0, 60));
});

test('leading zeros survive: small digest and secret values are padded', (t) => {
  // A secret of all zero bytes is "0"×25; parse keeps the 64-hex-char digest.
  const token = generateJoinToken('x', Buffer.alloc(16));
  t.true(token.endsWith('-' + '0'.repeat(25)));
  t.is(parseJoinToken(token).caDigest.length, 64);
  t.is(parseJoinToken(`SWMTKN-1-${'0'.repeat(50)}-${'0'.repeat(25)}`).caDigest, '0'.repeat(64));
});

test('CA digest mismatch is detected before trusting a fetched CA', async (t) => {
  const [a, b] = await Promise.all([RootCA.create(), RootCA.create()]);
  const token = generateJoinToken(a.certPem);
  t.true(verifyCaDigest(a.certPem, token));
  t.true(verifyCaDigest(Buffer.from(a.certPem), token));
  t.false(verifyCaDigest(b.certPem, token));
  // Whole bundle bytes count: one extra byte changes the digest.
  t.false(verifyCaDigest(a.certPem + '\n', token));
  t.notThrows(() => assertCaDigest(a.certPem, token));
  const err = t.throws(() => assertCaDigest(b.certPem, token));
  t.true(err!.message.startsWith(`remote CA does not match fingerprint. Expected: sha256:${a.digest}`));
});

test('malformed tokens are rejected with a one-line message', (t) => {
  const good = generateJoinToken('root');
  const [, , d, s] = good.split('-');
  const bad = [
    '',
    'garbage',
    good.slice(0, -1),
    good + 'x',
    good.replace('SWMTKN', 'SWMTKX'),
    good.replace('SWMTKN-1', 'SWMTKN-3'),
    `SWMTKN-2-1-${d}-${s}`,
    `SWMTKN-1-${d}`,
    `SWMTKN-1-${d}-${s}-extra`,
    `SWMTKN-1-${d!.toUpperCase()}-${s}`,
    `SWMTKN-1-${d}-${s!.slice(0, 24)}!`,
    `SWMTKN-1-${'z'.repeat(50)}-${s}`, // larger than 2^256
  ];
  for (const token of bad) {
    const err = t.throws(() => parseJoinToken(token), undefined, token);
    t.true(err!.message.startsWith(MALFORMED), err!.message);
    t.false(err!.message.includes('\n'));
    t.false(err!.message.includes(s!), 'the secret is not echoed');
    t.throws(() => verifyCaDigest('root', token));
  }
  // Surrounding whitespace (a pasted token) is tolerated.
  t.is(parseJoinToken(` ${good}\n`).secret, s!);
});

test('role comes from comparing against the cluster tokens; rotation invalidates the old token', async (t) => {
  const root = await RootCA.create();
  const tokens = generateJoinTokens(root.certPem);
  t.is(roleForToken(tokens.worker, tokens), 'worker');
  t.is(roleForToken(tokens.manager, tokens), 'manager');
  t.is(roleForToken(tokens.worker + ' ', tokens), 'worker');
  t.is(roleForToken('SWMTKN-1-short', tokens), null);
  t.is(roleForToken('', tokens), null);
  t.is(roleForToken(generateJoinToken(root.certPem), tokens), null);

  const rotated = rotateJoinToken(tokens, 'worker', root.certPem);
  t.is(rotated.manager, tokens.manager);
  t.not(rotated.worker, tokens.worker);
  t.is(roleForToken(tokens.worker, rotated), null);
  t.is(roleForToken(rotated.worker, rotated), 'worker');
  t.is(roleForToken(tokens.manager, rotated), 'manager');
  // Same CA digest after rotation.
  t.is(parseJoinToken(rotated.worker).caDigest, root.digest);
});
