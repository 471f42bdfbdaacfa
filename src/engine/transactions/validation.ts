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
  { readonly ok: true } | { readonly ok: false; readonly winners: number[]; readonly reason: string };

/**
 * Backward validation (optimistic concurrency), per block:
 * - a committed entry after the transaction's base LSN that wrote a block the transaction read or
 *   writes is a conflict (the transaction worked on stale state);
 * - a prepared entry of another transaction conflicts when it writes what the transaction reads or
 *   writes, or reads what the transaction writes (prepared entries hold their read and write sets
 *   until decided; this also rules out write skew across collections).
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
  },
  next: readonly WindowEntry[] = [],
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
  if (winners.length === 0) return { ok: true };
  return { ok: false, winners, reason: `conflicts with transaction(s) at revision ${winners.join(', ')}` };
}

function touches(a: ReadonlySet<BlockId>, b: readonly BlockId[]): boolean {
  for (const id of b) if (a.has(id)) return true;
  return false;
}
