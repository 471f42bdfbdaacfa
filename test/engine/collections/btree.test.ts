import { expect } from 'chai';
import { canonicalJson, jsonBytes, jsonEqual, type Json } from '../../../src/engine/base/codec.js';
import { SeededRng } from '../../../src/engine/base/rng.js';
import { isEngineError, type ErrorCode } from '../../../src/engine/base/errors.js';
import type { BlockId } from '../../../src/engine/base/ids.js';
import { limits } from '../../../src/engine/base/limits.js';
import { blockTypes, type Block } from '../../../src/engine/storage/block.js';
import {
  BTree,
  type BTreeInit,
  type TreeEntry,
  type TreeRange,
} from '../../../src/engine/collections/btree/btree.js';
import { compareKeys, type TreeKeyValue } from '../../../src/engine/collections/btree/keys.js';
import { MemoryBlockAccess } from '../../helpers/memory-block-access.js';

const collection = 'things';

function newTree(init: BTreeInit = {}): { access: MemoryBlockAccess; tree: BTree; rootId: BlockId } {
  const access = new MemoryBlockAccess();
  const rootId = BTree.create(access, collection);
  return { access, tree: new BTree(access, rootId, collection, init), rootId };
}

/** Reads blocks straight from the map, so inspecting the tree leaves the access's read set alone. */
function stored(access: MemoryBlockAccess, id: BlockId): Block {
  const block = access.blocks.get(id);
  if (block === undefined) throw new Error(`block ${id} missing`);
  return block;
}

/** Leaves left to right. */
function leaves(access: MemoryBlockAccess, rootId: BlockId): Array<{ id: BlockId; entries: TreeEntry[] }> {
  const block = stored(access, rootId);
  if (Array.isArray(block.entries)) return [{ id: rootId, entries: block.entries as TreeEntry[] }];
  return (block.children as BlockId[]).flatMap((child) => leaves(access, child));
}

/** Ids from the root down to the leaf that would hold key. */
function pathTo(access: MemoryBlockAccess, rootId: BlockId, key: TreeKeyValue): BlockId[] {
  const path = [rootId];
  let block = stored(access, rootId);
  while (!Array.isArray(block.entries)) {
    const keys = block.keys as TreeKeyValue[];
    const index = keys.filter((separator) => compareKeys(separator, key) <= 0).length;
    const child = (block.children as BlockId[])[index]!;
    path.push(child);
    block = stored(access, child);
  }
  return path;
}

async function collect(tree: BTree, range: TreeRange = {}): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  for await (const entry of tree.entries(range)) out.push(entry);
  return out;
}

async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  try {
    await promise;
  } catch (error) {
    expect(isEngineError(error, code), `expected ${code}, got ${String(error)}`).to.equal(true);
    return;
  }
  expect.fail(`expected ${code}, but it succeeded`);
}

/** A tree of keys 0, 10, 20, … inserted in order, with fan-out 4/4 (several levels). */
async function multiLevelTree(
  count: number,
): Promise<{ access: MemoryBlockAccess; tree: BTree; rootId: BlockId }> {
  const built = newTree({ leafEntriesMax: 4, branchChildrenMax: 4 });
  for (let i = 0; i < count; i++) await built.tree.put(i * 10, `v${i * 10}`);
  built.access.resetTracking();
  return built;
}

describe('compareKeys', () => {
  it('puts every number before every string', () => {
    expect(compareKeys(1e9, '')).to.be.below(0);
    expect(compareKeys('0', -5)).to.be.above(0);
  });

  it('orders numbers numerically, not by their text', () => {
    const sorted = [10, -1, 2.5, 0, 9].sort(compareKeys);
    expect(sorted).to.deep.equal([-1, 0, 2.5, 9, 10]);
  });

  it('orders strings by UTF-16 code unit, so a surrogate pair sorts before U+FFFF', () => {
    const sorted = ['a', 'B', '\uffff', '\ud83d\ude00', 'ab', ''].sort(compareKeys);
    expect(sorted).to.deep.equal(['', 'B', 'a', 'ab', '\ud83d\ude00', '\uffff']);
  });

  it('finds equal keys equal', () => {
    expect(compareKeys('x', 'x')).to.equal(0);
    expect(compareKeys(3, 3)).to.equal(0);
  });
});

describe('BTree', () => {
  describe('creation and small trees', () => {
    it('creates an empty root leaf with the given id', () => {
      const access = new MemoryBlockAccess();
      const rootId = access.newId();
      expect(BTree.create(access, collection, rootId)).to.equal(rootId);
      expect(stored(access, rootId)).to.deep.equal({
        header: { id: rootId, type: blockTypes.treeLeaf, collection },
        entries: [],
      });
    });

    it('reads back what was put, replaces on a second put and forgets a deleted key', async () => {
      const { tree } = newTree();
      await tree.put('a', 1);
      await tree.put(2, { x: [1, null] });
      await tree.put('a', 'one');
      expect(await tree.get('a')).to.equal('one');
      expect(await tree.get(2)).to.deep.equal({ x: [1, null] });
      expect(await tree.delete('a')).to.equal(true);
      expect(await tree.get('a')).to.equal(undefined);
      expect(await tree.delete('a')).to.equal(false);
    });

    it('tells a stored null apart from an absent key', async () => {
      const { tree } = newTree();
      await tree.put('n', null);
      expect(await tree.has('n')).to.equal(true);
      expect(await tree.get('n')).to.equal(null);
      expect(await tree.has('m')).to.equal(false);
    });

    it('treats -0 and 0 as one key', async () => {
      const { tree } = newTree();
      await tree.put(-0, 'zero');
      expect(await tree.get(0)).to.equal('zero');
      expect(Object.is((await tree.first())?.[0], 0)).to.equal(true);
    });

    it('stores its own copy of a value, so later changes to the caller’s object change nothing', async () => {
      const { tree } = newTree();
      const value = { list: [1, 2] };
      await tree.put('k', value);
      value.list.push(3);
      expect(await tree.get('k')).to.deep.equal({ list: [1, 2] });
    });

    it('gives undefined for first and last of an empty tree and scans nothing', async () => {
      const { tree } = newTree();
      expect(await tree.first()).to.equal(undefined);
      expect(await tree.last()).to.equal(undefined);
      expect(await collect(tree)).to.deep.equal([]);
      expect(await collect(tree, { reverse: true })).to.deep.equal([]);
    });

    it('walks a range one entry at a time through a cursor', async () => {
      const { tree } = await multiLevelTree(20);
      const cursor = tree.cursor({ gte: 55, lt: 90 });
      expect(await cursor.next()).to.deep.equal([60, 'v60']);
      expect(await cursor.next()).to.deep.equal([70, 'v70']);
      expect(await cursor.next()).to.deep.equal([80, 'v80']);
      expect(await cursor.next()).to.equal(undefined);
      expect(await cursor.next()).to.equal(undefined);
    });
  });

  describe('read and write sets', () => {
    it('a put into a leaf with room writes exactly one block, with one splice', async () => {
      const { access, tree, rootId } = await multiLevelTree(40);
      const roomy = leaves(access, rootId).find(
        (leaf) => leaf.entries.length < 4 && leaf.entries.length > 0,
      )!;
      const key = (roomy.entries[0]![0] as number) + 1;
      access.resetTracking();
      await tree.put(key, 'new');
      expect([...access.writes]).to.deep.equal([roomy.id]);
      expect(access.changes).to.have.length(1);
      const change = access.changes[0]!;
      expect(change.kind === 'update' ? change.ops : []).to.deep.equal([
        { op: 'splice', field: 'entries', index: 1, remove: 0, items: [[key, 'new']] },
      ]);
    });

    it('replacing a value writes only its leaf', async () => {
      const { access, tree, rootId } = await multiLevelTree(40);
      await tree.put(130, 'changed');
      expect([...access.writes]).to.deep.equal([pathTo(access, rootId, 130).at(-1)]);
      expect(await tree.get(130)).to.equal('changed');
    });

    it('a put of the value already stored writes nothing', async () => {
      const { access, tree } = await multiLevelTree(40);
      await tree.put(130, 'v130');
      expect(access.writes.size).to.equal(0);
    });

    it('a lookup of an absent key reads the root-to-leaf path ending at the leaf that would hold it', async () => {
      const { access, tree, rootId } = await multiLevelTree(40);
      expect(await tree.get(135)).to.equal(undefined);
      const path = pathTo(access, rootId, 135);
      expect(path.length).to.be.at.least(3);
      expect([...access.reads]).to.deep.equal(path);
      expect(access.writes.size).to.equal(0);
    });

    it('a delete of an absent key reads the leaf that would hold it and writes nothing', async () => {
      const { access, tree, rootId } = await multiLevelTree(40);
      expect(await tree.delete(135)).to.equal(false);
      expect([...access.reads]).to.deep.equal(pathTo(access, rootId, 135));
      expect(access.writes.size).to.equal(0);
    });

    it('a scan with limit 10 reads only the leaves holding its first 10 entries', async () => {
      const { access, tree, rootId } = await multiLevelTree(500);
      const got = await collect(tree, { limit: 10 });
      expect(got.map(([key]) => key)).to.deep.equal([0, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
      const readLeaves = leaves(access, rootId).filter((leaf) => access.reads.has(leaf.id));
      expect(readLeaves.length).to.be.at.most(5);
      for (const leaf of readLeaves) expect(compareKeys(leaf.entries[0]![0], 90)).to.be.at.most(0);
      expect(access.reads.size).to.be.below(15);
    });

    it('a reverse scan with a limit reads only the leaves at the end it needs', async () => {
      const { access, tree, rootId } = await multiLevelTree(500);
      const got = await collect(tree, { reverse: true, limit: 3 });
      expect(got.map(([key]) => key)).to.deep.equal([4990, 4980, 4970]);
      const readLeaves = leaves(access, rootId).filter((leaf) => access.reads.has(leaf.id));
      expect(readLeaves.length).to.be.at.most(2);
    });

    it('a bounded scan stops at the separator and does not read the next leaf', async () => {
      const { access, tree, rootId } = await multiLevelTree(40);
      const all = leaves(access, rootId);
      const leaf = all[2]!;
      const next = all[3]!;
      const lastKey = leaf.entries.at(-1)![0] as number;
      expect(await collect(tree, { gte: lastKey, lte: lastKey + 5 })).to.deep.equal([
        [lastKey, `v${lastKey}`],
      ]);
      expect(access.reads.has(leaf.id)).to.equal(true);
      expect(access.reads.has(next.id)).to.equal(false);
    });

    it('a reverse bounded scan stops at the separator and does not read the previous leaf', async () => {
      const { access, tree, rootId } = await multiLevelTree(40);
      const all = leaves(access, rootId);
      const firstKey = all[3]!.entries[0]![0] as number;
      const got = await collect(tree, { gte: firstKey, lte: firstKey + 5, reverse: true });
      expect(got).to.deep.equal([[firstKey, `v${firstKey}`]]);
      expect(access.reads.has(all[3]!.id)).to.equal(true);
      expect(access.reads.has(all[2]!.id)).to.equal(false);
    });

    it('a reverse scan below an exclusive bound starts at the leaf before it', async () => {
      const { access, tree, rootId } = await multiLevelTree(40);
      const all = leaves(access, rootId);
      const firstKey = all[3]!.entries[0]![0] as number;
      const lastBefore = all[2]!.entries.at(-1)![0];
      expect(await collect(tree, { lt: firstKey, reverse: true, limit: 1 })).to.deep.equal([
        [lastBefore, `v${String(lastBefore)}`],
      ]);
      expect(access.reads.has(all[3]!.id)).to.equal(false);
    });

    it('an empty range still reads the leaf that would hold keys in it, so a phantom insert conflicts', async () => {
      const { access, tree, rootId } = await multiLevelTree(40);
      expect(await collect(tree, { gt: 131, lt: 139 })).to.deep.equal([]);
      expect(access.reads.has(pathTo(access, rootId, 135).at(-1)!)).to.equal(true);
      access.resetTracking();
      expect(await collect(tree, { gt: 131, lt: 139, reverse: true })).to.deep.equal([]);
      expect(access.reads.has(pathTo(access, rootId, 135).at(-1)!)).to.equal(true);
    });

    it('a scan with limit 0 reads nothing', async () => {
      const { access, tree } = await multiLevelTree(40);
      expect(await collect(tree, { limit: 0 })).to.deep.equal([]);
      expect(access.reads.size).to.equal(0);
    });
  });

  describe('splits and merges', () => {
    it('a root split keeps the root id and moves its entries into two new leaves', async () => {
      const { access, tree, rootId } = newTree({ leafEntriesMax: 4, branchChildrenMax: 4 });
      for (const key of [1, 2, 3, 4]) await tree.put(key, key);
      access.resetTracking();
      await tree.put(5, 5);
      const root = stored(access, rootId);
      expect(root.header.id).to.equal(rootId);
      expect(root.entries).to.equal(undefined);
      expect(root.keys).to.deep.equal([4]);
      const children = root.children as BlockId[];
      expect(children.map((id) => stored(access, id).entries)).to.deep.equal([
        [
          [1, 1],
          [2, 2],
          [3, 3],
        ],
        [
          [4, 4],
          [5, 5],
        ],
      ]);
      expect(children.map((id) => stored(access, id).header.type)).to.deep.equal([
        blockTypes.treeLeaf,
        blockTypes.treeLeaf,
      ]);
      expect(access.blocks.size).to.equal(3);
    });

    it('a split of a leaf under a branch writes the leaf, the new leaf and the parent only', async () => {
      const { access, tree, rootId } = newTree({ leafEntriesMax: 4, branchChildrenMax: 4 });
      for (const key of [10, 20, 30, 40, 50]) await tree.put(key, key);
      const [left] = stored(access, rootId).children as BlockId[];
      await tree.put(11, 11);
      access.resetTracking();
      await tree.put(12, 12);
      const inserted = access.changes.filter((change) => change.kind === 'insert').map((change) => change.id);
      expect(inserted).to.have.length(1);
      expect([...access.writes].sort()).to.deep.equal([left!, inserted[0]!, rootId].sort());
      expect(await collect(tree)).to.have.length(7);
    });

    it('keeps the root id through several levels of growth and back to one empty leaf', async () => {
      const { access, tree, rootId } = newTree({ leafEntriesMax: 4, branchChildrenMax: 4 });
      for (let i = 0; i < 200; i++) await tree.put(i, i);
      expect(pathTo(access, rootId, 0).length).to.be.at.least(4);
      for (let i = 0; i < 200; i++) expect(await tree.delete(i)).to.equal(true);
      expect([...access.blocks.keys()]).to.deep.equal([rootId]);
      expect(stored(access, rootId)).to.deep.equal({
        header: { id: rootId, type: blockTypes.treeLeaf, collection },
        entries: [],
      });
    });

    it('a root branch left with one child takes that child’s content and the child is deleted', async () => {
      const { access, tree, rootId } = newTree({ leafEntriesMax: 4, branchChildrenMax: 4 });
      for (const key of [1, 2, 3, 4, 5]) await tree.put(key, key);
      const children = stored(access, rootId).children as BlockId[];
      access.resetTracking();
      // Leaves [1 2 3] [4 5]: deleting 5 merges the two, which leaves the root one child.
      await tree.delete(5);
      expect(stored(access, rootId).entries).to.deep.equal([
        [1, 1],
        [2, 2],
        [3, 3],
        [4, 4],
      ]);
      expect(stored(access, rootId).children).to.equal(undefined);
      expect(access.blocks.size).to.equal(1);
      expect([...access.writes].sort()).to.deep.equal([...children, rootId].sort());
    });

    it('an underfull leaf borrows from a fuller sibling without deleting anything', async () => {
      const { access, tree, rootId } = newTree({ leafEntriesMax: 4, branchChildrenMax: 4 });
      for (const key of [1, 2, 3, 4, 5, 0]) await tree.put(key, key);
      // Leaves are now [0 1 2 3] and [4 5]; deleting 5 leaves [4] under half full.
      access.resetTracking();
      await tree.delete(5);
      expect(access.changes.some((change) => change.kind !== 'update')).to.equal(false);
      expect(leaves(access, rootId).map((leaf) => leaf.entries.map(([key]) => key))).to.deep.equal([
        [0, 1, 2],
        [3, 4],
      ]);
      expect(stored(access, rootId).keys).to.deep.equal([3]);
    });

    it('an underfull leaf merges with a sibling that has no entries to spare', async () => {
      const { access, tree, rootId } = newTree({ leafEntriesMax: 4, branchChildrenMax: 4 });
      for (const key of [10, 20, 30, 40, 50, 60, 70, 80]) await tree.put(key, key);
      const before = leaves(access, rootId);
      expect(before.map((leaf) => leaf.entries.length)).to.deep.equal([3, 3, 2]);
      await tree.delete(30);
      await tree.delete(50);
      // Leaves [10 20] [40 60] [70 80]: deleting 60 merges [40] into its left sibling.
      access.resetTracking();
      await tree.delete(60);
      const after = leaves(access, rootId);
      expect(after.map((leaf) => leaf.entries.map(([key]) => key))).to.deep.equal([
        [10, 20, 40],
        [70, 80],
      ]);
      expect(after[0]!.id).to.equal(before[0]!.id);
      expect(
        access.changes.filter((change) => change.kind === 'delete').map((change) => change.id),
      ).to.deep.equal([before[1]!.id]);
      expect([...access.writes].sort()).to.deep.equal([before[0]!.id, before[1]!.id, rootId].sort());
    });
  });

  describe('byte limits', () => {
    it('splits leaves by bytes when large values would overfill them', async () => {
      const { access, tree, rootId } = newTree({ leafEntriesMax: 64, leafBytesMax: 4096 });
      const big = 'x'.repeat(1000);
      for (let i = 0; i < 20; i++) await tree.put(i, big);
      const all = leaves(access, rootId);
      expect(all.length).to.be.at.least(5);
      for (const leaf of all) expect(jsonBytes(leaf.entries)).to.be.at.most(4096);
      expect((await collect(tree)).map(([key]) => key)).to.deep.equal([...Array(20).keys()]);
    });

    it('gives an entry larger than leafBytesMax a leaf of its own', async () => {
      const { access, tree, rootId } = newTree({ leafEntriesMax: 64, leafBytesMax: 1000 });
      await tree.put(1, 'a');
      await tree.put(3, 'c');
      await tree.put(2, 'y'.repeat(2000));
      const shape = leaves(access, rootId).map((leaf) => leaf.entries.map(([key]) => key));
      expect(shape).to.deep.include([2]);
      expect(shape.flat()).to.deep.equal([1, 2, 3]);
    });

    it('splits one leaf into three when no two pieces would fit', async () => {
      const { access, tree, rootId } = newTree({ leafEntriesMax: 64, leafBytesMax: 2000 });
      await tree.put(1, 'a'.repeat(950));
      await tree.put(3, 'c'.repeat(1000));
      expect(leaves(access, rootId)).to.have.length(1);
      await tree.put(2, 'b'.repeat(1050));
      const all = leaves(access, rootId);
      expect(all.map((leaf) => leaf.entries.map(([key]) => key))).to.deep.equal([[1], [2], [3]]);
      expect(stored(access, rootId).keys).to.deep.equal([2, 3]);
    });

    it('merges byte-heavy leaves back as values shrink and keys go', async () => {
      const { access, tree, rootId } = newTree({ leafEntriesMax: 64, leafBytesMax: 4096 });
      for (let i = 0; i < 20; i++) await tree.put(i, 'x'.repeat(1000));
      for (let i = 0; i < 20; i++) await tree.put(i, i);
      expect(leaves(access, rootId).length).to.be.below(5);
      for (let i = 0; i < 20; i++) await tree.delete(i);
      expect([...access.blocks.keys()]).to.deep.equal([rootId]);
    });
  });

  describe('rejected input', () => {
    it('rejects a value over valueBytesMax with TOO_LARGE before reading or writing anything', async () => {
      const { access, tree } = await multiLevelTree(40);
      await expectCode(tree.put(5, 'x'.repeat(limits.valueBytesMax)), 'TOO_LARGE');
      expect(access.writes.size).to.equal(0);
      expect(access.reads.size).to.equal(0);
    });

    it('rejects a key over keyBytesMax with TOO_LARGE and writes nothing', async () => {
      const { access, tree } = await multiLevelTree(40);
      await expectCode(tree.put('k'.repeat(limits.keyBytesMax), 1), 'TOO_LARGE');
      expect(access.writes.size).to.equal(0);
    });

    it('rejects a value nested deeper than jsonDepthMax with TOO_LARGE', async () => {
      const { access, tree } = newTree();
      access.resetTracking();
      let deep: Json = 1;
      for (let i = 0; i < limits.jsonDepthMax + 1; i++) deep = [deep];
      await expectCode(tree.put('deep', deep), 'TOO_LARGE');
      expect(access.writes.size).to.equal(0);
    });

    it('accepts a value nested exactly jsonDepthMax deep, and refuses one member deeper', async () => {
      const nest = (depth: number, leaf: Json): Json => {
        let value = leaf;
        for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { k: value };
        return value;
      };
      const { tree } = newTree();
      // jsonDepth counts a scalar as 0 and each container around it as one more level.
      await tree.put('scalar', nest(limits.jsonDepthMax, 1));
      await tree.put('empty', nest(limits.jsonDepthMax, []));
      await tree.put('dropped', nest(limits.jsonDepthMax, { gone: undefined } as unknown as Json));
      expect(await tree.get('dropped')).to.deep.equal(nest(limits.jsonDepthMax, {}));
      await expectCode(tree.put('deeper', nest(limits.jsonDepthMax + 1, 1)), 'TOO_LARGE');
      await expectCode(
        tree.put('null', nest(limits.jsonDepthMax, [undefined] as unknown as Json)),
        'TOO_LARGE',
      );
    });

    it('stores what parsing the canonical encoding of the value gives', async () => {
      const rng = new SeededRng(0x5704e);
      const keys = ['b', 'a', '10', '2', '__proto__', 'ü', '\ud83d\ude00', 'constructor', ''];
      const random = (depth: number): unknown => {
        const pick = rng.int(depth > 3 ? 6 : 9);
        switch (pick) {
          case 0:
            return null;
          case 1:
            return rng.int(2) === 0;
          case 2:
            return [0, -0, 1.5, -7, 1e21, 2 ** 53, 5e-324][rng.int(7)];
          case 3:
          case 4:
            return ['', 'x', 'é', '\ud800', '"quote"', 'line\nbreak'][rng.int(6)];
          case 5:
            return undefined;
          case 6:
          case 7: {
            const out: Record<string, unknown> = {};
            for (let i = rng.int(5); i > 0; i--) {
              const key = keys[rng.int(keys.length)]!;
              Object.defineProperty(out, key, {
                value: random(depth + 1),
                enumerable: true,
                writable: true,
                configurable: true,
              });
            }
            return out;
          }
          default:
            return Array.from({ length: rng.int(4) }, () => random(depth + 1));
        }
      };
      const { tree } = newTree();
      for (let i = 0; i < 400; i++) {
        let value = random(0);
        if (value === undefined) value = [undefined];
        await tree.put(i, value as Json);
        const expected = JSON.parse(canonicalJson(value)) as Json;
        const got = await tree.get(i);
        expect(JSON.stringify(got)).to.equal(JSON.stringify(expected));
        expect(jsonEqual(got, expected)).to.equal(true);
        expect(jsonBytes(got)).to.equal(Buffer.byteLength(canonicalJson(value), 'utf8'));
      }
    });

    it('accepts a value of exactly valueBytesMax bytes', async () => {
      const { tree } = newTree();
      const value = 'x'.repeat(limits.valueBytesMax - 2);
      await tree.put('edge', value);
      expect(await tree.get('edge')).to.equal(value);
    });

    it('measures a value as its canonical encoding: padded to exactly valueBytesMax it is kept, one byte more is refused', async () => {
      const rng = new SeededRng(5);
      const pieces = ['a', '"', '\\', '\n', '\u0001', 'é', '\u{1f600}', '\ud800', '~', ' '];
      const text = (): string =>
        Array.from({ length: rng.int(6) }, () => pieces[rng.int(pieces.length)]!).join('');
      const numbers = [
        0,
        -0,
        7,
        -12,
        10,
        99,
        1e21,
        1.5,
        -2.25e-7,
        Number.MAX_SAFE_INTEGER,
        -Number.MAX_SAFE_INTEGER,
        2 ** 60,
      ];
      const random = (depth: number): unknown => {
        const pick = rng.int(depth > 3 ? 4 : 7);
        if (pick === 0) return numbers[rng.int(numbers.length)];
        if (pick === 1) return text();
        if (pick === 2) return rng.int(2) === 0 ? null : rng.int(2) === 0;
        if (pick === 3) return undefined;
        if (pick === 4) return Array.from({ length: rng.int(4) }, () => random(depth + 1));
        const obj: Record<string, unknown> = {};
        for (let i = rng.int(4); i > 0; i--) obj[text() + String(rng.int(3))] = random(depth + 1);
        return obj;
      };
      for (let n = 0; n < 300; n++) {
        const inner = random(0);
        const value = { inner: inner === undefined ? null : inner, pad: '' } as Record<string, Json>;
        const bytes = Buffer.byteLength(canonicalJson(value), 'utf8');
        value['pad'] = 'x'.repeat(limits.valueBytesMax - bytes);
        const { tree } = newTree();
        await tree.put('fits', value);
        value['pad'] += 'x';
        await expectCode(tree.put('over', value), 'TOO_LARGE');
      }
    });

    it('rejects keys that are not strings or finite numbers with BAD_INPUT', async () => {
      const { tree } = newTree();
      await expectCode(tree.put(Number.NaN, 1), 'BAD_INPUT');
      await expectCode(tree.put(Number.POSITIVE_INFINITY, 1), 'BAD_INPUT');
      await expectCode(tree.get(true as unknown as string), 'BAD_INPUT');
    });

    it('rejects values that are not JSON with BAD_INPUT', async () => {
      const { tree } = newTree();
      await expectCode(tree.put('u', undefined as unknown as Json), 'BAD_INPUT');
      await expectCode(tree.put('nan', { n: Number.NaN }), 'BAD_INPUT');
    });

    it('rejects a range with two lower bounds or a negative limit with BAD_INPUT', async () => {
      const { tree } = newTree();
      await expectCode(collect(tree, { gte: 1, gt: 2 }), 'BAD_INPUT');
      await expectCode(collect(tree, { lte: 1, lt: 2 }), 'BAD_INPUT');
      await expectCode(collect(tree, { limit: -1 }), 'BAD_INPUT');
      await expectCode(collect(tree, { limit: 1.5 }), 'BAD_INPUT');
    });
  });
});
