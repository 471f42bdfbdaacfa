import type { BlockId, TrxId } from '../base/ids.js';
import type { Certificate, EntryStatus, LogEntry } from '../collections/log/log-block.js';
import type { BlockState, PendOutcome, PendingTransform } from '../storage/block-store.js';
import type { CollectionHeader } from '../collections/log/log-block.js';

/**
 * The commit protocol's two services and their requests (SPEC §5). A RepoService holds data blocks
 * (get / pend / cancel / promote); a LogTail orders one collection's log (view / commit / prepare /
 * decide). The coordinator drives them through these interfaces only, so the same coordinator runs
 * against in-process services (solo node) or against clusters over the network.
 */

/** A committed transaction a reader must see applied to a block before the block is served. */
export interface CommitRef {
  readonly trxId: TrxId;
  readonly lsn: number;
  readonly certificate?: Certificate | undefined;
}

export interface GetBlockRequest {
  readonly blockId: BlockId;
  /** Serve the block as of this collection LSN (snapshot read); latest when absent. */
  readonly atLsn?: number;
  /** Committed, not yet checkpointed transactions touching this block, in LSN order. */
  readonly reinforce?: readonly CommitRef[];
  /**
   * The caller checks the answer's freshness before relying on it (`RepoClient.verifyReads` for a
   * block it only reads; the pend's base revision for one it writes), so a networked repo may answer
   * from this node's own copy without asking the block's other holders.
   */
  readonly verifyLater?: boolean;
}

/** A block read answered without asking its holders: the request made and the revision it saw. */
export interface ReadToVerify {
  readonly request: GetBlockRequest;
  readonly rev: number;
  /**
   * Set for a block a writing transaction read only to route (a tree branch; the tail leaves it out
   * of validation), to the LSN of the transaction's snapshot: the copy read is stale only if a
   * revision after it was committed at or below that LSN. A branch changed by a commit after the
   * snapshot (a split elsewhere in the tree) still routes to the leaves the snapshot had, and those
   * the tail validates; a copy that missed a commit before the snapshot could route to the wrong one.
   */
  readonly snapshotLsn?: number;
}

/**
 * Whether a holder's revision of a block (`rev`, committed at `lsn`) makes a read of it stale: a
 * newer revision does, unless it is the next one and the read is a routing read whose snapshot it
 * postdates (ReadToVerify.snapshotLsn). Two or more newer revisions count as stale: the first of
 * them may predate the snapshot, and the holder answers only its newest.
 */
export function staleRead(read: ReadToVerify, rev: number, lsn: number): boolean {
  if (rev <= read.rev) return false;
  return !(read.snapshotLsn !== undefined && rev === read.rev + 1 && lsn > read.snapshotLsn);
}

export interface PromoteRequest {
  readonly trxId: TrxId;
  readonly lsn: number;
  readonly blockIds: readonly BlockId[];
  /** The commit proof: the certificate(s) of the committed decision(s). */
  readonly proof: readonly Certificate[];
}

/** What a pend answers: whether every block took it, each block's outcome, and (with `verify`) stale reads. */
export interface PendResult {
  readonly ok: boolean;
  readonly outcomes: readonly PendOutcome[];
  /** The ids of the blocks of `PendOptions.verify` a majority of their holders hold newer than read. */
  readonly stale?: readonly BlockId[];
}

export interface PendOptions {
  /**
   * Reads to check as `verifyReads` does, alongside the pend: a repo that has `verifyReads` must
   * check these and name the stale ones in `stale` (it may ask the holders it sends the pend to, so
   * the check costs no request of its own). Absent or empty: nothing is checked.
   */
  readonly verify?: readonly ReadToVerify[];
}

export interface RepoClient {
  get(request: GetBlockRequest): Promise<BlockState | undefined>;
  /**
   * Optional (a holder in this process): what `get` would answer, when it can answer at once — the
   * block in memory, every commit named in `reinforce` already applied (null: the block does not
   * exist). Undefined when `get` would have to wait. A session then reads a small transaction's
   * blocks without a turn of the microtask queue each.
   */
  getNow?(request: GetBlockRequest): BlockState | null | undefined;
  pend(items: readonly PendingTransform[], options?: PendOptions): Promise<PendResult>;
  cancel(trxId: TrxId, blockIds: readonly BlockId[]): Promise<void>;
  promote(request: PromoteRequest): Promise<void>;
  /** Resolves when everything this service acknowledged so far is durable. */
  sync(): Promise<void>;
  /**
   * Optional (a networked repo, where a fresh read asks a majority of the block's holders): present,
   * sessions read with `verifyLater` and the coordinator checks those reads here before it pends (or,
   * read-only, before it answers). Resolves with the ids of blocks a majority of their cluster holds
   * newer than read: the transaction read stale state and must run again.
   */
  verifyReads?(reads: readonly ReadToVerify[]): Promise<BlockId[]>;
  /**
   * True when a committed transaction may be promoted after its client is answered (a networked
   * repo, where promotion is a round trip to every holder): the tail's certified, replicated log
   * entry is the decision, and until the promotion lands readers reinforce the commit (SPEC §5.1).
   * Absent or false: the coordinator promotes before it answers.
   */
  readonly promotesInBackground?: boolean;
  /**
   * Optional: the tail found these blocks' copies behind the snapshot a transaction read at; a repo
   * that reads its own copies reads them from their clusters until a read finds them current.
   */
  distrust?(blockIds: readonly BlockId[]): void;
}

/** What a session needs from a collection's tail before it reads. */
export interface TailView {
  readonly collection: string;
  readonly header: CollectionHeader;
  readonly tailId: BlockId;
  /** Highest LSN handed out (committed, prepared or aborted). */
  readonly lastLsn: number;
  /** Highest LSN at and below which every entry is decided: the snapshot a session reads. */
  readonly stableLsn: number;
  /** Committed entries ≤ stableLsn not yet checkpointed: readers reinforce them. */
  readonly uncheckpointed: readonly Pick<LogEntry, 'lsn' | 'trxId' | 'writes' | 'certificate'>[];
  /**
   * Optional, answering a view with a TurnClaim: the tail holds the blocks claimed for the
   * transaction's attempt for this long (ms). Other writers of them are refused meanwhile.
   */
  readonly heldMs?: number;
  /**
   * Optional: blocks the tail holds for other transactions (not all of them if there are many), with
   * how long to wait (ms) before a transaction that writes one runs again: the tail would refuse it.
   */
  readonly holds?: readonly { readonly blockId: BlockId; readonly forMs: number }[];
}

/**
 * Sent with the view a transaction's replay starts from (TailClient.view): how many of its attempts
 * failed, and what the last one read and wrote in the collection. The tail answers once no other
 * transaction's turn holds a block it writes, and then holds those blocks for the replay (Turns,
 * transactions/turns.ts), so that a transaction that keeps losing the race for a hot block gets its
 * turn.
 */
export interface TurnClaim {
  /** The trxId of the transaction's first attempt (ValidationRequest.lineage). */
  readonly lineage: TrxId;
  /** Its attempts that failed, and the times it gave way to another's turn. */
  readonly losses: number;
  /** What the last attempt read and wrote (validation reads, and writes). */
  readonly reads: readonly BlockId[];
  readonly writes: readonly BlockId[];
  /** How long the last attempt took (ms): a hold lasts a few of them. */
  readonly tookMs: number;
  /** Optional: the transaction failed for good; what the tail holds for it is free again. */
  readonly done?: true;
  /**
   * Optional: the transaction gave way at another tail; what this tail holds for it may pass to a
   * transaction ranked above it until its next claim.
   */
  readonly paused?: true;
}

export interface ValidationRequest {
  readonly collection: string;
  readonly trxId: TrxId;
  /** The stableLsn of the view the session read at. */
  readonly baseLsn: number;
  readonly reads: readonly BlockId[];
  readonly writes: readonly BlockId[];
  /** The logical actions to keep in the log entry (small ones inline) … */
  readonly actions?: unknown;
  /** … or, when they are too large to keep inline, their digest (actionsRecord) in their place. */
  readonly actionsDigest?: string;
  /**
   * Optional: for blocks read (or written) whose revision seen was written below `baseLsn`, the LSN
   * that wrote it. A committed entry after that LSN and at or below `baseLsn` that wrote the block
   * means the copy read was behind the snapshot (a holder that missed a commit): a conflict, and the
   * outcome names the block in `stale`.
   */
  readonly readAt?: Readonly<Record<BlockId, number>>;
  /**
   * Optional: who coordinates the transaction, `<node id>:<incarnation>` (the incarnation is drawn
   * when the node starts). A prepared entry keeps it, so that when the same node asks again with
   * another incarnation the tail knows the entry's coordinator died with the process before it: the
   * entry is in doubt, and is resolved then instead of at its expiry.
   */
  readonly coordinator?: string;
  /**
   * Optional: the trxId of the transaction's first attempt, sent by later attempts (each has a new
   * trxId): the blocks a tail holds for the transaction (TurnClaim) are its attempt's to write.
   */
  readonly lineage?: TrxId;
}

export type CommitRequest = ValidationRequest;

export interface PrepareRequest extends ValidationRequest {
  readonly participants: readonly string[];
  readonly expiresAt: number;
}

export type TailOutcome =
  | {
      readonly status: 'committed' | 'prepared';
      readonly lsn: number;
      readonly certificate: Certificate;
      /**
       * Optional: the tail promoted the commit at its blocks with its log write and reports the
       * checkpoint itself, so the coordinator does neither (a networked tail).
       */
      readonly propagated?: boolean;
    }
  | {
      readonly status: 'conflict';
      /** LSNs of the entries that won (empty when the base was simply too old). */
      readonly winners: readonly number[];
      readonly message: string;
      /** Blocks whose copy the transaction read was behind its snapshot (ValidationRequest.readAt). */
      readonly stale?: readonly BlockId[];
      /**
       * Optional: refused because the tail holds a block this transaction writes for another one it
       * kept refusing, for this much longer (ms): running again sooner would be refused too.
       */
      readonly busyMs?: number;
    };

export interface DecideRequest {
  readonly collection: string;
  readonly trxId: TrxId;
  readonly outcome: Extract<EntryStatus, 'committed' | 'aborted'>;
  /** For a commit: the prepared certificates of every participant. For an abort: may be empty. */
  readonly proof: readonly Certificate[];
}

export interface CreateCollectionRequest {
  readonly trxId: TrxId;
  readonly header: CollectionHeader;
  /** Root block of the collection's tree and the first log block. */
  readonly root: import('../storage/block.js').Block;
  readonly log: import('../collections/log/log-block.js').LogBlock;
}

export interface TailClient {
  /** `claim`: a replay's (TurnClaim). */
  view(collection: string, claim?: TurnClaim): Promise<TailView>;
  create(
    request: CreateCollectionRequest,
  ): Promise<{ readonly lsn: number; readonly certificate: Certificate }>;
  commit(request: CommitRequest): Promise<TailOutcome>;
  prepare(request: PrepareRequest): Promise<TailOutcome>;
  /** `propagated`: as for TailOutcome (a committing decision the tail promoted itself). */
  decide(
    request: DecideRequest,
  ): Promise<{ readonly lsn: number; readonly certificate: Certificate; readonly propagated?: boolean }>;
  /** The coordinator reports that a committed entry reached all its blocks. */
  propagated(collection: string, lsn: number): Promise<void>;
  /** Asks a tail for the decision it holds about a transaction (in-doubt resolution). */
  outcomeOf(collection: string, trxId: TrxId): Promise<EntryStatus | 'unknown'>;
  /**
   * Checks, without deciding or writing anything, that no entry after a read-only transaction's
   * snapshot of the collection — committed or still prepared — wrote a block it read (backward
   * validation of its reads alone). A read-only transaction over several collections asks every one
   * of them once it has read: otherwise it could see a multi-collection commit in one collection and
   * not yet in another.
   */
  check(request: ReadCheckRequest): Promise<ReadCheck>;
}

export interface ReadCheckRequest {
  readonly collection: string;
  readonly trxId: TrxId;
  /** The stableLsn of the view the transaction read at. */
  readonly baseLsn: number;
  readonly reads: readonly BlockId[];
  /** As in ValidationRequest: the LSN that wrote each block's revision read, when below the base. */
  readonly readAt?: Readonly<Record<BlockId, number>>;
}

/** `ok`: nothing after the snapshot touched the reads; otherwise, as a conflict outcome says. */
export type ReadCheck =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly winners: readonly number[];
      readonly message: string;
      readonly stale?: readonly BlockId[];
    };
