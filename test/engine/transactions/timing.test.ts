import { expect } from 'chai';
import type { CommitPhase, TransactionTiming } from '../../../src/engine/transactions/coordinator.js';
import { slowTransactionText } from '../../../src/engine/node/node.js';
import { CommitBetween, memoryNode, ok, put } from '../../helpers/solo.js';

describe("where a transaction's time goes (coordinator timing)", () => {
  it('reports each phase of each attempt, and each transaction with its phases summed', async () => {
    const phases: [CommitPhase, number][] = [];
    const finished: TransactionTiming[] = [];
    const between = new CommitBetween();
    const { node } = await memoryNode(4, {
      coordinator: {
        onPhase: (phase, ms) => phases.push([phase, ms]),
        onFinished: (timing) => finished.push(timing),
        afterExecute: between.hook,
      },
    });
    await node.createCollection('c', 'tree');
    phases.length = 0;
    finished.length = 0;

    const written = ok(await node.transact(put('c', 'k', { n: 1 })));
    expect(phases.map(([phase]) => phase)).to.deep.equal(['execute', 'pend', 'decide', 'finish']);
    expect(finished).to.have.length(1);
    const [write] = finished;
    expect(write!.trx).to.equal(written.trx);
    expect(write!.ok).to.equal(true);
    expect(write!.attempts).to.equal(1);
    const sum = Object.values(write!.phases).reduce((a, b) => a + b, 0);
    expect(sum).to.be.at.most(write!.ms);
    for (const [, ms] of phases) expect(ms).to.be.at.least(0);

    // A read-only transaction checks instead of pending and deciding.
    ok(await node.transact({ actions: [{ collection: 'c', op: 'get', key: 'k' }] }));
    expect(Object.keys(finished[1]!.phases).sort()).to.deep.equal(['check', 'execute']);

    // A transaction that loses to a commit between its execution and its own commit runs twice,
    // with a wait between: both attempts count, and their phases add up.
    between.arm(() =>
      node.transact({ actions: [{ collection: 'c', op: 'incr', key: 'k', path: 'n', by: 1 }] }),
    );
    ok(await node.transact({ actions: [{ collection: 'c', op: 'incr', key: 'k', path: 'n', by: 10 }] }));
    ok(await between.done);
    const replayed = finished.find((timing) => timing.attempts === 2);
    expect(replayed, JSON.stringify(finished)).to.not.equal(undefined);
    expect(replayed!.phases.wait).to.be.a('number');
    expect(phases.filter(([phase]) => phase === 'execute').length).to.equal(5);

    // A failed guard is final: reported as failed, with its code.
    const failed = await node.transact({
      actions: [{ collection: 'c', op: 'incr', key: 'k', path: 'n', by: -100, min: 0 }],
    });
    expect(failed.ok).to.equal(false);
    expect(finished.at(-1)).to.include({ ok: false, code: 'EXPECT_FAILED', attempts: 1, trx: '' });
    await node.close();
  });

  it('never lets a failing observer change an outcome', async () => {
    const { node } = await memoryNode(5, {
      coordinator: {
        onPhase: () => {
          throw new Error('observer broke');
        },
        onFinished: () => {
          throw new Error('observer broke');
        },
      },
    });
    await node.createCollection('c', 'tree');
    ok(await node.transact(put('c', 'k', { n: 1 })));
    const failed = await node.transact({
      actions: [{ collection: 'c', op: 'incr', key: 'k', path: 'n', by: -5, min: 0 }],
    });
    expect(failed.ok).to.equal(false);
    expect(failed.ok ? '' : failed.error.code).to.equal('EXPECT_FAILED');
    await node.close();
  });

  it('words a slow transaction as the node logs it', () => {
    expect(
      slowTransactionText({
        trx: 'abc',
        ok: true,
        attempts: 2,
        ms: 5138.4,
        phases: { wait: 180.2, decide: 4912, execute: 0.44, pend: 1.26 },
      }),
    ).to.equal(
      'slow transaction abc: committed in 5138 ms, 2 attempts (execute 0.4, pend 1.3, decide 4912, wait 180 ms)',
    );
    expect(
      slowTransactionText({ trx: '', ok: false, code: 'UNAVAILABLE', attempts: 1, ms: 10_000, phases: {} }),
    ).to.equal('slow transaction: failed (UNAVAILABLE) in 10000 ms, 1 attempt');
  });
});
