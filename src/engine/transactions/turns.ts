import type { Clock } from '../base/clock.js';
import type { BlockId } from '../base/ids.js';

/**
 * Turns for transactions that keep losing (fairness under contention).
 *
 * Optimistic validation lets whoever commits first win. When one coordinator commits on a hot block
 * in fewer round trips than another (it leads the tail's group, or sits next to it), it wins nearly
 * every race: measured on 5 in-process nodes, four clients moving money among ten accounts in one
 * leaf, the fast client made 254 of 300 transfers while two others made 5 between them in 12 s, and
 * some gave up after 32 attempts. Backing off does not help the loser, whose pauses only grow.
 *
 * So a replay tells the tail, with the view it starts from, how many attempts of its transaction
 * failed (its attempts share a lineage: the id of the first one) and which blocks it read and wrote.
 * From its first loss on, the tail holds those blocks for it: other transactions that write one of
 * them are refused meanwhile ("give way") and told how long to wait, and a view lists the holds, so
 * that a transaction that would write a held block waits before it pends. Waiting is not losing: it
 * does not count as an attempt, but as a loss in the waiter's own claim, so the longest waiting gets
 * the next turn. A hold ends when its transaction's entry is written (or, prepared, decided), or
 * after about three of its attempts; each replay renews it; for two of its attempts it is its
 * transaction's alone, and after that one ranked above it (more losses; as many and a smaller
 * lineage, the same order at every tail) may take the block — at once if its holder gave way at
 * another tail meanwhile (`paused`), so that two transactions each holding what the other needs at
 * another tail do not wait for each other until a hold runs out. A transaction
 * that then fails for good (a guard, an expectation) gives its turn back (`withdrawn`). Refusing a
 * commit is always safe (its coordinator runs it again), and holds expire, so a coordinator that dies
 * delays the others by one hold at most. Holds live in the memory of the node deciding the
 * collection.
 *
 * Tried and dropped: answering a waiter's next view only when the turn ends (long-polling) instead
 * of a pause of one attempt: on the bank above it gave 15-17 transfers a second against 18-25, and
 * waking one waiter at a time less still (others that were not waiting took the block meanwhile).
 */
export class Turns {
  private readonly lineages = new Map<string, Lineage>();
  private readonly holds = new Map<BlockId, Hold>();
  /** Entries prepared by transactions with a turn, by trxId: the turn ends when they are decided. */
  private readonly prepared = new Map<string, string>();
  /**
   * How long attempts here usually take (a moving average of what replays report): what a hold
   * counts on for a transaction none of whose attempts ran its course yet (each gave way at once).
   */
  private typicalAttemptMs = holdMinMs;

  constructor(private readonly clock: Clock) {}

  /**
   * Another transaction's hold on a block `writes` names (its loss count, and how long to wait for
   * it: what remains of it, or one attempt of its transaction if less), or undefined when there is
   * none: a request that writes a block held for another transaction gives way to it.
   */
  heldFor(
    lineage: string,
    writes: readonly BlockId[],
  ): { readonly count: number; readonly forMs: number } | undefined {
    if (this.holds.size === 0) return undefined;
    const now = this.clock.now();
    for (const blockId of writes) {
      const hold = this.holds.get(blockId);
      if (hold === undefined || hold.lineage === lineage) continue;
      if (hold.until <= now) {
        this.holds.delete(blockId);
        continue;
      }
      return { count: hold.count, forMs: waitMs(hold, now) };
    }
    return undefined;
  }

  /**
   * A replay of `lineage` whose `losses` attempts so far all failed (it read `reads` and wrote
   * `writes` in this collection, and its last attempt that ran its course took `tookMs`; 0 when none
   * did yet) starts again: those blocks are held for it. Returns how long (ms), or 0 when a block it
   * writes is not (one held for a transaction ranked above it, or still protected).
   *
   * An attempt that gave way at once says nothing of how long one takes. Counting on it made holds
   * churn: a transaction whose only attempt gave way after 2 ms held its blocks, protected for 4 ms,
   * and the others, told to come back within 2 ms, took them from it before it could commit, and it
   * from them (on the fault run's bank, up to 36 rounds of view and execute for one transfer).
   */
  claim(
    lineage: string,
    reads: readonly BlockId[],
    writes: readonly BlockId[],
    losses: number,
    tookMs: number,
  ): number {
    const now = this.clock.now();
    let known = this.lineages.get(lineage);
    if (known === undefined) {
      this.prune(now);
      known = { count: 0, at: now, held: [] };
    }
    // Most recently seen last: pruning removes from the front.
    this.lineages.delete(lineage);
    this.lineages.set(lineage, known);
    known.count = Math.max(known.count, losses);
    known.at = now;
    if (tookMs > 0)
      this.typicalAttemptMs = Math.min(
        holdMaxMs,
        Math.max(1, this.typicalAttemptMs + (tookMs - this.typicalAttemptMs) / typicalWeight),
      );
    if (known.count < holdAfterLosses) return 0;
    const attemptMs = tookMs > 0 ? tookMs : Math.round(this.typicalAttemptMs);
    const holdMs = Math.min(holdMaxMs, Math.max(holdMinMs, holdAttempts * attemptMs));
    const missed = new Set<BlockId>();
    for (const blockId of new Set([...reads, ...writes])) {
      const hold = this.holds.get(blockId);
      // Another's live hold stays its own for two of its attempts (those who wait for it are told to
      // come back after one) unless it paused, and after that unless this transaction ranks above it.
      if (
        hold !== undefined &&
        hold.lineage !== lineage &&
        hold.until > now &&
        ((!hold.paused && now - hold.since < protectedAttempts * hold.attemptMs) ||
          !outranks(known.count, lineage, hold))
      ) {
        missed.add(blockId);
        continue;
      }
      if (hold === undefined && this.holds.size >= holdsMax) {
        this.dropExpiredHolds(now);
        if (this.holds.size >= holdsMax) {
          missed.add(blockId);
          continue;
        }
      }
      this.holds.set(blockId, {
        lineage,
        count: known.count,
        since: hold?.lineage === lineage && hold.until > now ? hold.since : now,
        until: now + holdMs,
        attemptMs: Math.max(1, attemptMs),
        paused: false,
      });
      if (hold?.lineage !== lineage) known.held.push(blockId);
    }
    return writes.some((blockId) => missed.has(blockId)) ? 0 : holdMs;
  }

  /**
   * The blocks held now for transactions other than `lineage`, with how long to wait for each (as
   * heldFor), at most `max` of them: a view lists them, so that a transaction that would write one
   * waits before it does the work the tail would refuse.
   */
  heldNow(lineage: string | undefined, max: number): { readonly blockId: BlockId; readonly forMs: number }[] {
    const held: { blockId: BlockId; forMs: number }[] = [];
    if (this.holds.size === 0) return held;
    const now = this.clock.now();
    for (const [blockId, hold] of this.holds) {
      if (hold.until <= now) {
        this.holds.delete(blockId);
        continue;
      }
      if (hold.lineage === lineage) continue;
      held.push({ blockId, forMs: waitMs(hold, now) });
      if (held.length >= max) break;
    }
    return held;
  }

  /**
   * The tail accepted an attempt of `lineage` and wrote its entry: the blocks held for it are free
   * again — or, for an entry it prepared (`prepared`: its trxId), once that is decided (`decided`).
   */
  accepted(lineage: string, prepared?: string): void {
    if (prepared !== undefined && this.lineages.has(lineage)) {
      if (this.prepared.size >= lineagesMax) this.prepared.clear();
      this.prepared.set(prepared, lineage);
      return;
    }
    this.release(lineage);
  }

  /**
   * The transaction gave way at another tail (its coordinator says so): until its next claim here, a
   * transaction ranked above it may take what this tail holds for it. Without this, two transactions
   * that each held a block the other needed at another tail waited for each other until a hold ran out.
   */
  paused(lineage: string): void {
    const known = this.lineages.get(lineage);
    if (known === undefined) return;
    for (const blockId of known.held) {
      const hold = this.holds.get(blockId);
      if (hold?.lineage === lineage) this.holds.set(blockId, { ...hold, paused: true });
    }
  }

  /** The transaction failed for good (its coordinator says so): its turn ends. */
  withdrawn(lineage: string): void {
    this.release(lineage);
  }

  /** A prepared entry of this tail was decided: the turn of its transaction ends. */
  decided(trxId: string): void {
    const lineage = this.prepared.get(trxId);
    if (lineage === undefined) return;
    this.prepared.delete(trxId);
    this.release(lineage);
  }

  private release(lineage: string): void {
    const known = this.lineages.get(lineage);
    if (known === undefined) return;
    for (const blockId of known.held)
      if (this.holds.get(blockId)?.lineage === lineage) this.holds.delete(blockId);
    // The count stays (until pruned): a prepared attempt another tail refused comes back.
    known.held = [];
  }

  /** Transactions and holds known (tests). */
  get size(): { readonly lineages: number; readonly holds: number } {
    return { lineages: this.lineages.size, holds: this.holds.size };
  }

  /** Forgets transactions not heard of for long, and the oldest ones beyond the bound. */
  private prune(now: number): void {
    if (this.lineages.size < lineagesMax) return;
    for (const [lineage, known] of this.lineages) {
      if (this.lineages.size < lineagesMax && now - known.at < lineagesKeptMs) break;
      this.release(lineage);
      this.lineages.delete(lineage);
    }
  }

  private dropExpiredHolds(now: number): void {
    for (const [blockId, hold] of this.holds) if (hold.until <= now) this.holds.delete(blockId);
  }
}

/**
 * Whether a transaction that lost `count` times ranks above a hold's: more losses, or as many and the
 * smaller lineage (one order at every tail, so two transactions never each outrank the other).
 */
function outranks(count: number, lineage: string, hold: Hold): boolean {
  return count > hold.count || (count === hold.count && lineage < hold.lineage);
}

/** How long a writer of a held block waits: its holder should be done within about one attempt. */
function waitMs(hold: Hold, now: number): number {
  return Math.min(hold.until - now, hold.attemptMs);
}

interface Lineage {
  /** Attempts of the transaction that failed, as its replays report them. */
  count: number;
  /** When it was last heard of (clock ms). */
  at: number;
  /** The blocks held for it. */
  held: BlockId[];
}

interface Hold {
  readonly lineage: string;
  /** Its transaction's losses when the hold was taken. */
  readonly count: number;
  /** When its transaction took the block (a renewal keeps it). */
  readonly since: number;
  readonly until: number;
  /** How long its transaction's last attempt took (the usual attempt here if none ran its course). */
  readonly attemptMs: number;
  /** Its transaction gave way at another tail since its last claim here (`paused`): unprotected. */
  readonly paused: boolean;
}

/** A transaction's blocks are held for its replays from its first loss on. */
const holdAfterLosses = 1;
/** For this many of its transaction's attempts, a hold cannot pass to another transaction. */
const protectedAttempts = 2;
/** A hold lasts this many of the transaction's attempts (the last one's duration)... */
const holdAttempts = 3;
/** ...within these bounds: long enough for an embedded replay, at most a second. */
const holdMinMs = 20;
const holdMaxMs = 1_000;
/** The typical attempt moves by 1/this of the difference with each duration reported. */
const typicalWeight = 8;
/** Transactions remembered, and how long one is kept at least once there are more. */
const lineagesMax = 4_096;
const lineagesKeptMs = 10_000;
/** Blocks held at once. */
const holdsMax = 4_096;
