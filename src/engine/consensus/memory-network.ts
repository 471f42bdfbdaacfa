import type { Clock } from '../base/clock.js';
import { EngineError, isEngineError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import type { ConsensusInit } from './core.js';
import { GroupDriver, MemoryConsensusStore, type ConsensusStore, type ConsensusTransport } from './driver.js';
import type {
  ConsensusCertificate,
  ConsensusGroup,
  ConsensusMessage,
  ConsensusValue,
  VoteSigner,
} from './types.js';
import { leadershipOrder } from './values.js';

/** Gets a value decided by a group and returns its certificate (what a commit protocol needs). */
export interface ConsensusProposer {
  propose(group: ConsensusGroup, value: ConsensusValue): Promise<ConsensusCertificate>;
  /**
   * Optional: whether this member voted for (accepted) or learned a log entry of the group at an LSN
   * above `lsn`, as its durable state says.
   */
  votedBeyond?(group: Pick<ConsensusGroup, 'blockId' | 'members'>, lsn: number): Promise<boolean>;
}

export interface MemoryConsensusNetworkComponents {
  readonly clock: Clock;
}

/**
 * Several members in one process, joined by an in-memory transport (messages are delivered on later
 * microtasks, one member's inputs in order). It drives real cores through GroupDrivers, so it is the
 * networked protocol minus the wire: used by the ConsensusCertifier until the libp2p edge exists, and
 * by tests. Members can be taken offline to model a crash.
 */
export class MemoryConsensusNetwork implements ConsensusProposer, ConsensusTransport {
  private readonly signers = new Map<string, { signer: VoteSigner; store: ConsensusStore }>();
  private readonly drivers = new Map<string, Map<string, GroupDriver>>();
  private readonly offline = new Set<string>();

  constructor(
    private readonly components: MemoryConsensusNetworkComponents,
    private readonly init: ConsensusInit = {},
  ) {}

  /** Hosts a member here (its store survives `setOffline`, as a disk survives a crash). */
  addMember(signer: VoteSigner, store: ConsensusStore = new MemoryConsensusStore()): void {
    this.signers.set(signer.id, { signer, store });
  }

  /** Takes a member off the network (its messages are lost) or brings it back (restarted from its store). */
  async setOffline(member: string, offline: boolean): Promise<void> {
    if (offline) {
      this.offline.add(member);
      this.drivers.delete(member);
      return;
    }
    this.offline.delete(member);
    for (const group of this.knownGroups()) await this.driverFor(member, group);
  }

  send(from: string, to: string, message: ConsensusMessage): void {
    if (this.offline.has(from) || this.offline.has(to)) return;
    const driver = this.drivers.get(to)?.get(message.blockId);
    if (driver === undefined) return;
    // A later microtask: no member handles a message inside another member's step.
    void Promise.resolve()
      .then(() => driver.receive(from, message))
      .catch(() => undefined);
  }

  /** Ticks every running core (the composition root calls this every consensusTickMs). */
  async tick(): Promise<void> {
    const all = [...this.drivers.values()].flatMap((groups) => [...groups.values()]);
    await Promise.all(all.map((d) => d.tick()));
  }

  async propose(group: ConsensusGroup, value: ConsensusValue): Promise<ConsensusCertificate> {
    const hosted = group.members.filter((m) => this.signers.has(m) && !this.offline.has(m));
    if (hosted.length === 0) throw new EngineError('UNAVAILABLE', 'no member of the group is reachable here');
    for (const member of hosted) await this.driverFor(member, group);
    // Ask the member nearest the block first; follow redirects to the leader.
    let target = leadershipOrder(group.blockId, hosted)[0]!;
    for (let redirects = 0; ; redirects++) {
      const driver = await this.driverFor(target, group);
      try {
        return await driver.propose(value);
      } catch (error) {
        const leader = isEngineError(error, 'UNAVAILABLE') ? error.details?.leader : undefined;
        const next = typeof leader === 'string' && hosted.includes(leader) ? leader : undefined;
        if (next === undefined || next === target || redirects >= limits.consensusRedirectsMax) throw error;
        target = next;
      }
    }
  }

  /** The driver of `member` for `group` (started on first use). */
  async driverFor(member: string, group: ConsensusGroup): Promise<GroupDriver> {
    let groups = this.drivers.get(member);
    if (groups === undefined) this.drivers.set(member, (groups = new Map<string, GroupDriver>()));
    let driver = groups.get(group.blockId);
    if (driver === undefined) {
      const hosted = this.signers.get(member);
      if (hosted === undefined) throw new EngineError('NOT_FOUND', `member ${member} is not hosted here`);
      driver = new GroupDriver(
        { store: hosted.store, transport: this, clock: this.components.clock, signer: hosted.signer },
        group,
        this.init,
      );
      groups.set(group.blockId, driver);
      await driver.start();
    }
    return driver;
  }

  private knownGroups(): ConsensusGroup[] {
    const groups = new Map<string, ConsensusGroup>();
    for (const byGroup of this.drivers.values())
      for (const d of byGroup.values()) groups.set(d.group.blockId, d.group);
    return [...groups.values()];
  }
}
