import type { Json } from '../base/codec.js';
import { EngineError } from '../base/errors.js';
import type { BlockId } from '../base/ids.js';
import type { BlockAccess } from './block-access.js';
import { BTree, type BTreeInit } from './btree/btree.js';

/** One diary entry and its position. */
export interface DiaryEntry {
  readonly index: number;
  readonly value: Json;
}

export interface DiaryReadRange {
  /** First index read: the lowest going forward (default 0), the highest in reverse (default the last). */
  readonly from?: number;
  readonly limit?: number;
  readonly reverse?: boolean;
}

/**
 * An append-only list of JSON values, kept in a B+tree keyed by 0-based index. An append finds the
 * last index through the tree's rightmost path, so two transactions appending to one diary read the
 * same last leaf and conflict, and never both take one index.
 */
export class Diary {
  private readonly tree: BTree;

  /** Inserts the empty tree of a new diary and returns its root id (`rootId` if given). */
  static create(access: BlockAccess, collection: string, rootId?: BlockId): BlockId {
    return BTree.create(access, collection, rootId);
  }

  constructor(access: BlockAccess, rootId: BlockId, collection: string, init: BTreeInit = {}) {
    this.tree = new BTree(access, rootId, collection, init);
  }

  /** Adds a value at the end and returns its index. TOO_LARGE / BAD_INPUT as for a tree value. */
  async append(value: Json): Promise<number> {
    const index = await this.count();
    await this.tree.put(index, value);
    return index;
  }

  /** Number of entries (one more than the last index). */
  async count(): Promise<number> {
    const last = await this.tree.last();
    if (last === undefined) return 0;
    const [index] = last;
    if (typeof index !== 'number')
      throw new EngineError('CORRUPT', `diary ${this.tree.collection} holds a non-index key`);
    return index + 1;
  }

  /** The value at `index`, or undefined past the end. The value is shared: do not mutate it. */
  async get(index: number): Promise<Json | undefined> {
    return this.tree.get(checkIndex(index, 'index'));
  }

  /** Entries from `from`, upward (or downward with `reverse`), at most `limit`; read lazily. */
  async *read(range: DiaryReadRange = {}): AsyncGenerator<DiaryEntry, void, undefined> {
    const from = range.from === undefined ? undefined : checkIndex(range.from, 'from');
    const limit = range.limit === undefined ? {} : { limit: range.limit };
    const entries =
      range.reverse === true
        ? this.tree.entries({ ...(from === undefined ? {} : { lte: from }), reverse: true, ...limit })
        : this.tree.entries({ gte: from ?? 0, ...limit });
    for await (const [index, value] of entries) {
      if (typeof index !== 'number')
        throw new EngineError('CORRUPT', `diary ${this.tree.collection} holds a non-index key`);
      yield { index, value };
    }
  }
}

function checkIndex(index: number, what: string): number {
  if (!Number.isSafeInteger(index) || index < 0) {
    throw new EngineError('BAD_INPUT', `a diary ${what} must be a whole number >= 0, not ${String(index)}`);
  }
  return index;
}
