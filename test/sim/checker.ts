import type { ConsensusState } from '../../src/engine/consensus/core.js';
import type {
  Ballot,
  ConsensusCertificate,
  ConsensusEffect,
  ConsensusMessage,
  PersistedGroupState,
} from '../../src/engine/consensus/types.js';
import { compareBallots, quorumOf, valueDigest } from '../../src/engine/consensus/values.js';
import { verifyConsensusCertificate } from '../../src/engine/consensus/votes.js';

/** A broken invariant: the run stops and the seed is reported. */
export class InvariantViolation extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvariantViolation';
  }
}

function fail(message: string): never {
  throw new InvariantViolation(message);
}

const ballotKey = (b: Ballot): string => `${b.round}/${b.leader}`;

/**
 * Safety invariants of the consensus group, checked incrementally after every step (each step changes
 * one node, so checking what that step did is checking the whole world):
 *
 * - chosen: a value is chosen in a slot once a quorum of members voted for it in one ballot (votes are
 *   observed as they leave nodes, and in certificates). At most one value is ever chosen per slot, so
 *   no two valid certificates for different values can exist for a slot.
 * - acceptors: once a value is chosen at ballot b, no acceptor holds a different value at a ballot ≥ b.
 * - honest members never sign two values in one slot and ballot.
 * - durability: a promise or vote leaves a node only after it is on that node's disk; a decision is
 *   reported only after it is on disk; after a crash and restart, every decision the node reported is
 *   still on its disk (and decisions never change).
 * - agreement: every decision reported by any node, any incarnation, agrees per slot, carries a valid
 *   certificate, and nothing is reported after a seal; each node reports in slot order.
 * - validity: a decided value was proposed by a client (or is a leader's noop).
 */
export class ConsensusChecker {
  /** slot → the value digest chosen, with the lowest ballot it was chosen at. */
  readonly chosen = new Map<number, { digest: string; ballot: Ballot }>();
  /** slot → digest reported decided. */
  readonly decided = new Map<number, string>();
  sealSlot: number | null = null;
  private readonly votes = new Map<string, Map<string, Set<string>>>();
  private readonly signed = new Map<string, string>();
  private readonly verified = new WeakSet<ConsensusCertificate>();
  private readonly quorum: number;

  /**
   * @param proposed digests of every value a client proposes: validity says nothing else is decided
   *   (but the leader's noops).
   */
  constructor(
    private readonly members: readonly string[],
    private readonly network: string,
    private readonly disks: () => readonly PersistedGroupState[],
    private readonly proposed: ReadonlySet<string>,
  ) {
    this.quorum = quorumOf(members.length);
  }

  /** A message is about to leave `from`, whose disk is `disk` (effects before it already applied). */
  onSend(from: string, disk: PersistedGroupState, message: ConsensusMessage): void {
    switch (message.type) {
      case 'Prepare':
      case 'Promise':
        if (compareBallots(disk.promised, message.ballot) < 0)
          fail(
            `${message.type} for ballot ${ballotKey(message.ballot)} left ${from} before its promise was persisted`,
          );
        break;
      case 'Accept':
        for (const p of message.proposals) {
          const own = disk.accepted.find((a) => a.slot === p.slot);
          if (
            own === undefined ||
            compareBallots(own.ballot, message.ballot) !== 0 ||
            valueDigest(own.value) !== valueDigest(p.value)
          )
            fail(`Accept for slot ${p.slot} left leader ${from} before its own vote was persisted`);
          this.vote(from, p.slot, message.ballot, valueDigest(p.value));
        }
        break;
      case 'Accepted':
        for (const v of message.votes) {
          const own = disk.accepted.find((a) => a.slot === v.slot);
          if (
            own === undefined ||
            compareBallots(own.ballot, message.ballot) !== 0 ||
            valueDigest(own.value) !== v.digest
          )
            fail(
              `vote for slot ${v.slot} at ${ballotKey(message.ballot)} left ${from} before it was persisted`,
            );
          this.vote(from, v.slot, message.ballot, v.digest);
        }
        break;
      case 'Decided':
        for (const cert of message.certificates) this.certificate(cert);
        break;
      default:
        break;
    }
  }

  /** A node persisted these accepted values. */
  onPersist(accepted: PersistedGroupState['accepted']): void {
    for (const a of accepted) this.checkAccepted(a.slot, a.ballot, valueDigest(a.value));
  }

  /** A node reported a decision. `expectedSlot` is the next slot it should report in order. */
  onDecided(
    node: string,
    effect: Extract<ConsensusEffect, { type: 'decided' }>,
    disk: PersistedGroupState,
    expectedSlot: number,
  ): void {
    const { slot, value, certificate } = effect;
    const digest = valueDigest(value);
    if (certificate.slot !== slot || valueDigest(certificate.value) !== digest)
      fail(`${node} reported slot ${slot} with a certificate for another slot or value`);
    this.certificate(certificate);
    if (value.kind !== 'noop' && !this.proposed.has(digest))
      fail(`${node} decided a value no client proposed in slot ${slot}: ${JSON.stringify(value)}`);
    if (slot !== expectedSlot && !(slot < expectedSlot && effect.proposals.length > 0))
      fail(`${node} reported slot ${slot} out of order (expected ${expectedSlot})`);
    const known = this.decided.get(slot);
    if (known !== undefined && known !== digest)
      fail(`slot ${slot} decided two values: ${known} and ${digest}`);
    this.decided.set(slot, digest);
    const onDisk = disk.decided.find((c) => c.slot === slot);
    if (onDisk === undefined || valueDigest(onDisk.value) !== digest)
      fail(`${node} reported slot ${slot} before persisting the decision`);
    if (this.sealSlot !== null && slot > this.sealSlot)
      fail(`${node} reported slot ${slot} after the seal at slot ${this.sealSlot}`);
    if (value.kind === 'seal') {
      if (this.sealSlot !== null && this.sealSlot !== slot)
        fail(`two seals: slots ${this.sealSlot} and ${slot}`);
      this.sealSlot = slot;
      for (const s of this.decided.keys())
        if (s > slot) fail(`slot ${s} was reported although slot ${slot} seals`);
    }
  }

  /** After a node restarts: everything it ever reported is still on its disk, unchanged. */
  onRestart(node: string, reported: ReadonlyMap<number, string>, disk: PersistedGroupState): void {
    for (const [slot, digest] of reported) {
      const onDisk = disk.decided.find((c) => c.slot === slot);
      if (onDisk === undefined || valueDigest(onDisk.value) !== digest)
        fail(`${node} lost its decision of slot ${slot} across a restart`);
    }
  }

  /** After a step of a live node: its durable fields are all on disk, and its decisions agree. */
  onState(node: string, state: ConsensusState, disk: PersistedGroupState): void {
    if (compareBallots(state.promised, disk.promised) !== 0)
      fail(`${node} holds promise ${state.promised && ballotKey(state.promised)} that is not on disk`);
    if (state.accepted.size !== disk.accepted.length || state.decided.size !== disk.decided.length)
      fail(`${node} holds accepted values or decisions that are not on disk`);
    for (const [slot, cert] of state.decided) {
      const digest = valueDigest(cert.value);
      const chosen = this.chosen.get(slot);
      if (chosen !== undefined && chosen.digest !== digest)
        fail(`${node} holds a decision of slot ${slot} that was not chosen`);
      const known = this.decided.get(slot);
      if (known !== undefined && known !== digest)
        fail(`${node} holds a conflicting decision of slot ${slot}`);
    }
  }

  private certificate(cert: ConsensusCertificate): void {
    if (this.verified.has(cert)) return;
    if (!verifyConsensusCertificate(cert, this.members, this.network))
      fail(`an invalid certificate for slot ${cert.slot} was accepted and passed on`);
    this.verified.add(cert);
    const digest = valueDigest(cert.value);
    for (const { member } of cert.signatures) this.vote(member, cert.slot, cert.ballot, digest);
  }

  private vote(member: string, slot: number, ballot: Ballot, digest: string): void {
    const key = `${slot}|${ballotKey(ballot)}`;
    const signedKey = `${key}|${member}`;
    const previous = this.signed.get(signedKey);
    if (previous !== undefined && previous !== digest)
      fail(`honest member ${member} signed two values in slot ${slot} at ballot ${ballotKey(ballot)}`);
    this.signed.set(signedKey, digest);
    let byDigest = this.votes.get(key);
    if (byDigest === undefined) this.votes.set(key, (byDigest = new Map<string, Set<string>>()));
    let voters = byDigest.get(digest);
    if (voters === undefined) byDigest.set(digest, (voters = new Set()));
    if (voters.has(member)) return;
    voters.add(member);
    if (voters.size === this.quorum) this.choose(slot, ballot, digest);
  }

  private choose(slot: number, ballot: Ballot, digest: string): void {
    const chosen = this.chosen.get(slot);
    if (chosen !== undefined && chosen.digest !== digest)
      fail(
        `slot ${slot}: two values chosen (${chosen.digest} at ${ballotKey(chosen.ballot)}, ${digest} at ${ballotKey(ballot)}): conflicting certificates are possible`,
      );
    if (chosen === undefined || compareBallots(ballot, chosen.ballot) < 0)
      this.chosen.set(slot, { digest, ballot });
    for (const disk of this.disks())
      for (const a of disk.accepted)
        if (a.slot === slot) this.checkAccepted(slot, a.ballot, valueDigest(a.value));
  }

  private checkAccepted(slot: number, ballot: Ballot, digest: string): void {
    const chosen = this.chosen.get(slot);
    if (chosen !== undefined && compareBallots(ballot, chosen.ballot) >= 0 && digest !== chosen.digest)
      fail(
        `slot ${slot}: an acceptor holds ${digest} at ${ballotKey(ballot)} although ${chosen.digest} was chosen at ${ballotKey(chosen.ballot)}`,
      );
  }
}
