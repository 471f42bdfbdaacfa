/**
 * The complete machine-readable state of a running node (`node status --json`) and the events it
 * emits. The dashboard renders these; the control API and light clients serve them. Plain JSON.
 */

export type NodeRole = 'transaction' | 'storage';

export interface PeerStatus {
  readonly id: string;
  readonly addresses: readonly string[];
  /** Last measured round trip, when known. */
  readonly latencyMs?: number;
  readonly direction?: 'inbound' | 'outbound';
  /** Epoch ms the current connection opened. */
  readonly connectedAt?: number;
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

export interface StorageStatus {
  readonly blocks: number;
  readonly pending: number;
  readonly bytes: number;
  /** Configured capacity in bytes (0 = unlimited). */
  readonly capacityBytes: number;
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
  /** Collections whose tail this node orders, and blocks it holds. */
  readonly collections: number;
  readonly storage: StorageStatus;
  readonly pendingTransactions: number;
  readonly rates: RateStatus;
}

export type NodeEventKind =
  'peer:connect' | 'peer:disconnect' | 'node:start' | 'node:stop' | 'error' | 'info';

export interface NodeEvent {
  readonly at: number;
  readonly kind: NodeEventKind;
  readonly message: string;
  readonly peerId?: string;
}

/** Where the dashboard gets its data: a running node in-process, or one reached over the control socket. */
export interface StatusSource {
  current(): NodeStatus | undefined;
  /** Recent events, oldest first (bounded). */
  recentEvents(): readonly NodeEvent[];
  /** Called on every status update and with each new event; returns an unsubscribe function. */
  subscribe(listener: (status: NodeStatus, newEvents: readonly NodeEvent[]) => void): () => void;
}
