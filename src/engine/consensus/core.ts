import { assert, unreachable } from '../base/assert.js';
import { limits } from '../base/limits.js';
import { membershipHash } from '../transactions/certifier.js';
import type {
  AcceptedMessage,
  AcceptedSlot,
  AcceptMessage,
  Ballot,
  ClientProposal,
  ConsensusCertificate,
  ConsensusEffect,
  ConsensusGroup,
  ConsensusInput,
  ConsensusMessage,
  ConsensusTiming,
  ConsensusValue,
  DecidedMessage,
  DropReason,
  EquivocationProof,
  GroupHeader,
  HeartbeatMessage,
  LearnMessage,
  NackMessage,
  PersistedGroupState,
  PersistRecord,
  PrepareMessage,
  PromiseMessage,
  RejectReason,
  SignatureVerifier,
  VoteSigner,
} from './types.js';
import { dropReasons } from './types.js';
import { certificateProblem, defaultVerifier, verifyVote, voteMessage } from './votes.js';
import {
  compareBallots,
  isBallot,
  isConsensusValue,
  isMemberList,
  isSlot,
  leadershipOrder,
  quorumOf,
  entryConflict,
  sameBallot,
  valueBytes,
  valueDigest,
} from './values.js';

/**
 * The consensus core: Multi-Paxos for one log tail block, as a pure state machine (SPEC §6).
 *
 * `step(state, input)` returns the next state and the effects the edge must carry out, in order:
 * at most one `persist` first (one atomic synced batch: promises, accepted values with their signed
 * votes, decisions, equivocation proofs), then `send`s, then reports (`decided`, `reject`,
 * `equivocation`). Nothing here reads a clock, draws randomness or does I/O: time arrives in every
 * input and the signer is deterministic (Ed25519).
 *
 * Safety rests on ballots and quorums only. Timers (heartbeats, suspicion, retransmission) decide
 * who tries to lead and when to resend; a wrong guess costs progress, never agreement.
 */

export interface ConsensusComponents {
  readonly signer: VoteSigner;
  readonly verify?: SignatureVerifier;
}

export interface ConsensusInit {
  readonly timing?: Partial<ConsensusTiming>;
}

export const defaultTiming: ConsensusTiming = Object.freeze({
  heartbeatMs: limits.consensusHeartbeatMs,
  suspectAfterMs: limits.consensusSuspectAfterMs,
  retransmitMs: limits.consensusRetransmitMs,
  proposalTimeoutMs: limits.consensusProposalTimeoutMs,
});

/** Everything fixed for the life of a group member. */
export interface GroupConfig extends GroupHeader {
  readonly members: readonly string[];
  readonly self: string;
  readonly quorum: number;
  /** Members nearest the block first: the first live one leads. */
  readonly order: readonly string[];
  readonly timing: ConsensusTiming;
  readonly signer: VoteSigner;
  readonly verify: SignatureVerifier;
}

/** A client proposal held by the member that leads (or is about to). */
export interface Wait {
  readonly ids: readonly string[];
  readonly value: ConsensusValue;
  readonly digest: string;
  readonly since: number;
  /** The slot it was proposed in, or null while queued. */
  readonly slot: number | null;
}

/** A slot the leader proposed and has not seen decided. */
export interface Inflight {
  readonly value: ConsensusValue;
  readonly digest: string;
  /** Valid votes for `digest` at the leader's ballot, by member (the leader's own included). */
  readonly votes: ReadonlyMap<string, string>;
  /** Valid votes for other digests in this slot and ballot: kept to prove equivocation. */
  readonly strays: ReadonlyMap<string, { readonly digest: string; readonly signature: string }>;
  readonly sentAt: number;
  /**
   * The members (besides the leader) its Accept went to: at first only the nearest live ones a quorum
   * needs (`acceptTargets`), every other member once they are slow to answer (`widenAccepts`).
   */
  readonly asked: readonly string[];
}

export interface PromiseBody {
  readonly accepted: readonly AcceptedSlot[];
  readonly decided: readonly ConsensusCertificate[];
}

export type Role =
  | { readonly kind: 'follower' }
  | {
      readonly kind: 'candidate';
      readonly ballot: Ballot;
      readonly fromSlot: number;
      readonly promises: ReadonlyMap<string, PromiseBody>;
      readonly sentAt: number;
    }
  | {
      readonly kind: 'leader';
      readonly ballot: Ballot;
      readonly nextSlot: number;
      /**
       * Slots below this were open when the member became leader (values adopted from promises, or
       * noops): client values wait until they are decided, so the conflict check sees every earlier
       * slot's value.
       */
      readonly recoveredBelow: number;
      readonly inflight: ReadonlyMap<number, Inflight>;
    };

export interface SealInfo {
  readonly slot: number;
  readonly successor: string;
  readonly members: readonly string[];
}

export interface ConsensusState {
  readonly config: GroupConfig;
  readonly now: number;
  // Durable (mirrors what was persisted):
  readonly promised: Ballot | null;
  readonly accepted: ReadonlyMap<number, AcceptedSlot>;
  readonly decided: ReadonlyMap<number, ConsensusCertificate>;
  readonly equivocations: readonly EquivocationProof[];
  // Volatile:
  /** Every slot below this is decided and reported; equals the decided prefix (or seal slot + 1). */
  readonly reportedBelow: number;
  readonly sealed: SealInfo | null;
  /** Highest ballot round seen anywhere; a new candidacy goes above it. */
  readonly maxRound: number;
  readonly lastHeard: ReadonlyMap<string, number>;
  readonly heartbeatAt: number | null;
  readonly learnAt: number | null;
  readonly role: Role;
  /** Client proposals this member holds, by value digest, in arrival order. */
  readonly waits: ReadonlyMap<string, Wait>;
  readonly dropped: Readonly<Record<DropReason, number>>;
}

export interface StepResult {
  readonly state: ConsensusState;
  readonly effects: readonly ConsensusEffect[];
}

const noDrops = Object.freeze(Object.fromEntries(dropReasons.map((r) => [r, 0]))) as Record<
  DropReason,
  number
>;

/** A fresh member state: nothing promised, accepted or decided; every member presumed alive now. */
export function createConsensusState(
  group: ConsensusGroup,
  components: ConsensusComponents,
  init: ConsensusInit = {},
  now = 0,
): ConsensusState {
  assert(isMemberList(group.members), 'group members are sorted, distinct, within consensusMembersMax');
  assert(group.members.includes(components.signer.id), 'the signer is a member of the group');
  const config: GroupConfig = Object.freeze({
    network: group.network,
    blockId: group.blockId,
    membership: membershipHash(group.members),
    members: group.members,
    self: components.signer.id,
    quorum: quorumOf(group.members.length),
    order: leadershipOrder(group.blockId, group.members),
    timing: { ...defaultTiming, ...init.timing },
    signer: components.signer,
    verify: components.verify ?? defaultVerifier,
  });
  return {
    config,
    now,
    promised: null,
    accepted: new Map(),
    decided: new Map(),
    equivocations: [],
    reportedBelow: 0,
    sealed: null,
    maxRound: 0,
    lastHeard: new Map(group.members.map((m) => [m, now])),
    heartbeatAt: null,
    learnAt: null,
    role: { kind: 'follower' },
    waits: new Map(),
    dropped: noDrops,
  };
}

// ---- queries (for edges, dashboards and tests) ----

export function isLive(state: ConsensusState, member: string): boolean {
  if (member === state.config.self) return true;
  const heard = state.lastHeard.get(member);
  return heard !== undefined && state.now - heard <= state.config.timing.suspectAfterMs;
}

export function liveMembers(state: ConsensusState): string[] {
  return state.config.members.filter((m) => isLive(state, m));
}

/** The member this one believes should lead: the first live member in leadership order. */
export function expectedLeader(state: ConsensusState): string {
  const leader = state.config.order.find((m) => isLive(state, m));
  assert(leader !== undefined, 'a member always counts itself live');
  return leader;
}

/** Where a client should send proposals, as far as this member knows. */
export function leaderHint(state: ConsensusState): string | null {
  if (state.role.kind !== 'follower') return state.config.self;
  const promised = state.promised;
  if (promised !== null && promised.leader !== state.config.self && isLive(state, promised.leader))
    return promised.leader;
  const expected = expectedLeader(state);
  return expected === state.config.self ? null : expected;
}

/** Members proven to have equivocated; a seal must not name them. */
export function equivocators(state: ConsensusState): ReadonlySet<string> {
  return new Set(state.equivocations.map((p) => p.member));
}

/** The persisted state this core's durable fields amount to (what the edge should hold on disk). */
export function persistedOf(state: ConsensusState): PersistedGroupState {
  return {
    promised: state.promised,
    accepted: [...state.accepted.values()].sort((a, b) => a.slot - b.slot),
    decided: [...state.decided.values()].sort((a, b) => a.slot - b.slot),
    equivocations: state.equivocations,
  };
}

// ---- the step function ----

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** One step's working copy: the state is copied on write, effects are gathered by kind. */
class Work {
  readonly s: Mutable<ConsensusState>;
  readonly config: GroupConfig;
  private readonly owned = new Set<string>();
  readonly record: {
    promised?: Ballot;
    accepted: Map<number, AcceptedSlot>;
    decided: Map<number, ConsensusCertificate>;
    equivocations: EquivocationProof[];
  } = { accepted: new Map(), decided: new Map(), equivocations: [] };
  readonly sends: { to: string; message: ConsensusMessage }[] = [];
  readonly notices: ConsensusEffect[] = [];
  /** Proposals the leader made this step, sent as one batched Accept per member at the end. */
  readonly proposed: { ballot: Ballot; slot: number; value: ConsensusValue; to: readonly string[] }[] = [];
  /** Decisions this member certified this step, broadcast as one Decided per member at the end. */
  readonly certified: ConsensusCertificate[] = [];

  constructor(state: ConsensusState, now: number) {
    this.s = { ...state, now: Math.max(state.now, now) };
    this.config = state.config;
  }

  private own<T>(key: 'accepted' | 'decided' | 'lastHeard' | 'waits', copy: () => T): T {
    if (!this.owned.has(key)) {
      (this.s as Record<string, unknown>)[key] = copy();
      this.owned.add(key);
    }
    return this.s[key] as T;
  }
  accepted(): Map<number, AcceptedSlot> {
    return this.own('accepted', () => new Map(this.s.accepted));
  }
  decided(): Map<number, ConsensusCertificate> {
    return this.own('decided', () => new Map(this.s.decided));
  }
  lastHeard(): Map<string, number> {
    return this.own('lastHeard', () => new Map(this.s.lastHeard));
  }
  waits(): Map<string, Wait> {
    return this.own('waits', () => new Map(this.s.waits));
  }
  drop(reason: DropReason): void {
    this.s.dropped = { ...this.s.dropped, [reason]: this.s.dropped[reason] + 1 };
  }
  header(): GroupHeader {
    return { network: this.config.network, blockId: this.config.blockId, membership: this.config.membership };
  }
  send(to: string, message: ConsensusMessage): void {
    this.sends.push({ to, message });
  }
  others(): readonly string[] {
    return this.config.members.filter((m) => m !== this.config.self);
  }
  setPromised(ballot: Ballot): void {
    if (compareBallots(ballot, this.s.promised) <= 0) return;
    this.s.promised = ballot;
    this.record.promised = ballot;
    if (ballot.round > this.s.maxRound) this.s.maxRound = ballot.round;
  }
  setAccepted(entry: AcceptedSlot): void {
    this.accepted().set(entry.slot, entry);
    this.record.accepted.set(entry.slot, entry);
  }
  reject(id: string, reason: RejectReason): void {
    this.notices.push({ type: 'reject', proposal: id, reason });
  }

  finish(): StepResult {
    const effects: ConsensusEffect[] = [];
    const r = this.record;
    if (r.promised !== undefined || r.accepted.size > 0 || r.decided.size > 0 || r.equivocations.length > 0) {
      const record: Mutable<PersistRecord> = {};
      if (r.promised !== undefined) record.promised = r.promised;
      if (r.accepted.size > 0) record.accepted = [...r.accepted.values()];
      if (r.decided.size > 0) record.decided = [...r.decided.values()];
      if (r.equivocations.length > 0) record.equivocations = r.equivocations;
      effects.push({ type: 'persist', record });
    }
    // Accepts, batched per ballot and recipients (in practice one of each per step).
    const byBallot = new Map<
      string,
      { ballot: Ballot; to: readonly string[]; proposals: { slot: number; value: ConsensusValue }[] }
    >();
    for (const p of this.proposed) {
      const key = `${p.ballot.round}/${p.ballot.leader}/${p.to.join(' ')}`;
      let batch = byBallot.get(key);
      if (batch === undefined) byBallot.set(key, (batch = { ballot: p.ballot, to: p.to, proposals: [] }));
      batch.proposals.push({ slot: p.slot, value: p.value });
    }
    for (const batch of byBallot.values()) {
      for (const chunk of chunks(batch.proposals, limits.consensusBatchSlotsMax, (p) =>
        valueBytes(p.value),
      )) {
        for (const to of batch.to) {
          const message: AcceptMessage = {
            type: 'Accept',
            ...this.header(),
            ballot: batch.ballot,
            proposals: chunk,
          };
          effects.push({ type: 'send', to, message });
        }
      }
    }
    for (const { to, message } of this.sends) effects.push({ type: 'send', to, message });
    for (const chunk of chunks(this.certified, limits.consensusBatchSlotsMax, (c) => valueBytes(c.value))) {
      for (const to of this.others()) {
        const message: DecidedMessage = { type: 'Decided', ...this.header(), certificates: chunk };
        effects.push({ type: 'send', to, message });
      }
    }
    effects.push(...this.notices);
    return { state: this.s, effects };
  }
}

/** Splits items into messages of at most `size` items and about consensusBatchBytesMax bytes. */
function chunks<T>(items: readonly T[], size: number, bytesOf: (item: T) => number): T[][] {
  const out: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const itemBytes = bytesOf(item);
    if (current.length > 0 && (current.length >= size || bytes + itemBytes > limits.consensusBatchBytesMax)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += itemBytes;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** Advances a member by one input. Pure: the input state is not modified. */
export function step(state: ConsensusState, input: ConsensusInput): StepResult {
  const w = new Work(state, input.now);
  switch (input.type) {
    case 'message':
      onMessage(w, input.from, input.message);
      break;
    case 'tick':
      onTick(w);
      break;
    case 'propose':
      onPropose(w, input.proposals);
      break;
    case 'restart':
      onRestart(w, input.persisted);
      break;
    case 'suspect':
      onSuspect(w, input.member, input.since);
      break;
    default:
      unreachable(input, 'consensus input');
  }
  if (w.s.role.kind === 'leader') flushQueue(w);
  return w.finish();
}

// ---- restart ----

function onRestart(w: Work, persisted: PersistedGroupState): void {
  const s = w.s;
  s.promised = persisted.promised;
  s.accepted = new Map(persisted.accepted.map((a) => [a.slot, a]));
  s.decided = new Map(persisted.decided.map((c) => [c.slot, c]));
  s.equivocations = persisted.equivocations;
  s.reportedBelow = 0;
  s.sealed = null;
  let maxRound = persisted.promised?.round ?? 0;
  for (const a of persisted.accepted) maxRound = Math.max(maxRound, a.ballot.round);
  s.maxRound = maxRound;
  s.lastHeard = new Map(w.config.members.map((m) => [m, s.now]));
  s.heartbeatAt = null;
  s.learnAt = null;
  s.role = { kind: 'follower' };
  s.waits = new Map();
  s.dropped = noDrops;
  // Report every persisted decision again, in order: the edge may have lost what it did with them.
  advanceReports(w);
}

// ---- suspicion ----

/**
 * A member the edge knows to be down (since `since`) is suspected downSuspectMs after it was last
 * heard instead of suspectAfterMs: its silence is counted as that much longer. Whatever a tick does
 * about a suspected member then happens at once if that time has come (the next member stands).
 */
function onSuspect(w: Work, member: string, since: number): void {
  if (member === w.config.self || !w.config.members.includes(member)) return;
  if (!isLive(w.s, member)) return;
  const { suspectAfterMs, downSuspectMs = limits.consensusDownSuspectMs } = w.config.timing;
  const heard = Math.min(w.s.lastHeard.get(member) ?? since, since);
  w.lastHeard().set(member, heard - Math.max(0, suspectAfterMs - downSuspectMs));
  onTick(w);
}

// ---- messages ----

function onMessage(w: Work, from: string, message: ConsensusMessage): void {
  const c = w.config;
  if (typeof message !== 'object' || message === null) return w.drop('malformed');
  if (message.network !== c.network) return w.drop('wrong-network');
  if (message.blockId !== c.blockId) return w.drop('wrong-group');
  if (message.membership !== c.membership) return w.drop('wrong-membership');
  if (from === c.self || !c.members.includes(from)) return w.drop('non-member');
  if (!wellFormed(message)) return w.drop('malformed');
  w.lastHeard().set(from, w.s.now);
  switch (message.type) {
    case 'Prepare':
      return onPrepare(w, from, message);
    case 'Promise':
      return onPromise(w, from, message);
    case 'Accept':
      return onAccept(w, from, message);
    case 'Accepted':
      return onAccepted(w, from, message);
    case 'Nack':
      return onNack(w, message);
    case 'Decided':
      return onDecided(w, message.certificates);
    case 'Heartbeat':
      return onHeartbeat(w, from, message);
    case 'Learn':
      return onLearn(w, from, message);
    default:
      unreachable(message, 'consensus message');
  }
}

/** Array.isArray without narrowing a typed (readonly) array to `any[]`. */
function isList<T>(value: readonly T[]): boolean {
  return Array.isArray(value);
}

function wellFormed(m: ConsensusMessage): boolean {
  const batch = <T>(list: readonly T[], max: number): boolean =>
    isList(list) && list.length > 0 && list.length <= max;
  const slotBound = (n: unknown): boolean =>
    typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= limits.consensusSlotsPerGroupMax;
  switch (m.type) {
    case 'Prepare':
      return isBallot(m.ballot) && slotBound(m.fromSlot);
    case 'Promise':
      return (
        isBallot(m.ballot) &&
        slotBound(m.fromSlot) &&
        isList(m.accepted) &&
        m.accepted.length <= limits.consensusSlotsPerGroupMax &&
        m.accepted.every(
          (a) =>
            isSlot(a.slot) &&
            isBallot(a.ballot) &&
            isConsensusValue(a.value) &&
            typeof a.signature === 'string',
        ) &&
        isList(m.decided) &&
        m.decided.length <= limits.consensusSlotsPerGroupMax
      );
    case 'Accept':
      return (
        isBallot(m.ballot) &&
        batch(m.proposals, limits.consensusBatchSlotsMax) &&
        m.proposals.every((p) => isSlot(p.slot) && isConsensusValue(p.value))
      );
    case 'Accepted':
      return (
        isBallot(m.ballot) &&
        batch(m.votes, limits.consensusBatchSlotsMax) &&
        m.votes.every(
          (v) => isSlot(v.slot) && typeof v.digest === 'string' && typeof v.signature === 'string',
        )
      );
    case 'Nack':
      return isBallot(m.ballot) && isBallot(m.promised);
    case 'Decided':
      return batch(m.certificates, limits.consensusSlotsPerGroupMax);
    case 'Heartbeat':
      return (m.promised === null || isBallot(m.promised)) && slotBound(m.decidedBelow);
    case 'Learn':
      return slotBound(m.fromSlot) && slotBound(m.toSlot) && m.fromSlot <= m.toSlot;
    default:
      return false;
  }
}

function noteRound(w: Work, ballot: Ballot | null): void {
  if (ballot !== null && ballot.round > w.s.maxRound) w.s.maxRound = ballot.round;
}

/** A sealed member answers Paxos traffic with the decisions the asker lacks, up to the seal. */
function answerSealed(w: Work, to: string, fromSlot: number): void {
  const sealed = w.s.sealed;
  assert(sealed !== null, 'answerSealed on a sealed group');
  const certificates: ConsensusCertificate[] = [];
  for (let slot = Math.max(fromSlot, 0); slot <= sealed.slot; slot++) {
    const cert = w.s.decided.get(slot);
    if (cert !== undefined) certificates.push(cert);
  }
  // The seal itself always goes (the asker may be ahead of `fromSlot`).
  const seal = w.s.decided.get(sealed.slot);
  if (seal !== undefined && !certificates.includes(seal)) certificates.push(seal);
  w.send(to, {
    type: 'Decided',
    ...w.header(),
    certificates: certificates.slice(-limits.consensusBatchSlotsMax),
  });
}

function onPrepare(w: Work, from: string, m: PrepareMessage): void {
  if (m.ballot.leader !== from) return w.drop('forged-ballot');
  noteRound(w, m.ballot);
  if (w.s.sealed !== null) return answerSealed(w, from, m.fromSlot);
  if (w.s.promised !== null && compareBallots(m.ballot, w.s.promised) < 0) {
    const nack: NackMessage = { type: 'Nack', ...w.header(), ballot: m.ballot, promised: w.s.promised };
    return w.send(from, nack);
  }
  w.setPromised(m.ballot);
  if (w.s.role.kind !== 'follower' && compareBallots(w.s.role.ballot, m.ballot) < 0) stepDown(w, from);
  const accepted = [...w.s.accepted.values()].filter((a) => a.slot >= m.fromSlot);
  const decided = [...w.s.decided.values()].filter((cert) => cert.slot >= m.fromSlot);
  const promise: PromiseMessage = {
    type: 'Promise',
    ...w.header(),
    ballot: m.ballot,
    fromSlot: m.fromSlot,
    accepted: accepted.sort((a, b) => a.slot - b.slot),
    decided: decided.sort((a, b) => a.slot - b.slot),
  };
  w.send(from, promise);
}

function onPromise(w: Work, from: string, m: PromiseMessage): void {
  const role = w.s.role;
  if (role.kind !== 'candidate' || !sameBallot(role.ballot, m.ballot) || m.fromSlot !== role.fromSlot)
    return w.drop('stale');
  if (role.promises.has(from)) return;
  // Adopted values must be ones the member really accepted: check its votes.
  for (const a of m.accepted) {
    const fields = { ...w.header(), slot: a.slot, ballot: a.ballot, digest: valueDigest(a.value) };
    if (!verifyVote(from, fields, a.signature, w.config.verify)) return w.drop('bad-signature');
  }
  const decided: ConsensusCertificate[] = [];
  for (const cert of m.decided) {
    if (w.s.decided.has(cert.slot)) continue;
    if (!certificateValid(w, cert)) return w.drop('bad-certificate');
    decided.push(cert);
  }
  const promises = new Map(role.promises).set(from, { accepted: m.accepted, decided });
  w.s.role = { ...role, promises };
  if (promises.size + 1 >= w.config.quorum) becomeLeader(w);
}

function onAccept(w: Work, from: string, m: AcceptMessage): void {
  if (m.ballot.leader !== from) return w.drop('forged-ballot');
  noteRound(w, m.ballot);
  if (w.s.sealed !== null) return answerSealed(w, from, Math.min(...m.proposals.map((p) => p.slot)));
  if (w.s.promised !== null && compareBallots(m.ballot, w.s.promised) < 0) {
    const nack: NackMessage = { type: 'Nack', ...w.header(), ballot: m.ballot, promised: w.s.promised };
    return w.send(from, nack);
  }
  w.setPromised(m.ballot);
  if (w.s.role.kind !== 'follower' && compareBallots(w.s.role.ballot, m.ballot) < 0) stepDown(w, from);
  const votes: AcceptedMessage['votes'][number][] = [];
  const known: ConsensusCertificate[] = [];
  for (const { slot, value } of m.proposals) {
    const decided = w.s.decided.get(slot);
    if (decided !== undefined) {
      // Already decided: teach the leader instead of voting.
      known.push(decided);
      continue;
    }
    const digest = valueDigest(value);
    const previous = w.s.accepted.get(slot);
    if (previous !== undefined && sameBallot(previous.ballot, m.ballot)) {
      // One value per slot and ballot: voting for a second would make this member an equivocator.
      if (valueDigest(previous.value) !== digest) {
        w.drop('conflicting-accept');
        continue;
      }
      votes.push({ slot, digest, signature: previous.signature });
      continue;
    }
    const signature = signVote(w, slot, m.ballot, digest);
    w.setAccepted({ slot, ballot: m.ballot, value, signature });
    votes.push({ slot, digest, signature });
  }
  if (votes.length > 0) w.send(from, { type: 'Accepted', ...w.header(), ballot: m.ballot, votes });
  if (known.length > 0) w.send(from, { type: 'Decided', ...w.header(), certificates: known });
}

function onAccepted(w: Work, from: string, m: AcceptedMessage): void {
  const role = w.s.role;
  if (role.kind !== 'leader' || !sameBallot(role.ballot, m.ballot)) return w.drop('stale');
  let inflight: Map<number, Inflight> | null = null;
  const decidedNow: number[] = [];
  for (const vote of m.votes) {
    const current = (inflight ?? role.inflight).get(vote.slot);
    if (current === undefined) continue; // decided already, or never proposed at this ballot
    const fields = { ...w.header(), slot: vote.slot, ballot: m.ballot, digest: vote.digest };
    if (!verifyVote(from, fields, vote.signature, w.config.verify)) {
      w.drop('bad-signature');
      continue;
    }
    let next: Inflight = current;
    const counted = current.votes.get(from);
    const stray = current.strays.get(from);
    if (vote.digest === current.digest) {
      if (stray !== undefined) proveEquivocation(w, from, vote.slot, m.ballot, stray, vote);
      if (counted === undefined)
        next = { ...current, votes: new Map(current.votes).set(from, vote.signature) };
    } else {
      if (counted !== undefined)
        proveEquivocation(w, from, vote.slot, m.ballot, { digest: current.digest, signature: counted }, vote);
      else if (stray !== undefined && stray.digest !== vote.digest)
        proveEquivocation(w, from, vote.slot, m.ballot, stray, vote);
      if (stray === undefined)
        next = {
          ...current,
          strays: new Map(current.strays).set(from, { digest: vote.digest, signature: vote.signature }),
        };
    }
    if (next !== current) {
      inflight ??= new Map(role.inflight);
      inflight.set(vote.slot, next);
      if (next.votes.size >= w.config.quorum && current.votes.size < w.config.quorum)
        decidedNow.push(vote.slot);
    }
  }
  if (inflight === null) return;
  w.s.role = { ...role, inflight };
  for (const slot of decidedNow) {
    const entry = inflight.get(slot)!;
    const signatures = [...entry.votes.entries()]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .slice(0, w.config.quorum)
      .map(([member, signature]) => ({ member, signature }));
    const certificate: ConsensusCertificate = {
      ...w.header(),
      slot,
      ballot: role.ballot,
      value: entry.value,
      signatures,
    };
    w.certified.push(certificate);
    learn(w, certificate);
  }
}

function onNack(w: Work, m: NackMessage): void {
  noteRound(w, m.promised);
  const role = w.s.role;
  if (role.kind === 'follower' || !sameBallot(role.ballot, m.ballot)) return;
  if (compareBallots(m.promised, role.ballot) > 0) stepDown(w, m.promised.leader);
}

function onDecided(w: Work, certificates: readonly ConsensusCertificate[]): void {
  for (const cert of certificates) {
    if (typeof cert !== 'object' || cert === null || !isSlot(cert.slot)) {
      w.drop('malformed');
      continue;
    }
    const mine = w.s.decided.get(cert.slot);
    if (
      mine !== undefined &&
      isConsensusValue(cert.value) &&
      valueDigest(cert.value) === valueDigest(mine.value)
    )
      continue; // known; nothing to check
    if (!certificateValid(w, cert)) {
      w.drop('bad-certificate');
      continue;
    }
    if (mine !== undefined) {
      // Two valid certificates for different values in one slot: more than a minority is faulty.
      // Nothing is replaced; members who signed both at one ballot are reported.
      w.drop('conflicting-certificate');
      if (sameBallot(mine.ballot, cert.ballot)) {
        for (const a of mine.signatures) {
          const b = cert.signatures.find((x) => x.member === a.member);
          if (b !== undefined)
            proveEquivocation(
              w,
              a.member,
              cert.slot,
              cert.ballot,
              { digest: valueDigest(mine.value), signature: a.signature },
              { digest: valueDigest(cert.value), signature: b.signature },
            );
        }
      }
      continue;
    }
    learn(w, cert);
  }
}

function onHeartbeat(w: Work, from: string, m: HeartbeatMessage): void {
  noteRound(w, m.promised);
  const role = w.s.role;
  // Someone promised a higher ballot than the one this member leads with: it will be refused, so
  // stand down now; the next tick starts a candidacy above it if this member should still lead.
  if (role.kind !== 'follower' && m.promised !== null && compareBallots(m.promised, role.ballot) > 0)
    stepDown(w, m.promised.leader);
  if (m.decidedBelow > w.s.reportedBelow && w.s.sealed === null) {
    const due = w.s.learnAt === null || w.s.now - w.s.learnAt >= w.config.timing.retransmitMs;
    if (due) {
      const learnMessage: LearnMessage = {
        type: 'Learn',
        ...w.header(),
        fromSlot: w.s.reportedBelow,
        toSlot: Math.min(m.decidedBelow, w.s.reportedBelow + limits.consensusBatchSlotsMax),
      };
      w.send(from, learnMessage);
      w.s.learnAt = w.s.now;
    }
  }
}

function onLearn(w: Work, from: string, m: LearnMessage): void {
  const certificates: ConsensusCertificate[] = [];
  const to = Math.min(m.toSlot, m.fromSlot + limits.consensusBatchSlotsMax);
  let bytes = 0;
  for (let slot = m.fromSlot; slot < to && bytes < limits.consensusBatchBytesMax; slot++) {
    const cert = w.s.decided.get(slot);
    if (cert === undefined) continue;
    certificates.push(cert);
    bytes += valueBytes(cert.value);
  }
  if (certificates.length > 0) w.send(from, { type: 'Decided', ...w.header(), certificates });
}

// ---- leadership ----

function startCandidacy(w: Work): void {
  const round = Math.max(w.s.maxRound, w.s.promised?.round ?? 0) + 1;
  const ballot: Ballot = { round, leader: w.config.self };
  w.setPromised(ballot);
  const fromSlot = w.s.reportedBelow;
  w.s.role = { kind: 'candidate', ballot, fromSlot, promises: new Map(), sentAt: w.s.now };
  if (w.config.quorum === 1) return becomeLeader(w);
  for (const to of w.others()) w.send(to, { type: 'Prepare', ...w.header(), ballot, fromSlot });
}

function becomeLeader(w: Work): void {
  const role = w.s.role;
  assert(role.kind === 'candidate', 'only a candidate becomes leader');
  // Decisions the promises carried.
  for (const body of role.promises.values()) for (const cert of body.decided) learn(w, cert);
  if (w.s.sealed !== null) return;
  // Highest-ballot accepted value per open slot, this member's own included.
  const best = new Map<number, AcceptedSlot>();
  const consider = (a: AcceptedSlot): void => {
    if (a.slot < role.fromSlot) return;
    const old = best.get(a.slot);
    if (old === undefined || compareBallots(a.ballot, old.ballot) > 0) best.set(a.slot, a);
  };
  for (const a of w.s.accepted.values()) consider(a);
  for (const body of role.promises.values()) for (const a of body.accepted) consider(a);
  let top = role.fromSlot - 1;
  for (const slot of best.keys()) top = Math.max(top, slot);
  for (const slot of w.s.decided.keys()) top = Math.max(top, slot);
  // Nothing is proposed past a seal: if it is decided, later slots are void.
  for (let slot = role.fromSlot; slot <= top; slot++) {
    const value = w.s.decided.get(slot)?.value ?? best.get(slot)?.value;
    if (value?.kind === 'seal') {
      top = slot;
      break;
    }
  }
  w.s.role = {
    kind: 'leader',
    ballot: role.ballot,
    nextSlot: top + 1,
    recoveredBelow: top + 1,
    inflight: new Map(),
  };
  for (let slot = role.fromSlot; slot <= top; slot++) {
    if (w.s.decided.has(slot)) continue;
    propose(w, slot, best.get(slot)?.value ?? { kind: 'noop' });
  }
  // Waiting proposals that are already in flight ride along instead of taking a new slot.
  const leader = w.s.role;
  if (leader.kind !== 'leader') return; // a solo group may have decided a seal already
  for (const [slot, entry] of leader.inflight) {
    const wait = w.s.waits.get(entry.digest);
    if (wait !== undefined && wait.slot === null) w.waits().set(entry.digest, { ...wait, slot });
  }
}

/**
 * Whom a new slot's Accept goes to: as many members as a quorum needs besides the leader, nearest
 * the block first (leadership order, so the next leaders in line hold the value) — members heard
 * from within two heartbeats before the others (one whose connection closed is passed over at once,
 * see onSuspect), then live ones; every other member when fewer are live. The rest are asked only
 * if those are slow (`widenAccepts`), so a decision costs a quorum's persists, signatures and
 * messages instead of the whole group's. Whom to ask never matters for safety (any member may vote
 * or not), only for how soon a quorum answers. With acceptWidenMs 0, every member at once.
 */
function acceptTargets(w: Work): readonly string[] {
  if ((w.config.timing.acceptWidenMs ?? limits.consensusAcceptWidenMs) === 0) return w.others();
  const needed = w.config.quorum - 1;
  const candidates = w.config.order.filter((m) => m !== w.config.self && isLive(w.s, m));
  if (candidates.length < needed) return w.others();
  const recentMs = 2 * w.config.timing.heartbeatMs;
  const recent = (m: string): boolean => w.s.now - (w.s.lastHeard.get(m) ?? -Infinity) <= recentMs;
  return [...candidates.filter(recent), ...candidates.filter((m) => !recent(m))].slice(0, needed);
}

/** The leader proposes `value` in `slot`: it votes itself first (durably), then asks the others. */
function propose(w: Work, slot: number, value: ConsensusValue): void {
  const role = w.s.role;
  assert(role.kind === 'leader', 'only the leader proposes');
  const digest = valueDigest(value);
  const signature = signVote(w, slot, role.ballot, digest);
  w.setAccepted({ slot, ballot: role.ballot, value, signature });
  const asked = acceptTargets(w);
  const inflight = new Map(role.inflight).set(slot, {
    value,
    digest,
    votes: new Map([[w.config.self, signature]]),
    strays: new Map(),
    sentAt: w.s.now,
    asked,
  });
  w.s.role = { ...role, inflight, nextSlot: Math.max(role.nextSlot, slot + 1) };
  w.proposed.push({ ballot: role.ballot, slot, value, to: asked });
  if (w.config.quorum === 1) {
    const certificate: ConsensusCertificate = {
      ...w.header(),
      slot,
      ballot: role.ballot,
      value,
      signatures: [{ member: w.config.self, signature }],
    };
    learn(w, certificate);
  }
}

function stepDown(w: Work, leader: string | null): void {
  const hint = leader === w.config.self ? null : leader;
  w.s.role = { kind: 'follower' };
  for (const wait of w.s.waits.values()) {
    for (const id of wait.ids) {
      if (wait.slot === null) w.reject(id, { kind: 'not-leader', leader: hint });
      else w.reject(id, { kind: 'preempted', leader: hint, inDoubt: true });
    }
  }
  if (w.s.waits.size > 0) w.s.waits = new Map();
}

/** Proposes queued client values in new slots, as far as the pipeline and the group's slots allow. */
function flushQueue(w: Work): void {
  if (w.s.waits.size === 0) return;
  const role0 = w.s.role;
  assert(role0.kind === 'leader', 'flushQueue as leader');
  // Nothing goes after a seal that is in flight, or decided but not yet reportable (a gap precedes it).
  let sealing = false;
  for (const entry of role0.inflight.values()) if (entry.value.kind === 'seal') sealing = true;
  for (const cert of w.s.decided.values()) if (cert.value.kind === 'seal') sealing = true;
  // Client values wait until the slots open at the election are decided (see Role.recoveredBelow).
  if (w.s.reportedBelow < role0.recoveredBelow) return;
  let entries: EntryIndex | undefined;
  for (const [digest, wait] of w.s.waits) {
    if (wait.slot !== null) {
      if (wait.value.kind === 'seal') sealing = true;
      continue;
    }
    const role = w.s.role;
    assert(role.kind === 'leader', 'still leader while flushing');
    if (sealing) {
      dropWait(w, digest, { kind: 'sealing' });
      continue;
    }
    const reserved = wait.value.kind === 'seal' ? 0 : 1; // the last slot is kept for the seal
    if (role.nextSlot + reserved >= limits.consensusSlotsPerGroupMax) {
      dropWait(w, digest, { kind: 'full' });
      continue;
    }
    if (role.inflight.size >= limits.consensusInflightSlotsMax) break;
    if (wait.value.kind === 'entry' && wait.value.lsn !== undefined) {
      entries ??= entryIndex(w);
      const conflict = conflictOf(entries, wait.value);
      if (conflict === 'in-flight') continue; // answered once the earlier value is decided
      if (conflict !== null) {
        dropWait(w, digest, { kind: 'conflict', decided: conflict });
        continue;
      }
    }
    const slot = role.nextSlot;
    w.waits().set(digest, { ...wait, slot });
    propose(w, slot, wait.value);
    if (wait.value.kind === 'entry') entries?.add(wait.value, null);
    if (wait.value.kind === 'seal') sealing = true;
  }
}

type EntryValue = Extract<ConsensusValue, { kind: 'entry' }>;

/** Entry values of the group's decided and in-flight slots, by LSN and by transaction. */
class EntryIndex {
  readonly byLsn = new Map<number, { value: EntryValue; cert: ConsensusCertificate | null }[]>();
  readonly byTrx = new Map<string, { value: EntryValue; cert: ConsensusCertificate | null }[]>();
  readonly decided: ConsensusCertificate[] = [];

  add(value: EntryValue, cert: ConsensusCertificate | null): void {
    if (value.lsn === undefined) return;
    const item = { value, cert };
    const atLsn = this.byLsn.get(value.lsn);
    if (atLsn === undefined) this.byLsn.set(value.lsn, [item]);
    else atLsn.push(item);
    const ofTrx = this.byTrx.get(value.trxId);
    if (ofTrx === undefined) this.byTrx.set(value.trxId, [item]);
    else ofTrx.push(item);
    if (cert !== null) this.decided.push(cert);
  }
}

function entryIndex(w: Work): EntryIndex {
  const index = new EntryIndex();
  for (const cert of w.s.decided.values()) if (cert.value.kind === 'entry') index.add(cert.value, cert);
  const role = w.s.role;
  if (role.kind === 'leader')
    for (const [slot, entry] of role.inflight)
      if (entry.value.kind === 'entry' && !w.s.decided.has(slot)) index.add(entry.value, null);
  return index;
}

/**
 * Whether `value` contradicts an earlier slot: null when it does not; 'in-flight' when only values
 * not yet decided do (it waits); otherwise the decided entries its proposer may lack.
 */
function conflictOf(index: EntryIndex, value: EntryValue): ConsensusCertificate[] | 'in-flight' | null {
  const lsn = value.lsn!;
  const candidates = [
    ...(index.byLsn.get(lsn) ?? []),
    ...(index.byLsn.get(lsn - 1) ?? []),
    ...(index.byTrx.get(value.trxId) ?? []),
  ];
  const conflicting = candidates.filter((c) => entryConflict(c.value, value));
  if (conflicting.length === 0) return null;
  if (conflicting.every((c) => c.cert === null)) return 'in-flight';
  return index.decided
    .filter((cert) => {
      const v = cert.value as EntryValue;
      return v.lsn! >= lsn - 1 || v.trxId === value.trxId;
    })
    .sort((a, b) => a.slot - b.slot);
}

function dropWait(w: Work, digest: string, reason: RejectReason): void {
  const wait = w.s.waits.get(digest);
  if (wait === undefined) return;
  for (const id of wait.ids) w.reject(id, reason);
  w.waits().delete(digest);
}

// ---- decisions ----

function certificateValid(w: Work, cert: ConsensusCertificate): boolean {
  return (
    cert.blockId === w.config.blockId &&
    certificateProblem(cert, w.config.members, w.config.network, w.config.verify) === null
  );
}

/** Records a decision (durably) and reports whatever became reportable. */
function learn(w: Work, cert: ConsensusCertificate): void {
  if (w.s.decided.has(cert.slot)) return;
  w.decided().set(cert.slot, cert);
  w.record.decided.set(cert.slot, cert);
  const role = w.s.role;
  if (role.kind === 'leader' && role.inflight.has(cert.slot)) {
    const entry = role.inflight.get(cert.slot)!;
    const inflight = new Map(role.inflight);
    inflight.delete(cert.slot);
    w.s.role = { ...role, inflight };
    if (entry.digest !== valueDigest(cert.value)) {
      // Another value won this slot: the client's value goes back in the queue.
      const wait = w.s.waits.get(entry.digest);
      if (wait !== undefined && wait.slot === cert.slot) w.waits().set(entry.digest, { ...wait, slot: null });
    }
  }
  advanceReports(w);
}

/** Reports decisions in slot order, stopping for good after a seal. */
function advanceReports(w: Work): void {
  while (w.s.sealed === null) {
    const cert = w.s.decided.get(w.s.reportedBelow);
    if (cert === undefined) return;
    const slot = w.s.reportedBelow;
    w.s.reportedBelow = slot + 1;
    const digest = valueDigest(cert.value);
    const wait = w.s.waits.get(digest);
    if (wait !== undefined) w.waits().delete(digest);
    w.notices.push({
      type: 'decided',
      slot,
      value: cert.value,
      certificate: cert,
      proposals: wait?.ids ?? [],
    });
    if (cert.value.kind === 'seal') seal(w, slot, cert.value);
  }
}

function seal(w: Work, slot: number, value: Extract<ConsensusValue, { kind: 'seal' }>): void {
  w.s.sealed = { slot, successor: value.successor, members: value.members };
  w.s.role = { kind: 'follower' };
  // Anything still waiting is void here (slots after a seal never count): send it to the successor.
  for (const wait of w.s.waits.values())
    for (const id of wait.ids)
      w.reject(id, { kind: 'sealed', successor: value.successor, members: value.members });
  if (w.s.waits.size > 0) w.s.waits = new Map();
}

// ---- equivocation ----

function proveEquivocation(
  w: Work,
  member: string,
  slot: number,
  ballot: Ballot,
  first: { readonly digest: string; readonly signature: string },
  second: { readonly digest: string; readonly signature: string },
): void {
  if (first.digest === second.digest) return;
  if (w.s.equivocations.some((p) => p.member === member)) return;
  const proof: EquivocationProof = {
    ...w.header(),
    member,
    slot,
    ballot,
    votes: [
      { digest: first.digest, signature: first.signature },
      { digest: second.digest, signature: second.signature },
    ],
  };
  w.s.equivocations = [...w.s.equivocations, proof];
  w.record.equivocations.push(proof);
  w.notices.push({ type: 'equivocation', proof });
}

function signVote(w: Work, slot: number, ballot: Ballot, digest: string): string {
  return w.config.signer.sign(voteMessage({ ...w.header(), slot, ballot, digest }));
}

// ---- ticks ----

function onTick(w: Work): void {
  const s = w.s;
  const t = w.config.timing;
  if (s.heartbeatAt === null || s.now - s.heartbeatAt >= t.heartbeatMs) {
    s.heartbeatAt = s.now;
    for (const to of w.others()) {
      const heartbeat: HeartbeatMessage = {
        type: 'Heartbeat',
        ...w.header(),
        promised: s.promised,
        decidedBelow: s.reportedBelow,
      };
      w.send(to, heartbeat);
    }
  }
  if (s.sealed !== null) return;
  const quorumLive = liveMembers(s).length >= w.config.quorum;
  const role = s.role;
  if (role.kind === 'follower') {
    if (expectedLeader(s) === w.config.self && quorumLive) startCandidacy(w);
  } else if (role.kind === 'candidate') {
    if (s.now - role.sentAt >= t.retransmitMs) {
      for (const to of w.others())
        if (!role.promises.has(to))
          w.send(to, { type: 'Prepare', ...w.header(), ballot: role.ballot, fromSlot: role.fromSlot });
      s.role = { ...role, sentAt: s.now };
    }
  } else {
    widenAccepts(w, role);
    const widened = w.s.role;
    if (widened.kind === 'leader') retransmitAccepts(w, widened);
  }
  // Answer clients whose proposals cannot make progress.
  for (const [digest, wait] of s.waits) {
    // A member suspected for a moment (a slow event loop, a lost heartbeat) is no reason to give up at
    // once: a waiting proposal gets a suspicion period for the quorum to come back.
    if (!quorumLive && s.now - wait.since >= t.suspectAfterMs)
      dropWait(w, digest, { kind: 'no-quorum', inDoubt: wait.slot !== null });
    else if (s.now - wait.since >= t.proposalTimeoutMs)
      dropWait(
        w,
        digest,
        wait.slot === null ? { kind: 'no-quorum', inDoubt: false } : { kind: 'timeout', inDoubt: true },
      );
  }
}

/**
 * Slots whose Accept went to a quorum's worth of members only and is still short of a quorum after
 * acceptWidenMs: the members not asked yet are asked now (a chosen member is down, slow or cut off
 * and not suspected yet), so a decision waits a tick or two for it instead of a retransmission.
 */
function widenAccepts(w: Work, role: Extract<Role, { kind: 'leader' }>): void {
  const widenMs = w.config.timing.acceptWidenMs ?? limits.consensusAcceptWidenMs;
  const others = w.others();
  const due = [...role.inflight.entries()].filter(
    ([, entry]) => entry.asked.length < others.length && w.s.now - entry.sentAt >= widenMs,
  );
  if (due.length === 0) return;
  for (const to of others) {
    const proposals = due
      .filter(([, entry]) => !entry.asked.includes(to))
      .map(([slot, entry]) => ({ slot, value: entry.value }));
    for (const chunk of chunks(proposals, limits.consensusBatchSlotsMax, (p) => valueBytes(p.value)))
      w.send(to, { type: 'Accept', ...w.header(), ballot: role.ballot, proposals: chunk });
  }
  const inflight = new Map(role.inflight);
  for (const [slot, entry] of due) inflight.set(slot, { ...entry, asked: others });
  w.s.role = { ...role, inflight };
}

function retransmitAccepts(w: Work, role: Extract<Role, { kind: 'leader' }>): void {
  const due = [...role.inflight.entries()].filter(
    ([, entry]) => w.s.now - entry.sentAt >= w.config.timing.retransmitMs,
  );
  if (due.length === 0) return;
  for (const to of w.others()) {
    const proposals = due
      .filter(([, entry]) => !entry.votes.has(to))
      .map(([slot, entry]) => ({ slot, value: entry.value }));
    for (const chunk of chunks(proposals, limits.consensusBatchSlotsMax, (p) => valueBytes(p.value)))
      w.send(to, { type: 'Accept', ...w.header(), ballot: role.ballot, proposals: chunk });
  }
  const inflight = new Map(role.inflight);
  for (const [slot, entry] of due) inflight.set(slot, { ...entry, sentAt: w.s.now, asked: w.others() });
  w.s.role = { ...role, inflight };
}

// ---- proposals ----

function onPropose(w: Work, proposals: readonly ClientProposal[]): void {
  for (const proposal of proposals) {
    const { id, value } = proposal;
    if (!isConsensusValue(value) || value.kind === 'noop') {
      w.reject(id, { kind: 'invalid', message: 'not a valid entry or seal value' });
      continue;
    }
    const sealed = w.s.sealed;
    if (sealed !== null) {
      w.reject(id, { kind: 'sealed', successor: sealed.successor, members: sealed.members });
      continue;
    }
    if (value.kind === 'seal') {
      const excluded = value.members.filter((m) => w.s.equivocations.some((p) => p.member === m));
      if (excluded.length > 0) {
        w.reject(id, {
          kind: 'invalid',
          message: `the seal names proven equivocators: ${excluded.join(', ')}`,
        });
        continue;
      }
    }
    const digest = valueDigest(value);
    // Already decided here: answer at once (or when it is reported, if a gap precedes it).
    let decidedSlot: number | null = null;
    for (const [slot, cert] of w.s.decided)
      if (valueDigest(cert.value) === digest && (decidedSlot === null || slot < decidedSlot))
        decidedSlot = slot;
    if (decidedSlot !== null && decidedSlot < w.s.reportedBelow) {
      const cert = w.s.decided.get(decidedSlot)!;
      w.notices.push({
        type: 'decided',
        slot: decidedSlot,
        value: cert.value,
        certificate: cert,
        proposals: [id],
      });
      continue;
    }
    const existing = w.s.waits.get(digest);
    if (existing !== undefined) {
      w.waits().set(digest, { ...existing, ids: [...existing.ids, id] });
      continue;
    }
    if (w.s.role.kind === 'follower') {
      if (expectedLeader(w.s) !== w.config.self) {
        w.reject(id, { kind: 'not-leader', leader: leaderHint(w.s) });
        continue;
      }
    }
    if (liveMembers(w.s).length < w.config.quorum) {
      w.reject(id, { kind: 'no-quorum', inDoubt: false });
      continue;
    }
    if (w.s.waits.size >= limits.consensusPendingProposalsMax) {
      w.reject(id, { kind: 'busy' });
      continue;
    }
    w.waits().set(digest, { ids: [id], value, digest, since: w.s.now, slot: decidedSlot });
    if (w.s.role.kind === 'follower') startCandidacy(w);
  }
}
