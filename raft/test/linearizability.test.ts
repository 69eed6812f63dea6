/** Unit tests of the WGL linearizability checker on known histories. */
import test from 'ava';
import { checkOperations, kvModel, type KvInput, type Model, type Operation } from './linearizability.js';

type Op = Operation<KvInput, string>;
const put = (clientId: number, key: string, value: string, call: number, ret: number): Op => ({
  clientId,
  input: { op: 'put', key, value },
  output: '',
  call,
  ret,
});
const get = (clientId: number, key: string, output: string, call: number, ret: number): Op => ({
  clientId,
  input: { op: 'get', key },
  output,
  call,
  ret,
});
const append = (clientId: number, key: string, value: string, call: number, ret: number): Op => ({
  clientId,
  input: { op: 'append', key, value },
  output: '',
  call,
  ret,
});
const unknownPut = (clientId: number, key: string, value: string, call: number): Op => ({
  clientId,
  input: { op: 'put', key, value },
  output: undefined,
  call,
  ret: Infinity,
});

test('empty and sequential histories are linearizable', (t) => {
  t.is(checkOperations(kvModel, []).result, 'ok');
  const h = [put(0, 'x', '1', 0, 1), get(0, 'x', '1', 2, 3), put(1, 'x', '2', 4, 5), get(1, 'x', '2', 6, 7)];
  t.is(checkOperations(kvModel, h).result, 'ok');
});

test('a read concurrent with a write may see either value', (t) => {
  t.is(checkOperations(kvModel, [put(0, 'x', '1', 0, 10), get(1, 'x', '', 1, 2)]).result, 'ok');
  t.is(checkOperations(kvModel, [put(0, 'x', '1', 0, 10), get(1, 'x', '1', 1, 2)]).result, 'ok');
});

test('a stale read after a completed write is illegal', (t) => {
  const h = [put(0, 'x', '1', 0, 1), put(0, 'x', '2', 2, 3), get(1, 'x', '1', 4, 5)];
  const r = checkOperations(kvModel, h);
  t.is(r.result, 'illegal');
  t.regex(r.explanation ?? '', /get\(x\) -> "1"/);
});

test('reads must agree on the order of concurrent writes', (t) => {
  const ok = [put(0, 'x', '1', 0, 10), put(1, 'x', '2', 0, 10), get(2, 'x', '1', 11, 12), get(2, 'x', '1', 13, 14)];
  t.is(checkOperations(kvModel, ok).result, 'ok');
  const bad = [
    put(0, 'x', '1', 0, 10),
    put(1, 'x', '2', 0, 10),
    get(2, 'x', '1', 11, 12),
    get(2, 'x', '2', 13, 14),
    get(2, 'x', '1', 15, 16),
  ];
  t.is(checkOperations(kvModel, bad).result, 'illegal');
});

test('a read may not see a value before its write was invoked', (t) => {
  t.is(checkOperations(kvModel, [get(1, 'x', '1', 0, 1), put(0, 'x', '1', 2, 3)]).result, 'illegal');
});

test('an operation with unknown outcome may take effect late, or never', (t) => {
  const late = [unknownPut(0, 'x', '1', 0), get(1, 'x', '', 5, 6), get(1, 'x', '1', 7, 8)];
  t.is(checkOperations(kvModel, late).result, 'ok');
  const never = [unknownPut(0, 'x', '1', 0), get(1, 'x', '', 5, 6), put(1, 'x', '2', 7, 8), get(1, 'x', '2', 9, 10)];
  t.is(checkOperations(kvModel, never).result, 'ok');
  // But it cannot take effect before its call.
  const early = [get(1, 'x', '1', 0, 1), unknownPut(0, 'x', '1', 2)];
  t.is(checkOperations(kvModel, early).result, 'illegal');
  // And once it is observed, it cannot be "un-observed".
  const flip = [unknownPut(0, 'x', '1', 0), get(1, 'x', '1', 5, 6), get(1, 'x', '', 7, 8)];
  t.is(checkOperations(kvModel, flip).result, 'illegal');
});

test('appends: the observed string fixes the order', (t) => {
  const ok = [append(0, 'x', 'a', 0, 10), append(1, 'x', 'b', 0, 10), get(2, 'x', 'ba', 11, 12)];
  t.is(checkOperations(kvModel, ok).result, 'ok');
  const bad = [append(0, 'x', 'a', 0, 1), append(1, 'x', 'b', 2, 3), get(2, 'x', 'ba', 4, 5)];
  t.is(checkOperations(kvModel, bad).result, 'illegal');
});

test('P-compositionality: one bad key makes the whole history illegal', (t) => {
  const h = [
    put(0, 'x', '1', 0, 1),
    get(1, 'x', '1', 2, 3),
    put(0, 'y', '1', 0, 1),
    get(1, 'y', '', 2, 3), // stale
  ];
  const r = checkOperations(kvModel, h);
  t.is(r.result, 'illegal');
  t.is(r.partitions.length, 2);
  t.deepEqual(
    r.partitions.map((p) => p.result),
    ['ok', 'illegal'],
  );
});

test('many concurrent operations: a large linearizable history checks quickly', (t) => {
  // 8 clients, 400 ops on one key, each write unique; reads return the latest write in a
  // sequential "server" order, with windows overlapping randomly.
  let seed = 42;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const h: Op[] = [];
  let value = '';
  let time = 0;
  for (let i = 0; i < 400; i++) {
    const call = time;
    time += 1 + Math.floor(rnd() * 3);
    const at = time; // takes effect here
    time += 1;
    const ret = time + Math.floor(rnd() * 5);
    if (rnd() < 0.5) {
      value = `v${i}`;
      h.push(put(i % 8, 'x', value, call, ret));
    } else {
      h.push(get(i % 8, 'x', value, call, ret));
    }
    void at;
  }
  t.is(checkOperations(kvModel, h).result, 'ok');
});

test('a search budget yields unknown instead of a wrong answer', (t) => {
  const h: Op[] = [];
  for (let i = 0; i < 30; i++) h.push(put(i, 'x', `${i}`, 0, 100));
  h.push(get(99, 'x', 'nope', 101, 102));
  t.is(checkOperations(kvModel, h, { maxSteps: 1000 }).result, 'unknown');
});

test('a custom model: a counter with increments and reads', (t) => {
  type In = { op: 'inc' } | { op: 'read' };
  const counter: Model<number, In, number> = {
    init: () => 0,
    step: (s, i, o) => (i.op === 'inc' ? [true, s + 1] : [o === undefined || o === s, s]),
    key: (s) => String(s),
  };
  const ok: Operation<In, number>[] = [
    { clientId: 0, input: { op: 'inc' }, output: 0, call: 0, ret: 5 },
    { clientId: 1, input: { op: 'inc' }, output: 0, call: 0, ret: 5 },
    { clientId: 2, input: { op: 'read' }, output: 1, call: 1, ret: 2 },
    { clientId: 2, input: { op: 'read' }, output: 2, call: 6, ret: 7 },
  ];
  t.is(checkOperations(counter, ok).result, 'ok');
  ok[3]!.output = 1;
  t.is(checkOperations(counter, ok).result, 'illegal');
});
