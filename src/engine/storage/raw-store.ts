/**
 * The byte-level key-value store under the BlockStore. Keys and values are strings (values are JSON
 * text). Two implementations: memory (tests, simulation) and classic-level (one LevelDB per data dir).
 * The shared compliance suite in test/engine/storage/raw-store-compliance.ts runs against both.
 */
export type RawOp = { readonly type: 'put'; readonly key: string; readonly value: string } | { readonly type: 'del'; readonly key: string };

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
   * batch written before it durable (group commit).
   */
  batch(ops: readonly RawOp[]): Promise<void>;
  /** Resolves when every batch written before the call is on disk (fsync). */
  sync(): Promise<void>;
  /** Entries in key order (or reverse), seeing every batch written before the call. */
  iterate(range: RawRange): AsyncIterable<[string, string]>;
  /** Approximate bytes used on disk (0 for memory). */
  sizeBytes(): Promise<number>;
}
