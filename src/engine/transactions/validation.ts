import type { BlockId, TrxId } from '../base/ids.js';
import type { EntryStatus } from '../collections/log/log-block.js';

/** What backward validation needs to know about a recent log entry. */
export interface WindowEntry {
  readonly lsn: number;
  readonly trxId: TrxId;
  status: EntryStatus;
  readonly writes: ReadonlySet<BlockId>;
  readonly reads: ReadonlySet<BlockId>;
}

export type ValidationResult =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly winners: number[];
      readonly reason: string;
      /** Blocks whose copy was read behind the snapshot (see `readAt`). */
      readonly stale?: BlockId[];
    };

/** The window's entries that wrote a block, ascending LSN (undefined: none in the window). */
export type WritersOf = (blockId: BlockId) => readonly WindowEntry[] | undefined;

/**
 * Backward validation (optimistic concurrency), per block:
 * - a committed entry after the transaction's base LSN that wrote a block the transaction read or
 *   writes is a conflict (the transaction worked on stale state);
 * - a prepared entry of another transaction conflicts when it writes what the transaction reads or
 *   writes, or reads what the transaction writes (prepared entries hold their read and write sets
 *   until decided; this also rules out write skew across collections).
 * - a block read at a revision written at LSN `readAt[block]` below the base, that a committed entry
 *   after that LSN and at or below the base wrote, was read from a copy that missed that commit
 *   (stale: the snapshot includes it, the copy did not). Checked through `writersOf`, as far back as
 *   the window reaches.
 * `oldestLsn` is the lowest LSN the window still holds: a base below it cannot be checked. `next`
 * continues the window (entries planned ahead of this request in the same batch, not yet in it).
 */
export function validateBackward(
  window: readonly WindowEntry[],
  oldestLsn: number,
  request: {
    readonly trxId: TrxId;
    readonly baseLsn: number;
    readonly reads: readonly BlockId[];
    readonly writes: readonly BlockId[];
    readonly readAt?: unknown;
  },
  next: readonly WindowEntry[] = [],
  writersOf?: WritersOf,
): ValidationResult {
  if (request.baseLsn + 1 < oldestLsn) {
    return {
      ok: false,
      winners: [],
      reason: `read at revision ${request.baseLsn}, older than the validation window`,
    };
  }
  const winners: number[] = [];
  // The window holds contiguous LSNs in order, and every prepared entry lies above any base a session
  // can read at (a session reads at the stable LSN, below every undecided entry), so only entries
  // after the base need a look.
  const first = window[0]?.lsn ?? next[0]?.lsn ?? 0;
  const start = Math.max(0, request.baseLsn + 1 - first);
  for (let i = start; i < window.length + next.length; i++) {
    const entry = i < window.length ? window[i]! : next[i - window.length]!;
    if (entry.trxId === request.trxId) continue;
    if (entry.status === 'committed' && entry.lsn > request.baseLsn) {
      if (touches(entry.writes, request.reads) || touches(entry.writes, request.writes))
        winners.push(entry.lsn);
    } else if (entry.status === 'prepared') {
      if (
        touches(entry.writes, request.reads) ||
        touches(entry.writes, request.writes) ||
        touches(entry.reads, request.writes)
      )
        winners.push(entry.lsn);
    }
  }
  const stale = writersOf === undefined ? undefined : staleCopies(request, writersOf, winners);
  if (stale !== undefined) {
    return {
      ok: false,
      winners: winners.sort((a, b) => a - b),
      reason: `read a copy of block(s) ${stale.join(', ')} that missed the commit(s) at revision ${winners.join(', ')}`,
      stale,
    };
  }
  if (winners.length === 0) return { ok: true };
  return { ok: false, winners, reason: `conflicts with transaction(s) at revision ${winners.join(', ')}` };
}

/**
 * The blocks of `request.readAt` a committed entry of the window wrote after the LSN the read
 * revision was written at and at or below the base (their LSNs added to `winners`); undefined if none.
 * `readAt` comes from the coordinator (over the network, unchecked): anything but a block → LSN record
 * of numbers is ignored.
 */
function staleCopies(
  request: { readonly trxId: TrxId; readonly baseLsn: number; readonly readAt?: unknown },
  writersOf: WritersOf,
  winners: number[],
): BlockId[] | undefined {
  const readAt = request.readAt;
  if (typeof readAt !== 'object' || readAt === null || Array.isArray(readAt)) return undefined;
  let stale: BlockId[] | undefined;
  for (const [blockId, lsn] of Object.entries(readAt as Record<string, unknown>)) {
    if (typeof lsn !== 'number' || lsn >= request.baseLsn) continue;
    const writers = writersOf(blockId);
    if (writers === undefined) continue;
    // Newest first: a fresh copy's newest committed writer at or below the base is at most `lsn`.
    for (let i = writers.length - 1; i >= 0; i--) {
      const writer = writers[i]!;
      if (writer.lsn <= lsn) break;
      if (writer.lsn > request.baseLsn || writer.status !== 'committed' || writer.trxId === request.trxId)
        continue;
      (stale ??= []).push(blockId);
      if (!winners.includes(writer.lsn)) winners.push(writer.lsn);
      break;
    }
  }
  return stale;
}

function touches(a: ReadonlySet<BlockId>, b: readonly BlockId[]): boolean {
  for (const id of b) if (a.has(id)) return true;
  return false;
}
