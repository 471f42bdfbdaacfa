/**
 * Writes a node leaves unsynced because nothing in them can leave the node before a later synced
 * write does: the votes of a consensus group of one member (they are never sent; its decisions leave
 * only in the tail's log write, which is synced) and the pends of a node that is the only member of
 * its blocks' clusters (its commit reaches its own tail, whose log write is synced). A store flushes
 * its batches in order, so that later sync makes them durable too, and a crash before it loses only
 * what nobody was told. A node alone thus pays one fsync per transaction instead of three.
 *
 * The one way such a write could leave first: a member joins between the deferred write and the log
 * write, which then goes to the joiner too. So before a write is sent to another member, `settle`
 * syncs whatever is still owed.
 */
export class DeferredSyncs {
  private owed = 0;
  private paid = 0;

  constructor(private readonly sync: () => Promise<void>) {}

  /** A write was left unsynced (call it after the write is in the store). */
  defer(): void {
    this.owed++;
  }

  /** Whether a deferred write may not be durable yet. */
  get pending(): boolean {
    return this.owed > this.paid;
  }

  /** Makes every deferred write durable (at once when none is owed). */
  async settle(): Promise<void> {
    if (this.owed === this.paid) return;
    const mark = this.owed;
    await this.sync();
    if (this.paid < mark) this.paid = mark;
  }
}
