import { expect } from 'chai';
import { limits } from '../../../src/engine/base/limits.js';
import { backoffCeilingMs } from '../../../src/engine/transactions/coordinator.js';

describe('pauses between attempts of a conflicted transaction', () => {
  it('scale with how long the conflicted attempt took, so contenders spread over about one attempt', () => {
    expect(backoffCeilingMs(1, 40)).to.equal(40);
    expect(backoffCeilingMs(1, 400)).to.equal(400);
    // A sub-millisecond embedded attempt still spreads over a couple of milliseconds.
    expect(backoffCeilingMs(1, 0)).to.equal(2);
  });

  it('grow with every attempt, and never past transactionBackoffMaxMs', () => {
    const ceilings = Array.from({ length: limits.transactionAttemptsMax }, (_, i) =>
      backoffCeilingMs(i + 1, 20),
    );
    for (let i = 1; i < ceilings.length; i++) expect(ceilings[i]).to.be.at.least(ceilings[i - 1]!);
    expect(ceilings[2]! / ceilings[0]!).to.be.closeTo(2, 1e-9);
    expect(Math.max(...ceilings)).to.equal(limits.transactionBackoffMaxMs);
    expect(backoffCeilingMs(3, 60_000)).to.equal(limits.transactionBackoffMaxMs);
  });
});
