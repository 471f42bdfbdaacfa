import { expect } from 'chai';
import { progressWanted, TxProgress } from '../../src/ui/cli/tx-progress.js';

/** A TxProgress on a clock the test moves, writing into an array. */
function harness(redrawMs = 250): { progress: TxProgress; written: string[]; clock: { ms: number } } {
  const clock = { ms: 1_000 };
  const written: string[] = [];
  const progress = new TxProgress(
    (text) => written.push(text),
    () => clock.ms,
    redrawMs,
  );
  return { progress, written, clock };
}

describe('tx progress on a terminal', () => {
  it('redraws one line at most every redraw period, with the counts and the rate', () => {
    const { progress, written, clock } = harness();
    for (let i = 0; i < 100; i++) {
      clock.ms += 10;
      progress.result(i % 10 !== 9);
    }
    // 1 s of results: redrawn at 250, 500, 750 and 1000 ms, not once per result.
    expect(written).to.have.length(4);
    expect(written.every((text) => text.startsWith('\r') && text.endsWith('\x1b[K'))).to.equal(true);
    expect(written.at(-1)).to.equal('\rtx: 100 done, 10 failed, 100/s\x1b[K');
  });

  it('replaces the line with a summary, and says when the run was interrupted', () => {
    const { progress, written, clock } = harness();
    for (let i = 0; i < 2_500; i++) {
      clock.ms += 1;
      progress.result(true);
    }
    written.length = 0;
    progress.finish(true);
    expect(written).to.deep.equal([
      '\rtx: 2,500 transactions in 2.5 s (1,000/s): 2,500 ok, 0 failed; interrupted\x1b[K\n',
    ]);
  });

  it('counts the replays of committed transactions in the summary', () => {
    const { progress, written, clock } = harness();
    clock.ms += 2_000;
    progress.result(true, 3);
    progress.result(true, 1);
    progress.result(true, 2);
    progress.result(false);
    progress.finish();
    expect(written.at(-1)).to.equal(
      '\rtx: 4 transactions in 2.0 s (2/s): 3 ok, 1 failed, 3 replays after conflicts\x1b[K\n',
    );
  });

  it('prints only the summary for a run too short to draw, and erases a drawn line on failure', () => {
    const short = harness();
    short.clock.ms += 20;
    short.progress.result(false);
    short.progress.clear();
    short.progress.finish();
    expect(short.written).to.deep.equal(['tx: 1 transaction in 0.0 s (50/s): 0 ok, 1 failed\n']);

    const long = harness(10);
    long.clock.ms += 20;
    long.progress.result(true);
    long.progress.clear();
    expect(long.written.at(-1)).to.equal('\r\x1b[K');
  });

  it('is wanted only when stderr is a terminal and stdout is not', () => {
    expect(progressWanted(false, true)).to.equal(true);
    expect(progressWanted(undefined, true)).to.equal(true);
    expect(progressWanted(true, true)).to.equal(false);
    expect(progressWanted(false, false)).to.equal(false);
    expect(progressWanted(false, undefined)).to.equal(false);
  });
});
