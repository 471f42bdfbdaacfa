import { assert } from '../base/assert.js';
import type { Clock } from '../base/clock.js';
import { EngineError, isEngineError, noSuchCollection } from '../base/errors.js';
import { collectionHeaderId, newBlockId, type BlockId, type TrxId } from '../base/ids.js';
import type { Json } from '../base/codec.js';
import { limits } from '../base/limits.js';
import type { Rng } from '../base/rng.js';
import { actionsRecord, isActionsDigest } from '../collections/log/actions-digest.js';
import {
  appendEntryOps,
  isCollectionHeader,
  isLogBlock,
  confirmedPreparedBody,
  newLogBlock,
  refusalActions,
  resolvedAbortBody,
  replaceEntryOps,
  type Certificate,
  type CollectionHeader,
  type EntryStatus,
  type LogBlock,
  type LogEntry,
} from '../collections/log/log-block.js';
import type { BlockStore, DirectRevision } from '../storage/block-store.js';
import type { Certifier, EntryContext, RecoveredDecision } from './certifier.js';
import type {
  CommitRequest,
  CreateCollectionRequest,
  DecideRequest,
  PrepareRequest,
  ReadCheck,
  ReadCheckRequest,
  RepoClient,
  TailClient,
  TailOutcome,
  TailView,
  TurnClaim,
} from './protocol.js';
import { Turns } from './turns.js';
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
  /**
   * Networked nodes: whether this node would lead the group of a log block by this id (it is the
   * member nearest the block). A seal draws the successor's id at random until it finds one this node
   * leads, up to successorDrawsMax draws, so that the collection's tail stays where its state is.
   */
  readonly leads?: (blockId: BlockId) => boolean;
  readonly entriesPerBlockMax?: number;
  readonly windowEntriesMax?: number;
  /** Actions larger than this are kept as a digest in the log entry instead of inline. */
  readonly inlineActionsBytesMax?: number;
  /**
   * Solo nodes: any prepared entry found when a tail is loaded belongs to a coordinator that died
   * with the previous process, so it is resolved at once instead of at its expiry.
   */
  readonly resolveInDoubtOnLoad?: boolean;
  /**
   * Networked nodes: a view is answered from cached state only if this tail loaded it or decided
   * something within this long; otherwise the log is read again first (another member may have
   * taken over the collection's tail). Unset: cached state is always current (a solo node).
   */
  readonly viewFreshMs?: number;
  /** Called before such a reload: the composition root makes the next reads ask the cluster again. */
  readonly refresh?: (collection: string) => void;
  /**
   * Makes the next read of one block ask the cluster again. Given, a networked tail confirms a
   * cached state by reading again only the log blocks that can have changed since (`confirmed`)
   * instead of reading the whole window again.
   */
  readonly refreshBlock?: (blockId: BlockId) => void;
  /**
   * An expired prepared entry this tail could not decide because another node leads (or only other
   * nodes are members of) the group that decides it: `nodes` are where to ask for it to be resolved.
   */
  readonly resolveElsewhere?: (collection: string, nodes: readonly string[]) => void;
  /**
   * Networked nodes: the id this node's coordinator names itself by (`<node>:<incarnation>`). What
   * an earlier incarnation of it left prepared is resolved before the tail answers a view or decides
   * (its coordinator died with that process), so the node's reads after a restart see those
   * transactions' outcome, as an embedded node's do (resolveInDoubtOnLoad).
   */
  readonly coordinatorId?: string;
}

/** A transaction a batch accepted: its turn ends when its entry is written, or decided if prepared. */
interface AcceptedTurn {
  readonly trxId: TrxId;
  readonly lineage: string;
  readonly prepared: boolean;
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

/**
 * Tries (and the pause between them) a view makes to decide what this node's previous incarnation
 * left prepared before it answers.
 */
const abandonedResolveAttemptsMax = 20;
const abandonedResolvePauseMs = 100;
/** After views gave up on them, how long views answer at once before they try again. */
const abandonedQuietMs = 10_000;

/** Most decisions of one collection taken together (one consensus round, one log write). */
const decisionBatchMax = 64;

/** Times one batch writes decisions its group took elsewhere and is decided again, before giving up. */
const adoptionsMax = 4;

/**
 * Ids a seal draws for its successor looking for one this node leads (LogTail.successorId): on 3
 * nodes all but 1 seal in 650 find one, on 5 all but 1 in 35, on 10 four in five. Each draw costs the
 * group's leadership order (a hash per member).
 */
const successorDrawsMax = 16;

/**
 * Tails resolve an expired prepared entry this long after its expiry: coordinators' aborts are
 * refused from the expiry on (see `decide`), and a coordinator still finishing gets to. Nothing safe
 * rests on it: what another tail answers about the entry's transaction binds that tail's group
 * (outcomeOf), and a deadline another node sent is moved into this node's clock (cluster PeerClocks).
 */
const resolveMarginMs = 5_000;

/** A fence decided this recently also settles other expired transactions (see `outcomeOf`). */
const fenceReuseMs = 1_000;

/** A log entry without lsn, trxId, status and certificate: what its consensus value carries. */
type EntryBody = Readonly<Record<string, unknown>>;

/** The nodes a consensus refusal sends a proposer to: the leader, or the group's members. */
function nodesNamed(error: unknown): string[] {
  if (!isEngineError(error)) return [];
  const leader = error.details?.['leader'];
  if (typeof leader === 'string') return [leader];
  const members = error.details?.['members'];
  return Array.isArray(members) ? members.filter((m): m is string => typeof m === 'string') : [];
}

/** A decision was taken but its log write failed: the outcome is in doubt until the tail writes it. */
function inDoubtError(cause: unknown): EngineError {
  const code =
    isEngineError(cause, 'TIMEOUT') || isEngineError(cause, 'NO_QUORUM') ? cause.code : 'UNAVAILABLE';
  return new EngineError(
    code,
    `the transaction was decided but its log write failed (${cause instanceof Error ? cause.message : String(cause)}); its outcome is settled by the tail group`,
    { inDoubt: true },
    { cause },
  );
}

/** True when a decided entry's body has the shape of a log entry's content. */
function usableBody(body: EntryBody | undefined): body is EntryBody {
  if (body === undefined) return false;
  const ids = (value: unknown): boolean =>
    Array.isArray(value) && value.every((id) => typeof id === 'string');
  return (
    ids(body.writes) &&
    (body.reads === undefined || ids(body.reads)) &&
    (body.participants === undefined || ids(body.participants)) &&
    (body.expiresAt === undefined || typeof body.expiresAt === 'number') &&
    (body.checkpoint === undefined || typeof body.checkpoint === 'number') &&
    (body.actionsDigest === undefined || typeof body.actionsDigest === 'string') &&
    !('certificate' in body) &&
    !('lsn' in body) &&
    !('trxId' in body) &&
    !('status' in body)
  );
}

/** The read set of an entry that keeps none (a committed or aborted one): shared, never changed. */
const noReads: ReadonlySet<BlockId> = new Set();

/** A log entry as its block holds it now. */
interface StoredEntry {
  readonly rev: number;
  readonly log: LogBlock;
  readonly entry: LogEntry;
}

interface IndexedEntry extends WindowEntry {
  /** Log block holding the entry. */
  blockId: BlockId;
  certificate: Certificate;
  readonly participants: readonly string[] | undefined;
  readonly expiresAt: number | undefined;
  readonly coordinator: string | undefined;
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
  /** For each block the window's entries write: those entries, ascending LSN (validation's readAt). */
  writers: Map<BlockId, IndexedEntry[]>;
  /** Every committed entry ≤ checkpoint has reached all its blocks. */
  checkpoint: number;
  /** Committed entries above the checkpoint that have been propagated. */
  propagated: Set<number>;
  /** When this tail last loaded the state or decided an entry in it (clock ms). */
  refreshedAt: number;
  /**
   * When the log blocks before the tail block were last read from the cluster (clock ms). This
   * tail's own appends and decisions keep `refreshedAt` young, but an entry still prepared in an
   * older block is decided by that block's group, which writes there alone (see `stale`).
   */
  priorReadAt: number;
}

/**
 * The ordering authority of collection logs on this node: decides which transactions get the next
 * LSN (backward validation), records prepared/committed/aborted entries in the log blocks, seals full
 * log blocks, and tracks the checkpoint. Each collection's operations are serialised. In a network
 * the decisions are taken by the tail block's consensus group; here the node decides alone.
 */
export class LogTail implements TailClient {
  private readonly states = new Map<string, Promise<TailState>>();
  /** The states of `states` that have loaded (what a request can look at without waiting). */
  private readonly ready = new Map<string, TailState>();
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

  async view(collection: string, claim?: TurnClaim): Promise<TailView> {
    const parsed = claim === undefined ? undefined : parseClaim(claim);
    if (!this.unloggedChecked.has(collection)) await this.adoptUnlogged(collection);
    let state = await this.state(collection);
    // What this node's previous incarnation left prepared is decided before its first view (the
    // other participants' tails may take a moment to answer after a restart), so that reads after a
    // restart see those transactions' outcome. Past the last try, the view is answered anyway, from
    // below them: a snapshot that does not include them yet; views then do not wait again for a
    // while (a participant that stays unreachable must not cost every view two seconds).
    const failedAt = this.abandonedFailedAt.get(collection);
    const now = this.components.clock.now();
    if (failedAt === undefined || now - failedAt > abandonedQuietMs) {
      if (await this.settleAbandoned(collection, [this.init.coordinatorId]))
        this.abandonedFailedAt.delete(collection);
      else this.abandonedFailedAt.set(collection, this.components.clock.now());
      state = await this.state(collection);
    }
    if (this.stale(state)) state = await this.serialize(collection, () => this.freshState(collection));
    // Entries at or below the checkpoint are decided and propagated, so only the few above it matter.
    const above = state.window.slice(firstAboveCheckpoint(state));
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
    if (parsed?.done === true) this.turns.get(collection)?.withdrawn(parsed.lineage);
    if (parsed?.paused === true) this.turns.get(collection)?.paused(parsed.lineage);
    const heldMs =
      parsed === undefined || parsed.done === true || parsed.paused === true
        ? 0
        : this.turnsOf(collection).claim(
            parsed.lineage,
            parsed.reads,
            parsed.writes,
            parsed.losses,
            parsed.tookMs,
          );
    const holds = this.turns.get(collection)?.heldNow(parsed?.lineage, viewHoldsMax);
    return {
      collection,
      header: state.header,
      tailId: state.tail.header.id,
      lastLsn: state.lastLsn,
      stableLsn,
      uncheckpointed,
      ...(heldMs > 0 ? { heldMs } : {}),
      ...(holds !== undefined && holds.length > 0 ? { holds } : {}),
    };
  }

  private turnsOf(collection: string): Turns {
    let turns = this.turns.get(collection);
    if (turns === undefined) {
      turns = new Turns(this.components.clock);
      this.turns.set(collection, turns);
    }
    return turns;
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
      let state = await this.state(request.collection);
      let entry = state.byTrx.get(request.trxId);
      if (entry === undefined) {
        // Never "unknown" from a cache: another member may have written the entry since this tail
        // loaded the log (its coordinator prepared it there). Read the log again first.
        state = await this.reload(request.collection);
        entry = state.byTrx.get(request.trxId);
      }
      if (entry === undefined)
        throw new EngineError(
          'NOT_FOUND',
          `no entry for transaction ${request.trxId} in ${request.collection}`,
        );
      if (entry.status === request.outcome) return { lsn: entry.lsn, certificate: entry.certificate };
      // Once a prepared entry expired, its tails may be deciding it (commit iff every participant
      // prepared, resolveExpired): an abort from the coordinator could then contradict a commit
      // another tail already took. Its pends are left to the tails (UNAVAILABLE: in doubt).
      const expired = entry.expiresAt !== undefined && this.components.clock.now() > entry.expiresAt;
      if (request.outcome === 'aborted' && (entry.status === 'committed' || expired)) {
        throw new EngineError(
          'UNAVAILABLE',
          `transaction ${request.trxId} expired in ${request.collection}; its tails decide it (it commits if every participant prepared it)`,
          { inDoubt: true },
        );
      }
      if (entry.status !== 'prepared') {
        throw new EngineError(
          'CONFLICT',
          `transaction ${request.trxId} was already ${entry.status} in ${request.collection}`,
        );
      }
      if (request.outcome === 'committed') this.checkCommitProof(entry, request.proof);
      try {
        return await this.recordDecision(state, entry, request.outcome);
      } finally {
        this.turns.get(request.collection)?.decided(request.trxId);
      }
    });
  }

  propagated(collection: string, lsn: number): Promise<void> {
    // Only into a state this tail holds (or is loading). A follower's is forgotten at every decision
    // its leader takes, and loading it again pulls the log from the cluster (the window's blocks,
    // each checked against a majority): a network of three did that once per commit on each
    // follower, for a mark its next load makes anyway (recover promotes what is above the checkpoint).
    if (!this.states.has(collection)) return Promise.resolve();
    return this.serialize(collection, async () => {
      const state = await this.state(collection);
      state.propagated.add(lsn);
      this.advanceCheckpoint(state);
    });
  }

  /** TailClient.check: the reads of a read-only transaction validated against the log, nothing written. */
  check(request: ReadCheckRequest): Promise<ReadCheck> {
    const { collection } = request;
    // In the decision queue (every decision queued before it has landed), on the log as a majority
    // holds it now. A networked tail reads it again: its cache may be fresh and still behind, when
    // it was deposed and has not heard of its successor yet. What the check is for, a commit seen
    // in another collection of the transaction, was prepared here first, and its prepared entry
    // stored by a majority of this group before that commit was decided: the read finds it.
    return this.serialize(collection, async () => {
      const state =
        this.init.viewFreshMs !== undefined ? await this.confirmed(collection) : await this.state(collection);
      const oldest = state.window[0]?.lsn ?? state.lastLsn + 1;
      const verdict = validateBackward(state.window, oldest, { ...request, writes: [] }, [], (id) =>
        state.writers.get(id),
      );
      if (verdict.ok) return { ok: true };
      return {
        ok: false,
        winners: verdict.winners,
        message: verdict.reason,
        ...(verdict.stale !== undefined ? { stale: verdict.stale } : {}),
      };
    });
  }

  /**
   * The decision this tail's log holds about a transaction. Asked when a pend or prepared entry
   * expired, so the answer must be final: with a tail group (a certifier that reports decisions taken
   * elsewhere), an unknown transaction is settled first — an entry that changes nothing is decided
   * at the next LSN, which either writes decisions the log lacked (a leader that stopped before its
   * log write) or makes sure none is pending below it (one such fence serves the questions of
   * `fenceReuseMs`), and then the transaction is refused for good (`recordRefusal`): 'aborted'.
   * Without a group (a node alone, nothing else decides) the log is the whole truth: 'unknown'.
   */
  async outcomeOf(collection: string, trxId: TrxId): Promise<EntryStatus | 'unknown'> {
    // Loaded and recovered in the background too, so that entries this node's previous process
    // left prepared here get decided (see state).
    void this.state(collection).catch(() => undefined);
    const state = await this.loadedState(collection);
    const known = state.byTrx.get(trxId)?.status;
    if (final(known) || this.components.certifier.decidedElsewhere === undefined) return known ?? 'unknown';
    return this.serialize(collection, () => this.settle(collection, trxId));
  }

  private readonly fences = new Map<string, number>();

  /**
   * The outcome of a transaction this log shows undecided (prepared) or not at all, once the group's
   * decisions about it are all in the log.
   *
   * Not in the log: a fence is decided at the next LSN, which writes what the group decided there (a
   * leader that stopped before its log write); a fence another question took lately answers too.
   * Then a refusal of the transaction, which nothing of it decided later can contradict.
   *
   * Prepared: the entry's final decision may have been taken by a leader that stopped before its log
   * write (its coordinator aborted it in time). A fence at the end of the log does not meet that
   * decision, so the prepared decision itself is certified again: the group refuses it if it
   * decided the entry either way, with that decision, which is written here first. Sim seed 788
   * (with the tails' recent views) answered "prepared" from the log instead, and the other
   * participant's tail then committed what this group had aborted.
   */
  private async settle(collection: string, trxId: TrxId): Promise<EntryStatus | 'unknown'> {
    for (let round = 0; round <= adoptionsMax; round++) {
      const state = await this.state(collection);
      const entry = state.byTrx.get(trxId);
      if (final(entry?.status)) return entry.status;
      if (entry !== undefined) {
        if (await this.stillPrepared(state, entry)) return 'prepared';
        continue;
      }
      const now = this.components.clock.now();
      const fencedAt = this.fences.get(collection);
      if (fencedAt === undefined || now - fencedAt >= fenceReuseMs) {
        const fence = `fence-${newBlockId(this.components.rng).slice(0, 22)}`;
        if (!(await this.recordNoOp(state, fence, { fence: true }))) continue;
        if (this.fences.size >= 4096) this.fences.clear();
        this.fences.set(collection, now);
      }
      // Nothing about it below the fence: the group now refuses it for good, so the answer stays
      // true whatever arrives later (a prepare or commit that was slow on its way, or sent by a
      // coordinator whose clock runs behind). Without this, only the transaction's expiry kept a
      // late prepare out — a tail whose clock ran behind the asking tail's by more than
      // resolveMarginMs could prepare (and then commit) what the asker had just aborted.
      if (!(await this.recordRefusal(state, trxId))) continue;
      return 'aborted';
    }
    throw new EngineError('UNAVAILABLE', `could not settle the outcome of ${trxId} in ${collection}; retry`);
  }

  /**
   * Whether the group decided nothing final about a prepared entry: its prepared decision is
   * certified again (the same fields, without the content), which the group refuses with the final
   * decision if it holds one; that decision is then written to the log (false: look again).
   */
  private async stillPrepared(state: TailState, entry: IndexedEntry): Promise<boolean> {
    const stored = await this.storedEntry(entry);
    try {
      // Confirmed: the asker may commit on it, so from now on only the tails' resolution aborts it.
      await this.certifyDecision(state, entry, stored, 'prepared', confirmedPreparedBody);
      return true;
    } catch (error) {
      await this.adoptRefused(state, error, stored.log.members);
      return false;
    }
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
    resolvedAbandoned = false,
  ): Promise<TailOutcome> {
    const abandoned = resolvedAbandoned
      ? []
      : this.abandonedBy(request.collection, [request.coordinator, this.init.coordinatorId]);
    if (abandoned.length > 0) {
      // Resolved first, once: the request is then validated without them (or, where that failed,
      // against them, as before).
      return this.resolveAbandoned(request.collection, abandoned).then(() =>
        this.decideNew(request, status, participants, expiresAt, true),
      );
    }
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
  /** Per collection: the transactions it keeps refusing and the blocks held for their next attempt. */
  private readonly turns = new Map<string, Turns>();
  /** When a view last gave up deciding its node's abandoned entries, per collection. */
  private readonly abandonedFailedAt = new Map<string, number>();

  /**
   * Prepared entries of a collection whose coordinator is one of `coordinators`' nodes (the
   * requester's, this node's) in an earlier incarnation: that process died with them undecided, so
   * they are in doubt now, not at their expiry (until then they refuse every transaction that
   * touches what they hold — a node killed and restarted saw its next transactions give up with
   * CONFLICT for half a minute). Only entries above the checkpoint can be undecided; only the cached
   * state is looked at (the first request after a load may conflict with them once). Solo tails
   * resolve them on load.
   */
  private abandonedBy(
    collection: string,
    coordinators: readonly unknown[],
    state: TailState | undefined = this.ready.get(collection),
  ): IndexedEntry[] {
    if (this.init.resolveInDoubtOnLoad === true) return [];
    const current = new Map<string, string>();
    for (const id of coordinators) if (typeof id === 'string' && id !== '') current.set(nodeOf(id), id);
    if (current.size === 0) return [];
    if (state === undefined) return [];
    const found: IndexedEntry[] = [];
    for (let i = state.window.length - 1; i >= 0; i--) {
      const entry = state.window[i]!;
      if (entry.lsn <= state.checkpoint) break;
      if (entry.status !== 'prepared' || entry.coordinator === undefined) continue;
      const now = current.get(nodeOf(entry.coordinator));
      if (now !== undefined && now !== entry.coordinator) found.push(entry);
    }
    return found;
  }

  /** Collections whose unlogged votes this process has looked for (adoptUnlogged). */
  private readonly unloggedChecked = new Set<string>();

  /**
   * Once per collection in this process, before its first view: entries this node voted for past the
   * end of its log are written first. Its previous process stopped between a decision's votes and its
   * log write; the group's next decision would adopt them, so a view answered before that came from
   * below a transaction the group had already prepared (or committed), which was then resolved and
   * committed after the view: a node alone, killed and restarted, read its counter without the
   * transaction in doubt and its writer applied that transfer a second time (the lone-node crash
   * test, about 1 run in 8). A fence the group refuses with those decisions makes the tail adopt
   * them (the abandoned ones are then decided as any other). Best effort: where this node does not
   * lead the group, or the group does not answer, the next decision adopts them.
   */
  private async adoptUnlogged(collection: string): Promise<void> {
    const certifier = this.components.certifier;
    try {
      if (certifier.votedBeyond === undefined) return;
      for (let round = 0; round <= adoptionsMax; round++) {
        const state = await this.state(collection);
        if (!(await certifier.votedBeyond(state.tail.header.id, state.tail.members, state.lastLsn))) return;
        const fence = `fence-${newBlockId(this.components.rng).slice(0, 22)}`;
        const written = await this.serialize(collection, async () => {
          const current = await this.state(collection);
          // Another request wrote meanwhile (it adopted them, or will have to): look again.
          if (current.lastLsn !== state.lastLsn) return false;
          return this.recordNoOp(current, fence, { fence: true });
        });
        if (written) return;
      }
    } catch {
      // Left to the group's next decision (see above).
    } finally {
      // Names of collections that do not exist count too: bounded (forgetting costs one more look).
      if (this.unloggedChecked.size >= 4096) this.unloggedChecked.clear();
      this.unloggedChecked.add(collection);
    }
  }

  /**
   * A node greeted this one as `coordinator` (`<peer id>:<incarnation>`, its hello after it started):
   * what its earlier incarnations left prepared in the collections this tail serves is in doubt
   * (abandonedBy) and decided now. Without it, such an entry held its blocks until it expired (30 s)
   * unless the restarted node itself sent this tail a transaction of the same collection: the fault
   * test's bank, whose clients had moved to other nodes, stood still for 20–50 s after a kill.
   */
  async resolveRestarted(coordinator: string): Promise<void> {
    // Every collection this tail serves, loaded again where its state was dropped meanwhile (a
    // request that failed while that node went down makes the next one reload).
    await Promise.all(
      this.collections().map((collection) =>
        this.settleAbandoned(collection, [coordinator]).catch(() => undefined),
      ),
    );
  }

  /**
   * resolveAbandoned for what `coordinators`' earlier incarnations left prepared in a collection,
   * tried again for a while: right after a restart the participants' tails, or the group's
   * consensus, may take a moment to answer. True when none is left; what is still undecided after
   * the last try waits for expiry. Each try looks at the collection's current state, loaded again
   * where a resolution under way elsewhere dropped the cached one to read the log again (a view
   * that looked at the dropped one found nothing and answered from below the entries being decided).
   */
  private async settleAbandoned(collection: string, coordinators: readonly unknown[]): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      const abandoned = this.abandonedBy(collection, coordinators, await this.state(collection));
      if (abandoned.length === 0) return true;
      if (attempt > abandonedResolveAttemptsMax) return false;
      if (attempt > 1) await new Promise((resolve) => setTimeout(resolve, abandonedResolvePauseMs).unref());
      await this.resolveAbandoned(collection, abandoned).catch(() => undefined);
    }
  }

  /**
   * Decides in-doubt entries whose coordinator is gone: each commits iff every participant prepared
   * it (the rule of resolveExpiredOf, whose pattern this follows: the participants are asked outside
   * the collection's queue). Failures are left to the next request or to expiry.
   */
  private async resolveAbandoned(collection: string, entries: readonly IndexedEntry[]): Promise<void> {
    for (const entry of entries) {
      const commit = await this.allPrepared(collection, entry).catch(() => undefined);
      if (commit === undefined) continue;
      // On the log read again: right after a restart the cached state is the most likely to be stale
      // (another member may have sealed the log meanwhile; deciding on the old tail would seal it
      // again, to another successor — commit simulation seed 1531).
      await this.decideIfStillPrepared(collection, entry.trxId, commit, 'reload').catch(() => undefined);
    }
  }

  /**
   * Records `commit` for an entry in the collection's queue, unless it was decided meanwhile; true
   * when it did. The participants are asked before, outside the queue: their tails may be asking
   * this one about a transaction of theirs at the same time. `reload`: read the log first.
   */
  private decideIfStillPrepared(
    collection: string,
    trxId: TrxId,
    commit: boolean,
    state: 'cached' | 'reload',
  ): Promise<boolean> {
    return this.serialize(collection, async () => {
      const current = state === 'reload' ? await this.reload(collection) : await this.state(collection);
      const still = current.byTrx.get(trxId);
      if (still === undefined || still.status !== 'prepared') return false;
      await this.decideInDoubt(current, still, commit);
      return true;
    });
  }

  /**
   * Decides a batch. The turns of the transactions it accepts end once their entries are written
   * (committed) or decided (prepared, in `decide`): a transaction let go earlier would read below
   * them and lose to them.
   */
  private async decideBatch(
    collection: string,
    batch: readonly QueuedDecision[],
    adoptions = 0,
  ): Promise<void> {
    const accepted: AcceptedTurn[] = [];
    try {
      await this.decideBatchOnce(collection, batch, adoptions, accepted);
    } finally {
      const turns = this.turns.get(collection);
      for (const { trxId, lineage, prepared } of accepted)
        turns?.accepted(lineage, prepared ? trxId : undefined);
    }
  }

  private async decideBatchOnce(
    collection: string,
    batch: readonly QueuedDecision[],
    adoptions: number,
    accepted: AcceptedTurn[],
  ): Promise<void> {
    let state: TailState;
    try {
      // Decide on a log this tail has lately loaded or written, never on what it cached long ago:
      // another member may have moved the collection's log on since (see viewFreshMs).
      state = await this.freshState(collection);
    } catch (error) {
      for (const item of batch) item.reject(error);
      return;
    }
    const oldest = state.window[0]?.lsn ?? state.lastLsn + 1;
    const turns = this.turns.get(collection);
    const provisional: WindowEntry[] = [];
    const planned: { item: QueuedDecision; lsn: number }[] = [];
    for (let index = 0; index < batch.length; index++) {
      const item = batch[index]!;
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
      const twin = planned.find((p) => p.item.request.trxId === request.trxId);
      if (twin !== undefined) {
        // The same request twice (a retry that overtook its original, a duplicated message): it gets
        // the original's answer. Answering it `conflict` would make its coordinator replay a
        // transaction that may still commit, and apply it twice.
        const original = twin.item;
        twin.item = {
          ...original,
          resolve: (outcome) => {
            original.resolve(outcome);
            item.resolve(
              item.status === original.status || outcome.status === 'conflict'
                ? outcome
                : { status: 'conflict', winners: [], message: 'transaction submitted twice at once' },
            );
          },
          reject: (error) => {
            original.reject(error);
            item.reject(error);
          },
        };
        continue;
      }
      const lineage = lineageOf(request);
      const givesWay = turns?.heldFor(lineage, request.writes);
      if (givesWay !== undefined) {
        item.resolve({
          status: 'conflict',
          winners: [],
          message: `gave way to a transaction refused ${givesWay.count} times on the same blocks`,
          busyMs: givesWay.forMs,
        });
        continue;
      }
      // The batch's planned entries continue the window (not copied onto it: it holds up to
      // windowEntriesMax entries).
      const verdict = validateBackward(state.window, oldest, request, provisional, (id) =>
        state.writers.get(id),
      );
      if (!verdict.ok) {
        item.resolve({
          status: 'conflict',
          winners: verdict.winners,
          message: verdict.reason,
          ...(verdict.stale !== undefined ? { stale: verdict.stale } : {}),
        });
        continue;
      }
      accepted.push({ trxId: request.trxId, lineage, prepared: status === 'prepared' });
      const lsn = state.lastLsn + 1 + planned.length;
      planned.push({ item, lsn });
      // Only the requests after it in the batch are validated against it.
      if (index === batch.length - 1) continue;
      provisional.push({
        lsn,
        trxId: request.trxId,
        status,
        writes: new Set(request.writes),
        reads: status === 'prepared' ? new Set(request.reads) : noReads,
      });
    }
    if (planned.length === 0) return;
    const bodies = planned.map(({ item }): EntryBody => {
      const { request, status, participants, expiresAt } = item;
      return {
        writes: request.writes,
        ...(status === 'prepared' ? { reads: request.reads } : {}),
        ...(isActionsDigest(request.actionsDigest)
          ? { actionsDigest: request.actionsDigest }
          : actionsRecord(request.actions, this.inlineActionsBytesMax)),
        ...(participants !== undefined ? { participants } : {}),
        ...(expiresAt !== undefined ? { expiresAt } : {}),
        ...(status === 'prepared' && typeof request.coordinator === 'string'
          ? { coordinator: request.coordinator }
          : {}),
        checkpoint: state.checkpoint,
      };
    });
    const certified = await this.certifyPlanned(state, planned, bodies);
    // Entries are written in LSN order: the first one that failed to be certified ends the batch.
    const failedAt = certified.findIndex((result) => result.status === 'rejected');
    const written = failedAt === -1 ? planned.length : failedAt;
    const entries: LogEntry[] = [];
    for (let i = 0; i < written; i++) {
      const { item, lsn } = planned[i]!;
      entries.push({
        ...(bodies[i] as Omit<LogEntry, 'lsn' | 'trxId' | 'status' | 'certificate'>),
        lsn,
        trxId: item.request.trxId,
        status: item.status,
        certificate: (certified[i] as PromiseFulfilledResult<Certificate>).value,
      });
    }
    if (entries.length > 0) {
      try {
        const revisions: DirectRevision[] = [];
        for (const entry of entries) this.append(state, entry, revisions);
        await this.applyAppended(revisions);
      } catch (error) {
        // The cached state already counts the entries; the store may not: load it again. The
        // decisions stand (they are certified): the next decision of the group writes them.
        this.drop(collection);
        const inDoubt = inDoubtError(error);
        for (let i = 0; i < planned.length; i++) planned[i]!.item.reject(i < written ? inDoubt : error);
        return;
      }
    }
    // The group had decided entries this log lacks (a leader that died before its log write): write
    // them, then decide the rest of the batch again against the log as it now is.
    const elsewhere = this.decidedElsewhere(state, certified.slice(written));
    if (elsewhere !== undefined && adoptions < adoptionsMax) {
      for (let i = 0; i < written; i++) {
        const { item, lsn } = planned[i]!;
        item.resolve({ status: item.status, lsn, certificate: entries[i]!.certificate });
      }
      try {
        await this.adopt(state, elsewhere);
      } catch (error) {
        for (let i = written; i < planned.length; i++) planned[i]!.item.reject(error);
        return;
      }
      await this.decideBatch(
        collection,
        planned.slice(written).map((p) => p.item),
        adoptions + 1,
      );
      return;
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

  /**
   * Certifies a batch's planned entries: all at once when the certifier can (one signature for the
   * batch), else each with its consensus context (the entry before it and its content).
   */
  private async certifyPlanned(
    state: TailState,
    planned: readonly { item: QueuedDecision; lsn: number }[],
    bodies: readonly EntryBody[],
  ): Promise<PromiseSettledResult<Certificate>[]> {
    const certifier = this.components.certifier;
    if (planned.length > 1 && certifier.certifyBatch !== undefined) {
      const decisions = planned.map(({ item, lsn }) => ({
        collection: state.collection,
        blockId: state.tail.header.id,
        lsn,
        trxId: item.request.trxId,
        decision: item.status,
      }));
      try {
        const certificates = await certifier.certifyBatch(decisions, state.tail.members);
        return certificates.map((value) => ({ status: 'fulfilled', value }));
      } catch (reason) {
        return planned.map(() => ({ status: 'rejected', reason }));
      }
    }
    return Promise.allSettled(
      planned.map(({ item, lsn }, i) =>
        this.certify(state, lsn, item.request.trxId, item.status, {
          prev: i > 0 ? planned[i - 1]!.item.request.trxId : this.lastTrx(state),
          body: bodies[i]!,
        }),
      ),
    );
  }

  private certify(
    state: TailState,
    lsn: number,
    trxId: TrxId,
    decision: EntryStatus,
    entry?: EntryContext,
  ): Promise<Certificate> {
    return this.components.certifier.certify(
      { collection: state.collection, blockId: state.tail.header.id, lsn, trxId, decision },
      state.tail.members,
      entry,
    );
  }

  /** The transaction at the log's last LSN (what the next entry's `prev` names), null when unknown. */
  private lastTrx(state: TailState): TrxId | null {
    const last = state.window.at(-1);
    return last?.lsn === state.lastLsn ? last.trxId : null;
  }

  /**
   * The decisions a refused certification says the tail group took and this log may lack, from the
   * first refusal that carries any; undefined when none does.
   */
  private decidedElsewhere(
    state: TailState,
    results: readonly PromiseSettledResult<Certificate>[],
  ): readonly RecoveredDecision[] | undefined {
    const certifier = this.components.certifier;
    if (certifier.decidedElsewhere === undefined) return undefined;
    for (const result of results) {
      if (result.status !== 'rejected') continue;
      const decided = certifier.decidedElsewhere(result.reason, state.collection, state.tail.members);
      if (decided !== undefined) return decided;
    }
    return undefined;
  }

  /**
   * Writes decisions the tail group took that this log lacks: a leader decided them and stopped
   * before its log write reached the log's holders. New entries are appended at their LSN, final
   * decisions of prepared entries replace them. The state is then dropped, so the next request
   * reloads it and propagates what was committed. A decision that contradicts the log is a broken
   * invariant (INTERNAL), never silently skipped.
   */
  private async adopt(state: TailState, decided: readonly RecoveredDecision[]): Promise<void> {
    const rank = (d: RecoveredDecision): number => (d.decision === 'prepared' ? 0 : 1);
    const sorted = [...decided].sort((a, b) => a.lsn - b.lsn || rank(a) - rank(b));
    try {
      for (const d of sorted) {
        const existing = state.byTrx.get(d.trxId);
        if (existing !== undefined) {
          if (existing.lsn !== d.lsn)
            throw new EngineError(
              'INTERNAL',
              `transaction ${d.trxId} is at log position ${existing.lsn} but was decided at ${d.lsn}`,
            );
          if (existing.status === d.decision || d.decision === 'prepared') continue;
          if (existing.status !== 'prepared')
            throw new EngineError(
              'INTERNAL',
              `transaction ${d.trxId} is ${existing.status} in the log but was decided ${d.decision}`,
            );
          await this.writeDecision(
            state,
            existing,
            d.decision,
            d.certificate,
            await this.storedEntry(existing),
          );
          continue;
        }
        if (d.lsn <= state.lastLsn) {
          if (d.lsn < (state.window[0]?.lsn ?? 0)) continue; // older than the window: not this log's tail
          throw new EngineError(
            'INTERNAL',
            `log position ${d.lsn} of ${state.collection} holds another transaction than ${d.trxId}, which was decided there`,
          );
        }
        const body = d.body;
        if (d.lsn !== state.lastLsn + 1 || !usableBody(body))
          throw new EngineError(
            'INTERNAL',
            `decided entry ${d.lsn} of ${state.collection} (${d.trxId}) cannot be written: ${
              d.lsn !== state.lastLsn + 1 ? `the log ends at ${state.lastLsn}` : 'its content is missing'
            }`,
          );
        const entry = {
          ...body,
          lsn: d.lsn,
          trxId: d.trxId,
          status: d.decision,
          certificate: d.certificate,
        } as LogEntry;
        await this.append(state, entry);
      }
    } finally {
      this.drop(state.collection);
    }
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
      const successorId = this.successorId();
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
          // Tagged apart from an append of the same entry at this revision (a write of it that
          // reached a minority before the tail reloaded): a holder with that append must refuse the
          // seal, not take it for a copy it holds already (sim seed 1690).
          trxId: `${entry.trxId}:seal`,
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
    state.refreshedAt = this.components.clock.now();
    this.index(state, entry, state.tail.header.id);
    if (sink !== undefined) return;
    return this.applyAppended(revisions).catch((error: unknown) => {
      // The cached state already counts the entry; the store may not: load it again.
      this.drop(state.collection);
      throw error;
    });
  }

  /**
   * A successor log block's id: random, and one whose group this node leads when such an id turns up
   * within successorDrawsMax draws (every one does on a network of one node, most on a small one; on
   * a large one a node leads the group of one id in N). The tail then stays on this node, which holds
   * the collection's state: the first decision after a seal that moved the tail to another member
   * waited for that member to load the log (8–23 ms with a full window on 3 in-process nodes, each
   * 64th transaction, most of the sequential run's p99).
   */
  private successorId(): BlockId {
    const leads = this.init.leads;
    let id = newBlockId(this.components.rng);
    for (let draw = 1; leads !== undefined && draw < successorDrawsMax && !leads(id); draw++)
      id = newBlockId(this.components.rng);
    return id;
  }

  /**
   * Writes what `append` staged. Its only inserts are successor log blocks, whose ids it has just
   * drawn at random: the store is told so, and does not look them up.
   */
  private applyAppended(revisions: readonly DirectRevision[]): Promise<void> {
    const fresh = revisions.filter((r) => r.transform.kind === 'insert').map((r) => r.blockId);
    return this.components.blocks.apply(revisions, fresh.length > 0 ? { fresh } : {});
  }

  private index(state: TailState, entry: LogEntry, blockId: BlockId): void {
    const indexed: IndexedEntry = {
      lsn: entry.lsn,
      trxId: entry.trxId,
      status: entry.status,
      writes: new Set(entry.writes),
      writeList: entry.writes,
      reads: entry.reads === undefined ? noReads : new Set(entry.reads),
      blockId,
      certificate: entry.certificate,
      participants: entry.participants,
      expiresAt: entry.expiresAt,
      coordinator: entry.coordinator,
    };
    state.window.push(indexed);
    state.byTrx.set(entry.trxId, indexed);
    for (const id of entry.writes) {
      const list = state.writers.get(id);
      if (list === undefined) state.writers.set(id, [indexed]);
      else list.push(indexed);
    }
    while (state.window.length > this.windowEntriesMax) {
      const dropped = state.window[0]!;
      // Never drop an undecided entry: it still holds its read and write sets.
      if (dropped.status === 'prepared') break;
      state.window.shift();
      state.byTrx.delete(dropped.trxId);
      for (const id of dropped.writeList) {
        const list = state.writers.get(id);
        if (list?.[0] !== dropped) continue;
        if (list.length === 1) state.writers.delete(id);
        else list.shift();
      }
    }
  }

  private async recordDecision(
    state: TailState,
    entry: IndexedEntry,
    outcome: 'committed' | 'aborted',
    resolved = false,
  ): Promise<{ lsn: number; certificate: Certificate }> {
    const stored = await this.storedEntry(entry);
    let certificate: Certificate;
    try {
      certificate = await this.certifyDecision(
        state,
        entry,
        stored,
        outcome,
        resolved && outcome === 'aborted' ? resolvedAbortBody : undefined,
      );
    } catch (error) {
      await this.adoptRefused(state, error, stored.log.members);
      // The group decided this entry already (the other way, or the same way): report what it is now.
      if (entry.status === outcome) return { lsn: entry.lsn, certificate: entry.certificate };
      // Still prepared: it was confirmed to a tail or holder that asked about it, and only the tails'
      // resolution (commit iff every participant prepared) decides it now.
      if (outcome === 'aborted' && entry.status === 'prepared')
        throw new EngineError(
          'UNAVAILABLE',
          `transaction ${entry.trxId} is being decided by its tails in ${state.collection} (it commits if every participant prepared it)`,
          { inDoubt: true },
        );
      throw new EngineError(
        'CONFLICT',
        `transaction ${entry.trxId} was already ${entry.status} in ${state.collection}`,
      );
    }
    await this.writeDecision(state, entry, outcome, certificate, stored);
    return { lsn: entry.lsn, certificate };
  }

  /** Certifies a decision about an entry the log holds, by the members its log block records. */
  private certifyDecision(
    state: TailState,
    entry: IndexedEntry,
    stored: StoredEntry,
    decision: EntryStatus,
    body?: Readonly<Record<string, unknown>>,
  ): Promise<Certificate> {
    return this.components.certifier.certify(
      { collection: state.collection, blockId: entry.blockId, lsn: entry.lsn, trxId: entry.trxId, decision },
      stored.log.members,
      body === undefined ? undefined : { body },
    );
  }

  /**
   * After a certification the group refused: writes the decisions it names that this log lacks
   * (`adopt`; the state is dropped); any other error is thrown again.
   */
  private async adoptRefused(state: TailState, error: unknown, members: readonly string[]): Promise<void> {
    const decided = this.components.certifier.decidedElsewhere?.(error, state.collection, members);
    if (decided === undefined) throw error;
    await this.adopt(state, decided);
  }

  /** An indexed entry as its log block holds it, with the block and its revision. */
  private async storedEntry(entry: IndexedEntry): Promise<StoredEntry> {
    const holder = await this.components.blocks.latest(entry.blockId);
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
    return { rev: holder.rev, log, entry: stored };
  }

  /** Records the final decision of a prepared entry in its log block (as `storedEntry` read it). */
  private async writeDecision(
    state: TailState,
    entry: IndexedEntry,
    outcome: EntryStatus,
    certificate: Certificate,
    stored: StoredEntry,
  ): Promise<void> {
    const { rev: holderRev, log } = stored;
    const { reads: _reads, ...rest } = stored.entry;
    const decided: LogEntry = { ...rest, status: outcome, certificate };
    await this.components.blocks.apply([
      {
        blockId: entry.blockId,
        // The decision is a revision of its own: tagged apart from the prepare that placed the entry.
        trxId: `${entry.trxId}:${outcome}`,
        lsn: state.lastLsn,
        baseRev: holderRev,
        transform: { kind: 'update', ops: replaceEntryOps(log, decided) },
      },
    ]);
    if (entry.blockId === state.tail.header.id) {
      const entries = state.tail.entries.slice();
      entries[entry.lsn - state.tail.firstLsn] = decided;
      state.tail = { ...state.tail, entries };
      state.tailRev = holderRev + 1;
    }
    entry.status = outcome;
    entry.certificate = certificate;
    state.refreshedAt = this.components.clock.now();
    if (outcome === 'aborted') this.advanceCheckpoint(state);
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

  /**
   * True when a networked tail neither loaded nor decided in this state for viewFreshMs, or when it
   * has not read the blocks before its tail block for that long while an entry there is still
   * prepared. Such an entry is decided by its own block's group, whose leader writes the decision
   * to that block and nowhere else: a tail busy appending would otherwise keep its view below the
   * entry for as long as it appends (its reads stuck at an old snapshot). Learning of the decision
   * from its group is not enough: the tail may read the block again before the decision's write
   * reaches a majority of its holders (sim seed 50 with OPTIMYSTIC_SIM_DUPLICATION=0.3).
   */
  private stale(state: TailState): boolean {
    const freshMs = this.init.viewFreshMs;
    if (freshMs === undefined) return false;
    const now = this.components.clock.now();
    if (now - state.refreshedAt > freshMs) return true;
    if (now - state.priorReadAt <= freshMs) return false;
    // Entries at or below the checkpoint are decided: only the few above it can be prepared.
    const tailId = state.tail.header.id;
    for (let i = firstAboveCheckpoint(state); i < state.window.length; i++) {
      const entry = state.window[i]!;
      if (entry.status === 'prepared' && entry.blockId !== tailId) return true;
    }
    return false;
  }

  /** The collection's state, confirmed first if it is stale (the caller holds its queue). */
  private async freshState(collection: string): Promise<TailState> {
    const state = await this.state(collection);
    if (!this.stale(state)) return state;
    return this.confirmed(collection);
  }

  /**
   * A networked tail's cached state of a collection, checked against the log as a majority of its
   * holders has it now (the caller holds its queue). A log block changes only by an entry appended
   * to the tail block, a seal (also written to the tail block) or the decision of a prepared entry in
   * the block that holds it; so those blocks alone are read again from the cluster. When each is as
   * the state has it, the state is the log's, and the committed entries it has not seen propagated
   * are promoted, as a load would; otherwise (another member wrote, the log moved on, or nothing is
   * cached) the log is read again whole. Reading the whole window again cost every read-only check
   * of a transaction over several collections about fourteen requests and re-promoted every entry
   * above the checkpoint.
   */
  private async confirmed(collection: string): Promise<TailState> {
    const cached = this.ready.get(collection);
    const refreshBlock = this.init.refreshBlock;
    if (cached === undefined || refreshBlock === undefined) return this.reload(collection);
    const tailId = cached.tail.header.id;
    const prepared = new Map<BlockId, IndexedEntry[]>();
    for (const entry of cached.window) {
      if (entry.status !== 'prepared' || entry.blockId === tailId) continue;
      prepared.set(entry.blockId, [...(prepared.get(entry.blockId) ?? []), entry]);
    }
    const current = async (id: BlockId, holds: (log: LogBlock, rev: number) => boolean): Promise<boolean> => {
      refreshBlock(id);
      const state = await this.components.blocks.latest(id);
      return state !== undefined && isLogBlock(state.block) && holds(state.block, state.rev);
    };
    const same = await Promise.all([
      current(tailId, (log, rev) => rev === cached.tailRev && sameEntries(log, cached.tail)),
      ...[...prepared].map(([id, entries]) =>
        current(id, (log) =>
          entries.every((entry) => {
            const stored = log.entries[entry.lsn - log.firstLsn];
            return stored?.trxId === entry.trxId && stored.status === entry.status;
          }),
        ),
      ),
    ]).catch(() => [false]);
    if (!same.every(Boolean) || this.ready.get(collection) !== cached) return this.reload(collection);
    cached.refreshedAt = cached.priorReadAt = this.components.clock.now();
    await this.propagatePending(cached);
    return cached;
  }

  /**
   * Promotes the committed entries above the checkpoint not yet seen propagated. Checkpointed means
   * applied at (a majority of the holders of) every block it wrote: readers stop naming it then, so
   * a copy without it would pass for current. Whether this node still has the pends says nothing
   * about the other holders, so the commit is promoted at every written block (holders that applied
   * it already count; those without it are brought up to date by the repo), and counts as
   * propagated only once that succeeds.
   */
  private async propagatePending(state: TailState): Promise<void> {
    for (const entry of state.window.slice(firstAboveCheckpoint(state))) {
      if (entry.status !== 'committed' || state.propagated.has(entry.lsn)) continue;
      if (entry.writeList.length > 0) {
        try {
          await this.components.repo.promote({
            trxId: entry.trxId,
            lsn: entry.lsn,
            blockIds: entry.writeList,
            proof: [entry.certificate],
          });
        } catch {
          // Readers go on naming it; a later load (or confirmation) tries again.
          continue;
        }
      }
      state.propagated.add(entry.lsn);
    }
    this.advanceCheckpoint(state);
  }

  /** Reads a collection's log again, whatever this tail cached of it (the caller holds its queue). */
  private reload(collection: string): Promise<TailState> {
    this.init.refresh?.(collection);
    this.drop(collection);
    return this.state(collection);
  }

  /** Forgets the cached state of a collection at once (the caller holds its queue). */
  private drop(collection: string): void {
    this.states.delete(collection);
    this.ready.delete(collection);
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
      return this.recordNoOp(state, trxId, { reconfigure: true });
    });
  }

  /**
   * Decides `trxId` aborted at the next LSN, writing nothing: a transaction the log does not know,
   * refused for good (a later prepare or commit of it meets this entry: "already aborted"). Like a
   * fence, a refused certification writes what the group decided and answers false (look again).
   */
  private recordRefusal(state: TailState, trxId: TrxId): Promise<boolean> {
    return this.recordNoOp(state, trxId, refusalActions, 'aborted');
  }

  /**
   * Decides and records, at the next LSN, an entry that writes nothing (a reconfigure seal or a
   * fence, committed; a refusal, aborted). False when the group had decided entries this log lacked:
   * they were written instead (`adopt`; the state is dropped) and the caller may try again.
   */
  private async recordNoOp(
    state: TailState,
    trxId: TrxId,
    actions: Json,
    status: 'committed' | 'aborted' = 'committed',
  ): Promise<boolean> {
    const lsn = state.lastLsn + 1;
    const body: EntryBody = { writes: [], actions, checkpoint: state.checkpoint };
    let certificate: Certificate;
    try {
      certificate = await this.certify(state, lsn, trxId, status, { prev: this.lastTrx(state), body });
    } catch (error) {
      await this.adoptRefused(state, error, state.tail.members);
      return false;
    }
    await this.append(state, { ...body, lsn, trxId, status, certificate } as LogEntry);
    state.propagated.add(lsn);
    this.advanceCheckpoint(state);
    return true;
  }

  /**
   * Finishes prepared entries whose transactions expired before `now` (their coordinator is gone):
   * each commits iff every participant prepared it. Returns how many were decided. A networked node
   * calls it periodically; only the tail group's leader can record the decisions.
   */
  async resolveExpired(now: number): Promise<number> {
    let decided = 0;
    for (const collection of this.collections())
      decided += await this.resolveExpiredOf(collection, now, this.init.resolveElsewhere);
    return decided;
  }

  /**
   * `resolveExpired` for one collection, which this tail then serves (another node whose decision
   * was refused here asks for it: see `resolveElsewhere`).
   */
  async resolveExpiredOf(
    collection: string,
    now: number,
    elsewhere?: (collection: string, nodes: readonly string[]) => void,
  ): Promise<number> {
    let decided = 0;
    const state = await this.state(collection).catch(() => undefined);
    if (state === undefined) return 0;
    const expired = state.window.filter(
      (entry) =>
        entry.status === 'prepared' &&
        entry.expiresAt !== undefined &&
        entry.expiresAt + resolveMarginMs < now,
    );
    for (const entry of expired) {
      const commit = await this.allPrepared(collection, entry);
      if (commit === undefined) continue;
      await this.decideIfStillPrepared(collection, entry.trxId, commit, 'cached').then(
        (done) => {
          if (done) decided++;
        },
        (error: unknown) => {
          const nodes = nodesNamed(error);
          if (nodes.length > 0) elsewhere?.(collection, nodes);
        },
      );
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
        if (this.states.get(collection) === promise) {
          this.ready.set(collection, state);
          // What this node's previous process left prepared here is decided now, in the background
          // (the others decide theirs when its hello reaches them: resolveRestarted).
          if (this.abandonedBy(collection, [this.init.coordinatorId], state).length > 0)
            void this.settleAbandoned(collection, [this.init.coordinatorId]).catch(() => undefined);
        }
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
      throw noSuchCollection(collection);
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
    if (tail.prior !== null && tail.entries.length < this.windowEntriesMax)
      await blocks.prefetchLog?.(tail.prior, this.windowEntriesMax - tail.entries.length);
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
      writers: new Map(),
      checkpoint: 0,
      propagated: new Set(),
      refreshedAt: this.components.clock.now(),
      priorReadAt: this.components.clock.now(),
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
    await this.propagatePending(state);
  }

  /**
   * An undecided prepared entry: the transaction commits iff every participant prepared it. Asks
   * the other participants' tails; one that never prepared it records an abort (so it never will).
   */
  private async resolveInDoubt(state: TailState, entry: IndexedEntry): Promise<void> {
    const commit = await this.allPrepared(state.collection, entry);
    if (commit !== undefined) await this.decideInDoubt(state, entry, commit);
  }

  /** Records the decision of an in-doubt entry; an abort drops its pends. */
  private async decideInDoubt(state: TailState, entry: IndexedEntry, commit: boolean): Promise<void> {
    await this.recordDecision(state, entry, commit ? 'committed' : 'aborted', true);
    if (!commit) await this.components.repo.cancel(entry.trxId, entry.writeList);
  }

  /**
   * Whether every other participant of a prepared entry prepared (or committed) it: true, false when
   * one aborted or does not know it (then it never will: see outcomeOf), undefined when one cannot
   * be asked now (decide later rather than guess an abort).
   */
  private async allPrepared(collection: string, entry: IndexedEntry): Promise<boolean | undefined> {
    const participants = entry.participants ?? [collection];
    const tails = this.components.peers ?? this;
    let commit = true;
    for (const participant of participants) {
      if (participant === collection) continue;
      const outcome = await tails
        .outcomeOf(participant, entry.trxId)
        .catch((error: unknown) => (isEngineError(error, 'NOT_FOUND') ? ('unknown' as const) : undefined));
      if (outcome === undefined) return undefined;
      if (outcome === 'aborted' || outcome === 'unknown') commit = false;
    }
    return commit;
  }
}

/** Held blocks a view lists at most. */
const viewHoldsMax = 64;

/** Longest lineage (a trxId) and block id a claim may name, and most blocks it may name. */
const lineageCharsMax = 64;
const claimBlocksMax = 1024;

/**
 * Index in the window of the first entry above the checkpoint (the window holds contiguous LSNs, so
 * it is arithmetic): the entries before it are decided and propagated.
 */
function firstAboveCheckpoint(state: TailState): number {
  return Math.max(0, state.checkpoint + 1 - (state.window[0]?.lsn ?? 0));
}

/** Whether two copies of a log block hold the same entries, decided the same way, and the same successor. */
function sameEntries(a: LogBlock, b: LogBlock): boolean {
  if (a.firstLsn !== b.firstLsn || a.successor !== b.successor || a.entries.length !== b.entries.length)
    return false;
  return a.entries.every(
    (entry, i) => entry.trxId === b.entries[i]!.trxId && entry.status === b.entries[i]!.status,
  );
}

/** A replay's claim to a turn (from the network: checked here), or undefined if it is malformed. */
function parseClaim(claim: TurnClaim): TurnClaim | undefined {
  const { lineage, losses, reads, writes, tookMs, done, paused } = claim as Partial<
    Record<keyof TurnClaim, unknown>
  >;
  const ids = (list: unknown): list is BlockId[] =>
    Array.isArray(list) &&
    list.length <= claimBlocksMax &&
    list.every((id) => typeof id === 'string' && id.length <= lineageCharsMax);
  if (
    typeof lineage !== 'string' ||
    lineage.length === 0 ||
    lineage.length > lineageCharsMax ||
    !Number.isSafeInteger(losses) ||
    (losses as number) < 1 ||
    typeof tookMs !== 'number' ||
    !Number.isFinite(tookMs) ||
    !ids(reads) ||
    !ids(writes)
  )
    return undefined;
  return {
    lineage,
    losses: losses as number,
    reads,
    writes,
    tookMs: Math.max(0, tookMs),
    ...(done === true ? { done } : {}),
    ...(paused === true ? { paused } : {}),
  };
}

/** The first attempt's id of the transaction a request is an attempt of (ValidationRequest.lineage). */
function lineageOf(request: CommitRequest): string {
  const lineage: unknown = request.lineage;
  return typeof lineage === 'string' && lineage.length > 0 && lineage.length <= lineageCharsMax
    ? lineage
    : request.trxId;
}

/** A decision nothing changes any more (a prepared entry is still to be decided). */
function final(status: EntryStatus | undefined): status is 'committed' | 'aborted' {
  return status === 'committed' || status === 'aborted';
}

/** The node part of a coordinator id (`<node id>:<incarnation>`). */
function nodeOf(coordinator: string): string {
  const colon = coordinator.lastIndexOf(':');
  return colon < 0 ? coordinator : coordinator.slice(0, colon);
}
