import { expect } from 'chai';
import { limits } from '../../../src/engine/base/limits.js';
import { CommitBetween, FirstAttemptBarrier, memoryNode, ok, put, value } from '../../helpers/solo.js';
import type { SoloNode } from '../../../src/engine/node/solo-node.js';

/** Fills a tree with keys between `a` and `z` so that keys at the ends live in different leaves. */
async function spread(node: SoloNode, collection: string): Promise<void> {
  const actions = [];
  for (let i = 0; i < 300; i++)
    actions.push({ collection, op: 'put' as const, key: `m${String(i).padStart(4, '0')}`, value: i });
  ok(await node.transact({ actions }));
}

/** One transaction putting `count` keys `<prefix><i>` with value i. */
function manyPuts(collection: string, prefix: string, count: number) {
  return {
    actions: Array.from({ length: count }, (_, i) => ({
      collection,
      op: 'put' as const,
      key: `${prefix}${i}`,
      value: i,
    })),
  };
}

/** The revision of a tree's root block (a branch once the tree has more than one leaf). */
async function rootRevision(node: SoloNode, collection: string): Promise<number> {
  const info = await node.collectionInfo(collection);
  return (await node.block(info.root)).rev;
}

/**
 * A node whose tree `t` spans many leaves; the next transaction's first attempt sees, between its
 * execution and its commit, another transaction put 40 new keys into the first leaf, which splits
 * and rewrites the root (`between.done` is that transaction's outcome).
 */
async function splitDuringNext(
  seed: number,
): Promise<{ node: SoloNode; between: CommitBetween; rootBefore: number }> {
  const between = new CommitBetween();
  const { node } = await memoryNode(seed, { coordinator: { afterExecute: between.hook } });
  await node.createCollection('t', 'tree');
  await spread(node, 't');
  const rootBefore = await rootRevision(node, 't');
  between.arm(() => node.transact(manyPuts('t', 'm0000-', 40)));
  return { node, between, rootBefore };
}

describe('transaction semantics', () => {
  let node: SoloNode;
  afterEach(async () => node?.close());

  it('prevents lost updates: two concurrent increments both land, one after a replay', async () => {
    const gate = new FirstAttemptBarrier();
    ({ node } = await memoryNode(1, { coordinator: { afterExecute: gate.hook } }));
    await node.createCollection('accounts', 'tree');
    ok(await node.transact(put('accounts', 'alice', { balance: 100 })));
    const incr = {
      actions: [{ collection: 'accounts', op: 'incr' as const, key: 'alice', path: 'balance', by: 5 }],
    };
    gate.arm(2);
    const [a, b] = await Promise.all([node.transact(incr), node.transact(incr)]);
    expect(ok(a).attempts + ok(b).attempts).to.equal(3);
    expect(await value(node, 'accounts', 'alice')).to.deep.equal({ balance: 110 });
  });

  it('rejects write skew between keys in different leaves', async () => {
    const gate = new FirstAttemptBarrier();
    ({ node } = await memoryNode(2, { coordinator: { afterExecute: gate.hook } }));
    await node.createCollection('doctors', 'tree');
    await spread(node, 'doctors');
    ok(
      await node.transact({
        actions: [
          { collection: 'doctors', op: 'put', key: 'a-alice', value: { onCall: true } },
          { collection: 'doctors', op: 'put', key: 'z-zoe', value: { onCall: true } },
        ],
      }),
    );
    // Each takes itself off call only if the other is still on call.
    const offCall = (me: string, other: string) =>
      node.transact({
        expect: [{ collection: 'doctors', key: other, value: { onCall: true } }],
        actions: [{ collection: 'doctors', op: 'put', key: me, value: { onCall: false } }],
      });
    gate.arm(2);
    const [alice, zoe] = await Promise.all([offCall('a-alice', 'z-zoe'), offCall('z-zoe', 'a-alice')]);
    const outcomes = [alice, zoe];
    expect(outcomes.filter((o) => o.ok)).to.have.length(1);
    expect(outcomes.filter((o) => !o.ok).map((o) => (o.ok ? '' : o.error.code))).to.deep.equal([
      'EXPECT_FAILED',
    ]);
    const onCall = [await value(node, 'doctors', 'a-alice'), await value(node, 'doctors', 'z-zoe')].filter(
      (v) => (v as { onCall: boolean }).onCall,
    );
    expect(onCall).to.have.length(1);
  });

  it('lets writers of disjoint leaves of one collection commit without a replay', async () => {
    const gate = new FirstAttemptBarrier();
    ({ node } = await memoryNode(3, { coordinator: { afterExecute: gate.hook } }));
    await node.createCollection('t', 'tree');
    await spread(node, 't');
    gate.arm(2);
    const [a, b] = await Promise.all([
      node.transact(put('t', 'a-first', 1)),
      node.transact(put('t', 'z-last', 2)),
    ]);
    expect(ok(a).attempts).to.equal(1);
    expect(ok(b).attempts).to.equal(1);
  });

  it('lets a writer of one leaf commit without a replay after a split elsewhere rewrote their branch', async () => {
    // The far writer has read the root branch; 40 new keys then overfill the first leaf, which
    // splits, and the root is rewritten before the far writer commits.
    const split = await splitDuringNext(5);
    node = split.node;
    const { between, rootBefore } = split;
    const far = ok(await node.transact(put('t', 'z-last', 2)));
    expect(ok(await between.done).attempts).to.equal(1);
    expect(await rootRevision(node, 't')).to.be.greaterThan(rootBefore);
    expect(far.attempts).to.equal(1);
    expect(await value(node, 't', 'z-last')).to.equal(2);
    expect(await value(node, 't', 'm0000-39')).to.equal(39);
  });

  it('still makes a scan conflict with inserts that split the leaf it read', async () => {
    const split = await splitDuringNext(6);
    node = split.node;
    const { between, rootBefore } = split;
    const scan = ok(
      await node.transact({
        actions: [
          { collection: 't', op: 'scan', from: 'm0000', to: 'm0001' },
          { collection: 't', op: 'put', key: 'z-count', value: 'counted' },
        ],
      }),
    );
    ok(await between.done);
    expect(await rootRevision(node, 't')).to.be.greaterThan(rootBefore);
    expect(scan.attempts).to.equal(2);
    const keys = (scan.results[0] as unknown as { entries: { key: string }[] }).entries.map((e) => e.key);
    expect(keys).to.include('m0000-0');
  });

  it('makes a phantom insert into a scanned range conflict', async () => {
    const gate = new FirstAttemptBarrier();
    ({ node } = await memoryNode(4, { coordinator: { afterExecute: gate.hook } }));
    await node.createCollection('t', 'tree');
    await spread(node, 't');
    // The scanner counts keys in [a, b] and records the count far away (another leaf).
    gate.arm(2);
    const scanAndRecord = node.transact({
      actions: [
        { collection: 't', op: 'scan', from: 'a', to: 'b' },
        { collection: 't', op: 'put', key: 'z-count', value: 'counted' },
      ],
    });
    const insert = node.transact(put('t', 'a-phantom', 1));
    const [scan, ins] = await Promise.all([scanAndRecord, insert]);
    // Whichever committed second must have replayed; the scan's final result must include the phantom
    // if the insert committed first.
    const scanOk = ok(scan);
    ok(ins);
    expect(scanOk.attempts + ok(ins).attempts).to.equal(3);
    if (scanOk.attempts === 2) {
      const entries = (scanOk.results[0] as unknown as { entries: { key: string }[] }).entries.map(
        (e) => e.key,
      );
      expect(entries).to.include('a-phantom');
    }
  });

  it('is all-or-nothing across collections when one part fails its guard', async () => {
    ({ node } = await memoryNode(5));
    await node.createCollection('accounts', 'tree');
    await node.createCollection('limits', 'tree');
    ok(await node.transact(put('accounts', 'alice', { balance: 10 })));
    ok(await node.transact(put('limits', 'alice', { left: 1 })));
    const before = [await node.collectionInfo('accounts'), await node.collectionInfo('limits')].map(
      (c) => c.rev,
    );
    const outcome = await node.transact({
      actions: [
        { collection: 'accounts', op: 'incr', key: 'alice', path: 'balance', by: -5, min: 0 },
        { collection: 'limits', op: 'incr', key: 'alice', path: 'left', by: -2, min: 0 },
      ],
    });
    expect(outcome.ok).to.equal(false);
    if (!outcome.ok) {
      expect(outcome.error.code).to.equal('EXPECT_FAILED');
      expect(outcome.error.action).to.equal(1);
    }
    expect(await value(node, 'accounts', 'alice')).to.deep.equal({ balance: 10 });
    expect(await value(node, 'limits', 'alice')).to.deep.equal({ left: 1 });
    const after = [await node.collectionInfo('accounts'), await node.collectionInfo('limits')].map(
      (c) => c.rev,
    );
    expect(after).to.deep.equal(before);
  });

  it('commits a multi-collection transaction atomically and reports each collection revision', async () => {
    ({ node } = await memoryNode(6));
    await node.createCollection('accounts', 'tree');
    await node.createCollection('transfers', 'diary');
    ok(await node.transact(put('accounts', 'alice', { balance: 10 })));
    const outcome = ok(
      await node.transact({
        actions: [
          { collection: 'accounts', op: 'incr', key: 'alice', path: 'balance', by: -3, min: 0 },
          { collection: 'accounts', op: 'incr', key: 'bob', path: 'balance', by: 3 },
          { collection: 'transfers', op: 'append', value: { from: 'alice', to: 'bob', amount: 3 } },
        ],
      }),
    );
    expect(Object.keys(outcome.commit).sort()).to.deep.equal(['accounts', 'transfers']);
    expect(await value(node, 'accounts', 'bob')).to.deep.equal({ balance: 3 });
    const entries = [];
    for await (const entry of node.read('transfers')) entries.push(entry);
    expect(entries).to.deep.equal([{ index: 0, value: { from: 'alice', to: 'bob', amount: 3 } }]);
  });

  it('aborts the prepared part when another collection rejects, leaving no trace in the first', async () => {
    const gate = new FirstAttemptBarrier();
    ({ node } = await memoryNode(7, { coordinator: { afterExecute: gate.hook } }));
    await node.createCollection('a', 'tree');
    await node.createCollection('b', 'tree');
    ok(await node.transact(put('b', 'k', { n: -1 })));
    gate.arm(2);
    const both = node.transact({
      actions: [
        { collection: 'a', op: 'put', key: 'x', value: 1 },
        { collection: 'b', op: 'incr', key: 'k', path: 'n', by: 1, max: 0 },
      ],
    });
    const onlyB = node.transact({ actions: [{ collection: 'b', op: 'put', key: 'k', value: { n: 0 } }] });
    const [first, second] = await Promise.all([both, onlyB]);
    ok(second);
    // `both` either lost the race on b and then failed its guard on replay, or won; never half.
    const aValue = await value(node, 'a', 'x');
    const bValue = await value(node, 'b', 'k');
    if (first.ok) {
      expect(aValue).to.equal(1);
    } else {
      expect(first.error.code).to.equal('EXPECT_FAILED');
      expect(aValue).to.equal(undefined);
      expect(bValue).to.deep.equal({ n: 0 });
    }
  });

  it('treats a failed expect as final: no replay, nothing written', async () => {
    ({ node } = await memoryNode(8));
    await node.createCollection('accounts', 'tree');
    ok(await node.transact(put('accounts', 'carol', { balance: 1 })));
    const rev = (await node.collectionInfo('accounts')).rev;
    const outcome = await node.transact({
      expect: [{ collection: 'accounts', key: 'carol', exists: false }],
      actions: [{ collection: 'accounts', op: 'put', key: 'dave', value: 1 }],
    });
    expect(outcome.ok).to.equal(false);
    if (!outcome.ok) expect(outcome.error.code).to.equal('EXPECT_FAILED');
    expect(await value(node, 'accounts', 'dave')).to.equal(undefined);
    expect((await node.collectionInfo('accounts')).rev).to.equal(rev);
  });

  it('reads any past revision of a collection (time travel)', async () => {
    ({ node } = await memoryNode(9));
    await node.createCollection('t', 'tree');
    const revs: number[] = [];
    for (let i = 0; i < 40; i++) revs.push(ok(await node.transact(put('t', 'k', i))).commit['t']!.rev);
    for (const [i, rev] of revs.entries()) {
      expect((await node.get('t', 'k', { at: rev })).value).to.equal(i);
    }
    const missing = await node.get('t', 'k', { at: 999 }).catch((e: { code: string }) => e.code);
    expect(missing).to.equal('NOT_FOUND');
  });

  it('refuses a put whose value is too large, too deep or not JSON, naming the action, and writes nothing', async () => {
    ({ node } = await memoryNode(11));
    await node.createCollection('t', 'tree');
    ok(await node.transact(put('t', 'kept', 1)));
    const rev = (await node.collectionInfo('t')).rev;
    let deep: unknown = 1;
    for (let i = 0; i < limits.jsonDepthMax + 1; i++) deep = [deep];
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic['self'] = cyclic;
    const cases: Array<[unknown, string]> = [
      ['x'.repeat(limits.valueBytesMax), 'TOO_LARGE'],
      ['€'.repeat(Math.floor(limits.valueBytesMax / 3)), 'TOO_LARGE'],
      [deep, 'TOO_LARGE'],
      [{ n: 10n }, 'BAD_INPUT'],
      [{ f: Number.NaN }, 'BAD_INPUT'],
    ];
    for (const [bad, code] of cases) {
      const outcome = await node.transact({
        actions: [
          { collection: 't', op: 'put', key: 'a', value: 1 },
          { collection: 't', op: 'put', key: 'b', value: bad as never },
        ],
      });
      expect(outcome.ok ? 'ok' : [outcome.error.code, outcome.error.action]).to.deep.equal([code, 1]);
    }
    // A cycle is refused (nested past the depth bound) rather than overflowing the stack.
    const cycle = await node.transact({
      actions: [{ collection: 't', op: 'put', key: 'c', value: cyclic as never }],
    });
    expect(cycle.ok).to.equal(false);
    expect(await value(node, 't', 'a')).to.equal(undefined);
    expect((await node.collectionInfo('t')).rev).to.equal(rev);
  });

  it('refuses an incr whose result would lose precision or overflow, and writes nothing', async () => {
    ({ node } = await memoryNode(12));
    await node.createCollection('t', 'tree');
    const max = Number.MAX_SAFE_INTEGER;
    ok(await node.transact(put('t', 'c', { n: max - 1, low: -max + 1, f: 0.5, big: 1e308 })));
    const incr = (path: string, by: number) => ({
      actions: [{ collection: 't', op: 'incr' as const, key: 'c', path, by }],
    });
    const landed = await node.transact(incr('n', 1));
    expect(landed.ok && landed.results[0]).to.deep.include({ value: max });
    const rev = (await node.collectionInfo('t')).rev;
    for (const [path, by] of [
      ['n', 1],
      ['low', -2],
      ['big', 1e308],
    ] as const) {
      const outcome = await node.transact(incr(path, by));
      expect(outcome.ok ? 'ok' : [outcome.error.code, outcome.error.action], `${path} + ${by}`).to.deep.equal(
        ['TOO_LARGE', 0],
      );
    }
    // Fractions are floating point, as JSON numbers are: no integer precision to lose.
    ok(await node.transact(incr('f', 0.25)));
    expect(await value(node, 't', 'c')).to.deep.equal({ n: max, low: -max + 1, f: 0.75, big: 1e308 });
    expect((await node.collectionInfo('t')).rev).to.equal(rev + 1);
  });

  it('adds to a value that is itself a number when incr names no path, with the same guards', async () => {
    ({ node } = await memoryNode(13));
    await node.createCollection('t', 'tree');
    const incr = (key: string, by: number, guards: { min?: number; max?: number } = {}) => ({
      actions: [{ collection: 't', op: 'incr' as const, key, by, ...guards }],
    });
    // Absent counts as 0, as it does for a field.
    const first = await node.transact(incr('hits', 2));
    expect(first.ok && first.results[0]).to.deep.equal({ op: 'incr', key: 'hits', value: 2 });
    ok(await node.transact(incr('hits', 3)));
    expect(await value(node, 't', 'hits')).to.equal(5);
    const rev = (await node.collectionInfo('t')).rev;
    const below = await node.transact(incr('hits', -6, { min: 0 }));
    expect(below.ok ? 'ok' : [below.error.code, below.error.message]).to.deep.equal([
      'EXPECT_FAILED',
      't/hits would become -1, below the minimum 0',
    ]);
    ok(await node.transact(put('t', 'big', Number.MAX_SAFE_INTEGER)));
    const past = await node.transact(incr('big', 1));
    expect(past.ok ? 'ok' : past.error.code).to.equal('TOO_LARGE');
    // A value that is not a number needs a path; a number given a path is told to leave it out.
    ok(await node.transact(put('t', 'obj', { n: 1 })));
    const notNumber = await node.transact(incr('obj', 1));
    expect(notNumber.ok ? 'ok' : [notNumber.error.code, notNumber.error.message]).to.deep.equal([
      'BAD_INPUT',
      'cannot incr: the value is an object, not a number (name the numeric field with "path")',
    ]);
    const pathOnNumber = await node.transact({
      actions: [{ collection: 't', op: 'incr', key: 'hits', path: 'n', by: 1 }],
    });
    expect(pathOnNumber.ok ? 'ok' : pathOnNumber.error.message).to.equal(
      'cannot incr "n": the value is a number, not an object (leave out "path" to add to the number itself)',
    );
    expect(await value(node, 't', 'hits')).to.equal(5);
    expect(await value(node, 't', 'obj')).to.deep.equal({ n: 1 });
    // The two puts, and nothing of the refused increments.
    expect((await node.collectionInfo('t')).rev).to.equal(rev + 2);
  });

  it('reports unknown collections and wrong collection types with stable codes and writes nothing', async () => {
    ({ node } = await memoryNode(10));
    await node.createCollection('d', 'diary');
    const unknown = await node.transact(put('nope', 'k', 1));
    expect(unknown.ok ? '' : unknown.error.code).to.equal('NOT_FOUND');
    const wrong = await node.transact(put('d', 'k', 1));
    expect(wrong.ok ? '' : wrong.error.code).to.equal('WRONG_TYPE');
    expect((await node.collectionInfo('d')).rev).to.equal(1);
    expect((await node.listCollections()).map((c) => c.name)).to.deep.equal(['d']);
  });
});
