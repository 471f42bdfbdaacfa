import type { Json } from '../base/codec.js';
import type { BlockId } from '../base/ids.js';
import type { BlockRevision, BlockState, PendingTransform } from '../storage/block-store.js';
import type { TreeKey, TransactOptions, TxOutcome, TxRequest } from '../transactions/tx-types.js';

export type CollectionKind = 'tree' | 'diary';

export interface CollectionInfo {
  readonly name: string;
  readonly kind: CollectionKind;
  /** Header block id (derived from the name). */
  readonly id: BlockId;
  /** Collection revision: the LSN of the latest committed log entry. */
  readonly rev: number;
  /** Root block of the collection's B+tree. */
  readonly root: BlockId;
  /** Current log tail block. */
  readonly tail: BlockId;
  /** Committed entries not yet checkpointed. */
  readonly uncheckpointed: number;
}

/** The verdict on one committed revision of a block. */
export interface RevisionVerification {
  readonly rev: number;
  readonly lsn: number;
  readonly trxId: string;
  /**
   * verified: the log entry at `lsn` names this transaction as committed and its certificate carries
   * a valid quorum of the log block's recorded membership; invalid: it does not; unverifiable: the
   * entry is no longer held here (archived or never received).
   */
  readonly status: 'verified' | 'invalid' | 'unverifiable';
  readonly detail?: string;
  /** Members whose signatures were checked. */
  readonly signers?: readonly string[];
}

export interface BlockVerification {
  readonly id: BlockId;
  readonly collection: string;
  readonly type: string;
  /** True when every revision verified. */
  readonly verified: boolean;
  readonly revisions: readonly RevisionVerification[];
}

export interface GetResult {
  readonly key: TreeKey;
  readonly found: boolean;
  readonly value: Json | null;
  /** The collection revision the read saw. */
  readonly rev: number;
}

export interface ScanOptions {
  /** Inclusive lower key bound. */
  readonly from?: TreeKey;
  /** Inclusive upper key bound. */
  readonly to?: TreeKey;
  readonly limit?: number;
  readonly reverse?: boolean;
  /** Read as of this collection revision. */
  readonly at?: number;
}

export interface ReadOptions {
  /** First index (or, with reverse, the highest index) to return. */
  readonly from?: number;
  readonly limit?: number;
  readonly reverse?: boolean;
  readonly at?: number;
}

/**
 * What every command calls. The embedded solo node implements it today; a delegating client (control
 * socket) and a light client (libp2p) implement the same interface later.
 */
export interface Database {
  createCollection(name: string, kind: CollectionKind): Promise<CollectionInfo>;
  listCollections(): Promise<CollectionInfo[]>;
  /** Throws NOT_FOUND for an unknown collection. */
  collectionInfo(name: string): Promise<CollectionInfo>;
  /** Tree point read; throws NOT_FOUND for an unknown collection, WRONG_TYPE for a diary. */
  get(name: string, key: TreeKey, options?: { readonly at?: number }): Promise<GetResult>;
  /** Tree range scan, streamed in key order (reverse order with `reverse`). */
  scan(name: string, options?: ScanOptions): AsyncIterable<{ readonly key: TreeKey; readonly value: Json }>;
  /** Diary range read, streamed by index. */
  read(name: string, options?: ReadOptions): AsyncIterable<{ readonly index: number; readonly value: Json }>;
  /**
   * Runs one transaction (SPEC §2.2); operating errors come back as `ok: false`, never thrown. With
   * `certificates`, each committed collection's entry in `commit` carries its commit certificate.
   */
  transact(request: TxRequest, options?: TransactOptions): Promise<TxOutcome>;
  /** Raw block read, latest or at a revision; throws NOT_FOUND. */
  block(id: BlockId, options?: { readonly rev?: number }): Promise<BlockState>;
  blockHistory(id: BlockId): Promise<BlockRevision[]>;
  /** The peers of the block's cluster and the revision each holds (null: not held or unreachable). */
  blockHolders(id: BlockId): Promise<BlockHolder[]>;
  blockPending(id: BlockId): Promise<PendingTransform[]>;
  /** Checks every committed revision of a block against its collection's certified log, offline. */
  verifyBlock(id: BlockId): Promise<BlockVerification>;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** Data directory; created if absent, unless `createIfMissing` is false. */
  readonly dataDir: string;
  /**
   * False: a directory holding no database (no `store` in it, or no directory at all) is not
   * created. The database opens empty and in memory instead, so reads find nothing and nothing is
   * written anywhere; `createCollection` is refused (NOT_FOUND), as what it made would be lost at
   * close. For commands that only use a database (a mistyped `--data` must not leave one behind).
   * Default true.
   */
  readonly createIfMissing?: boolean;
  /** Called when the database opened empty because the directory holds none (above). */
  readonly onMissing?: () => void;
  /**
   * The directory of a node of a network (stopped: a running node holds it) is refused, since a
   * change made without the network would fork the node from its cluster. With this, it opens
   * read-only instead: reads see that node's own copies, and changes are refused.
   */
  readonly readOnlyIfNetworked?: boolean;
  /** Called when the directory was opened read-only (above). */
  readonly onReadOnly?: () => void;
}

/** One member of a block's cluster, as `block get` shows it. */
export interface BlockHolder {
  readonly peer: string;
  readonly rev: number | null;
  /** Why the peer did not answer, when it did not. */
  readonly error?: string;
}
