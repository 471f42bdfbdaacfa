/** Time comes in through this interface so protocol cores can run under a fake clock in simulation. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when told to; for tests and the simulator. */
export class ManualClock implements Clock {
  private nowMs: number;
  constructor(startMs = 1_700_000_000_000) {
    this.nowMs = startMs;
  }
  now(): number {
    return this.nowMs;
  }
  advance(ms: number): void {
    this.nowMs += ms;
  }
  set(ms: number): void {
    this.nowMs = ms;
  }
}
