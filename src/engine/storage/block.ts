import { assert } from '../base/assert.js';
import type { BlockId } from '../base/ids.js';

/** Block types. Each collection is made of these. */
export const blockTypes = {
  collectionHeader: 'CH',
  logBlock: 'LB',
  treeBranch: 'TB',
  treeLeaf: 'TL',
} as const;
export type BlockType = (typeof blockTypes)[keyof typeof blockTypes];

export interface BlockHeader {
  readonly id: BlockId;
  readonly type: BlockType;
  /** Name of the collection the block belongs to. */
  readonly collection: string;
}

/** A block: a header plus body fields. Bodies are JSON; blocks are never mutated in place. */
export interface Block {
  readonly header: BlockHeader;
  readonly [field: string]: unknown;
}

/** One physical change to a body field of a block. */
export type BlockOp =
  | { readonly op: 'set'; readonly field: string; readonly value: unknown }
  | {
      readonly op: 'splice';
      readonly field: string;
      readonly index: number;
      readonly remove: number;
      readonly items: readonly unknown[];
    };

/** The change one transaction makes to one block. */
export type BlockTransform =
  | { readonly kind: 'insert'; readonly block: Block }
  | { readonly kind: 'update'; readonly ops: readonly BlockOp[] }
  | { readonly kind: 'delete' };

/** The physical change of a transaction: what it inserts, updates and deletes (SPEC §3). */
export interface Transforms {
  readonly inserts: Readonly<Record<BlockId, Block>>;
  readonly updates: Readonly<Record<BlockId, readonly BlockOp[]>>;
  readonly deletes: readonly BlockId[];
}

export function emptyTransforms(): Transforms {
  return { inserts: {}, updates: {}, deletes: [] };
}

/** Ids of every block a set of transforms touches, sorted. */
export function transformedBlockIds(transforms: Transforms): BlockId[] {
  const ids = new Set<BlockId>([
    ...Object.keys(transforms.inserts),
    ...Object.keys(transforms.updates),
    ...transforms.deletes,
  ]);
  return [...ids].sort();
}

/** The transform of one block within a set of transforms, or undefined if it is untouched. */
export function blockTransformOf(transforms: Transforms, id: BlockId): BlockTransform | undefined {
  if (transforms.deletes.includes(id)) return { kind: 'delete' };
  const inserted = transforms.inserts[id];
  const ops = transforms.updates[id];
  if (inserted !== undefined) {
    return { kind: 'insert', block: ops === undefined ? inserted : applyOps(inserted, ops) };
  }
  if (ops !== undefined) return { kind: 'update', ops };
  return undefined;
}

/** Applies body operations to a block, returning a new block. Pure and deterministic. */
export function applyOps(block: Block, ops: readonly BlockOp[]): Block {
  const next: Record<string, unknown> = { ...block };
  // Arrays this call copied: later splices on the same field change the copy in place, so a block
  // given many splices (a leaf filled by one large transaction) is copied once, not once per op.
  let copied: Set<unknown[]> | undefined;
  for (const op of ops) {
    assert(op.field !== 'header', 'block ops never change the header');
    switch (op.op) {
      case 'set':
        if (op.value === undefined) delete next[op.field];
        else next[op.field] = op.value;
        break;
      case 'splice': {
        const current = next[op.field];
        assert(Array.isArray(current), `splice on non-array field ${op.field}`);
        assert(op.index >= 0 && op.index <= current.length, `splice index ${op.index} out of range`);
        let target = current as unknown[];
        if (copied?.has(target) !== true) {
          target = target.slice();
          (copied ??= new Set()).add(target);
          next[op.field] = target;
        }
        if (op.remove === 0 && op.items.length === 1) {
          if (op.index === target.length) target.push(op.items[0]);
          else target.splice(op.index, 0, op.items[0]);
        } else target.splice(op.index, op.remove, ...op.items);
        break;
      }
    }
  }
  return next as unknown as Block;
}

/**
 * Applies a block transform to the block's previous state (undefined when absent or deleted).
 * Returns the new state, undefined meaning deleted.
 */
export function applyTransform(previous: Block | undefined, transform: BlockTransform): Block | undefined {
  switch (transform.kind) {
    case 'insert':
      return transform.block;
    case 'update':
      assert(previous !== undefined, 'update of a block that does not exist');
      return applyOps(previous, transform.ops);
    case 'delete':
      return undefined;
  }
}
