import type { BlockId } from '../base/ids.js';
import type { Block, BlockOp } from '../storage/block.js';

/**
 * What the collection algorithms (B+tree, log, diary) need from storage: read a block, and stage
 * inserts, updates and deletes. The transaction tracker implements it (reads go into the read set,
 * changes into copy-on-write copies and the write set); tests use a plain in-memory version.
 *
 * Staged changes are visible to later `get` calls on the same access object. Blocks returned by `get`
 * must be treated as immutable; change them only through `update`.
 */
export interface BlockAccess {
  /** The block, or throws EngineError NOT_FOUND if it does not exist (or was deleted). */
  get(id: BlockId): Promise<Block>;
  /** The block, or undefined if it does not exist. */
  tryGet(id: BlockId): Promise<Block | undefined>;
  /**
   * Optional: the block at once, when this access already holds it (read before or changed since)
   * or can read it without a wait (the read is then recorded as `get` records it), so a caller can
   * skip the wait of `get`; undefined when it would have to wait. A block held or read as absent
   * throws NOT_FOUND, as `get` would. What it returns is exactly what `get` would.
   */
  held?(id: BlockId): Block | undefined;
  /**
   * Optional: the block just read was read only to find where keys live (a tree branch). A change to
   * such a block that moves a key range from one leaf to another also writes the leaf that loses the
   * range, so a transaction that read that leaf conflicts through it; an access may therefore leave
   * routing reads out of what it validates against concurrent commits (it still reads them at its
   * snapshot, and a networked repo still checks that snapshot against the block's holders).
   */
  routed?(id: BlockId): void;
  /**
   * Optional: whether the block held for `id` was inserted through this access and is still the
   * object passed to `insert` or an `update` result since, so nothing outside the caller's own
   * structure refers to it or to the arrays the caller put in it. The caller may then change those
   * arrays in place before calling `update` with the same block as `result` (a transaction filling
   * a leaf it created copies the leaf once, not at every put). Never true for blocks read.
   */
  owns?(id: BlockId): boolean;
  insert(block: Block): void;
  /**
   * `result`, when given, is the block the ops make of the current one (what `applyOps` would give),
   * computed by a caller that had it anyway; an access may use it instead of applying the ops again.
   */
  update(id: BlockId, ops: readonly BlockOp[], result?: Block): void;
  delete(id: BlockId): void;
  /** A fresh random block id. */
  newId(): BlockId;
}
