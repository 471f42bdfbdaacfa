/**
 * Where a node's time goes: how long each phase of the transactions it coordinates took, how long the
 * requests it sent took to be answered, and how long it took to handle the requests it served, each
 * as a count and percentiles over the last minute (`node status`, the `timings` field). A commit's
 * latency is made of these: a slow `decide` phase with a slow `repo.apply` sent by the tail points at
 * the log write, a slow served `repo.pend` at a holder's disk. Time comes from an injected clock.
 */
import type { Clock } from '../base/clock.js';
import { nearestRank } from './rates.js';
import type { LoopFigures, TimingFigures, TimingsStatus } from './status.js';

/** A duration as a log line or a dashboard row shows it: tenths of a ms below 10 ms, whole ms above. */
export function shortMs(ms: number): number {
  return ms < 10 ? Math.round(ms * 10) / 10 : Math.round(ms);
}

/** Figures cover the last minute, as commit latency does: an idle node shows nothing stale. */
export const timingWindowMs = 60_000;
/** Durations kept per name (the most recent): p99 of 1024 samples is meaningful, and cheap to sort. */
const samplesPerNameMax = 1024;
/**
 * Names kept per kind. Request names are protocol and message type, both checked before they reach
 * here, so a few dozen exist; the bound keeps a misbehaving caller from growing the map.
 */
const namesPerKindMax = 64;
/** Event-loop periods kept: a minute of one-second periods, and some slack. */
const loopSamplesMax = 120;

export type TimingKind = 'phases' | 'sent' | 'served';

interface Series {
  /** Times and durations, oldest first; at most samplesPerNameMax. */
  readonly at: number[];
  readonly ms: number[];
  /**
   * How many were recorded in each second (`sec`: clock ms / 1000, floored), oldest first: the count
   * over the window stays exact when more than samplesPerNameMax arrive in it (a busy holder serves
   * thousands of `repo.pend` a minute). At most one entry per second of the window.
   */
  readonly seconds: { sec: number; n: number }[];
}

export class TimingMeter {
  private readonly series: Record<TimingKind, Map<string, Series>> = {
    phases: new Map(),
    sent: new Map(),
    served: new Map(),
  };
  /** One sample per period (a second on a running node): how busy the event loop was, how late its timers. */
  private readonly loop: { at: number; busy: number; lateMs: number }[] = [];

  /** When this meter started: a rate covers the window, or the time since then when shorter. */
  private readonly startedAt: number;

  constructor(private readonly clock: Clock) {
    this.startedAt = clock.now();
  }

  /**
   * Records one period of the event loop: the share of it spent running (0–1) and how late a timer
   * fired at worst, ms (p99). A message waits for its receiver's loop, so a busy loop slows every
   * request the node serves, whatever its handler costs.
   */
  recordLoop(busy: number, lateMs: number): void {
    if (!Number.isFinite(busy) || !Number.isFinite(lateMs)) return;
    this.loop.push({
      at: this.clock.now(),
      busy: Math.min(1, Math.max(0, busy)),
      lateMs: Math.max(0, lateMs),
    });
    if (this.loop.length > loopSamplesMax) this.loop.shift();
  }

  /** Records one duration (ms) under a name; negative or non-finite durations are ignored. */
  record(kind: TimingKind, name: string, ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    const byName = this.series[kind];
    let series = byName.get(name);
    if (series === undefined) {
      if (byName.size >= namesPerKindMax) return;
      series = { at: [], ms: [], seconds: [] };
      byName.set(name, series);
    }
    const now = this.clock.now();
    series.at.push(now);
    series.ms.push(ms);
    const sec = Math.floor(now / 1000);
    const last = series.seconds[series.seconds.length - 1];
    if (last?.sec === sec) last.n++;
    else {
      series.seconds.push({ sec, n: 1 });
      if (series.seconds.length > timingWindowMs / 1000 + 1) series.seconds.shift();
    }
    if (series.ms.length > samplesPerNameMax) {
      series.at.shift();
      series.ms.shift();
    }
  }

  /**
   * Count, rate and percentiles per name over the last minute; names with nothing in it are left out.
   * The percentiles come from the newest samplesPerNameMax durations in the window.
   */
  status(): TimingsStatus {
    const now = this.clock.now();
    const since = now - timingWindowMs;
    const loop = this.loopFigures(since);
    return {
      windowMs: timingWindowMs,
      phases: this.figures('phases', since, now),
      sent: this.figures('sent', since, now),
      served: this.figures('served', since, now),
      ...(loop === undefined ? {} : { loop }),
    };
  }

  private loopFigures(since: number): LoopFigures | undefined {
    while (this.loop.length > 0 && this.loop[0]!.at < since) this.loop.shift();
    if (this.loop.length === 0) return undefined;
    const busy = this.loop.map((sample) => sample.busy);
    const late = Float64Array.from(this.loop.map((sample) => sample.lateMs)).sort();
    return {
      periods: this.loop.length,
      busyPct: Math.round((100 * busy.reduce((a, b) => a + b, 0)) / busy.length),
      busyMaxPct: Math.round(100 * Math.max(...busy)),
      lateP99Ms: round(nearestRank(late, 0.99)),
    };
  }

  private figures(kind: TimingKind, since: number, now: number): Record<string, TimingFigures> {
    const result: Record<string, TimingFigures> = {};
    // Counts are kept by whole seconds: a second that began before the window is left out whole (the
    // count then misses at most one second of 60 when the samples kept are fewer than were recorded).
    const sinceSec = Math.ceil(since / 1000);
    const coveredSec = Math.max(1, Math.min(timingWindowMs, now - this.startedAt) / 1000);
    for (const name of [...this.series[kind].keys()].sort()) {
      const series = this.series[kind].get(name)!;
      // Samples are in time order: drop what fell out of the window for good.
      let first = 0;
      while (first < series.at.length && series.at[first]! < since) first++;
      if (first > 0) {
        series.at.splice(0, first);
        series.ms.splice(0, first);
      }
      let old = 0;
      while (old < series.seconds.length && series.seconds[old]!.sec < sinceSec) old++;
      if (old > 0) series.seconds.splice(0, old);
      if (series.ms.length === 0) continue;
      const sorted = Float64Array.from(series.ms).sort();
      const count = Math.max(
        sorted.length,
        series.seconds.reduce((sum, second) => sum + second.n, 0),
      );
      result[name] = {
        count,
        perSec: Math.round((count / coveredSec) * 100) / 100,
        p50Ms: round(nearestRank(sorted, 0.5)),
        p99Ms: round(nearestRank(sorted, 0.99)),
        maxMs: round(sorted[sorted.length - 1]!),
      };
    }
    return result;
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
