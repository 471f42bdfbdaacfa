import type { BlockId, TrxId } from '../base/ids.js';
import type { Block, BlockTransform } from './block.js';

/** One committed revision of a block. Revisions are numbered 1, 2, … per block. */
export interface BlockRevision {
  readonly rev: number;
  /** LSN of the log entry (in the block's collection) that produced this revision. */
  readonly lsn: number;
  readonly trxId: TrxId;
  readonly transform: BlockTransform;
}

/** A block as of one revision. `block` is undefined when the block is deleted at that revision. */
export interface BlockState {
  readonly id: BlockId;
  readonly rev: number;
  readonly lsn: number;
  readonly trxId: TrxId;
  readonly block: Block | undefined;
}

/** A transform a transaction has staged on a block; it does not change the block's revision. */
export interface PendingTransform {
  readonly trxId: TrxId;
  readonly blockId: BlockId;
  readonly collection: string;
  /** The revision the transform was computed against; it can only apply on top of exactly this one. */
  readonly baseRev: number;
  readonly transform: BlockTransform;
  /** Epoch ms after which an uncommitted pend is cancelled (or its outcome asked for). */
  readonly expiresAt: number;
}

export type PendOutcome =
  | { readonly status: 'ok' }
  /** The block's revision moved past baseRev: the client is missing these committed revisions. */
  | {
      readonly status: 'stale';
      readonly currentRev: number;
      readonly missing: readonly { rev: number; trxId: TrxId }[];
    }
  /** Another transaction pends an insert of the same id (only one insert of an id can win). */
  | { readonly status: 'busy'; readonly trxId: TrxId }
  /** pendingPerBlockMax reached. */
  | { readonly status: 'full' };

/** A revision to write directly (the log tail applies decided entries this way, without a pend). */
export interface DirectRevision {
  readonly blockId: BlockId;
  readonly trxId: TrxId;
  readonly lsn: number;
  readonly baseRev: number;
  readonly transform: BlockTransform;
  /**
   * The revision that seals a log block (names its successor): it will rarely change again. A
   * networked tail stores seals in steps (cluster/tail.ts). VersionedBlockStore stores it like any
   * other revision (its state is read back from its few revisions since the insert); stores before
   * that wrote it whole, which is still read.
   */
  readonly whole?: boolean;
}

/** How `apply` may take its revisions. */
export interface ApplyOptions {
  /**
   * Ids the revisions insert that the writer has just drawn at random (a successor log block), so
   * no block has them: the store need not look them up.
   */
  readonly fresh?: readonly BlockId[];
}

export interface HistoryRange {
  /** Lowest revision, inclusive (default 1). */
  readonly fromRev?: number;
  /** Highest revision, inclusive (default latest). */
  readonly toRev?: number;
  readonly reverse?: boolean;
  readonly limit?: number;
}

export interface BlockStoreStats {
  readonly blocks: number;
  readonly pending: number;
  readonly bytes: number;
}

/**
 * Versioned block storage on one node. Every mutating method writes exactly one atomic RawStore batch;
 * nothing is durable until `sync()` resolves, and callers call `sync()` before acknowledging anything
 * to anyone (group commit makes that cheap). Read-modify-write of a block is serialised per block, so
 * concurrent callers never lose an update. Returned blocks are shared and must never be mutated.
 */
export interface BlockStore {
  /**
   * Latest state; undefined if the block never existed. Bounded reads: never walks history (at most
   * limits.materialiseEveryRevs revisions when the state is not in memory).
   */
  latest(id: BlockId): Promise<BlockState | undefined>;
  /**
   * Optional: the latest state when the store has it in memory (null: the block does not exist),
   * undefined when it would have to read it.
   */
  latestNow?(id: BlockId): BlockState | null | undefined;
  /**
   * Optional, a hint: a log tail is about to walk a log backwards from block `id`, one `latest` after
   * another, until it has `entriesMax` entries. A store that reads from other nodes may start reading
   * the log blocks before it now, all at once (their ids are in its own copies: a log block's `prior`
   * never changes). Changes nothing but how soon the answers come.
   */
  prefetchLog?(id: BlockId, entriesMax: number): Promise<void>;
  /**
   * State at a past revision (`rev`) or as of a collection LSN (`lsn`: the newest revision whose lsn
   * is ≤ the given one). Materialises from the nearest stored snapshot; cost is bounded by
   * limits.materialiseEveryRevs, never by history length. Undefined if no such revision exists.
   */
  at(
    id: BlockId,
    point: { readonly rev: number } | { readonly lsn: number },
  ): Promise<BlockState | undefined>;
  history(id: BlockId, range?: HistoryRange): Promise<BlockRevision[]>;
  pendingOf(id: BlockId): Promise<PendingTransform[]>;
  /**
   * Optional: whether the block holds a pend of the transaction, answered from memory where the store
   * keeps an index of its pends (cheaper than listing them with pendingOf, which reads them).
   */
  holdsPend?(id: BlockId, trxId: TrxId): Promise<boolean>;
  /** Stores pends of one transaction (one batch). All succeed or none is stored (outcome per block). */
  pend(
    items: readonly PendingTransform[],
  ): Promise<{ readonly ok: boolean; readonly outcomes: readonly PendOutcome[] }>;
  /** Drops the transaction's pends on these blocks (absent ones are ignored). One batch. */
  cancel(trxId: TrxId, blockIds: readonly BlockId[]): Promise<void>;
  /**
   * Promotes the transaction's pending transform on each block to the next revision, tagged with lsn.
   * Idempotent: a block whose latest revision already carries trxId is skipped. Fails (asserts) if a
   * block has no such pend or its baseRev is not the latest revision. One batch.
   */
  promote(commit: {
    readonly trxId: TrxId;
    readonly lsn: number;
    readonly blockIds: readonly BlockId[];
  }): Promise<void>;
  /** Writes revisions directly (no pend), checking baseRev; one batch. */
  apply(revisions: readonly DirectRevision[], options?: ApplyOptions): Promise<void>;
  /**
   * Takes back this copy's revisions of the block after `toRev` and writes `revisions` (the first
   * built on `toRev`) in their place, in one batch: for a copy a majority of the block's cluster
   * contradicts there (those revisions were never acknowledged). Stores that cannot leave it out.
   */
  replaceAfter?(id: BlockId, toRev: number, revisions: readonly DirectRevision[]): Promise<void>;
  /** Pends whose expiry is ≤ now, oldest first, at most `limit`. */
  expired(now: number, limit: number): Promise<PendingTransform[]>;
  sync(): Promise<void>;
  stats(): Promise<BlockStoreStats>;
}
