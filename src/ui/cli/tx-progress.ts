/**
 * Progress of a long `tx` run for the person at the terminal while the results go to a file or a
 * pipe (`optimystic tx --file big.ndjson > results.ndjson`): one line on stderr, redrawn at most a few
 * times a second, with the transactions done, how many failed and the rate; then one summary line.
 * The command writes it only when stderr is a terminal and stdout is not (`progressWanted`): scripts
 * that capture stderr see nothing, and results printed on the terminal are not interleaved with it.
 */
export class TxProgress {
  private done = 0;
  private failed = 0;
  /** Attempts beyond the first of committed transactions: lines that conflicted and ran again. */
  private replays = 0;
  private lastDrawAt: number;
  private drawn = false;
  private readonly startedAt: number;

  constructor(
    private readonly write: (text: string) => void,
    private readonly now: () => number = () => performance.now(),
    private readonly redrawMs = progressRedrawMs,
  ) {
    this.startedAt = now();
    this.lastDrawAt = this.startedAt;
  }

  /** One more result line was written (`attempts`: what a committed one took). */
  result(ok: boolean, attempts = 1): void {
    this.done++;
    if (!ok) this.failed++;
    this.replays += Math.max(0, attempts - 1);
    const now = this.now();
    if (now - this.lastDrawAt < this.redrawMs) return;
    this.lastDrawAt = now;
    this.drawn = true;
    this.write(`\r${this.counts(now)}${clearToEnd}`);
  }

  /** Replaces the progress line with the summary (`interrupted`: the run stopped early). */
  finish(interrupted = false): void {
    const now = this.now();
    const seconds = (now - this.startedAt) / 1000;
    const ok = this.done - this.failed;
    const text =
      `tx: ${countOf(this.done, 'transaction')} in ${seconds.toFixed(1)} s` +
      (seconds > 0 ? ` (${counts.format(this.done / seconds)}/s)` : '') +
      `: ${counts.format(ok)} ok, ${counts.format(this.failed)} failed` +
      (this.replays > 0 ? `, ${countOf(this.replays, 'replay')} after conflicts` : '') +
      (interrupted ? '; interrupted' : '');
    this.write(`${this.drawn ? '\r' : ''}${text}${this.drawn ? clearToEnd : ''}\n`);
  }

  /** Erases the progress line (the run failed: its error follows on a clean line). */
  clear(): void {
    if (this.drawn) this.write(`\r${clearToEnd}`);
    this.drawn = false;
  }

  private counts(now: number): string {
    const seconds = (now - this.startedAt) / 1000;
    const rate = seconds > 0 ? this.done / seconds : 0;
    return `tx: ${counts.format(this.done)} done, ${counts.format(this.failed)} failed, ${counts.format(rate)}/s`;
  }
}

/** Whether a run shows progress: stderr is a terminal and stdout is not. */
export function progressWanted(stdoutIsTTY: boolean | undefined, stderrIsTTY: boolean | undefined): boolean {
  return stderrIsTTY === true && stdoutIsTTY !== true;
}

/** How often the progress line is redrawn at most. */
const progressRedrawMs = 250;
/** ANSI: erase from the cursor to the end of the line (the previous line may have been longer). */
const clearToEnd = '\x1b[K';
const counts = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

function countOf(n: number, noun: string): string {
  return `${counts.format(n)} ${noun}${n === 1 ? '' : 's'}`;
}
