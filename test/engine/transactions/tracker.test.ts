import { expect } from 'chai';
import { isEngineError } from '../../../src/engine/base/errors.js';
import { newBlockId, type BlockId } from '../../../src/engine/base/ids.js';
import { SeededRng } from '../../../src/engine/base/rng.js';
import { blockTransformOf, blockTypes, type Block } from '../../../src/engine/storage/block.js';
import { Tracker } from '../../../src/engine/transactions/tracker.js';

function leaf(id: BlockId, n: number): Block {
  return { header: { id, type: blockTypes.treeLeaf, collection: 'c' }, n };
}

describe('Tracker', () => {
  it('hands out at once only what it already holds, exactly as get would, and reads nothing for it', async () => {
    const rng = new SeededRng(7);
    const a = newBlockId(rng);
    const b = newBlockId(rng);
    const absent = newBlockId(rng);
    const source = new Map<BlockId, Block>([
      [a, leaf(a, 1)],
      [b, leaf(b, 2)],
    ]);
    const reads: BlockId[] = [];
    const tracker = new Tracker(
      {
        read: (id) => {
          reads.push(id);
          const block = source.get(id);
          return Promise.resolve({ block, rev: block === undefined ? 0 : 1 });
        },
      },
      rng,
    );
    expect(tracker.held(a)).to.equal(undefined);
    expect(reads).to.deep.equal([]);
    const read = await tracker.get(a);
    expect(tracker.held(a)).to.equal(read);
    tracker.update(a, [{ op: 'set', field: 'n', value: 5 }]);
    expect(tracker.held(a)).to.deep.equal(leaf(a, 5));
    expect(tracker.held(a)).to.equal(await tracker.get(a));
    await tracker.tryGet(absent);
    await tracker.get(b);
    tracker.delete(b);
    for (const gone of [absent, b]) {
      let code: string | undefined;
      try {
        tracker.held(gone);
      } catch (error) {
        code = isEngineError(error) ? error.code : 'OTHER';
      }
      expect(code).to.equal('NOT_FOUND');
    }
    expect(reads).to.deep.equal([a, absent, b]);
    expect([...tracker.reads().keys()]).to.deep.equal([a, absent, b]);
  });

  it('takes a block its source has at once without a wait, recording the read as get would', async () => {
    const rng = new SeededRng(8);
    const a = newBlockId(rng);
    const later = newBlockId(rng);
    const absent = newBlockId(rng);
    const reads: BlockId[] = [];
    const tracker = new Tracker(
      {
        read: (id) => {
          reads.push(id);
          return Promise.resolve({
            block: id === later ? leaf(later, 3) : undefined,
            rev: id === later ? 4 : 0,
          });
        },
        readNow: (id) =>
          id === a ? { block: leaf(a, 1), rev: 2 } : id === absent ? { block: undefined, rev: 0 } : undefined,
      },
      rng,
    );
    expect(tracker.held(a)).to.deep.equal(leaf(a, 1));
    expect(tracker.held(later)).to.equal(undefined);
    let code: string | undefined;
    try {
      tracker.held(absent);
    } catch (error) {
      code = isEngineError(error) ? error.code : 'OTHER';
    }
    expect(code).to.equal('NOT_FOUND');
    expect(await tracker.get(later)).to.deep.equal(leaf(later, 3));
    // Only the block the source could not give at once was read the slow way.
    expect(reads).to.deep.equal([later]);
    expect([...tracker.reads()]).to.deep.equal([
      [a, 2],
      [absent, 0],
      [later, 4],
    ]);
    expect(tracker.held(a)).to.equal(await tracker.get(a));
  });

  it('gives each written block the transform transforms() has for it', async () => {
    const rng = new SeededRng(9);
    const [a, b, c] = [newBlockId(rng), newBlockId(rng), newBlockId(rng)];
    const tracker = new Tracker({ read: (id) => Promise.resolve({ block: leaf(id, 0), rev: 1 }) }, rng);
    await tracker.get(a);
    await tracker.get(b);
    tracker.update(a, [{ op: 'set', field: 'n', value: 1 }]);
    tracker.update(a, [{ op: 'set', field: 'm', value: 2 }]);
    tracker.delete(b);
    tracker.insert(leaf(c, 3));
    tracker.update(c, [{ op: 'set', field: 'n', value: 4 }]);
    const transforms = tracker.transforms();
    expect(tracker.writes()).to.have.length(3);
    for (const id of tracker.writes())
      expect(tracker.transformOf(id)).to.deep.equal(blockTransformOf(transforms, id));
    expect(tracker.transformOf(newBlockId(rng))).to.equal(undefined);
  });
});
