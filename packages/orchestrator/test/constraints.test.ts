import test from 'ava';
import { ShoalError } from '@shoal/api';
import { matches, parseConstraint } from '../src/index.js';
import { node } from './helpers.js';

test('parses == and != with case-insensitive keys', (t) => {
  t.like(parseConstraint('node.labels.zone==a'), { key: 'node.labels.zone', op: '==', value: 'a' });
  t.like(parseConstraint(' Node.Role != manager '), { key: 'node.role', op: '!=', value: 'manager' });
});

test('bad expressions give one-line InvalidArgument errors naming the expression and the fix', (t) => {
  const cases: [string, RegExp][] = [
    ['zone==b', /unknown constraint key 'zone' in 'zone==b'; did you mean node.labels.zone\?/],
    ['node.labels.zone', /expected key==value or key!=value/],
    ['node.role==', /missing value after ==/],
    ['==x', /missing key before ==/],
    ['node.color==red', /unknown constraint key 'node.color'/],
    ['node.ip==999.1.1.1', /not an IPv4 address or CIDR/],
    ['node.role===manager', /contains an operator character/],
  ];
  for (const [expr, re] of cases) {
    const e = t.throws(() => parseConstraint(expr), { message: re });
    t.true(e instanceof ShoalError && e.code === 'InvalidArgument');
    t.false(e!.message.includes('\n'));
  }
});

test('matches node id, hostname, role, labels (values exact), engine labels and ip', (t) => {
  const n = node('abc', { labels: { zone: 'a', Disk: 'ssd' }, role: 'worker' });
  n.description!.engine.labels = { gpu: 'yes' };
  n.status.addr = '10.1.2.3';
  t.true(matches(n, []));
  t.true(matches(n, ['node.id==abc', 'node.hostname==ABC', 'node.role==worker', 'node.labels.zone==a']));
  t.false(matches(n, ['node.labels.zone==A']), 'label values are case-sensitive');
  t.true(matches(n, ['node.labels.disk==ssd']), 'label names are not');
  t.true(matches(n, ['node.labels.missing!=x']), 'a missing label is never equal');
  t.false(matches(n, ['node.labels.missing==x']));
  t.true(matches(n, ['engine.labels.gpu==yes', 'node.platform.os==linux']));
  t.true(matches(n, ['node.ip==10.1.0.0/16']));
  t.false(matches(n, ['node.ip==10.2.0.0/16']));
  t.false(matches(n, ['zone==a']), 'an unparsable raw expression matches nothing');
  t.true(matches(n, [parseConstraint('node.role!=manager')]));
});
