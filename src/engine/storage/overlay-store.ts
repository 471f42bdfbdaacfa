import { assert } from '../base/assert.js';
import { MemoryRawStore } from './memory-store.js';
import { batchAtOnce, compareRawKeys, type RawOp, type RawRange, type RawStore } from './raw-store.js';

/**
 * A RawStore that never writes to the store under it: reads see the base with this instance's own
 * writes on top, and those writes live in memory until close, when they are dropped. It opens a data
 * directory read-only while letting the engine do what opening always does (resolve what it finds
 * expired, apply commits it already holds): nothing of that reaches the disk. `sync` has nothing to
 * make durable. The base is opened by its owner before it is wrapped; closing the overlay closes it.
 */
export class OverlayRawStore implements RawStore {
  private readonly upper = new MemoryRawStore({ queueOpsMax: 0 });
  /** Keys deleted here that the base may still hold. */
  private readonly deleted = new Set<string>();

  constructor(private readonly base: RawStore) {}

  async open(): Promise<void> {
    await this.upper.open();
  }

  async close(): Promise<void> {
    await this.upper.close();
    await this.base.close();
  }

  async get(key: string): Promise<string | undefined> {
    const [value] = await this.getMany([key]);
    return value;
  }

  async getMany(keys: readonly string[]): Promise<Array<string | undefined>> {
    const own = await this.upper.getMany(keys);
    const fromBase = keys.filter((key, i) => own[i] === undefined && !this.deleted.has(key));
    const below = fromBase.length === 0 ? [] : await this.base.getMany(fromBase);
    let next = 0;
    return keys.map((key, i) => {
      if (own[i] !== undefined) return own[i];
      if (this.deleted.has(key)) return undefined;
      return below[next++];
    });
  }

  batch(ops: readonly RawOp[]): Promise<void> {
    return batchAtOnce(this, ops);
  }

  batchNow(ops: readonly RawOp[]): undefined {
    this.upper.batchNow(ops);
    for (const op of ops) {
      if (op.type === 'del') this.deleted.add(op.key);
      else this.deleted.delete(op.key);
    }
    return undefined;
  }

  async sync(): Promise<void> {
    await this.upper.sync();
  }

  /**
   * The base's entries and this overlay's merged in key order, the overlay's winning on the same key
   * and its deletions hiding the base's. The overlay's part is a snapshot taken at the call, as the
   * base's iterator is.
   */
  iterate(range: RawRange): AsyncIterable<[string, string]> {
    const limit = range.limit ?? Infinity;
    assert(
      limit === Infinity || (Number.isInteger(limit) && limit >= 0),
      `iterate limit ${limit} is not a count`,
    );
    const { limit: _limit, ...unlimited } = range;
    const own = this.upper.iterate(unlimited)[Symbol.asyncIterator]();
    const deleted = new Set(this.deleted);
    const base = this.base;
    const order = range.reverse === true ? -1 : 1;
    return (async function* () {
      if (limit === 0) return;
      let yielded = 0;
      let mine = await own.next();
      for await (const [key, value] of base.iterate(unlimited)) {
        while (!mine.done && order * compareRawKeys(mine.value[0], key) < 0) {
          yield mine.value;
          if (++yielded >= limit) return;
          mine = await own.next();
        }
        if (!mine.done && mine.value[0] === key) {
          yield mine.value;
          mine = await own.next();
        } else if (!deleted.has(key)) {
          yield [key, value] as [string, string];
        } else continue;
        if (++yielded >= limit) return;
      }
      for (; !mine.done; mine = await own.next()) {
        yield mine.value;
        if (++yielded >= limit) return;
      }
    })();
  }

  /** The base's size with the overlay's estimate added (what the store would hold with the writes). */
  async sizeBytes(): Promise<number> {
    return (await this.base.sizeBytes()) + (await this.upper.sizeBytes());
  }
}
