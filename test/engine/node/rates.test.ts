import { expect } from 'chai';
import { ManualClock } from '../../../src/engine/base/clock.js';
import { percentile, rateHistorySeconds, RateMeter } from '../../../src/engine/node/rates.js';

describe('transaction rate and commit latency', () => {
  it('takes nearest-rank percentiles, 0 when there is nothing', () => {
    expect(percentile([], 0.5)).to.equal(0);
    expect(percentile([5], 0.99)).to.equal(5);
    const hundred = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentile(hundred, 0.5)).to.equal(50);
    expect(percentile(hundred, 0.99)).to.equal(99);
  });

  it('counts complete seconds for tx/s and the sparkline history, newest last', () => {
    const clock = new ManualClock(1_000_000);
    const meter = new RateMeter(clock);
    for (let second = 0; second < 5; second++) {
      for (let i = 0; i < 10 * (second + 1); i++) meter.record(2 + second);
      clock.advance(1000);
    }
    const status = meter.status();
    expect(status.txPerSecHistory).to.have.length(rateHistorySeconds);
    expect(status.txPerSecHistory.slice(-5)).to.deep.equal([10, 20, 30, 40, 50]);
    expect(status.commitP50History.slice(-5)).to.deep.equal([2, 3, 4, 5, 6]);
    expect(status.txPerSec).to.equal(30);
    expect(status.commitP50Ms).to.equal(5);
    expect(status.commitP99Ms).to.equal(6);
  });

  it('shows an idle node as idle once its last transactions leave the window', () => {
    const clock = new ManualClock(5_000_000);
    const meter = new RateMeter(clock);
    meter.record(40);
    clock.advance(2 * 60_000);
    const status = meter.status();
    expect(status.txPerSec).to.equal(0);
    expect(status.commitP99Ms).to.equal(0);
    expect(status.txPerSecHistory.every((count) => count === 0)).to.equal(true);
  });
});
