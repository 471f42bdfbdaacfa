/**
 * The byte-level key-value store under the BlockStore. Keys and values are strings (values are JSON
 * text). Two implementations: memory (tests, simulation) and classic-level (one LevelDB per data dir).
 * The shared compliance suite in test/engine/storage/raw-store-compliance.ts runs against both.
 */
export type RawOp =
  | {
      readonly type: 'put';
      readonly key: string;
      /**
       * May be computed on first read (a getter): a store reads it no earlier than it needs it, so a
       * put that is deleted again before it reaches the disk need never be encoded.
       */
      readonly value: string;
      /**
       * The writer knows the key holds nothing before this put (a key named after a fresh transaction).
       * A store may then write nothing at all when the key is deleted again before it reaches the disk.
       */
      readonly absent?: boolean;
    }
  | { readonly type: 'del'; readonly key: string };

export interface RawRange {
  /** Inclusive lower bound. */
  readonly gte?: string;
  /** Exclusive lower bound. */
  readonly gt?: string;
  /** Inclusive upper bound. */
  readonly lte?: string;
  /** Exclusive upper bound. */
  readonly lt?: string;
  readonly reverse?: boolean;
  readonly limit?: number;
}

export interface RawStore {
  open(): Promise<void>;
  close(): Promise<void>;
  get(key: string): Promise<string | undefined>;
  getMany(keys: readonly string[]): Promise<Array<string | undefined>>;
  /**
   * Applies the ops as one atomic batch. The batch is visible to every later get/iterate at once, but
   * is durable only once a later `sync()` resolves. Concurrent batches coalesce: one sync makes every
   * batch written before it durable (group commit). Both stores apply a batch during the call itself,
   * so batches take effect in call order; a rejected batch (closed or failed store) applied nothing.
   */
  batch(ops: readonly RawOp[]): Promise<void>;
  /**
   * Optional: `batch` without a turn of the microtask queue. Applies the ops during the call, as
   * `batch` does, and returns undefined, or a promise (that never rejects) when the caller should
   * wait before writing more (the store's queue is over its bound); throws, having applied nothing,
   * where `batch` would reject. A writer that needs nothing else to wait for can then finish its
   * whole mutation synchronously.
   */
  batchNow?(ops: readonly RawOp[]): Promise<void> | undefined;
  /** Resolves when every batch written before the call is on disk (fsync). */
  sync(): Promise<void>;
  /** Entries in key order (or reverse), seeing every batch written before the call. */
  iterate(range: RawRange): AsyncIterable<[string, string]>;
  /** Approximate bytes used on disk (memory: an estimate of the bytes held). */
  sizeBytes(): Promise<number>;
}

/**
 * The key order every RawStore follows: the order of the keys' UTF-8 bytes (LevelDB's order), which is
 * code point order. Plain `<` on JS strings compares UTF-16 code units and disagrees with it when a key
 * holds a character above U+FFFF next to one in U+E000..U+FFFF, so stores compare with this instead.
 */
export function compareRawKeys(a: string, b: string): number {
  if (a === b) return 0;
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

/** Moves surrogates (U+D800..U+DFFF, which start characters above U+FFFF) after the rest of the BMP. */
function codePointRank(unit: number): number {
  if (unit < 0xd800) return unit;
  return unit < 0xe000 ? unit + 0x2000 : unit - 0x800;
}

/** Whether a key lies inside a range's bounds (every given bound must hold; reverse and limit are ignored). */
export function rawKeyInRange(key: string, range: RawRange): boolean {
  if (range.gte !== undefined && compareRawKeys(key, range.gte) < 0) return false;
  if (range.gt !== undefined && compareRawKeys(key, range.gt) <= 0) return false;
  if (range.lte !== undefined && compareRawKeys(key, range.lte) > 0) return false;
  if (range.lt !== undefined && compareRawKeys(key, range.lt) >= 0) return false;
  return true;
}

/**
 * `batch` for a store whose `batchNow` never has to wait: the batch is applied during the call, and
 * a refusal (closed store, bad op) comes back as a rejected promise rather than a throw.
 */
export function batchAtOnce(
  store: { batchNow(ops: readonly RawOp[]): unknown },
  ops: readonly RawOp[],
): Promise<void> {
  try {
    store.batchNow(ops);
    return Promise.resolve();
  } catch (error) {
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }
}
