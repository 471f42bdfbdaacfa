import { expect } from 'chai';
import { SeededRng } from '../../../src/engine/base/rng.js';
import type { EntryStatus } from '../../../src/engine/collections/log/log-block.js';
import { validateBackward, type WindowEntry } from '../../../src/engine/transactions/validation.js';

const blocks = ['a', 'b', 'c', 'd', 'e', 'f'];

function someBlocks(rng: SeededRng): string[] {
  return blocks.filter(() => rng.int(3) === 0);
}

/** A window of contiguous LSNs from `first`, with random statuses and read and write sets. */
function randomWindow(rng: SeededRng, first: number, length: number): WindowEntry[] {
  const statuses: EntryStatus[] = ['committed', 'committed', 'prepared', 'aborted'];
  return Array.from({ length }, (_, i) => {
    const status = statuses[rng.int(statuses.length)]!;
    return {
      lsn: first + i,
      trxId: `t${first + i}`,
      status,
      writes: new Set(someBlocks(rng)),
      reads: new Set(status === 'prepared' ? someBlocks(rng) : []),
    };
  });
}

describe('backward validation', () => {
  it('judges a request against planned entries that continue the window as if they were in it', () => {
    const rng = new SeededRng(0x7a11d);
    let conflicts = 0;
    for (let i = 0; i < 3000; i++) {
      const first = 1 + rng.int(5);
      const all = randomWindow(rng, first, rng.int(12));
      const split = rng.int(all.length + 1);
      const request = {
        trxId: rng.int(4) === 0 && all.length > 0 ? all[rng.int(all.length)]!.trxId : 'mine',
        baseLsn: first - 2 + rng.int(all.length + 3),
        reads: someBlocks(rng),
        writes: someBlocks(rng),
      };
      const joined = validateBackward(all, first, request);
      expect(validateBackward(all.slice(0, split), first, request, all.slice(split))).to.deep.equal(joined);
      if (!joined.ok) conflicts++;
    }
    // Both outcomes were exercised.
    expect(conflicts).to.be.within(300, 2700);
  });

  it('finds the conflicts a committed write, a prepared write and a prepared read make', () => {
    const entry = (
      lsn: number,
      status: EntryStatus,
      writes: string[],
      reads: string[] = [],
    ): WindowEntry => ({
      lsn,
      trxId: `t${lsn}`,
      status,
      writes: new Set(writes),
      reads: new Set(reads),
    });
    const window = [entry(1, 'committed', ['a']), entry(2, 'committed', ['b'])];
    const next = [entry(3, 'prepared', ['c'], ['d']), entry(4, 'aborted', ['e'])];
    const check = (baseLsn: number, reads: string[], writes: string[]) =>
      validateBackward(window, 1, { trxId: 'x', baseLsn, reads, writes }, next);
    expect(check(1, ['a'], [])).to.deep.include({ ok: true });
    expect(check(1, ['b'], [])).to.deep.include({ ok: false, winners: [2] });
    expect(check(2, [], ['c'])).to.deep.include({ ok: false, winners: [3] });
    expect(check(2, [], ['d'])).to.deep.include({ ok: false, winners: [3] });
    expect(check(2, ['d'], [])).to.deep.include({ ok: true });
    expect(check(2, ['e'], ['e'])).to.deep.include({ ok: true });
    expect(check(-1, ['a'], [])).to.deep.include({ ok: false, winners: [] });
  });
});
