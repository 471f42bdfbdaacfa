import { mkdir, readdir, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { ClassicLevel, type Iterator as ClassicIterator } from 'classic-level';
import { assert } from '../base/assert.js';
import { EngineError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import { compareRawKeys, rawKeyInRange, type RawOp, type RawRange, type RawStore } from './raw-store.js';

export interface LevelRawStoreInit {
  /** Queued ops past which batch() flushes and waits (default limits.storeQueueOpsMax). */
  readonly queueOpsMax?: number;
  /** A flush failed: writes are refused until the store recovers (see `recover`). */
  readonly onFailure?: (error: EngineError) => void;
  /** The store recovered from a failed flush: the queued batches are on disk, writes are taken again. */
  readonly onRecovered?: () => void;
  /** First wait before trying to recover from a failed flush (default limits.storeRecoveryFirstMs). */
  readonly recoveryFirstMs?: number;
  /** Free bytes the file system must have before recovery is tried (default limits.storeRecoveryFreeBytesMin). */
  readonly recoveryFreeBytesMin?: number;
}

/**
 * A key's newest unflushed write and the batch that wrote it. The op is kept as given and its value
 * read only when needed (a read of the key, or the flush that carries it): a writer may hand in a
 * value that is encoded on first read, and a put deleted again before the flush is never encoded.
 */
interface OverlayEntry {
  readonly op: RawOp;
  readonly seq: number;
}

function overlayValue(entry: OverlayEntry): string | undefined {
  return entry.op.type === 'put' ? entry.op.value : undefined;
}

type Db = ClassicLevel<string, string>;

/**
 * A RawStore on classic-level: one LevelDB in one directory, utf8 keys and values.
 *
 * A LevelDB write costs a thread-pool round trip and a synced one an fsync, so writes are grouped:
 * `batch()` only applies its ops to an in-memory overlay (key → value or tombstone) and queues them;
 * `sync()` writes everything queued as ONE synced LevelDB batch. A sync that finds a flush in flight
 * waits for it and then flushes whatever queued up meanwhile in one go, so N concurrent transactions
 * share one fsync (group commit). Reads look in the overlay first; iterators merge the overlay into a
 * LevelDB iterator, both captured at the call, so they see every earlier batch without a flush.
 *
 * Flushes happen one at a time in batch order, and each carries whole batches, so after a crash the
 * disk holds a prefix of the batches: never half of one.
 */
export class LevelRawStore implements RawStore {
  readonly dir: string;
  private readonly queueOpsMax: number;
  private db: Db | undefined;
  private state: 'closed' | 'opening' | 'open' | 'closing' = 'closed';
  private readonly overlay = new Map<string, OverlayEntry>();
  /** Ops written but not yet handed to LevelDB, in batch order. */
  private queue: RawOp[] = [];
  /** Sequence number of the newest batch written, and of the newest one on disk. */
  private seq = 0;
  private durableSeq = 0;
  private flushing: Promise<void> | undefined;
  /** The turn a sync waits before starting the next flush, so that others can join it (flushUpTo). */
  private gathering: Promise<void> | undefined;
  private flushes = 0;
  /**
   * The first failed flush. LevelDB stops taking writes after a failed write, so the store does too:
   * later batches and syncs reject with this (nothing they carry is applied) until it is reopened.
   */
  private failure: EngineError | undefined;
  /** A recovery under way (`recover`): reads wait for it, as it swaps the LevelDB handle. */
  private recovering: Promise<boolean> | undefined;
  /** The next recovery attempt, and the wait before the one after it. */
  private recoveryTimer: NodeJS.Timeout | undefined;
  private readonly recoveryFirstMs: number;
  private recoveryWaitMs: number;

  constructor(
    dir: string,
    private readonly init: LevelRawStoreInit = {},
  ) {
    this.dir = dir;
    this.queueOpsMax = init.queueOpsMax ?? limits.storeQueueOpsMax;
    this.recoveryFirstMs = init.recoveryFirstMs ?? limits.storeRecoveryFirstMs;
    this.recoveryWaitMs = this.recoveryFirstMs;
  }

  /** The failed flush writes are refused for, until the store recovers; undefined while it works. */
  get failed(): EngineError | undefined {
    return this.failure;
  }

  /** LevelDB writes made so far (each one synced batch); tests use it to see group commit at work. */
  get flushCount(): number {
    return this.flushes;
  }

  async open(): Promise<void> {
    assert(this.state === 'closed', `open() on a store that is ${this.state}`);
    this.state = 'opening';
    try {
      await mkdir(this.dir, { recursive: true });
      this.db = await openLevel(this.dir);
      this.failure = undefined;
      this.durableSeq = this.seq;
      this.state = 'open';
    } catch (error) {
      this.state = 'closed';
      throw storeError(error, this.dir);
    }
  }

  /** Waits for flushes in flight, flushes the rest of the queue, then closes LevelDB. Idempotent. */
  async close(): Promise<void> {
    if (this.state !== 'open') {
      assert(this.state === 'closed', `close() on a store that is ${this.state}`);
      return;
    }
    this.state = 'closing';
    clearTimeout(this.recoveryTimer);
    await this.recovering;
    const db = this.db;
    try {
      if (db === undefined) throw this.failure ?? closedError(this.dir);
      await this.flushUpTo(this.seq);
    } finally {
      // A failed last flush leaves its batches unsynced: they are lost, as in a crash, and the error says so.
      this.overlay.clear();
      this.queue = [];
      this.db = undefined;
      this.state = 'closed';
      await db?.close();
    }
  }

  /**
   * Tries to recover from a failed flush (a full disk, say): LevelDB refuses every write after a
   * failed one until it is opened again, so the store closes its LevelDB and opens it again, then
   * writes the batches it still holds — the failed flush's first, in order, so the disk still holds
   * a prefix of the batches. Runs by itself after a failure (after `recoveryFirstMs`, then twice as
   * long each time up to `storeRecoveryMaxMs`) once the file system has `recoveryFreeBytesMin` free;
   * true when the store takes writes again. Nothing acknowledged is at stake either way: a batch is
   * acknowledged only by a sync that landed.
   */
  recover(): Promise<boolean> {
    this.recovering ??= this.recoverNow().finally(() => (this.recovering = undefined));
    return this.recovering;
  }

  private async recoverNow(): Promise<boolean> {
    if (this.state !== 'open' || this.failure === undefined) return this.failure === undefined;
    clearTimeout(this.recoveryTimer);
    this.recoveryTimer = undefined;
    try {
      const fs = await statfs(this.dir);
      const needed = this.init.recoveryFreeBytesMin ?? limits.storeRecoveryFreeBytesMin;
      if (fs.bavail * fs.bsize < needed) throw new Error('not enough free space yet');
      if (this.flushing !== undefined) await this.flushing.catch(() => undefined);
      const old = this.db;
      this.db = undefined;
      await old?.close().catch(() => undefined);
      this.db = await openLevel(this.dir);
      const failure = this.failure;
      this.failure = undefined;
      try {
        await this.flushUpTo(this.seq);
      } catch (error) {
        this.failure ??= failure;
        throw error;
      }
    } catch {
      if (this.state === 'open') this.scheduleRecovery();
      return false;
    }
    this.recoveryWaitMs = this.recoveryFirstMs;
    notify(() => this.init.onRecovered?.());
    return true;
  }

  private scheduleRecovery(): void {
    if (this.recoveryTimer !== undefined || this.state !== 'open') return;
    const wait = this.recoveryWaitMs;
    this.recoveryWaitMs = Math.min(limits.storeRecoveryMaxMs, wait * 2);
    this.recoveryTimer = setTimeout(() => {
      this.recoveryTimer = undefined;
      void this.recover();
    }, wait);
    this.recoveryTimer.unref();
  }

  /** Records a failed flush: writes are refused from now on, and recovery is scheduled. */
  private fail(error: unknown): EngineError {
    if (this.failure !== undefined) return this.failure;
    this.failure = storeError(error, this.dir);
    this.scheduleRecovery();
    const failure = this.failure;
    notify(() => this.init.onFailure?.(failure));
    return failure;
  }

  async get(key: string): Promise<string | undefined> {
    if (this.recovering !== undefined) await this.recovering;
    const db = this.readableDb();
    const entry = this.overlay.get(key);
    if (entry !== undefined) return overlayValue(entry);
    try {
      return await db.get(key);
    } catch (error) {
      throw storeError(error, this.dir);
    }
  }

  async getMany(keys: readonly string[]): Promise<Array<string | undefined>> {
    if (this.recovering !== undefined) await this.recovering;
    const db = this.readableDb();
    const values: Array<string | undefined> = [];
    const missing: string[] = [];
    const missingAt: number[] = [];
    keys.forEach((key, index) => {
      const entry = this.overlay.get(key);
      if (entry === undefined) {
        missing.push(key);
        missingAt.push(index);
      }
      values.push(entry === undefined ? undefined : overlayValue(entry));
    });
    if (missing.length > 0) {
      let found: Array<string | undefined>;
      try {
        found = await db.getMany(missing);
      } catch (error) {
        throw storeError(error, this.dir);
      }
      missingAt.forEach((index, i) => {
        values[index] = found[i];
      });
    }
    return values;
  }

  /**
   * Applied (visible) during the call, durable at the next sync(). Waits only when the queue is over
   * its bound; a failure of that flush does not undo the batch and is reported by the next sync().
   */
  batch(ops: readonly RawOp[]): Promise<void> {
    try {
      return this.batchNow(ops) ?? Promise.resolve();
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /** `batch` at once (RawStore.batchNow): a promise only while the queue is over its bound. */
  batchNow(ops: readonly RawOp[]): Promise<void> | undefined {
    if (this.state !== 'open') throw closedError(this.dir);
    if (this.failure !== undefined) throw this.failure;
    if (ops.length === 0) return undefined;
    const seq = ++this.seq;
    for (const op of ops) {
      this.overlay.set(op.key, { op, seq });
      this.queue.push(op);
    }
    if (this.queue.length > this.queueOpsMax) return this.flushUpTo(seq).catch(() => undefined);
    return undefined;
  }

  async sync(): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    this.readableDb();
    await this.flushUpTo(this.seq);
  }

  iterate(range: RawRange): AsyncIterable<[string, string]> {
    // While a recovery swaps the LevelDB handle, the snapshots are taken once it is done (writes are
    // refused meanwhile, so they are the ones of now).
    const recovering = this.recovering;
    if (recovering !== undefined)
      return (async function* (store: LevelRawStore) {
        await recovering;
        yield* store.iterate(range);
      })(this);
    const db = this.readableDb();
    const limit = range.limit ?? Infinity;
    assert(
      limit === Infinity || (Number.isInteger(limit) && limit >= 0),
      `iterate limit ${limit} is not a count`,
    );
    const reverse = range.reverse === true;
    if (limit === 0) return emptyEntries();
    // Both snapshots are taken now, synchronously: the overlay holds every write LevelDB may lack (an
    // entry leaves it only after its flush has landed), and the LevelDB iterator pins its own snapshot.
    const unflushed: Array<readonly [string, string | undefined]> = [];
    for (const [key, entry] of this.overlay) {
      if (rawKeyInRange(key, range)) unflushed.push([key, overlayValue(entry)]);
    }
    const order = reverse ? (a: string, b: string) => compareRawKeys(b, a) : compareRawKeys;
    unflushed.sort(([a], [b]) => order(a, b));
    // Each overlay entry can hide or replace at most one LevelDB entry, so this many always suffice.
    const dbLimit = limit === Infinity ? -1 : limit + unflushed.length;
    const iterator = db.iterator({ ...levelBounds(range), reverse, limit: dbLimit });
    return mergeEntries(iterator, unflushed, limit, order, this.dir);
  }

  /** Bytes of the files in the data directory (LevelDB's tables and log); unflushed ops are not counted. */
  async sizeBytes(): Promise<number> {
    let total = 0;
    for (const name of await readdir(this.dir)) {
      try {
        total += (await stat(join(this.dir, name))).size;
      } catch {
        // LevelDB removes files during compaction; a file gone between readdir and stat counts as 0.
      }
    }
    return total;
  }

  private readableDb(): Db {
    // A recovery that closed LevelDB and could not open it again: the failure says why.
    if (this.db === undefined && this.state === 'open' && this.failure !== undefined) throw this.failure;
    if (this.db === undefined || (this.state !== 'open' && this.state !== 'closing'))
      throw closedError(this.dir);
    return this.db;
  }

  /**
   * Resolves once every batch up to `target` is on disk, starting at most one flush at a time.
   *
   * A sync that arrives while no flush is in flight starts one at once (one writer waits for nothing
   * but its own fsync). A sync that had to wait for the flush in flight does not start the next one
   * as soon as that lands: the transactions its landing answers run on at once, and most reach their
   * own sync within the same turn of the event loop. The next flush starts one turn later (`gather`),
   * carrying them too, and syncs arriving meanwhile join it instead of starting another. Under eight
   * concurrent writers a flush then carries about 6 transactions instead of 3.6, and each flush costs
   * main-thread time of its own (its LevelDB call and the answers that follow it).
   */
  private async flushUpTo(target: number): Promise<void> {
    let waited = false;
    while (this.durableSeq < target) {
      if (this.failure !== undefined) throw this.failure;
      // A failed flush rejects everyone waiting on it: their batches were in it or queued behind it.
      if (this.flushing !== undefined) {
        await this.flushing;
        waited = true;
      } else if (this.gathering !== undefined) {
        await this.gathering;
        waited = false;
      } else if (waited) {
        this.gathering = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
          this.gathering = undefined;
        });
        await this.gathering;
        waited = false;
      } else await this.startFlush();
    }
  }

  private startFlush(): Promise<void> {
    const db = this.db;
    assert(db !== undefined, 'flush without an open database');
    assert(this.queue.length > 0, 'flush of an empty queue while batches are not durable');
    const ops = this.queue;
    const seq = this.seq;
    this.queue = [];
    const flush = (async () => {
      try {
        await writeBatch(db, lastOpPerKey(ops));
      } catch (error) {
        // The ops stay visible (queue and overlay) for reads; the store refuses further writes
        // until it recovers, which writes them first.
        this.queue = ops.concat(this.queue);
        this.flushing = undefined;
        throw this.fail(error);
      }
      this.flushes++;
      this.durableSeq = seq;
      for (const op of ops) {
        const entry = this.overlay.get(op.key);
        if (entry !== undefined && entry.seq <= seq) this.overlay.delete(op.key);
      }
      this.flushing = undefined;
    })();
    this.flushing = flush;
    // Callers of flushUpTo see the failure; this keeps a flush nobody awaits from being unhandled.
    flush.catch(() => undefined);
    return flush;
  }
}

type LevelOp = { type: 'put'; key: string; value: string } | { type: 'del'; key: string };

/**
 * The ops of one flush with every key reduced to its last op. The flush is one atomic LevelDB batch,
 * so only the final value of each key matters; a pend written and promoted between two syncs then
 * reaches the disk as one small delete instead of its whole body followed by a delete — or as nothing
 * when its writer marked the put `absent` (the key held nothing before it, so put then delete within
 * one flush leaves the disk as it was).
 */
function lastOpPerKey(ops: readonly RawOp[]): LevelOp[] {
  const last = new Map<string, RawOp>();
  /** Keys whose first op in this flush is a put of a key known to hold nothing before it. */
  let bornHere: Set<string> | undefined;
  for (const op of ops) {
    const previous = last.get(op.key);
    if (previous === undefined) {
      if (op.type === 'put' && op.absent === true) (bornHere ??= new Set()).add(op.key);
    } else last.delete(op.key);
    last.set(op.key, op);
  }
  const out: LevelOp[] = [];
  for (const op of last.values()) {
    if (op.type === 'put') out.push({ type: 'put', key: op.key, value: op.value });
    else if (bornHere?.has(op.key) !== true) out.push({ type: 'del', key: op.key });
  }
  return out;
}

/** Tells an observer; its failure is not the store's. */
function notify(observer: () => void): void {
  try {
    observer();
  } catch {
    // Nothing to do: the store goes on.
  }
}

async function openLevel(dir: string): Promise<Db> {
  const db: Db = new ClassicLevel<string, string>(dir, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
  await db.open();
  return db;
}

/**
 * One synced LevelDB batch. The ops are already plain utf8 strings, so they go to classic-level's
 * batch implementation (`_batch`, the abstract-level hook it provides) directly: the public `batch()`
 * clones every op and looks its encodings up again, which costs as much main-thread time as the rest
 * of a small transaction's write. This store never writes while LevelDB is not open (flushes finish
 * before close) and uses no hooks or write events, which is all the public wrapper adds.
 */
function writeBatch(db: Db, ops: LevelOp[]): Promise<void> {
  if (ops.length === 0) return Promise.resolve();
  const direct = (db as unknown as { _batch?: (ops: LevelOp[], options: { sync: boolean }) => Promise<void> })
    ._batch;
  if (typeof direct === 'function') return direct.call(db, ops, { sync: true });
  return db.batch(ops, { sync: true });
}

type LevelIterator = ClassicIterator<Db, string, string>;

async function* emptyEntries(): AsyncGenerator<[string, string]> {}

/** LevelDB entries merged with the (sorted) unflushed overlay entries, which win; tombstones hide keys. */
async function* mergeEntries(
  iterator: LevelIterator,
  unflushed: ReadonlyArray<readonly [string, string | undefined]>,
  limit: number,
  order: (a: string, b: string) => number,
  dir: string,
): AsyncGenerator<[string, string]> {
  let chunk: Array<[string, string]> = [];
  let chunkAt = 0;
  let dbDone = false;
  const nextFromDb = async (): Promise<[string, string] | undefined> => {
    if (chunkAt < chunk.length) return chunk[chunkAt++];
    if (dbDone) return undefined;
    try {
      chunk = await iterator.nextv(limits.scanPageItemsMax);
    } catch (error) {
      throw storeError(error, dir);
    }
    chunkAt = 0;
    if (chunk.length === 0) {
      dbDone = true;
      return undefined;
    }
    return chunk[chunkAt++];
  };
  try {
    let stored = await nextFromDb();
    let at = 0;
    let yielded = 0;
    while (yielded < limit) {
      const pending = unflushed[at];
      if (stored === undefined && pending === undefined) break;
      const cmp = stored === undefined ? 1 : pending === undefined ? -1 : order(stored[0], pending[0]);
      if (cmp < 0) {
        yield stored!;
        yielded++;
        stored = await nextFromDb();
        continue;
      }
      if (cmp === 0) stored = await nextFromDb();
      at++;
      const [key, value] = pending!;
      if (value !== undefined) {
        yield [key, value];
        yielded++;
      }
    }
  } finally {
    await iterator.close();
  }
}

/** The range's bounds as classic-level options; when both bounds on a side are given, the tighter one. */
function levelBounds(range: RawRange): { gt?: string; gte?: string; lt?: string; lte?: string } {
  const bounds: { gt?: string; gte?: string; lt?: string; lte?: string } = {};
  if (range.gt !== undefined && (range.gte === undefined || compareRawKeys(range.gt, range.gte) >= 0))
    bounds.gt = range.gt;
  else if (range.gte !== undefined) bounds.gte = range.gte;
  if (range.lt !== undefined && (range.lte === undefined || compareRawKeys(range.lt, range.lte) <= 0))
    bounds.lt = range.lt;
  else if (range.lte !== undefined) bounds.lte = range.lte;
  return bounds;
}

function closedError(dir: string): EngineError {
  return new EngineError('UNAVAILABLE', `the store in ${dir} is closed`);
}

/** The `code`s of an error and of its causes (abstract-level wraps the binding's error in `cause`). */
function levelCodes(error: unknown): string[] {
  const codes: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 8 && current !== null && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
    current = (current as { cause?: unknown }).cause;
  }
  return codes;
}

/** Maps classic-level and file-system failures to EngineError codes. */
function storeError(error: unknown, dir: string): EngineError {
  if (error instanceof EngineError) return error;
  const codes = levelCodes(error);
  const detail =
    error instanceof Error
      ? error.cause instanceof Error
        ? error.cause.message
        : error.message
      : String(error);
  if (codes.includes('LEVEL_LOCKED')) {
    return new EngineError(
      'DATA_DIR_BUSY',
      `data directory ${dir} is in use by another process (is a node running on it?); stop that process or choose another --data directory`,
      { dir },
      { cause: error },
    );
  }
  if (codes.includes('LEVEL_CORRUPTION')) {
    return new EngineError(
      'CORRUPT',
      `data directory ${dir} is corrupt (${detail})`,
      { dir },
      { cause: error },
    );
  }
  return new EngineError('UNAVAILABLE', `data directory ${dir} failed: ${detail}`, { dir }, { cause: error });
}
