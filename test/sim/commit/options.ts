import { SeededRng } from '../../../src/engine/base/rng.js';
import type { LinkFaults, Split } from './network.js';

/**
 * A commit simulation run, as data. `commitSimOptionsFor(seed)` draws one from a seed; nodes are
 * named by index. Times are virtual milliseconds from the start of the workload (the setup before it
 * — nodes meeting, collections created, accounts funded — runs on a quiet network).
 */
export interface CommitSimOptions {
  readonly seed: number;
  readonly members: number;
  /** Cluster size k (the product default is 5). */
  readonly k: number;
  /** Link behaviour during the chaos phase (the setup and calm phases have no loss or duplication). */
  readonly chaos: LinkFaults;
  /** How long an fsync takes. */
  readonly syncDelayMs: number;
  /** A deliberate bug in every node (tests that the checks catch it); none normally. */
  readonly mutation?: 'sync-lies';
  /** Faults happen and clients submit transactions before this time; then the calm phase. */
  readonly chaosMs: number;
  readonly partitions: readonly { readonly atMs: number; readonly split: Split }[];
  /** Crashes; `noticeMs`: when peers notice (0-50: a reset; seconds: a connection monitor). */
  readonly crashes: readonly {
    readonly atMs: number;
    readonly node: number;
    readonly restartAtMs: number | null;
    readonly noticeMs: number;
  }[];
  /**
   * Crashes aimed at a commit in flight: a node whose consensus just decided a value it proposed dies
   * that same moment (before its log write can reach a majority) with this probability, at most
   * `crashOnDecideMax` times; it restarts `restartAfterMs` later.
   */
  readonly crashOnDecide: {
    readonly probability: number;
    readonly max: number;
    readonly restartAfterMs: readonly [number, number];
  };
  /** Bank clients: each submits `transactions` one after another through random nodes. */
  readonly clients: number;
  readonly transactions: number;
  /** Pause between a client's transactions, uniform in [0, thinkMs]. */
  readonly thinkMs: number;
  /**
   * Nodes that join the network only during the chaos phase (at `atMs`): the collections were
   * created by the others, so their tail groups are outgrown when these join and hand over to larger
   * groups (seals), and blocks move to the clusters that now include them.
   */
  readonly lateJoiners: readonly { readonly node: number; readonly atMs: number }[];
  /** Nodes kept down through the calm phase (a minority of every cluster). */
  readonly downInCalm: readonly number[];
  /** After the chaos phase, the probe transaction must commit within this long. */
  readonly calmMs: number;
  /**
   * Lists of the list-append workload (test/helpers/list-append.ts) some client transactions run
   * instead of transfers, checked for serializability anomalies at the end; 0 (the default): none.
   */
  readonly lists?: number;
  /**
   * Each node's clock offset in ms (by node index; missing: 0): what its clock reads minus true time.
   * None by default; `OPTIMYSTIC_SIM_SKEW=MAX` draws offsets in [0, MAX] (clockSkewFor), so two nodes'
   * clocks differ by up to MAX.
   */
  readonly clockSkewMs?: readonly number[];
}

/**
 * Per-node clock offsets for a seed, uniform in [0, maxMs] (ahead only: virtual time starts at 0, and
 * a clock before the epoch is no time), from a generator of their own, so a seed's schedule is the
 * same with and without them.
 */
export function clockSkewFor(seed: number, members: number, maxMs: number): number[] {
  const rng = new SeededRng(seed ^ 0x0c10_c5e3);
  return Array.from({ length: members }, () => rng.int(maxMs + 1));
}

export const accounts = ['a0', 'a1', 'a2', 'a3'] as const;
export const initialBalance = 100;

/** Group sizes cycle with the seed, as in the consensus simulation. */
export function membersForSeed(seed: number): number {
  return [3, 5, 7][seed % 3]!;
}

/**
 * `scale` multiplies the workload (OPTIMYSTIC_SIM_SCALE): 1 in `npm test`, larger for soak runs.
 */
export function commitSimOptionsFor(seed: number, scale = 1): CommitSimOptions {
  const rng = new SeededRng(seed ^ 0x5eed_c0de);
  const members = membersForSeed(seed);
  const k = 5;
  const clusterSize = Math.min(k, members);
  const minority = Math.floor((clusterSize - 1) / 2);
  const chaosMs = Math.round((3000 + rng.int(5000)) * scale);
  const between = (lo: number, hi: number): number => lo + rng.int(Math.max(1, hi - lo));
  const shuffled = (): number[] => {
    const items = [...Array(members).keys()];
    for (let i = items.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  };

  const partitions: { atMs: number; split: Split }[] = [];
  let t = rng.int(2000);
  for (let i = rng.int(4); i > 0 && t < chaosMs; i--) {
    const order = shuffled();
    const cut = 1 + rng.int(members - 1);
    const groups =
      rng.float() < 0.25 && members >= 5
        ? [
            order.slice(0, 1),
            order.slice(1, 1 + Math.floor(members / 2)),
            order.slice(1 + Math.floor(members / 2)),
          ]
        : [order.slice(0, cut), order.slice(cut)];
    partitions.push({ atMs: t, split: { groups, silent: rng.float() < 0.4 } });
    t += between(500, 4000);
    if (rng.float() < 0.7) {
      partitions.push({ atMs: Math.min(t, chaosMs - 1), split: { groups: [order], silent: false } });
      t += between(300, 2000);
    }
  }

  const crashes: { atMs: number; node: number; restartAtMs: number | null; noticeMs: number }[] = [];
  for (let i = rng.int(Math.max(2, members - 1)); i > 0; i--) {
    const atMs = rng.int(chaosMs);
    crashes.push({
      atMs,
      node: rng.int(members),
      restartAtMs: rng.float() < 0.85 ? atMs + between(200, 5000) : null,
      noticeMs: rng.float() < 0.7 ? rng.int(50) : between(1000, 5000),
    });
  }

  const downInCalm = rng.float() < 0.3 ? shuffled().slice(0, 1 + rng.int(minority)) : [];
  const loss = rng.float() < 0.3 ? 0 : rng.float() * 0.05;

  const drawn = {
    seed,
    members,
    k,
    chaos: {
      delayMs: [1, 2 + rng.int(15)] as const,
      loss,
      duplication: rng.float() * 0.05,
      reorder: rng.float() * 0.2,
      reorderMs: 30,
    },
    syncDelayMs: rng.int(3),
    chaosMs,
    partitions,
    crashes: crashes.sort((a, b) => a.atMs - b.atMs),
    crashOnDecide: {
      probability: rng.float() < 0.5 ? 0.05 + rng.float() * 0.2 : 0,
      max: 1 + rng.int(2),
      restartAfterMs: [300, 4000] as const,
    },
    clients: 2 + rng.int(3),
    transactions: Math.round((3 + rng.int(5)) * scale),
    thinkMs: 600,
    downInCalm: downInCalm.sort((a, b) => a - b),
    calmMs: 90_000,
  };
  // Drawn last, so the draws above are those of seeds before late joiners existed.
  const late = rng.float() < 0.3 ? shuffled().slice(0, 1 + rng.int(Math.floor(members / 2))) : [];
  const lateJoiners = late
    .sort((a, b) => a - b)
    .map((node) => ({ node, atMs: 100 + rng.int(Math.max(1, Math.floor(chaosMs / 2))) }));
  // Groups recorded before the late joiners arrived may stay small (a partition can keep them from
  // handing over): what stays down in the calm phase is a minority of those too.
  const groupMin = Math.min(k, members - late.length);
  const down = drawn.downInCalm.slice(0, Math.floor((groupMin - 1) / 2));
  return { ...drawn, downInCalm: down, lateJoiners };
}
