import { SeededRng } from '../../src/engine/base/rng.js';
import type { ConsensusTiming, ConsensusValue } from '../../src/engine/consensus/types.js';
import { leadershipOrder } from '../../src/engine/consensus/values.js';
import { derivedBlockId, simGroup } from './identities.js';

/**
 * A simulation run, as data: who, which faults, when. `simOptionsFor(seed)` draws one from a seed;
 * tests may also write one by hand. Nodes are named by index (0 … members-1, in membership order).
 */
export interface SimOptions {
  readonly seed: number;
  readonly members: number;
  /** Every node's core is ticked this often (each node at its own phase). */
  readonly tickMs: number;
  readonly timing: ConsensusTiming;
  /** One-way delay of a message, uniform in [min, max]. */
  readonly delayMs: readonly [number, number];
  /** Probability a message is lost (chaos phase only). */
  readonly loss: number;
  /** Probability a message is delivered twice. */
  readonly duplication: number;
  /** Probability a message takes up to reorderMs longer (so later messages overtake it). */
  readonly reorder: number;
  readonly reorderMs: number;
  /** Probability a copy of a message is delivered again much later (replayMs or more). */
  readonly replay: number;
  readonly replayMs: number;
  /** Probability a tampered copy (forged signature, altered vote or certificate, wrong group) is delivered too. */
  readonly forgery: number;
  /** Faults are scheduled before this time; then the network heals and the calm phase begins. */
  readonly chaosMs: number;
  /** Within this long after chaosMs every proposal must be decided and every live node caught up. */
  readonly calmMs: number;
  /** … and within this many simulation steps (deliveries, ticks, client actions). */
  readonly calmStepsMax: number;
  /** Scheduled splits: each node index in one group; `groups: []` heals. */
  readonly partitions: readonly { readonly atMs: number; readonly groups: readonly (readonly number[])[] }[];
  /** Crashes: the node loses everything it did not persist; midStep crashes it part way through an effect list. */
  readonly crashes: readonly {
    readonly atMs: number;
    readonly node: number;
    readonly restartAtMs: number | null;
    readonly midStep: boolean;
  }[];
  /** Client proposals: a client submits `value` at `node` and keeps retrying until it is decided. */
  readonly proposals: readonly {
    readonly atMs: number;
    readonly node: number;
    readonly value: ConsensusValue;
  }[];
  /** Nodes that stay down through the calm phase (a minority). */
  readonly downInCalm: readonly number[];
}

export const simTiming: ConsensusTiming = {
  heartbeatMs: 100,
  suspectAfterMs: 400,
  retransmitMs: 150,
  proposalTimeoutMs: 3000,
};

/** Group sizes cycle with the seed, so a seed alone says everything about its run. */
export function membersForSeed(seed: number): number {
  return [3, 5, 7][seed % 3]!;
}

export function simOptionsFor(seed: number): SimOptions {
  const rng = new SeededRng(seed);
  const members = membersForSeed(seed);
  const minority = Math.floor((members - 1) / 2);
  const chaosMs = 2500 + rng.int(2500);
  const pick = (): number => rng.int(members);
  const between = (lo: number, hi: number): number => lo + rng.int(Math.max(1, hi - lo));
  // Faults aim at the members likely to lead, so leaders change while values are in flight.
  const { identities, blockId } = simGroup(seed, members);
  const ids = identities.map((i) => i.id);
  const order = leadershipOrder(blockId, ids).map((id) => ids.indexOf(id));
  const likelyLeader = (): number => {
    const r = rng.float();
    return r < 0.55 ? order[0]! : r < 0.8 ? order[1]! : pick();
  };

  const partitions: { atMs: number; groups: number[][] }[] = [];
  const proposals: { atMs: number; node: number; value: ConsensusValue }[] = [];
  let valueCount = 0;
  const newValue = (): ConsensusValue => {
    const i = valueCount++;
    return {
      kind: 'entry',
      trxId: `trx-${seed}-${i}`,
      decision: (['committed', 'prepared', 'aborted'] as const)[rng.int(3)]!,
      digest: `digest-${seed}-${i}`,
    };
  };
  // A third of the runs are storms: the network splits every few hundred ms, mostly cutting off
  // whoever leads, while a steady stream of proposals keeps slots in flight and more messages are lost.
  // That is what puts different values at different ballots in one slot, for phase 1 to sort out.
  const storm = rng.float() < 0.34;
  if (storm) {
    for (let at = rng.int(300); at < chaosMs - 200; at += between(60, 350)) {
      if (rng.float() < 0.25) {
        partitions.push({ atMs: at, groups: [] });
        continue;
      }
      const r = rng.float();
      const cutOff = r < 0.5 ? order[0]! : r < 0.8 ? order[1]! : order[Math.min(2, members - 1)]!;
      const rest = shuffle(
        rng,
        [...Array(members).keys()].filter((i) => i !== cutOff),
      );
      const withIt = rng.int(minority);
      partitions.push({ atMs: at, groups: [[cutOff, ...rest.slice(0, withIt)], rest.slice(withIt)] });
    }
    for (let at = rng.int(100); at < chaosMs; at += between(20, 150))
      proposals.push({ atMs: at, node: rng.float() < 0.5 ? order[0]! : pick(), value: newValue() });
  }
  let t = rng.int(800);
  for (let i = storm ? 0 : rng.int(4); i > 0 && t < chaosMs; i--) {
    const shuffled = shuffle(rng, [...Array(members).keys()]);
    const cut = 1 + rng.int(members - 1);
    let groups: number[][];
    if (rng.float() < 0.5) {
      // Cut the likely leader off with a minority (possibly alone).
      const leader = likelyLeader();
      const rest = shuffled.filter((i) => i !== leader);
      const withLeader = rng.int(minority);
      groups = [[leader, ...rest.slice(0, withLeader)], rest.slice(withLeader)];
      // Clients keep proposing to the cut-off leader until it notices: those values are accepted by a
      // minority only, while the majority elects a new leader and fills the same slots.
      for (let k = rng.int(4); k > 0; k--)
        proposals.push({ atMs: t + rng.int(300), node: leader, value: newValue() });
    } else if (rng.float() < 0.3) groups = splitThree(rng, shuffled);
    else groups = [shuffled.slice(0, cut), shuffled.slice(cut)];
    partitions.push({ atMs: t, groups });
    t += between(200, 1200);
    if (rng.float() < 0.7) {
      partitions.push({ atMs: Math.min(t, chaosMs - 1), groups: [] });
      t += between(100, 600);
    }
  }

  const crashes: { atMs: number; node: number; restartAtMs: number | null; midStep: boolean }[] = [];
  for (let i = rng.int(members + 2); i > 0; i--) {
    const atMs = rng.int(chaosMs);
    crashes.push({
      atMs,
      node: likelyLeader(),
      restartAtMs: rng.float() < 0.8 ? Math.min(chaosMs - 1, atMs + between(50, 1500)) : null,
      midStep: rng.float() < 0.5,
    });
  }

  const count = 4 + rng.int(12);
  let burstAt = rng.int(chaosMs);
  for (let i = 0; i < count; i++) {
    // Proposals come in bursts, so several slots are in flight at once.
    if (rng.float() < 0.4) burstAt = rng.int(chaosMs);
    proposals.push({
      atMs: burstAt + rng.int(20),
      node: rng.float() < 0.5 ? order[0]! : pick(),
      value: newValue(),
    });
  }
  // Sometimes the group is sealed part way.
  if (rng.float() < 0.3) {
    const successorMembers = [`next-${seed}-a`, `next-${seed}-b`, `next-${seed}-c`].sort();
    proposals.push({
      atMs: rng.int(chaosMs + 500),
      node: pick(),
      value: { kind: 'seal', successor: derivedBlockId(`successor/${seed}`), members: successorMembers },
    });
  }
  // A probe submitted when the calm phase starts: it must decide (unless the group sealed).
  proposals.push({
    atMs: chaosMs,
    node: pick(),
    value: { kind: 'entry', trxId: `probe-${seed}`, decision: 'committed', digest: `probe-${seed}` },
  });
  proposals.sort((a, b) => a.atMs - b.atMs);

  const downInCalm =
    rng.float() < 0.35 ? shuffle(rng, [...Array(members).keys()]).slice(0, 1 + rng.int(minority)) : [];

  return {
    seed,
    members,
    tickMs: 25,
    timing: simTiming,
    delayMs: [1, 5 + rng.int(40)],
    loss: rng.float() * (storm ? 0.3 : 0.15),
    duplication: rng.float() * 0.1,
    reorder: rng.float() * 0.2,
    reorderMs: 150,
    replay: rng.float() * 0.02,
    replayMs: 1000,
    forgery: rng.float() * 0.08,
    chaosMs,
    calmMs: 6000,
    calmStepsMax: 20_000,
    partitions,
    crashes: crashes.sort((a, b) => a.atMs - b.atMs),
    proposals,
    downInCalm: downInCalm.sort((a, b) => a - b),
  };
}

function shuffle<T>(rng: SeededRng, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

function splitThree(rng: SeededRng, order: number[]): number[][] {
  const a = 1 + rng.int(Math.max(1, order.length - 2));
  const b = a + 1 + rng.int(Math.max(1, order.length - a - 1));
  return [order.slice(0, a), order.slice(a, b), order.slice(b)].filter((g) => g.length > 0);
}
