/* eslint-disable @typescript-eslint/require-await -- nothing here waits, but the methods stay async so
   a closed store rejects (as LevelRawStore does) instead of throwing at the call. */
import { assert } from '../base/assert.js';
import { EngineError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import {
  batchAtOnce,
  compareRawKeys,
  rawKeyInRange,
  type RawOp,
  type RawRange,
  type RawStore,
} from './raw-store.js';

export interface MemoryRawStoreInit {
  /** Unsynced ops remembered for `dropUnsynced()` before they count as flushed (default limits.storeQueueOpsMax). */
  readonly queueOpsMax?: number;
}

/**
 * A RawStore in memory, for tests and the simulator. Keys are kept sorted in an array beside a map, so
 * reads are O(1) and range scans are a binary search plus a walk. Data outlives close(), like a disk:
 * open the same instance again to simulate a restart.
 *
 * Writes since the last `sync()` are remembered as undo records, so `dropUnsynced()` can simulate a
 * crash that loses exactly what was never made durable. Like LevelRawStore, it treats its queue as
 * flushed on its own once it passes a bound, which keeps the undo records bounded.
 */
export class MemoryRawStore implements RawStore {
  private readonly values = new Map<string, string>();
  /** Every key in `values`, sorted by compareRawKeys. */
  private readonly keys: string[] = [];
  /** Estimate of the bytes held: key plus value lengths in UTF-16 units (exact for ASCII). */
  private bytes = 0;
  private opened = false;
  /** (key, value before the write) for every op since the last sync, oldest first. */
  private undo: Array<readonly [string, string | undefined]> = [];
  private readonly queueOpsMax: number;

  constructor(init: MemoryRawStoreInit = {}) {
    this.queueOpsMax = init.queueOpsMax ?? limits.storeQueueOpsMax;
  }

  async open(): Promise<void> {
    this.opened = true;
  }

  /** Closing makes every batch durable, as LevelRawStore's close() does. */
  async close(): Promise<void> {
    this.undo = [];
    this.opened = false;
  }

  async get(key: string): Promise<string | undefined> {
    this.assertOpen();
    return this.values.get(key);
  }

  async getMany(keys: readonly string[]): Promise<Array<string | undefined>> {
    this.assertOpen();
    return keys.map((key) => this.values.get(key));
  }

  batch(ops: readonly RawOp[]): Promise<void> {
    return batchAtOnce(this, ops);
  }

  /** `batch` at once (RawStore.batchNow); nothing here ever has to wait. */
  batchNow(ops: readonly RawOp[]): undefined {
    this.assertOpen();
    for (const op of ops) {
      this.undo.push([op.key, this.values.get(op.key)]);
      if (op.type === 'put') this.write(op.key, op.value);
      else this.write(op.key, undefined);
    }
    // Past the bound the queue counts as flushed; a batch is never split by this (it is whole above).
    if (this.undo.length > this.queueOpsMax) this.undo = [];
    return undefined;
  }

  async sync(): Promise<void> {
    this.assertOpen();
    this.undo = [];
  }

  /**
   * Simulates a crash: every batch written since the last sync (or since the queue last counted as
   * flushed) is lost, as if the process died before the fsync. The store stays open.
   */
  dropUnsynced(): void {
    for (let i = this.undo.length - 1; i >= 0; i--) {
      const [key, previous] = this.undo[i]!;
      this.write(key, previous);
    }
    this.undo = [];
  }

  /** A snapshot of the range taken at the call, so later batches never show up in it. */
  iterate(range: RawRange): AsyncIterable<[string, string]> {
    this.assertOpen();
    const limit = range.limit ?? Infinity;
    assert(
      limit === Infinity || (Number.isInteger(limit) && limit >= 0),
      `iterate limit ${limit} is not a count`,
    );
    const entries: Array<[string, string]> = [];
    if (range.reverse === true) {
      for (let i = this.upperIndex(range) - 1; i >= 0 && entries.length < limit; i--) {
        const key = this.keys[i]!;
        if (!rawKeyInRange(key, range)) break;
        entries.push([key, this.values.get(key)!]);
      }
    } else {
      for (let i = this.lowerIndex(range); i < this.keys.length && entries.length < limit; i++) {
        const key = this.keys[i]!;
        if (!rawKeyInRange(key, range)) break;
        entries.push([key, this.values.get(key)!]);
      }
    }
    return (async function* () {
      yield* entries;
    })();
  }

  async sizeBytes(): Promise<number> {
    return this.bytes;
  }

  private assertOpen(): void {
    if (!this.opened) throw new EngineError('UNAVAILABLE', 'the store is closed');
  }

  /** Sets (value) or removes (undefined) one key, keeping `keys` sorted and `bytes` current. */
  private write(key: string, value: string | undefined): void {
    const previous = this.values.get(key);
    if (value === undefined) {
      if (previous === undefined) return;
      this.values.delete(key);
      const index = this.search(key);
      assert(this.keys[index] === key, 'memory store key index lost a key');
      this.keys.splice(index, 1);
      this.bytes -= key.length + previous.length;
      return;
    }
    this.values.set(key, value);
    if (previous === undefined) {
      this.keys.splice(this.search(key), 0, key);
      this.bytes += key.length + value.length;
    } else {
      this.bytes += value.length - previous.length;
    }
  }

  /** Index of the first key ≥ `key` (keys.length when none). */
  private search(key: string, after = false): number {
    let low = 0;
    let high = this.keys.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const order = compareRawKeys(this.keys[mid]!, key);
      if (order < 0 || (after && order === 0)) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /** Index of the first key the lower bound admits. */
  private lowerIndex(range: RawRange): number {
    let index = 0;
    if (range.gte !== undefined) index = Math.max(index, this.search(range.gte));
    if (range.gt !== undefined) index = Math.max(index, this.search(range.gt, true));
    return index;
  }

  /** One past the index of the last key the upper bound admits. */
  private upperIndex(range: RawRange): number {
    let index = this.keys.length;
    if (range.lte !== undefined) index = Math.min(index, this.search(range.lte, true));
    if (range.lt !== undefined) index = Math.min(index, this.search(range.lt));
    return index;
  }
}
