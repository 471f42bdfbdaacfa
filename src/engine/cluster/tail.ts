/**
 * Log tails across the network. Every node runs a LogTail; a collection's requests go to the live
 * member of its tail block's recorded group nearest the block (the consensus leader in steady
 * state). The tail's decisions are certified by that group's consensus, so a node that is not the
 * leader cannot decide: its consensus core refuses and names the leader, and the request is
 * redirected there. The tail's log and header writes are replicated to their clusters (a majority
 * must store them before the tail answers); a tail that loads a collection first pulls the newest
 * revisions a majority holds.
 */
import { systemClock, type Clock } from '../base/clock.js';
import { canonicalJson } from '../base/codec.js';
import { EngineError, isEngineError, noSuchCollection } from '../base/errors.js';
import { collectionHeaderId, type BlockId, type TrxId } from '../base/ids.js';
import { limits } from '../base/limits.js';
import { leadershipOrder, quorumOf } from '../consensus/values.js';
import {
  isCollectionHeader,
  isLogBlock,
  type EntryStatus,
  type LogEntry,
} from '../collections/log/log-block.js';
import type { NetworkNode } from '../network/index.js';
import { schema } from '../network/index.js';
import type {
  BlockRevision,
  BlockState,
  BlockStore,
  BlockStoreStats,
  DirectRevision,
  HistoryRange,
  PendingTransform,
  PendOutcome,
} from '../storage/block-store.js';
import { LogTail } from '../transactions/log-tail.js';
import { blockTypes } from '../storage/block.js';
import type {
  CommitRequest,
  CreateCollectionRequest,
  DecideRequest,
  PrepareRequest,
  ReadCheck,
  ReadCheckRequest,
  PromoteRequest,
  TailClient,
  TailOutcome,
  TailView,
  TurnClaim,
} from '../transactions/protocol.js';
import type { MembershipCheck } from './certifier.js';
import type { Placement } from './placement.js';
import type { PeerClocks } from './peer-clocks.js';
import { applyIfNewer, contentDigest, type ApplyWriteOptions, type ClusterRepoClient } from './repo.js';

export const tailProtocolName = 'tail';

const { messageUnion, object, json, string, integer, optional } = schema;
const name = string({ charsMax: 128 });

export const validateTailRequest = messageUnion({
  view: object({ collection: name, claim: optional(json()) }),
  create: object({ request: json() }),
  commit: object({ request: json() }),
  /** `now`: the sender's clock when it sent the request (the expiry is moved into the tail's: PeerClocks). */
  prepare: object({ request: json(), now: optional(integer({ min: 0 })) }),
  decide: object({ request: json() }),
  propagated: object({ collection: name, lsn: integer({ min: 0 }) }),
  outcomeOf: object({ collection: name, trxId: string({ charsMax: 128 }) }),
  check: object({ request: json() }),
  reconfigure: object({ collection: name }),
  resolve: object({ collection: name }),
});

export type TailRequest = ReturnType<typeof validateTailRequest>;

/** A reply that sends the caller to another node. */
interface Redirect {
  readonly redirect: string;
  /**
   * The refusal came after the request was proposed (leadership changed while it was in flight):
   * the proposal may still be decided, so the outcome of this try is in doubt, as after a failure.
   */
  readonly inDoubt?: true;
}

/** A consensus refusal naming another leader, as a redirect there (in doubt when the refusal was). */
function redirectFor(error: unknown, self: string): Redirect | undefined {
  const leader = leaderNamed(error);
  if (leader === undefined || leader === self) return undefined;
  return (error as EngineError).details?.['inDoubt'] === true
    ? { redirect: leader, inDoubt: true }
    : { redirect: leader };
}

function isRedirect(value: unknown): value is Redirect {
  return typeof value === 'object' && value !== null && typeof (value as Redirect).redirect === 'string';
}

/** The leader a consensus refusal names, if any. */
function leaderNamed(error: unknown): string | undefined {
  if (!isEngineError(error, 'UNAVAILABLE')) return undefined;
  const leader = error.details?.leader;
  return typeof leader === 'string' ? leader : undefined;
}

/** Runs one tail request on this node's LogTail; a consensus refusal becomes a redirect. */
export async function serveTailRequest(
  tail: LogTail,
  placement: Placement,
  membership: MembershipCheck,
  request: TailRequest,
  from: string,
  stale: (collection: string) => void = () => undefined,
  promoted: (trxId: TrxId) => boolean = () => false,
  greet: (peer: string) => Promise<void> = () => Promise.resolve(),
  clock: Clock = systemClock,
  clocks?: PeerClocks,
): Promise<unknown> {
  // Reading is open to anyone (light clients run their transactions themselves); deciding is not.
  const reads = request.type === 'view' || request.type === 'outcomeOf' || request.type === 'check';
  if (!reads && !placement.isLive(from)) {
    // A member that connected a moment ago (a node just restarted) may ask before the hellos of
    // the new connection are through: greet it first, and refuse only what is still no member.
    await greet(from);
    if (!placement.isLive(from))
      throw new EngineError('BAD_INPUT', 'only members of this database may decide transactions here');
  }
  if (request.type === 'commit' || request.type === 'prepare') {
    // A coordinator names only itself: a request naming another node's coordinator could make this
    // tail decide that node's prepared entries as abandoned (LogTail.abandonedBy).
    const named = (request.request as { coordinator?: unknown } | null)?.coordinator;
    if (named !== undefined && (typeof named !== 'string' || !named.startsWith(`${from}:`))) {
      const { coordinator: _, ...rest } = request.request as Record<string, unknown>;
      request = { ...request, request: rest };
    }
  }
  if (request.type === 'prepare' && request.now !== undefined) {
    const prepare = request.request as Partial<PrepareRequest> | null;
    if (typeof prepare === 'object' && prepare !== null && typeof prepare.expiresAt === 'number') {
      // Set by the coordinator's clock: as this node's reads it (PeerClocks).
      const expiresAt =
        clocks?.localDeadline(from, prepare.expiresAt, request.now, clock.now()) ?? prepare.expiresAt;
      request = { type: 'prepare', request: { ...prepare, expiresAt } };
    }
  }
  if (request.type === 'decide') {
    const proof = (request.request as Partial<DecideRequest>).proof;
    if (!Array.isArray(proof)) throw new EngineError('BAD_INPUT', 'a decision needs a proof (may be empty)');
    await membership.check(proof);
  }
  try {
    return withPropagation(request, await runTail(tail, request, clock), promoted);
  } catch (error) {
    // Whatever failed, the next request reloads the collection's log (it may have moved on).
    stale(collectionOf(request));
    const redirect = redirectFor(error, placement.self);
    if (redirect !== undefined) return redirect;
    throw error;
  }
}

/**
 * Marks a commit (or committing decision) the tail promoted at its blocks with its log write as
 * `propagated`: the coordinator then neither promotes it nor reports the checkpoint.
 */
function withPropagation(
  request: TailRequest,
  result: unknown,
  promoted: (trxId: TrxId) => boolean,
): unknown {
  if (request.type !== 'commit' && request.type !== 'decide') return result;
  const trxId = (request.request as { trxId?: unknown }).trxId;
  const answer = result as { status?: unknown; lsn?: unknown } | null;
  if (typeof trxId !== 'string' || typeof answer !== 'object' || answer === null) return result;
  if (request.type === 'commit' && answer.status !== 'committed') return result;
  if (request.type === 'decide' && (request.request as { outcome?: unknown }).outcome !== 'committed')
    return result;
  return promoted(trxId) ? { ...answer, propagated: true } : result;
}

/** Whether an earlier try of a request failed, or was redirected after it was proposed: it may have reached a leader that proposed it. */
interface Tried {
  failed: boolean;
}

/**
 * A commit or prepare refused as a conflict after an earlier try failed. The earlier try may have
 * been proposed by the leader it reached (then cut off), and that proposal can still be decided:
 * the refusal judged the retry on another tail's log, not the transaction's fate. Taken for final,
 * the coordinator would withdraw the pends and run the transaction again under a new id, and both
 * could commit (sim seed 911 with introductions: a transfer applied twice). So it is in doubt, and
 * the tails settle it when its pends expire.
 */
function refusedAfterFailure(request: TailRequest, answer: unknown): boolean {
  if (request.type !== 'commit' && request.type !== 'prepare') return false;
  return (answer as { status?: unknown } | null)?.status === 'conflict';
}

function transactionOf(request: TailRequest): string {
  const trxId = (request as { request?: { trxId?: unknown } }).request?.trxId;
  return typeof trxId === 'string' ? trxId : '?';
}

function collectionOf(request: TailRequest): string {
  if ('collection' in request) return request.collection;
  const inner = request.request as { collection?: unknown; header?: { name?: unknown } };
  if (typeof inner.collection === 'string') return inner.collection;
  return typeof inner.header?.name === 'string' ? inner.header.name : '';
}

function runTail(tail: TailClient, request: TailRequest, clock: Clock): Promise<unknown> {
  switch (request.type) {
    case 'view':
      return tail.view(request.collection, request.claim as TurnClaim | undefined);
    case 'create':
      return tail.create(request.request as CreateCollectionRequest);
    case 'commit':
      return tail.commit(request.request as CommitRequest);
    case 'prepare':
      return tail.prepare(request.request as PrepareRequest);
    case 'decide':
      return tail.decide(request.request as DecideRequest);
    case 'propagated':
      return tail.propagated(request.collection, request.lsn).then(() => true);
    case 'outcomeOf':
      return tail.outcomeOf(request.collection, request.trxId);
    case 'check':
      return tail.check(request.request as ReadCheckRequest);
    case 'resolve':
      // Another tail could not decide an expired entry: this node leads (or is in) its group.
      if (!(tail instanceof LogTail)) throw new EngineError('INTERNAL', 'resolve needs a log tail');
      return tail.resolveExpiredOf(request.collection, clock.now());
    case 'reconfigure':
      if (!(tail instanceof LogTail)) throw new EngineError('INTERNAL', 'reconfigure needs a log tail');
      return tail.reconfigure(request.collection);
  }
}

export interface RoutedTailParts {
  readonly local: LogTail;
  /** This node's clock (default: the system's), read into the prepares it sends. */
  readonly clock?: Clock;
  readonly placement: Placement;
  readonly cluster: ClusterRepoClient;
  readonly network: () => NetworkNode | undefined;
  readonly membership: MembershipCheck;
  /** This node's cached state of a collection's log may be out of date (a local request failed). */
  readonly stale?: (collection: string) => void;
  /** Whether this node's tail promoted a transaction's commit with its log write. */
  readonly promoted?: (trxId: TrxId) => boolean;
}

interface TailLocation {
  readonly tailId: BlockId;
  readonly members: readonly string[];
  /** Where the last request was served (a redirect moves it). */
  leader: string | undefined;
}

const redirectsMax = 4;
/** How long a tail request keeps trying while its group changes leader (a few suspicion periods). */
const tailFailoverMs = 4 * limits.consensusSuspectAfterMs;
/** Pause before asking a group again when none of its members could serve. */
const failoverPauseMs = 200;

/** TailClient that sends each collection's requests to the node serving its tail. */
export class RoutedTailClient implements TailClient {
  private readonly locations = new Map<string, TailLocation>();

  constructor(private readonly parts: RoutedTailParts) {}

  view(collection: string, claim?: TurnClaim): Promise<TailView> {
    return this.call(collection, { type: 'view', collection, ...(claim !== undefined ? { claim } : {}) });
  }

  async create(
    request: CreateCollectionRequest,
  ): Promise<{ lsn: number; certificate: import('../collections/log/log-block.js').Certificate }> {
    const location: TailLocation = {
      tailId: request.log.header.id,
      members: request.log.members,
      leader: undefined,
    };
    this.locations.set(request.header.name, location);
    return this.routed(
      request.header.name,
      location,
      { type: 'create', request },
      Date.now() + tailFailoverMs,
    );
  }

  commit(request: CommitRequest): Promise<TailOutcome> {
    return this.call(request.collection, { type: 'commit', request });
  }

  prepare(request: PrepareRequest): Promise<TailOutcome> {
    return this.call(request.collection, { type: 'prepare', request });
  }

  async decide(
    request: DecideRequest,
  ): Promise<{ lsn: number; certificate: import('../collections/log/log-block.js').Certificate }> {
    await this.parts.membership.check(request.proof);
    return this.call(request.collection, { type: 'decide', request });
  }

  /**
   * Reports a propagated commit to the tail in the background: it only moves the checkpoint, and a
   * lost report is made up for by the tail itself (readers reinforce uncheckpointed commits, and a
   * tail that reloads propagates what is above its checkpoint).
   */
  propagated(collection: string, lsn: number): Promise<void> {
    void this.call(collection, { type: 'propagated', collection, lsn }).catch(() => undefined);
    return Promise.resolve();
  }

  outcomeOf(collection: string, trxId: TrxId): Promise<EntryStatus | 'unknown'> {
    return this.call(collection, { type: 'outcomeOf', collection, trxId });
  }

  check(request: ReadCheckRequest): Promise<ReadCheck> {
    return this.call(request.collection, { type: 'check', request });
  }

  /** Asks the collection's tail to hand over to a larger group if its own is outgrown. */
  reconfigure(collection: string): Promise<boolean> {
    return this.call(collection, { type: 'reconfigure', collection });
  }

  /** Forgets where a collection's tail is (after a seal or a failed request). */
  forget(collection: string): void {
    this.locations.delete(collection);
  }

  private async call<T>(collection: string, request: TailRequest): Promise<T> {
    const deadline = Date.now() + tailFailoverMs;
    const tried: Tried = { failed: false };
    for (let attempt = 0; ; attempt++) {
      let location = this.locations.get(collection);
      if (location === undefined) {
        location = await this.locate(collection);
        this.locations.set(collection, location);
      }
      try {
        return await this.routed<T>(collection, location, request, deadline, tried);
      } catch (error) {
        tried.failed = true;
        // A seal moves the tail to another group: look it up again (once is enough unless it moved).
        this.locations.delete(collection);
        // A group that looks unreachable may simply be an old one (the tail moved on): look again.
        if (
          !isEngineError(error, 'UNAVAILABLE') &&
          !isEngineError(error, 'TIMEOUT') &&
          !isEngineError(error, 'NO_QUORUM')
        )
          throw error;
        if (Date.now() >= deadline || attempt >= redirectsMax) throw error;
        const fresh = await this.locate(collection);
        this.locations.set(collection, fresh);
        if (fresh.tailId === location.tailId) throw error;
      }
    }
  }

  /**
   * Sends a request to the tail group's leader: the live member nearest the block, or whoever its
   * consensus names. While leadership moves (the leader died and the others have not suspected it
   * yet), unreachable members are skipped and the request is retried until `deadline`.
   */
  private async routed<T>(
    collection: string,
    location: TailLocation,
    request: TailRequest,
    deadline: number,
    tried: Tried = { failed: false },
  ): Promise<T> {
    const { placement } = this.parts;
    const unreachable = new Set<string>();
    let reloaded = false;
    const pick = (): string | undefined =>
      leadershipOrder(location.tailId, location.members).find(
        (member) => placement.isLive(member) && !unreachable.has(member),
      );
    let target = location.leader ?? pick();
    for (let hops = 0; ; hops++) {
      if (!placement.hasQuorum(location.members)) {
        throw new EngineError(
          'NO_QUORUM',
          `a majority of the tail group of ${collection} is unreachable from this node (${location.members.filter((m) => placement.isLive(m)).length} of ${location.members.length} live)`,
        );
      }
      if (target === undefined) {
        // Every live member failed or pointed at an unreachable leader: wait for the group to elect.
        if (Date.now() >= deadline)
          throw new EngineError(
            'UNAVAILABLE',
            `the tail group of ${collection} has no reachable leader yet; try again`,
          );
        await new Promise((resolve) => setTimeout(resolve, failoverPauseMs));
        unreachable.clear();
        target = pick();
        continue;
      }
      let answer: unknown;
      try {
        answer = await this.ask(target, request);
      } catch (error) {
        tried.failed = true;
        // A decision about an entry this node's (reloaded) log does not show yet is worth one retry.
        const missing =
          isEngineError(error, 'NOT_FOUND') && target === placement.self && request.type === 'decide';
        // A member that does not answer in time is passed over like one that refused the connection:
        // cut off without a reset (a partition), its connection looks up until a ping fails, and the
        // rest of the group may already have a new leader. What the request did there stays in doubt
        // (`tried.failed`), as after any failure.
        const unreachableThere = isEngineError(error, 'UNAVAILABLE') || isEngineError(error, 'TIMEOUT');
        if ((!unreachableThere && !missing) || Date.now() >= deadline) throw error;
        if (target === placement.self) {
          // This node's view of the log was stale (it has been reloaded): once more, then give up.
          if (reloaded) throw error;
          reloaded = true;
          continue;
        }
        unreachable.add(target);
        location.leader = undefined;
        target = pick();
        continue;
      }
      if (!isRedirect(answer)) {
        location.leader = target;
        if (tried.failed && refusedAfterFailure(request, answer))
          throw new EngineError(
            'UNAVAILABLE',
            `the outcome of transaction ${transactionOf(request)} in ${collection} is unknown: an earlier try may have been decided by the leader it reached; ask again later`,
            { inDoubt: true },
          );
        return answer as T;
      }
      // The target proposed the request before leadership moved: that proposal may still be decided.
      if (answer.inDoubt === true) tried.failed = true;
      if (hops >= redirectsMax * 4 && Date.now() >= deadline)
        throw new EngineError('UNAVAILABLE', `the tail of ${collection} keeps moving; try again`);
      target =
        answer.redirect === target || unreachable.has(answer.redirect) || !placement.isLive(answer.redirect)
          ? undefined
          : answer.redirect;
      if (target === undefined) unreachable.clear();
    }
  }

  /** One request to one member (this node's own tail directly); a consensus refusal becomes a redirect. */
  private async ask(target: string, request: TailRequest): Promise<unknown> {
    if (target === this.parts.placement.self) {
      try {
        return withPropagation(
          request,
          await runTail(this.parts.local, request, this.parts.clock ?? systemClock),
          this.parts.promoted ?? (() => false),
        );
      } catch (error) {
        this.parts.stale?.(collectionOf(request));
        const redirect = redirectFor(error, target);
        if (redirect === undefined) throw error;
        return redirect;
      }
    }
    const network = this.parts.network();
    if (network === undefined) throw new EngineError('UNAVAILABLE', 'the network is not up');
    // A prepare carries this node's clock reading: its expiry is by this clock (PeerClocks).
    const sent =
      request.type === 'prepare' ? { ...request, now: (this.parts.clock ?? systemClock).now() } : request;
    return network.request(target, tailProtocolName, sent);
  }

  /** Finds a collection's current tail block and its recorded group from the cluster's copies. */
  private async locate(collection: string): Promise<TailLocation> {
    const { cluster } = this.parts;
    const header = await cluster.get({ blockId: collectionHeaderId(collection) });
    if (header === undefined || !isCollectionHeader(header.block)) {
      throw noSuchCollection(collection);
    }
    let tailId = header.block.logTail;
    for (let hops = 0; hops < 1024; hops++) {
      const state = await cluster.get({ blockId: tailId });
      if (state === undefined || !isLogBlock(state.block))
        throw new EngineError('UNAVAILABLE', `the log block ${tailId} of ${collection} is not reachable`);
      if (state.block.successor === null) return { tailId, members: state.block.members, leader: undefined };
      tailId = state.block.successor;
    }
    throw new EngineError('CORRUPT', `the log of ${collection} has too many successors`);
  }
}

/** Log blocks whose collection a tail remembers (to forget only that collection when its group decides elsewhere). */
const logsRememberedMax = 4096;

/** Transactions a tail remembers having promoted, long enough for their outcome to be answered. */
const promotedRememberedMax = 4096;

/**
 * Log blocks a tail pulls at once when it loads a collection (prefetchLog): a full window
 * (limits.validationWindowEntriesMax) spans about 16 blocks of a networked log, a little more when
 * blocks were sealed early (a reconfiguration).
 */
const logPrefetchBlocksMax = 64;

/**
 * The committed entries a log write appends or decides (splices of a log block's entries), as the
 * promotions of their blocks. Entries in a new log block (creation, a seal's successor) are left to
 * the coordinator.
 */
function committedIn(
  revisions: readonly DirectRevision[],
): { readonly collection: string; readonly promote: PromoteRequest }[] {
  const out: { collection: string; promote: PromoteRequest }[] = [];
  for (const revision of revisions) {
    if (revision.transform.kind !== 'update') continue;
    for (const op of revision.transform.ops) {
      if (op.op !== 'splice' || op.field !== 'entries') continue;
      for (const item of op.items) {
        const entry = item as Partial<LogEntry> | null;
        const certificate = entry?.certificate;
        if (
          entry === null ||
          entry.status !== 'committed' ||
          typeof entry.trxId !== 'string' ||
          typeof entry.lsn !== 'number' ||
          !Array.isArray(entry.writes) ||
          entry.writes.length === 0 ||
          typeof certificate !== 'object' ||
          certificate.trxId !== entry.trxId
        )
          continue;
        out.push({
          collection: certificate.collection,
          promote: { trxId: entry.trxId, lsn: entry.lsn, blockIds: entry.writes, proof: [certificate] },
        });
      }
    }
  }
  return out;
}

/**
 * The block store a networked LogTail writes through: reads pull what a majority of the block's
 * cluster holds before the first local read (and again after `forget`), writes go to the cluster.
 */
export class TailBlocks implements BlockStore {
  private readonly pulled = new Set<BlockId>();
  /** Transactions whose commit this tail promoted at a majority of their blocks' holders (latest first out). */
  private readonly promoted = new Set<TrxId>();
  /** Told of each commit promoted with its log write (the tail's checkpoint may move). */
  onPromoted: ((collection: string, lsn: number) => void) | undefined;

  constructor(
    private readonly local: BlockStore,
    private readonly cluster: ClusterRepoClient,
    private readonly placement: Placement,
  ) {}

  /** Collections of the log blocks read here, by log block id (a consensus group's id is its log block's). */
  private readonly logs = new Map<BlockId, string>();

  /** Pulls under way: a read of the block waits for it instead of starting another. */
  private readonly pulling = new Map<BlockId, Promise<void>>();

  /** The next read of every block (or of `ids`) asks the cluster again. */
  forget(ids?: readonly BlockId[]): void {
    if (ids === undefined) {
      this.pulled.clear();
      this.pulling.clear();
    } else
      for (const id of ids) {
        this.pulled.delete(id);
        this.pulling.delete(id);
      }
  }

  /** A collection's header and the log blocks of it this tail has read. */
  blocksOf(collection: string): BlockId[] {
    const ids = [collectionHeaderId(collection)];
    for (const [id, of] of this.logs) if (of === collection) ids.push(id);
    return ids;
  }

  /** The collection whose log block this is, if this tail has read it. */
  collectionOfLog(blockId: BlockId): string | undefined {
    return this.logs.get(blockId);
  }

  /**
   * The collection whose log block this is, from this node's own copy when this tail has not read it
   * (a member of a group whose log it never served holds the block all the same): undefined when
   * this node holds no log block by that id.
   */
  async collectionOfLogHeld(blockId: BlockId): Promise<string | undefined> {
    const known = this.logs.get(blockId);
    if (known !== undefined) return known;
    const state = await this.local.latest(blockId).catch(() => undefined);
    if (!isLogBlock(state?.block)) return undefined;
    this.remember(blockId, state.block.header.collection);
    return state.block.header.collection;
  }

  async latest(id: BlockId): Promise<BlockState | undefined> {
    if (!this.pulled.has(id)) await this.pullOnce(id);
    const state = await this.local.latest(id);
    if (isLogBlock(state?.block) && !this.logs.has(id)) this.remember(id, state.block.header.collection);
    return state;
  }

  /** `pull`, shared by the reads that ask meanwhile; counts as pulled unless forgotten meanwhile. */
  private pullOnce(id: BlockId): Promise<void> {
    const inFlight = this.pulling.get(id);
    if (inFlight !== undefined) return inFlight;
    const pulling: Promise<void> = this.pull(id).then(
      () => {
        if (this.pulling.get(id) !== pulling) return;
        this.pulling.delete(id);
        this.pulled.add(id);
      },
      (error: unknown) => {
        if (this.pulling.get(id) === pulling) this.pulling.delete(id);
        throw error;
      },
    );
    this.pulling.set(id, pulling);
    return pulling;
  }

  /**
   * Starts pulling, all at once, the log blocks before `id` that this node's copies name, until
   * they hold `entriesMax` entries: a tail loading a collection otherwise read them one after another,
   * a majority read each (about 16 of them once the window is full), and the first decision of a new
   * log block's group, led by another member, waited 8–23 ms for it on 3 in-process nodes. A copy
   * only names the ids; what the tail then reads of each is what a majority holds. Blocks this node
   * holds no copy of end the walk: the tail reads them one by one, as before.
   */
  async prefetchLog(id: BlockId, entriesMax: number): Promise<void> {
    const ids: BlockId[] = [];
    let entries = 0;
    let next: BlockId | null = id;
    while (next !== null && entries < entriesMax && ids.length < logPrefetchBlocksMax) {
      const copy: BlockState | undefined = await this.local.latest(next).catch(() => undefined);
      if (!isLogBlock(copy?.block)) break;
      ids.push(next);
      entries += copy.block.entries.length;
      next = copy.block.prior;
    }
    for (const block of ids) if (!this.pulled.has(block)) this.pullOnce(block).catch(() => undefined);
  }

  private remember(id: BlockId, collection: string): void {
    if (this.logs.size >= logsRememberedMax) {
      // Forgotten here, so pulled again on its next read (a forget by collection cannot name it).
      const oldest = this.logs.keys().next().value!;
      this.logs.delete(oldest);
      this.pulled.delete(oldest);
    }
    this.logs.set(id, collection);
  }

  at(
    id: BlockId,
    point: { readonly rev: number } | { readonly lsn: number },
  ): Promise<BlockState | undefined> {
    return this.local.at(id, point);
  }

  history(id: BlockId, range?: HistoryRange): Promise<BlockRevision[]> {
    return this.local.history(id, range);
  }

  pendingOf(id: BlockId): Promise<PendingTransform[]> {
    return this.cluster.pendingOf(id);
  }

  pend(
    items: readonly PendingTransform[],
  ): Promise<{ readonly ok: boolean; readonly outcomes: readonly PendOutcome[] }> {
    return this.local.pend(items);
  }

  cancel(trxId: TrxId, blockIds: readonly BlockId[]): Promise<void> {
    return this.local.cancel(trxId, blockIds);
  }

  promote(commit: {
    readonly trxId: TrxId;
    readonly lsn: number;
    readonly blockIds: readonly BlockId[];
  }): Promise<void> {
    return this.local.promote(commit);
  }

  async apply(revisions: readonly DirectRevision[]): Promise<void> {
    // A seal (the old tail block naming its successor: `whole`) is stored in steps, each by a
    // majority before the next: the successor block, then the old block's link to it (checked
    // against its base revision at every holder, so a tail that sealed from a stale copy is refused
    // there), then the header's tail pointer. A refused seal leaves an unreferenced successor, never
    // a header that points past a log whose head does not lead to it (sim seed 1313).
    // Revisions of one block keep their order across the steps: entries a batch appended to the old
    // block before sealing it go with the seal, entries appended to the successor after its insert.
    const seal = revisions.find((revision) => revision.whole === true);
    if (seal !== undefined && revisions.length > 1) {
      const sealAt = revisions.indexOf(seal);
      const sealed = revisions.filter((revision, i) => revision.blockId === seal.blockId && i <= sealAt);
      const inserted = revisions.filter(
        (revision) => !sealed.includes(revision) && revision.transform.kind === 'insert',
      );
      const rest = revisions.filter((revision) => !sealed.includes(revision) && !inserted.includes(revision));
      // The link goes to this node's copy last, once a majority of the other holders took it: a seal
      // built on a stale copy is refused there, and must not stay here (sim seed 957).
      for (const step of [inserted, sealed, rest])
        if (step.length > 0) await this.write(step, step === sealed ? { localLast: true } : {});
      return;
    }
    await this.write(revisions);
  }

  private async write(revisions: readonly DirectRevision[], options: ApplyWriteOptions = {}): Promise<void> {
    // The tail keeps a copy of the log and header blocks it writes even outside their clusters (it
    // reads them back); a tree root it inserts at creation belongs to the root's cluster alone.
    const elsewhere = revisions.filter(
      (r) =>
        !this.placement.clusterOf(r.blockId).includes(this.placement.self) &&
        !(
          r.transform.kind === 'insert' &&
          r.transform.block.header.type !== blockTypes.logBlock &&
          r.transform.block.header.type !== blockTypes.collectionHeader
        ),
    );
    // The commits a log write records are promoted at their blocks in the same requests, so the
    // coordinator need not (the outcome says so: `propagated`).
    const commits = committedIn(revisions);
    const promoted = await this.cluster.apply(
      revisions,
      commits.map((commit) => commit.promote),
      options,
    );
    // (no gap here: the tail pulled the block before it wrote it)
    if (elsewhere.length > 0) await applyIfNewer(this.local, elsewhere);
    for (const { collection, promote } of commits) {
      if (!promoted.has(promote.trxId)) continue;
      this.promoted.add(promote.trxId);
      if (this.promoted.size > promotedRememberedMax)
        this.promoted.delete(this.promoted.values().next().value!);
      this.onPromoted?.(collection, promote.lsn);
    }
  }

  /** Whether this tail promoted a transaction's commit with its log write (recently). */
  promotedHere(trxId: TrxId): boolean {
    return this.promoted.has(trxId);
  }

  expired(now: number, limit: number): Promise<PendingTransform[]> {
    return this.local.expired(now, limit);
  }

  sync(): Promise<void> {
    return this.local.sync();
  }

  stats(): Promise<BlockStoreStats> {
    return this.local.stats();
  }

  /**
   * Brings the local copy of a block up to the newest revision a majority of its cluster holds. A
   * local copy that is ahead (this node wrote a revision and stopped before a majority stored it) is
   * sent to the cluster first, and used only once a majority holds it: a tail must never answer from
   * a revision a majority may not have (it would acknowledge what a later majority read misses).
   */
  private async pull(id: BlockId): Promise<void> {
    const { state: remote, holding: holdingRead, source } = await this.cluster.getCounted({ blockId: id });
    const mine = await this.local.latest(id);
    let held = mine?.rev ?? 0;
    // A majority holds other content than this copy at its own revision (the read chose another
    // source): revisions of this copy no majority took — written here just before a crash, while the
    // cluster went on without them. They were never acknowledged; serving from them would keep this
    // tail on a log no one else has (sim seed 3139: an entry prepared here forever). Take them back.
    // (A copy held outside the block's cluster is never the read's source: compare content.)
    if (
      remote !== undefined &&
      mine !== undefined &&
      held > 0 &&
      remote.rev === held &&
      source !== undefined &&
      source !== this.placement.self &&
      contentDigest(remote) !== contentDigest(mine)
    ) {
      // Counted over every member's answer: the first majority may leave out holders of this copy.
      const all = await this.cluster.getCounted({ blockId: id }, { everyone: true });
      if (
        all.source !== undefined &&
        all.source !== this.placement.self &&
        all.state?.rev === held &&
        all.holding >= quorumOf(this.placement.clusterOf(id).length)
      ) {
        await this.realign(id, all.source);
        held = (await this.local.latest(id))?.rev ?? 0;
      }
    }
    if (remote === undefined || remote.rev <= held) {
      // The majority read counts this node's own copy: check that a majority holds what it holds.
      if (held === 0) return;
      // The read itself may show it: a majority answered with this revision (or none newer exists).
      const quorum = quorumOf(this.placement.clusterOf(id).length);
      if (remote?.rev === held && holdingRead >= quorum) return;
      const holding = (await this.cluster.revisionsOf(id, held)).filter((r) => r.rev >= held).length;
      if (holding >= quorum) return;
      return this.spread(id);
    }
    // From the member that answered the newest state: while the cluster grows it may be a holder
    // the joiners displaced, the only one with the newest revisions.
    const history =
      source === undefined
        ? await this.cluster.history(id)
        : await this.cluster.historyAt(source, id, held + 1);
    await this.cluster.send(
      this.placement.self,
      id,
      history.filter((revision) => revision.rev > held),
    );
    // The newest revision may have come from a minority (a leader that wrote it and died before the
    // rest of its cluster stored it): with this node's copy, a majority must hold it before the tail
    // answers from it, or it would acknowledge a log entry a later majority read misses.
    const quorum = quorumOf(this.placement.clusterOf(id).length);
    const self = this.placement.clusterOf(id).includes(this.placement.self) ? 1 : 0;
    if (holdingRead + self < quorum) await this.spread(id);
  }

  /**
   * Makes this node's copy of a block the one `source` holds: the revisions after the last one both
   * have alike (same transaction, same transform) are replaced by the source's, in one batch.
   */
  private async realign(id: BlockId, source: string): Promise<void> {
    if (this.local.replaceAfter === undefined) return;
    const theirs = await this.cluster.historyAt(source, id, 1);
    const mine = await this.local.history(id);
    const same = (a: BlockRevision, b: BlockRevision | undefined): boolean =>
      b !== undefined &&
      a.trxId === b.trxId &&
      a.lsn === b.lsn &&
      canonicalJson(a.transform) === canonicalJson(b.transform);
    const byRev = new Map(theirs.map((revision) => [revision.rev, revision]));
    let common = 0;
    for (const revision of mine.sort((a, b) => a.rev - b.rev)) {
      if (!same(revision, byRev.get(revision.rev))) break;
      common = revision.rev;
    }
    const after = theirs
      .filter((revision) => revision.rev > common)
      .sort((a, b) => a.rev - b.rev)
      .map((revision) => ({
        blockId: id,
        trxId: revision.trxId,
        lsn: revision.lsn,
        baseRev: revision.rev - 1,
        transform: revision.transform,
      }));
    await this.local.replaceAfter(id, common, after);
  }

  /** Sends this node's copy of a block to the rest of its cluster; NO_QUORUM unless a majority then holds it. */
  private async spread(id: BlockId): Promise<void> {
    const history = await this.local.history(id);
    const cluster = this.placement.clusterOf(id);
    const others = cluster.filter((member) => member !== this.placement.self);
    const sent = await Promise.allSettled(others.map((member) => this.cluster.send(member, id, history)));
    const holding =
      (cluster.includes(this.placement.self) ? 1 : 0) + sent.filter((r) => r.status === 'fulfilled').length;
    if (holding < quorumOf(cluster.length))
      throw new EngineError(
        'NO_QUORUM',
        `block ${id}: this node's copy is newer than a majority of its cluster holds, and too few of them took it`,
      );
  }
}
