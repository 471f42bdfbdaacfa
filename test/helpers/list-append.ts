/**
 * A list-append workload and its history checker (SPEC §11: histories checked for lost writes and
 * serializability anomalies), after the list-append model of Kingsbury and Alvaro's Elle: every key
 * is a list, a transaction appends unique values to some keys and reads others whole, and because
 * every value is unique and lists only grow, the reads reveal each key's order of appends. From that
 * order and what each transaction read, the checker rebuilds the dependencies between committed
 * transactions — write-write (ww: appended the next element), write-read (wr: read a list ending in
 * its element) and read-write (rw: read a list its element later extended) — and a cycle among them
 * is a serializability violation (Adya's G0 with ww edges only, G1c with ww and wr, G2 with an rw).
 * It also finds reads of values no committed transaction appended (G1a, garbage), lists whose
 * orders disagree, duplicated elements, transactions that do not see their own appends, and
 * acknowledged appends missing from the final reads (lost writes).
 *
 * In Optimystic a key is a diary collection: `append` appends to it and `read` returns it whole, and
 * a transaction over several keys is a multi-collection transaction.
 */
import { SeededRng } from '../../src/engine/base/rng.js';
import type { TxOutcome, TxRequest } from '../../src/engine/transactions/tx-types.js';

export type MicroOp =
  | { readonly f: 'append'; readonly key: string; readonly value: number }
  | { readonly f: 'read'; readonly key: string; readonly value?: readonly number[] };

/** ok: committed (reads known); fail: certainly not committed; info: outcome unknown (reads unknown). */
export type TxnStatus = 'ok' | 'fail' | 'info';

export interface Txn {
  readonly id: number;
  readonly ops: readonly MicroOp[];
  readonly status: TxnStatus;
}

export interface Anomaly {
  readonly kind:
    | 'internal'
    | 'duplicate-element'
    | 'garbage-read'
    | 'aborted-read'
    | 'incompatible-order'
    | 'lost-append'
    | 'G0'
    | 'G1c'
    | 'G2';
  readonly detail: string;
  /** The transactions it is about (ids). */
  readonly txns?: readonly number[];
}

export interface CheckResult {
  readonly anomalies: readonly Anomaly[];
  /** Transactions in the dependency graph, and its edges. */
  readonly committed: number;
  readonly edges: number;
}

/** The collection that holds a key's list. */
export const listCollection = (key: string): string => `la-${key}`;

/** The transaction that runs a list-append transaction's micro-ops (reads have no value yet). */
export function listAppendRequest(ops: readonly MicroOp[]): TxRequest {
  return {
    actions: ops.map((op) =>
      op.f === 'append'
        ? { collection: listCollection(op.key), op: 'append' as const, value: op.value }
        : { collection: listCollection(op.key), op: 'read' as const },
    ),
  };
}

/** The micro-ops with what the committed transaction read filled in. */
export function completed(ops: readonly MicroOp[], outcome: TxOutcome): readonly MicroOp[] {
  if (!outcome.ok) return ops;
  return ops.map((op, i) => {
    if (op.f === 'append') return op;
    const result = outcome.results[i];
    if (result?.op !== 'read') throw new Error(`result ${i} of a list-append transaction is not a read`);
    return { ...op, value: result.entries.map((entry) => entry.value as number) };
  });
}

/**
 * Random transactions of 1–`opsMax` micro-ops over `keys` keys; appends carry values unique across
 * every generator with a different `stream` (a client), and a transaction appends to a key at most
 * once (so no read can see half of a transaction's appends to a key).
 */
export class ListAppendGenerator {
  private readonly rng: SeededRng;
  private next = 1;

  constructor(
    seed: number,
    private readonly stream: number,
    private readonly keys: number,
    private readonly opsMax = 4,
  ) {
    this.rng = new SeededRng(seed * 7919 + stream);
  }

  ops(): MicroOp[] {
    const count = 1 + this.rng.int(this.opsMax);
    const ops: MicroOp[] = [];
    const appended = new Set<string>();
    for (let i = 0; i < count; i++) {
      const key = `k${this.rng.int(this.keys)}`;
      if (this.rng.int(2) === 0 || appended.has(key)) ops.push({ f: 'read', key });
      else {
        appended.add(key);
        ops.push({ f: 'append', key, value: this.stream * 1_000_000 + this.next++ });
      }
    }
    return ops;
  }
}

/**
 * Checks a history. `finalReads` are each key's list read after the run, once every transaction
 * has finished: every acknowledged append must be in it.
 */
export function checkListAppend(
  history: readonly Txn[],
  finalReads: ReadonlyMap<string, readonly number[]>,
): CheckResult {
  const anomalies: Anomaly[] = [];
  const report = (kind: Anomaly['kind'], detail: string, txns?: readonly number[]): void => {
    anomalies.push(txns === undefined ? { kind, detail } : { kind, detail, txns });
  };

  // Who appended each value, and with what outcome.
  const writerOf = new Map<number, Txn>();
  for (const txn of history)
    for (const op of txn.ops)
      if (op.f === 'append') {
        if (writerOf.has(op.value)) throw new Error(`value ${op.value} appended twice: not a valid history`);
        writerOf.set(op.value, txn);
      }

  // Every list a committed transaction (or the final read) saw, per key.
  const observed = new Map<string, { list: readonly number[]; by: Txn | undefined }[]>();
  const observe = (key: string, list: readonly number[], by: Txn | undefined): void => {
    let lists = observed.get(key);
    if (lists === undefined) observed.set(key, (lists = []));
    lists.push({ list, by });
  };
  for (const txn of history) {
    if (txn.status !== 'ok') continue;
    for (const op of txn.ops) if (op.f === 'read' && op.value !== undefined) observe(op.key, op.value, txn);
  }
  for (const [key, list] of finalReads) observe(key, list, undefined);

  const who = (txn: Txn | undefined): string => (txn === undefined ? 'the final read' : `T${txn.id}`);

  // Elements: unique, appended by someone, and not by a transaction that certainly failed.
  for (const [key, lists] of observed) {
    for (const { list, by } of lists) {
      const seen = new Set<number>();
      for (const value of list) {
        if (seen.has(value)) report('duplicate-element', `${who(by)} read ${key} with ${value} twice`);
        seen.add(value);
        const writer = writerOf.get(value);
        if (writer === undefined)
          report('garbage-read', `${who(by)} read ${key} with ${value}, which no one appended`);
        else if (writer.status === 'fail')
          report(
            'aborted-read',
            `${who(by)} read ${key} with ${value}, appended by T${writer.id}, which failed`,
          );
      }
    }
  }

  // Each key's order of appends: the longest list read, of which every other must be a prefix.
  const order = new Map<string, readonly number[]>();
  for (const [key, lists] of observed) {
    let longest: readonly number[] = [];
    for (const { list } of lists) if (list.length > longest.length) longest = list;
    for (const { list, by } of lists) {
      const prefix = list.every((value, i) => longest[i] === value);
      if (!prefix)
        report(
          'incompatible-order',
          `${who(by)} read ${key} as [${list.join(',')}], not a prefix of [${longest.join(',')}]`,
        );
    }
    order.set(key, longest);
  }

  // Internal consistency: a transaction sees its own appends, after what it read before them.
  for (const txn of history) {
    if (txn.status !== 'ok') continue;
    const known = new Map<string, number[]>();
    const pending = new Map<string, number[]>();
    for (const op of txn.ops) {
      if (op.f === 'append') {
        const list = known.get(op.key);
        if (list !== undefined) list.push(op.value);
        else pending.set(op.key, [...(pending.get(op.key) ?? []), op.value]);
        continue;
      }
      if (op.value === undefined) continue;
      const expected = known.get(op.key);
      const own = pending.get(op.key) ?? [];
      const consistent =
        expected !== undefined
          ? expected.length === op.value.length && expected.every((v, i) => op.value![i] === v)
          : own.every((v, i) => op.value![op.value!.length - own.length + i] === v) &&
            op.value.length >= own.length;
      if (!consistent)
        report(
          'internal',
          `T${txn.id} read ${op.key} as [${op.value.join(',')}], not what it read and appended before`,
        );
      known.set(op.key, [...op.value]);
      pending.delete(op.key);
    }
  }

  // Lost appends: every acknowledged append is in its key's final list.
  for (const txn of history) {
    if (txn.status !== 'ok') continue;
    for (const op of txn.ops) {
      if (op.f !== 'append') continue;
      const final = finalReads.get(op.key);
      if (final !== undefined && !final.includes(op.value))
        report('lost-append', `T${txn.id}'s append of ${op.value} to ${op.key} is not in its final list`);
    }
  }

  // The dependency graph over committed transactions (and unknown ones whose appends were seen).
  const edges = new Map<Txn, Map<Txn, Set<'ww' | 'wr' | 'rw'>>>();
  let edgeCount = 0;
  const edge = (from: Txn | undefined, to: Txn | undefined, type: 'ww' | 'wr' | 'rw'): void => {
    if (from === undefined || to === undefined || from === to) return;
    if (from.status === 'fail' || to.status === 'fail') return;
    let out = edges.get(from);
    if (out === undefined) edges.set(from, (out = new Map<Txn, Set<'ww' | 'wr' | 'rw'>>()));
    let types = out.get(to);
    if (types === undefined) {
      out.set(to, (types = new Set()));
      edgeCount++;
    }
    types.add(type);
  };
  const nodes = new Set<Txn>();
  for (const [, list] of order)
    for (let i = 0; i < list.length; i++) {
      const writer = writerOf.get(list[i]!);
      if (writer !== undefined && writer.status !== 'fail') nodes.add(writer);
      if (i > 0) edge(writerOf.get(list[i - 1]!), writer, 'ww');
    }
  for (const txn of history) {
    if (txn.status !== 'ok') continue;
    nodes.add(txn);
    const appendedSoFar = new Map<string, number>();
    const readKeys = new Set<string>();
    for (const op of txn.ops) {
      if (op.f === 'append') {
        appendedSoFar.set(op.key, (appendedSoFar.get(op.key) ?? 0) + 1);
        continue;
      }
      if (op.value === undefined || readKeys.has(op.key)) continue;
      readKeys.add(op.key);
      // What it read of the others' appends: the list without its own appends at the end.
      const external = op.value.slice(0, op.value.length - (appendedSoFar.get(op.key) ?? 0));
      const last = external.at(-1);
      if (last !== undefined) edge(writerOf.get(last), txn, 'wr');
      const after = order.get(op.key)?.[external.length];
      if (after !== undefined) edge(txn, writerOf.get(after), 'rw');
    }
  }

  // Cycles: strongly connected components of more than one transaction (Tarjan, iterative).
  for (const component of stronglyConnected([...nodes], (txn) => [...(edges.get(txn)?.keys() ?? [])])) {
    if (component.length < 2) continue;
    const members = new Set(component);
    const types = new Set<string>();
    for (const from of component)
      for (const [to, kinds] of edges.get(from) ?? [])
        if (members.has(to)) for (const k of kinds) types.add(k);
    const kind: Anomaly['kind'] = types.has('rw') ? 'G2' : types.has('wr') ? 'G1c' : 'G0';
    const edgesIn = component.flatMap((from) =>
      [...(edges.get(from) ?? [])]
        .filter(([to]) => members.has(to))
        .map(([to, kinds]) => `T${from.id} -${[...kinds].sort().join('/')}-> T${to.id}`),
    );
    report(
      kind,
      `a dependency cycle (${[...types].sort().join('+')}) among ${component
        .map((txn) => `T${txn.id}`)
        .sort()
        .join(', ')}: ${edgesIn.join(', ')}`,
      component.map((txn) => txn.id),
    );
  }

  return { anomalies, committed: nodes.size, edges: edgeCount };
}

function stronglyConnected<T>(nodes: readonly T[], next: (node: T) => readonly T[]): T[][] {
  const index = new Map<T, number>();
  const low = new Map<T, number>();
  const onStack = new Set<T>();
  const stack: T[] = [];
  const out: T[][] = [];
  let counter = 0;
  for (const root of nodes) {
    if (index.has(root)) continue;
    const work: { node: T; children: readonly T[]; at: number }[] = [];
    const enter = (node: T): void => {
      index.set(node, counter);
      low.set(node, counter++);
      stack.push(node);
      onStack.add(node);
      work.push({ node, children: next(node), at: 0 });
    };
    enter(root);
    while (work.length > 0) {
      const frame = work.at(-1)!;
      if (frame.at < frame.children.length) {
        const child = frame.children[frame.at++]!;
        if (!index.has(child)) enter(child);
        else if (onStack.has(child)) low.set(frame.node, Math.min(low.get(frame.node)!, index.get(child)!));
        continue;
      }
      work.pop();
      const parent = work.at(-1);
      if (parent !== undefined) low.set(parent.node, Math.min(low.get(parent.node)!, low.get(frame.node)!));
      if (low.get(frame.node) === index.get(frame.node)) {
        const component: T[] = [];
        for (;;) {
          const member = stack.pop()!;
          onStack.delete(member);
          component.push(member);
          if (member === frame.node) break;
        }
        out.push(component);
      }
    }
  }
  return out;
}

/** What a list-append run through a database saw. */
export interface ListAppendRun {
  readonly history: readonly Txn[];
  /** Each key's list, read after every transaction finished, through each database. */
  readonly finalReads: readonly ReadonlyMap<string, readonly number[]>[];
  readonly ok: number;
  readonly failed: number;
  readonly unknown: number;
}

interface TransactingDatabase {
  transact(request: TxRequest): Promise<TxOutcome>;
}

/** Errors after which a transaction certainly did not commit; any other failure leaves it unknown. */
const definitelyFailed = new Set([
  'CONFLICT',
  'EXPECT_FAILED',
  'BAD_INPUT',
  'NOT_FOUND',
  'WRONG_TYPE',
  'TOO_LARGE',
]);

/**
 * Runs `transactions` list-append transactions from `clients` concurrent clients, client i through
 * `databases[i % databases.length]`, one transaction in flight per client; then reads every key
 * through every database. The keys' diaries must exist.
 */
export async function runListAppend(
  databases: readonly TransactingDatabase[],
  options: {
    readonly clients: number;
    readonly transactions: number;
    readonly keys: number;
    readonly seed: number;
  },
): Promise<ListAppendRun> {
  const history: Txn[] = [];
  let started = 0;
  const counts = { ok: 0, failed: 0, unknown: 0 };
  await Promise.all(
    Array.from({ length: options.clients }, async (_, client) => {
      const generator = new ListAppendGenerator(options.seed, client + 1, options.keys);
      const database = databases[client % databases.length]!;
      while (started < options.transactions) {
        const id = ++started;
        const ops = generator.ops();
        const outcome = await database.transact(listAppendRequest(ops));
        const status: TxnStatus = outcome.ok
          ? 'ok'
          : definitelyFailed.has(outcome.error.code)
            ? 'fail'
            : 'info';
        counts[status === 'ok' ? 'ok' : status === 'fail' ? 'failed' : 'unknown']++;
        history.push({ id, status, ops: completed(ops, outcome) });
      }
    }),
  );
  const finalReads: Map<string, readonly number[]>[] = [];
  for (const database of databases) {
    const reads = new Map<string, readonly number[]>();
    const keys = Array.from({ length: options.keys }, (_, i) => `k${i}`);
    const outcome = await database.transact(listAppendRequest(keys.map((key) => ({ f: 'read', key }))));
    if (!outcome.ok) throw new Error(`final read failed: ${outcome.error.code} ${outcome.error.message}`);
    completed(
      keys.map((key): MicroOp => ({ f: 'read', key })),
      outcome,
    ).forEach((op) => {
      if (op.f === 'read') reads.set(op.key, op.value ?? []);
    });
    finalReads.push(reads);
  }
  return { history, finalReads, ...counts };
}
