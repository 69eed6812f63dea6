/**
 * The join flow against a real Cluster server on 127.0.0.1: token → root CA (digest checked before
 * trust) → CSR → certificate with the token's role; and each way it must fail, with one line.
 */
import test from 'ava';
import { ShoalError } from '@shoal/api';
import type { NodeRole } from '@shoal/api';
import { generateJoinToken, parseCertificate, RootCA, rotateJoinToken, verifyNodeCertificate } from '@shoal/ca';
import type { JoinTokens } from '@shoal/ca';
import { ClusterClient, INVALID_TOKEN_MESSAGE, joinCluster, joinMethods, normalizeManagerAddr, renewNodeCertificate, RpcError, tableHandler } from '../src/index.js';
import type { ClusterHandler, IssueRequest } from '../src/index.js';
import { CLUSTER_ID, deadAddr, silentServer, startManager, testCluster } from './fixtures.js';
import type { Running, TestCluster } from './fixtures.js';

interface Ctx {
  c: TestCluster;
  mgr: Running;
  tokens: { current: JoinTokens };
  /** Methods the server was asked for, in order. */
  seen: string[];
  admitted: { role: NodeRole; request: IssueRequest }[];
  /** Desired role per admitted node (for renewal). */
  roles: Map<string, NodeRole>;
}

test.before(async (t) => {
  const c = await testCluster();
  const tokens = { current: c.tokens };
  const seen: string[] = [];
  const admitted: Ctx['admitted'] = [];
  const roles = new Map<string, NodeRole>();
  let addr = '';
  let n = 0;
  const table = tableHandler(
    joinMethods({
      root: c.root,
      tokens: () => tokens.current,
      clusterId: CLUSTER_ID,
      admit: async (role, _csr, request) => {
        admitted.push({ role, request });
        const nodeId = `joined${++n}`;
        roles.set(nodeId, role);
        return { nodeId, managers: [addr] };
      },
      roleOf: (id) => roles.get(id) ?? null,
    }),
    { calls: { whoami: async (_p, peer) => peer } },
  );
  const handler: ClusterHandler = {
    call: (method, params, peer) => {
      seen.push(method);
      return table.call(method, params, peer);
    },
    watch: table.watch,
  };
  const mgr = await startManager(c, handler);
  addr = mgr.addr;
  t.context = { c, mgr, tokens, seen, admitted, roles } satisfies Ctx;
});

test.after.always(async (t) => {
  await (t.context as Ctx).mgr.close();
});

test.serial('join with the worker token: a verified worker certificate that works for mutual TLS', async (t) => {
  const ctx = t.context as Ctx;
  const r = await joinCluster({ remoteAddr: ctx.mgr.addr, token: ctx.tokens.current.worker, request: { advertiseAddr: '10.0.0.7' } });
  t.is(r.role, 'worker');
  t.is(r.clusterId, CLUSTER_ID);
  t.deepEqual(r.managers, [ctx.mgr.addr]);
  t.is(r.rootPem, ctx.c.root.certPem);
  const info = verifyNodeCertificate(ctx.c.root.certPem, r.certPem, { keyPem: r.keyPem });
  t.is(info.nodeId, r.nodeId);
  t.is(info.role, 'worker');
  t.is(ctx.admitted.at(-1)?.role, 'worker');
  t.is(ctx.admitted.at(-1)?.request.advertiseAddr, '10.0.0.7', 'extra request fields reach admit');

  const cl = new ClusterClient({ managers: r.managers, rootPem: r.rootPem, certPem: r.certPem, keyPem: r.keyPem });
  try {
    t.deepEqual(await cl.call('whoami'), { nodeId: r.nodeId, role: 'worker' });
  } finally {
    cl.close();
  }
});

test.serial('join with the manager token: a manager certificate; a bare host gets port 2377', async (t) => {
  const ctx = t.context as Ctx;
  const r = await joinCluster({ remoteAddr: ` ${ctx.mgr.addr} `.trim(), token: ` ${ctx.tokens.current.manager}\n` });
  t.is(r.role, 'manager');
  t.is(verifyNodeCertificate(ctx.c.root.certPem, r.certPem, { keyPem: r.keyPem }).role, 'manager');
  t.is(normalizeManagerAddr('10.1.2.3'), '10.1.2.3:2377');
  t.is(normalizeManagerAddr('node1:4000'), 'node1:4000');
  t.is(normalizeManagerAddr('[::1]:2377'), '[::1]:2377');
  t.is(normalizeManagerAddr('[fd00::1]'), '[fd00::1]:2377');
  for (const bad of ['', 'a b:1', 'host:99999', 'http://x:1', 'host:']) {
    const e = t.throws(() => normalizeManagerAddr(bad));
    t.is((e as ShoalError).code, 'InvalidArgument', bad);
  }
});

test.serial('a token for another CA is refused on the digest check, before any CSR is sent', async (t) => {
  const ctx = t.context as Ctx;
  const other = await RootCA.create({ clusterId: CLUSTER_ID });
  const before = ctx.seen.length;
  const admittedBefore = ctx.admitted.length;
  const err = await t.throwsAsync(joinCluster({ remoteAddr: ctx.mgr.addr, token: generateJoinToken(other.certPem) }));
  t.true(err instanceof ShoalError);
  t.is((err as ShoalError).code, 'InvalidArgument');
  t.regex(err!.message, /^remote CA does not match fingerprint\. Expected: sha256:[0-9a-f]{64}/);
  t.false(err!.message.includes('\n'));
  t.deepEqual(ctx.seen.slice(before), ['ca.getRootCACertificate'], 'only the root was fetched');
  t.is(ctx.admitted.length, admittedBefore);
});

test.serial('rotated and unknown secrets are refused at once with SwarmKit wording; nothing is admitted', async (t) => {
  const ctx = t.context as Ctx;
  const old = ctx.tokens.current.worker;
  ctx.tokens.current = rotateJoinToken(ctx.tokens.current, 'worker', ctx.c.root.certPem);
  const admittedBefore = ctx.admitted.length;
  for (const token of [old, generateJoinToken(ctx.c.root.certPem)]) {
    const err = await t.throwsAsync(joinCluster({ remoteAddr: ctx.mgr.addr, token }));
    t.true(err instanceof ShoalError);
    t.false(err instanceof RpcError, 'the CA answered; not a transport failure');
    t.is((err as ShoalError).code, 'InvalidArgument');
    t.is(err!.message, INVALID_TOKEN_MESSAGE);
  }
  t.is(ctx.admitted.length, admittedBefore);
  const r = await joinCluster({ remoteAddr: ctx.mgr.addr, token: ctx.tokens.current.worker });
  t.is(r.role, 'worker', 'the new token works');
});

test.serial('malformed tokens fail with one line before any network traffic', async (t) => {
  const ctx = t.context as Ctx;
  const before = ctx.seen.length;
  const good = ctx.tokens.current.worker;
  for (const token of ['', 'hello', good.slice(0, -1), good.replace('SWMTKN-1', 'SWMTKN-3'), `${good}-x`, good.toUpperCase()]) {
    const err = await t.throwsAsync(joinCluster({ remoteAddr: ctx.mgr.addr, token }));
    t.is((err as ShoalError).code, 'InvalidArgument', token);
    t.regex(err!.message, /^invalid join token: expected SWMTKN-1-/);
    t.false(err!.message.includes('\n'));
  }
  const addrErr = await t.throwsAsync(joinCluster({ remoteAddr: 'no such host:1', token: good }));
  t.regex(addrErr!.message, /^invalid manager address "no such host:1"/);
  t.is(ctx.seen.length, before);
});

test('an unreachable manager fails with Unavailable "could not reach manager at …" within the step deadline', async (t) => {
  const ctx = t.context as Ctx;
  const dead = await deadAddr();
  const err = await t.throwsAsync(joinCluster({ remoteAddr: dead, token: ctx.c.tokens.worker, timeoutMs: 2000 }));
  t.true(err instanceof RpcError);
  t.is((err as RpcError).code, 'Unavailable');
  t.true(err!.message.startsWith(`could not reach manager at ${dead}: `), err!.message);
  t.false(err!.message.includes('\n'));

  const silent = await silentServer();
  try {
    const hung = await t.throwsAsync(joinCluster({ remoteAddr: silent.addr, token: ctx.c.tokens.worker, timeoutMs: 300 }));
    t.is((hung as ShoalError).code, 'Unavailable');
    t.true(hung!.message.startsWith(`could not reach manager at ${silent.addr}: no answer within 300 ms`), hung!.message);
  } finally {
    await silent.close();
  }
});

test('issueNodeCertificate checks token and CSR before admitting', async (t) => {
  const ctx = t.context as Ctx;
  let admits = 0;
  const table = joinMethods({
    root: () => ctx.c.root,
    tokens: () => ctx.c.tokens,
    clusterId: CLUSTER_ID,
    admit: async () => {
      admits++;
      return { nodeId: 'x', managers: [] };
    },
  });
  const issue = table.calls!['ca.issueNodeCertificate']!;
  const bad = await t.throwsAsync(issue({ csrPem: 'not a csr', token: ctx.c.tokens.worker }, null));
  t.is((bad as ShoalError).code, 'InvalidArgument');
  t.regex(bad!.message, /CSR is not a PEM PKCS#10 request/);
  for (const params of [null, {}, { csrPem: 'x' }, { token: 42 }]) {
    const e = await t.throwsAsync(issue(params, null));
    t.is(e!.message, INVALID_TOKEN_MESSAGE);
  }
  t.is(admits, 0);
  t.deepEqual(await table.calls!['ca.getRootCACertificate']!({}, null), { rootPem: ctx.c.root.certPem });
});

test.serial('renewal over mutual TLS keeps the node ID, takes the desired role, and refuses unknown nodes', async (t) => {
  const ctx = t.context as Ctx;
  const joined = await joinCluster({ remoteAddr: ctx.mgr.addr, token: ctx.tokens.current.worker });
  const cl = new ClusterClient({ managers: [ctx.mgr.addr], rootPem: joined.rootPem, certPem: joined.certPem, keyPem: joined.keyPem });
  try {
    const same = await renewNodeCertificate(cl, joined);
    t.is(same.role, 'worker');
    t.not(same.keyPem, joined.keyPem, 'a fresh key');
    t.is(parseCertificate(same.certPem).nodeId, joined.nodeId);
    ctx.roles.set(joined.nodeId, 'manager'); // promoted
    const promoted = await renewNodeCertificate(cl, joined);
    t.is(promoted.role, 'manager');
    t.is(verifyNodeCertificate(ctx.c.root.certPem, promoted.certPem, { keyPem: promoted.keyPem }).role, 'manager');
    ctx.roles.delete(joined.nodeId);
    const gone = await t.throwsAsync(renewNodeCertificate(cl, joined));
    t.is((gone as ShoalError).code, 'FailedPrecondition');
    t.is(gone!.message, `node ${joined.nodeId} is not a member of this cluster; it must join again`);
  } finally {
    cl.close();
  }
});
