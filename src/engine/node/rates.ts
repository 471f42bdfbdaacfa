/**
 * Transaction rate and commit latency of the transactions a node serves: per-second buckets for the
 * dashboard's sparklines, and percentiles over a recent window. Time comes from an injected clock.
 */
import type { Clock } from '../base/clock.js';
import type { RateStatus } from './status.js';

/** Seconds of history kept for sparklines (a dashboard row is at most this wide). */
export const rateHistorySeconds = 60;
/** The tx/s figure averages this many complete seconds: steady enough to read, quick to react. */
const rateAverageSeconds = 5;
/** Latencies kept for percentiles (the most recent ones): p99 of 4096 samples is meaningful. */
const latencySamplesMax = 4096;
/** Percentiles cover transactions of the last minute; an idle node shows 0, not stale figures. */
const latencyWindowMs = 60_000;

interface Bucket {
  readonly second: number;
  count: number;
  latencies: number[];
}

export class RateMeter {
  private readonly buckets: Bucket[] = [];
  private readonly samples: { at: number; ms: number }[] = [];

  constructor(private readonly clock: Clock) {}

  /** Records one committed transaction and how long it took. */
  record(latencyMs: number): void {
    const now = this.clock.now();
    const second = Math.floor(now / 1000);
    let bucket = this.buckets.at(-1);
    if (bucket === undefined || bucket.second !== second) {
      bucket = { second, count: 0, latencies: [] };
      this.buckets.push(bucket);
      if (this.buckets.length > rateHistorySeconds + 1) this.buckets.shift();
    }
    bucket.count++;
    if (bucket.latencies.length < latencySamplesMax) bucket.latencies.push(latencyMs);
    this.samples.push({ at: now, ms: latencyMs });
    if (this.samples.length > latencySamplesMax) this.samples.shift();
  }

  status(): RateStatus {
    const now = this.clock.now();
    const current = Math.floor(now / 1000);
    // Complete seconds only: the current one is still filling.
    const seconds = Array.from({ length: rateHistorySeconds }, (_, i) => current - rateHistorySeconds + i);
    const bySecond = new Map(this.buckets.map((bucket) => [bucket.second, bucket]));
    const txPerSecHistory = seconds.map((second) => bySecond.get(second)?.count ?? 0);
    const commitP50History = seconds.map((second) => percentile(bySecond.get(second)?.latencies ?? [], 0.5));
    const recent = txPerSecHistory.slice(-rateAverageSeconds);
    const txPerSec = recent.reduce((sum, count) => sum + count, 0) / recent.length;
    const window = this.samples
      .filter((sample) => now - sample.at <= latencyWindowMs)
      .map((sample) => sample.ms);
    return {
      txPerSec: round(txPerSec),
      commitP50Ms: round(percentile(window, 0.5)),
      commitP99Ms: round(percentile(window, 0.99)),
      txPerSecHistory,
      commitP50History: commitP50History.map(round),
    };
  }
}

/** Nearest-rank percentile; 0 for no samples. */
export function percentile(values: readonly number[], p: number): number {
  return nearestRank(Float64Array.from(values).sort(), p);
}

/** Nearest-rank percentile of values already sorted ascending; 0 for none. */
export function nearestRank(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
