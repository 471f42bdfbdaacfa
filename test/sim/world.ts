import { SeededRng } from '../../src/engine/base/rng.js';
import { createConsensusState, step, type ConsensusState } from '../../src/engine/consensus/core.js';
import { emptyPersisted, mergePersisted } from '../../src/engine/consensus/persisted.js';
import type {
  ConsensusEffect,
  ConsensusGroup,
  ConsensusInput,
  ConsensusMessage,
  DropReason,
  PersistedGroupState,
} from '../../src/engine/consensus/types.js';
import { dropReasons } from '../../src/engine/consensus/types.js';
import { valueDigest } from '../../src/engine/consensus/values.js';
import type { Ed25519Identity } from '../../src/engine/transactions/certifier.js';
import { ConsensusChecker, InvariantViolation } from './checker.js';
import { EventQueue } from './event-queue.js';
import { derivedIdentity, simGroup } from './identities.js';
import type { SimOptions } from './options.js';

/**
 * A deterministic network simulator for one consensus group. It runs the pure cores, delivers their
 * messages with seeded delay, loss, duplication, reordering, replays and forged copies, splits and
 * heals the network, crashes nodes (each keeps only its disk: what its cores asked to persist) and
 * restarts them, and plays clients that propose values and retry until they are decided. Every step
 * is checked by ConsensusChecker; after the chaos phase the network heals and every proposal must be
 * decided, and every live node caught up, within the calm phase.
 *
 * All randomness comes from the seed and virtual time only moves through the event queue, so a run
 * is a pure function of its options: a failing seed replays exactly.
 */

export interface SimResult {
  readonly seed: number;
  readonly members: number;
  readonly steps: number;
  readonly virtualMs: number;
  /** Slots decided (the seal included). */
  readonly decidedSlots: number;
  readonly sealed: boolean;
  /** Distinct ballots that ran phase 1. */
  readonly ballots: number;
  readonly crashes: number;
  /** Messages dropped by the cores, by reason (forgeries, stale votes…). */
  readonly drops: Readonly<Record<DropReason, number>>;
  /** From the start of the calm phase until every proposal was decided and every live node caught up. */
  readonly livenessMs: number;
  readonly livenessSteps: number;
  /** A digest of everything that happened: equal for equal options. */
  readonly fingerprint: string;
}

export class SimulationFailure extends Error {
  constructor(
    message: string,
    readonly seed: number,
    readonly trace: readonly string[],
  ) {
    super(message);
    this.name = 'SimulationFailure';
  }
}

type SimEvent =
  | { kind: 'deliver'; from: string; to: number; message: ConsensusMessage; note: string }
  | { kind: 'tick'; node: number }
  | { kind: 'crash'; node: number; midStep: boolean }
  | { kind: 'restart'; node: number }
  | { kind: 'partition'; groups: readonly (readonly number[])[] }
  | { kind: 'propose'; client: number; node: number; generation: number }
  | { kind: 'calm' };

interface SimNode {
  readonly index: number;
  readonly id: string;
  readonly name: string;
  readonly identity: Ed25519Identity;
  state: ConsensusState | null;
  disk: PersistedGroupState;
  crashMidStep: boolean;
  /** Every decision this node ever reported (all incarnations): slot → digest. */
  readonly reported: Map<number, string>;
  /** The next slot this incarnation should report. */
  nextReport: number;
}

interface SimClient {
  readonly value: SimOptions['proposals'][number]['value'];
  readonly digest: string;
  decided: boolean;
  redirected: boolean;
  attempts: number;
  generation: number;
}

const network = 'sim';
const clientRetryMs = 1000;

/** `traceLimit`: how many of the last events a failure reports. */
export function runSimulation(options: SimOptions, traceLimit = 120): SimResult {
  return new World(options, traceLimit).run();
}

class World {
  private readonly rng: SeededRng;
  private readonly queue = new EventQueue<SimEvent>();
  private readonly nodes: SimNode[];
  private readonly byId = new Map<string, SimNode>();
  private readonly group: ConsensusGroup;
  private readonly checker: ConsensusChecker;
  private readonly clients: SimClient[];
  private readonly clientOf = new Map<string, number>();
  private readonly outsider = derivedIdentity('outsider');
  private side: number[];
  private now = 0;
  private steps = 0;
  private calm = false;
  private calmSteps = 0;
  private readonly trace: string[] = [];
  private readonly ballots = new Set<string>();
  private crashes = 0;
  private readonly drops: Record<DropReason, number> = Object.fromEntries(
    dropReasons.map((r) => [r, 0]),
  ) as Record<DropReason, number>;
  private fingerprint = 0;

  constructor(
    private readonly options: SimOptions,
    private readonly traceLimit: number,
  ) {
    deepFreeze(options); // values are shared by every node and message, as on a real network: immutable
    this.rng = new SeededRng(options.seed ^ 0x5eed);
    const { identities, blockId } = simGroup(options.seed, options.members);
    this.nodes = identities.map((identity, index) => ({
      index,
      id: identity.id,
      name: `n${index}`,
      identity,
      state: null,
      disk: emptyPersisted,
      crashMidStep: false,
      reported: new Map(),
      nextReport: 0,
    }));
    for (const node of this.nodes) this.byId.set(node.id, node);
    this.group = { network, blockId, members: identities.map((i) => i.id) };
    this.clients = options.proposals.map((p) => ({
      value: p.value,
      digest: valueDigest(p.value),
      decided: false,
      redirected: false,
      attempts: 0,
      generation: 0,
    }));
    this.checker = new ConsensusChecker(
      this.group.members,
      network,
      () => this.nodes.map((n) => n.disk),
      new Set(this.clients.map((c) => c.digest)),
    );
    this.side = this.nodes.map(() => 0);
  }

  run(): SimResult {
    const o = this.options;
    for (const node of this.nodes) {
      node.state = createConsensusState(this.group, { signer: node.identity }, { timing: o.timing }, 0);
      this.queue.push(this.rng.int(o.tickMs), { kind: 'tick', node: node.index });
    }
    for (const p of o.partitions) this.queue.push(p.atMs, { kind: 'partition', groups: p.groups });
    for (const c of o.crashes) {
      this.queue.push(c.atMs, { kind: 'crash', node: c.node, midStep: c.midStep });
      if (c.restartAtMs !== null) this.queue.push(c.restartAtMs, { kind: 'restart', node: c.node });
    }
    o.proposals.forEach((p, client) =>
      this.queue.push(p.atMs, { kind: 'propose', client, node: p.node, generation: 0 }),
    );
    this.queue.push(o.chaosMs, { kind: 'calm' });
    const deadline = o.chaosMs + o.calmMs;
    try {
      for (;;) {
        const next = this.queue.pop();
        if (next === undefined) this.fail('the event queue ran dry');
        this.now = next.at;
        if (this.now > deadline) {
          this.fail(
            `liveness: ${o.calmMs} ms after the network healed, ${this.undecided()} proposal(s) undecided (${this.clients
              .map((c, i) => (c.decided || c.redirected ? '' : `client ${i}: ${c.attempts} attempts`))
              .filter(Boolean)
              .join(', ')}); ` +
              `reported prefixes ${this.nodes.map((n) => `${n.name}:${n.state === null ? 'down' : n.state.reportedBelow}`).join(' ')}`,
          );
        }
        this.process(next.item);
        this.steps++;
        if (this.calm) {
          this.calmSteps++;
          if (this.live()) break;
          if (this.calmSteps > o.calmStepsMax)
            this.fail(
              `liveness: ${o.calmStepsMax} steps after the network healed, ${this.undecided()} proposal(s) undecided`,
            );
        }
      }
    } catch (error) {
      if (error instanceof SimulationFailure) throw error;
      const message =
        error instanceof Error
          ? error instanceof InvariantViolation
            ? error.message
            : (error.stack ?? error.message)
          : String(error);
      throw new SimulationFailure(message, o.seed, this.trace);
    }
    for (const node of this.nodes) if (node.state !== null) this.addDrops(node.state);
    return {
      seed: o.seed,
      members: o.members,
      steps: this.steps,
      virtualMs: this.now,
      decidedSlots: this.checker.decided.size,
      sealed: this.checker.sealSlot !== null,
      ballots: this.ballots.size,
      crashes: this.crashes,
      drops: this.drops,
      livenessMs: this.now - o.chaosMs,
      livenessSteps: this.calmSteps,
      fingerprint: (this.fingerprint >>> 0).toString(16),
    };
  }

  private fail(message: string): never {
    throw new SimulationFailure(message, this.options.seed, this.trace);
  }

  private log(line: string): void {
    const text = `${this.now.toString().padStart(5)} ${line}`;
    this.trace.push(text);
    if (this.trace.length > this.traceLimit) this.trace.shift();
    for (let i = 0; i < text.length; i++)
      this.fingerprint = Math.imul(this.fingerprint ^ text.charCodeAt(i), 0x01000193);
  }

  private name(id: string): string {
    return this.byId.get(id)?.name ?? (id === this.outsider.id ? 'outsider' : id.slice(0, 6));
  }

  // ---- events ----

  private process(event: SimEvent): void {
    switch (event.kind) {
      case 'tick': {
        const node = this.nodes[event.node]!;
        this.queue.push(this.now + this.options.tickMs, event);
        if (node.state !== null) this.input(node, { type: 'tick', now: this.now });
        return;
      }
      case 'deliver': {
        const node = this.nodes[event.to]!;
        const sender = this.byId.get(event.from);
        if (node.state === null) return;
        if (sender !== undefined && this.side[sender.index] !== this.side[node.index]) return;
        this.log(`${node.name} <- ${this.name(event.from)} ${describe(event.message)}${event.note}`);
        this.input(node, { type: 'message', now: this.now, from: event.from, message: event.message });
        return;
      }
      case 'propose':
        return this.submit(event.client, event.node, event.generation);
      case 'crash': {
        const node = this.nodes[event.node]!;
        if (node.state === null) return;
        if (event.midStep) {
          node.crashMidStep = true;
          this.log(`${node.name} will crash part way through its next step`);
        } else this.crash(node);
        return;
      }
      case 'restart':
        return this.restart(this.nodes[event.node]!);
      case 'partition':
        return this.partition(event.groups);
      case 'calm': {
        this.calm = true;
        this.log('calm: the network heals, crashed nodes restart, no more loss');
        this.partition([]);
        const down = new Set(this.options.downInCalm);
        for (const node of this.nodes) {
          node.crashMidStep = false;
          if (down.has(node.index)) {
            if (node.state !== null) this.crash(node);
          } else if (node.state === null) this.restart(node);
        }
        return;
      }
    }
  }

  private input(node: SimNode, input: ConsensusInput): void {
    const state = node.state;
    if (state === null) return;
    const result = step(state, input);
    if (node.crashMidStep) {
      const applied = this.rng.int(result.effects.length + 1);
      this.log(`${node.name} crashes after ${applied} of ${result.effects.length} effects`);
      this.apply(node, result.effects.slice(0, applied));
      this.crash(node);
      return;
    }
    node.state = result.state;
    this.apply(node, result.effects);
    this.checker.onState(node.name, result.state, node.disk);
  }

  private apply(node: SimNode, effects: readonly ConsensusEffect[]): void {
    for (const effect of effects) {
      switch (effect.type) {
        case 'persist':
          node.disk = mergePersisted(node.disk, effect.record);
          this.checker.onPersist(effect.record.accepted ?? []);
          break;
        case 'send':
          this.checker.onSend(node.id, node.disk, effect.message);
          if (effect.message.type === 'Prepare')
            this.ballots.add(`${effect.message.ballot.round}/${effect.message.ballot.leader}`);
          this.transmit(node, effect.to, effect.message);
          break;
        case 'decided': {
          this.checker.onDecided(node.name, effect, node.disk, node.nextReport);
          if (effect.slot === node.nextReport) node.nextReport++;
          const digest = valueDigest(effect.value);
          node.reported.set(effect.slot, digest);
          this.log(`${node.name} decided slot ${effect.slot}: ${effect.value.kind} ${digest.slice(0, 6)}`);
          for (const client of this.clients) if (client.digest === digest) client.decided = true;
          break;
        }
        case 'reject':
          this.rejected(node, effect.proposal, effect.reason);
          break;
        case 'equivocation':
          this.fail(
            `${node.name} reported honest member ${this.name(effect.proof.member)} as an equivocator`,
          );
      }
    }
  }

  private crash(node: SimNode): void {
    if (node.state !== null) this.addDrops(node.state);
    node.state = null;
    node.crashMidStep = false;
    this.crashes++;
    this.log(
      `${node.name} crashes (keeps ${node.disk.accepted.length} accepted, ${node.disk.decided.length} decided on disk)`,
    );
  }

  private restart(node: SimNode): void {
    if (node.state !== null) return;
    this.checker.onRestart(node.name, node.reported, node.disk);
    this.log(`${node.name} restarts`);
    const fresh = createConsensusState(
      this.group,
      { signer: node.identity },
      { timing: this.options.timing },
      this.now,
    );
    node.state = fresh;
    node.nextReport = 0;
    this.input(node, { type: 'restart', now: this.now, persisted: node.disk });
  }

  private partition(groups: readonly (readonly number[])[]): void {
    if (groups.length === 0) {
      this.side = this.nodes.map(() => 0);
      this.log('network healed');
      return;
    }
    this.side = this.nodes.map((n) => 1000 + n.index);
    groups.forEach((members, g) => {
      for (const i of members) this.side[i] = g;
    });
    this.log(`partition ${groups.map((g) => `[${g.join(',')}]`).join(' ')}`);
  }

  private addDrops(state: ConsensusState): void {
    for (const reason of dropReasons) this.drops[reason] += state.dropped[reason];
  }

  // ---- the network ----

  private transmit(from: SimNode, to: string, message: ConsensusMessage): void {
    const target = this.byId.get(to);
    if (target === undefined) this.fail(`${from.name} sent to a non-member`);
    deepFreeze(message);
    const o = this.options;
    const rng = this.rng;
    if (!this.calm && rng.float() < o.loss) return;
    const delay = (): number => {
      let d = o.delayMs[0] + rng.int(o.delayMs[1] - o.delayMs[0] + 1);
      if (rng.float() < o.reorder) d += rng.int(o.reorderMs);
      return d;
    };
    this.queue.push(this.now + delay(), {
      kind: 'deliver',
      from: from.id,
      to: target.index,
      message,
      note: '',
    });
    if (rng.float() < o.duplication)
      this.queue.push(this.now + delay(), {
        kind: 'deliver',
        from: from.id,
        to: target.index,
        message,
        note: ' (dup)',
      });
    if (rng.float() < o.replay)
      this.queue.push(this.now + o.replayMs + rng.int(o.replayMs), {
        kind: 'deliver',
        from: from.id,
        to: target.index,
        message,
        note: ' (replay)',
      });
    if (rng.float() < o.forgery) {
      const forged = tamper(rng, from.id, message, this.outsider);
      this.queue.push(this.now + delay(), { kind: 'deliver', ...forged, to: target.index });
    }
  }

  // ---- clients ----

  private submit(index: number, nodeIndex: number, generation: number): void {
    const client = this.clients[index]!;
    if (client.decided || client.redirected || generation !== client.generation) return;
    client.attempts++;
    const id = `c${index}#${client.attempts}`;
    this.clientOf.set(id, index);
    // If no answer comes (the node is down, messages are lost), try again later, elsewhere.
    this.retry(index, this.rng.int(this.nodes.length), clientRetryMs);
    const node = this.nodes[nodeIndex]!;
    if (node.state === null) {
      // A refused connection is noticed at once: try another node soon.
      this.log(`client ${index} finds ${node.name} down (${id})`);
      const other = (nodeIndex + 1 + this.rng.int(this.nodes.length - 1)) % this.nodes.length;
      return this.retry(index, other, 20 + this.rng.int(30));
    }
    this.log(
      `client ${index} proposes ${client.value.kind} ${client.digest.slice(0, 6)} at ${node.name} (${id})`,
    );
    this.input(node, { type: 'propose', now: this.now, proposals: [{ id, value: client.value }] });
  }

  private retry(index: number, node: number, afterMs: number): void {
    const client = this.clients[index]!;
    client.generation++;
    this.queue.push(this.now + afterMs, {
      kind: 'propose',
      client: index,
      node,
      generation: client.generation,
    });
  }

  private rejected(
    node: SimNode,
    proposal: string,
    reason: Extract<ConsensusEffect, { type: 'reject' }>['reason'],
  ): void {
    const index = this.clientOf.get(proposal);
    if (index === undefined) this.fail(`${node.name} rejected unknown proposal ${proposal}`);
    const client = this.clients[index]!;
    this.log(`${node.name} rejects ${proposal}: ${JSON.stringify(reason)}`);
    if (client.decided || client.redirected) return;
    switch (reason.kind) {
      case 'not-leader': {
        const hint = reason.leader === null ? undefined : this.byId.get(reason.leader);
        this.retry(index, hint?.index ?? this.rng.int(this.nodes.length), 1 + this.rng.int(10));
        return;
      }
      case 'sealed':
        client.redirected = true;
        return;
      case 'invalid':
        this.fail(`${node.name} refused a valid proposal: ${reason.message}`);
        return;
      default:
        this.retry(index, this.rng.int(this.nodes.length), 20 + this.rng.int(200));
    }
  }

  private undecided(): number {
    const sealed = this.checker.sealSlot !== null;
    return this.clients.filter((c) => !c.decided && !c.redirected && !sealed).length;
  }

  /** Liveness reached: every proposal decided (or the group sealed), every live node caught up. */
  private live(): boolean {
    if (this.undecided() > 0) return false;
    const sealSlot = this.checker.sealSlot;
    let target = sealSlot === null ? 0 : sealSlot + 1;
    if (sealSlot === null)
      for (const slot of this.checker.decided.keys()) target = Math.max(target, slot + 1);
    return this.nodes.every((n) => n.state === null || n.state.reportedBelow === target);
  }
}

function describe(m: ConsensusMessage): string {
  switch (m.type) {
    case 'Prepare':
      return `Prepare b${m.ballot.round} from slot ${m.fromSlot}`;
    case 'Promise':
      return `Promise b${m.ballot.round} (${m.accepted.length} accepted, ${m.decided.length} decided)`;
    case 'Accept':
      return `Accept b${m.ballot.round} slots ${m.proposals.map((p) => p.slot).join(',')}`;
    case 'Accepted':
      return `Accepted b${m.ballot.round} slots ${m.votes.map((v) => v.slot).join(',')}`;
    case 'Nack':
      return `Nack b${m.ballot.round} < b${m.promised.round}`;
    case 'Decided':
      return `Decided slots ${m.certificates.map((c) => c.slot).join(',')}`;
    case 'Heartbeat':
      return `Heartbeat below ${m.decidedBelow}`;
    case 'Learn':
      return `Learn ${m.fromSlot}..${m.toSlot}`;
  }
}

function deepFreeze(value: unknown): void {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const child of Object.values(value)) deepFreeze(child);
}

type Mutable = Record<string, unknown>;

/**
 * A forged copy of a message, as an adversary outside the quorum could produce: wrong group or
 * membership, a non-member sender, or altered signed content (votes, certificates, promised values).
 * Content that only the transport authenticates (an Accept's values) is not altered from a member.
 */
function tamper(
  rng: SeededRng,
  from: string,
  message: ConsensusMessage,
  outsider: Ed25519Identity,
): { from: string; message: ConsensusMessage; note: string } {
  const copy = structuredClone<ConsensusMessage>(message);
  const raw = copy as unknown as Mutable;
  const flip = (s: string): string => (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
  const header: (() => string)[] = [
    () => ((raw.membership = flip(message.membership)), 'membership'),
    () => ((raw.network = 'elsewhere'), 'network'),
    () => ((raw.blockId = flip(message.blockId)), 'block'),
  ];
  const choices: (() => string)[] = [];
  if (copy.type === 'Accepted') {
    const votes = copy.votes as unknown as Mutable[];
    const i = rng.int(votes.length);
    choices.push(
      () => ((votes[i]!.signature = flip(votes[i]!.signature as string)), 'vote signature'),
      () => ((votes[i]!.digest = flip(votes[i]!.digest as string)), 'vote digest'),
      () => ((raw.ballot = { ...copy.ballot, round: copy.ballot.round + 1 }), 'vote ballot'),
      () => ((votes[i]!.slot = (votes[i]!.slot as number) + 1), 'vote slot'),
    );
  }
  if (copy.type === 'Decided') {
    const certs = copy.certificates as unknown as Mutable[];
    const cert = certs[rng.int(certs.length)]!;
    const signatures = cert.signatures as Mutable[];
    choices.push(
      () => (
        (cert.value = { kind: 'entry', trxId: 'forged', decision: 'committed', digest: 'forged' }),
        'certificate value'
      ),
      () => ((cert.slot = (cert.slot as number) + 1), 'certificate slot'),
      () => ((cert.signatures = signatures.map(() => signatures[0])), 'certificate signer repeated'),
      () => ((cert.signatures = signatures.slice(1)), 'certificate short of quorum'),
      () => ((signatures[0]!.signature = flip(signatures[0]!.signature as string)), 'certificate signature'),
    );
  }
  if (copy.type === 'Promise' && copy.accepted.length > 0) {
    const accepted = copy.accepted as unknown as Mutable[];
    const a = accepted[rng.int(accepted.length)]!;
    choices.push(
      () => (
        (a.value = { kind: 'entry', trxId: 'forged', decision: 'committed', digest: 'forged' }),
        'promised value'
      ),
      () => ((a.ballot = { ...(a.ballot as object), round: 1_000_000 }), 'promised ballot'),
    );
  }
  // Mostly alter signed content (where the cores' signature checks are what stands in the way).
  const pool = choices.length > 0 && rng.float() < 0.75 ? choices : header;
  const note = pool[rng.int(pool.length)]!();
  if (rng.float() < 0.2) return { from: outsider.id, message: copy, note: ` (forged by outsider: ${note})` };
  return { from, message: copy, note: ` (forged: ${note})` };
}
