import { assert } from '../base/assert.js';
import type { Clock } from '../base/clock.js';
import { EngineError, isEngineError } from '../base/errors.js';
import { collectionHeaderId, newBlockId, type BlockId, type TrxId } from '../base/ids.js';
import { limits } from '../base/limits.js';
import type { Rng } from '../base/rng.js';
import { canonicalDigest, jsonLengthAtMost } from '../collections/log/actions-digest.js';
import {
  appendEntryOps,
  isCollectionHeader,
  isLogBlock,
  newLogBlock,
  replaceEntryOps,
  type Certificate,
  type CollectionHeader,
  type EntryStatus,
  type LogBlock,
  type LogEntry,
} from '../collections/log/log-block.js';
import type { BlockStore, DirectRevision } from '../storage/block-store.js';
import type { Certifier } from './certifier.js';
import type {
  CommitRequest,
  CreateCollectionRequest,
  DecideRequest,
  PrepareRequest,
  RepoClient,
  TailClient,
  TailOutcome,
  TailView,
} from './protocol.js';
import { validateBackward, type WindowEntry } from './validation.js';

export interface LogTailComponents {
  readonly blocks: BlockStore;
  readonly repo: RepoClient;
  readonly certifier: Certifier;
  readonly clock: Clock;
  readonly rng: Rng;
  /** The tails of other collections, asked about in-doubt transactions (default: this tail). */
  readonly peers?: Pick<TailClient, 'outcomeOf'>;
}

export interface LogTailInit {
  /** Membership recorded in new log blocks (the solo node alone in embedded mode). */
  readonly members: readonly string[];
  /**
   * Membership to record in a successor log block (networked nodes: the block's cluster). Defaults to
   * `members`.
   */
  readonly membersFor?: (blockId: BlockId) => readonly string[];
  /**
   * True when a tail block's recorded group should hand over to a successor now, before it is full
   * (networked nodes: members joined or left the block's cluster).
   */
  readonly shouldSeal?: (tail: LogBlock) => boolean;
  readonly entriesPerBlockMax?: number;
  readonly windowEntriesMax?: number;
  /** Actions larger than this are kept as a digest in the log entry instead of inline. */
  readonly inlineActionsBytesMax?: number;
  /**
   * Solo nodes: any prepared entry found when a tail is loaded belongs to a coordinator that died
   * with the previous process, so it is resolved at once instead of at its expiry.
   */
  readonly resolveInDoubtOnLoad?: boolean;
}

/** A request waiting for the next batch of decisions of its collection. */
interface QueuedDecision {
  readonly request: CommitRequest;
  readonly status: 'committed' | 'prepared';
  readonly participants: readonly string[] | undefined;
  readonly expiresAt: number | undefined;
  readonly resolve: (outcome: TailOutcome) => void;
  readonly reject: (error: unknown) => void;
}

/** Most decisions of one collection taken together (one consensus round, one log write). */
const decisionBatchMax = 64;

interface IndexedEntry extends WindowEntry {
  /** Log block holding the entry. */
  blockId: BlockId;
  certificate: Certificate;
  readonly participants: readonly string[] | undefined;
  readonly expiresAt: number | undefined;
  readonly writeList: readonly BlockId[];
}

interface TailState {
  readonly collection: string;
  header: CollectionHeader;
  headerRev: number;
  tail: LogBlock;
  tailRev: number;
  lastLsn: number;
  /** Recent entries, ascending LSN, at most windowEntriesMax. */
  window: IndexedEntry[];
  byTrx: Map<TrxId, IndexedEntry>;
  /** Every committed entry ≤ checkpoint has reached all its blocks. */
  checkpoint: number;
  /** Committed entries above the checkpoint that have been propagated. */
  propagated: Set<number>;
}

/**
 * The ordering authority of collection logs on this node: decides which transactions get the next
 * LSN (backward validation), records prepared/committed/aborted entries in the log blocks, seals full
 * log blocks, and tracks the checkpoint. Each collection's operations are serialised. In a network
 * the decisions are taken by the tail block's consensus group; here the node decides alone.
 */
export class LogTail implements TailClient {
  private readonly states = new Map<string, Promise<TailState>>();
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly entriesPerBlockMax: number;
  private readonly windowEntriesMax: number;
  private readonly inlineActionsBytesMax: number;

  constructor(
    private readonly components: LogTailComponents,
    private readonly init: LogTailInit,
  ) {
    this.entriesPerBlockMax = init.entriesPerBlockMax ?? limits.logEntriesPerBlockMax;
    this.windowEntriesMax = init.windowEntriesMax ?? limits.validationWindowEntriesMax;
    this.inlineActionsBytesMax = init.inlineActionsBytesMax ?? limits.inlineActionsBytesMax;
  }

  async view(collection: string): Promise<TailView> {
    const state = await this.state(collection);
    // Entries at or below the checkpoint are decided and propagated, so only the few above it matter
    // (the window holds contiguous LSNs, so the checkpoint's position is arithmetic).
    const above = state.window.slice(Math.max(0, state.checkpoint + 1 - (state.window[0]?.lsn ?? 0)));
    let stableLsn = state.lastLsn;
    for (const entry of above) {
      if (entry.status === 'prepared') {
        stableLsn = entry.lsn - 1;
        break;
      }
    }
    const uncheckpointed: TailView['uncheckpointed'][number][] = [];
    for (const entry of above) {
      if (entry.lsn > stableLsn) break;
      if (entry.status === 'committed' && !state.propagated.has(entry.lsn)) {
        uncheckpointed.push({
          lsn: entry.lsn,
          trxId: entry.trxId,
          writes: entry.writeList,
          certificate: entry.certificate,
        });
      }
    }
    return {
      collection,
      header: state.header,
      tailId: state.tail.header.id,
      lastLsn: state.lastLsn,
      stableLsn,
      uncheckpointed,
    };
  }

  create(request: CreateCollectionRequest): Promise<{ lsn: number; certificate: Certificate }> {
    const name = request.header.name;
    return this.serialize(name, async () => {
      const existing = await this.components.blocks.latest(request.header.header.id);
      if (existing?.block !== undefined) throw new EngineError('EXISTS', `collection ${name} already exists`);
      const lsn = 1;
      const certificate = await this.components.certifier.certify(
        {
          collection: name,
          blockId: request.log.header.id,
          lsn,
          trxId: request.trxId,
          decision: 'committed',
        },
        request.log.members,
      );
      const entry: LogEntry = {
        lsn,
        trxId: request.trxId,
        status: 'committed',
        writes: [request.header.header.id, request.root.header.id].sort(),
        actions: { create: { name, kind: request.header.kind } },
        checkpoint: lsn,
        certificate,
      };
      const log: LogBlock = { ...request.log, entries: [entry] };
      // Root and log ids are fresh; only the header id (derived from the name) can have a history.
      const baseRevs = new Map([[request.header.header.id, existing?.rev ?? 0]]);
      await this.components.blocks.apply(
        [request.header, request.root, log].map((block): DirectRevision => ({
          blockId: block.header.id,
          trxId: request.trxId,
          lsn,
          baseRev: baseRevs.get(block.header.id) ?? 0,
          transform: { kind: 'insert', block },
        })),
      );
      this.drop(name);
      return { lsn, certificate };
    });
  }

  commit(request: CommitRequest): Promise<TailOutcome> {
    return this.decideNew(request, 'committed', undefined, undefined);
  }

  prepare(request: PrepareRequest): Promise<TailOutcome> {
    if (this.components.clock.now() > request.expiresAt) {
      return Promise.resolve({
        status: 'conflict',
        winners: [],
        message: 'transaction expired before it prepared',
      });
    }
    return this.decideNew(request, 'prepared', request.participants, request.expiresAt);
  }

  decide(request: DecideRequest): Promise<{ lsn: number; certificate: Certificate }> {
    return this.serialize(request.collection, async () => {
      const state = await this.state(request.collection);
      const entry = state.byTrx.get(request.trxId);
      if (entry === undefined)
        throw new EngineError(
          'NOT_FOUND',
          `no entry for transaction ${request.trxId} in ${request.collection}`,
        );
      if (entry.status === request.outcome) return { lsn: entry.lsn, certificate: entry.certificate };
      if (entry.status !== 'prepared') {
        throw new EngineError(
          'CONFLICT',
          `transaction ${request.trxId} was already ${entry.status} in ${request.collection}`,
        );
      }
      if (request.outcome === 'committed') this.checkCommitProof(entry, request.proof);
      return this.recordDecision(state, entry, request.outcome);
    });
  }

  propagated(collection: string, lsn: number): Promise<void> {
    return this.serialize(collection, async () => {
      const state = await this.state(collection);
      state.propagated.add(lsn);
      this.advanceCheckpoint(state);
    });
  }

  async outcomeOf(collection: string, trxId: TrxId): Promise<EntryStatus | 'unknown'> {
    const state = await this.loadedState(collection);
    return state.byTrx.get(trxId)?.status ?? 'unknown';
  }

  // ---- internals ----

  /**
   * Decides a new entry. Requests for one collection that arrive while a batch is being decided wait
   * and are decided together as the next batch: each validated against the log and the batch members
   * before it, all certified at once (the consensus leader puts them in one round), and all written
   * with one log write. So throughput on one collection is not one decision per round trip.
   */
  private decideNew(
    request: CommitRequest,
    status: 'committed' | 'prepared',
    participants: readonly string[] | undefined,
    expiresAt: number | undefined,
  ): Promise<TailOutcome> {
    return new Promise<TailOutcome>((resolve, reject) => {
      const item: QueuedDecision = { request, status, participants, expiresAt, resolve, reject };
      const collection = request.collection;
      const waiting = this.batches.get(collection);
      if (waiting !== undefined && waiting.length < decisionBatchMax) {
        waiting.push(item);
        return;
      }
      const batch = [item];
      this.batches.set(collection, batch);
      void this.serialize(collection, async () => {
        if (this.batches.get(collection) === batch) this.batches.delete(collection);
        await this.decideBatch(collection, batch);
      });
    });
  }

  private readonly batches = new Map<string, QueuedDecision[]>();

  private async decideBatch(collection: string, batch: readonly QueuedDecision[]): Promise<void> {
    let state: TailState;
    try {
      state = await this.state(collection);
    } catch (error) {
      for (const item of batch) item.reject(error);
      return;
    }
    const oldest = state.window[0]?.lsn ?? state.lastLsn + 1;
    const provisional: WindowEntry[] = [];
    const planned: { item: QueuedDecision; lsn: number }[] = [];
    for (const item of batch) {
      const { request, status } = item;
      const existing = state.byTrx.get(request.trxId);
      if (existing !== undefined) {
        item.resolve(
          existing.status === status
            ? { status, lsn: existing.lsn, certificate: existing.certificate }
            : { status: 'conflict', winners: [], message: `transaction was already ${existing.status}` },
        );
        continue;
      }
      if (planned.some((p) => p.item.request.trxId === request.trxId)) {
        item.resolve({ status: 'conflict', winners: [], message: 'transaction submitted twice at once' });
        continue;
      }
      const verdict = validateBackward(
        provisional.length === 0 ? state.window : [...state.window, ...provisional],
        oldest,
        request,
      );
      if (!verdict.ok) {
        item.resolve({ status: 'conflict', winners: verdict.winners, message: verdict.reason });
        continue;
      }
      const lsn = state.lastLsn + 1 + planned.length;
      planned.push({ item, lsn });
      provisional.push({
        lsn,
        trxId: request.trxId,
        status,
        writes: new Set(request.writes),
        reads: new Set(status === 'prepared' ? request.reads : []),
      });
    }
    if (planned.length === 0) return;
    const certified = await Promise.allSettled(
      planned.map(({ item, lsn }) => this.certify(state, lsn, item.request.trxId, item.status)),
    );
    // Entries are written in LSN order: the first one that failed to be certified ends the batch.
    const failedAt = certified.findIndex((result) => result.status === 'rejected');
    const written = failedAt === -1 ? planned.length : failedAt;
    const entries: LogEntry[] = [];
    for (let i = 0; i < written; i++) {
      const { item, lsn } = planned[i]!;
      const { request, status, participants, expiresAt } = item;
      entries.push({
        lsn,
        trxId: request.trxId,
        status,
        writes: request.writes,
        ...(status === 'prepared' ? { reads: request.reads } : {}),
        ...this.actionsField(request.actions),
        ...(participants !== undefined ? { participants } : {}),
        ...(expiresAt !== undefined ? { expiresAt } : {}),
        checkpoint: state.checkpoint,
        certificate: (certified[i] as PromiseFulfilledResult<Certificate>).value,
      });
    }
    if (entries.length > 0) {
      try {
        const revisions: DirectRevision[] = [];
        for (const entry of entries) this.append(state, entry, revisions);
        await this.components.blocks.apply(revisions);
      } catch (error) {
        // The cached state already counts the entries; the store may not: load it again.
        this.drop(collection);
        for (const { item } of planned) item.reject(error);
        return;
      }
    }
    for (let i = 0; i < planned.length; i++) {
      const { item, lsn } = planned[i]!;
      if (i < written) item.resolve({ status: item.status, lsn, certificate: entries[i]!.certificate });
      else {
        const result = certified[i]!;
        item.reject(
          result.status === 'rejected'
            ? result.reason
            : (certified[failedAt] as PromiseRejectedResult).reason,
        );
      }
    }
  }

  private actionsField(actions: unknown): Pick<LogEntry, 'actions' | 'actionsDigest'> {
    // JSON.stringify is a cheap size check; the canonical encoding is only needed for a digest.
    if (jsonLengthAtMost(actions ?? null, this.inlineActionsBytesMax)) return { actions };
    return { actionsDigest: canonicalDigest(actions ?? null) };
  }

  private certify(state: TailState, lsn: number, trxId: TrxId, decision: EntryStatus): Promise<Certificate> {
    return this.components.certifier.certify(
      { collection: state.collection, blockId: state.tail.header.id, lsn, trxId, decision },
      state.tail.members,
    );
  }

  /**
   * Appends an entry to the tail block, sealing it and starting a successor when it is full. With a
   * `sink`, the revisions are collected there for the caller to write (state is updated at once).
   */
  private append(state: TailState, entry: LogEntry, sink: DirectRevision[]): void;
  private append(state: TailState, entry: LogEntry): Promise<void>;
  private append(state: TailState, entry: LogEntry, sink?: DirectRevision[]): Promise<void> | void {
    const revisions: DirectRevision[] = sink ?? [];
    if (state.tail.entries.length < this.entriesPerBlockMax && this.init.shouldSeal?.(state.tail) !== true) {
      revisions.push({
        blockId: state.tail.header.id,
        trxId: entry.trxId,
        lsn: entry.lsn,
        baseRev: state.tailRev,
        transform: { kind: 'update', ops: appendEntryOps(state.tail, entry) },
      });
      state.tail = { ...state.tail, entries: [...state.tail.entries, entry] };
      state.tailRev += 1;
    } else {
      // Seal: the successor is named in the old tail and in the header, all in one batch.
      const successorId = newBlockId(this.components.rng);
      const successor: LogBlock = {
        ...newLogBlock(
          successorId,
          state.collection,
          state.tail.header.id,
          entry.lsn,
          this.init.membersFor?.(successorId) ?? this.init.members,
        ),
        entries: [entry],
      };
      revisions.push(
        {
          blockId: state.tail.header.id,
          trxId: entry.trxId,
          lsn: entry.lsn,
          baseRev: state.tailRev,
          transform: { kind: 'update', ops: [{ op: 'set', field: 'successor', value: successorId }] },
          // Sealed: it changes again only if one of its entries is decided later, and is read whole
          // when a tail loads its window after a restart.
          whole: true,
        },
        {
          blockId: successorId,
          trxId: entry.trxId,
          lsn: entry.lsn,
          baseRev: 0,
          transform: { kind: 'insert', block: successor },
        },
        {
          blockId: state.header.header.id,
          trxId: entry.trxId,
          lsn: entry.lsn,
          baseRev: state.headerRev,
          transform: { kind: 'update', ops: [{ op: 'set', field: 'logTail', value: successorId }] },
        },
      );
      state.header = { ...state.header, logTail: successorId };
      state.headerRev += 1;
      state.tail = successor;
      state.tailRev = 1;
    }
    state.lastLsn = entry.lsn;
    this.index(state, entry, state.tail.header.id);
    if (sink !== undefined) return;
    return this.components.blocks.apply(revisions).catch((error: unknown) => {
      // The cached state already counts the entry; the store may not: load it again.
      this.drop(state.collection);
      throw error;
    });
  }

  private index(state: TailState, entry: LogEntry, blockId: BlockId): void {
    const indexed: IndexedEntry = {
      lsn: entry.lsn,
      trxId: entry.trxId,
      status: entry.status,
      writes: new Set(entry.writes),
      writeList: entry.writes,
      reads: new Set(entry.reads ?? []),
      blockId,
      certificate: entry.certificate,
      participants: entry.participants,
      expiresAt: entry.expiresAt,
    };
    state.window.push(indexed);
    state.byTrx.set(entry.trxId, indexed);
    while (state.window.length > this.windowEntriesMax) {
      const dropped = state.window[0]!;
      // Never drop an undecided entry: it still holds its read and write sets.
      if (dropped.status === 'prepared') break;
      state.window.shift();
      state.byTrx.delete(dropped.trxId);
    }
  }

  private async recordDecision(
    state: TailState,
    entry: IndexedEntry,
    outcome: 'committed' | 'aborted',
  ): Promise<{ lsn: number; certificate: Certificate }> {
    const blocks = this.components.blocks;
    const holder = await blocks.latest(entry.blockId);
    assert(
      holder !== undefined && isLogBlock(holder.block),
      `log block ${entry.blockId} of entry ${entry.lsn} is missing`,
    );
    const log = holder.block;
    const stored = log.entries[entry.lsn - log.firstLsn];
    assert(
      stored !== undefined && stored.trxId === entry.trxId,
      `log entry ${entry.lsn} is not where the index says`,
    );
    const certificate = await this.components.certifier.certify(
      {
        collection: state.collection,
        blockId: entry.blockId,
        lsn: entry.lsn,
        trxId: entry.trxId,
        decision: outcome,
      },
      log.members,
    );
    const { reads: _reads, ...rest } = stored;
    const decided: LogEntry = { ...rest, status: outcome, certificate };
    await blocks.apply([
      {
        blockId: entry.blockId,
        // The decision is a revision of its own: tagged apart from the prepare that placed the entry.
        trxId: `${entry.trxId}:${outcome}`,
        lsn: state.lastLsn,
        baseRev: holder.rev,
        transform: { kind: 'update', ops: replaceEntryOps(log, decided) },
      },
    ]);
    if (entry.blockId === state.tail.header.id) {
      const entries = state.tail.entries.slice();
      entries[entry.lsn - state.tail.firstLsn] = decided;
      state.tail = { ...state.tail, entries };
      state.tailRev = holder.rev + 1;
    }
    entry.status = outcome;
    entry.certificate = certificate;
    if (outcome === 'aborted') this.advanceCheckpoint(state);
    return { lsn: entry.lsn, certificate };
  }

  private checkCommitProof(entry: IndexedEntry, proof: readonly Certificate[]): void {
    const participants = entry.participants ?? [];
    for (const participant of participants) {
      const cert = proof.find(
        (c) => c.trxId === entry.trxId && c.decision === 'prepared' && c.collection === participant,
      );
      if (cert === undefined) {
        throw new EngineError(
          'BAD_CERTIFICATE',
          `commit proof for ${entry.trxId} lacks a prepared certificate from ${participant}`,
        );
      }
    }
    for (const cert of proof) {
      if (!this.components.certifier.verify(cert, this.init.members)) {
        throw new EngineError('BAD_CERTIFICATE', `a prepared certificate for ${entry.trxId} does not verify`);
      }
    }
  }

  private advanceCheckpoint(state: TailState): void {
    let next = state.checkpoint;
    // The window holds contiguous LSNs, so the entry after the checkpoint is found by arithmetic.
    const start = Math.max(0, next + 1 - (state.window[0]?.lsn ?? next + 1));
    for (let i = start; i < state.window.length; i++) {
      const entry = state.window[i]!;
      if (entry.lsn <= next) continue;
      if (entry.lsn !== next + 1) break;
      if (entry.status === 'aborted' || (entry.status === 'committed' && state.propagated.has(entry.lsn))) {
        next = entry.lsn;
        state.propagated.delete(entry.lsn);
      } else break;
    }
    state.checkpoint = next;
  }

  /**
   * Drops what this tail cached about a collection; the next request reloads it from the store. A
   * networked node calls it when another node may have decided entries of the collection.
   */
  forget(collection: string): Promise<void> {
    return this.serialize(collection, () => {
      this.drop(collection);
      return Promise.resolve();
    });
  }

  /** Forgets the cached state of a collection at once (the caller holds its queue). */
  private drop(collection: string): void {
    this.states.delete(collection);
    this.loaded.delete(collection);
  }

  /** Collections this tail has served since it started (whether or not it holds their state now). */
  collections(): string[] {
    return [...this.served];
  }

  private readonly served = new Set<string>();

  /**
   * Hands a collection's log to a successor block and group now if `shouldSeal` says its recorded
   * group is out of date: records an entry that changes nothing, which seals the tail. True when it did.
   */
  reconfigure(collection: string): Promise<boolean> {
    return this.serialize(collection, async () => {
      const state = await this.state(collection);
      if (this.init.shouldSeal?.(state.tail) !== true) return false;
      const trxId = `reconfigure-${newBlockId(this.components.rng).slice(0, 22)}`;
      const lsn = state.lastLsn + 1;
      const certificate = await this.certify(state, lsn, trxId, 'committed');
      const entry: LogEntry = {
        lsn,
        trxId,
        status: 'committed',
        writes: [],
        actions: { reconfigure: true },
        checkpoint: state.checkpoint,
        certificate,
      };
      await this.append(state, entry);
      state.propagated.add(lsn);
      this.advanceCheckpoint(state);
      return true;
    });
  }

  /**
   * Finishes prepared entries whose transactions expired before `now` (their coordinator is gone):
   * each commits iff every participant prepared it. Returns how many were decided. A networked node
   * calls it periodically; only the tail group's leader can record the decisions.
   */
  async resolveExpired(now: number): Promise<number> {
    let decided = 0;
    for (const collection of this.collections()) {
      await this.serialize(collection, async () => {
        const state = await this.state(collection);
        for (const entry of state.window) {
          if (entry.status !== 'prepared' || entry.expiresAt === undefined || entry.expiresAt >= now)
            continue;
          await this.resolveInDoubt(state, entry);
          if (entry.status !== 'prepared') decided++;
        }
      }).catch(() => undefined);
    }
    return decided;
  }

  /** Drops what this tail cached about every collection (see `forget`). */
  forgetAll(): void {
    for (const collection of new Set([...this.states.keys(), ...this.loaded.keys()]))
      void this.forget(collection);
  }

  private serialize<T>(collection: string, work: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(collection) ?? Promise.resolve();
    const run = previous.then(work, work);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(collection, settled);
    void settled.then(() => {
      if (this.queues.get(collection) === settled) this.queues.delete(collection);
    });
    return run;
  }

  /** Loaded and recovered state: what every decision works on. */
  private state(collection: string): Promise<TailState> {
    this.served.add(collection);
    let promise = this.states.get(collection);
    if (promise === undefined) {
      promise = this.loadedState(collection).then(async (state) => {
        await this.recover(state);
        return state;
      });
      this.states.set(collection, promise);
      promise.catch((error: unknown) => {
        this.states.delete(collection);
        if (isEngineError(error, 'NOT_FOUND')) this.served.delete(collection);
      });
    }
    return promise;
  }

  /** Loaded state without recovery: used to answer other tails, so two recoveries never wait on each other. */
  private loadedState(collection: string): Promise<TailState> {
    let promise = this.loaded.get(collection);
    if (promise === undefined) {
      promise = this.load(collection);
      this.loaded.set(collection, promise);
      promise.catch(() => this.loaded.delete(collection));
    }
    return promise;
  }

  private readonly loaded = new Map<string, Promise<TailState>>();

  private async load(collection: string): Promise<TailState> {
    const blocks = this.components.blocks;
    const headerState = await blocks.latest(collectionHeaderId(collection));
    if (headerState === undefined || !isCollectionHeader(headerState.block)) {
      throw new EngineError(
        'NOT_FOUND',
        `collection ${collection} does not exist; create it with: optimystic collection create ${collection} --type tree`,
      );
    }
    const header = headerState.block;
    // Follow successor links from the header's tail pointer (the header may lag a seal).
    let tailState = await blocks.latest(header.logTail);
    for (;;) {
      assert(tailState !== undefined && isLogBlock(tailState.block), `log block of ${collection} is missing`);
      const successor = tailState.block.successor;
      if (successor === null) break;
      tailState = await blocks.latest(successor);
    }
    const tail = tailState.block;
    // Load the window: entries from the tail backwards until the window is full or the log begins.
    const segments: { id: BlockId; entries: readonly LogEntry[] }[] = [];
    let count = 0;
    let cursor: LogBlock | undefined = tail;
    while (cursor !== undefined && count < this.windowEntriesMax) {
      segments.unshift({ id: cursor.header.id, entries: cursor.entries });
      count += cursor.entries.length;
      if (cursor.prior === null) break;
      const prior = await blocks.latest(cursor.prior);
      cursor = prior !== undefined && isLogBlock(prior.block) ? prior.block : undefined;
    }
    const state: TailState = {
      collection,
      header,
      headerRev: headerState.rev,
      tail,
      tailRev: tailState.rev,
      lastLsn: tail.entries.at(-1)?.lsn ?? tail.firstLsn - 1,
      window: [],
      byTrx: new Map(),
      checkpoint: 0,
      propagated: new Set(),
    };
    for (const segment of segments) {
      for (const entry of segment.entries) {
        this.index(state, entry, segment.id);
        if (entry.checkpoint !== undefined && entry.checkpoint > state.checkpoint)
          state.checkpoint = entry.checkpoint;
      }
    }
    const first = state.window[0];
    if (first !== undefined && state.checkpoint < first.lsn - 1) state.checkpoint = first.lsn - 1;
    return state;
  }

  /** Finishes what a dead coordinator left: propagates committed entries, resolves in-doubt ones. */
  private async recover(state: TailState): Promise<void> {
    if (this.init.resolveInDoubtOnLoad === true) {
      for (const entry of state.window) {
        if (entry.status === 'prepared') await this.resolveInDoubt(state, entry);
      }
    }
    for (const entry of state.window) {
      if (entry.lsn <= state.checkpoint || entry.status !== 'committed') continue;
      const pending = await Promise.all(
        entry.writeList.map(async (id) =>
          (await this.components.blocks.pendingOf(id)).some((p) => p.trxId === entry.trxId),
        ),
      );
      const ids = entry.writeList.filter((_, i) => pending[i] === true);
      if (ids.length > 0) {
        await this.components.repo.promote({
          trxId: entry.trxId,
          lsn: entry.lsn,
          blockIds: ids,
          proof: [entry.certificate],
        });
      }
      state.propagated.add(entry.lsn);
    }
    this.advanceCheckpoint(state);
  }

  /**
   * An undecided prepared entry: the transaction commits iff every participant prepared it. Asks
   * the other participants' tails; one that never prepared it records an abort (so it never will).
   */
  private async resolveInDoubt(state: TailState, entry: IndexedEntry): Promise<void> {
    const participants = entry.participants ?? [state.collection];
    const tails = this.components.peers ?? this;
    let commit = true;
    for (const participant of participants) {
      if (participant === state.collection) continue;
      // A tail that cannot be asked now may hold a commit: decide later rather than guess an abort.
      const outcome = await tails
        .outcomeOf(participant, entry.trxId)
        .catch((error: unknown) => (isEngineError(error, 'NOT_FOUND') ? ('unknown' as const) : undefined));
      if (outcome === undefined) return;
      if (outcome === 'aborted' || outcome === 'unknown') commit = false;
    }
    await this.recordDecision(state, entry, commit ? 'committed' : 'aborted');
    if (!commit) await this.components.repo.cancel(entry.trxId, entry.writeList);
  }
}
