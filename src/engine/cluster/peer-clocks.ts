/** How long a peer's clock estimate stands before newer messages replace it (clocks drift, or are set). */
const estimateLifetimeMs = 60_000;
/** Peers whose clocks are tracked at most (the oldest estimate goes first). */
const peersMax = 4096;

interface Estimate {
  /** The peer's clock minus this node's, in ms, as a bound from below: the largest sample. */
  readonly offsetMs: number;
  /** This node's clock when the estimate was taken. */
  readonly at: number;
}

/**
 * What this node knows of its peers' clocks, from the times their messages carry (a pend, a prepare,
 * a hello and its answer say what the sender's clock read when it sent them).
 *
 * A message sent when the peer's clock read `theirs` and received here at `arrivedAt` shows
 * `theirs - arrivedAt` = the offset minus the time it spent on the way: a bound from below. The
 * estimate is the largest such bound in the last `estimateLifetimeMs` — the offset less the quickest
 * trip seen, a fraction of a millisecond on a LAN — so a message held up on the way neither moves it
 * nor lengthens a deadline it carries (`localDeadline`).
 */
export class PeerClocks {
  private readonly estimates = new Map<string, Estimate>();

  /**
   * @param onOffset told each time a peer's estimate is taken anew or moves by more than a second
   *   (to report clocks that disagree); its failure is not the tracker's.
   */
  constructor(private readonly onOffset?: (peer: string, offsetMs: number) => void) {}

  /**
   * Records a message from `peer` sent when its clock read `theirs` and received when this node's
   * read `arrivedAt`; the peer's offset as now estimated.
   */
  observe(peer: string, theirs: number, arrivedAt: number): number {
    const sample = theirs - arrivedAt;
    if (!Number.isFinite(sample)) return this.estimates.get(peer)?.offsetMs ?? 0;
    const known = this.estimates.get(peer);
    if (known !== undefined && sample <= known.offsetMs && arrivedAt - known.at < estimateLifetimeMs)
      return known.offsetMs;
    this.estimates.delete(peer);
    if (this.estimates.size >= peersMax) this.estimates.delete(this.estimates.keys().next().value!);
    this.estimates.set(peer, { offsetMs: sample, at: arrivedAt });
    if (known === undefined || Math.abs(sample - known.offsetMs) >= 1_000) {
      try {
        this.onOffset?.(peer, sample);
      } catch {
        // A report that failed changes nothing here.
      }
    }
    return sample;
  }

  /** The peer's clock minus this node's, in ms, when a message of it has said. */
  offsetOf(peer: string): number | undefined {
    return this.estimates.get(peer)?.offsetMs;
  }

  /**
   * A deadline `peer` set by its own clock and sent when that clock read `sentAt`, as this node's
   * clock (`now`) reads it: the difference between the clocks taken out (see the class comment).
   * Not a time: left as it was, for validation to refuse.
   */
  localDeadline(peer: string, deadline: number, sentAt: number, now: number): number {
    const offset = this.observe(peer, sentAt, now);
    if (!Number.isSafeInteger(deadline) || deadline < 0) return deadline;
    return Math.max(0, Math.round(deadline - offset));
  }
}
