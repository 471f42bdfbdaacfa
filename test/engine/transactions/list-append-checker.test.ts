import { expect } from 'chai';
import { checkListAppend, ListAppendGenerator, type Txn } from '../../helpers/list-append.js';

const append = (key: string, value: number) => ({ f: 'append' as const, key, value });
const read = (key: string, value: number[]) => ({ f: 'read' as const, key, value });
const kinds = (history: Txn[], final: Record<string, number[]>): string[] =>
  checkListAppend(history, new Map(Object.entries(final))).anomalies.map((a) => a.kind);

describe('list-append history checker', () => {
  it('finds nothing wrong in a serial history', () => {
    const history: Txn[] = [
      { id: 1, status: 'ok', ops: [append('a', 1), read('b', [])] },
      { id: 2, status: 'ok', ops: [read('a', [1]), append('b', 2), read('b', [2])] },
      { id: 3, status: 'ok', ops: [read('a', [1]), read('b', [2]), append('a', 3)] },
      { id: 4, status: 'fail', ops: [append('a', 4)] },
      // Unknown outcomes: one committed (its element is seen), one did not.
      { id: 5, status: 'info', ops: [append('b', 5)] },
      { id: 6, status: 'info', ops: [append('b', 6)] },
    ];
    const result = checkListAppend(
      history,
      new Map([
        ['a', [1, 3]],
        ['b', [2, 5]],
      ]),
    );
    expect(result.anomalies).to.deep.equal([]);
    expect(result.committed).to.equal(4);
    expect(result.edges).to.be.greaterThan(0);
  });

  it('finds a write cycle (G0)', () => {
    const history: Txn[] = [
      { id: 1, status: 'ok', ops: [append('a', 1), append('b', 11)] },
      { id: 2, status: 'ok', ops: [append('a', 2), append('b', 12)] },
    ];
    expect(kinds(history, { a: [1, 2], b: [12, 11] })).to.deep.equal(['G0']);
  });

  it('finds a cycle of writes and reads (G1c)', () => {
    const history: Txn[] = [
      { id: 1, status: 'ok', ops: [append('a', 1), read('b', [2])] },
      { id: 2, status: 'ok', ops: [append('b', 2), read('a', [1])] },
    ];
    expect(kinds(history, { a: [1], b: [2] })).to.deep.equal(['G1c']);
  });

  it('finds write skew: an anti-dependency cycle (G2)', () => {
    const history: Txn[] = [
      { id: 1, status: 'ok', ops: [read('a', []), append('b', 1)] },
      { id: 2, status: 'ok', ops: [read('b', []), append('a', 2)] },
    ];
    expect(kinds(history, { a: [2], b: [1] })).to.deep.equal(['G2']);
  });

  it('finds lost appends, aborted and garbage reads, duplicates, disagreeing orders and blind own reads', () => {
    expect(kinds([{ id: 1, status: 'ok', ops: [append('a', 1)] }], { a: [] })).to.deep.equal(['lost-append']);
    expect(
      kinds(
        [
          { id: 1, status: 'fail', ops: [append('a', 1)] },
          { id: 2, status: 'ok', ops: [read('a', [1])] },
        ],
        { a: [] },
      ),
    ).to.include('aborted-read');
    expect(kinds([{ id: 1, status: 'ok', ops: [read('a', [99])] }], { a: [] })).to.include('garbage-read');
    expect(
      kinds(
        [
          { id: 1, status: 'ok', ops: [append('a', 1)] },
          { id: 2, status: 'ok', ops: [read('a', [1, 1])] },
        ],
        {
          a: [1],
        },
      ),
    ).to.include('duplicate-element');
    expect(
      kinds(
        [
          { id: 1, status: 'ok', ops: [append('a', 1)] },
          { id: 2, status: 'ok', ops: [append('a', 2)] },
          { id: 3, status: 'ok', ops: [read('a', [1, 2])] },
          { id: 4, status: 'ok', ops: [read('a', [2, 1])] },
        ],
        { a: [1, 2] },
      ),
    ).to.include('incompatible-order');
    expect(kinds([{ id: 1, status: 'ok', ops: [append('a', 5), read('a', [])] }], { a: [5] })).to.deep.equal([
      'internal',
    ]);
  });

  it('generates unique values per client and at most one append per key per transaction', () => {
    const seen = new Set<number>();
    for (const stream of [1, 2]) {
      const generator = new ListAppendGenerator(7, stream, 3);
      for (let i = 0; i < 200; i++) {
        const ops = generator.ops();
        expect(ops.length).to.be.within(1, 4);
        const keys = ops.filter((op) => op.f === 'append').map((op) => op.key);
        expect(new Set(keys).size).to.equal(keys.length);
        for (const op of ops)
          if (op.f === 'append') {
            expect(seen.has(op.value)).to.equal(false);
            seen.add(op.value);
          }
      }
    }
  });
});
