import { AssertionFailure, assert } from '../../base/assert.js';
import { jsonBytes, jsonEqual, sortKeys, type Json } from '../../base/codec.js';
import { EngineError } from '../../base/errors.js';
import type { BlockId } from '../../base/ids.js';
import { limits } from '../../base/limits.js';
import { blockTypes, type Block, type BlockHeader, type BlockOp } from '../../storage/block.js';
import type { BlockAccess } from '../block-access.js';
import { compareKeys, type TreeKeyValue } from './keys.js';

/**
 * A B+tree stored in blocks.
 *
 * Leaf blocks hold `entries`: `[key, value]` pairs sorted by key. Branch blocks hold `keys` and
 * `children`, with `children.length === keys.length + 1`: child i holds keys below keys[i], child i+1
 * keys at or above it. There are no sibling links (a link is one more block a split or merge would
 * write, so one more source of write conflicts); traversals keep the path they came down instead.
 *
 * The root's id never changes, because the collection header points at it for good. A root split
 * moves the root's content into new children and turns the root into a branch over them; a root
 * branch left with one child takes that child's content and the child is deleted. Since block ops
 * cannot change a header, the root's header type stays what it was created as (a leaf); for every
 * block the body says what it is (`entries` for a leaf, `keys` and `children` for a branch), and for
 * blocks other than the root the header type agrees with it.
 *
 * Every block read goes through `BlockAccess.get`, so a transaction's read set holds exactly the
 * blocks a result depends on: a lookup of an absent key reads the leaf that would hold it, and a scan
 * reads the leaves it covers and no more. Writes touch as few blocks as they can: a put into a leaf
 * with room is one splice on that leaf; only splits and merges touch parents and siblings.
 *
 * Operations on one tree must not overlap: await each before starting the next (a transaction runs
 * its actions in order), since each computes its writes from the blocks it read. Likewise the tree
 * must not be changed while a cursor over it is open: a cursor keeps the branches it came down
 * through and does not see later changes to them.
 */

export type TreeEntry = [TreeKeyValue, Json];

/** Settings of one tree; each defaults to its bound in base/limits.ts. */
export interface BTreeInit {
  /** A leaf holding more entries than this splits. */
  readonly leafEntriesMax?: number;
  /** A branch with more children than this splits. */
  readonly branchChildrenMax?: number;
  /** A leaf whose entries encode to more bytes than this splits (unless it holds one entry). */
  readonly leafBytesMax?: number;
}

/** A key range. At most one lower bound (gte or gt) and one upper bound (lte or lt). */
export interface TreeRange {
  readonly gte?: TreeKeyValue;
  readonly gt?: TreeKeyValue;
  readonly lte?: TreeKeyValue;
  readonly lt?: TreeKeyValue;
  /** Descending key order. */
  readonly reverse?: boolean;
  /** At most this many entries. */
  readonly limit?: number;
}

/** Walks a range one entry at a time, reading each leaf only when it gets there. */
export interface TreeCursor {
  /** The next entry in range, or undefined once the range is exhausted. */
  next(): Promise<TreeEntry | undefined>;
}

interface LeafBody {
  readonly kind: 'leaf';
  readonly entries: readonly TreeEntry[];
}

interface BranchBody {
  readonly kind: 'branch';
  readonly keys: readonly TreeKeyValue[];
  readonly children: readonly BlockId[];
}

type NodeBody = LeafBody | BranchBody;

/** A block of the tree as read: its header and its parsed body. */
interface TreeNode<B extends NodeBody = NodeBody> {
  readonly id: BlockId;
  readonly header: BlockHeader;
  readonly body: B;
  /** The block as read, which `body` was parsed from. */
  readonly block: Block;
}

/** One step of a descent: the branch passed through and the child taken. */
interface PathFrame {
  readonly node: TreeNode<BranchBody>;
  readonly index: number;
}

/** Bound on descent depth. Even at fan-out 3 a tree this deep would hold more keys than exist. */
const treeDepthMax = 64;
/** Room a block's field names and braces take beyond its header and body values. */
const blockFramingBytes = 64;
/** Bisection steps when searching the most even split; far below one entry's share of any piece. */
const splitSearchSteps = 40;

export class BTree {
  private readonly leafEntriesMax: number;
  private readonly branchChildrenMax: number;
  private readonly leafBytesMax: number;
  /** Branch blocks already parsed by this tree (blocks are immutable: a change makes a new one). */
  private branchNodes: WeakMap<Block, TreeNode> | undefined;

  /** Inserts an empty root leaf for a new tree and returns its id (`rootId` if given). */
  static create(access: BlockAccess, collection: string, rootId?: BlockId): BlockId {
    const id = rootId ?? access.newId();
    access.insert({ header: { id, type: blockTypes.treeLeaf, collection }, entries: [] });
    return id;
  }

  constructor(
    private readonly access: BlockAccess,
    readonly rootId: BlockId,
    readonly collection: string,
    init: BTreeInit = {},
  ) {
    this.leafEntriesMax = init.leafEntriesMax ?? limits.treeLeafEntriesMax;
    this.branchChildrenMax = init.branchChildrenMax ?? limits.treeBranchChildrenMax;
    this.leafBytesMax = init.leafBytesMax ?? limits.treeLeafBytesMax;
    assert(
      Number.isInteger(this.leafEntriesMax) && this.leafEntriesMax >= 2,
      'leafEntriesMax must be an integer >= 2',
    );
    assert(
      Number.isInteger(this.branchChildrenMax) && this.branchChildrenMax >= 3,
      'branchChildrenMax must be an integer >= 3',
    );
    assert(this.leafBytesMax > 0 && this.leafBytesMax <= limits.blockBytesMax, 'leafBytesMax out of range');
  }

  /** The value stored under `key`, or undefined. The value is shared with the block: do not mutate it. */
  async get(key: TreeKeyValue): Promise<Json | undefined> {
    const { leaf } = await this.descend(checkKey(key));
    const index = lowerBound(leaf.body.entries, key);
    const entry = leaf.body.entries[index];
    return entry !== undefined && compareKeys(entry[0], key) === 0 ? entry[1] : undefined;
  }

  async has(key: TreeKeyValue): Promise<boolean> {
    const { leaf } = await this.descend(checkKey(key));
    const entry = leaf.body.entries[lowerBound(leaf.body.entries, key)];
    return entry !== undefined && compareKeys(entry[0], key) === 0;
  }

  /**
   * Inserts or replaces. Throws TOO_LARGE (key or value over its limit) or BAD_INPUT (not a valid key
   * or JSON value) before changing anything. Values are stored in canonical JSON form.
   */
  async put(key: TreeKeyValue, value: Json): Promise<void> {
    const { key: storedKey, bytes: keyBytes } = checkStorableKey(key);
    const { value: storedValue, bytes: valueBytes } = storableValue(value);
    const { path, leaf } = this.descendHeld(storedKey) ?? (await this.descend(storedKey));
    const entries = leaf.body.entries;
    const count = entries.length;
    const index = lowerBound(entries, storedKey);
    const existing = entries[index];
    const found = existing !== undefined && compareKeys(existing[0], storedKey) === 0;
    if (found && jsonEqual(existing[1], storedValue)) return;

    const entry: TreeEntry = [storedKey, storedValue];
    // `[key,value]`: the key's and the value's encodings, two brackets and a comma.
    const bytes = keyBytes + valueBytes + 3;
    remember(entry, bytes);
    const before = remembered(entries);
    // A leaf this transaction created is changed in place (so `entries` is `next` from here on);
    // any other is copied (copy-on-write).
    let next: TreeEntry[];
    if (this.access.owns?.(leaf.id) === true) {
      next = entries as TreeEntry[];
      if (!found && index === count) next.push(entry);
      else next.splice(index, found ? 1 : 0, entry);
    } else next = entries.toSpliced(index, found ? 1 : 0, entry);
    if (before !== undefined) {
      const comma = count === 0 ? 0 : 1;
      remember(next, before + bytes - (found ? entryBytes(existing) + comma : 0) + comma);
    }
    const op: BlockOp = { op: 'splice', field: 'entries', index, remove: found ? 1 : 0, items: [entry] };
    // Only a replacement by a smaller entry (same key, so a smaller value) can leave a leaf emptier.
    const shrunk = found && bytes < entryBytes(existing);
    const settling = this.settle(path, leaf, { kind: 'leaf', entries: next }, [op], shrunk);
    if (settling !== undefined) await settling;
  }

  /** Removes `key`; false (and nothing written) if it was absent. */
  async delete(key: TreeKeyValue): Promise<boolean> {
    const { path, leaf } = await this.descend(checkKey(key));
    const entries = leaf.body.entries;
    const index = lowerBound(entries, key);
    const existing = entries[index];
    if (existing === undefined || compareKeys(existing[0], key) !== 0) return false;
    const next = entries.slice();
    next.splice(index, 1);
    const op: BlockOp = { op: 'splice', field: 'entries', index, remove: 1, items: [] };
    const settling = this.settle(path, leaf, { kind: 'leaf', entries: next }, [op], true);
    if (settling !== undefined) await settling;
    return true;
  }

  /** Entries in range, in key order (descending with `reverse`), read lazily leaf by leaf. */
  async *entries(range: TreeRange = {}): AsyncGenerator<TreeEntry, void, undefined> {
    const cursor = this.cursor(range);
    for (let entry = await cursor.next(); entry !== undefined; entry = await cursor.next()) yield entry;
  }

  cursor(range: TreeRange = {}): TreeCursor {
    return new RangeCursor(normaliseRange(range), this.rootId, (id) => this.readNode(id));
  }

  async first(): Promise<TreeEntry | undefined> {
    return this.cursor({ limit: 1 }).next();
  }

  async last(): Promise<TreeEntry | undefined> {
    return this.cursor({ reverse: true, limit: 1 }).next();
  }

  // --- descent and reading ---

  /**
   * The descent when the access already holds every block on the path (a transaction putting many
   * keys walks the same few blocks again and again): no wait at all. Undefined when a block on the
   * path must be read; `descend` then goes down again, reading what is missing.
   */
  private descendHeld(key: TreeKeyValue): { path: PathFrame[]; leaf: TreeNode<LeafBody> } | undefined {
    if (this.access.held === undefined) return undefined;
    const path: PathFrame[] = [];
    let node = this.heldNode(this.rootId);
    while (node !== undefined && isBranch(node)) {
      if (path.length >= treeDepthMax)
        throw new AssertionFailure(`tree ${this.rootId} is deeper than ${treeDepthMax}`);
      const index = upperBoundKeys(node.body.keys, key);
      path.push({ node, index });
      node = this.heldNode(node.body.children[index]!);
    }
    return node === undefined ? undefined : { path, leaf: node as TreeNode<LeafBody> };
  }

  private async descend(key: TreeKeyValue): Promise<{ path: PathFrame[]; leaf: TreeNode<LeafBody> }> {
    const path: PathFrame[] = [];
    // Blocks the access already holds are taken without a wait.
    let node = this.heldNode(this.rootId) ?? (await this.readNode(this.rootId));
    while (isBranch(node)) {
      if (path.length >= treeDepthMax)
        throw new AssertionFailure(`tree ${this.rootId} is deeper than ${treeDepthMax}`);
      const index = upperBoundKeys(node.body.keys, key);
      path.push({ node, index });
      const child = node.body.children[index]!;
      node = this.heldNode(child) ?? (await this.readNode(child));
    }
    assert(isLeaf(node), 'descent ends at a leaf');
    return { path, leaf: node };
  }

  private heldNode(id: BlockId): TreeNode | undefined {
    const block = this.access.held?.(id);
    if (block === undefined) return undefined;
    const node = this.nodeOf(id, block);
    // `held` may have read the block just now: a branch only routes, as readNode records.
    if (node.body.kind === 'branch') this.access.routed?.(id);
    return node;
  }

  private async readNode(id: BlockId): Promise<TreeNode> {
    const node = this.nodeOf(id, await this.access.get(id));
    // A branch only routes: a change that moves keys between leaves writes a leaf this read reached.
    if (node.body.kind === 'branch') this.access.routed?.(id);
    return node;
  }

  private nodeOf(id: BlockId, block: Block): TreeNode {
    // A branch changes only at a split or merge below it, so one parsed node serves many descents.
    const known = this.branchNodes?.get(block);
    if (known !== undefined && known.id === id) return known;
    if (block.header.collection !== this.collection)
      throw new AssertionFailure(`block ${id} belongs to ${block.header.collection}`);
    const body = bodyOf(block);
    if (id !== this.rootId) {
      const type = body.kind === 'leaf' ? blockTypes.treeLeaf : blockTypes.treeBranch;
      if (block.header.type !== type)
        throw new AssertionFailure(`block ${id} has type ${block.header.type} but a ${body.kind} body`);
    }
    const node: TreeNode = { id, header: block.header, body, block };
    if (body.kind === 'branch') (this.branchNodes ??= new WeakMap()).set(block, node);
    return node;
  }

  // --- restoring the shape after a change ---

  /**
   * Writes `body` as the new content of `node` (which `ops` turn it into, when given) and restores the
   * tree's shape bottom-up along `path`: an overfull node splits, an underfull one (if it `shrunk`)
   * borrows from or merges with an adjacent sibling under the same parent, and each parent that gains
   * or loses children is settled in turn.
   */
  private settle(
    path: PathFrame[],
    node: TreeNode,
    body: NodeBody,
    ops: readonly BlockOp[] | undefined,
    shrunk: boolean,
    /** The sibling a merge at this step needs, read by the caller (see below). */
    read?: TreeNode,
  ): Promise<void> | undefined {
    // Settles synchronously unless a merge needs a sibling the access does not hold yet: then it
    // returns a promise that reads the sibling and takes up the same step again with it. A change that
    // only grows the tree (a put of a new key) never reads.
    for (;;) {
      const frame = path.at(-1);
      if (frame === undefined) {
        this.settleRoot(node, body, ops);
        return undefined;
      }
      let replaced: TreeNode[];
      let first: number;
      let replacement: { pieces: NodeBody[]; separators: TreeKeyValue[] };
      if (this.overfull(body)) {
        replaced = [node];
        first = frame.index;
        replacement = this.split(body);
      } else if (shrunk && this.underfull(body)) {
        const siblingIndex = frame.index > 0 ? frame.index - 1 : frame.index + 1;
        const siblingId = frame.node.body.children[siblingIndex];
        assert(siblingId !== undefined, `branch ${frame.node.id} has one child`);
        const sibling = read ?? this.heldNode(siblingId);
        if (sibling === undefined) {
          return this.readNode(siblingId).then((found) => this.settle(path, node, body, ops, shrunk, found));
        }
        read = undefined;
        const leftFirst = siblingIndex < frame.index;
        first = Math.min(frame.index, siblingIndex);
        const separator = frame.node.body.keys[first]!;
        const combined = leftFirst
          ? join(sibling.body, separator, body)
          : join(body, separator, sibling.body);
        replaced = leftFirst ? [sibling, node] : [node, sibling];
        replacement = this.overfull(combined) ? this.split(combined) : { pieces: [combined], separators: [] };
      } else {
        this.write(node, body, ops);
        return undefined;
      }
      path.pop();

      const parent = frame.node;
      const { pieces, separators } = replacement;
      const childCount = parent.body.children.length - replaced.length + pieces.length;
      if (path.length === 0 && childCount === 1) {
        // The root is left with one child: it takes that child's content instead.
        for (const old of replaced) this.access.delete(old.id);
        this.write(parent, pieces[0]!, undefined);
        return undefined;
      }
      const ids = pieces.map((piece, i) => {
        const old = replaced[i];
        if (old === undefined) return this.insertNode(piece);
        this.write(old, piece, undefined);
        return old.id;
      });
      for (const old of replaced.slice(pieces.length)) this.access.delete(old.id);

      const keys = parent.body.keys.slice();
      keys.splice(first, replaced.length - 1, ...separators);
      const children = parent.body.children.slice();
      children.splice(first, replaced.length, ...ids);
      node = parent;
      body = { kind: 'branch', keys, children };
      ops = [
        { op: 'splice', field: 'keys', index: first, remove: replaced.length - 1, items: separators },
        { op: 'splice', field: 'children', index: first, remove: replaced.length, items: ids },
      ];
      shrunk = pieces.length < replaced.length;
    }
  }

  /** The root never moves: when it overflows its content moves down into new children. */
  private settleRoot(root: TreeNode, body: NodeBody, ops: readonly BlockOp[] | undefined): void {
    if (!this.overfull(body)) {
      this.write(root, body, ops);
      return;
    }
    const { pieces, separators } = this.split(body);
    const children = pieces.map((piece) => this.insertNode(piece));
    this.write(root, { kind: 'branch', keys: separators, children }, undefined);
  }

  private overfull(body: NodeBody): boolean {
    if (body.kind === 'branch') return body.children.length > this.branchChildrenMax;
    const count = body.entries.length;
    return count > this.leafEntriesMax || (count > 1 && entriesBytes(body.entries) > this.leafBytesMax);
  }

  /** Below half full by every measure. */
  private underfull(body: NodeBody): boolean {
    if (body.kind === 'branch') return 2 * body.children.length < this.branchChildrenMax;
    return (
      2 * body.entries.length < this.leafEntriesMax && 2 * entriesBytes(body.entries) < this.leafBytesMax
    );
  }

  /**
   * Splits an overfull node into the fewest pieces that fit, made as even as possible: the largest
   * piece's load (its fullness by its tightest measure) is as small as it can be.
   */
  private split(body: NodeBody): { pieces: NodeBody[]; separators: TreeKeyValue[] } {
    if (body.kind === 'branch') {
      const ranges = evenCountRanges(body.children.length, this.branchChildrenMax);
      return {
        pieces: ranges.map(([from, to]) => ({
          kind: 'branch',
          keys: body.keys.slice(from, to - 1),
          children: body.children.slice(from, to),
        })),
        separators: ranges.slice(1).map(([from]) => body.keys[from - 1]!),
      };
    }
    const entries = body.entries;
    // Bytes of entries [from, to) encoded as a JSON array: brackets, entries and commas between them.
    const prefixBytes = [0];
    for (const entry of entries) prefixBytes.push(prefixBytes.at(-1)! + entryBytes(entry));
    const load = (from: number, to: number): number =>
      Math.max(
        (to - from) / this.leafEntriesMax,
        (2 + prefixBytes[to]! - prefixBytes[from]! + (to - from - 1)) / this.leafBytesMax,
      );
    // When even the whole leaf's bytes weigh less than one entry's share of the count bound, no range
    // is limited by bytes and the count alone decides.
    const count = entries.length;
    const ranges =
      (2 + prefixBytes[count]! + count - 1) * this.leafEntriesMax <= this.leafBytesMax
        ? evenCountRanges(count, this.leafEntriesMax)
        : evenRanges(count, load);
    return {
      pieces: ranges.map(([from, to]) => ({ kind: 'leaf', entries: entries.slice(from, to) })),
      separators: ranges.slice(1).map(([from]) => entries[from]![0]),
    };
  }

  // --- writing ---

  private insertNode(body: NodeBody): BlockId {
    const id = this.access.newId();
    const type = body.kind === 'leaf' ? blockTypes.treeLeaf : blockTypes.treeBranch;
    const header: BlockHeader = { id, type, collection: this.collection };
    this.assertFits(header, body);
    this.access.insert({ header, ...fieldsOf(body) });
    return id;
  }

  /** Updates `node` to hold `body`, with `ops` when given, else with ops that set its fields. */
  private write(node: TreeNode, body: NodeBody, ops: readonly BlockOp[] | undefined): void {
    this.assertFits(node.header, body);
    if (ops === undefined) {
      this.access.update(node.id, rewriteOps(node.body, body));
      return;
    }
    // The ops splice the fields of the node's kind into `body`'s, so the access need not apply them.
    assert(node.body.kind === body.kind, 'ops change a node within its kind');
    // A leaf changed in place (see put) already holds its new entries.
    const inPlace = body.kind === 'leaf' && node.body.kind === 'leaf' && body.entries === node.body.entries;
    this.access.update(node.id, ops, inPlace ? node.block : { ...node.block, ...fieldsOf(body) });
  }

  private assertFits(header: BlockHeader, body: NodeBody): void {
    const fixed = headerBytes(header) + blockFramingBytes;
    if (body.kind === 'branch') {
      // A branch is written at every split below it; most are far under the bound, which a cheap
      // upper bound on their size shows without encoding them.
      if (fixed + branchBytesBound(body) <= limits.blockBytesMax) return;
    }
    const bytes =
      fixed +
      (body.kind === 'leaf' ? entriesBytes(body.entries) : jsonBytes(body.keys) + jsonBytes(body.children));
    assert(bytes <= limits.blockBytesMax, `tree block ${header.id} would be ${bytes} bytes`);
  }
}

/**
 * Encoded sizes are memoised on the entry or entries array itself, under a symbol key: JSON and
 * canonicalJson ignore symbol keys, and a copy of an array (slice, spread, structuredClone) does not
 * carry it. Entries are never changed; a leaf's array is changed only by a put into a leaf the
 * transaction owns, which sets the array's new size with the change, so a memo never goes stale. A
 * side table (a WeakMap) did the same at several times the cost per put, most of it in the garbage
 * collector.
 */
const bytesMemo: unique symbol = Symbol('encodedBytes');

interface Measured {
  [bytesMemo]?: number;
}

/** Memos of objects that cannot take one (a frozen block's entries, as tests hold them). */
const frozenBytesMemo = new WeakMap<object, number>();

function remember(value: object, bytes: number): void {
  if (Object.isExtensible(value)) (value as Measured)[bytesMemo] = bytes;
  else frozenBytesMemo.set(value, bytes);
}

function remembered(value: object): number | undefined {
  return (value as Measured)[bytesMemo] ?? frozenBytesMemo.get(value);
}

/** Encoded size of one leaf entry: a put re-measures only the entry it adds, not the whole leaf. */
function entryBytes(entry: TreeEntry): number {
  let bytes = remembered(entry);
  if (bytes === undefined) {
    bytes = jsonBytes(entry);
    remember(entry, bytes);
  }
  return bytes;
}

/**
 * An upper bound on the encoded size of a branch's keys and children arrays: a string's JSON text is
 * at most six bytes per UTF-16 unit (an escape like \u001f) plus its quotes, a number's at most 24
 * characters, and each item is followed by at most a comma (or the closing bracket).
 */
function branchBytesBound(body: BranchBody): number {
  let bytes = 2;
  for (const key of body.keys) bytes += (typeof key === 'string' ? 6 * key.length + 2 : 24) + 1;
  for (const child of body.children) bytes += 6 * child.length + 3;
  return bytes + 2;
}

/** Encoded size of a block header, memoised per header object (a block keeps its header for good). */
const headerBytesCache = new WeakMap<BlockHeader, number>();

function headerBytes(header: BlockHeader): number {
  let bytes = headerBytesCache.get(header);
  if (bytes === undefined) {
    bytes = jsonBytes(header);
    headerBytesCache.set(header, bytes);
  }
  return bytes;
}

/**
 * Encoded size of a leaf's entries array: brackets, entries and the commas between them. Measured
 * entry by entry only when a leaf is first read; a put derives its new array's size from the old one's.
 */
function entriesBytes(entries: readonly TreeEntry[]): number {
  let bytes = remembered(entries);
  if (bytes === undefined) {
    bytes = 2 + Math.max(0, entries.length - 1);
    for (const entry of entries) bytes += entryBytes(entry);
    remember(entries, bytes);
  }
  return bytes;
}

// --- cursor ---

interface RangeBound {
  readonly key: TreeKeyValue;
  readonly inclusive: boolean;
}

interface NormalisedRange {
  readonly lower: RangeBound | undefined;
  readonly upper: RangeBound | undefined;
  readonly reverse: boolean;
  readonly limit: number;
}

class RangeCursor implements TreeCursor {
  /** Branches from the root down to the current leaf, with the child taken at each. */
  private readonly stack: Array<{ body: BranchBody; index: number }> = [];
  private entries: readonly TreeEntry[] = [];
  private position = 0;
  private state: 'unopened' | 'open' | 'done' = 'unopened';
  private remaining: number;

  constructor(
    private readonly range: NormalisedRange,
    private readonly rootId: BlockId,
    private readonly read: (id: BlockId) => Promise<TreeNode>,
  ) {
    this.remaining = range.limit;
  }

  async next(): Promise<TreeEntry | undefined> {
    if (this.state === 'unopened') {
      this.state = this.remaining > 0 ? 'open' : 'done';
      if (this.state === 'open') await this.seek();
    }
    // Each pass either returns or moves to a leaf not visited before, so the tree's size bounds it.
    while (this.state === 'open') {
      const entry = this.entries[this.position];
      if (entry === undefined) {
        if (!(await (this.range.reverse ? this.stepBack() : this.stepForward()))) this.state = 'done';
        continue;
      }
      if (!(this.range.reverse ? this.aboveLower(entry[0]) : this.belowUpper(entry[0]))) {
        this.state = 'done';
        break;
      }
      this.position += this.range.reverse ? -1 : 1;
      this.remaining -= 1;
      if (this.remaining === 0) this.state = 'done';
      return [entry[0], entry[1]];
    }
    return undefined;
  }

  /** Goes down to the leaf where the range starts. */
  private async seek(): Promise<void> {
    const { lower, upper, reverse } = this.range;
    const bound = reverse ? upper : lower;
    let node = await this.read(this.rootId);
    while (isBranch(node)) {
      assert(this.stack.length < treeDepthMax, `tree ${this.rootId} is deeper than ${treeDepthMax}`);
      const { keys, children } = node.body;
      let index: number;
      if (bound === undefined) index = reverse ? children.length - 1 : 0;
      // An exclusive upper bound needs the child holding the keys just below it, not the bound itself.
      else if (reverse && !bound.inclusive) index = lowerBoundKeys(keys, bound.key);
      else index = upperBoundKeys(keys, bound.key);
      this.stack.push({ body: node.body, index });
      node = await this.read(children[index]!);
    }
    assert(isLeaf(node), 'descent ends at a leaf');
    const entries = node.body.entries;
    this.entries = entries;
    if (bound === undefined) this.position = reverse ? entries.length - 1 : 0;
    else if (reverse) {
      this.position = (bound.inclusive ? upperBound(entries, bound.key) : lowerBound(entries, bound.key)) - 1;
    } else this.position = bound.inclusive ? lowerBound(entries, bound.key) : upperBound(entries, bound.key);
  }

  /** Moves to the next leaf; false when there is none or it can only hold keys past the range. */
  private async stepForward(): Promise<boolean> {
    let top = this.stack.at(-1);
    while (top !== undefined && top.index + 1 >= top.body.children.length) {
      this.stack.pop();
      top = this.stack.at(-1);
    }
    if (top === undefined) return false;
    // Every key in the next subtree is at or above this separator.
    if (!this.belowUpper(top.body.keys[top.index]!)) return false;
    top.index += 1;
    await this.descendEdge(top.body.children[top.index]!, 'first');
    return true;
  }

  /** Moves to the previous leaf; false when there is none or it can only hold keys before the range. */
  private async stepBack(): Promise<boolean> {
    let top = this.stack.at(-1);
    while (top !== undefined && top.index === 0) {
      this.stack.pop();
      top = this.stack.at(-1);
    }
    if (top === undefined) return false;
    // Every key in the previous subtree is below this separator.
    const separator = top.body.keys[top.index - 1]!;
    const lower = this.range.lower;
    if (lower !== undefined && compareKeys(separator, lower.key) <= 0) return false;
    top.index -= 1;
    await this.descendEdge(top.body.children[top.index]!, 'last');
    return true;
  }

  private async descendEdge(id: BlockId, edge: 'first' | 'last'): Promise<void> {
    let node = await this.read(id);
    while (isBranch(node)) {
      assert(this.stack.length < treeDepthMax, `tree ${this.rootId} is deeper than ${treeDepthMax}`);
      const index = edge === 'first' ? 0 : node.body.children.length - 1;
      this.stack.push({ body: node.body, index });
      node = await this.read(node.body.children[index]!);
    }
    assert(isLeaf(node), 'descent ends at a leaf');
    this.entries = node.body.entries;
    this.position = edge === 'first' ? 0 : node.body.entries.length - 1;
  }

  private belowUpper(key: TreeKeyValue): boolean {
    const upper = this.range.upper;
    if (upper === undefined) return true;
    const order = compareKeys(key, upper.key);
    return order < 0 || (order === 0 && upper.inclusive);
  }

  private aboveLower(key: TreeKeyValue): boolean {
    const lower = this.range.lower;
    if (lower === undefined) return true;
    const order = compareKeys(key, lower.key);
    return order > 0 || (order === 0 && lower.inclusive);
  }
}

function normaliseRange(range: TreeRange): NormalisedRange {
  if (range.gte !== undefined && range.gt !== undefined)
    throw new EngineError('BAD_INPUT', 'give gte or gt, not both');
  if (range.lte !== undefined && range.lt !== undefined)
    throw new EngineError('BAD_INPUT', 'give lte or lt, not both');
  const limit = range.limit ?? Number.POSITIVE_INFINITY;
  if (limit !== Number.POSITIVE_INFINITY && !(Number.isInteger(limit) && limit >= 0)) {
    throw new EngineError(
      'BAD_INPUT',
      `a scan limit must be a whole number >= 0, not ${String(range.limit)}`,
    );
  }
  const bound = (
    inclusive: TreeKeyValue | undefined,
    exclusive: TreeKeyValue | undefined,
  ): RangeBound | undefined => {
    if (inclusive !== undefined) return { key: checkKey(inclusive), inclusive: true };
    if (exclusive !== undefined) return { key: checkKey(exclusive), inclusive: false };
    return undefined;
  };
  return {
    lower: bound(range.gte, range.gt),
    upper: bound(range.lte, range.lt),
    reverse: range.reverse ?? false,
    limit,
  };
}

// --- blocks and bodies ---

function bodyOf(block: Block): NodeBody {
  if (Array.isArray(block.entries)) return { kind: 'leaf', entries: block.entries as TreeEntry[] };
  const { keys, children } = block;
  if (!Array.isArray(keys) || !Array.isArray(children))
    throw new AssertionFailure(`block ${block.header.id} is not a tree node`);
  if (children.length !== keys.length + 1)
    throw new AssertionFailure(`branch ${block.header.id} has ${children.length} children`);
  return { kind: 'branch', keys: keys as TreeKeyValue[], children: children as BlockId[] };
}

function fieldsOf(body: NodeBody): Record<string, unknown> {
  return body.kind === 'leaf' ? { entries: body.entries } : { keys: body.keys, children: body.children };
}

/** Ops that replace a node's body with another, clearing fields of the old kind when it changes. */
function rewriteOps(from: NodeBody, to: NodeBody): BlockOp[] {
  const ops: BlockOp[] = [];
  if (from.kind !== to.kind) {
    for (const field of Object.keys(fieldsOf(from))) ops.push({ op: 'set', field, value: undefined });
  }
  for (const [field, value] of Object.entries(fieldsOf(to))) ops.push({ op: 'set', field, value });
  return ops;
}

/** Two adjacent siblings as one node; a branch pair takes back the separator between them. */
function join(left: NodeBody, separator: TreeKeyValue, right: NodeBody): NodeBody {
  if (left.kind === 'leaf') {
    assert(right.kind === 'leaf', 'siblings are of one kind');
    return { kind: 'leaf', entries: [...left.entries, ...right.entries] };
  }
  assert(right.kind === 'branch', 'siblings are of one kind');
  return {
    kind: 'branch',
    keys: [...left.keys, separator, ...right.keys],
    children: [...left.children, ...right.children],
  };
}

function isLeaf(node: TreeNode): node is TreeNode<LeafBody> {
  return node.body.kind === 'leaf';
}

function isBranch(node: TreeNode): node is TreeNode<BranchBody> {
  return node.body.kind === 'branch';
}

/**
 * Cuts items [0, count) into the fewest consecutive ranges whose load is at most 1 (a single item may
 * exceed it), then evens them out: the bound on each range's load is lowered as far as it goes
 * without needing more ranges. `load(from, to)` must not decrease as a range grows.
 */
function evenRanges(count: number, load: (from: number, to: number) => number): Array<[number, number]> {
  const greedy = (bound: number): Array<[number, number]> => {
    const ranges: Array<[number, number]> = [];
    for (let from = 0; from < count;) {
      let to = from + 1;
      while (to < count && load(from, to + 1) <= bound) to += 1;
      ranges.push([from, to]);
      from = to;
    }
    return ranges;
  };
  const fewest = greedy(1).length;
  let low = 0;
  let high = 1;
  for (let step = 0; step < splitSearchSteps; step++) {
    const middle = (low + high) / 2;
    if (greedy(middle).length <= fewest) high = middle;
    else low = middle;
  }
  return greedy(high);
}

/**
 * evenRanges for a load that is the count of items over `max`: ceil(count / fewest) items per range
 * from the left, the last range shorter. That is exactly what evenRanges finds for such a load, without
 * its search (which measures every range forty times over).
 */
function evenCountRanges(count: number, max: number): Array<[number, number]> {
  const size = Math.ceil(count / Math.ceil(count / max));
  const ranges: Array<[number, number]> = [];
  for (let from = 0; from < count; from += size) ranges.push([from, Math.min(count, from + size)]);
  return ranges;
}

// --- keys and values ---

/** First index whose entry key is >= key. */
function lowerBound(entries: readonly TreeEntry[], key: TreeKeyValue): number {
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (compareKeys(entries[middle]![0], key) < 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** First index whose entry key is > key. */
function upperBound(entries: readonly TreeEntry[], key: TreeKeyValue): number {
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (compareKeys(entries[middle]![0], key) <= 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** Number of separator keys < key. */
function lowerBoundKeys(keys: readonly TreeKeyValue[], key: TreeKeyValue): number {
  let low = 0;
  let high = keys.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (compareKeys(keys[middle]!, key) < 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** Number of separator keys <= key: the index of the child that holds key. */
function upperBoundKeys(keys: readonly TreeKeyValue[], key: TreeKeyValue): number {
  let low = 0;
  let high = keys.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (compareKeys(keys[middle]!, key) <= 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** A key usable in a lookup or range: a string or a finite number (-0 reads as 0). */
function checkKey(key: TreeKeyValue): TreeKeyValue {
  if (typeof key === 'string') return key;
  if (typeof key === 'number' && Number.isFinite(key)) return key === 0 ? 0 : key;
  throw new EngineError('BAD_INPUT', `a tree key must be a string or a finite number, not ${String(key)}`);
}

/** A key that may be stored: also within limits.keyBytesMax. Returns it with its encoded size. */
function checkStorableKey(key: TreeKeyValue): { key: TreeKeyValue; bytes: number } {
  const checked = checkKey(key);
  const bytes = typeof checked === 'string' ? stringBytes(checked) : numberBytes(checked);
  if (bytes > limits.keyBytesMax) {
    throw new EngineError('TOO_LARGE', `a tree key is ${bytes} bytes; the limit is ${limits.keyBytesMax}`);
  }
  return { key: checked, bytes };
}

/**
 * The value in canonical JSON form, or TOO_LARGE / BAD_INPUT if it cannot be stored: what
 * `JSON.parse(canonicalJson(value))` gives (object keys in sorted order, members holding undefined
 * dropped, undefined array items as null, -0 as 0), built in one pass instead of encoding the text and
 * parsing it back. Its size is that of the canonical text (the same keys and values, so the same
 * bytes whatever order integer-like keys enumerate in), counted during the same pass instead of
 * encoding the copy.
 */
function storableValue(value: Json): { value: Json; bytes: number } {
  if (value === undefined)
    throw new EngineError('BAD_INPUT', 'a tree value must be a JSON value, not undefined');
  const size = { bytes: 0 };
  const stored = canonicalClone(value, 0, size);
  const bytes = size.bytes;
  if (bytes > limits.valueBytesMax) {
    throw new EngineError('TOO_LARGE', `a value is ${bytes} bytes; the limit is ${limits.valueBytesMax}`);
  }
  return { value: stored, bytes };
}

function tooDeep(): EngineError {
  return new EngineError('TOO_LARGE', `a value is nested deeper than ${limits.jsonDepthMax} levels`);
}

/** Printable ASCII but the quote and the backslash: a string of only these encodes as itself in quotes. */
const plainJsonString = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** UTF-8 bytes of a string's JSON encoding. */
function stringBytes(text: string): number {
  return plainJsonString.test(text) ? text.length + 2 : jsonBytes(text);
}

/** Characters of a finite number's JSON encoding (its String() text, -0 being stored as 0). */
function numberBytes(value: number): number {
  if (!Number.isSafeInteger(value)) return String(value).length;
  let digits = value < 0 ? 2 : 1;
  for (let rest = Math.abs(value); rest >= 10; rest = Math.floor(rest / 10)) digits++;
  return digits;
}

/**
 * See storableValue. `depth` is the value's nesting depth as jsonDepth counts it (the top value 0,
 * its members 1, …); the value is refused when anything in it lies deeper than limits.jsonDepthMax.
 * Adds the UTF-8 bytes of the copy's JSON encoding to `size`.
 */
function canonicalClone(value: unknown, depth: number, size: { bytes: number }): Json {
  if (value === null) {
    size.bytes += 4;
    return value;
  }
  switch (typeof value) {
    case 'boolean':
      size.bytes += value ? 4 : 5;
      return value;
    case 'string':
      size.bytes += stringBytes(value);
      return value;
    case 'number':
      if (!Number.isFinite(value)) throw new EngineError('BAD_INPUT', 'numbers must be finite');
      size.bytes += numberBytes(value);
      return value === 0 ? 0 : value;
    case 'object':
      break;
    default:
      throw new EngineError('BAD_INPUT', `cannot encode a ${typeof value} as JSON`);
  }
  const membersTooDeep = depth + 1 > limits.jsonDepthMax;
  if (Array.isArray(value)) {
    if (membersTooDeep && value.length > 0) throw tooDeep();
    // Brackets, and a comma between items.
    size.bytes += value.length === 0 ? 2 : value.length + 1;
    const out: Json[] = new Array<Json>(value.length);
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      out[i] = canonicalClone(item === undefined ? null : item, depth + 1, size);
    }
    return out;
  }
  const obj = value as Record<string, unknown>;
  const keys = sortKeys(Object.keys(obj));
  const out: Record<string, Json> = {};
  let members = 0;
  for (const key of keys) {
    const item = obj[key];
    if (item === undefined) continue;
    if (membersTooDeep) throw tooDeep();
    const cloned = canonicalClone(item, depth + 1, size);
    // The key, its colon, and a comma or closing brace after the member.
    size.bytes += stringBytes(key) + 2;
    members++;
    // JSON.parse makes "__proto__" an own member; plain assignment would set the prototype.
    if (key === '__proto__')
      Object.defineProperty(out, key, {
        value: cloned,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    else out[key] = cloned;
  }
  // The opening brace (and the closing one of an empty object).
  size.bytes += members === 0 ? 2 : 1;
  return out;
}
