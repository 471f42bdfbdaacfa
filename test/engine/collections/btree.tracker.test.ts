import { expect } from 'chai';
import type { Json } from '../../../src/engine/base/codec.js';
import type { BlockId } from '../../../src/engine/base/ids.js';
import { SeededRng } from '../../../src/engine/base/rng.js';
import { BTree, type BTreeInit, type TreeEntry } from '../../../src/engine/collections/btree/btree.js';
import { compareKeys } from '../../../src/engine/collections/btree/keys.js';
import { applyTransform, blockTransformOf, type Block } from '../../../src/engine/storage/block.js';
import { Tracker } from '../../../src/engine/transactions/tracker.js';

const collection = 'things';

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}

/**
 * Committed blocks, as a store holds them after promotion: the very objects a transaction's
 * transforms carried (no copy), frozen so that a later transaction changing one in place fails.
 */
class Committed {
  readonly blocks = new Map<BlockId, { block: Block | undefined; rev: number }>();

  tracker(seed: number): Tracker {
    return new Tracker(
      { read: (id) => Promise.resolve(this.blocks.get(id) ?? { block: undefined, rev: 0 }) },
      new SeededRng(seed),
    );
  }

  commit(tracker: Tracker): void {
    const transforms = tracker.transforms();
    for (const id of tracker.writes()) {
      const previous = this.blocks.get(id);
      const block = applyTransform(previous?.block, blockTransformOf(transforms, id)!);
      this.blocks.set(id, { block: deepFreeze(block), rev: (previous?.rev ?? 0) + 1 });
    }
  }
}

async function contents(tree: BTree): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  for await (const entry of tree.entries()) out.push(entry);
  return out;
}

function sorted(model: Map<number | string, Json>): TreeEntry[] {
  return [...model].sort(([a], [b]) => compareKeys(a, b));
}

describe('BTree through a transaction tracker', () => {
  it('splits a leaf it emptied and filled again exactly at leafBytesMax, not a byte before', async () => {
    const store = new Committed();
    const tracker = store.tracker(7);
    const rootId = BTree.create(tracker, collection);
    // Two entries ["a","…"] and ["b","…"] of 6 + n bytes each, in brackets with a comma: 15 + 2n.
    const n = 20;
    const tree = new BTree(tracker, rootId, collection, { leafEntriesMax: 8, leafBytesMax: 15 + 2 * n });
    await tree.put('a', 'x'.repeat(n - 2));
    expect(await tree.delete('a')).to.equal(true);
    await tree.put('a', 'x'.repeat(n - 2));
    await tree.put('b', 'y'.repeat(n - 2));
    store.commit(tracker);
    expect(store.blocks.get(rootId)?.block?.['entries']).to.have.length(2);
  });

  it('leaves the branches a put descended through out of the reads it validates, however it read them', async () => {
    const store = new Committed();
    const setup = store.tracker(9);
    const rootId = BTree.create(setup, collection);
    const init: BTreeInit = { leafEntriesMax: 4, branchChildrenMax: 4 };
    const built = new BTree(setup, rootId, collection, init);
    for (let i = 0; i < 40; i++) await built.put(i, i);
    store.commit(setup);
    const branches = [...store.blocks].filter(([, { block }]) => block?.header.type === 'TB');
    expect(branches.length).to.be.greaterThan(1);
    // One tracker reads through `read` (awaited), the other through `readNow` (held at once).
    const slow = store.tracker(10);
    const fast = new Tracker(
      {
        read: () => Promise.reject(new Error('read at once only')),
        readNow: (id) => store.blocks.get(id) ?? { block: undefined, rev: 0 },
      },
      new SeededRng(11),
    );
    for (const tracker of [slow, fast]) {
      await new BTree(tracker, rootId, collection, init).put(17, 'changed');
      const validated = tracker.validationReads();
      expect(validated).to.have.length(1);
      expect(store.blocks.get(validated[0]!)?.block?.header.type).to.equal('TL');
      expect(tracker.reads().size).to.be.greaterThan(1);
    }
    expect(fast.validationReads()).to.deep.equal(slow.validationReads());
    expect([...fast.reads().keys()].sort()).to.deep.equal([...slow.reads().keys()].sort());
  });

  for (const [name, init] of [
    ['fan-out 4/4', { leafEntriesMax: 4, branchChildrenMax: 4 }],
    ['fan-out 8/5, leaves split by bytes', { leafEntriesMax: 8, branchChildrenMax: 5, leafBytesMax: 400 }],
  ] as Array<[string, BTreeInit]>) {
    it(`commits what it read back within each transaction, never changing a committed block (${name})`, async () => {
      const rng = new SeededRng(41);
      const store = new Committed();
      const setup = store.tracker(1);
      const rootId = BTree.create(setup, collection);
      store.commit(setup);
      const model = new Map<number | string, Json>();
      for (let trx = 0; trx < 40; trx++) {
        const tracker = store.tracker(100 + trx);
        const tree = new BTree(tracker, rootId, collection, init);
        const steps = 1 + rng.int(trx % 4 === 0 ? 400 : 40);
        // Mostly growing runs of keys in order (leaves created and filled within the transaction),
        // with random puts, replacements and deletes among them.
        let next = rng.int(2000);
        for (let step = 0; step < steps; step++) {
          const roll = rng.int(100);
          const key = roll < 50 ? next++ : rng.int(2000);
          if (roll < 85) {
            const value = { step, trx, pad: 'v'.repeat(rng.int(40)) };
            await tree.put(key, value);
            model.set(key, value);
          } else {
            expect(await tree.delete(key)).to.equal(model.delete(key));
          }
        }
        expect(await contents(tree), `transaction ${trx}`).to.deep.equal(sorted(model));
        store.commit(tracker);
        const reader = new BTree(store.tracker(9999), rootId, collection, init);
        expect(await contents(reader), `after commit ${trx}`).to.deep.equal(sorted(model));
      }
    });
  }
});
