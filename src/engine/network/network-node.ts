/**
 * The libp2p edge of a node: transport (TCP + Noise + Yamux), identify, ping, a Kademlia DHT namespaced
 * by the network name, bootstrap upkeep, and request/response protocols with bounded inbound work.
 * Everything above this module sees peer ids and multiaddrs as strings and errors as EngineErrors.
 *
 * Requests reuse streams: each (peer, protocol) keeps a few idle request streams open (StreamPool),
 * and the serving side answers request after request on one stream (serveStream); the rules that make
 * this safe are at the top of request-response.ts. Streamed replies use pooled streams too. Single
 * requests to one peer on one protocol in the same turn leave as one batch (RequestBatcher).
 */
import { createHash } from 'node:crypto';
import { identify } from '@libp2p/identify';
import type { KadDHT } from '@libp2p/kad-dht';
import { peerIdFromString } from '@libp2p/peer-id';
import { ping, type Ping } from '@libp2p/ping';
import { tcp } from '@libp2p/tcp';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { createLibp2p, type Libp2p, type Libp2pOptions } from 'libp2p';
import { EngineError, isEngineError, toEngineError } from '../base/errors.js';
import { systemClock, type Clock } from '../base/clock.js';
import { limits } from '../base/limits.js';
import { ByteBudget } from './framing.js';
import { peerIdOf, type PrivateKey } from './identity.js';
import { PeerGuard } from './peer-guard.js';
import { RequestBatcher } from './request-batcher.js';
import { StreamPool } from './stream-pool.js';
import { tunedNoise, tunedYamux } from './transport-tuning.js';
import { checkName, defaultNetwork, dhtProtocolId, networkOfProtocol, protocolId } from './protocols.js';
import {
  type RequestHandler,
  type RequestOptions,
  type ServeOutcome,
  type StreamSource,
  type WireStream,
  sendStreamRequest,
  serveIdleTimeoutMs,
  serveStream,
} from './request-response.js';
import type { Validator } from './schema.js';

export interface NetworkComponents {
  /** The node's identity key (see `privateKeyFromSeed`). */
  privateKey: PrivateKey;
  /** Time for rate limits; the system clock by default. */
  clock?: Clock;
}

/** Decides which peers may connect at all; tests use it to partition a network. */
export interface ConnectionGate {
  /** True to refuse dialing or accepting connections with this peer. */
  denyPeer(peerId: string): boolean;
}

export interface NetworkInit {
  /** Network name; nodes of different networks never share a DHT or answer each other (default 'default'). */
  network?: string;
  /** Multiaddrs to listen on (default ['/ip4/127.0.0.1/tcp/0']); ignored in client mode. */
  listen?: readonly string[];
  /** Multiaddrs to announce instead of the listen addresses (public address behind NAT, gateway). */
  announce?: readonly string[];
  /** Multiaddrs of bootstrap peers, each ending in /p2p/<peer id>: dialled at start and whenever disconnected. */
  bootstrap?: readonly string[];
  /**
   * Addresses of peers met before (a node's members, each ending in /p2p/<peer id>): dialled in the
   * background at start and whenever disconnected, like bootstrap peers but never waited for, so a
   * network whose nodes all restart finds itself again without bootstrap addresses. Malformed ones
   * are skipped; at most limits.rememberedPeersDialledMax peers, each with all its addresses.
   */
  remembered?: readonly string[];
  /** Serve circuit relay (v2) for NAT-ed peers; pair with `announce` for a public gateway. */
  gateway?: boolean;
  /** A short-lived light client: no listening, DHT in client mode, no relay. */
  clientMode?: boolean;
  /** Refuses new connections with some peers (tests: partitions); `disconnect` cuts existing ones. */
  connectionGater?: ConnectionGate;
  /** How often bootstrap peers are re-dialled and the routing table refreshed (default limits.networkMaintenanceMs). */
  maintenanceIntervalMs?: number;
  /** Default deadline of requests this node sends and serves (default limits.requestTimeoutMs). */
  requestTimeoutMs?: number;
  /** Largest frame sent or accepted (default limits.frameBytesMax). */
  frameBytesMax?: number;
  /** Inbound streams one peer may hold open (default limits.streamsPerPeerMax). */
  streamsPerPeerMax?: number;
  /** Sustained inbound requests per peer per second (default limits.requestsPerPeerPerSec). */
  requestsPerPeerPerSec?: number;
  /** Inbound request burst per peer (default limits.requestsPerPeerBurst). */
  requestsPerPeerBurst?: number;
  /** Bytes of partly received frames held across all inbound streams (default limits.inboundBufferedBytesMax). */
  inboundBufferedBytesMax?: number;
  /** How long an idle request stream is kept for the next request before we close it (default 10 s). */
  requestStreamIdleMs?: number;
  /** Idle request streams kept per peer, across protocols (default 8). */
  requestStreamsIdlePerPeerMax?: number;
  /** How long a served stream may sit idle between requests before we close it (default 30 s; keep it above requesters' requestStreamIdleMs). */
  servedStreamIdleMs?: number;
  /**
   * Told of every request this node sends (protocol name, message) before it leaves: the benchmarks
   * count requests per transaction with it. Must not throw or keep the message.
   */
  observeRequest?: (peer: string, name: string, message: unknown) => void;
  /**
   * Told how long each single request took, in ms, by `<protocol name>.<message type>`: `sent`, from
   * sending until the answer (or failure) arrived; `served`, from the validated request until the
   * handler's answer was ready (the node's `timings`). Must not throw.
   */
  timeRequest?: (direction: 'sent' | 'served', name: string, ms: number) => void;
}

/** `<protocol name>.<message type>`, or the protocol name alone for a message without a type. */
export function requestName(name: string, message: unknown): string {
  const type =
    typeof message === 'object' && message !== null ? (message as { type?: unknown }).type : undefined;
  return typeof type === 'string' && type.length > 0 && type.length <= 64 ? `${name}.${type}` : name;
}

/** Defaults of the request stream pool: a few streams per peer, closed by the requester before the responder gives up on them. */
const requestStreamIdleMsDefault = 10_000;
const requestStreamsIdlePerPeerMaxDefault = 8;

export interface PeerInfo {
  readonly id: string;
  /** The peer's listen addresses as it identified them, else the addresses of our connections to it. */
  readonly addresses: readonly string[];
  /** Last measured round trip (our pings, or libp2p's connection monitor). */
  readonly latencyMs?: number;
  /** Who opened the oldest open connection. */
  readonly direction: 'inbound' | 'outbound';
}

export interface FoundPeer {
  readonly id: string;
  readonly addresses: readonly string[];
}

/** `peer:identify`: a connected peer told its listen addresses (listenAddressesOf). */
export type NetworkEvent = 'peer:connect' | 'peer:disconnect' | 'peer:identify';

export interface HandleOptions<Req> {
  /** Validates each request; use `messageUnion` so unknown message types reset the stream. */
  validate: Validator<Req>;
  /** Deadline to read, handle and answer one request (default: the node's requestTimeoutMs). */
  timeoutMs?: number;
  /** Largest request or reply frame (default: the node's frameBytesMax). */
  frameBytesMax?: number;
}

/** Counters of the inbound side, for status and for tests that check bounds. */
export interface NetworkStats {
  /** Inbound request streams with a request being received or served now. */
  readonly inboundStreams: number;
  /** Inbound streams open between requests, kept for reuse by their requesters (they count against the stream limits too). */
  readonly idleInboundStreams: number;
  /** Bytes of partly received request frames held now. */
  readonly bufferedBytes: number;
  /** Peers whose rate-limit state is remembered. */
  readonly trackedPeers: number;
  /** Inbound streams refused (stream or rate limits) since start. */
  readonly refused: number;
  /** Requests served since start, by outcome. */
  readonly served: Readonly<Record<ServeOutcome, number>>;
  /** Outbound request streams opened since start. */
  readonly streamsOpened: number;
  /** Requests sent on a reused (pooled) stream since start. */
  readonly streamsReused: number;
  /** Idle request streams pooled now. */
  readonly idleStreams: number;
}

export interface NetworkNode {
  readonly peerId: string;
  readonly network: string;
  /** Listen (or announce) multiaddrs, each ending in /p2p/<peer id>. */
  addresses(): string[];
  /** Connected peers. */
  peers(): PeerInfo[];
  /** A connected peer's listen addresses as it announced them, each ending in /p2p/<peer id>. */
  listenAddressesOf(peerId: string): string[] | undefined;
  /**
   * Whether a connected peer is a node of this network (it announced our protocols) — false for one
   * that announced none, such as a light client (`--connect`) — or undefined before it identified.
   */
  isNetworkNode(peerId: string): boolean | undefined;
  /** Dials a multiaddr; resolves with the peer reached. */
  connect(address: string): Promise<FoundPeer>;
  /** Closes every connection with a peer. */
  disconnect(peerId: string): Promise<void>;
  /** Round trip to a peer id or multiaddr, in ms. */
  ping(target: string): Promise<number>;
  /** A peer's addresses through DHT peer routing; NOT_FOUND when no one knows it. */
  findPeer(peerId: string): Promise<FoundPeer>;
  /** The k peers nearest to `key` by XOR distance of their Kademlia ids (sha256), this node included. */
  closest(key: Uint8Array, k: number): Promise<string[]>;
  /** Peers in the Kademlia routing table. */
  routingTableSize(): number;
  /** Subscribes to peer events; returns the unsubscribe function. */
  on(event: NetworkEvent, listener: (peerId: string) => void): () => void;
  /** Serves `/optimystic/<network>/<name>/1` with request/response framing and the inbound limits. */
  handle<Req>(name: string, handler: RequestHandler<Req>, options: HandleOptions<Req>): Promise<void>;
  unhandle(name: string): Promise<void>;
  /** Peers exempt from the per-peer request rate (members of the same database); none by default. */
  trust(predicate: (peerId: string) => boolean): void;
  /** Sends one request to a peer id or multiaddr and returns the reply value. */
  request<T = unknown>(peer: string, name: string, message: unknown, options?: RequestOptions<T>): Promise<T>;
  /** Sends one request and yields the items of a streamed reply. */
  requestStream<T = unknown>(
    peer: string,
    name: string,
    message: unknown,
    options?: RequestOptions<T>,
  ): AsyncGenerator<T, void, undefined>;
  stats(): NetworkStats;
  /** Stops the node: closes every stream and connection. Safe to call twice. */
  stop(): Promise<void>;
}

/** The services every node runs (a gateway adds `relay`, which nothing here calls). */
type Services = {
  identify: unknown;
  ping: Ping;
  /** Absent on a light client (`clientMode`), which asks its node instead. */
  dht?: KadDHT;
};

type Node = Libp2p<Services>;
type Stream = Parameters<Parameters<Node['handle']>[1]>[0];

/** Creates and starts a network node; dials bootstrap peers before it resolves (failures are retried later). */
export async function createNetworkNode(
  components: NetworkComponents,
  init: NetworkInit = {},
): Promise<NetworkNode> {
  const node = new Libp2pNetworkNode(components, init);
  await node.start();
  return node;
}

/** Peer ids of other networks that we stop talking to; bounded like any per-peer state. */
const foreignPeersMax = limits.peersTrackedMax;

class Libp2pNetworkNode implements NetworkNode {
  readonly network: string;
  readonly peerId: string;
  private readonly init: NetworkInit;
  private readonly clientMode: boolean;
  private readonly requestTimeoutMs: number;
  private readonly frameBytesMax: number;
  private readonly bootstrap: readonly { address: Multiaddr; peerId: string }[];
  /** Remembered peers (`NetworkInit.remembered`) and their addresses. */
  private readonly remembered = new Map<string, Multiaddr[]>();
  private readonly guard: PeerGuard;
  private readonly budget: ByteBudget;
  private readonly pool: StreamPool;
  private readonly servedIdleMs: number;
  private readonly listeners = new Map<NetworkEvent, Set<(peerId: string) => void>>();
  private readonly identified = new Map<string, string[]>();
  /** Connected peers that serve our DHT (identified with its protocol); candidates for `closest`. */
  private readonly dhtServers = new Set<string>();
  /** Identified connected peers: true for nodes of this network, false for peers announcing none of its protocols. */
  private readonly networkNodes = new Map<string, boolean>();
  private readonly latency = new Map<string, number>();
  private readonly foreign = new Set<string>();
  private readonly served: Record<ServeOutcome, number> = { replied: 0, errored: 0, reset: 0 };
  private refused = 0;
  /** Inbound streams carrying a request now (the rest of the guard's open streams are idle). */
  private busyStreams = 0;
  /** Served streams by protocol id, each retired (closed once idle) when its handler is replaced or withdrawn. */
  private readonly servedStreams = new Map<string, Set<AbortController>>();
  private libp2p: Node | undefined;
  private maintenanceTimer: NodeJS.Timeout | undefined;
  private maintaining = false;
  /** Self-lookup schedule: every `everyTicks` maintenance ticks, reset when the table size changes. */
  private readonly lookup = { everyTicks: 1, ticks: 0, tableSize: -1 };
  private stopped = false;
  private readonly stopController = new AbortController();

  constructor(
    private readonly components: NetworkComponents,
    init: NetworkInit,
  ) {
    this.init = init;
    this.network = checkName(init.network ?? defaultNetwork, 'network');
    this.clientMode = init.clientMode === true;
    this.requestTimeoutMs = positive(init.requestTimeoutMs ?? limits.requestTimeoutMs, 'requestTimeoutMs');
    this.frameBytesMax = positive(init.frameBytesMax ?? limits.frameBytesMax, 'frameBytesMax');
    this.bootstrap = (init.bootstrap ?? []).map((address) => {
      const parsed = parseAddress(address, 'CONFIG_INVALID');
      const peerId = peerIdInAddress(parsed);
      if (peerId === undefined)
        throw new EngineError('CONFIG_INVALID', `bootstrap address ${address} must end in /p2p/<peer id>`, {
          field: 'bootstrap',
        });
      return { address: parsed, peerId };
    });
    const bootstrapPeers = new Set(this.bootstrap.map((entry) => entry.peerId));
    for (const address of init.remembered ?? []) {
      let parsed: Multiaddr;
      try {
        parsed = parseAddress(address, 'CONFIG_INVALID');
      } catch {
        continue;
      }
      const peerId = peerIdInAddress(parsed);
      if (peerId === undefined || bootstrapPeers.has(peerId)) continue;
      const known = this.remembered.get(peerId);
      if (known !== undefined) known.push(parsed);
      else if (this.remembered.size < limits.rememberedPeersDialledMax) this.remembered.set(peerId, [parsed]);
    }
    this.guard = new PeerGuard(
      { clock: components.clock ?? systemClock },
      definedOnly({
        streamsPerPeerMax: init.streamsPerPeerMax,
        requestsPerPeerPerSec: init.requestsPerPeerPerSec,
        requestsPerPeerBurst: init.requestsPerPeerBurst,
      }),
    );
    this.budget = new ByteBudget(init.inboundBufferedBytesMax ?? limits.inboundBufferedBytesMax);
    this.pool = new StreamPool({
      idleMs: positive(init.requestStreamIdleMs ?? requestStreamIdleMsDefault, 'requestStreamIdleMs'),
      idlePerPeerMax: Math.floor(
        nonNegative(
          init.requestStreamsIdlePerPeerMax ?? requestStreamsIdlePerPeerMaxDefault,
          'requestStreamsIdlePerPeerMax',
        ),
      ),
      lingerMs: this.requestTimeoutMs,
      frameBytesMax: this.frameBytesMax,
    });
    this.servedIdleMs = positive(init.servedStreamIdleMs ?? serveIdleTimeoutMs, 'servedStreamIdleMs');
    this.peerId = peerIdOf(components.privateKey);
  }

  async start(): Promise<void> {
    const init = this.init;
    const listen = this.clientMode ? [] : [...(init.listen ?? ['/ip4/127.0.0.1/tcp/0'])];
    for (const address of [...listen, ...(init.announce ?? [])]) parseAddress(address, 'CONFIG_INVALID');
    const services: Record<string, unknown> = {
      identify: identify(),
      // libp2p's connection monitor pings on the same protocol; room for it and for ours at once.
      ping: ping({ timeout: this.requestTimeoutMs, maxOutboundStreams: 4, maxInboundStreams: 4 }),
    };
    // A light client (one command's lifetime, talking to one node) runs no DHT and no relay, and does
    // not import them: kad-dht and circuit relay are a tenth of its start-up.
    if (!this.clientMode) {
      const { kadDHT, passthroughMapper } = await import('@libp2p/kad-dht');
      services['dht'] = kadDHT({
        protocol: dhtProtocolId(this.network),
        // Server mode from the start (unset, kad-dht waits for a public address, which a LAN or
        // loopback node never has).
        clientMode: false,
        // Private and loopback addresses are real addresses on a LAN or one host; keep them.
        peerInfoMapper: passthroughMapper,
        // A solo node must answer `closest` (with itself) instead of waiting for a first peer.
        allowQueryWithZeroPeers: true,
        logPrefix: `libp2p:optimystic:${this.network}:kad`,
        datastorePrefix: `/optimystic/${this.network}/dht`,
        metricsPrefix: `optimystic_${this.network.replace(/[^a-z0-9]/g, '_')}_kad`,
      });
      if (init.gateway === true) {
        const { circuitRelayServer } = await import('@libp2p/circuit-relay-v2');
        services['relay'] = circuitRelayServer();
      }
    }
    const gate = init.connectionGater;
    const deny = (peerId: { toString(): string }): boolean => {
      const id = peerId.toString();
      return this.foreign.has(id) || gate?.denyPeer(id) === true;
    };
    const options: Libp2pOptions<Services> = {
      privateKey: this.components.privateKey,
      addresses: { listen, ...(init.announce === undefined ? {} : { announce: [...init.announce] }) },
      transports: [tcp()],
      // Noise and Yamux with the adjustments of transport-tuning.ts (fewer frames, writes and Errors per request).
      connectionEncrypters: [tunedNoise()],
      streamMuxers: [tunedYamux({ maxInboundStreams: limits.muxedStreamsPerConnectionMax })],
      connectionGater: {
        denyDialPeer: deny,
        denyInboundEncryptedConnection: deny,
        denyOutboundEncryptedConnection: deny,
      },
      connectionManager: { dialTimeout: limits.dialTimeoutMs },
      connectionMonitor: { pingInterval: limits.connectionPingIntervalMs },
      services: services as NonNullable<Libp2pOptions<Services>['services']>,
    };
    try {
      this.libp2p = await createLibp2p<Services>(options);
    } catch (error) {
      throw new EngineError('UNAVAILABLE', `network node did not start: ${messageOf(error)}`, undefined, {
        cause: error,
      });
    }
    this.watchPeers(this.libp2p);
    await Promise.allSettled(this.bootstrap.map((entry) => this.dialBootstrap(entry)));
    this.dialRemembered();
    const intervalMs = positive(
      init.maintenanceIntervalMs ?? limits.networkMaintenanceMs,
      'maintenanceIntervalMs',
    );
    this.maintenanceTimer = setInterval(() => void this.maintain(), intervalMs);
  }

  private get node(): Node {
    if (this.libp2p === undefined || this.stopped)
      throw new EngineError('UNAVAILABLE', 'network node is stopped');
    return this.libp2p;
  }

  private watchPeers(node: Node): void {
    node.addEventListener('peer:connect', (event) => this.emit('peer:connect', event.detail.toString()));
    node.addEventListener('peer:disconnect', (event) => {
      const id = event.detail.toString();
      this.identified.delete(id);
      this.dhtServers.delete(id);
      this.networkNodes.delete(id);
      this.latency.delete(id);
      this.emit('peer:disconnect', id);
    });
    node.addEventListener('peer:identify', (event) => {
      const { peerId, protocols, listenAddrs } = event.detail;
      const id = peerId.toString();
      const networks = new Set(protocols.map(networkOfProtocol).filter((n) => n !== undefined));
      if (networks.size > 0 && !networks.has(this.network)) {
        // A node of another network: it must not enter our DHT or our peer list.
        this.rememberForeign(id);
        node.hangUp(peerId).catch(() => undefined);
        return;
      }
      if (node.getConnections(peerId).length === 0) return;
      this.identified.set(
        id,
        listenAddrs.map((a) => a.toString()),
      );
      if (protocols.includes(dhtProtocolId(this.network))) this.dhtServers.add(id);
      else this.dhtServers.delete(id);
      this.networkNodes.set(id, networks.size > 0);
      this.emit('peer:identify', id);
    });
  }

  private rememberForeign(peerId: string): void {
    this.foreign.add(peerId);
    if (this.foreign.size > foreignPeersMax) {
      const oldest = this.foreign.values().next().value;
      if (oldest !== undefined) this.foreign.delete(oldest);
    }
  }

  private emit(event: NetworkEvent, peerId: string): void {
    for (const listener of this.listeners.get(event) ?? []) {
      try {
        listener(peerId);
      } catch {
        // A listener's failure is its own; the network keeps going.
      }
    }
  }

  private async dialBootstrap(entry: { address: Multiaddr; peerId: string }): Promise<void> {
    if (entry.peerId === this.peerId || this.foreign.has(entry.peerId)) return;
    const node = this.node;
    if (node.getConnections(peerIdFromString(entry.peerId)).length > 0) return;
    await node.dial(entry.address, { signal: this.deadline(limits.dialTimeoutMs) });
  }

  /**
   * Dials the remembered peers not connected (each at all its addresses), in the background: one that
   * is gone costs a failed dial per maintenance tick, nothing else.
   */
  private dialRemembered(): void {
    if (this.stopped || this.libp2p === undefined) return;
    const node = this.libp2p;
    for (const [peerId, addresses] of this.remembered) {
      if (peerId === this.peerId || this.foreign.has(peerId)) continue;
      if (node.getConnections(peerIdFromString(peerId)).length > 0) continue;
      void node.dial(addresses, { signal: this.deadline(limits.dialTimeoutMs) }).catch(() => undefined);
    }
  }

  /** A connected peer's listen addresses as it announced them (identify), each ending in /p2p/<id>. */
  listenAddressesOf(peerId: string): string[] | undefined {
    return this.identified.get(peerId)?.map((address) => withPeerId(address, peerId));
  }

  isNetworkNode(peerId: string): boolean | undefined {
    return this.networkNodes.get(peerId);
  }

  /**
   * Re-dials missing bootstrap peers, and refreshes the routing table by looking up our own id. The
   * lookup runs every tick while the table changes and backs off (doubling, up to
   * networkLookupBackoffTicksMax ticks) while it is stable, so a settled network stays quiet.
   */
  private async maintain(): Promise<void> {
    if (this.maintaining || this.stopped) return;
    this.maintaining = true;
    try {
      await Promise.allSettled(this.bootstrap.map((entry) => this.dialBootstrap(entry)));
      this.dialRemembered();
      const size = this.routingTableSize();
      if (this.stopped || size === 0) return;
      if (size !== this.lookup.tableSize) this.lookup.everyTicks = 1;
      this.lookup.ticks += 1;
      if (this.lookup.ticks < this.lookup.everyTicks) return;
      this.lookup.ticks = 0;
      const dht = this.node.services.dht;
      if (dht === undefined) return;
      const self = peerIdFromString(this.peerId).toMultihash().bytes;
      for await (const _event of dht.getClosestPeers(self, {
        signal: this.deadline(this.requestTimeoutMs),
      })) {
        // Responses refresh the routing table as they arrive; the result itself is not needed.
      }
      const after = this.routingTableSize();
      this.lookup.everyTicks =
        after === size ? Math.min(this.lookup.everyTicks * 2, limits.networkLookupBackoffTicksMax) : 1;
      this.lookup.tableSize = after;
    } catch {
      // Upkeep is best effort; the next tick tries again.
    } finally {
      this.maintaining = false;
    }
  }

  /** A signal that aborts after `ms` or when the node stops. */
  private deadline(ms: number): AbortSignal {
    return AbortSignal.any([AbortSignal.timeout(ms), this.stopController.signal]);
  }

  addresses(): string[] {
    if (this.libp2p === undefined || this.stopped) return [];
    return this.libp2p.getMultiaddrs().map((address) => withPeerId(address.toString(), this.peerId));
  }

  peers(): PeerInfo[] {
    if (this.libp2p === undefined || this.stopped) return [];
    const byPeer = new Map<
      string,
      { addresses: string[]; direction: 'inbound' | 'outbound'; opened: number; rtt?: number }
    >();
    for (const connection of this.libp2p.getConnections()) {
      if (connection.status !== 'open') continue;
      const id = connection.remotePeer.toString();
      const entry = byPeer.get(id);
      const address = connection.remoteAddr.toString();
      if (entry === undefined) {
        byPeer.set(id, {
          addresses: [address],
          direction: connection.direction,
          opened: connection.timeline.open,
          ...(connection.rtt === undefined ? {} : { rtt: connection.rtt }),
        });
      } else {
        if (!entry.addresses.includes(address)) entry.addresses.push(address);
        if (connection.timeline.open < entry.opened) {
          entry.opened = connection.timeline.open;
          entry.direction = connection.direction;
        }
        if (entry.rtt === undefined && connection.rtt !== undefined) entry.rtt = connection.rtt;
      }
    }
    return [...byPeer].map(([id, entry]) => {
      const latencyMs = this.latency.get(id) ?? entry.rtt;
      const listenAddresses = this.identified.get(id);
      const addresses =
        listenAddresses !== undefined && listenAddresses.length > 0 ? listenAddresses : entry.addresses;
      return {
        id,
        addresses: addresses.map((address) => withPeerId(address, id)),
        direction: entry.direction,
        ...(latencyMs === undefined ? {} : { latencyMs }),
      };
    });
  }

  async connect(address: string): Promise<FoundPeer> {
    const target = parseAddress(address, 'BAD_INPUT');
    try {
      const connection = await this.node.dial(target, { signal: this.deadline(limits.dialTimeoutMs) });
      const id = connection.remotePeer.toString();
      return { id, addresses: [withPeerId(connection.remoteAddr.toString(), id)] };
    } catch (error) {
      throw networkError(error, `could not connect to ${address}`);
    }
  }

  async disconnect(peerId: string): Promise<void> {
    try {
      await this.node.hangUp(parsePeerId(peerId));
    } catch (error) {
      throw networkError(error, `could not disconnect from ${peerId}`);
    }
  }

  async ping(target: string): Promise<number> {
    const address = target.startsWith('/') ? parseAddress(target, 'BAD_INPUT') : undefined;
    const dialTarget = address ?? parsePeerId(target);
    try {
      const ms = await this.node.services.ping.ping(dialTarget, {
        signal: this.deadline(this.requestTimeoutMs),
      });
      const id =
        address === undefined
          ? target
          : (peerIdInAddress(address) ??
            this.node
              .getConnections()
              .find((c) => c.remoteAddr.equals(address))
              ?.remotePeer.toString());
      // Only connected peers are remembered; the entry goes when the peer disconnects.
      if (id !== undefined && this.node.getConnections(parsePeerId(id)).length > 0) this.latency.set(id, ms);
      return ms;
    } catch (error) {
      throw networkError(error, `could not ping ${target}`);
    }
  }

  async findPeer(peerId: string): Promise<FoundPeer> {
    const id = parsePeerId(peerId);
    if (peerId === this.peerId) return { id: this.peerId, addresses: this.addresses() };
    try {
      const info = await this.node.peerRouting.findPeer(id, { signal: this.deadline(this.requestTimeoutMs) });
      return { id: peerId, addresses: info.multiaddrs.map((a) => withPeerId(a.toString(), peerId)) };
    } catch (error) {
      throw networkError(error, `peer ${peerId} not found`);
    }
  }

  async closest(key: Uint8Array, k: number): Promise<string[]> {
    if (!Number.isSafeInteger(k) || k < 1 || k > limits.closestPeersMax)
      throw new EngineError('BAD_INPUT', `k must be an integer in 1..${limits.closestPeersMax}`);
    // A light client is nobody's cluster member and runs no DHT: it answers with the servers it is
    // connected to (its node asks the DHT for it, `peer closest --connect`).
    const found = new Set<string>(this.clientMode ? [] : [this.peerId]);
    const dht = this.node.services.dht;
    try {
      if (dht !== undefined)
        for await (const event of dht.getClosestPeers(key, {
          signal: this.deadline(this.requestTimeoutMs),
        })) {
          if (event.name === 'FINAL_PEER') found.add(event.peer.id.toString());
        }
    } catch (error) {
      throw networkError(error, 'closest-peer query failed');
    }
    // Connected DHT servers are live too; a query answer lost to a slow peer must not drop it.
    for (const id of this.dhtServers) {
      if (this.node.getConnections(peerIdFromString(id)).length > 0) found.add(id);
    }
    return nearest(key, [...found], k);
  }

  routingTableSize(): number {
    if (this.libp2p === undefined || this.stopped) return 0;
    const dht = this.libp2p.services.dht as (KadDHT & { routingTable?: { size: number } }) | undefined;
    return dht?.routingTable?.size ?? 0;
  }

  on(event: NetworkEvent, listener: (peerId: string) => void): () => void {
    let set = this.listeners.get(event);
    if (set === undefined) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  async handle<Req>(name: string, handler: RequestHandler<Req>, options: HandleOptions<Req>): Promise<void> {
    if (name === 'kad') throw new EngineError('BAD_INPUT', "protocol name 'kad' is the DHT's");
    const protocol = protocolId(this.network, name);
    const frameBytesMax = options.frameBytesMax ?? this.frameBytesMax;
    const timeoutMs = options.timeoutMs ?? this.requestTimeoutMs;
    // Streams still open on a handler being replaced must not keep reaching it.
    this.retireServed(protocol);
    const served = new Set<AbortController>();
    this.servedStreams.set(protocol, served);
    const time = this.init.timeRequest;
    const timedHandler: RequestHandler<Req> =
      time === undefined
        ? handler
        : (request, context) => {
            const startedAt = performance.now();
            const done = (): void => {
              try {
                time('served', requestName(name, request), performance.now() - startedAt);
              } catch {
                // An observer's failure is not the request's.
              }
            };
            const answer = handler(request, context);
            answer.then(done, done);
            return answer;
          };
    const onStream = (stream: Stream, connection: { remotePeer: { toString(): string } }): void => {
      const peerId = connection.remotePeer.toString();
      const admission = this.guard.admit(peerId, this.trusted(peerId));
      if (typeof admission === 'string') {
        this.refused += 1;
        stream.abort(new EngineError('UNAVAILABLE', `stream refused (${admission})`));
        return;
      }
      stream.addEventListener('close', () => admission.release(), { once: true });
      const retire = new AbortController();
      served.add(retire);
      serveStream(stream as WireStream, peerId, timedHandler, {
        retire: retire.signal,
        validate: options.validate,
        frameBytesMax,
        timeoutMs,
        budget: this.budget,
        idleTimeoutMs: this.servedIdleMs,
        // Every request takes a token, not only a stream's first.
        admitNext: () => {
          if (this.guard.admitRequest(peerId, this.trusted(peerId))) return true;
          this.refused += 1;
          return false;
        },
        onOutcome: (outcome) => (this.served[outcome] += 1),
        onBusy: (busy) => (this.busyStreams += busy ? 1 : -1),
      })
        .catch(() => stream.abort(new EngineError('INTERNAL', 'request failed')))
        .finally(() => served.delete(retire));
    };
    try {
      await this.node.handle(protocol, onStream, {
        maxInboundStreams: this.init.streamsPerPeerMax ?? limits.streamsPerPeerMax,
        force: true,
      });
    } catch (error) {
      throw networkError(error, `could not serve ${protocol}`);
    }
  }

  private trusted: (peerId: string) => boolean = () => false;

  trust(predicate: (peerId: string) => boolean): void {
    this.trusted = predicate;
  }

  async unhandle(name: string): Promise<void> {
    const protocol = protocolId(this.network, name);
    await this.node.unhandle(protocol);
    this.retireServed(protocol);
  }

  private retireServed(protocol: string): void {
    const served = this.servedStreams.get(protocol);
    if (served === undefined) return;
    this.servedStreams.delete(protocol);
    for (const retire of served) retire.abort();
  }

  async request<T = unknown>(
    peer: string,
    name: string,
    message: unknown,
    options: RequestOptions<T> = {},
  ): Promise<T> {
    this.init.observeRequest?.(peer, name, message);
    const sent = this.source(peer, name).batcher.request(message, this.requestDefaults(options));
    const time = this.init.timeRequest;
    if (time === undefined) return sent;
    const startedAt = performance.now();
    const done = (): void => {
      try {
        time('sent', requestName(name, message), performance.now() - startedAt);
      } catch {
        // An observer's failure is not the request's.
      }
    };
    sent.then(done, done);
    return sent;
  }

  requestStream<T = unknown>(
    peer: string,
    name: string,
    message: unknown,
    options: RequestOptions<T> = {},
  ): AsyncGenerator<T, void, undefined> {
    this.init.observeRequest?.(peer, name, message);
    return sendStreamRequest(this.source(peer, name).source, message, this.requestDefaults(options));
  }

  private requestDefaults<T>(options: RequestOptions<T>): RequestOptions<T> {
    return { timeoutMs: this.requestTimeoutMs, frameBytesMax: this.frameBytesMax, ...options };
  }

  /** Stream sources and batchers by peer and protocol name (parsing a peer id costs more than a small request). */
  private sources = new Map<string, { source: StreamSource; batcher: RequestBatcher }>();

  /**
   * Streams for requests to `peer` (an id or a multiaddr, each its own pool key) on protocol `name`,
   * and the batcher that coalesces single requests sent there in the same turn.
   */
  private source(peer: string, name: string): { source: StreamSource; batcher: RequestBatcher } {
    const key = `${name} ${peer}`;
    const known = this.sources.get(key);
    if (known !== undefined) return known;
    const protocol = protocolId(this.network, name);
    const target = peer.startsWith('/') ? parseAddress(peer, 'BAD_INPUT') : parsePeerId(peer);
    const source = this.pool.source(peer, protocol, async (signal) => {
      try {
        return await this.node.dialProtocol(target, protocol, { signal });
      } catch (error) {
        throw networkError(error, `could not open ${protocol} to ${peer}`);
      }
    });
    if (this.sources.size >= limits.peersTrackedMax) this.sources = new Map();
    const entry = { source, batcher: new RequestBatcher(source, this.frameBytesMax) };
    this.sources.set(key, entry);
    return entry;
  }

  stats(): NetworkStats {
    return {
      inboundStreams: this.busyStreams,
      idleInboundStreams: this.guard.openStreams() - this.busyStreams,
      bufferedBytes: this.budget.held,
      trackedPeers: this.guard.trackedPeers(),
      refused: this.refused,
      served: { ...this.served },
      streamsOpened: this.pool.opened,
      streamsReused: this.pool.reused,
      idleStreams: this.pool.idleStreams,
    };
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.stopController.abort(new EngineError('UNAVAILABLE', 'network node stopped'));
    if (this.maintenanceTimer !== undefined) clearInterval(this.maintenanceTimer);
    this.listeners.clear();
    this.pool.close();
    await this.libp2p?.stop();
  }
}

/** The k ids nearest to the key: XOR distance between sha256(key) and sha256(peer id multihash), as Kademlia measures it. */
export function nearest(key: Uint8Array, peerIds: readonly string[], k: number): string[] {
  const target = sha256(key);
  const scored = peerIds.map((id) => ({
    id,
    distance: xor(target, sha256(peerIdFromString(id).toMultihash().bytes)),
  }));
  scored.sort((a, b) => compareBytes(a.distance, b.distance) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return scored.slice(0, k).map((entry) => entry.id);
}

function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest());
}

function xor(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return 0;
}

function parseAddress(address: string, code: 'BAD_INPUT' | 'CONFIG_INVALID'): Multiaddr {
  try {
    return multiaddr(address);
  } catch (error) {
    throw new EngineError(
      code,
      `${JSON.stringify(address)} is not a multiaddr`,
      { address },
      { cause: error },
    );
  }
}

function parsePeerId(peerId: string): ReturnType<typeof peerIdFromString> {
  try {
    return peerIdFromString(peerId);
  } catch (error) {
    throw new EngineError(
      'BAD_INPUT',
      `${JSON.stringify(peerId)} is not a peer id`,
      { peerId },
      { cause: error },
    );
  }
}

function peerIdInAddress(address: Multiaddr): string | undefined {
  return address.getComponents().findLast((component) => component.name === 'p2p')?.value;
}

function withPeerId(address: string, peerId: string): string {
  return address.includes('/p2p/') ? address : `${address}/p2p/${peerId}`;
}

function positive(value: number, what: string): number {
  if (!Number.isFinite(value) || value <= 0)
    throw new EngineError('CONFIG_INVALID', `${what} must be a positive number`, { field: what });
  return value;
}

function nonNegative(value: number, what: string): number {
  if (!Number.isFinite(value) || value < 0)
    throw new EngineError('CONFIG_INVALID', `${what} must be a non-negative number`, { field: what });
  return value;
}

function definedOnly<T extends Record<string, unknown>>(
  record: T,
): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined)) as {
    [K in keyof T]?: Exclude<T[K], undefined>;
  };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Maps libp2p failures onto EngineError codes (by error name; libp2p's classes are not part of our API). */
function networkError(error: unknown, context: string): EngineError {
  if (isEngineError(error)) return error;
  const name = error instanceof Error ? error.name : '';
  const detail = `${context}: ${messageOf(error)}`;
  switch (name) {
    case 'TimeoutError':
    case 'AbortError':
      return new EngineError('TIMEOUT', detail, undefined, { cause: error });
    case 'NotFoundError':
      return new EngineError('NOT_FOUND', detail, undefined, { cause: error });
    case 'InvalidParametersError':
    case 'InvalidMultiaddrError':
    case 'InvalidPeerIdError':
      return new EngineError('BAD_INPUT', detail, undefined, { cause: error });
    default: {
      const engineError = toEngineError(error);
      return engineError.code === 'INTERNAL'
        ? new EngineError('UNAVAILABLE', detail, undefined, { cause: error })
        : engineError;
    }
  }
}
