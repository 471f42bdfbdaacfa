/**
 * The distributed commit path of a node, assembled: placement, the repo and tail protocols, the
 * networked LogTail and the clients the coordinator drives. The node's SoloNode is wired with these
 * instead of its in-process repo and tail, so the same coordinator commits across the network.
 */
import type { Clock } from '../base/clock.js';
import { toEngineError } from '../base/errors.js';
import type { BlockId } from '../base/ids.js';
import { limits } from '../base/limits.js';
import type { Rng } from '../base/rng.js';
import type { ConsensusProposer } from '../consensus/memory-network.js';
import { leadershipOrder } from '../consensus/values.js';
import type { NetworkNode } from '../network/index.js';
import type { BlockRevision, BlockState, BlockStore, PendingTransform } from '../storage/block-store.js';
import { LocalRepo } from '../transactions/local-repo.js';
import { LogTail } from '../transactions/log-tail.js';
import { MembershipCheck, NetworkCertifier, sameMembers } from './certifier.js';
import { isLogBlock } from '../collections/log/log-block.js';
import { Placement } from './placement.js';
import { type Clash, DatabaseMarks, type Marks } from './database-marks.js';
import { PeerClocks } from './peer-clocks.js';
import type { DeferredSyncs } from './deferred-syncs.js';
import {
  ClusterRepoClient,
  membersListedMax,
  repoProtocolName,
  serveRepoRequest,
  validateRepoRequest,
  type DecisionCarrier,
} from './repo.js';
import {
  RoutedTailClient,
  serveTailRequest,
  tailProtocolName,
  TailBlocks,
  validateTailRequest,
} from './tail.js';

export interface ClusterComponents {
  /** This node's peer id (its member id in every group). */
  readonly self: string;
  /** This node's block store; `ids` lets it hand blocks to members that join their clusters. */
  readonly blocks: BlockStore & { ids?(): AsyncIterable<BlockId> };
  readonly proposer: ConsensusProposer;
  readonly clock: Clock;
  readonly rng: Rng;
  /** Collection names this node has seen created. */
  readonly catalog: () => Promise<string[]>;
  /** Members this node knew before it (re)started. */
  readonly knownMembers?: readonly string[];
  /** Records a member seen for the first time (so a restart knows every cluster as it was). */
  readonly rememberMember?: (peer: string) => Promise<void>;
  /** Forgets a member remembered by introduction that turned out to hold another database. */
  readonly forgetMember?: (peer: string) => Promise<void>;
  /** The id this node's coordinator names itself by (`<node>:<incarnation>`): its tails resolve what earlier incarnations left prepared. */
  readonly coordinatorId?: string;
  /** Syncs deferred while this node is alone (ClusterRepoParts.deferred); shared with its consensus store. */
  readonly deferred?: DeferredSyncs;
}

export interface ClusterInit {
  readonly network: string;
  /** Cluster size: how many peers hold each block (SPEC default 5). */
  readonly k?: number;
  /**
   * A member unreachable for this long is left out of new tail groups, and groups that hold it are
   * sealed to a successor without it; it is counted again once it is back (default
   * limits.memberAbsentMs).
   */
  readonly memberAbsentMs?: number;
}

/** Read access to blocks wherever their cluster keeps them (`block get|history|pending|verify`). */
export interface BlockReader {
  latest(id: BlockId): Promise<BlockState | undefined>;
  at(id: BlockId, point: { readonly rev: number }): Promise<BlockState | undefined>;
  history(id: BlockId): Promise<BlockRevision[]>;
  pendingOf(id: BlockId): Promise<PendingTransform[]>;
}

/** How often a node asks the tails it knows to grow outgrown groups, and finishes expired in-doubt entries. */
const regroupIntervalMs = 5_000;

/** A tail that neither loaded nor decided a collection's log for this long reads it again before a view. */
const tailViewFreshMs = 1_000;

/** Log entries per log block on a networked node (the embedded default is limits.logEntriesPerBlockMax). */
const networkLogEntriesPerBlockMax = 64;

export class Cluster {
  readonly placement: Placement;
  readonly certifier: NetworkCertifier;
  /** The block holder this node is (serves the repo protocol). */
  readonly holder: LocalRepo;
  readonly repo: ClusterRepoClient;
  readonly tails: RoutedTailClient;
  /** This node's log tail: serves the collections whose tail group it leads. */
  readonly tailHost: LogTail;
  readonly reader: BlockReader;
  /** Checks that certificates name their log block's recorded members. */
  readonly membership: MembershipCheck;
  private readonly tailBlocks: TailBlocks;
  private network: NetworkNode | undefined;
  /** The consensus edge, once attached: log writes carry its decisions to the members. */
  private decisions: DecisionCarrier | undefined;
  private maintenance: NodeJS.Timeout | undefined;
  private readonly excluded = new Set<string>();
  private readonly memberAbsentMs: number;
  private readonly unsubscribe: (() => void)[] = [];
  /** Whether a peer met for the first time holds this database (DatabaseMarks). */
  private readonly marks: DatabaseMarks;
  /** Peers found to hold another database: never admitted, greeted or counted (until they reconnect). */
  private readonly foreign = new Map<string, Clash>();
  private readonly foreignListeners: ((peer: string, clash: Clash) => void)[] = [];
  private readonly clockListeners: ((peer: string, offsetMs: number) => void)[] = [];
  /** What this node knows of its peers' clocks (from the times their pends, prepares and hellos carry). */
  readonly clocks = new PeerClocks((peer, offsetMs) => {
    for (const listener of this.clockListeners) listener(peer, offsetMs);
  });

  constructor(
    private readonly components: ClusterComponents,
    init: ClusterInit,
  ) {
    const self = components.self;
    this.placement = new Placement(self, init.k ?? 5, components.knownMembers ?? [], () =>
      components.clock.now(),
    );
    this.memberAbsentMs = init.memberAbsentMs ?? limits.memberAbsentMs;
    this.marks = new DatabaseMarks(components.catalog, components.blocks);
    this.certifier = new NetworkCertifier(components.proposer, init.network);
    this.holder = new LocalRepo(
      { blocks: components.blocks, certifier: this.certifier },
      { members: [self] },
    );
    const network = (): NetworkNode | undefined => this.network;
    this.repo = new ClusterRepoClient({
      local: this.holder,
      clock: components.clock,
      blocks: components.blocks,
      placement: this.placement,
      network,
      decisions: () => this.decisions,
      learn: (members) => this.learn(members),
      ...(components.deferred !== undefined ? { deferred: components.deferred } : {}),
    });
    this.tailBlocks = new TailBlocks(components.blocks, this.repo, this.placement);
    this.tailHost = new LogTail(
      {
        blocks: this.tailBlocks,
        repo: this.repo,
        certifier: this.certifier,
        clock: components.clock,
        rng: components.rng,
        peers: { outcomeOf: (collection, trxId) => this.tails.outcomeOf(collection, trxId) },
      },
      {
        members: [self],
        // Every log block is a consensus group of its own: larger blocks mean fewer groups to elect
        // and keep alive (each heartbeats), at the price of longer catch-up pulls.
        entriesPerBlockMax: networkLogEntriesPerBlockMax,
        membersFor: (id) => this.membersFor(id),
        shouldSeal: (tail) => this.outgrown(tail.members),
        // membersFor lists a group nearest the block first: its leader while that member is live.
        leads: (id) => this.membersFor(id)[0] === self,
        // A member that served a collection's tail and then lost it (another took over, a seal moved
        // the log to a group without it) must not answer views from what it cached then.
        viewFreshMs: tailViewFreshMs,
        resolveElsewhere: (collection, nodes) => this.askToResolve(collection, nodes),
        ...(components.coordinatorId !== undefined ? { coordinatorId: components.coordinatorId } : {}),
        refresh: () => this.tailBlocks.forget(),
        refreshBlock: (id) => this.tailBlocks.forget([id]),
      },
    );
    this.tails = new RoutedTailClient({
      local: this.tailHost,
      clock: components.clock,
      placement: this.placement,
      cluster: this.repo,
      network,
      membership: new MembershipCheck((id) => this.recordedMembers(id)),
      stale: (collection) => this.stale(collection),
      promoted: (trxId) => this.tailBlocks.promotedHere(trxId),
    });
    // A commit promoted with its log write has reached its blocks: the checkpoint may move.
    this.tailBlocks.onPromoted = (collection, lsn) =>
      void this.tailHost.propagated(collection, lsn).catch(() => undefined);
    const repo = this.repo;
    this.reader = {
      latest: (id) => repo.get({ blockId: id }),
      at: (id, point) => repo.at(id, point.rev),
      history: (id) => repo.history(id),
      pendingOf: (id) => repo.pendingOf(id),
    };
    this.membership = new MembershipCheck((id) => this.recordedMembers(id));
    this.repo.membership = this.membership;
  }

  /** The members recorded in a log block (held here, else asked of its cluster). */
  private async recordedMembers(logBlockId: BlockId): Promise<readonly string[] | undefined> {
    const state =
      (await this.components.blocks.latest(logBlockId)) ?? (await this.repo.get({ blockId: logBlockId }));
    return isLogBlock(state?.block) ? state.block.members : undefined;
  }

  /**
   * Whether to run a consensus group another member started here: its members must be those
   * recorded in its log block, or — for a log block being created, not stored anywhere yet — the
   * block's cluster as this node sees it. Anything else would let any peer make this node persist
   * promises for made-up groups.
   */
  async admitGroup(group: {
    readonly blockId: string;
    readonly members: readonly string[];
  }): Promise<boolean> {
    if (sameMembers(group.members, this.placement.clusterOf(group.blockId))) return true;
    if (sameMembers(group.members, this.membersFor(group.blockId))) return true;
    const recorded = await this.recordedMembers(group.blockId).catch(() => undefined);
    return recorded !== undefined && sameMembers(group.members, recorded);
  }

  /**
   * The membership a new log block records: the k members nearest the block among those eligible
   * now — not proven to have equivocated, not unreachable for memberAbsentMs or longer.
   */
  membersFor(blockId: BlockId): readonly string[] {
    const eligible = this.eligible();
    if (eligible.length === this.placement.members().length) return this.placement.clusterOf(blockId);
    if (eligible.length === 0) return this.placement.clusterOf(blockId);
    return leadershipOrder(blockId, eligible).slice(0, this.placement.k);
  }

  /** Members a new tail group may name (this node always). */
  private eligible(): string[] {
    return this.placement
      .members()
      .filter(
        (member) =>
          member === this.placement.self ||
          (!this.excluded.has(member) && this.placement.unreachableFor(member) < this.memberAbsentMs),
      );
  }

  /**
   * A member signed two values for one slot and ballot (the proof is logged by the consensus edge):
   * it is left out of every group recorded from now on, and the tails this node serves seal their
   * groups at once if it is in them.
   */
  exclude(member: string): void {
    if (member === this.placement.self || this.excluded.has(member)) return;
    this.excluded.add(member);
    this.regroup();
  }

  /**
   * Serves the repo and tail protocols on a started network node and learns who the members are.
   * `decisions` (the node's consensus edge) lets log writes carry the decisions they record.
   */
  async attach(network: NetworkNode, decisions?: DecisionCarrier): Promise<void> {
    this.network = network;
    this.decisions = decisions;
    network.trust((peer) => this.placement.isLive(peer));
    const parts = {
      membership: this.membership,
      remember: (peer: string) => this.welcome(peer),
      repo: this.holder,
      blocks: this.components.blocks,
      placement: this.placement,
      catalog: this.components.catalog,
      clock: this.components.clock,
      clocks: this.clocks,
      decisions: () => this.decisions,
      learn: (members: readonly string[]) => this.learn(members),
      differs: (peer: string, digest: string) => this.differs(peer, digest),
      // A member that restarted greets everyone: what its previous process left prepared in the
      // collections this node's tail holds is decided now, not at its expiry.
      greeted: (coordinator: string) =>
        void this.tailHost.resolveRestarted(coordinator).catch(() => undefined),
      admit: (peer: string, theirs: unknown, empty: boolean) => this.admit(peer, theirs, empty),
      marks: () => this.marks.marks(),
      checkMarks: (peer: string, theirs: unknown) => this.checkMarks(peer, theirs),
    };
    await network.handle(
      repoProtocolName,
      (request, context) => serveRepoRequest(parts, request, context.peerId),
      {
        validate: validateRepoRequest,
      },
    );
    await network.handle(
      tailProtocolName,
      (request, context) =>
        serveTailRequest(
          this.tailHost,
          this.placement,
          this.membership,
          request,
          context.peerId,
          (collection) => this.stale(collection),
          (trxId) => this.tailBlocks.promotedHere(trxId),
          (peer) => this.greet(peer),
          this.components.clock,
          this.clocks,
        ),
      { validate: validateTailRequest },
    );
    this.unsubscribe.push(
      network.on('peer:connect', (peer) => {
        // A new connection is a new chance: the peer may have been started on another directory.
        this.foreign.delete(peer);
        this.placement.connected(peer);
        void this.greet(peer);
      }),
      network.on('peer:disconnect', (peer) => {
        this.placement.remove(peer);
        this.foreign.delete(peer);
      }),
    );
    for (const peer of network.peers()) this.placement.connected(peer.id);
    await Promise.all(network.peers().map((peer) => this.greet(peer.id)));
    // Groups that could not grow when members joined (their leader was busy or away) try again.
    this.maintenance = setInterval(() => {
      this.regroup();
      void this.tailHost.resolveExpired(this.components.clock.now());
      // A hello lost on a connection that stayed up would leave the peer "not live" for good.
      const current = this.network;
      if (current !== undefined)
        for (const peer of current.peers()) if (!this.placement.isLive(peer.id)) void this.greet(peer.id);
    }, regroupIntervalMs);
    this.maintenance.unref();
  }

  /**
   * An expired prepared entry's group is led elsewhere (an older log block's group, or one this node
   * is not in): ask those nodes to resolve the collection's expired entries.
   */
  private askToResolve(collection: string, nodes: readonly string[]): void {
    const network = this.network;
    if (network === undefined) return;
    for (const node of nodes) {
      if (node === this.placement.self) continue;
      void network.request(node, tailProtocolName, { type: 'resolve', collection }).catch(() => undefined);
    }
  }

  /** A tail request failed here: reload the collection's log (and re-pull its blocks) next time. */
  private stale(collection: string): void {
    if (collection === '') {
      this.tailBlocks.forget();
      return;
    }
    // Only that collection's header and log blocks are pulled again; other collections' stay.
    this.forgetCollection(collection);
  }

  /**
   * Another node decided something in a group this node is in: cached tail state may be stale. Given
   * the group's block id (its log block), only the collection whose log that is is reloaded; for a
   * group whose log this node never read, and without it, every collection.
   */
  decidedElsewhere(blockId?: BlockId): void {
    const collection = blockId === undefined ? undefined : this.tailBlocks.collectionOfLog(blockId);
    if (collection !== undefined) {
      this.forgetCollection(collection);
      return;
    }
    if (blockId === undefined) {
      this.forgetEverything();
      return;
    }
    // A group whose log block this tail never read — a collection whose tail another member leads,
    // or the successor a seal created for a collection this node serves from the block before. Its
    // own copy of the block names the collection (a member holds its group's log block); only when
    // it holds none may whatever it cached be stale. Forgetting every collection here made each
    // follower of another member's tail reload the logs it leads itself at every decision there.
    void this.tailBlocks.collectionOfLogHeld(blockId).then((named) => {
      if (named === undefined) this.forgetEverything();
      else this.forgetCollection(named);
    });
  }

  private forgetCollection(collection: string): void {
    this.tailBlocks.forget(this.tailBlocks.blocksOf(collection));
    void this.tailHost.forget(collection);
  }

  private forgetEverything(): void {
    this.tailBlocks.forget();
    this.tailHost.forgetAll();
  }

  /** Members the repo protocol knows, this node included. */
  members(): readonly string[] {
    return this.placement.members();
  }

  async detach(): Promise<void> {
    clearInterval(this.maintenance);
    for (const off of this.unsubscribe.splice(0)) off();
    const network = this.network;
    this.network = undefined;
    if (network !== undefined) {
      await network.unhandle(repoProtocolName).catch(() => undefined);
      await network.unhandle(tailProtocolName).catch(() => undefined);
    }
  }

  /** A member met for the first time: remembered across restarts, and given its share of the blocks. */
  private async welcome(peer: string): Promise<void> {
    await this.components.rememberMember?.(peer);
    this.rebalance(peer);
    this.regroup();
  }

  /**
   * A tail group smaller than its cluster could now be (members joined since it was recorded) hands
   * over to a successor group of k members, so a collection outlives the nodes it started on.
   */
  private outgrown(recorded: readonly string[]): boolean {
    const eligible = this.eligible();
    const allowed = new Set(eligible);
    if (recorded.some((member) => !allowed.has(member))) return true;
    return recorded.length < Math.min(this.placement.k, eligible.length);
  }

  /** Reconfigures, in the background, the tails this node serves whose groups are outgrown. */
  private regroup(): void {
    for (const collection of this.tailHost.collections())
      void this.tails.reconfigure(collection).catch(() => undefined);
  }

  /**
   * A new member joined some clusters: hand it every block held here whose cluster now includes it
   * (in the background, one block at a time), as a majority of the cluster holds it
   * (ClusterRepoClient.handOff), not as this node's copy, which may be behind. Holders skip revisions
   * they already have.
   */
  private rebalance(peer: string): void {
    const blocks = this.components.blocks;
    if (blocks.ids === undefined) return;
    void (async () => {
      for await (const id of blocks.ids!()) {
        if (this.network === undefined) return;
        if (!this.placement.clusterOf(id).includes(peer)) continue;
        await this.repo.handOff(id, peer).catch(() => undefined);
      }
    })().catch(() => undefined);
  }

  /**
   * Asks a newly connected peer whether it is a member (light clients do not serve the repo
   * protocol). The hello carries this node's member list and the answer the peer's: each side learns
   * the members the other knows.
   */
  private async greet(peer: string): Promise<void> {
    const network = this.network;
    if (network === undefined || this.foreign.has(peer)) return;
    try {
      const answer = await network.request<{
        members?: unknown;
        collections?: unknown;
        foreign?: unknown;
        now?: unknown;
      }>(peer, repoProtocolName, {
        type: 'hello',
        now: this.components.clock.now(),
        members: this.placement.members().slice(0, membersListedMax),
        ...(this.components.coordinatorId !== undefined
          ? { coordinator: this.components.coordinatorId }
          : {}),
        ...(await this.marksToSend()),
      });
      if (typeof answer?.now === 'number') this.clocks.observe(peer, answer.now, this.components.clock.now());
      // The peer found this node to hold another database (its view: `here` is its copy), or this
      // node finds it so. A member admitted before is not checked again (DatabaseMarks).
      const refused = fromTheirSide(answer?.foreign);
      if (refused !== undefined) {
        this.refuse(peer, refused);
        return;
      }
      if (!this.placement.isMember(peer) && (await this.checkMarks(peer, answer?.collections)) !== undefined)
        return;
      if (this.placement.add(peer)) await this.welcome(peer);
      if (Array.isArray(answer?.members))
        this.learn(answer.members.filter((m): m is string => typeof m === 'string'));
    } catch (error) {
      void toEngineError(error);
    }
  }

  /**
   * Members another member named: counted in every cluster from now on (Placement.introduce),
   * remembered across restarts like members met, and greeted (in the background) so they become
   * reachable — and get the blocks of their clusters from here (welcome) once they answer.
   */
  private learn(members: readonly string[]): void {
    for (const member of members) {
      if (this.foreign.has(member) || !this.placement.introduce(member)) continue;
      void this.components.rememberMember?.(member).catch(() => undefined);
      void this.greet(member);
    }
  }

  /**
   * Whether a peer that greeted this node and is no member yet holds this database, checked both
   * ways before it is admitted: its collections against the headers held here, then this node's
   * against those it holds (a `marks` request). The clash, from this node's side, if any (the peer is
   * then refused). A peer that cannot answer the second check is admitted, as before the check
   * existed.
   */
  private async admit(peer: string, theirs: unknown, empty: boolean): Promise<Clash | undefined> {
    const clash = await this.checkMarks(peer, theirs);
    // A peer that holds no block holds no header to clash with; with no collections here, neither.
    if (clash !== undefined || empty) return clash;
    const mine = await this.marks.marks().catch((): Marks => ({}));
    if (Object.keys(mine).length === 0) return undefined;
    const answer = await this.network
      ?.request<unknown>(peer, repoProtocolName, { type: 'marks', collections: mine })
      .catch(() => undefined);
    const found = fromTheirSide(answer);
    if (found !== undefined) this.refuse(peer, found);
    return found;
  }

  /** A peer's collections (unchecked) against the headers held here: the clash, if any, refuses it. */
  private async checkMarks(peer: string, theirs: unknown): Promise<Clash | undefined> {
    const clash = await this.marks.clash(theirs);
    if (clash !== undefined) this.refuse(peer, clash);
    return clash;
  }

  /**
   * What a hello says of this node's database: its collections by creating transaction, when it has
   * any, and `empty` when it holds no block at all (a peer then has nothing to check there).
   */
  private async marksToSend(): Promise<{ collections?: Marks; empty?: true }> {
    // What cannot be read is not sent: the peer then checks as it did before hellos carried it.
    const marks = await this.marks.marks().catch((): Marks => ({}));
    let empty = false;
    try {
      const ids = this.components.blocks.ids?.();
      if (ids !== undefined) {
        empty = true;
        for await (const _id of ids) {
          empty = false;
          break;
        }
      }
    } catch {
      empty = false;
    }
    return {
      ...(Object.keys(marks).length > 0 ? { collections: marks } : {}),
      ...(empty ? { empty: true as const } : {}),
    };
  }

  /**
   * Calls `listener` for each peer found to hold another database (once per connection to it). Such
   * a peer is not a member: it is not greeted again, nor counted in any cluster, while it stays
   * connected. Returns a function that removes the listener.
   */
  onForeign(listener: (peer: string, clash: Clash) => void): () => void {
    this.foreignListeners.push(listener);
    return () => {
      const at = this.foreignListeners.indexOf(listener);
      if (at >= 0) this.foreignListeners.splice(at, 1);
    };
  }

  /**
   * Calls `listener` when a peer's clock offset (its clock minus this node's, ms) is first estimated
   * and whenever the estimate moves by a second or more (PeerClocks). Returns a function that removes
   * the listener.
   */
  onClockOffset(listener: (peer: string, offsetMs: number) => void): () => void {
    this.clockListeners.push(listener);
    return () => {
      const at = this.clockListeners.indexOf(listener);
      if (at >= 0) this.clockListeners.splice(at, 1);
    };
  }

  /** Connected peers found to hold another database, with what showed it. */
  foreignPeers(): ReadonlyMap<string, Clash> {
    return this.foreign;
  }

  private refuse(peer: string, clash: Clash): void {
    if (this.foreign.has(peer)) return;
    this.foreign.set(peer, clash);
    // Named by a member (it met the peer before finding it foreign, or never checked), never met here.
    if (this.placement.forgetIntroduced(peer))
      void this.components.forgetMember?.(peer).catch(() => undefined);
    for (const listener of [...this.foreignListeners]) listener(peer, clash);
  }

  /** Member digests last exchanged with each peer after a request showed they differ. */
  private readonly exchanged = new Map<string, string>();

  /**
   * A request's asker knows other members than this node (its digest differs): it is sent this
   * node's list with the answer; this node asks for its list with a hello (once per digest it shows).
   */
  private differs(peer: string, digest: string): void {
    if (this.exchanged.get(peer) === digest) return;
    if (this.exchanged.size >= membersListedMax) this.exchanged.clear();
    this.exchanged.set(peer, digest);
    void this.greet(peer);
  }
}

/** A clash the peer found (its `here` is its own copy), from this node's side, if well formed. */
function fromTheirSide(value: unknown): Clash | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const { collection, here, there } = value as Record<string, unknown>;
  return typeof collection === 'string' && typeof here === 'string' && typeof there === 'string'
    ? { collection, here: there, there: here }
    : undefined;
}
