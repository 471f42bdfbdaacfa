import type { CeremonyApi } from './ceremony-net.js';
import type { NodeEvent, NodeStatus, PeerStatus } from './status.js';

/** A peer reached or located: its id and the addresses it can be dialled on. */
export interface PeerAddresses {
  readonly id: string;
  readonly addresses: readonly string[];
}

/** `peer info`: this node (no argument) or another peer. */
export interface PeerDetail {
  readonly id: string;
  readonly self: boolean;
  readonly connected: boolean;
  readonly addresses: readonly string[];
  readonly latencyMs?: number;
  readonly direction?: 'inbound' | 'outbound';
  readonly connectedAt?: number;
  /** The peer's clock minus this node's, in ms, when its messages have said (PeerStatus). */
  readonly clockOffsetMs?: number;
  /** For this node: its network name and role. */
  readonly network?: string;
}

export interface PingResult {
  readonly peer: string;
  /** One round trip per ping, in ms. */
  readonly rttsMs: readonly number[];
  readonly minMs: number;
  readonly avgMs: number;
  readonly maxMs: number;
}

export interface ClosestResult {
  /** The key as given. */
  readonly key: string;
  /** What was hashed: `block-id` (its 32 bytes, as for a block's cluster) or `text` (UTF-8). */
  readonly keyKind: 'block-id' | 'text';
  /** sha256 of the key bytes, hex: the point in Kademlia space. */
  readonly dhtKey: string;
  readonly k: number;
  /** Nearest first. */
  readonly peers: readonly { readonly id: string; readonly self: boolean }[];
}

export interface IdentityInfo {
  /** libp2p peer id (base58btc), the same key as `publicKey`. */
  readonly peerId: string;
  /** Raw Ed25519 public key, base64url: the member id in certificates. */
  readonly publicKey: string;
}

/** What `node reload` did: settings applied now, settings that changed but apply at the next start. */
export interface ReloadResult {
  readonly applied: readonly string[];
  readonly needsRestart: readonly string[];
  /** The config file read, when one applies. */
  readonly configFile?: string;
}

/** What a running node pushes to a watcher: its status, and the events since the last update. */
export interface StatusUpdate {
  readonly status: NodeStatus;
  readonly events: readonly NodeEvent[];
}

/** Operations on a running node (beside its Database): served in-process, over the socket and over libp2p. */
export interface NodeControl {
  status(): Promise<NodeStatus>;
  identity(): Promise<IdentityInfo>;
  /** Asks the node to stop; resolves once it has begun stopping. */
  stop(): Promise<void>;
  /** Reads the node's settings again and applies those that can change while it runs (`node reload`). */
  reload(): Promise<ReloadResult>;
  peers(): Promise<PeerStatus[]>;
  peerInfo(peer?: string): Promise<PeerDetail>;
  connect(address: string): Promise<PeerAddresses>;
  ping(peer: string, count: number): Promise<PingResult>;
  findPeer(peer: string): Promise<PeerAddresses>;
  closest(key: string, k?: number): Promise<ClosestResult>;
  /** The current status and recent events first, then every update until the consumer stops. */
  watch(): AsyncIterable<StatusUpdate>;
  /** Key ceremonies with other nodes; only a running node has them (served on its control socket). */
  readonly ceremonies?: CeremonyApi | undefined;
}
