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

  it('finds a copy read behind its snapshot: a commit between the read revision and the base wrote it', () => {
    const entry = (lsn: number, status: EntryStatus, writes: string[], trxId = `t${lsn}`): WindowEntry => ({
      lsn,
      trxId,
      status,
      writes: new Set(writes),
      reads: new Set(),
    });
    // LSN 5 wrote `a` after the revision a stale copy holds (LSN 3); LSN 6 was aborted; 7 is mine.
    const window = [
      entry(3, 'committed', ['a']),
      entry(4, 'committed', ['b']),
      entry(5, 'committed', ['a']),
      entry(6, 'aborted', ['c']),
      entry(7, 'committed', ['c'], 'x'),
    ];
    const writers = new Map<string, WindowEntry[]>();
    for (const e of window) for (const id of e.writes) writers.set(id, [...(writers.get(id) ?? []), e]);
    const check = (readAt: Record<string, number> | undefined, baseLsn = 7) =>
      validateBackward(
        window,
        3,
        { trxId: 'x', baseLsn, reads: Object.keys(readAt ?? {}), writes: [], ...(readAt ? { readAt } : {}) },
        [],
        (id) => writers.get(id),
      );
    expect(check({ a: 5, b: 4 })).to.deep.equal({ ok: true });
    expect(check({ a: 3, b: 4 })).to.deep.include({ ok: false, winners: [5], stale: ['a'] });
    // Aborted entries and the transaction's own entry do not make a copy stale.
    expect(check({ c: 2 })).to.deep.equal({ ok: true });
    // A writer above the base is the ordinary conflict, not a stale copy.
    expect(check({ a: 3 }, 4))
      .to.deep.include({ ok: false, winners: [5] })
      .and.not.have.property('stale');
    // Without writersOf (or readAt) nothing is checked; malformed readAt is ignored.
    expect(
      validateBackward(window, 3, { trxId: 'x', baseLsn: 7, reads: ['a'], writes: [], readAt: { a: 3 } }),
    ).to.deep.equal({ ok: true });
    expect(check(undefined)).to.deep.equal({ ok: true });
    expect(
      validateBackward(
        window,
        3,
        { trxId: 'x', baseLsn: 7, reads: ['a'], writes: [], readAt: ['a', 3] },
        [],
        (id) => writers.get(id),
      ),
    ).to.deep.equal({ ok: true });
    expect(
      validateBackward(
        window,
        3,
        { trxId: 'x', baseLsn: 7, reads: ['a'], writes: [], readAt: { a: '3' } },
        [],
        (id) => writers.get(id),
      ),
    ).to.deep.equal({ ok: true });
  });
});
