/**
 * The complete machine-readable state of a running node (`node status --json`) and the events it
 * emits. The dashboard renders these; the control API and light clients serve them. Plain JSON.
 */
import type { ClientAccess } from '../config/schema.js';

export type NodeRole = 'transaction' | 'storage';

export interface PeerStatus {
  readonly id: string;
  readonly addresses: readonly string[];
  /** Last measured round trip, when known. */
  readonly latencyMs?: number;
  readonly direction?: 'inbound' | 'outbound';
  /** Epoch ms the current connection opened. */
  readonly connectedAt?: number;
  /** A light client (`--connect`: it announced none of the network's protocols), not a node. */
  readonly lightClient?: true;
  /**
   * The peer's clock minus this node's, in ms, as its messages showed it (a bound from below, short
   * by the quickest trip seen). Absent until one of them has said.
   */
  readonly clockOffsetMs?: number;
}

/** A peer clock this far from this node's (ms, either way) is reported (an event; `node status`). */
export const clockOffsetReportedMs = 1_000;

/** "45.0 s ahead of" / "2.5 s behind" / "12 ms ahead of": how a peer's clock stands to this node's. */
export function describeClockOffset(offsetMs: number): string {
  const size = Math.abs(offsetMs);
  const amount = size >= 1_000 ? `${(size / 1_000).toFixed(1)} s` : `${Math.round(size)} ms`;
  return offsetMs >= 0 ? `${amount} ahead of` : `${amount} behind`;
}

export interface RateStatus {
  /** Committed transactions per second over the last few seconds. */
  readonly txPerSec: number;
  /** Commit latency percentiles over a recent window, in ms. */
  readonly commitP50Ms: number;
  readonly commitP99Ms: number;
  /** Recent per-second samples (oldest first) for sparklines: tx/s and p50 ms. */
  readonly txPerSecHistory: readonly number[];
  readonly commitP50History: readonly number[];
}

/** Durations under one name over the status window (`count` of them, at most the newest 1024). */
export interface TimingFigures {
  /** How many in the window (exact; the percentiles are of the newest 1,024 of them). */
  readonly count: number;
  /** count per second of the window, or of the time since the node started when that is shorter. */
  readonly perSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

/**
 * Where the node's time goes, over the last `windowMs` (see src/engine/node/timings.ts). `phases`: the
 * steps of each attempt of the transactions this node coordinates (`execute`: the actions, with the
 * tail views and block reads they need; `pend`: staging the writes at every written block's holders;
 * `decide`: commit or prepare and decide at the collections' tails; `finish`: promotion, checkpoint
 * and the local sync; `wait`: the pause before a replay). `sent`: requests this node sent, by
 * `<protocol>.<type>`, until answered; `served`: requests it handled, until its answer was ready.
 */
export interface TimingsStatus {
  readonly windowMs: number;
  readonly phases: Readonly<Record<string, TimingFigures>>;
  readonly sent: Readonly<Record<string, TimingFigures>>;
  readonly served: Readonly<Record<string, TimingFigures>>;
  /** The node's event loop over the window (absent until a period was measured). */
  readonly loop?: LoopFigures;
}

/**
 * How busy a node's event loop was, measured each second: the mean and the busiest second's share of
 * time spent running, and how late its timers fired (p99 of the seconds' p99). Every request the node
 * serves waits for the loop, so a busy one slows them all.
 */
export interface LoopFigures {
  readonly periods: number;
  readonly busyPct: number;
  readonly busyMaxPct: number;
  readonly lateP99Ms: number;
}

export interface StorageStatus {
  readonly blocks: number;
  readonly pending: number;
  readonly bytes: number;
  /** Configured capacity in bytes (0 = unlimited). */
  readonly capacityBytes: number;
  /** Why the store refuses writes (a flush failed, e.g. the disk is full), until it recovers. */
  readonly failure?: string;
}

/**
 * The gist of a store failure's message, for a line too short for all of it: what the system said
 * last (`No space left on device` of `data directory … failed: IO error: …/000003.log: No space left
 * on device`).
 */
export function storeFailureGist(message: string): string {
  const gist = message.split(': ').at(-1)?.trim() ?? '';
  return gist === '' ? message : gist;
}

/** The members of the database a node knows, and which of them it cannot reach. */
export interface MembersStatus {
  /** Members known, this node included. */
  readonly known: number;
  /** Members reachable now, this node included. */
  readonly reachable: number;
  /**
   * The members it cannot reach, longest gone first (at most `unreachableListedMax`), each with how
   * long it has been unreachable as far as this node knows: since its connection closed (`lost`: it
   * was connected while this node ran), else since it was last seen before this node started
   * (`lastSeenAt`, when a connection to it closed or this node stopped), else since this node started.
   * Absent from nodes of versions before it existed.
   */
  readonly unreachable?: readonly {
    readonly peerId: string;
    readonly forMs: number;
    readonly lost: boolean;
    readonly lastSeenAt?: number;
  }[];
  /**
   * Connected peers that hold another database and so are no members (docs/cluster.md, "A member
   * holds the same database"): each with the collection that showed it. At most
   * `unreachableListedMax`. Absent when there are none.
   */
  readonly foreign?: readonly { readonly peerId: string; readonly collection: string }[];
}

/** Unreachable members a status names (the count is in `known - reachable`). */
export const unreachableListedMax = 16;

/** Whether a node reaches a majority of the members it knows (`NodeStatus.members`). */
export function reachesMajority(members: { readonly known: number; readonly reachable: number }): boolean {
  return members.reachable > members.known / 2;
}

export interface NodeStatus {
  readonly version: string;
  readonly peerId: string;
  readonly network: string;
  readonly role: NodeRole;
  readonly gateway: boolean;
  readonly bootstrapNode: boolean;
  readonly clusterSize: number;
  readonly dataDir: string;
  readonly pid: number;
  readonly startedAt: number;
  readonly uptimeMs: number;
  readonly listenAddresses: readonly string[];
  readonly announceAddresses: readonly string[];
  readonly peers: readonly PeerStatus[];
  readonly connections: number;
  /** Peers in the Kademlia routing table. */
  readonly dhtTableSize: number;
  /**
   * Collections in the database, as `collection list` counts them (a networked node asks every member
   * it reaches; in the status it publishes every second, for the dashboard, the count may be up to
   * 10 s old).
   */
  readonly collections: number;
  readonly storage: StorageStatus;
  readonly pendingTransactions: number;
  readonly rates: RateStatus;
  /** Where the time goes (absent from nodes of versions before it existed). */
  readonly timings?: TimingsStatus;
  /**
   * Members of the database this node knows (itself included) and how many of them it reaches now
   * (itself included). Fewer than half reachable: reads and writes that need a majority of a cluster
   * answer NO_QUORUM. Absent from nodes of versions before it existed, and before a node has joined.
   */
  readonly members?: MembersStatus;
  /**
   * The light clients (`--connect`) this node serves: `any`, or their peer ids (none by default).
   * Absent from nodes of versions before it existed.
   */
  readonly clients?: ClientAccess;
}

export type NodeEventKind =
  'peer:connect' | 'peer:disconnect' | 'node:start' | 'node:stop' | 'error' | 'info';

export interface NodeEvent {
  readonly at: number;
  readonly kind: NodeEventKind;
  readonly message: string;
  readonly peerId?: string;
  /** A slow transaction's figures (the `slow transaction …` info event), for log processors. */
  readonly transaction?: SlowTransactionFigures;
}

/** A transaction the node coordinated that took at least its slow-transaction threshold (ms rounded to 0.1). */
export interface SlowTransactionFigures {
  /** Its last attempt's id; absent when it failed before an attempt began. */
  readonly trx?: string;
  readonly ok: boolean;
  readonly code?: string;
  readonly attempts: number;
  readonly ms: number;
  /** Commit phases summed over its attempts (the phase names of `timings.phases`). */
  readonly phases: Readonly<Record<string, number>>;
}

/** Where the dashboard gets its data: a running node in-process, or one reached over the control socket. */
export interface StatusSource {
  current(): NodeStatus | undefined;
  /** Recent events, oldest first (bounded). */
  recentEvents(): readonly NodeEvent[];
  /** Called on every status update and with each new event; returns an unsubscribe function. */
  subscribe(listener: (status: NodeStatus, newEvents: readonly NodeEvent[]) => void): () => void;
}
