import { assert } from '../base/assert.js';
import { EngineError } from '../base/errors.js';
import { newBlockId, type BlockId } from '../base/ids.js';
import type { Rng } from '../base/rng.js';
import type { BlockAccess } from '../collections/block-access.js';
import {
  applyOps,
  type Block,
  type BlockOp,
  type BlockTransform,
  type Transforms,
} from '../storage/block.js';

/** Where a tracker reads blocks from: a snapshot of the collection. */
export interface BlockSource {
  /**
   * The block and its revision at the snapshot; `block` undefined (rev 0 or a deleted rev) if absent.
   * `lsn`: the LSN of the entry that wrote that revision, when known.
   */
  read(id: BlockId): Promise<SourceRead>;
  /** Optional: what `read` would answer, when the source can answer at once; else undefined. */
  readNow?(id: BlockId): SourceRead | undefined;
}

export interface SourceRead {
  readonly block: Block | undefined;
  readonly rev: number;
  readonly lsn?: number | undefined;
}

/**
 * Copy-on-write view of blocks for one transaction attempt on one collection. Every block read from
 * the source is recorded in the read set with the revision seen; every change is applied to a private
 * copy and recorded as a transform. Nothing reaches storage until the coordinator commits.
 */
export class Tracker implements BlockAccess {
  private readonly readRevs = new Map<BlockId, number>();
  /** LSN of the revision read, for blocks read present with a known LSN (see readAt). */
  private readonly readLsns = new Map<BlockId, number>();
  /** Blocks read only to route (tree branches): left out of validationReads(). */
  private readonly routing = new Set<BlockId>();
  private readonly sourceBlocks = new Map<BlockId, Block | undefined>();
  /** Current private state of changed blocks; undefined = deleted in this transaction. */
  private readonly changed = new Map<BlockId, Block | undefined>();
  private readonly inserted = new Map<BlockId, Block>();
  private readonly updated = new Map<BlockId, BlockOp[]>();
  private readonly deleted = new Set<BlockId>();
  /** writes(), kept until the next change (the commit path asks for it several times). */
  private writeList: BlockId[] | undefined;

  constructor(
    private readonly source: BlockSource,
    private readonly rng: Rng,
  ) {}

  async tryGet(id: BlockId): Promise<Block | undefined> {
    if (this.changed.has(id)) return this.changed.get(id);
    if (this.sourceBlocks.has(id)) return this.sourceBlocks.get(id);
    const read = this.source.readNow?.(id) ?? (await this.source.read(id));
    // A concurrent read of the same id may have landed first; keep the first one seen.
    if (!this.sourceBlocks.has(id)) this.record(id, read);
    return this.sourceBlocks.get(id);
  }

  held(id: BlockId): Block | undefined {
    let block: Block | undefined;
    if (this.changed.has(id)) block = this.changed.get(id);
    else if (this.sourceBlocks.has(id)) block = this.sourceBlocks.get(id);
    else {
      // A source that has the block at once gives it now, recorded as a read as tryGet records it.
      const now = this.source.readNow?.(id);
      if (now === undefined) return undefined;
      this.record(id, now);
      block = now.block;
    }
    if (block === undefined) throw new EngineError('NOT_FOUND', `block ${id} does not exist`);
    return block;
  }

  async get(id: BlockId): Promise<Block> {
    const block = await this.tryGet(id);
    if (block === undefined) throw new EngineError('NOT_FOUND', `block ${id} does not exist`);
    return block;
  }

  private record(id: BlockId, read: SourceRead): void {
    this.sourceBlocks.set(id, read.block);
    this.readRevs.set(id, read.rev);
    if (read.block !== undefined && read.lsn !== undefined) this.readLsns.set(id, read.lsn);
  }

  owns(id: BlockId): boolean {
    const inserted = this.inserted.get(id);
    return inserted !== undefined && this.changed.get(id) === inserted;
  }

  insert(block: Block): void {
    const id = block.header.id;
    assert(this.changed.get(id) === undefined, `insert of block ${id} that this transaction already holds`);
    this.writeList = undefined;
    this.deleted.delete(id);
    this.inserted.set(id, block);
    this.updated.delete(id);
    this.changed.set(id, block);
  }

  update(id: BlockId, ops: readonly BlockOp[], result?: Block): void {
    const current = this.changed.has(id) ? this.changed.get(id) : this.sourceBlocks.get(id);
    assert(current !== undefined, `update of block ${id} before reading it (or after deleting it)`);
    const next = result ?? applyOps(current, ops);
    this.writeList = undefined;
    this.changed.set(id, next);
    const inserted = this.inserted.get(id);
    if (inserted !== undefined) {
      this.inserted.set(id, next);
      return;
    }
    const list = this.updated.get(id);
    if (list === undefined) this.updated.set(id, [...ops]);
    else list.push(...ops);
  }

  delete(id: BlockId): void {
    this.writeList = undefined;
    if (this.inserted.delete(id)) {
      // Created and dropped within the transaction: nothing reaches storage.
      this.changed.delete(id);
      return;
    }
    this.updated.delete(id);
    this.deleted.add(id);
    this.changed.set(id, undefined);
  }

  newId(): BlockId {
    return newBlockId(this.rng);
  }

  /** Blocks read from the source, with the revision seen (0 = absent). */
  reads(): ReadonlyMap<BlockId, number> {
    return this.readRevs;
  }

  routed(id: BlockId): void {
    this.routing.add(id);
  }

  /**
   * The reads a commit is validated with: every block read except those read only to route (tree
   * branches; see `BlockAccess.routed`), sorted. A concurrent split or merge elsewhere in the tree
   * writes a branch every descent passed through, and must not make every such transaction replay.
   * Blocks this transaction writes are validated as writes anyway.
   */
  validationReads(): BlockId[] {
    const reads: BlockId[] = [];
    for (const id of this.readRevs.keys()) if (!this.routing.has(id)) reads.push(id);
    return reads.sort();
  }

  /**
   * For the blocks read present whose revision was written at an LSN below `baseLsn`: that LSN. The
   * tail checks that no entry between it and the snapshot wrote the block (ValidationRequest.readAt):
   * a copy read that way missed a commit the snapshot includes.
   */
  readAt(baseLsn: number): Record<BlockId, number> | undefined {
    let out: Record<BlockId, number> | undefined;
    for (const [id, lsn] of this.readLsns) {
      if (lsn >= baseLsn || this.routing.has(id)) continue;
      (out ??= {})[id] = lsn;
    }
    return out;
  }

  /** Ids of blocks this transaction changes, sorted. */
  writes(): BlockId[] {
    this.writeList ??= [
      ...new Set([...this.inserted.keys(), ...this.updated.keys(), ...this.deleted]),
    ].sort();
    return this.writeList.slice();
  }

  hasWrites(): boolean {
    return this.inserted.size > 0 || this.updated.size > 0 || this.deleted.size > 0;
  }

  transforms(): Transforms {
    return {
      inserts: Object.fromEntries(this.inserted),
      updates: Object.fromEntries(this.updated),
      deletes: [...this.deleted].sort(),
    };
  }

  /**
   * The transform of one block, as `blockTransformOf(transforms(), id)` gives it, without building
   * the transforms of every block (a pend names each written block once).
   */
  transformOf(id: BlockId): BlockTransform | undefined {
    if (this.deleted.has(id)) return { kind: 'delete' };
    const inserted = this.inserted.get(id);
    const ops = this.updated.get(id);
    if (inserted !== undefined)
      return { kind: 'insert', block: ops === undefined ? inserted : applyOps(inserted, ops) };
    if (ops !== undefined) return { kind: 'update', ops };
    return undefined;
  }

  /** Revision a changed block was read at (0 for blocks this transaction inserts). */
  baseRevOf(id: BlockId): number {
    return this.readRevs.get(id) ?? 0;
  }
}
