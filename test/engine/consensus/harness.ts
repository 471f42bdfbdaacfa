import { createConsensusState, step, type ConsensusState } from '../../../src/engine/consensus/core.js';
import { emptyPersisted, mergePersisted } from '../../../src/engine/consensus/persisted.js';
import type {
  ClientProposal,
  ConsensusEffect,
  ConsensusGroup,
  ConsensusInput,
  ConsensusMessage,
  ConsensusTiming,
  ConsensusValue,
  EquivocationProof,
  PersistedGroupState,
  RejectReason,
} from '../../../src/engine/consensus/types.js';
import { leadershipOrder } from '../../../src/engine/consensus/values.js';
import type { Ed25519Identity } from '../../../src/engine/transactions/certifier.js';
import { derivedBlockId, derivedMembers } from '../../sim/identities.js';

export const timing: ConsensusTiming = {
  heartbeatMs: 100,
  suspectAfterMs: 400,
  retransmitMs: 150,
  proposalTimeoutMs: 5000,
  downSuspectMs: 200,
  // Every member gets each Accept at once: the scenarios choose which member's copy to deliver or
  // hold. The quorum-first Accepts have tests of their own (core.test.ts, "thrifty accepts").
  acceptWidenMs: 0,
};

/** The default timing of a TestGroup (a name the constructor's `timing` does not shadow). */
const testTiming = timing;

export interface Envelope {
  readonly from: string;
  readonly to: string;
  readonly message: ConsensusMessage;
}

/** What to do with a message in flight: deliver it, drop it, or keep it in the queue for later. */
export type Fate = 'deliver' | 'drop' | 'hold';

export function entry(name: string): ConsensusValue {
  return { kind: 'entry', trxId: `trx-${name}`, decision: 'committed', digest: `digest-${name}` };
}

/**
 * A consensus group run by hand: messages wait in a FIFO until a test delivers (or drops) them, time
 * moves only when told, and every node's effects are recorded. Crashed nodes keep only their disk.
 */
export class TestGroup {
  readonly identities: Ed25519Identity[];
  readonly members: string[];
  readonly group: ConsensusGroup;
  /** Members in leadership order (nearest the block first). */
  readonly order: string[];
  readonly states = new Map<string, ConsensusState | null>();
  readonly disks = new Map<string, PersistedGroupState>();
  readonly decided = new Map<string, Extract<ConsensusEffect, { type: 'decided' }>[]>();
  readonly rejects = new Map<string, { proposal: string; reason: RejectReason }[]>();
  readonly equivocations: EquivocationProof[] = [];
  /** The effect lists returned by the last input of each node. */
  readonly lastEffects = new Map<string, readonly ConsensusEffect[]>();
  queue: Envelope[] = [];
  now = 0;
  private proposals = 0;

  constructor(
    size: number,
    label = `group-${size}`,
    readonly timing: ConsensusTiming = testTiming,
  ) {
    this.identities = derivedMembers(label, size);
    this.members = this.identities.map((i) => i.id);
    this.group = { network: 'test', blockId: derivedBlockId(label), members: this.members };
    this.order = leadershipOrder(this.group.blockId, this.members);
    for (const identity of this.identities) {
      this.states.set(
        identity.id,
        createConsensusState(this.group, { signer: identity }, { timing: this.timing }, 0),
      );
      this.disks.set(identity.id, emptyPersisted);
      this.decided.set(identity.id, []);
      this.rejects.set(identity.id, []);
    }
  }

  identity(id: string): Ed25519Identity {
    return this.identities.find((i) => i.id === id)!;
  }

  state(id: string): ConsensusState {
    const state = this.states.get(id);
    if (state === null || state === undefined) throw new Error(`${id} is down`);
    return state;
  }

  input(id: string, input: ConsensusInput): readonly ConsensusEffect[] {
    const result = step(this.state(id), input);
    this.states.set(id, result.state);
    this.lastEffects.set(id, result.effects);
    for (const effect of result.effects) {
      switch (effect.type) {
        case 'persist':
          this.disks.set(id, mergePersisted(this.disks.get(id)!, effect.record));
          break;
        case 'send':
          this.queue.push({ from: id, to: effect.to, message: effect.message });
          break;
        case 'decided':
          this.decided.get(id)!.push(effect);
          break;
        case 'reject':
          this.rejects.get(id)!.push({ proposal: effect.proposal, reason: effect.reason });
          break;
        case 'equivocation':
          this.equivocations.push(effect.proof);
          break;
      }
    }
    return result.effects;
  }

  propose(id: string, ...values: ConsensusValue[]): string[] {
    const proposals: ClientProposal[] = values.map((value) => ({ id: `p${++this.proposals}`, value }));
    this.input(id, { type: 'propose', now: this.now, proposals });
    return proposals.map((p) => p.id);
  }

  /** Ticks every live node at the current time. */
  tick(): void {
    for (const [id, state] of this.states)
      if (state !== null) this.input(id, { type: 'tick', now: this.now });
  }

  /** Moves time forward in steps of `stepMs`, ticking and delivering as `fate` says, `ms` in all. */
  advance(ms: number, fate: (e: Envelope) => Fate = () => 'deliver', stepMs = 25): void {
    const end = this.now + ms;
    while (this.now < end) {
      this.now = Math.min(end, this.now + stepMs);
      this.tick();
      this.deliver(fate);
    }
  }

  /** Delivers queued messages (and what they cause) until only held ones remain. */
  deliver(fate: (e: Envelope) => Fate = () => 'deliver', limit = 10_000): void {
    for (let n = 0; n < limit; n++) {
      const index = this.queue.findIndex((e) => fate(e) !== 'hold');
      if (index < 0) return;
      const [envelope] = this.queue.splice(index, 1);
      if (fate(envelope!) === 'drop') continue;
      this.inject(envelope!);
    }
    throw new Error('messages kept flowing past the delivery limit');
  }

  /** Delivers one message now (to a live node; to a crashed one it is lost). */
  inject(envelope: Envelope): readonly ConsensusEffect[] {
    if (this.states.get(envelope.to) === null) return [];
    return this.input(envelope.to, {
      type: 'message',
      now: this.now,
      from: envelope.from,
      message: envelope.message,
    });
  }

  crash(id: string): void {
    this.states.set(id, null);
    this.queue = this.queue.filter((e) => e.to !== id);
  }

  restart(id: string): readonly ConsensusEffect[] {
    const identity = this.identity(id);
    this.states.set(
      id,
      createConsensusState(this.group, { signer: identity }, { timing: this.timing }, this.now),
    );
    return this.input(id, { type: 'restart', now: this.now, persisted: this.disks.get(id)! });
  }

  /** Starts the group: the nearest member becomes leader. Returns its id. */
  elect(): string {
    this.advance(50);
    const leader = this.order[0]!;
    if (this.state(leader).role.kind !== 'leader') throw new Error('the nearest member did not take over');
    return leader;
  }

  decidedValues(id: string): string[] {
    return this.decided
      .get(id)!
      .map((d) => `${d.slot}:${d.value.kind === 'entry' ? d.value.trxId : d.value.kind}`);
  }
}

/** Messages of one type in a list of effects. */
export function sent<T extends ConsensusMessage['type']>(
  effects: readonly ConsensusEffect[],
  type: T,
): { to: string; message: Extract<ConsensusMessage, { type: T }> }[] {
  const out: { to: string; message: Extract<ConsensusMessage, { type: T }> }[] = [];
  for (const e of effects)
    if (e.type === 'send' && e.message.type === type)
      out.push({ to: e.to, message: e.message as Extract<ConsensusMessage, { type: T }> });
  return out;
}
