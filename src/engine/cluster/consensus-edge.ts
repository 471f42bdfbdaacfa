/**
 * The libp2p edge of the consensus core: every consensus group this node is a member of runs behind a
 * GroupDriver here, its messages travel on the `consensus` protocol, and its state is persisted in
 * the node's store. Members are peer ids; libp2p authenticates who sent a message, the core checks
 * everything else (ballots, votes, certificates). See docs/consensus.md.
 *
 * - A message is `{ type: 'msg', members, message }`. It is dropped (and counted) unless its sender
 *   and this node are both in `members` and `members` hashes to the message's membership. A group is
 *   started on its first Paxos message, or a heartbeat marked `wake` (sent while the sender has
 *   proposals waiting or saw Paxos traffic lately); a plain heartbeat starts nothing, so a group that
 *   went idle everywhere stays stopped. Groups are keyed by block id AND membership, so a made-up
 *   membership for a real block is a separate, harmless group.
 * - Sends are fire-and-forget: failures are counted, the core retransmits. Messages for one peer are
 *   gathered and leave together, one `batch` request per peer at a time (every group's heartbeats,
 *   votes and decisions alike): `Heartbeat` waits a little (`heartbeatHoldMs`) for other traffic to
 *   ride with, and a member's direct answers to a batch
 *   (`Accepted`, `Nack`, `Heartbeat`) go back in the batch's reply instead of a request of their own.
 *   At most `sendsPerPeerMax` requests are on their way to one peer; more are dropped, so a dead peer
 *   pins nothing.
 * - A proposal goes to the local core only. A member that does not lead answers UNAVAILABLE with
 *   `details.leader`; the caller takes it to that node (proposals are never forwarded here).
 * - Groups idle for `groupIdleMs` (or the least recently active, when `groupsHostedMax` are running)
 *   are stopped; their state stays on disk and the group restarts from it on its next message.
 */
import { systemClock, type Clock } from '../base/clock.js';
import { EngineError, isEngineError } from '../base/errors.js';
import { isBlockId } from '../base/ids.js';
import { limits } from '../base/limits.js';
import type { ConsensusInit, ConsensusState } from '../consensus/core.js';
import { GroupDriver, type ConsensusStore, type ConsensusTransport } from '../consensus/driver.js';
import type { ConsensusProposer } from '../consensus/memory-network.js';
import type {
  ConsensusCertificate,
  ConsensusGroup,
  ConsensusMessage,
  ConsensusValue,
  EquivocationProof,
  SignatureVerifier,
  VoteSigner,
} from '../consensus/types.js';
import { isMemberList } from '../consensus/values.js';
import type { NetworkNode, RequestContext } from '../network/index.js';
import { membershipHash } from '../transactions/certifier.js';
import {
  consensusProtocolName,
  consensusWire,
  consensusWireItemsMax,
  consensusWireReply,
  type ConsensusWireItem,
  type ConsensusWireMessage,
  type ConsensusWireReply,
} from './consensus-wire.js';

/**
 * How long a `Decided` waits for something else going to the same peer to ride with: the next batch
 * of consensus messages, or the tail's log write to that member, which takes it (`takeDecided`) so
 * the member learns the decision with the log entry it records. Without that, a decision would cost
 * a request per member of its own. Short: a member that serves a tail's `view` from its cached log
 * (it is not the leader) drops that cache when it hears of a decision of the group, and a log write
 * that does not come (the leader failed) must not leave the members uninformed for long.
 */
const decidedHoldMsDefault = 50;
/** Bytes of `Decided` messages one request to a member may carry besides its own content. */
const carriedBytesMax = 64 * 1024;
/**
 * How long a `Heartbeat` waits for other traffic to the same peer. Far below the suspicion period, and
 * long enough that the heartbeats of groups ticking at different times leave together.
 */
const heartbeatHoldMsDefault = 250;

/** What the edge needs of the network node. */
export type ConsensusNetworkPort = Pick<
  NetworkNode,
  'peerId' | 'network' | 'handle' | 'unhandle' | 'request'
>;

export interface NetworkConsensusComponents {
  readonly network: ConsensusNetworkPort;
  /** Durable consensus state (RawConsensusStore in a node); group ids are `<block id>.<membership>`. */
  readonly store: ConsensusStore;
  /** This node's vote signer; its id must be the network node's peer id (see nodeVoteSigner). */
  readonly signer: VoteSigner;
  readonly clock?: Clock;
  readonly verify?: SignatureVerifier;
}

export interface NetworkConsensusInit extends ConsensusInit {
  /** The consensus network name votes are bound to (default: the network node's name). */
  readonly network?: string;
  /** How often every running core is ticked (default limits.consensusTickMs). */
  readonly tickMs?: number;
  /** Groups running at once (default limits.consensusGroupsHostedMax). */
  readonly groupsHostedMax?: number;
  /** A group without proposals, decisions or Paxos traffic for this long is stopped (default limits.consensusGroupIdleMs). */
  readonly groupIdleMs?: number;
  /** Messages on their way to one peer (default limits.consensusSendsPerPeerMax). */
  readonly sendsPerPeerMax?: number;
  /** Deadline of one send (default limits.consensusSendTimeoutMs). */
  readonly sendTimeoutMs?: number;
  /** How long a Decided message waits for other messages to the same peer (default 0: none). */
  readonly decidedHoldMs?: number;
  /** How long a Heartbeat waits for other messages to the same peer (default 250 ms; 0: none). */
  readonly heartbeatHoldMs?: number;
  /**
   * Whether to run a group another member asks this node to join (its first message names it). The
   * composition root checks the block records that membership; by default every group that names
   * this node is run. Local proposals are not asked about.
   */
  readonly admitGroup?: (group: ConsensusGroup) => boolean | Promise<boolean>;
}

/** Why an inbound consensus message was dropped by the edge (the core counts its own reasons). */
export const edgeDropReasons = [
  /** Failed the wire schema (counted; the request is answered BAD_INPUT or reset). */
  'malformed',
  /** The message is for another consensus network. */
  'wrong-network',
  /** The authenticated sender is not in `members`. */
  'sender-not-member',
  /** This node is not in `members`. */
  'self-not-member',
  /** `members` does not hash to the message's membership. */
  'wrong-membership',
  /** A heartbeat without `wake` for a group not running here (it starts nothing). */
  'group-not-running',
  /** `admitGroup` refused the group. */
  'group-refused',
  /** Every group slot is busy with proposals in flight. */
  'groups-full',
  /** The group could not be started or its step failed (store error). */
  'failed',
] as const;
export type EdgeDropReason = (typeof edgeDropReasons)[number];

export interface NetworkConsensusStats {
  /** Groups running now. */
  readonly groups: number;
  /** Groups stopped for being idle (or to make room) since start. */
  readonly groupsStopped: number;
  readonly dropped: Readonly<Record<EdgeDropReason, number>>;
  /** Requests (each a batch of messages) that failed (peer unreachable, timeout, refused). */
  readonly sendsFailed: number;
  /** Messages dropped because too many were on their way to the peer already. */
  readonly sendsDropped: number;
  /** Requests on their way now. */
  readonly sendsInflight: number;
  /** Requests sent (each carries one or more messages). */
  readonly batchesSent: number;
  /** Messages sent, in batches or in replies. */
  readonly messagesSent: number;
  /** Messages sent back in the reply to a batch (answers that needed no request of their own). */
  readonly messagesInReplies: number;
  /** `Decided` messages that rode on another request to the member (a tail's log write). */
  readonly messagesCarried: number;
  /** Equivocation proofs reported since start. */
  readonly equivocations: number;
}

/**
 * A decision of a group this node runs, in slot order per group. `proposedHere`: it answers a
 * proposal made through this edge. A group restarted from disk reports its decisions again, so
 * listeners must be idempotent.
 */
export type DecidedListener = (
  blockId: string,
  slot: number,
  value: ConsensusValue,
  certificate: ConsensusCertificate,
  proposedHere: boolean,
) => void;

export type EquivocationListener = (proof: EquivocationProof) => void;

interface Running {
  readonly key: string;
  readonly group: ConsensusGroup;
  readonly driver: GroupDriver;
  readonly ready: Promise<void>;
  started: boolean;
  ticking: boolean;
  /** Local proposals waiting; a group with any is never stopped. */
  proposals: number;
  /** Last proposal, decision or Paxos message (heartbeats aside), or the start: idle time counts from it. */
  lastActive: number;
  /** Last local proposal or Paxos message received (not the start): while recent, heartbeats wake other members. */
  lastWork: number;
}

/** Messages waiting to go to one peer. */
interface Outbox {
  /** To leave with the next batch (scheduled at once). */
  readonly ready: ConsensusWireItem[];
  /** Decisions and heartbeats waiting for other traffic, until `heldUntil`. */
  readonly held: ConsensusWireItem[];
  heldUntil: number;
  timer: NodeJS.Timeout | undefined;
  scheduled: boolean;
}

/** Peers remembered as down (`NetworkConsensus.suspect`); all are forgotten when full (only a hint). */
const downPeersMax = 4096;

/** Messages a member answers inline, in the reply to the batch that caused them (all small). */
function answersInline(message: ConsensusMessage): boolean {
  return message.type === 'Accepted' || message.type === 'Nack' || message.type === 'Heartbeat';
}

/** The id a group's state is stored under: block id and membership hash (both base64url). */
export function consensusGroupId(blockId: string, membership: string): string {
  return `${blockId}.${membership}`;
}

export class NetworkConsensus implements ConsensusProposer, ConsensusTransport {
  private readonly clock: Clock;
  private readonly networkName: string;
  private readonly groups = new Map<string, Running>();
  /** Stopped drivers still finishing their step, by group id: a restart of the group waits for them. */
  private readonly draining = new Map<string, Promise<void>>();
  private readonly inflight = new Map<string, number>();
  private readonly decidedListeners = new Set<DecidedListener>();
  private readonly equivocationListeners = new Set<EquivocationListener>();
  private readonly proofs: EquivocationProof[] = [];
  private readonly dropped = Object.fromEntries(edgeDropReasons.map((r) => [r, 0])) as Record<
    EdgeDropReason,
    number
  >;
  private counters = {
    groupsStopped: 0,
    sendsFailed: 0,
    sendsDropped: 0,
    sendsInflight: 0,
    batchesSent: 0,
    messagesSent: 0,
    messagesInReplies: 0,
    messagesCarried: 0,
    equivocations: 0,
  };
  /** Messages gathered per peer. */
  private readonly outboxes = new Map<string, Outbox>();
  /** Per peer, the replies of batches from it being handled now (the latest takes answers). */
  private readonly replying = new Map<string, ConsensusWireItem[][]>();
  private readonly decidedHoldMs: number;
  private readonly heartbeatHoldMs: number;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly tickMs: number;
  private readonly groupsHostedMax: number;
  private readonly groupIdleMs: number;
  private readonly sendsPerPeerMax: number;
  private readonly sendTimeoutMs: number;
  /** How long after its last work a group's heartbeats still wake members that stopped it. */
  private readonly wakeWindowMs: number;

  private constructor(
    private readonly components: NetworkConsensusComponents,
    private readonly init: NetworkConsensusInit,
  ) {
    if (components.signer.id !== components.network.peerId)
      throw new EngineError(
        'CONFIG_INVALID',
        'the consensus signer must be the network identity (its peer id)',
      );
    this.clock = components.clock ?? systemClock;
    this.networkName = init.network ?? components.network.network;
    this.tickMs = positive(init.tickMs ?? limits.consensusTickMs, 'tickMs');
    this.groupsHostedMax = positive(
      init.groupsHostedMax ?? limits.consensusGroupsHostedMax,
      'groupsHostedMax',
    );
    this.groupIdleMs = positive(init.groupIdleMs ?? limits.consensusGroupIdleMs, 'groupIdleMs');
    this.sendsPerPeerMax = positive(
      init.sendsPerPeerMax ?? limits.consensusSendsPerPeerMax,
      'sendsPerPeerMax',
    );
    this.sendTimeoutMs = positive(init.sendTimeoutMs ?? limits.consensusSendTimeoutMs, 'sendTimeoutMs');
    this.decidedHoldMs = nonNegative(init.decidedHoldMs ?? decidedHoldMsDefault, 'decidedHoldMs');
    this.heartbeatHoldMs = nonNegative(init.heartbeatHoldMs ?? heartbeatHoldMsDefault, 'heartbeatHoldMs');
    // Long enough for the woken members' heartbeats to be heard before anyone is suspected.
    this.wakeWindowMs = 2 * (init.timing?.suspectAfterMs ?? limits.consensusSuspectAfterMs);
  }

  /** Serves the `consensus` protocol and starts ticking. */
  static async start(
    components: NetworkConsensusComponents,
    init: NetworkConsensusInit = {},
  ): Promise<NetworkConsensus> {
    const edge = new NetworkConsensus(components, init);
    await components.network.handle<ConsensusWireMessage>(
      consensusProtocolName,
      (wire, context) => edge.onWire(wire, context),
      {
        validate: (value) => {
          try {
            return consensusWire(value);
          } catch (error) {
            edge.dropped.malformed += 1;
            throw error;
          }
        },
      },
    );
    edge.timer = setInterval(() => edge.tick(), edge.tickMs);
    edge.timer.unref();
    return edge;
  }

  /** This member's id (the node's peer id). */
  get id(): string {
    return this.components.signer.id;
  }

  /**
   * Gets `value` decided by `group` through this member's core and returns its certificate. Throws
   * UNAVAILABLE when this node is not a member, or (with `details.leader`) when it does not lead;
   * NO_QUORUM, TIMEOUT and the other rejections as `rejectionError` maps them.
   */
  async propose(group: ConsensusGroup, value: ConsensusValue): Promise<ConsensusCertificate> {
    if (this.stopped) throw new EngineError('UNAVAILABLE', 'consensus is stopped on this node');
    if (group.network !== this.networkName)
      throw new EngineError(
        'BAD_INPUT',
        `the group belongs to network ${group.network}, not ${this.networkName}`,
      );
    if (!isBlockId(group.blockId) || !isMemberList(group.members))
      throw new EngineError('BAD_INPUT', 'a consensus group is a block id and sorted, distinct member ids');
    if (!group.members.includes(this.id))
      throw new EngineError('UNAVAILABLE', 'this node is not a member of the consensus group', {
        members: [...group.members],
      });
    const running = await this.run(group);
    if (running === undefined)
      throw new EngineError(
        'UNAVAILABLE',
        'this node runs too many consensus groups with proposals in flight',
      );
    running.proposals += 1;
    running.lastActive = running.lastWork = this.clock.now();
    try {
      return await running.driver.propose(value);
    } finally {
      running.proposals -= 1;
      running.lastActive = this.clock.now();
    }
  }

  /** Sends a message of a running group (the transport of its driver); best effort. */
  send(_from: string, to: string, message: ConsensusMessage): void {
    const running = this.groups.get(consensusGroupId(message.blockId, message.membership));
    if (running === undefined) {
      this.counters.sendsDropped += 1;
      return;
    }
    this.sendTo(to, running, message);
  }

  /**
   * Takes the `Decided` messages held for `peer` that have not left yet, for a request about to go to
   * that peer anyway (the tail's log write to a member) to carry; the peer hands them to `deliver`.
   * Lost with that request, they are lost like any message: delivery only, never safety. At most
   * `bytesMax` of encoded messages (and a batch's item count) are taken; the rest stay held.
   */
  takeDecided(peer: string, bytesMax: number = carriedBytesMax): ConsensusWireItem[] {
    const box = this.outboxes.get(peer);
    if (box === undefined) return [];
    const taken: ConsensusWireItem[] = [];
    const kept: ConsensusWireItem[] = [];
    let bytes = 0;
    for (const item of box.held) {
      if (item.message.type !== 'Decided' || taken.length >= consensusWireItemsMax) {
        kept.push(item);
        continue;
      }
      const size = JSON.stringify(item).length;
      if (bytes + size > bytesMax) kept.push(item);
      else {
        taken.push(item);
        bytes += size;
      }
    }
    if (taken.length === 0) return [];
    box.held.splice(0, box.held.length, ...kept);
    if (box.held.length === 0 && box.ready.length === 0 && !box.scheduled) {
      clearTimeout(box.timer);
      this.outboxes.delete(peer);
    }
    this.counters.messagesSent += taken.length;
    this.counters.messagesCarried += taken.length;
    return taken;
  }

  /**
   * Hands `Decided` messages another request carried from `from` (see `takeDecided`) to their groups'
   * cores, checked as if they had come in a batch. Anything else, or a malformed list, is dropped.
   */
  async deliver(from: string, items: readonly unknown[]): Promise<void> {
    if (this.stopped || items.length === 0) return;
    let wire: ConsensusWireMessage;
    try {
      wire = consensusWire({ type: 'batch', items });
    } catch {
      this.dropped.malformed += 1;
      return;
    }
    if (wire.type !== 'batch') return;
    const decided = wire.items.filter((item) => item.message.type === 'Decided');
    for (let i = decided.length; i < wire.items.length; i++) this.count('malformed');
    await Promise.all(decided.map((item) => this.receive(from, item)));
  }

  /** Subscribes to decisions; returns the unsubscribe function. */
  onDecided(listener: DecidedListener): () => void {
    this.decidedListeners.add(listener);
    return () => this.decidedListeners.delete(listener);
  }

  /** Subscribes to equivocation proofs (each is also persisted with its group); returns the unsubscribe function. */
  onEquivocation(listener: EquivocationListener): () => void {
    this.equivocationListeners.add(listener);
    return () => this.equivocationListeners.delete(listener);
  }

  /** The latest equivocation proofs reported here (at most limits.consensusEquivocationsKeptMax). */
  equivocations(): readonly EquivocationProof[] {
    return [...this.proofs];
  }

  stats(): NetworkConsensusStats {
    return { groups: this.groups.size, dropped: { ...this.dropped }, ...this.counters };
  }

  /**
   * ConsensusProposer.votedBeyond: from the running group's state, else from what the store holds for
   * it (the group is not started for this).
   */
  async votedBeyond(group: Pick<ConsensusGroup, 'blockId' | 'members'>, lsn: number): Promise<boolean> {
    const key = consensusGroupId(group.blockId, membershipHash(group.members));
    const running = this.groups.get(key);
    const state = running?.started === true ? running.driver.snapshot : await this.components.store.load(key);
    if (state === null || state === undefined) return false;
    const beyond = (value: ConsensusValue): boolean => value.kind === 'entry' && (value.lsn ?? 0) > lsn;
    for (const accepted of state.accepted.values()) if (beyond(accepted.value)) return true;
    for (const decided of state.decided.values()) if (beyond(decided.value)) return true;
    return false;
  }

  /** The core state of a running group (status views and tests), or null when it is not running here. */
  state(group: Pick<ConsensusGroup, 'blockId' | 'members'>): ConsensusState | null {
    const running = this.groups.get(consensusGroupId(group.blockId, membershipHash(group.members)));
    return running?.started === true ? running.driver.snapshot : null;
  }

  /** Stops ticking and serving, stops every group (waiting proposals fail UNAVAILABLE). Safe to call twice. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    for (const box of this.outboxes.values()) clearTimeout(box.timer);
    this.outboxes.clear();
    await this.components.network.unhandle(consensusProtocolName).catch(() => undefined);
    const running = [...this.groups.values()];
    this.groups.clear();
    await Promise.allSettled([...running.map((r) => r.driver.stop()), ...this.draining.values()]);
  }

  // ---- inbound ----

  private async onWire(
    wire: ConsensusWireMessage,
    context: RequestContext,
  ): Promise<ConsensusWireReply | null> {
    const from = context.peerId;
    if (this.stopped) return null;
    if (wire.type === 'msg') {
      await this.receive(from, wire);
      return null;
    }
    // What the members' cores answer while the batch is handled goes back with the reply.
    const replies: ConsensusWireItem[] = [];
    let stack = this.replying.get(from);
    if (stack === undefined) this.replying.set(from, (stack = []));
    stack.push(replies);
    try {
      await Promise.all(wire.items.map((item) => this.receive(from, item)));
    } finally {
      stack.splice(stack.indexOf(replies), 1);
      if (stack.length === 0) this.replying.delete(from);
    }
    return replies.length > 0 ? { items: replies } : null;
  }

  /** Hands one message from a peer to its group's core (starting the group if it may be started). */
  /**
   * A peer's connection closed: every running group it is a member of suspects it downSuspectMs
   * after it was last heard, and so does each group started while it stays down, instead of after
   * suspectAfterMs of silence (a leader that died stalls its groups for less). Only leadership
   * depends on suspicion, never safety; a message from the peer, or its next connection, clears it.
   */
  suspect(peer: string): void {
    if (this.stopped || peer === this.id) return;
    let since = this.down.get(peer);
    if (since === undefined) {
      if (this.down.size >= downPeersMax) this.down.clear();
      since = this.clock.now();
      this.down.set(peer, since);
    }
    for (const running of this.groups.values())
      if (running.group.members.includes(peer)) void this.suspectIn(running, peer, since);
  }

  private async suspectIn(running: Running, peer: string, since: number): Promise<void> {
    await running.ready.catch(() => undefined);
    // The core acts on the suspicion at the next tick once due; a tick then is all it needs.
    await running.driver.suspect(peer, since).catch(() => undefined);
  }

  /** A connection to the peer came up: groups started from now on count it live again. */
  reachable(peer: string): void {
    this.down.delete(peer);
  }

  /** Peers whose connection closed and that have not been heard from since (`suspect`), and when. */
  private readonly down = new Map<string, number>();

  private async receive(from: string, item: ConsensusWireItem): Promise<void> {
    const { members, message } = item;
    if (this.stopped) return;
    this.down.delete(from);
    if (message.network !== this.networkName) return this.count('wrong-network');
    if (!isBlockId(message.blockId)) return this.count('malformed');
    if (!members.includes(from)) return this.count('sender-not-member');
    if (!members.includes(this.id)) return this.count('self-not-member');
    if (membershipHash(members) !== message.membership) return this.count('wrong-membership');
    const group: ConsensusGroup = { network: this.networkName, blockId: message.blockId, members };
    let running = this.groups.get(consensusGroupId(message.blockId, message.membership));
    if (running?.driver.halted === true) {
      this.stopGroup(running);
      running = undefined;
    }
    if (running === undefined) {
      // A plain heartbeat starts nothing (so groups that went idle everywhere stay stopped); one
      // from a member with work to do does, or that member could never count a quorum live.
      if (message.type === 'Heartbeat' && item.wake !== true) return this.count('group-not-running');
      const admit = this.init.admitGroup;
      if (admit !== undefined && !(await Promise.resolve(admit(group)).catch(() => false)))
        return this.count('group-refused');
      try {
        running = await this.run(group);
      } catch {
        return this.count('failed');
      }
      if (running === undefined) return this.count('groups-full');
    } else {
      await running.ready.catch(() => undefined);
    }
    if (message.type !== 'Heartbeat') running.lastActive = running.lastWork = this.clock.now();
    try {
      await running.driver.receive(from, message);
    } catch {
      this.count('failed');
    }
  }

  private count(reason: EdgeDropReason): void {
    this.dropped[reason] += 1;
  }

  private drop(reason: EdgeDropReason): null {
    this.dropped[reason] += 1;
    return null;
  }

  // ---- outbound ----

  /** Whether the group has work: proposals waiting here, or Paxos traffic within the wake window. */
  private awake(running: Running): boolean {
    return running.proposals > 0 || this.clock.now() - running.lastWork < this.wakeWindowMs;
  }

  private sendTo(to: string, running: Running, message: ConsensusMessage): void {
    if (this.stopped || to === this.id) return;
    const wake = this.awake(running);
    const members = running.group.members;
    const item: ConsensusWireItem = wake ? { members, message, wake } : { members, message };
    // An answer to a batch from that peer being handled now goes back with its reply.
    const replies = this.replying.get(to)?.at(-1);
    if (replies !== undefined && answersInline(message) && replies.length < consensusWireItemsMax) {
      replies.push(item);
      this.counters.messagesSent += 1;
      this.counters.messagesInReplies += 1;
      return;
    }
    let box = this.outboxes.get(to);
    if (box === undefined) {
      box = { ready: [], held: [], heldUntil: Infinity, timer: undefined, scheduled: false };
      this.outboxes.set(to, box);
    }
    if (box.ready.length + box.held.length >= consensusWireItemsMax * this.sendsPerPeerMax) {
      this.counters.sendsDropped += 1;
      return;
    }
    const holdMs =
      message.type === 'Decided'
        ? this.decidedHoldMs
        : message.type === 'Heartbeat'
          ? this.heartbeatHoldMs
          : 0;
    if (holdMs > 0) {
      box.held.push(item);
      const until = this.clock.now() + holdMs;
      if (until < box.heldUntil) {
        box.heldUntil = until;
        clearTimeout(box.timer);
        box.timer = setTimeout(() => this.flush(to), holdMs);
        box.timer.unref();
      }
      return;
    }
    box.ready.push(item);
    if (!box.scheduled) {
      box.scheduled = true;
      // Everything the cores send to this peer in this turn of the event loop leaves together.
      setImmediate(() => this.flush(to));
    }
  }

  /** Sends everything gathered for a peer, held messages first, in batches. */
  private flush(to: string): void {
    const box = this.outboxes.get(to);
    if (box === undefined) return;
    this.outboxes.delete(to);
    clearTimeout(box.timer);
    const items = [...box.held, ...box.ready];
    for (let i = 0; i < items.length; i += consensusWireItemsMax)
      this.sendBatch(to, items.slice(i, i + consensusWireItemsMax));
  }

  private sendBatch(to: string, items: readonly ConsensusWireItem[]): void {
    if (this.stopped || items.length === 0) return;
    const count = this.inflight.get(to) ?? 0;
    if (count >= this.sendsPerPeerMax) {
      this.counters.sendsDropped += items.length;
      return;
    }
    this.inflight.set(to, count + 1);
    this.counters.sendsInflight += 1;
    this.counters.batchesSent += 1;
    this.counters.messagesSent += items.length;
    let split: ConsensusWireItem[][] = [];
    this.components.network
      .request<ConsensusWireReply | null>(
        to,
        consensusProtocolName,
        { type: 'batch', items },
        { timeoutMs: this.sendTimeoutMs, validate: consensusWireReply },
      )
      .then((reply) => {
        // The peer's answers came back with the reply: they are messages from it like any other.
        for (const item of reply?.items ?? []) void this.receive(to, item);
      })
      .catch((error: unknown) => {
        // Too large for one frame (many big messages at once): each half goes on its own.
        if (isEngineError(error, 'TOO_LARGE') && items.length > 1) {
          const half = Math.ceil(items.length / 2);
          split = [items.slice(0, half), items.slice(half)];
          this.counters.messagesSent -= items.length;
          return;
        }
        this.counters.sendsFailed += 1;
      })
      .finally(() => {
        this.counters.sendsInflight -= 1;
        const left = (this.inflight.get(to) ?? 1) - 1;
        if (left <= 0) this.inflight.delete(to);
        else this.inflight.set(to, left);
        for (const part of split) this.sendBatch(to, part);
      });
  }

  // ---- groups ----

  /** The running group, started (from disk) if needed; undefined when no slot can be freed. */
  private async run(group: ConsensusGroup): Promise<Running | undefined> {
    const membership = membershipHash(group.members);
    const key = consensusGroupId(group.blockId, membership);
    let running = this.groups.get(key);
    // A driver whose persist failed stopped itself: start the group again from disk.
    if (running?.driver.halted === true) {
      this.stopGroup(running);
      running = undefined;
    }
    if (running === undefined) {
      if (this.groups.size >= this.groupsHostedMax && !this.makeRoom()) return undefined;
      running = this.startGroup(key, group);
    }
    await running.ready;
    return running;
  }

  private startGroup(key: string, recorded: ConsensusGroup): Running {
    const group: ConsensusGroup = Object.freeze({
      network: recorded.network,
      blockId: recorded.blockId,
      members: Object.freeze([...recorded.members]),
    });
    const store = this.components.store;
    // A group of one: its votes never leave this member, so their sync can wait for the log write's.
    const alone = group.members.length === 1 && group.members[0] === this.components.signer.id;
    const driver = new GroupDriver(
      {
        // The group's state is kept under its block id and membership.
        store: {
          load: () => store.load(key),
          persist: (_blockId, record) => store.persist(key, record, alone ? { deferSync: true } : {}),
        },
        transport: {
          send: (_from, to, message) => this.sendTo(to, running, message),
        },
        clock: this.clock,
        signer: this.components.signer,
        ...(this.components.verify !== undefined ? { verify: this.components.verify } : {}),
      },
      group,
      {
        ...(this.init.timing !== undefined ? { timing: this.init.timing } : {}),
        onDecided: (effect) => {
          running.lastActive = this.clock.now();
          this.emitDecided(
            group.blockId,
            effect.slot,
            effect.value,
            effect.certificate,
            effect.proposals.length > 0,
          );
        },
        onEquivocation: (proof) => this.emitEquivocation(proof),
      },
    );
    const draining = this.draining.get(key);
    const ready = (async () => {
      await draining;
      await driver.start();
      // A member already known to be down is suspected from the start (see `suspect`).
      for (const member of group.members) {
        const since = this.down.get(member);
        if (since !== undefined) await driver.suspect(member, since);
      }
    })();
    const running: Running = {
      key,
      group,
      driver,
      ready,
      started: false,
      ticking: false,
      proposals: 0,
      lastActive: this.clock.now(),
      lastWork: Number.NEGATIVE_INFINITY,
    };
    this.groups.set(key, running);
    ready.then(
      () => {
        running.started = true;
      },
      () => {
        if (this.groups.get(key) === running) this.groups.delete(key);
      },
    );
    return running;
  }

  /** Stops a running group; its driver finishes the step in progress before the group may start again. */
  private stopGroup(running: Running): void {
    if (this.groups.get(running.key) !== running) return;
    this.groups.delete(running.key);
    this.counters.groupsStopped += 1;
    const done = running.ready.catch(() => undefined).then(() => running.driver.stop());
    this.draining.set(running.key, done);
    void done.finally(() => {
      if (this.draining.get(running.key) === done) this.draining.delete(running.key);
    });
  }

  /** Stops the least recently active group without proposals waiting; false when there is none. */
  private makeRoom(): boolean {
    let oldest: Running | undefined;
    for (const running of this.groups.values())
      if (
        running.started &&
        running.proposals === 0 &&
        (oldest === undefined || running.lastActive < oldest.lastActive)
      )
        oldest = running;
    if (oldest === undefined) return false;
    this.stopGroup(oldest);
    return true;
  }

  private tick(): void {
    if (this.stopped) return;
    const now = this.clock.now();
    for (const running of [...this.groups.values()]) {
      if (!running.started) continue;
      if (running.proposals === 0 && now - running.lastActive >= this.groupIdleMs) {
        this.stopGroup(running);
        continue;
      }
      if (running.ticking) continue;
      running.ticking = true;
      running.driver
        .tick()
        .catch(() => {
          this.dropped.failed += 1;
        })
        .finally(() => {
          running.ticking = false;
        });
    }
  }

  private emitDecided(
    blockId: string,
    slot: number,
    value: ConsensusValue,
    certificate: ConsensusCertificate,
    proposedHere: boolean,
  ): void {
    for (const listener of this.decidedListeners) {
      try {
        listener(blockId, slot, value, certificate, proposedHere);
      } catch {
        // A listener's failure is its own.
      }
    }
  }

  private emitEquivocation(proof: EquivocationProof): void {
    this.counters.equivocations += 1;
    this.proofs.push(proof);
    if (this.proofs.length > limits.consensusEquivocationsKeptMax) this.proofs.shift();
    for (const listener of this.equivocationListeners) {
      try {
        listener(proof);
      } catch {
        // A listener's failure is its own.
      }
    }
  }
}

function nonNegative(value: number, what: string): number {
  if (!Number.isFinite(value) || value < 0)
    throw new EngineError('CONFIG_INVALID', `${what} must be a non-negative number`, { field: what });
  return value;
}

function positive(value: number, what: string): number {
  if (!Number.isFinite(value) || value <= 0)
    throw new EngineError('CONFIG_INVALID', `${what} must be a positive number`, { field: what });
  return value;
}
