import { expect } from 'chai';
import { jsonBytes, type Json } from '../../../src/engine/base/codec.js';
import type { BlockId } from '../../../src/engine/base/ids.js';
import { limits } from '../../../src/engine/base/limits.js';
import { SeededRng } from '../../../src/engine/base/rng.js';
import { blockTypes } from '../../../src/engine/storage/block.js';
import { BTree, type TreeEntry, type TreeRange } from '../../../src/engine/collections/btree/btree.js';
import { compareKeys, type TreeKeyValue } from '../../../src/engine/collections/btree/keys.js';
import { MemoryBlockAccess } from '../../helpers/memory-block-access.js';

const collection = 'prop';

interface FanOut {
  readonly leafEntriesMax: number;
  readonly branchChildrenMax: number;
  /** When set, leaves also split by bytes; fill is then only checked as "never empty". */
  readonly leafBytesMax?: number;
}

/** Seeds to run; OPTIMYSTIC_SEED replays one. */
function seeds(defaults: number[]): number[] {
  const fromEnv = process.env.OPTIMYSTIC_SEED;
  return fromEnv === undefined ? defaults : [Number(fromEnv)];
}

/**
 * Walks the whole tree from the root and checks every structural invariant; returns the entries in
 * key order. `where` names the seed and step, so a failure says how to replay it.
 */
function checkStructure(
  access: MemoryBlockAccess,
  rootId: BlockId,
  fanOut: FanOut,
  where: string,
): TreeEntry[] {
  const reachable = new Set<BlockId>();
  const entries: TreeEntry[] = [];
  const leafDepths = new Set<number>();
  const fail = (message: string): never => expect.fail(`${where}: ${message}`);
  const check = (condition: boolean, message: () => string): void => {
    if (!condition) fail(message());
  };

  const visit = (
    id: BlockId,
    depth: number,
    low: TreeKeyValue | undefined,
    high: TreeKeyValue | undefined,
  ): void => {
    const block = access.blocks.get(id);
    if (block === undefined) return fail(`block ${id} is referenced but missing`);
    check(block.header.id === id, () => `block stored as ${id} says it is ${block.header.id}`);
    check(!reachable.has(id), () => `block ${id} reached twice`);
    reachable.add(id);
    check(
      block.header.collection === collection,
      () => `block ${id} of collection ${block.header.collection}`,
    );
    check(jsonBytes(block) <= limits.blockBytesMax, () => `block ${id} over blockBytesMax`);
    const isRoot = id === rootId;
    const inBounds = (key: TreeKeyValue): boolean =>
      (low === undefined || compareKeys(key, low) >= 0) && (high === undefined || compareKeys(key, high) < 0);

    if (Array.isArray(block.entries)) {
      check(
        isRoot || block.header.type === blockTypes.treeLeaf,
        () => `leaf ${id} has type ${block.header.type}`,
      );
      const leaf = block.entries as TreeEntry[];
      leafDepths.add(depth);
      check(leaf.length <= fanOut.leafEntriesMax, () => `leaf ${id} over leafEntriesMax: ${leaf.length}`);
      const bytesMax = fanOut.leafBytesMax;
      if (bytesMax !== undefined && leaf.length > 1) {
        check(jsonBytes(leaf) <= bytesMax, () => `leaf ${id} over leafBytesMax: ${jsonBytes(leaf)}`);
      }
      if (!isRoot && bytesMax === undefined) {
        check(2 * leaf.length >= fanOut.leafEntriesMax, () => `leaf ${id} under half full: ${leaf.length}`);
      }
      check(isRoot || leaf.length > 0, () => `non-root leaf ${id} is empty`);
      leaf.forEach(([key], i) => {
        check(inBounds(key), () => `key ${String(key)} outside its leaf's range`);
        check(i === 0 || compareKeys(leaf[i - 1]![0], key) < 0, () => `leaf ${id} not sorted at ${i}`);
      });
      entries.push(...leaf);
      return;
    }

    check(
      isRoot || block.header.type === blockTypes.treeBranch,
      () => `branch ${id} has type ${block.header.type}`,
    );
    const keys = block.keys as TreeKeyValue[];
    const children = block.children as BlockId[];
    check(
      children.length === keys.length + 1,
      () => `branch ${id} has ${keys.length} keys, ${children.length} children`,
    );
    check(children.length <= fanOut.branchChildrenMax, () => `branch ${id} over branchChildrenMax`);
    if (isRoot) check(children.length >= 2, () => `root branch with one child`);
    else check(2 * children.length >= fanOut.branchChildrenMax, () => `branch ${id} under half full`);
    keys.forEach((key, i) => {
      check(inBounds(key), () => `separator ${String(key)} outside its branch's range`);
      check(i === 0 || compareKeys(keys[i - 1]!, key) < 0, () => `branch ${id} not sorted at ${i}`);
    });
    children.forEach((child, i) =>
      visit(child, depth + 1, i === 0 ? low : keys[i - 1], i < keys.length ? keys[i] : high),
    );
  };

  visit(rootId, 0, undefined, undefined);
  expect(leafDepths.size, `${where}: leaves at depths ${[...leafDepths].join(',')}`).to.be.at.most(1);
  const orphans = [...access.blocks.keys()].filter((id) => !reachable.has(id));
  expect(orphans, `${where}: blocks not reachable from the root`).to.deep.equal([]);
  return entries;
}

/** The model: entries sorted by key. */
class SortedModel {
  readonly entries: TreeEntry[] = [];

  private find(key: TreeKeyValue): { index: number; found: boolean } {
    let low = 0;
    let high = this.entries.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (compareKeys(this.entries[middle]![0], key) < 0) low = middle + 1;
      else high = middle;
    }
    const entry = this.entries[low];
    return { index: low, found: entry !== undefined && compareKeys(entry[0], key) === 0 };
  }

  get(key: TreeKeyValue): Json | undefined {
    const { index, found } = this.find(key);
    return found ? this.entries[index]![1] : undefined;
  }

  put(key: TreeKeyValue, value: Json): void {
    const { index, found } = this.find(key);
    this.entries.splice(index, found ? 1 : 0, [key, value]);
  }

  delete(key: TreeKeyValue): boolean {
    const { index, found } = this.find(key);
    if (found) this.entries.splice(index, 1);
    return found;
  }

  scan(range: TreeRange): TreeEntry[] {
    const inRange = this.entries.filter(
      ([key]) =>
        (range.gte === undefined || compareKeys(key, range.gte) >= 0) &&
        (range.gt === undefined || compareKeys(key, range.gt) > 0) &&
        (range.lte === undefined || compareKeys(key, range.lte) <= 0) &&
        (range.lt === undefined || compareKeys(key, range.lt) < 0),
    );
    if (range.reverse === true) inRange.reverse();
    return range.limit === undefined ? inRange : inRange.slice(0, range.limit);
  }
}

const oddStrings = ['', 'a', 'A', 'z', '\u00e9', '\uffff', '\ud83d\ude00', 'k', 'k0', 'k00'];

function randomKey(rng: SeededRng, domain: number): TreeKeyValue {
  const roll = rng.int(20);
  if (roll === 0) return oddStrings[rng.int(oddStrings.length)]!;
  if (roll === 1) return rng.int(domain) - domain / 2 + 0.5;
  if (roll < 11) return rng.int(domain);
  return `k${rng.int(domain)}`;
}

function randomValue(rng: SeededRng, step: number, bytesMax: number | undefined): Json {
  if (bytesMax !== undefined) return 'x'.repeat(rng.int(rng.int(4) === 0 ? bytesMax : bytesMax / 4));
  switch (rng.int(4)) {
    case 0:
      return step;
    case 1:
      return `v${step}`;
    case 2:
      return { step, tag: ['x', null, true] };
    default:
      return null;
  }
}

function randomRange(rng: SeededRng, domain: number): TreeRange {
  const range: { -readonly [K in keyof TreeRange]: TreeRange[K] } = {};
  const lower = rng.int(3);
  if (lower === 1) range.gte = randomKey(rng, domain);
  if (lower === 2) range.gt = randomKey(rng, domain);
  const upper = rng.int(3);
  if (upper === 1) range.lte = randomKey(rng, domain);
  if (upper === 2) range.lt = randomKey(rng, domain);
  if (rng.int(2) === 0) range.reverse = true;
  if (rng.int(2) === 0) range.limit = rng.int(25);
  return range;
}

async function collect(tree: BTree, range: TreeRange): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  for await (const entry of tree.entries(range)) out.push(entry);
  return out;
}

interface Run {
  readonly seed: number;
  readonly fanOut: FanOut;
  readonly steps: number;
  readonly domain: number;
  readonly checkEvery: number;
}

async function runAgainstModel({ seed, fanOut, steps, domain, checkEvery }: Run): Promise<void> {
  const rng = new SeededRng(seed);
  const access = new MemoryBlockAccess(new SeededRng(seed ^ 0x5eed));
  const rootId = BTree.create(access, collection);
  const tree = new BTree(access, rootId, collection, fanOut);
  const model = new SortedModel();
  const replay = `OPTIMYSTIC_SEED=${seed}`;

  for (let step = 0; step < steps; step++) {
    const where = `${replay} step ${step}`;
    // Grow for the first half, then shrink, so both splits and merges get exercised deeply.
    const growing = step < steps / 2;
    const roll = rng.int(100);
    if (roll < (growing ? 55 : 25)) {
      const key = randomKey(rng, domain);
      const value = randomValue(rng, step, fanOut.leafBytesMax);
      await tree.put(key, value);
      model.put(key, value);
    } else if (roll < 80) {
      const key = randomKey(rng, domain);
      expect(await tree.delete(key), `${where}: delete ${String(key)}`).to.equal(model.delete(key));
    } else if (roll < 90) {
      const key = randomKey(rng, domain);
      expect(await tree.get(key), `${where}: get ${String(key)}`).to.deep.equal(model.get(key));
      expect(await tree.has(key), `${where}: has ${String(key)}`).to.equal(model.get(key) !== undefined);
    } else if (roll < 98) {
      const range = randomRange(rng, domain);
      expect(await collect(tree, range), `${where}: scan ${JSON.stringify(range)}`).to.deep.equal(
        model.scan(range),
      );
    } else {
      expect(await tree.first(), `${where}: first`).to.deep.equal(model.entries[0]);
      expect(await tree.last(), `${where}: last`).to.deep.equal(model.entries.at(-1));
    }
    if (step % checkEvery === checkEvery - 1) {
      expect(checkStructure(access, rootId, fanOut, where), `${where}: contents`).to.deep.equal(
        model.entries,
      );
    }
  }

  // Delete everything that is left: the tree must end as one empty root leaf.
  for (const [key] of model.entries.slice()) {
    expect(await tree.delete(key), `${replay}: final delete ${String(key)}`).to.equal(true);
    model.delete(key);
  }
  expect(tree.rootId, `${replay}: root id`).to.equal(rootId);
  expect(checkStructure(access, rootId, fanOut, `${replay} after deleting all`)).to.deep.equal([]);
  expect([...access.blocks.keys()], `${replay}: only the root is left`).to.deep.equal([rootId]);
  expect(access.blocks.get(rootId)?.entries, `${replay}: root is an empty leaf`).to.deep.equal([]);
}

describe('BTree against a sorted-array model', function () {
  this.timeout(120_000);

  for (const seed of seeds([1, 2, 3, 4, 5, 6])) {
    it(`matches the model with fan-out 4/4 (seed ${seed})`, async () => {
      await runAgainstModel({
        seed,
        fanOut: { leafEntriesMax: 4, branchChildrenMax: 4 },
        steps: 4000,
        domain: 400,
        checkEvery: 25,
      });
    });
  }

  for (const seed of seeds([11, 12])) {
    it(`matches the model with odd fan-out 5/3 (seed ${seed})`, async () => {
      await runAgainstModel({
        seed,
        fanOut: { leafEntriesMax: 5, branchChildrenMax: 3 },
        steps: 3000,
        domain: 300,
        checkEvery: 25,
      });
    });
  }

  for (const seed of seeds([31, 32, 33])) {
    it(`matches the model when large values split leaves by bytes (seed ${seed})`, async () => {
      await runAgainstModel({
        seed,
        fanOut: { leafEntriesMax: 16, branchChildrenMax: 4, leafBytesMax: 1500 },
        steps: 3000,
        domain: 300,
        checkEvery: 25,
      });
    });
  }

  for (const seed of seeds([21, 22])) {
    it(`matches the model with fan-out 64/64 (seed ${seed})`, async () => {
      await runAgainstModel({
        seed,
        fanOut: { leafEntriesMax: 64, branchChildrenMax: 64 },
        steps: 20_000,
        domain: 20_000,
        checkEvery: 1000,
      });
    });
  }
});
