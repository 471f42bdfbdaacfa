import type { BlockId, TrxId } from '../../base/ids.js';
import type { Block, BlockOp } from '../../storage/block.js';
import { blockTypes } from '../../storage/block.js';

/** Decision state of a log entry. Single-collection entries are born committed. */
export type EntryStatus = 'prepared' | 'committed' | 'aborted';

/**
 * A certificate that a log decision was taken: the decision and a quorum of member signatures over it.
 * In a solo node the quorum is one signature by the node's identity.
 */
export interface Certificate {
  readonly network: string;
  readonly collection: string;
  readonly blockId: BlockId;
  readonly lsn: number;
  readonly trxId: TrxId;
  readonly decision: EntryStatus;
  /** Hash of the recorded membership the quorum is taken against. */
  readonly membership: string;
  readonly signatures: readonly { readonly member: string; readonly signature: string }[];
  /**
   * Present when the signatures cover a batch of decisions taken together: they sign the root of a
   * Merkle tree over the batch's decision messages, and this places the decision in it, so the
   * certificate still verifies alone (transactions/decision-tree.ts). Absent: they sign the decision.
   */
  readonly batch?: CertificateBatch;
}

/** Where a decision sits in a batch signed at once: its index, the batch size, its audit path. */
export interface CertificateBatch {
  readonly index: number;
  readonly size: number;
  /** Sibling hashes (base64url) from the decision's leaf up to the root's children. */
  readonly path: readonly string[];
}

export interface LogEntry {
  readonly lsn: number;
  readonly trxId: TrxId;
  readonly status: EntryStatus;
  /** Data blocks the transaction wrote in this collection (sorted). */
  readonly writes: readonly BlockId[];
  /** Data blocks it read; kept while prepared so later writers can be checked against them. */
  readonly reads?: readonly BlockId[];
  /** The logical actions (for audit and replay), or their digest when too large to keep inline (actionsRecord). */
  readonly actions?: unknown;
  readonly actionsDigest?: string;
  /** Collections of a multi-collection transaction (sorted), absent for single-collection ones. */
  readonly participants?: readonly string[];
  /** Epoch ms after which an undecided prepared entry is resolved by the tails themselves. */
  readonly expiresAt?: number;
  /** Who coordinates a prepared entry's transaction (ValidationRequest.coordinator), when known. */
  readonly coordinator?: string;
  /** Checkpoint marker: every committed entry with lsn ≤ this has reached all its blocks. */
  readonly checkpoint?: number;
  readonly certificate: Certificate;
}

/** A log block: one segment of a collection's transaction log and the ordering group for its entries. */
export interface LogBlock extends Block {
  readonly prior: BlockId | null;
  readonly successor: BlockId | null;
  /** LSN of the first entry this block holds (entries are contiguous). */
  readonly firstLsn: number;
  /** Recorded membership of the ordering group (peer ids), fixed at creation. */
  readonly members: readonly string[];
  readonly entries: readonly LogEntry[];
}

/** A collection header: found by name, points at its tree root and its log. */
export interface CollectionHeader extends Block {
  readonly name: string;
  readonly kind: 'tree' | 'diary';
  readonly root: BlockId;
  /** The log's first block (never changes) and the newest tail known to the header. */
  readonly logHead: BlockId;
  readonly logTail: BlockId;
  readonly createdAt: number;
}

export function newLogBlock(
  id: BlockId,
  collection: string,
  prior: BlockId | null,
  firstLsn: number,
  members: readonly string[],
): LogBlock {
  return {
    header: { id, type: blockTypes.logBlock, collection },
    prior,
    successor: null,
    firstLsn,
    members,
    entries: [],
  };
}

export function appendEntryOps(block: LogBlock, entry: LogEntry): BlockOp[] {
  return [{ op: 'splice', field: 'entries', index: block.entries.length, remove: 0, items: [entry] }];
}

export function replaceEntryOps(block: LogBlock, entry: LogEntry): BlockOp[] {
  const index = entry.lsn - block.firstLsn;
  return [{ op: 'splice', field: 'entries', index, remove: 1, items: [entry] }];
}

export function isLogBlock(block: Block | undefined): block is LogBlock {
  return block !== undefined && block.header.type === blockTypes.logBlock;
}

export function isCollectionHeader(block: Block | undefined): block is CollectionHeader {
  return block !== undefined && block.header.type === blockTypes.collectionHeader;
}

/**
 * The `actions` of a refusal: an abort of a transaction the log never held, decided so that no later
 * prepare or commit of it can be (LogTail's final answer to "what became of it" when the answer is
 * nothing). It writes nothing, and consensus lets no other value of its transaction follow it
 * (consensus/values.ts, entryConflict).
 */
export const refusalActions = Object.freeze({ refused: true });

/** Whether an entry's `actions` mark it a refusal. */
export function isRefusalActions(actions: unknown): boolean {
  return flagged(actions, 'refused');
}

/**
 * The body of a decision that a prepared entry is still prepared, certified when another tail or a
 * holder asks what became of its transaction (LogTail.outcomeOf): from then on the group takes no
 * abort of it but one its tails' resolution decides (`resolvedAbortBody`), since the asker may act
 * on "prepared" (commit, when every participant says so).
 */
export const confirmedPreparedBody = Object.freeze({ confirmed: true });

/** The body of an abort decided by the tails' resolution of an expired entry (a participant aborted it). */
export const resolvedAbortBody = Object.freeze({ resolved: true });

/** Whether a decision's body is `confirmedPreparedBody`. */
export function isConfirmedBody(body: unknown): boolean {
  return flagged(body, 'confirmed');
}

/** Whether a decision's body is `resolvedAbortBody`. */
export function isResolvedBody(body: unknown): boolean {
  return flagged(body, 'resolved');
}

/** Whether `value` is an object whose field `flag` is `true` (the markers above). */
function flagged(value: unknown, flag: string): boolean {
  return typeof value === 'object' && value !== null && (value as Record<string, unknown>)[flag] === true;
}
