import { AssertionFailure, assert } from '../base/assert.js';
import { EngineError } from '../base/errors.js';
import type { BlockId, TrxId } from '../base/ids.js';
import { limits } from '../base/limits.js';
import { applyTransform, type Block, type BlockTransform } from './block.js';
import type {
  ApplyOptions,
  BlockRevision,
  BlockState,
  BlockStore,
  BlockStoreStats,
  DirectRevision,
  HistoryRange,
  PendOutcome,
  PendingTransform,
} from './block-store.js';
import type { RawOp, RawStore } from './raw-store.js';

export interface VersionedBlockStoreInit {
  /** Latest block states kept in memory (default limits.blockCacheEntriesMax). */
  readonly cacheEntriesMax?: number;
}

/*
 * Layout in the RawStore. This store owns these prefixes and touches no other key:
 *
 *   b/<id>                      latest state: { rev, lsn, trxId, deleted, block? } when stored whole
 *                               (a deletion), else {"lazy":"newest"}: the newest revision in r/ (below)
 *   r/<id>/<rev>                one revision: { rev, lsn, trxId, transform }
 *   m/<id>/<rev>                full state every limits.materialiseEveryRevs revisions (same shape as b/)
 *   l/<id>/<lsn>                rev: the LSN of every materialiseEveryRevs-th revision, for at({ lsn })
 *   p/<id>/<trxId>              a pending transform (PendingTransform)
 *   x/<expiresAt>/<id>/<trxId>  the transform's kind: expiry index over p/, oldest first
 *   s/counters                  { blocks }: live (not deleted) blocks
 *
 * Numbers in keys are zero-padded to 16 digits so key order is numeric order. Block and transaction
 * ids must not contain '/' (base64url never does).
 *
 * A revision's transform is in r/ anyway, so b/ holds the whole block only for a deletion; a live
 * block's b/ is a marker saying that its latest state is its newest revision, materialised like any
 * other: from the nearest whole state (an insert in r/ or the m/ snapshot every materialiseEveryRevs
 * revisions) plus fewer than materialiseEveryRevs transforms, found by reading r/ backwards. Writing
 * a block then costs its transform, not its size (a log block or leaf of a few KB changed by a few
 * hundred bytes per transaction), and b/ is written only when the block is created or stops being
 * stored whole, not at every revision. Latest states are cached in memory, so the materialisation is
 * paid only by the first read of a block after it left the cache.
 *
 * Older stores wrote b/ whole (sealed log blocks too) or as { rev, lsn, trxId, deleted: false, lazy:
 * true }, rewritten at every revision; both are read as they are, and a block's next revision turns
 * its b/ into the marker. (A reader that predates the marker finds no block in it and reports the
 * store corrupt rather than serving a stale revision.)
 */
const numberDigits = 16;
const countersKey = 's/counters';

function padded(value: number): string {
  if (!(Number.isSafeInteger(value) && value >= 0))
    throw new AssertionFailure(`key number ${value} is not a non-negative safe integer`);
  return String(value).padStart(numberDigits, '0');
}

const keyOf = {
  latest: (id: BlockId) => `b/${id}`,
  revisions: (id: BlockId) => `r/${id}/`,
  revision: (id: BlockId, rev: number) => `r/${id}/${padded(rev)}`,
  snapshot: (id: BlockId, rev: number) => `m/${id}/${padded(rev)}`,
  lsns: (id: BlockId) => `l/${id}/`,
  lsn: (id: BlockId, lsn: number) => `l/${id}/${padded(lsn)}`,
  pends: (id: BlockId) => `p/${id}/`,
  pend: (id: BlockId, trxId: TrxId) => `p/${id}/${trxId}`,
  expiry: (expiresAt: number, id: BlockId, trxId: TrxId) => `x/${padded(expiresAt)}/${id}/${trxId}`,
};

/** The first key after every key that starts with `prefix` ('/' + 1 is '0'). */
function prefixEnd(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

/** What b/ and m/ hold. */
interface StateRecord {
  readonly rev: number;
  readonly lsn: number;
  readonly trxId: TrxId;
  readonly deleted: boolean;
  readonly block?: Block;
  /** b/ of older stores only: the block is not stored here; materialise revision `rev` from r/ (and m/). */
  readonly lazy?: true;
}

interface Counters {
  blocks: number;
}

/** What the store keeps in memory about one pend: enough to decide pend outcomes without reading. */
interface PendSummary {
  readonly kind: BlockTransform['kind'];
  readonly expiresAt: number;
  /**
   * The pend itself, kept from pend() to its promote (which then neither reads nor parses p/), while
   * the kept pends' encoded size stays under pendsKeptBytesMax; absent for pends found on open.
   */
  readonly item?: PendingTransform;
  /**
   * An update's result as the pend's check computed it, with the state it was applied to: the
   * promote uses it when that is still the latest state, instead of applying the ops again.
   */
  readonly checked?: { readonly base: BlockState; readonly block: Block };
}

/** Bytes of encoded pends kept in memory between pend and promote (the rest are read back from p/). */
const pendsKeptBytesMax = 32 * 1024 * 1024;

const transformKinds: ReadonlySet<string> = new Set<BlockTransform['kind']>(['insert', 'update', 'delete']);

/**
 * Every pend's summary, by block. Pends are transient (promoted, cancelled or expired within
 * limits.pendingExpiryMs) and capped per block, so this stays small; it is rebuilt from x/ on first use.
 */
class PendIndex {
  private readonly byBlock = new Map<BlockId, Map<TrxId, PendSummary>>();
  private count = 0;
  /** Encoded bytes of the kept pends (a kept pend counts once its text has been encoded). */
  private keptBytes = 0;
  private readonly counted = new WeakMap<PendSummary, number>();

  get size(): number {
    return this.count;
  }

  of(id: BlockId): ReadonlyMap<TrxId, PendSummary> {
    return this.byBlock.get(id) ?? new Map<TrxId, PendSummary>();
  }

  get(id: BlockId, trxId: TrxId): PendSummary | undefined {
    return this.byBlock.get(id)?.get(trxId);
  }

  set(id: BlockId, trxId: TrxId, summary: PendSummary | undefined): void {
    let pends = this.byBlock.get(id);
    const previous = pends?.get(trxId);
    if (previous !== undefined) this.keptBytes -= this.counted.get(previous) ?? 0;
    if (summary === undefined) {
      if (previous === undefined) return;
      pends!.delete(trxId);
      this.count--;
      if (pends!.size === 0) this.byBlock.delete(id);
      return;
    }
    if (pends === undefined) {
      pends = new Map();
      this.byBlock.set(id, pends);
    }
    pends.set(trxId, summary);
    if (previous === undefined) this.count++;
    const bytes = this.counted.get(summary);
    if (bytes !== undefined) {
      this.counted.delete(summary);
      this.encoded(id, trxId, summary, bytes);
    }
  }

  /**
   * A pend's text was encoded (`bytes` long): it counts against pendsKeptBytesMax from now on, and
   * past the bound the pend stops being kept (its promote reads it back from p/).
   */
  encoded(id: BlockId, trxId: TrxId, summary: PendSummary, bytes: number): void {
    if (summary.item === undefined || this.counted.has(summary)) return;
    if (this.byBlock.get(id)?.get(trxId) !== summary) {
      // Not published yet (a store that encodes during batch()): counted when it is.
      this.counted.set(summary, bytes);
      return;
    }
    if (this.keptBytes + bytes > pendsKeptBytesMax) {
      this.byBlock.get(id)!.set(trxId, { kind: summary.kind, expiresAt: summary.expiresAt });
      return;
    }
    this.keptBytes += bytes;
    this.counted.set(summary, bytes);
  }
}

/**
 * The p/ put of a pend, encoded only when something reads its value: a flush that carries it or a
 * read of p/. A pend promoted or cancelled before the next flush (the usual case: the coordinator
 * syncs once, after the promote) is then never encoded, and the raw store writes nothing for it.
 */
class PendPut {
  readonly type = 'put';
  readonly absent: boolean;
  private text: string | undefined;

  constructor(
    readonly key: string,
    private readonly item: PendingTransform,
    absent: boolean,
    private readonly onEncoded: (bytes: number) => void,
  ) {
    this.absent = absent;
  }

  get value(): string {
    if (this.text === undefined) {
      this.text = JSON.stringify(this.item);
      this.onEncoded(this.text.length);
    }
    return this.text;
  }
}

/** What one mutating call writes (one raw batch), and the in-memory changes to publish once it is in. */
class Mutation {
  readonly ops: RawOp[] = [];
  blocksDelta = 0;
  readonly changed = new Map<BlockId, BlockState>();
  readonly pendChanges: Array<readonly [BlockId, TrxId, PendSummary | undefined]> = [];

  putPend(
    item: PendingTransform,
    previous: PendSummary | undefined,
    pends: PendIndex,
    checked: PendSummary['checked'],
  ): void {
    // Pending the same transaction again (a retried message) replaces its pend.
    if (previous !== undefined) {
      this.ops.push({ type: 'del', key: keyOf.expiry(previous.expiresAt, item.blockId, item.trxId) });
    }
    // A first pend of the transaction on the block creates both keys: marked absent, they cost
    // nothing on disk when the promote deletes them before the next flush.
    const absent = previous === undefined;
    const summary: PendSummary = {
      kind: item.transform.kind,
      expiresAt: item.expiresAt,
      item,
      ...(checked !== undefined ? { checked } : {}),
    };
    this.ops.push(
      new PendPut(keyOf.pend(item.blockId, item.trxId), item, absent, (bytes) =>
        pends.encoded(item.blockId, item.trxId, summary, bytes),
      ),
      {
        type: 'put',
        key: keyOf.expiry(item.expiresAt, item.blockId, item.trxId),
        value: item.transform.kind,
        absent,
      },
    );
    this.pendChanges.push([item.blockId, item.trxId, summary]);
  }

  dropPend(id: BlockId, trxId: TrxId, summary: PendSummary): void {
    this.ops.push(
      { type: 'del', key: keyOf.pend(id, trxId) },
      { type: 'del', key: keyOf.expiry(summary.expiresAt, id, trxId) },
    );
    this.pendChanges.push([id, trxId, undefined]);
  }
}

/** In-memory state rebuilt from the RawStore on first use. */
interface Loaded {
  readonly counters: Counters;
  readonly pends: PendIndex;
}

/**
 * What a mutation's body needed read besides the latest states (see `mutate`), once read. Reads are
 * made under the locks of the mutation's blocks, so they stay true while its body runs again.
 */
class Reads {
  /** carries(id, trxId, lsn), by `${id} ${trxId} ${lsn}`. (Each map is made when first needed.) */
  carried: Map<string, boolean> | undefined;
  /** p/ records of pends the index does not keep in memory, by key. */
  pendTexts: Map<string, string | undefined> | undefined;
  /** The outcome of a pend on a block whose revision moved past its base. */
  stale: Map<BlockId, PendOutcome> | undefined;
}

/**
 * Thrown by a mutation's body that needs something read first (rare: a stale pend, a replayed
 * revision, a pend not kept in memory). `mutate` makes the read and runs the body again.
 */
class NeedsRead extends Error {
  constructor(readonly read: () => Promise<void>) {
    super('a mutation needs a read first');
  }
}

/** A rejected promise for what a synchronous section threw (a method that returns promises never throws). */
function rejected(error: unknown): Promise<never> {
  return Promise.reject(error instanceof Error ? error : new Error(String(error)));
}

/** A mutation's body: the ops to write, built from the latest states of the blocks it reads. */
type MutationBody<T> = (
  latests: ReadonlyMap<BlockId, BlockState | null>,
  loaded: Loaded,
  reads: Reads,
) => { readonly mutation: Mutation; readonly result: T };

function encodeState(state: BlockState): string {
  const record: StateRecord =
    state.block === undefined
      ? { rev: state.rev, lsn: state.lsn, trxId: state.trxId, deleted: true }
      : { rev: state.rev, lsn: state.lsn, trxId: state.trxId, deleted: false, block: state.block };
  return JSON.stringify(record);
}

function decode<T>(key: string, text: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new EngineError(
      'CORRUPT',
      `stored value under ${key} is not valid JSON`,
      { key },
      { cause: error },
    );
  }
}

/** The b/ record of a live block: its latest state is its newest revision in r/. */
const newestRevisionMarker = '{"lazy":"newest"}';

/**
 * A b/ record: a whole state, or where to materialise it from (`lazyRev` undefined: the newest
 * revision; a number: that revision, named by an older store's b/ record).
 */
function decodeState(
  id: BlockId,
  key: string,
  text: string,
): BlockState | { readonly lazyRev: number | undefined } {
  if (text === newestRevisionMarker) return { lazyRev: undefined };
  const record = decode<StateRecord>(key, text);
  if (record.lazy === true && !record.deleted) {
    if (!Number.isSafeInteger(record.rev) || record.rev < 1)
      throw new EngineError('CORRUPT', `state under ${key} names no revision`, { key });
    return { lazyRev: record.rev };
  }
  return decodeWholeState(id, key, record);
}

function decodeWholeState(id: BlockId, key: string, record: StateRecord): BlockState {
  if (!record.deleted && record.block === undefined)
    throw new EngineError('CORRUPT', `state under ${key} has no block`, { key });
  return {
    id,
    rev: record.rev,
    lsn: record.lsn,
    trxId: record.trxId,
    block: record.deleted ? undefined : record.block,
  };
}

/**
 * A small LRU: a Map iterates in insertion order, so re-inserting on use keeps the oldest first. A
 * re-insertion costs a delete and an insert, so a read moves only entries in the older half (placed
 * more than half the capacity of insertions ago): every read of a hot block would otherwise pay it,
 * and an entry that far from the front is in no danger of eviction.
 */
class LatestCache {
  private readonly entries = new Map<BlockId, { state: BlockState | null; placed: number }>();
  /** Insertions so far. */
  private placed = 0;
  constructor(private readonly entriesMax: number) {}

  /** The cached state, null when the block is known not to exist, undefined when not cached. */
  get(id: BlockId): BlockState | null | undefined {
    const entry = this.entries.get(id);
    if (entry === undefined) return undefined;
    if (this.placed - entry.placed > this.entriesMax >>> 1) {
      this.entries.delete(id);
      this.entries.set(id, entry);
      entry.placed = ++this.placed;
    }
    return entry.state;
  }

  set(id: BlockId, state: BlockState | null): void {
    const entry = this.entries.get(id);
    if (entry !== undefined && this.placed - entry.placed <= this.entriesMax >>> 1) {
      entry.state = state;
      return;
    }
    if (entry !== undefined) this.entries.delete(id);
    this.entries.set(id, { state, placed: ++this.placed });
    if (this.entries.size > this.entriesMax) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
  }
}

/** Per-block async mutex; a caller locking several blocks takes them in sorted order, so no deadlock. */
class BlockLocks {
  /** The release promise of the newest holder or waiter of each locked block. */
  private readonly tails = new Map<BlockId, Promise<void>>();

  async hold<T>(ids: readonly BlockId[], work: () => Promise<T>): Promise<T> {
    const releases: Array<() => void> = [];
    try {
      for (const id of ids.length === 1 ? ids : [...new Set(ids)].sort()) {
        // A free block is taken at once; only a held one is waited for.
        const previous = this.tails.get(id);
        releases.push(this.enqueue(id));
        if (previous !== undefined) await previous;
      }
      return await work();
    } finally {
      for (const release of releases) release();
    }
  }

  /** Whether no caller holds or waits for any of these blocks. */
  free(ids: readonly BlockId[]): boolean {
    for (const id of ids) if (this.tails.has(id)) return false;
    return true;
  }

  /** Queues a holder of the block behind the current one; returns its release. */
  private enqueue(id: BlockId): () => void {
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.tails.set(id, released);
    return () => {
      release();
      if (this.tails.get(id) === released) this.tails.delete(id);
    };
  }
}

/** A read of b/ in flight; a write to the block marks it stale so its (older) result is not cached. */
interface LatestLoad {
  stale: boolean;
  readonly promise: Promise<BlockState | null>;
}

/**
 * BlockStore over a RawStore: per block, the latest state, every revision's transform, a full
 * snapshot every limits.materialiseEveryRevs revisions, an LSN index, and pending transforms with an
 * expiry index. See block-store.ts for the contract.
 *
 * Mutations take the per-block locks of every block they touch, read, build all their ops, and write
 * them as one raw batch; nothing syncs but `sync()`. A mutation that has nothing to wait for (its
 * blocks free and in memory, a raw store that writes at once) does all of that within the call
 * instead (`mutate`). Latest states sit in an LRU cache in front of b/; a write updates the cache
 * once its batch is in, and marks any read of b/ then in flight stale.
 */
export class VersionedBlockStore implements BlockStore {
  private readonly raw: RawStore;
  private readonly cache: LatestCache;
  private readonly loads = new Map<BlockId, LatestLoad>();
  private readonly locks = new BlockLocks();
  /**
   * Latest states whose b/ record is the newest-revision marker (this store wrote or read it so):
   * their next revision leaves b/ alone. Any other state (new, deleted, or read from an older b/
   * record) has its b/ rewritten as the marker by its next revision.
   */
  private readonly marked = new WeakSet<BlockState>();
  /**
   * `stats()` gives exact counts, not estimates. `pending` is the size of the pend index. `blocks` is a
   * maintained counter: every batch that changes it carries its new value under s/counters, so after
   * a crash it matches the batches that survived. That relies on batches taking effect in call order
   * (RawStore guarantees it), as writers of different blocks update it concurrently: no await
   * separates counting from calling batch().
   */
  private loaded: Loaded | undefined;
  private loading: Promise<Loaded> | undefined;

  constructor(raw: RawStore, init: VersionedBlockStoreInit = {}) {
    this.raw = raw;
    const entriesMax = init.cacheEntriesMax ?? limits.blockCacheEntriesMax;
    assert(
      Number.isInteger(entriesMax) && entriesMax >= 1,
      `cacheEntriesMax ${entriesMax} must be a positive integer`,
    );
    this.cache = new LatestCache(entriesMax);
  }

  async latest(id: BlockId): Promise<BlockState | undefined> {
    assertKeyPart(id, 'block id');
    return (await this.loadLatest(id, undefined, true)) ?? undefined;
  }

  latestNow(id: BlockId): BlockState | null | undefined {
    assertKeyPart(id, 'block id');
    return this.cache.get(id);
  }

  async at(
    id: BlockId,
    point: { readonly rev: number } | { readonly lsn: number },
  ): Promise<BlockState | undefined> {
    assertKeyPart(id, 'block id');
    const latest = await this.loadLatest(id, undefined, true);
    if (latest === null) return undefined;
    let rev: number;
    if ('rev' in point) {
      if (!Number.isInteger(point.rev) || point.rev < 1) return undefined;
      rev = point.rev;
    } else {
      if (Number.isNaN(point.lsn) || point.lsn < 0) return undefined;
      // A block's revisions come from its collection's log in order, so lsns grow with revisions.
      if (latest.lsn <= point.lsn) return latest;
      const lsn = Math.min(Math.floor(point.lsn), Number.MAX_SAFE_INTEGER);
      const found = await this.revisionAtLsn(id, lsn, latest.rev);
      if (found === undefined) return undefined;
      rev = found.rev;
    }
    if (rev > latest.rev) return undefined;
    if (rev === latest.rev) return latest;
    return this.materialise(id, rev);
  }

  async history(id: BlockId, range: HistoryRange = {}): Promise<BlockRevision[]> {
    assertKeyPart(id, 'block id');
    const fromRev = Math.max(1, Math.ceil(range.fromRev ?? 1));
    const toRev = Math.min(Number.MAX_SAFE_INTEGER, Math.floor(range.toRev ?? Number.MAX_SAFE_INTEGER));
    if (toRev < fromRev || (range.limit !== undefined && range.limit <= 0)) return [];
    const revisions: BlockRevision[] = [];
    const scan = this.raw.iterate({
      gte: keyOf.revision(id, fromRev),
      lte: keyOf.revision(id, toRev),
      ...(range.reverse === true ? { reverse: true } : {}),
      ...(range.limit !== undefined ? { limit: Math.floor(range.limit) } : {}),
    });
    for await (const [key, text] of scan) revisions.push(decode<BlockRevision>(key, text));
    return revisions;
  }

  async pendingOf(id: BlockId): Promise<PendingTransform[]> {
    assertKeyPart(id, 'block id');
    const pends: PendingTransform[] = [];
    const prefix = keyOf.pends(id);
    for await (const [key, text] of this.raw.iterate({ gte: prefix, lt: prefixEnd(prefix) })) {
      pends.push(decode<PendingTransform>(key, text));
    }
    return pends;
  }

  async holdsPend(id: BlockId, trxId: TrxId): Promise<boolean> {
    assertKeyPart(id, 'block id');
    const loaded = this.loaded ?? (await this.load());
    return loaded.pends.get(id, trxId) !== undefined;
  }

  pend(
    items: readonly PendingTransform[],
  ): Promise<{ readonly ok: boolean; readonly outcomes: readonly PendOutcome[] }> {
    if (items.length === 0) return Promise.resolve({ ok: true, outcomes: [] });
    const trxId = items[0]!.trxId;
    const ids = new Set<BlockId>();
    try {
      for (const item of items) {
        validatePend(item);
        if (item.trxId !== trxId)
          throw new EngineError('BAD_INPUT', 'one pend call carries the pends of one transaction');
        if (ids.has(item.blockId))
          throw new EngineError('BAD_INPUT', `block ${item.blockId} is pended twice in one call`);
        ids.add(item.blockId);
      }
    } catch (error) {
      return rejected(error);
    }
    const blockIds = [...ids];
    return this.mutate(blockIds, blockIds, (latests, loaded, reads) => {
      const outcomes: PendOutcome[] = [];
      const mutation = new Mutation();
      for (const item of items) {
        const latest = latests.get(item.blockId)!;
        const currentRev = latest?.rev ?? 0;
        if (item.baseRev !== currentRev) {
          outcomes.push(this.staleOutcome(reads, item.blockId, item.baseRev, currentRev));
          continue;
        }
        const applied = checkApplies(item, latest);
        const pends = loaded.pends.of(item.blockId);
        const mine = pends.get(item.trxId);
        const others = pends.size - (mine === undefined ? 0 : 1);
        const exists = latest !== null && latest.block !== undefined;
        const rival =
          !exists && item.transform.kind === 'insert'
            ? [...pends].find(([trxId, pend]) => trxId !== item.trxId && pend.kind === 'insert')
            : undefined;
        if (rival !== undefined) {
          outcomes.push({ status: 'busy', trxId: rival[0] });
          continue;
        }
        if (others >= limits.pendingPerBlockMax) {
          outcomes.push({ status: 'full' });
          continue;
        }
        outcomes.push({ status: 'ok' });
        mutation.putPend(
          item,
          mine,
          loaded.pends,
          applied !== undefined && latest !== null ? { base: latest, block: applied } : undefined,
        );
      }
      const ok = outcomes.every((outcome) => outcome.status === 'ok');
      return { mutation: ok ? mutation : new Mutation(), result: { ok, outcomes } };
    });
  }

  cancel(trxId: TrxId, blockIds: readonly BlockId[]): Promise<void> {
    const ids = [...new Set(blockIds)];
    try {
      assertKeyPart(trxId, 'transaction id');
      for (const id of ids) assertKeyPart(id, 'block id');
    } catch (error) {
      return rejected(error);
    }
    if (ids.length === 0) return Promise.resolve();
    return this.mutate(ids, [], (_, loaded) => {
      const mutation = new Mutation();
      for (const id of ids) {
        const summary = loaded.pends.get(id, trxId);
        if (summary !== undefined) mutation.dropPend(id, trxId, summary);
      }
      return { mutation, result: undefined };
    });
  }

  promote(commit: {
    readonly trxId: TrxId;
    readonly lsn: number;
    readonly blockIds: readonly BlockId[];
  }): Promise<void> {
    const { trxId, lsn, blockIds } = commit;
    try {
      assertKeyPart(trxId, 'transaction id');
      assert(Number.isSafeInteger(lsn) && lsn >= 0, `promote lsn ${lsn} is not a non-negative integer`);
      assert(new Set(blockIds).size === blockIds.length, 'promote lists a block twice');
      for (const id of blockIds) assertKeyPart(id, 'block id');
    } catch (error) {
      return rejected(error);
    }
    if (blockIds.length === 0) return Promise.resolve();
    return this.mutate(blockIds, blockIds, (latests, loaded, reads) => {
      // Only pends the index knows and does not keep in memory are read, all in one getMany.
      const unkept = blockIds.flatMap((id) => {
        const summary = loaded.pends.get(id, trxId);
        return summary !== undefined && summary.item === undefined ? [keyOf.pend(id, trxId)] : [];
      });
      if (unkept.length > 0 && reads.pendTexts === undefined) {
        throw new NeedsRead(async () => {
          const texts = await this.raw.getMany(unkept);
          reads.pendTexts = new Map(unkept.map((key, i) => [key, texts[i]]));
        });
      }
      const mutation = new Mutation();
      for (const id of blockIds) {
        const latest = latests.get(id)!;
        const summary = loaded.pends.get(id, trxId);
        if (latest?.trxId === trxId) continue;
        if (summary === undefined) {
          // A holder that never got the pend (it was down, or joined the cluster later) cannot apply
          // the commit: it has to be sent the revision. Expected in a network, so not an assertion.
          if (!this.carried(reads, id, trxId, lsn))
            throw new EngineError(
              'UNAVAILABLE',
              `block ${id} has no pending transform of ${trxId} to promote (it must be sent the revision)`,
              { missingPend: true },
            );
          continue;
        }
        const pendKey = keyOf.pend(id, trxId);
        const pendText = summary.item === undefined ? reads.pendTexts?.get(pendKey) : undefined;
        if (summary.item === undefined && pendText === undefined) {
          throw new EngineError('CORRUPT', `${pendKey} is missing`, { key: pendKey });
        }
        const pend = summary.item ?? decode<PendingTransform>(pendKey, pendText!);
        const currentRev = latest?.rev ?? 0;
        assert(
          pend.baseRev === currentRev,
          `promote of ${trxId} on block ${id}: pend is based on rev ${pend.baseRev}, latest is ${currentRev}`,
        );
        const checked = summary.checked?.base === latest ? summary.checked.block : undefined;
        this.addRevision(mutation, latest, { blockId: id, trxId, lsn, transform: pend.transform }, checked);
        mutation.dropPend(id, trxId, summary);
      }
      return { mutation, result: undefined };
    });
  }

  apply(revisions: readonly DirectRevision[], options: ApplyOptions = {}): Promise<void> {
    if (revisions.length === 0) return Promise.resolve();
    try {
      for (const revision of revisions) {
        assertKeyPart(revision.blockId, 'block id');
        assertKeyPart(revision.trxId, 'transaction id');
        assert(
          Number.isSafeInteger(revision.lsn) && revision.lsn >= 0,
          `apply lsn ${revision.lsn} is not a non-negative integer`,
        );
      }
    } catch (error) {
      return rejected(error);
    }
    const ids =
      revisions.length === 1 ? [revisions[0]!.blockId] : [...new Set(revisions.map((r) => r.blockId))];
    const fresh = options.fresh;
    // A fresh id is not looked up (a read of a key that is not there costs a LevelDB round trip).
    const read =
      fresh === undefined
        ? ids
        : ids.filter((id) => !fresh.includes(id) || this.cache.get(id) !== undefined || this.loads.has(id));
    return this.mutate(ids, read, (latests, loaded, reads) => {
      const working = new Map<BlockId, BlockState | null>();
      for (const id of ids) working.set(id, latests.get(id) ?? null);
      const mutation = new Mutation();
      for (const revision of revisions) {
        const current = working.get(revision.blockId)!;
        if (current?.trxId === revision.trxId) continue;
        const currentRev = current?.rev ?? 0;
        if (revision.baseRev !== currentRev) {
          // A replay of a revision already written is fine; anything else means this node is behind.
          if (
            revision.baseRev < currentRev &&
            this.carried(reads, revision.blockId, revision.trxId, revision.lsn)
          )
            continue;
          throw new EngineError(
            'CONFLICT',
            `block ${revision.blockId} is at rev ${currentRev}, not ${revision.baseRev}`,
            {
              blockId: revision.blockId,
              baseRev: revision.baseRev,
              currentRev,
            },
          );
        }
        working.set(revision.blockId, this.addRevision(mutation, current, revision));
        // The transaction's own pend on the block, if this node held one, is done with.
        const summary = loaded.pends.get(revision.blockId, revision.trxId);
        if (summary !== undefined) mutation.dropPend(revision.blockId, revision.trxId, summary);
      }
      return { mutation, result: undefined };
    });
  }

  /**
   * Takes back this copy's revisions of a block after `toRev` and writes `revisions` (the first built
   * on `toRev`) in their place, in one batch. Only for a copy that a majority of the block's cluster
   * contradicts at those revisions: a revision no majority holds was never acknowledged to anyone
   * (TailBlocks.pull; sim seed 3139). Revisions up to `toRev` are not touched.
   */
  async replaceAfter(id: BlockId, toRev: number, revisions: readonly DirectRevision[]): Promise<void> {
    assertKeyPart(id, 'block id');
    assert(Number.isSafeInteger(toRev) && toRev >= 0, `replaceAfter revision ${toRev} is not a revision`);
    for (const [i, revision] of revisions.entries())
      assert(
        revision.blockId === id && revision.baseRev === toRev + i,
        `replaceAfter: revision ${i} of block ${revision.blockId} is not built on ${toRev + i} of ${id}`,
      );
    await this.locks.hold([id], async () => {
      const loaded = this.loaded ?? (await this.load());
      const latest = await this.loadLatest(id);
      const mutation = new Mutation();
      const newest = latest?.rev ?? 0;
      if (newest > toRev) {
        const after = (key: (n: number) => string): { gt: string; lte: string } => ({
          gt: key(toRev),
          lte: key(newest),
        });
        for await (const [key] of this.raw.iterate(after((n) => keyOf.revision(id, n))))
          mutation.ops.push({ type: 'del', key });
        for await (const [key] of this.raw.iterate(after((n) => keyOf.snapshot(id, n))))
          mutation.ops.push({ type: 'del', key });
        for await (const [key, text] of this.raw.iterate({
          gte: keyOf.lsns(id),
          lt: prefixEnd(keyOf.lsns(id)),
        }))
          if (Number(text) > toRev) mutation.ops.push({ type: 'del', key });
      }
      let state: BlockState | null = toRev === 0 ? null : await this.materialise(id, toRev);
      if (newest > toRev) {
        // b/ for the state at toRev (addRevision below rewrites it again for what follows).
        if (state === null) mutation.ops.push({ type: 'del', key: keyOf.latest(id) });
        else
          mutation.ops.push({
            type: 'put',
            key: keyOf.latest(id),
            value: state.block === undefined ? encodeState(state) : newestRevisionMarker,
          });
        mutation.blocksDelta += (state?.block !== undefined ? 1 : 0) - (latest?.block !== undefined ? 1 : 0);
      }
      for (const revision of revisions) state = this.addRevision(mutation, state, revision);
      await this.write(mutation, loaded);
      // Reads in flight began before the batch: their result must not be cached.
      const load = this.loads.get(id);
      if (load !== undefined) {
        load.stale = true;
        this.loads.delete(id);
      }
      this.cache.set(id, state);
    });
  }

  async expired(now: number, limit: number): Promise<PendingTransform[]> {
    if (limit <= 0 || Number.isNaN(now) || now < 0) return [];
    const upTo = Math.min(Math.floor(now), Number.MAX_SAFE_INTEGER - 1);
    const pendKeys: string[] = [];
    for await (const [key] of this.raw.iterate({
      gte: 'x/',
      lt: `x/${padded(upTo + 1)}`,
      limit: Math.floor(limit),
    })) {
      const [, , id, trxId] = key.split('/');
      assert(id !== undefined && trxId !== undefined, `malformed expiry key ${key}`);
      pendKeys.push(keyOf.pend(id, trxId));
    }
    const texts = await this.raw.getMany(pendKeys);
    return texts.map((text, i) => {
      const key = pendKeys[i]!;
      if (text === undefined)
        throw new EngineError('CORRUPT', `expiry index names ${key}, which is missing`, { key });
      return decode<PendingTransform>(key, text);
    });
  }

  async sync(): Promise<void> {
    await this.raw.sync();
  }

  /** Ids of every block held here (deleted ones included), in key order. */
  async *ids(): AsyncIterable<BlockId> {
    for await (const [key] of this.raw.iterate({ gte: 'b/', lt: prefixEnd('b/') })) yield key.slice(2);
  }

  async stats(): Promise<BlockStoreStats> {
    const loaded = this.loaded ?? (await this.load());
    return { blocks: loaded.counters.blocks, pending: loaded.pends.size, bytes: await this.raw.sizeBytes() };
  }

  /**
   * The latest states of several blocks: cached ones at once, and the b/ records of the rest in one
   * getMany (one LevelDB round trip instead of one per block, e.g. for a transaction's new blocks).
   */
  private loadLatestMany(ids: readonly BlockId[]): Promise<Array<BlockState | null>> {
    const unread = new Map<BlockId, number>();
    for (const id of ids) {
      if (this.cache.get(id) === undefined && !this.loads.has(id)) unread.set(id, unread.size);
    }
    if (unread.size < 2) return Promise.all(ids.map((id) => this.loadLatest(id)));
    const texts = this.raw.getMany([...unread.keys()].map((id) => keyOf.latest(id)));
    return Promise.all(
      ids.map((id) => {
        const at = unread.get(id);
        return this.loadLatest(id, at === undefined ? undefined : texts.then((found) => found[at]));
      }),
    );
  }

  /**
   * The latest state through the cache; concurrent misses on one block share one read. `stored`, when
   * given, is the b/ record already being read. `ahead`: read the block's newest revisions alongside
   * b/ (both as of this call), one LevelDB round trip instead of two when, as usual for a live block,
   * b/ is the marker; for reads of blocks expected to exist (a writer's blocks are mostly cached, or
   * new: reading ahead would be wasted on them).
   */
  private loadLatest(
    id: BlockId,
    stored?: Promise<string | undefined>,
    ahead = false,
  ): Promise<BlockState | null> {
    const cached = this.cache.get(id);
    if (cached !== undefined) return Promise.resolve(cached);
    const inFlight = this.loads.get(id);
    if (inFlight !== undefined) return inFlight.promise;
    const key = keyOf.latest(id);
    const read = async (): Promise<BlockState | null> => {
      const newest = ahead ? this.newestRevisions(id) : undefined;
      newest?.catch(() => undefined);
      const text = await (stored ?? this.raw.get(key));
      const decoded = text === undefined ? null : decodeState(id, key, text);
      if (decoded === null || !('lazyRev' in decoded)) return decoded;
      // Revisions are never rewritten, so the revision b/ named stays materialisable even if a write
      // lands meanwhile (that write marks this load stale, so its result is not cached).
      if (decoded.lazyRev !== undefined) return this.materialise(id, decoded.lazyRev);
      const state = await this.materialiseNewest(id, await (newest ?? this.newestRevisions(id)));
      this.marked.add(state);
      return state;
    };
    const load: LatestLoad = {
      stale: false,
      promise: read().then(
        (state) => {
          if (this.loads.get(id) === load) this.loads.delete(id);
          if (!load.stale) this.cache.set(id, state);
          return state;
        },
        (error: unknown) => {
          if (this.loads.get(id) === load) this.loads.delete(id);
          throw error;
        },
      ),
    };
    this.loads.set(id, load);
    return load.promise;
  }

  /** The counters and the pend index, read from the RawStore once, before the first mutation. */
  private load(): Promise<Loaded> {
    if (this.loaded !== undefined) return Promise.resolve(this.loaded);
    this.loading ??= (async () => {
      const text = await this.raw.get(countersKey);
      const counters = text === undefined ? { blocks: 0 } : decode<Counters>(countersKey, text);
      const pends = new PendIndex();
      for await (const [key, kind] of this.raw.iterate({ gte: 'x/', lt: prefixEnd('x/') })) {
        const [, expiresAt, id, trxId] = key.split('/');
        if (id === undefined || trxId === undefined || !transformKinds.has(kind)) {
          throw new EngineError('CORRUPT', `malformed expiry entry ${key}`, { key });
        }
        pends.set(id, trxId, { kind: kind as BlockTransform['kind'], expiresAt: Number(expiresAt) });
      }
      this.loaded = { counters, pends };
      return this.loaded;
    })().catch((error: unknown) => {
      this.loading = undefined;
      throw error;
    });
    return this.loading;
  }

  /**
   * Runs a mutation of the blocks `ids` (one raw batch), `body` building it from the latest states of
   * the blocks `reading`.
   *
   * At once when nothing has to be waited for: the store loaded, no caller holding or waiting for
   * any of the blocks, their latest states in memory, and a raw store that writes at once. The body
   * then runs, and its batch is written and published, within this call: no lock is needed, as
   * nothing else runs meanwhile. A small transaction makes three mutations (pend, log append,
   * promote), and each went through about fifteen promises and turns of the microtask queue
   * otherwise (locks, reads of cached states, the write). Otherwise the blocks are locked and their
   * states read first. A body that needs something else read throws NeedsRead: the read is made
   * under the locks and the body runs again.
   */
  private mutate<T>(ids: readonly BlockId[], reading: readonly BlockId[], body: MutationBody<T>): Promise<T> {
    const reads = new Reads();
    const loaded = this.loaded;
    if (loaded !== undefined && this.raw.batchNow !== undefined && this.locks.free(ids)) {
      const latests = this.cachedLatests(reading);
      if (latests !== undefined) {
        try {
          const { mutation, result } = body(latests, loaded, reads);
          const waiting = this.writeNow(mutation, loaded);
          return waiting === undefined ? Promise.resolve(result) : waiting.then(() => result);
        } catch (error) {
          if (!(error instanceof NeedsRead)) return rejected(error);
        }
      }
    }
    return this.locks.hold(ids, async () => {
      const loaded = this.loaded ?? (await this.load());
      const states = await this.loadLatestMany(reading);
      const latests = new Map<BlockId, BlockState | null>();
      reading.forEach((id, i) => latests.set(id, states[i]!));
      for (;;) {
        try {
          const { mutation, result } = body(latests, loaded, reads);
          await this.write(mutation, loaded);
          return result;
        } catch (error) {
          if (!(error instanceof NeedsRead)) throw error;
          await error.read();
        }
      }
    });
  }

  /** The latest states of these blocks when all are in memory, else undefined. */
  private cachedLatests(ids: readonly BlockId[]): Map<BlockId, BlockState | null> | undefined {
    const latests = new Map<BlockId, BlockState | null>();
    for (const id of ids) {
      const state = this.cache.get(id);
      if (state === undefined) return undefined;
      latests.set(id, state);
    }
    return latests;
  }

  /**
   * Writes the mutation's ops as one batch (with the block counter when it changed), then publishes
   * its pend index changes and new latest states. Nothing is awaited between updating the counter
   * and calling batch(), so counter values land in the order they were computed.
   */
  private async write(mutation: Mutation, loaded: Loaded): Promise<void> {
    if (this.raw.batchNow !== undefined) {
      await this.writeNow(mutation, loaded);
      return;
    }
    if (mutation.ops.length === 0) return;
    const delta = this.count(mutation, loaded);
    try {
      await this.raw.batch(mutation.ops);
    } catch (error) {
      // A rejected batch applied nothing (RawStore contract), so neither did this count.
      loaded.counters.blocks -= delta;
      throw error;
    }
    this.publish(mutation, loaded);
  }

  /**
   * `write` through RawStore.batchNow: the batch is in and published when this returns; the promise,
   * if any, says when the raw store can take more.
   */
  private writeNow(mutation: Mutation, loaded: Loaded): Promise<void> | undefined {
    if (mutation.ops.length === 0) return undefined;
    const delta = this.count(mutation, loaded);
    let waiting: Promise<void> | undefined;
    try {
      waiting = this.raw.batchNow!(mutation.ops);
    } catch (error) {
      loaded.counters.blocks -= delta;
      throw error;
    }
    this.publish(mutation, loaded);
    return waiting;
  }

  /** Counts the mutation's blocks into the counter (and its batch); returns the change. */
  private count(mutation: Mutation, loaded: Loaded): number {
    const counters = loaded.counters;
    const delta = mutation.blocksDelta;
    if (delta !== 0) {
      counters.blocks += delta;
      mutation.ops.push({ type: 'put', key: countersKey, value: JSON.stringify(counters) });
    }
    return delta;
  }

  /** Makes a written mutation's pend changes and latest states visible to later calls. */
  private publish(mutation: Mutation, loaded: Loaded): void {
    for (const [id, trxId, summary] of mutation.pendChanges) loaded.pends.set(id, trxId, summary);
    for (const state of mutation.changed.values()) {
      const load = this.loads.get(state.id);
      if (load !== undefined) {
        load.stale = true;
        this.loads.delete(state.id);
      }
      this.cache.set(state.id, state);
    }
  }

  /**
   * Stages the next revision of a block and returns its new latest state. (A DirectRevision marked
   * `whole`, a sealed log block, is stored like any other: its few revisions since its insert are
   * read back cheaply, and rewriting the block whole cost a log block's size at every seal.)
   */
  private addRevision(
    mutation: Mutation,
    previous: BlockState | null,
    revision: {
      readonly blockId: BlockId;
      readonly trxId: TrxId;
      readonly lsn: number;
      readonly transform: BlockTransform;
    },
    /** The block the transform makes of `previous`, when already computed (see PendSummary.checked). */
    result?: Block,
  ): BlockState {
    const { blockId: id, trxId, lsn, transform } = revision;
    const rev = (previous?.rev ?? 0) + 1;
    const block = result ?? applyTransform(previous?.block, transform);
    const state: BlockState = { id, rev, lsn, trxId, block };
    const record: BlockRevision = { rev, lsn, trxId, transform };
    if (state.block === undefined) {
      mutation.ops.push({ type: 'put', key: keyOf.latest(id), value: encodeState(state) });
    } else {
      if (previous === null || !this.marked.has(previous))
        mutation.ops.push({ type: 'put', key: keyOf.latest(id), value: newestRevisionMarker });
      this.marked.add(state);
    }
    mutation.ops.push({ type: 'put', key: keyOf.revision(id, rev), value: JSON.stringify(record) });
    if (rev % limits.materialiseEveryRevs === 0) {
      mutation.ops.push(
        { type: 'put', key: keyOf.snapshot(id, rev), value: encodeState(state) },
        { type: 'put', key: keyOf.lsn(id, lsn), value: String(rev) },
      );
    }
    mutation.blocksDelta += (state.block !== undefined ? 1 : 0) - (previous?.block !== undefined ? 1 : 0);
    mutation.changed.set(id, state);
    return state;
  }

  /** `carries`, once read (see Reads). */
  private carried(reads: Reads, id: BlockId, trxId: TrxId, lsn: number): boolean {
    const key = `${id} ${trxId} ${lsn}`;
    const known = reads.carried?.get(key);
    if (known !== undefined) return known;
    throw new NeedsRead(async () => {
      (reads.carried ??= new Map()).set(key, await this.carries(id, trxId, lsn));
    });
  }

  /** Whether the revision that `lsn` produced on the block came from `trxId` (the commit already landed). */
  private async carries(id: BlockId, trxId: TrxId, lsn: number): Promise<boolean> {
    const latest = await this.loadLatest(id);
    if (latest === null) return false;
    const found = await this.revisionAtLsn(id, lsn, latest.rev);
    return found !== undefined && found.lsn === lsn && found.trxId === trxId;
  }

  /**
   * The newest revision (up to `latestRev`) whose lsn is ≤ `lsn`. A block's revisions come from its
   * collection's log in order, so lsns grow with revisions: l/ names the lsn of every
   * materialiseEveryRevs-th revision, so the answer lies in the fewer than materialiseEveryRevs
   * revisions after the newest one at or below `lsn` (stores that indexed every revision find it at
   * once and read one revision past it).
   */
  private async revisionAtLsn(
    id: BlockId,
    lsn: number,
    latestRev: number,
  ): Promise<BlockRevision | undefined> {
    let anchor = 0;
    for await (const [, text] of this.raw.iterate({
      gte: keyOf.lsns(id),
      lte: keyOf.lsn(id, lsn),
      reverse: true,
      limit: 1,
    })) {
      anchor = Number(text);
    }
    if (!Number.isSafeInteger(anchor) || anchor < 0 || anchor > latestRev)
      throw new EngineError('CORRUPT', `the lsn index of block ${id} names revision ${anchor}`, {
        blockId: id,
      });
    const from = Math.max(1, anchor);
    const to = Math.min(latestRev, anchor + limits.materialiseEveryRevs);
    let found: BlockRevision | undefined;
    if (from <= to) {
      for await (const [key, text] of this.raw.iterate({
        gte: keyOf.revision(id, from),
        lte: keyOf.revision(id, to),
      })) {
        const record = decode<BlockRevision>(key, text);
        if (record.lsn > lsn) break;
        found = record;
      }
    }
    return found;
  }

  /**
   * A block's newest revisions, newest first, down to the nearest full state (an insert or delete
   * revision, or one just above or at an m/ snapshot): fewer than materialiseEveryRevs. Empty when it
   * has none.
   */
  private async newestRevisions(id: BlockId): Promise<BlockRevision[]> {
    const every = limits.materialiseEveryRevs;
    const prefix = keyOf.revisions(id);
    const records: BlockRevision[] = [];
    for await (const [key, text] of this.raw.iterate({
      gte: prefix,
      lt: prefixEnd(prefix),
      reverse: true,
      limit: every,
    })) {
      const record = decode<BlockRevision>(key, text);
      const expected = records.length === 0 ? record.rev : records[records.length - 1]!.rev - 1;
      if (record.rev !== expected)
        throw new EngineError('CORRUPT', `revisions of block ${id} are not contiguous at ${record.rev}`, {
          blockId: id,
        });
      records.push(record);
      // Enough: a full state, or a snapshot at this revision (the newest) or just below it.
      if (record.transform.kind !== 'update' || record.rev % every === 1) break;
      if (records.length === 1 && record.rev % every === 0) break;
    }
    return records;
  }

  /**
   * The state at the block's newest revision, from its newest revisions (newestRevisions): the
   * nearest full state with the newer transforms applied forwards.
   */
  private async materialiseNewest(id: BlockId, records: readonly BlockRevision[]): Promise<BlockState> {
    const every = limits.materialiseEveryRevs;
    const newest = records[0];
    if (newest === undefined)
      throw new EngineError('CORRUPT', `block ${id} is marked live but has no revisions`, { blockId: id });
    // The newest revision is an update at a snapshot: the snapshot is its state.
    if (newest.transform.kind === 'update' && newest.rev % every === 0)
      return this.stateFrom(id, newest.rev, []);
    const oldest = records[records.length - 1]!;
    if (oldest.transform.kind === 'update' && (oldest.rev === 1 || (oldest.rev - 1) % every !== 0))
      throw new EngineError('CORRUPT', `block ${id} has no full state below rev ${oldest.rev}`, {
        blockId: id,
      });
    return this.stateFrom(id, oldest.rev - 1, [...records].reverse());
  }

  /**
   * The state at a past revision: the nearest full state at or below it (an insert or delete revision,
   * or the m/ snapshot at the last multiple of materialiseEveryRevs) plus fewer than
   * materialiseEveryRevs transforms.
   */
  private async materialise(id: BlockId, rev: number): Promise<BlockState> {
    const base = rev - (rev % limits.materialiseEveryRevs);
    const records: BlockRevision[] = [];
    if (rev > base) {
      for await (const [key, text] of this.raw.iterate({
        gte: keyOf.revision(id, base + 1),
        lte: keyOf.revision(id, rev),
      })) {
        records.push(decode<BlockRevision>(key, text));
      }
    }
    if (records.length !== rev - base) {
      throw new EngineError('CORRUPT', `revisions ${base + 1}..${rev} of block ${id} are incomplete`, {
        blockId: id,
      });
    }
    return this.stateFrom(id, base, records);
  }

  /**
   * The state at the newest of `records` (revisions base+1.. of a block, oldest first): from the
   * newest full state among them (an insert or delete), else from the m/ snapshot at `base`, with the
   * later transforms applied. No records: the snapshot itself.
   */
  private async stateFrom(id: BlockId, base: number, records: readonly BlockRevision[]): Promise<BlockState> {
    let start = records.length - 1;
    while (start >= 0 && records[start]!.transform.kind === 'update') start--;
    let block: Block | undefined;
    if (start >= 0) {
      const transform = records[start]!.transform;
      block = transform.kind === 'insert' ? transform.block : undefined;
    } else {
      if (base === 0)
        throw new EngineError('CORRUPT', `block ${id} has no insert before rev ${base + records.length}`, {
          blockId: id,
        });
      const key = keyOf.snapshot(id, base);
      const text = await this.raw.get(key);
      if (text === undefined) throw new EngineError('CORRUPT', `snapshot ${key} is missing`, { key });
      const snapshot = decodeWholeState(id, key, decode<StateRecord>(key, text));
      if (records.length === 0) return snapshot;
      block = snapshot.block;
    }
    for (let i = start + 1; i < records.length; i++) block = applyTransform(block, records[i]!.transform);
    const last = records[records.length - 1]!;
    return { id, rev: last.rev, lsn: last.lsn, trxId: last.trxId, block };
  }

  /** The outcome of a stale pend, once read (see Reads). */
  private staleOutcome(reads: Reads, id: BlockId, baseRev: number, currentRev: number): PendOutcome {
    const known = reads.stale?.get(id);
    if (known !== undefined) return known;
    throw new NeedsRead(async () => {
      (reads.stale ??= new Map()).set(id, await this.readStaleOutcome(id, baseRev, currentRev));
    });
  }

  private async readStaleOutcome(id: BlockId, baseRev: number, currentRev: number): Promise<PendOutcome> {
    // The list is capped; a client missing more sees currentRev and fetches the rest with history().
    const missing =
      baseRev >= currentRev
        ? []
        : (
            await this.history(id, {
              fromRev: baseRev + 1,
              toRev: currentRev,
              limit: limits.scanPageItemsMax,
            })
          ).map((revision) => ({
            rev: revision.rev,
            trxId: revision.trxId,
          }));
    return { status: 'stale', currentRev, missing };
  }
}

/** Ids become parts of keys, separated by '/'. */
function assertKeyPart(value: string, what: string): void {
  // The message is built only on failure: this runs for every id of every call.
  if (!(typeof value === 'string' && value.length > 0 && !value.includes('/')))
    throw new AssertionFailure(`${what} ${JSON.stringify(value)} cannot be stored`);
}

/** Pends arrive from other peers, so a malformed one is BAD_INPUT, never an assertion. */
function validatePend(item: PendingTransform): void {
  const keyPart = (value: unknown): boolean =>
    typeof value === 'string' && value.length > 0 && !value.includes('/');
  if (!keyPart(item.blockId))
    throw new EngineError('BAD_INPUT', `block id ${JSON.stringify(item.blockId)} is malformed`);
  if (!keyPart(item.trxId))
    throw new EngineError('BAD_INPUT', `transaction id ${JSON.stringify(item.trxId)} is malformed`);
  if (!Number.isSafeInteger(item.baseRev) || item.baseRev < 0)
    throw new EngineError('BAD_INPUT', `baseRev ${item.baseRev} is not a revision`);
  if (!Number.isSafeInteger(item.expiresAt) || item.expiresAt < 0)
    throw new EngineError('BAD_INPUT', `expiresAt ${item.expiresAt} is not a time`);
}

/**
 * A pend whose transform cannot apply to the block it names (an insert of a live block, an update of
 * a missing one, a splice on a non-array) would fail its promote, so it is refused up front. Returns
 * what an update makes of the block.
 */
function checkApplies(item: PendingTransform, latest: BlockState | null): Block | undefined {
  const exists = latest !== null && latest.block !== undefined;
  if (item.transform.kind === 'insert' ? exists : !exists) {
    throw new EngineError(
      'BAD_INPUT',
      `cannot ${item.transform.kind} block ${item.blockId}: it ${exists ? 'exists' : 'does not exist'}`,
      {
        blockId: item.blockId,
      },
    );
  }
  if (item.transform.kind === 'insert' && item.transform.block.header?.id !== item.blockId) {
    throw new EngineError('BAD_INPUT', `inserted block's header id is not ${item.blockId}`, {
      blockId: item.blockId,
    });
  }
  if (item.transform.kind !== 'update') return undefined;
  try {
    return applyTransform(latest?.block, item.transform);
  } catch (error) {
    if (!(error instanceof AssertionFailure)) throw error;
    throw new EngineError(
      'BAD_INPUT',
      `transform of block ${item.blockId} does not apply: ${error.message}`,
      { blockId: item.blockId },
    );
  }
}
