import type { Clock } from '../base/clock.js';
import { EngineError } from '../base/errors.js';
import type { BlockId } from '../base/ids.js';
import { createConsensusState, step, type ConsensusInit, type ConsensusState } from './core.js';
import { emptyPersisted, mergePersisted } from './persisted.js';
import type {
  ClientProposal,
  ConsensusCertificate,
  ConsensusEffect,
  ConsensusGroup,
  ConsensusInput,
  ConsensusMessage,
  ConsensusValue,
  EquivocationProof,
  PersistedGroupState,
  PersistRecord,
  RejectReason,
  SignatureVerifier,
  VoteSigner,
} from './types.js';

/**
 * The edge around one member's core for one group: it feeds inputs one at a time, carries out the
 * effects in order — a `persist` is awaited until durable before any later effect leaves, except a
 * leader's `Accept` requests, which carry no vote of its own and leave first — and turns `decided` /
 * `reject` effects into settled proposals. Network and disk come in as interfaces.
 */

/** Durable storage of consensus state, per group. */
export interface ConsensusStore {
  load(blockId: BlockId): Promise<PersistedGroupState | undefined>;
  /**
   * Resolves once the record is durable (one atomic, synced batch). A record of decisions alone may
   * resolve once written but before it is synced: a lost decision is learned again from the votes.
   */
  persist(blockId: BlockId, record: PersistRecord, options?: PersistOptions): Promise<void>;
}

export interface PersistOptions {
  /**
   * The record may resolve before it is synced: nothing in it leaves this member before a later
   * synced write of the same store does (a group of one member; cluster/deferred-syncs.ts).
   */
  readonly deferSync?: boolean;
}

/** Sends a message to a member; delivery is best effort (the core retransmits). */
export interface ConsensusTransport {
  send(from: string, to: string, message: ConsensusMessage): void;
}

/** Keeps consensus state in memory (tests, simulations, and the in-memory network). */
export class MemoryConsensusStore implements ConsensusStore {
  private readonly groups = new Map<BlockId, PersistedGroupState>();

  load(blockId: BlockId): Promise<PersistedGroupState | undefined> {
    return Promise.resolve(this.groups.get(blockId));
  }

  persist(blockId: BlockId, record: PersistRecord): Promise<void> {
    this.groups.set(blockId, mergePersisted(this.groups.get(blockId) ?? emptyPersisted, record));
    return Promise.resolve();
  }
}

/** The engine error a rejected proposal surfaces as (codes are what callers branch on). */
export function rejectionError(reason: RejectReason): EngineError {
  switch (reason.kind) {
    case 'not-leader':
      return new EngineError('UNAVAILABLE', 'not the leader of this consensus group', {
        leader: reason.leader,
      });
    case 'no-quorum':
      return new EngineError('NO_QUORUM', 'a majority of the consensus group is unreachable', {
        inDoubt: reason.inDoubt,
      });
    case 'preempted':
      return new EngineError('UNAVAILABLE', 'leadership changed while the proposal was in flight', {
        leader: reason.leader,
        inDoubt: true,
      });
    case 'timeout':
      return new EngineError('TIMEOUT', 'the proposal was not decided in time', { inDoubt: true });
    case 'sealed':
      return new EngineError('UNAVAILABLE', 'the consensus group is sealed; propose to its successor', {
        successor: reason.successor,
        members: reason.members,
      });
    case 'sealing':
      return new EngineError('UNAVAILABLE', 'the consensus group is being sealed');
    case 'full':
      return new EngineError('UNAVAILABLE', 'the consensus group has no slot left but its seal');
    case 'busy':
      return new EngineError('UNAVAILABLE', 'too many proposals are waiting');
    case 'invalid':
      return new EngineError('BAD_INPUT', reason.message);
    case 'conflict': {
      const error = new EngineError(
        'CONFLICT',
        'the log position was taken by an earlier decision of the group',
        { logConflict: true },
      );
      conflictDecisions.set(error, reason.decided);
      return error;
    }
  }
}

const conflictDecisions = new WeakMap<EngineError, readonly ConsensusCertificate[]>();

/**
 * The decided entries a proposal refused for a log conflict (`RejectReason` conflict) came back
 * with, or undefined when the error is not such a refusal.
 */
export function conflictingDecisions(error: unknown): readonly ConsensusCertificate[] | undefined {
  return error instanceof EngineError ? conflictDecisions.get(error) : undefined;
}

function stoppedError(inDoubt: boolean): EngineError {
  return new EngineError('UNAVAILABLE', 'the consensus group was stopped here', { inDoubt });
}

export interface GroupDriverComponents {
  readonly store: ConsensusStore;
  readonly transport: ConsensusTransport;
  readonly clock: Clock;
  readonly signer: VoteSigner;
  readonly verify?: SignatureVerifier;
}

export interface GroupDriverInit extends ConsensusInit {
  readonly onDecided?: (effect: Extract<ConsensusEffect, { type: 'decided' }>) => void;
  readonly onEquivocation?: (proof: EquivocationProof) => void;
}

export class GroupDriver {
  private state: ConsensusState | null = null;
  private queue: Promise<void> = Promise.resolve();
  private readonly waiting = new Map<
    string,
    { resolve: (c: ConsensusCertificate) => void; reject: (e: EngineError) => void }
  >();
  private nextId = 0;
  private stopped = false;

  constructor(
    private readonly components: GroupDriverComponents,
    readonly group: ConsensusGroup,
    private readonly init: GroupDriverInit = {},
  ) {}

  /** Loads what this member persisted for the group and starts its core. */
  start(): Promise<void> {
    return this.enqueue(async () => {
      const c = this.components;
      const now = c.clock.now();
      this.state = createConsensusState(
        this.group,
        { signer: c.signer, ...(c.verify !== undefined ? { verify: c.verify } : {}) },
        this.init,
        now,
      );
      const persisted = await c.store.load(this.group.blockId);
      if (persisted !== undefined) await this.apply({ type: 'restart', now, persisted });
    });
  }

  /** The core's current state (read-only; for status views and tests). */
  get snapshot(): ConsensusState | null {
    return this.state;
  }

  receive(from: string, message: ConsensusMessage): Promise<void> {
    return this.enqueue(() =>
      this.apply({ type: 'message', now: this.components.clock.now(), from, message }),
    );
  }

  tick(): Promise<void> {
    return this.enqueue(() => this.apply({ type: 'tick', now: this.components.clock.now() }));
  }

  /** The member is down (its connection closed at `since`): see the core's `suspect` input. */
  suspect(member: string, since: number): Promise<void> {
    return this.enqueue(() =>
      this.apply({ type: 'suspect', now: this.components.clock.now(), member, since }),
    );
  }

  /** Proposes a value; resolves with its certificate once decided, rejects with the core's reason. */
  propose(value: ConsensusValue): Promise<ConsensusCertificate> {
    const id = `${this.components.signer.id.slice(0, 8)}-${++this.nextId}`;
    const settled = new Promise<ConsensusCertificate>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
    });
    // Values proposed before the core's next step go in together: one step, one persist, one Accept
    // per member for a whole batch of log decisions (the core gives each its own slot, in order).
    this.proposals.push({ id, value });
    if (this.proposals.length === 1) {
      let taken: ClientProposal[] = [];
      void this.enqueue(() => {
        taken = this.proposals;
        this.proposals = [];
        return this.apply({ type: 'propose', now: this.components.clock.now(), proposals: taken });
      }).catch((error: unknown) => {
        const failed = taken.length > 0 ? taken : this.proposals.splice(0);
        for (const proposal of failed) {
          const waiter = this.waiting.get(proposal.id);
          this.waiting.delete(proposal.id);
          waiter?.reject(error instanceof EngineError ? error : new EngineError('INTERNAL', String(error)));
        }
      });
    }
    return settled;
  }

  /** Proposals waiting for the next step (see `propose`). */
  private proposals: ClientProposal[] = [];

  /**
   * Stops the driver: proposals still waiting are rejected (UNAVAILABLE, in doubt: a value in flight
   * may still be decided by the others), later inputs are ignored, and the call resolves once the step
   * in progress is done, so everything it persisted is on disk before another driver for the group
   * loads it.
   */
  stop(): Promise<void> {
    this.halt();
    return this.queue;
  }

  /** Stopped: by `stop`, or by a persist that failed (the group must start again from disk). */
  get halted(): boolean {
    return this.stopped;
  }

  private halt(): void {
    this.stopped = true;
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    for (const waiter of waiting) waiter.reject(stoppedError(true));
  }

  private enqueue(work: () => Promise<void>): Promise<void> {
    const next = this.queue.then(work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async apply(input: ConsensusInput): Promise<void> {
    if (this.stopped) {
      if (input.type === 'propose')
        for (const { id } of input.proposals) {
          const waiter = this.waiting.get(id);
          this.waiting.delete(id);
          waiter?.reject(stoppedError(false));
        }
      return;
    }
    if (this.state === null) throw new EngineError('UNAVAILABLE', 'the consensus group is not started');
    const { state, effects } = step(this.state, input);
    this.state = state;
    const c = this.components;
    // An Accept carries no promise or vote of this member, only the leader's request: it leaves
    // while the leader's own vote is being persisted, so the members' writes overlap the leader's.
    // That vote counts only in a later step (this queue runs one step at a time), after the persist.
    for (const effect of effects)
      if (effect.type === 'send' && effect.message.type === 'Accept')
        c.transport.send(c.signer.id, effect.to, effect.message);
    for (const effect of effects) {
      switch (effect.type) {
        case 'persist':
          // Durable before anything after it leaves this member.
          try {
            await c.store.persist(this.group.blockId, effect.record);
          } catch (error) {
            // The core's state in memory is ahead of the disk now: no later step may act on it (a
            // vote counted but never stored, or retransmitted from memory). The driver stops; the
            // group starts again from what is on disk.
            this.halt();
            throw error;
          }
          break;
        case 'send':
          if (effect.message.type !== 'Accept') c.transport.send(c.signer.id, effect.to, effect.message);
          break;
        case 'decided':
          for (const id of effect.proposals) {
            this.waiting.get(id)?.resolve(effect.certificate);
            this.waiting.delete(id);
          }
          this.init.onDecided?.(effect);
          break;
        case 'reject': {
          const waiter = this.waiting.get(effect.proposal);
          this.waiting.delete(effect.proposal);
          waiter?.reject(rejectionError(effect.reason));
          break;
        }
        case 'equivocation':
          this.init.onEquivocation?.(effect.proof);
          break;
      }
    }
  }
}
