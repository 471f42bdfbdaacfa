import { expect } from 'chai';
import { ManualClock } from '../../../src/engine/base/clock.js';
import { TimingMeter, timingWindowMs } from '../../../src/engine/node/timings.js';

describe("where a node's time goes (timings)", () => {
  it('reports count, p50, p99 and max per name, kind by kind', () => {
    const meter = new TimingMeter(new ManualClock());
    for (let ms = 1; ms <= 100; ms++) meter.record('phases', 'pend', ms);
    meter.record('phases', 'decide', 7.256);
    meter.record('sent', 'repo.pend', 3);
    const status = meter.status();
    expect(status.windowMs).to.equal(timingWindowMs);
    expect(status.phases['pend']).to.deep.equal({
      count: 100,
      perSec: 100,
      p50Ms: 50,
      p99Ms: 99,
      maxMs: 100,
    });
    expect(status.phases['decide']).to.deep.equal({
      count: 1,
      perSec: 1,
      p50Ms: 7.26,
      p99Ms: 7.26,
      maxMs: 7.26,
    });
    expect(status.sent).to.deep.equal({ 'repo.pend': { count: 1, perSec: 1, p50Ms: 3, p99Ms: 3, maxMs: 3 } });
    expect(status.served).to.deep.equal({});
  });

  it('forgets what left the window, so an idle node shows nothing stale', () => {
    const clock = new ManualClock();
    const meter = new TimingMeter(clock);
    meter.record('served', 'repo.apply', 40);
    clock.advance(timingWindowMs / 2);
    meter.record('served', 'repo.apply', 2);
    meter.record('served', 'tail.view', 1);
    clock.advance(timingWindowMs / 2 + 1);
    expect(meter.status().served).to.deep.equal({
      'repo.apply': { count: 1, perSec: 0.02, p50Ms: 2, p99Ms: 2, maxMs: 2 },
      'tail.view': { count: 1, perSec: 0.02, p50Ms: 1, p99Ms: 1, maxMs: 1 },
    });
    clock.advance(timingWindowMs);
    expect(meter.status().served).to.deep.equal({});
  });

  it('keeps the newest samples per name, a bounded number of names, and ignores nonsense durations', () => {
    const meter = new TimingMeter(new ManualClock());
    for (let i = 0; i < 5000; i++) meter.record('sent', 'repo.get', i < 5000 - 1024 ? 1000 : 1);
    expect(meter.status().sent['repo.get']).to.deep.equal({
      count: 5000,
      perSec: 5000,
      p50Ms: 1,
      p99Ms: 1,
      maxMs: 1,
    });
    for (let i = 0; i < 200; i++) meter.record('served', `proto.type${i}`, 1);
    expect(Object.keys(meter.status().served)).to.have.length(64);
    meter.record('phases', 'execute', -1);
    meter.record('phases', 'execute', Number.NaN);
    meter.record('phases', 'execute', Number.POSITIVE_INFINITY);
    expect(meter.status().phases).to.deep.equal({});
  });
  it('counts every request of a busy minute exactly, and its rate over the time the node has been up', () => {
    const clock = new ManualClock(1_000_000);
    const meter = new TimingMeter(clock);
    // 20 s up, 50 a second (1,000 in all), then 40 s more at 50 a second: 3,000 in the window.
    for (let s = 0; s < 20; s++) {
      for (let i = 0; i < 50; i++) meter.record('served', 'repo.pend', 1);
      clock.advance(1000);
    }
    expect(meter.status().served['repo.pend']).to.include({ count: 1000, perSec: 50 });
    for (let s = 0; s < 40; s++) {
      for (let i = 0; i < 50; i++) meter.record('served', 'repo.pend', 2);
      clock.advance(1000);
    }
    // Beyond the 1,024 durations kept the count stays exact; the rate covers the whole window.
    expect(meter.status().served['repo.pend']).to.include({ count: 3000, perSec: 50, p50Ms: 2 });
    // Half a minute later only the last 30 s of records are in the window.
    clock.advance(30_000);
    expect(meter.status().served['repo.pend']).to.include({ count: 1500, perSec: 25 });
  });

  it('sums up the event loop per period: mean and busiest share, and how late timers fired', () => {
    const clock = new ManualClock();
    const meter = new TimingMeter(clock);
    expect(meter.status().loop).to.equal(undefined);
    for (const [busy, late] of [
      [0.2, 0.1],
      [0.4, 3],
      [0.9, 12.5],
      [0.1, 0],
    ] as const) {
      meter.recordLoop(busy, late);
      clock.advance(1000);
    }
    meter.recordLoop(Number.NaN, 1);
    meter.recordLoop(1.7, -2);
    expect(meter.status().loop).to.deep.equal({ periods: 5, busyPct: 52, busyMaxPct: 100, lateP99Ms: 12.5 });
    clock.advance(timingWindowMs + 1);
    expect(meter.status().loop).to.equal(undefined);
  });
});
