/**
 * A linearizability checker for operation histories: the Wing & Gong / Lowe search ("WGL") with
 * P-compositionality (Horn & Kroening, "Faster linearizability checking via
 * P-compositionality"), the algorithm Porcupine (anishathalye/porcupine) implements. Written from
 * the papers' description; no code was copied.
 *
 * A history is a set of operations, each with a call time and a return time. It is
 * linearizable if some total order of the operations (a) respects real time — an operation that
 * returned before another was called comes first — and (b) is a legal sequential execution of
 * the model. P-compositionality: for a key-value store, the history is linearizable iff each
 * per-key sub-history is, so each key is searched separately.
 *
 * Operations whose outcome is unknown (the client timed out; the server crashed) get
 * `ret = Infinity` and `output = undefined`: they may take effect at any point after their call,
 * or never, and their output is not checked.
 */

export interface Operation<I, O> {
  clientId: number;
  input: I;
  /** `undefined` when the outcome is unknown (then `ret` must be Infinity). */
  output: O | undefined;
  /** Invocation time (any monotonic clock). */
  call: number;
  /** Response time; `Infinity` for an operation with unknown outcome. */
  ret: number;
}

export interface Model<S, I, O> {
  /** Splits a history into independent sub-histories (e.g. per key). Default: one partition. */
  partition?(history: Operation<I, O>[]): Operation<I, O>[][];
  init(): S;
  /**
   * Applies `input` to `state`. Returns whether `output` is a legal result (always legal when
   * `output` is undefined, i.e. unknown) and the next state.
   */
  step(state: S, input: I, output: O | undefined): [boolean, S];
  /** A string identifying the state exactly (used to memoize visited configurations). */
  key(state: S): string;
  describe?(input: I, output: O | undefined): string;
}

export type CheckResult = 'ok' | 'illegal' | 'unknown';

export interface PartitionResult {
  result: CheckResult;
  /** Number of operations in the partition. */
  size: number;
  /** Indexes (into the partition) of the longest linearizable prefix found. */
  longestPrefix: number[];
  /** Search steps used. */
  steps: number;
}

export interface CheckOutcome {
  result: CheckResult;
  partitions: PartitionResult[];
  /** For an illegal history: a human-readable account of the failing partition. */
  explanation?: string;
}

interface Node {
  /** Operation index within the partition; -1 for the list head. */
  id: number;
  isCall: boolean;
  time: number;
  /** For a call entry: its return entry. */
  match: Node | undefined;
  prev: Node | undefined;
  next: Node | undefined;
}

class Bitset {
  readonly words: Uint32Array;
  constructor(n: number, words?: Uint32Array) {
    this.words = words ?? new Uint32Array(Math.ceil(n / 32) || 1);
  }
  set(i: number): void {
    this.words[i >>> 5]! |= 1 << (i & 31);
  }
  clear(i: number): void {
    this.words[i >>> 5]! &= ~(1 << (i & 31));
  }
  key(): string {
    return Array.prototype.join.call(this.words, ',');
  }
  with(i: number): Bitset {
    const b = new Bitset(0, this.words.slice());
    b.set(i);
    return b;
  }
}

/**
 * Builds the time-ordered doubly linked list of call and return entries, behind a head
 * sentinel. On equal times calls sort before returns (treating the operations as concurrent,
 * the permissive choice).
 */
function buildList<I, O>(ops: Operation<I, O>[]): Node {
  const events: Node[] = [];
  ops.forEach((op, id) => {
    const ret: Node = { id, isCall: false, time: op.ret, match: undefined, prev: undefined, next: undefined };
    const call: Node = { id, isCall: true, time: op.call, match: ret, prev: undefined, next: undefined };
    events.push(call, ret);
  });
  events.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? a.id - b.id : a.isCall ? -1 : 1));
  const head: Node = { id: -1, isCall: false, time: -Infinity, match: undefined, prev: undefined, next: undefined };
  let prev = head;
  for (const e of events) {
    prev.next = e;
    e.prev = prev;
    prev = e;
  }
  return head;
}

/** Removes a call entry and its return entry from the list. */
function lift(call: Node): void {
  call.prev!.next = call.next;
  if (call.next) call.next.prev = call.prev;
  const ret = call.match!;
  ret.prev!.next = ret.next;
  if (ret.next) ret.next.prev = ret.prev;
}

/** Reinserts what {@link lift} removed (in reverse order, so the neighbours are intact). */
function unlift(call: Node): void {
  const ret = call.match!;
  ret.prev!.next = ret;
  if (ret.next) ret.next.prev = ret;
  call.prev!.next = call;
  if (call.next) call.next.prev = call;
}

/**
 * Searches one partition. Depth-first over "which pending operation takes effect next": at each
 * point the candidates are the calls that appear in the list before the first return entry
 * (every operation still in the list whose call precedes the earliest outstanding return).
 * Reaching a return entry means that operation can no longer be linearized later, so the search
 * backtracks. Visited (linearized-set, state) pairs are memoized.
 */
function checkPartition<S, I, O>(model: Model<S, I, O>, ops: Operation<I, O>[], maxSteps: number): PartitionResult {
  const n = ops.length;
  const head = buildList(ops);
  let linearized = new Bitset(n);
  const seen = new Set<string>();
  let state = model.init();
  const stack: { call: Node; state: S; linearized: Bitset }[] = [];
  let longest: number[] = [];
  let steps = 0;
  let entry = head.next;
  while (head.next !== undefined) {
    if (++steps > maxSteps) return { result: 'unknown', size: n, longestPrefix: longest, steps };
    if (entry === undefined) throw new Error('linearizability: ran off the end of the list (bug)');
    if (entry.isCall) {
      const op = ops[entry.id]!;
      const [ok, next] = model.step(state, op.input, op.output);
      if (ok) {
        const nextLin = linearized.with(entry.id);
        const k = `${nextLin.key()}|${model.key(next)}`;
        if (!seen.has(k)) {
          seen.add(k);
          stack.push({ call: entry, state, linearized });
          if (stack.length > longest.length) longest = stack.map((s) => s.call.id);
          state = next;
          linearized = nextLin;
          lift(entry);
          entry = head.next;
          continue;
        }
      }
      entry = entry.next;
    } else {
      // A return entry: every candidate before it failed. Backtrack.
      const top = stack.pop();
      if (top === undefined) return { result: 'illegal', size: n, longestPrefix: longest, steps };
      state = top.state;
      linearized = top.linearized;
      unlift(top.call);
      entry = top.call.next;
    }
  }
  return { result: 'ok', size: n, longestPrefix: longest, steps };
}

/**
 * Checks `history` against `model`. `maxSteps` bounds the search per partition (the problem is
 * NP-complete in general); exceeding it yields 'unknown' rather than a wrong answer.
 */
export function checkOperations<S, I, O>(
  model: Model<S, I, O>,
  history: Operation<I, O>[],
  opts: { maxSteps?: number } = {},
): CheckOutcome {
  for (const op of history) {
    if (!(op.ret >= op.call)) throw new RangeError(`linearizability: operation returns (${op.ret}) before its call (${op.call})`);
    if (op.ret === Infinity && op.output !== undefined) {
      throw new RangeError('linearizability: an operation with unknown outcome (ret = Infinity) must have output undefined');
    }
  }
  const parts = model.partition ? model.partition(history) : [history];
  const maxSteps = opts.maxSteps ?? 5_000_000;
  const results: PartitionResult[] = [];
  let result: CheckResult = 'ok';
  let explanation: string | undefined;
  for (const p of parts) {
    const r = checkPartition(model, p, maxSteps);
    results.push(r);
    if (r.result === 'illegal') {
      result = 'illegal';
      explanation ??= explain(model, p, r);
    } else if (r.result === 'unknown' && result === 'ok') {
      result = 'unknown';
    }
  }
  return explanation === undefined ? { result, partitions: results } : { result, partitions: results, explanation };
}

function explain<S, I, O>(model: Model<S, I, O>, ops: Operation<I, O>[], r: PartitionResult): string {
  const d = (op: Operation<I, O>) =>
    `${model.describe ? model.describe(op.input, op.output) : JSON.stringify(op.input) + ' -> ' + JSON.stringify(op.output)} [${op.call}, ${op.ret}] (client ${op.clientId})`;
  const lines = ['longest linearizable prefix:', ...r.longestPrefix.map((i) => '  ' + d(ops[i]!))];
  const rest = ops.map((_, i) => i).filter((i) => !r.longestPrefix.includes(i));
  rest.sort((a, b) => ops[a]!.call - ops[b]!.call);
  lines.push('could not linearize next, among:', ...rest.slice(0, 10).map((i) => '  ' + d(ops[i]!)));
  return lines.join('\n');
}

// ---------------------------------------------------------------------------- key-value model

export interface KvInput {
  op: 'get' | 'put' | 'append';
  key: string;
  value?: string;
}

/**
 * A key-value register per key: `put` sets, `append` concatenates, `get` returns the value
 * (`''` when absent). Partitioned by key.
 */
export const kvModel: Model<string, KvInput, string> = {
  partition(history) {
    const byKey = new Map<string, Operation<KvInput, string>[]>();
    for (const op of history) {
      const list = byKey.get(op.input.key);
      if (list) list.push(op);
      else byKey.set(op.input.key, [op]);
    }
    return [...byKey.values()];
  },
  init: () => '',
  step(state, input, output) {
    switch (input.op) {
      case 'get':
        return [output === undefined || output === state, state];
      case 'put':
        return [true, input.value ?? ''];
      case 'append':
        return [true, state + (input.value ?? '')];
    }
  },
  key: (s) => s,
  describe(input, output) {
    switch (input.op) {
      case 'get':
        return `get(${input.key}) -> ${output === undefined ? '?' : JSON.stringify(output)}`;
      default:
        return `${input.op}(${input.key}, ${JSON.stringify(input.value)})${output === undefined ? ' ?' : ''}`;
    }
  },
};
