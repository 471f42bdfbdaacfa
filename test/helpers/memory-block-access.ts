import { assert } from '../../src/engine/base/assert.js';
import { EngineError } from '../../src/engine/base/errors.js';
import { newBlockId, type BlockId } from '../../src/engine/base/ids.js';
import { SeededRng, type Rng } from '../../src/engine/base/rng.js';
import { applyOps, type Block, type BlockOp } from '../../src/engine/storage/block.js';
import type { BlockAccess } from '../../src/engine/collections/block-access.js';

/** One change made through the access, in order. */
export type AccessChange =
  | { readonly kind: 'insert'; readonly id: BlockId }
  | { readonly kind: 'update'; readonly id: BlockId; readonly ops: readonly BlockOp[] }
  | { readonly kind: 'delete'; readonly id: BlockId };

/**
 * A BlockAccess over a Map, for tests of the collection algorithms. It records what a transaction
 * tracker would put in its read set (`reads`) and write set (`writes`), and deep-freezes every stored
 * block so an algorithm that mutates a block it read fails loudly.
 */
export class MemoryBlockAccess implements BlockAccess {
  readonly blocks = new Map<BlockId, Block>();
  /** Ids passed to get or tryGet since the last resetTracking. */
  readonly reads = new Set<BlockId>();
  /** Ids inserted, updated or deleted since the last resetTracking. */
  readonly writes = new Set<BlockId>();
  /** Every change since the last resetTracking, in order. */
  readonly changes: AccessChange[] = [];
  getCount = 0;
  private readonly rng: Rng;

  constructor(rng: Rng = new SeededRng(1)) {
    this.rng = rng;
  }

  get(id: BlockId): Promise<Block> {
    this.getCount += 1;
    this.reads.add(id);
    const block = this.blocks.get(id);
    if (block === undefined) return Promise.reject(new EngineError('NOT_FOUND', `block ${id} not found`));
    return Promise.resolve(block);
  }

  tryGet(id: BlockId): Promise<Block | undefined> {
    this.getCount += 1;
    this.reads.add(id);
    return Promise.resolve(this.blocks.get(id));
  }

  insert(block: Block): void {
    const id = block.header.id;
    assert(!this.blocks.has(id), `insert of existing block ${id}`);
    this.blocks.set(id, deepFreeze(structuredClone(block)));
    this.record({ kind: 'insert', id });
  }

  update(id: BlockId, ops: readonly BlockOp[]): void {
    const block = this.blocks.get(id);
    assert(block !== undefined, `update of missing block ${id}`);
    this.blocks.set(id, deepFreeze(applyOps(block, structuredClone(ops))));
    this.record({ kind: 'update', id, ops });
  }

  delete(id: BlockId): void {
    assert(this.blocks.delete(id), `delete of missing block ${id}`);
    this.record({ kind: 'delete', id });
  }

  newId(): BlockId {
    return newBlockId(this.rng);
  }

  /** Forgets the reads, writes and changes recorded so far (the stored blocks stay). */
  resetTracking(): void {
    this.reads.clear();
    this.writes.clear();
    this.changes.length = 0;
    this.getCount = 0;
  }

  private record(change: AccessChange): void {
    this.writes.add(change.id);
    this.changes.push(change);
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
