/**
 * The composition root of a running node: the data directory's store (a SoloNode — the database, a
 * cluster of one until transactions are distributed), its lock and api files, the control socket,
 * libp2p with the node's persisted identity, the client protocol for light clients, status and
 * events. `startNode` brings it all up in that order; `close` takes it down in reverse.
 */
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  monitorEventLoopDelay,
  performance,
  type EventLoopUtilization,
  type IntervalHistogram,
} from 'node:perf_hooks';
import { systemClock, type Clock } from '../base/clock.js';
import { EngineError, toEngineError } from '../base/errors.js';
import { isBlockId, type BlockId } from '../base/ids.js';
import type { Json } from '../base/codec.js';
import type { NodeConfig } from '../config/schema.js';
import {
  createNetworkNode,
  schema,
  serveClient,
  streamReply,
  type ClientRequest,
  type NetworkInit,
  type NetworkNode,
  type RequestContext,
} from '../network/index.js';
import type { BlockRevision, BlockState, PendingTransform } from '../storage/block-store.js';
import { LevelRawStore } from '../storage/level-store.js';
import { commitPhases, type TransactionTiming } from '../transactions/coordinator.js';
import type { TreeKey, TransactOptions, TxOutcome, TxRequest } from '../transactions/tx-types.js';
import { callApi, isApiMethod, type ApiAnswer } from './api.js';
import { CeremonyService } from './ceremony-net.js';
import { ControlServer } from './control-server.js';
import type {
  BlockHolder,
  BlockVerification,
  CollectionInfo,
  CollectionKind,
  Database,
  GetResult,
  ReadOptions,
  ScanOptions,
} from './database-api.js';
import { nodeKeys, type NodeKeys } from './identity.js';
import type {
  ClosestResult,
  IdentityInfo,
  NodeControl,
  PeerAddresses,
  PeerDetail,
  PingResult,
  ReloadResult,
  StatusUpdate,
} from './node-api.js';
import {
  acquireRepoLock,
  apiPath,
  readApi,
  removeApi,
  socketPathFor,
  writeApi,
  type AcquiredLock,
} from './process-files.js';
import { RateMeter } from './rates.js';
import { shortMs, TimingMeter } from './timings.js';
import { SoloNode } from './solo-node.js';
import { clusterWiring, memberBook, type ClusterWiring, type MemberBook } from './cluster-wiring.js';
import { NetworkConsensus } from '../cluster/consensus-edge.js';
import { nodeVoteSigner } from '../cluster/consensus-signer.js';
import { RawConsensusStore } from '../cluster/consensus-store.js';
import { DeferredSyncs } from '../cluster/deferred-syncs.js';
import type { RawStore } from '../storage/raw-store.js';
import { StatusHub } from './status-hub.js';
import {
  clockOffsetReportedMs,
  describeClockOffset,
  reachesMajority,
  storeFailureGist,
  unreachableListedMax,
  type MembersStatus,
  type NodeEvent,
  type NodeEventKind,
  type NodeStatus,
  type PeerStatus,
  type SlowTransactionFigures,
} from './status.js';
import { unlink } from 'node:fs/promises';

export interface StartNodeOptions {
  readonly dataDir: string;
  readonly config: NodeConfig;
  /** The package version, reported in status. */
  readonly version: string;
  /** The config file that applied, if any (reported in the start event). */
  readonly configFile?: string;
  readonly clock?: Clock;
  /** Network settings beyond the config (tests shorten the maintenance interval). */
  readonly network?: Omit<
    NetworkInit,
    'network' | 'listen' | 'announce' | 'bootstrap' | 'gateway' | 'clientMode'
  >;
  /** Cluster settings beyond the config (tests shorten how long a member may be away). */
  readonly cluster?: { readonly memberAbsentMs?: number };
  /**
   * Transactions this node coordinates that take at least this long (ms) are logged as events with
   * where their time went; overrides the config's slowTransactionMs (tests lower it).
   */
  readonly slowTransactionMs?: number;
  /** Threshold key ceremonies over the network (ceremony-net.ts): the keystore passphrase, never logged. */
  readonly keygen?: { readonly passphrase?: string; readonly sealCostLog2?: number };
  /**
   * Resolves the settings again as the node was started (its flags and environment, the config file
   * as it is now), for `node reload`. Without it the node cannot reload (UNAVAILABLE).
   */
  readonly reloadConfig?: () => Promise<{ readonly config: NodeConfig; readonly file?: string | undefined }>;
}

/** Settings a running node takes on `node reload`; the others apply at its next start. */
const reloadable: ReadonlySet<keyof NodeConfig> = new Set(['clients', 'slowTransactionMs']);

/** How often the node recomputes its status for watchers. */
export const statusIntervalMs = 1000;
/**
 * How old the count of collections in the status published every second may be: a networked node
 * counts by asking every member for its catalog (as `collection list` does).
 */
const collectionCountMaxAgeMs = 10_000;
/** The event-loop delay probe's interval: fine enough to see lateness of a millisecond, cheap to run. */
const loopDelayResolutionMs = 10;
/** How often the node pings its peers, so their latency is known (the dashboard shows it). */
export const latencyProbeIntervalMs = 10_000;
/** How often a node looks for expired pends to settle with their tails. */
const sweepIntervalMs = 10_000;
/** Peers pinged per probe round: a latency column, not a load generator. */
const latencyProbePeersMax = 32;
/** How long a stopping node lets transactions it is serving finish before closing the store. */
const drainMs = 10_000;
/**
 * How long a connected peer may take to identify (tell its protocols) before it is announced as
 * joined anyway. Identify follows the connection within milliseconds on a working link.
 */
const identifyWaitMs = 2_000;

/** Starts a node on a data directory. Throws DATA_DIR_BUSY, CONFIG_INVALID or UNAVAILABLE (port in use…). */
export async function startNode(options: StartNodeOptions): Promise<RunningNode> {
  const clock = options.clock ?? systemClock;
  const { dataDir } = options;
  await mkdir(dataDir, { recursive: true });
  const lock = await acquireRepoLock(dataDir, clock.now());
  const notices: string[] = [];
  if (lock.stalePid !== undefined)
    notices.push(
      `cleared the lock left by a node that is no longer running (pid ${lock.stalePid || 'unknown'})`,
    );
  let solo: SoloNode | undefined;
  try {
    // We hold the lock, so any api file is a crashed node's.
    const staleApi = await readApi(dataDir);
    if (staleApi !== undefined) {
      await unlink(apiPath(dataDir)).catch(() => undefined);
      notices.push(
        `removed the api file left by a node that is no longer running (pid ${staleApi.pid || 'unknown'})`,
      );
    }
    // The node exists only once the store is open: what happens before (a failed flush, a slow
    // transaction) is reported to it from then on.
    const late: { node?: RunningNode } = {};
    const raw = new LevelRawStore(join(dataDir, 'store'), {
      onFailure: (error) => late.node?.reportStore(error),
      onRecovered: () => late.node?.reportStore(undefined),
    });
    try {
      await raw.open();
    } catch (error) {
      if (error instanceof EngineError && error.code === 'DATA_DIR_BUSY')
        throw new EngineError(
          'DATA_DIR_BUSY',
          `the store in ${dataDir} is open in another process (an optimystic command working on it without a node?); let it finish, then start the node`,
          { dir: dataDir },
          { cause: error },
        );
      throw error;
    }
    // Syncs this node defers while it is alone in a cluster or group (shared by its repo and consensus).
    const deferred = new DeferredSyncs(() => raw.sync());
    const members = await memberBook(raw);
    const wiring = clusterWiring(options.config.network, options.config.clusterSize, members, {
      ...(options.cluster ?? {}),
      deferred,
    });
    const timings = new TimingMeter(clock);
    // options.slowTransactionMs (tests) wins over the setting, and over its reloads.
    const slowMs = (): number =>
      options.slowTransactionMs ?? late.node?.config.slowTransactionMs ?? options.config.slowTransactionMs;
    try {
      solo = await SoloNode.open(
        { raw, clock },
        {
          network: options.config.network,
          dataDir,
          wiring: wiring.wire,
          coordinator: {
            onPhase: (phase, ms) => timings.record('phases', phase, ms),
            onFinished: (timing) => {
              if (timing.ms >= slowMs()) late.node?.reportSlowTransaction(timing);
            },
          },
        },
      );
    } catch (error) {
      await raw.close();
      throw error;
    }
    if (solo.handedOverAtOpen.length > 0) {
      const names = solo.handedOverAtOpen;
      notices.push(
        `moved the logs of ${names.length} collection(s) made embedded by an earlier version to groups that name this node by its peer id (${names.slice(0, 5).join(', ')}${names.length > 5 ? ', …' : ''}); nothing else changed`,
      );
    }
    const keys = await nodeKeys(solo.identity);
    const node = new RunningNode(options, clock, lock, solo, keys, notices, {
      wiring,
      raw,
      members,
      deferred,
      timings,
    });
    late.node = node;
    await node.start();
    return node;
  } catch (error) {
    // start() cleans up what it started; the store and lock are ours to release here.
    await solo?.close().catch(() => undefined);
    await lock.release().catch(() => undefined);
    throw error;
  }
}

export class RunningNode implements NodeControl {
  readonly dataDir: string;
  readonly peerId: string;
  /** The settings in force: those it started with, with the reloadable ones as last reloaded. */
  get config(): NodeConfig {
    return this.settings;
  }
  private settings: NodeConfig;
  readonly startedAt: number;
  /** Things worth telling the operator that happened while starting (stale files cleared). */
  readonly notices: readonly string[];
  /** The database this node serves (what the control socket and light clients reach). */
  readonly database: ServedDatabase;
  readonly hub = new StatusHub();

  /** Synced writes (fsyncs) this node's store has made since it opened. */
  get storeSyncs(): number {
    const raw = this.distributed.raw;
    return raw instanceof LevelRawStore ? raw.flushCount : 0;
  }

  private readonly meter: RateMeter;
  private readonly connectedAt = new Map<string, number>();
  /** Peers whose `peer joined` event was emitted (their `peer left` is emitted in turn). */
  private readonly joinsAnnounced = new Set<string>();
  /** Peers connected but not identified yet: announced when they identify, or when this runs out. */
  private readonly joinsUnidentified = new Map<string, NodeJS.Timeout>();
  private readonly watchers = new AbortController();
  private control: ControlServer | undefined;
  private network: NetworkNode | undefined;
  /** Key ceremonies with other nodes (`keygen ceremony start|accept`). */
  ceremonies: CeremonyService | undefined;
  private consensus: NetworkConsensus | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  /** Timer lateness and loop utilization since the last status period (`timings.loop`). */
  private loopDelay: IntervalHistogram | undefined;
  private loopUsed: EventLoopUtilization | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private refreshing = false;
  private closing: Promise<void> | undefined;
  private resolveStopped!: () => void;
  private rejectStopped!: (error: unknown) => void;
  /** Settles once the node has stopped, whoever asked (stop request, signal, dashboard). */
  readonly stopped: Promise<void>;

  constructor(
    private readonly options: StartNodeOptions,
    private readonly clock: Clock,
    private readonly lock: AcquiredLock,
    private readonly solo: SoloNode,
    private readonly keys: NodeKeys,
    notices: readonly string[],
    private readonly distributed: {
      readonly wiring: ClusterWiring;
      readonly raw: RawStore;
      /** The members met, with the addresses they last announced (dialled again at start). */
      readonly members: MemberBook;
      readonly deferred: DeferredSyncs;
      /** Where the node's time goes (`timings` in status); the coordinator reports to it already. */
      readonly timings: TimingMeter;
    },
  ) {
    this.dataDir = options.dataDir;
    this.settings = options.config;
    this.peerId = keys.info.peerId;
    this.startedAt = clock.now();
    this.notices = notices;
    this.meter = new RateMeter(clock);
    this.database = new ServedDatabase(solo, this.meter);
    this.stopped = new Promise<void>((resolve, reject) => {
      this.resolveStopped = resolve;
      this.rejectStopped = reject;
    });
    this.stopped.catch(() => undefined);
  }

  /** Control socket first (data commands work while libp2p starts), then the network. */
  async start(): Promise<void> {
    for (const notice of this.notices) this.emit('info', notice);
    try {
      const socket = socketPathFor(this.dataDir);
      this.control = await ControlServer.listen(socket, (method, params) =>
        this.answer(method, params, true),
      );
      await writeApi(this.dataDir, {
        pid: process.pid,
        socket,
        peerId: this.peerId,
        version: this.options.version,
        startedAt: this.startedAt,
      });
      this.network = await this.startNetwork();
      const network = this.network;
      this.distributed.members.addressesOf = (peer) => network.listenAddressesOf(peer);
      await this.joinCluster(this.network);
      await serveClient(
        this.network,
        async (request: ClientRequest, context: RequestContext) => {
          this.admitClient(context.peerId);
          const answer = await this.answer(request.type, request['params'], false);
          return answer.kind === 'stream' ? streamReply(answer.items) : answer.value;
        },
        { validate: validateClientRequest },
      );
      this.ceremonies = await CeremonyService.start({
        ...this.options.keygen,
        dataDir: this.dataDir,
        network: this.network,
        clock: this.clock,
        log: (kind, message, peer) => this.emit(kind, message, peer),
      });
      this.network.on('peer:connect', (peer) => {
        this.connectedAt.set(peer, this.clock.now());
        this.announceJoin(peer);
        this.probe([peer]);
        this.watchMajority();
      });
      // A member's listen addresses are remembered, so that after a restart this node finds it
      // again without bootstrap addresses: when it becomes a member (addressesOf, above), and when
      // it announces them again.
      this.network.on('peer:identify', (peer) => {
        this.announceJoin(peer);
        this.rememberAddresses(peer);
      });
      this.network.on('peer:disconnect', (peer) => {
        // How long a member has been away outlives a restart of this node (node status names it).
        if (this.distributed.wiring.cluster?.placement.isMember(peer) === true)
          this.distributed.members.seen([peer], this.clock.now()).catch(() => undefined);
        this.connectedAt.delete(peer);
        clearTimeout(this.joinsUnidentified.get(peer));
        this.joinsUnidentified.delete(peer);
        if (this.joinsAnnounced.delete(peer)) this.emit('peer:disconnect', `peer left: ${peer}`, peer);
        this.watchMajority();
      });
      // Bootstrap peers are dialled while the network starts, before the listeners above (and the
      // members among them identified themselves then).
      for (const peer of this.network.peers()) {
        this.connectedAt.set(peer.id, this.clock.now());
        this.announceJoin(peer.id);
        this.rememberAddresses(peer.id);
      }
      this.watchMajority();
    } catch (error) {
      await this.teardown();
      throw error;
    }
    await this.refreshStatus();
    this.startLoopSampling();
    this.statusTimer = setInterval(() => {
      this.sampleLoop();
      void this.refreshStatus();
    }, statusIntervalMs);
    this.probe(this.network.peers().map((peer) => peer.id));
    this.probeTimer = setInterval(
      () => this.probe((this.network?.peers() ?? []).map((peer) => peer.id)),
      latencyProbeIntervalMs,
    );
    const addresses = this.network.addresses();
    this.emit(
      'node:start',
      `node ${this.peerId} started on network ${this.config.network}, listening on ${addresses.join(' ') || '(no address)'}`,
    );
    if (this.config.gateway && this.config.announce.length === 0)
      this.emit(
        'info',
        'gateway without --announce: NAT-ed peers learn only the listen addresses; announce the public address',
      );
    if (this.config.bootstrap.length > 0 && this.network.peers().length === 0)
      this.emit('error', 'no bootstrap peer reachable yet; retrying in the background');
  }

  /** Starts consensus on the network and serves this node's share of the blocks and log tails. */
  private async joinCluster(network: NetworkNode): Promise<void> {
    const cluster = this.distributed.wiring.cluster;
    if (cluster === undefined)
      throw new EngineError('INTERNAL', 'the node was opened without its cluster wiring');
    cluster.onForeign((peer, clash) =>
      this.emit(
        'error',
        `peer ${peer} holds another database, so it is not a member: its collection ${clash.collection} was created by transaction ${clash.there}, this node's by ${clash.here}. The two data directories were databases of their own before their nodes met, and they are not merged; start a node that joins this network on an empty data directory (its data can be copied in: docs/cli.md, "How a command reaches the data")`,
        peer,
      ),
    );
    // Clocks that disagree do not stop transactions (deadlines travel as time left: docs/cluster.md,
    // "Clocks"), but timestamps an operator reads across nodes (logs, this status) do.
    cluster.onClockOffset((peer, offsetMs) => {
      if (Math.abs(offsetMs) >= clockOffsetReportedMs)
        this.emit(
          'info',
          `peer ${peer}'s clock is ${describeClockOffset(offsetMs)} this node's; transactions are not affected, but times in the two nodes' logs disagree (keep clocks synchronised, with NTP)`,
          peer,
        );
    });
    this.consensus = await NetworkConsensus.start(
      {
        network,
        store: new RawConsensusStore(this.distributed.raw, this.distributed.deferred),
        clock: this.clock,
        signer: nodeVoteSigner(this.solo.identity),
      },
      { admitGroup: (group) => cluster.admitGroup(group) },
    );
    // Only the collection whose log that group orders is read again (all, for a group whose log
    // this node never read).
    this.consensus.onDecided((blockId, _slot, _value, _certificate, proposedHere) => {
      if (!proposedHere) cluster.decidedElsewhere(blockId);
    });
    this.consensus.onEquivocation((proof) => {
      this.emit(
        'error',
        `member ${proof.member} signed two values in one slot: excluded from new groups`,
        proof.member,
      );
      cluster.exclude(proof.member);
    });
    // A closed connection is evidence enough to stop waiting for a leader there (see `suspect`).
    const consensus = this.consensus;
    network.on('peer:disconnect', (peer) => consensus.suspect(peer));
    network.on('peer:connect', (peer) => consensus.reachable(peer));
    this.distributed.wiring.proposer.target = this.consensus;
    await cluster.attach(network, this.consensus);
    // Pends whose transactions expired: their tails say whether they committed.
    this.sweepTimer = setInterval(
      () => void this.solo.sweepExpired().catch(() => undefined),
      sweepIntervalMs,
    );
    this.sweepTimer.unref();
  }

  private async startNetwork(): Promise<NetworkNode> {
    try {
      return await createNetworkNode(
        { privateKey: this.keys.privateKey, clock: this.clock },
        {
          ...this.options.network,
          timeRequest: (direction, name, ms) => {
            this.distributed.timings.record(direction, name, ms);
            this.options.network?.timeRequest?.(direction, name, ms);
          },
          network: this.config.network,
          listen: this.config.listen,
          announce: this.config.announce,
          bootstrap: this.config.bootstrap,
          remembered: this.distributed.members.addresses(),
          gateway: this.config.gateway,
        },
      );
    } catch (error) {
      const engineError = toEngineError(error);
      if (/EADDRINUSE|address already in use/i.test(engineError.message))
        throw new EngineError(
          'UNAVAILABLE',
          `cannot listen on ${this.config.listen.join(', ')}: the port is in use (another node?); choose another with --port or --listen`,
          undefined,
          { cause: error },
        );
      throw engineError;
    }
  }

  /** Pings peers in the background; the network remembers each round trip for `peers()`. */
  private probe(peers: readonly string[]): void {
    const network = this.network;
    if (network === undefined || this.closing !== undefined) return;
    for (const peer of peers.slice(0, latencyProbePeersMax)) {
      // A peer that does not answer keeps its last latency; its connection's fate is libp2p's business.
      network.ping(peer).catch(() => undefined);
    }
  }

  /**
   * The client protocol serves only the peers of the `clients` setting (or any peer with `any`).
   * A refused request is BAD_INPUT: asking again unchanged is refused the same way.
   */
  private admitClient(peerId: string): void {
    const { clients } = this.config;
    if (clients === 'any' || clients.includes(peerId)) return;
    throw new EngineError(
      'BAD_INPUT',
      `node ${this.peerId} does not serve client ${peerId}: it serves only the peers of its clients setting; start the node with --clients ${peerId}, or add it to "clients" in the node's config file and run optimystic node reload (--clients any serves every peer)`,
      { client: peerId },
    );
  }

  private answer(method: string, params: unknown, local: boolean): Promise<ApiAnswer> {
    return callApi({ db: this.database, node: this }, method, params, { local });
  }

  private startLoopSampling(): void {
    try {
      this.loopDelay = monitorEventLoopDelay({ resolution: loopDelayResolutionMs });
      this.loopDelay.enable();
      this.loopUsed = performance.eventLoopUtilization();
    } catch {
      // Without the measurement the status simply has no `loop`.
      this.loopDelay = undefined;
    }
  }

  /** One status period of the event loop: its utilization, and how late its timers fired (p99). */
  private sampleLoop(): void {
    const histogram = this.loopDelay;
    if (histogram === undefined || this.loopUsed === undefined) return;
    const used = performance.eventLoopUtilization(this.loopUsed);
    this.loopUsed = performance.eventLoopUtilization();
    // The histogram holds each timer's whole interval (the resolution plus its lateness), in ns.
    const lateMs = histogram.count > 0 ? histogram.percentile(99) / 1e6 - loopDelayResolutionMs : 0;
    histogram.reset();
    this.distributed.timings.recordLoop(used.utilization, lateMs);
  }

  /**
   * The store failed to write (`error`; a full disk, say) or recovered (undefined). While it is
   * failed the node refuses every write its clusters ask of it, so transactions answer NO_QUORUM or
   * UNAVAILABLE naming this node's store; `node status` shows the failure until the store recovers.
   */
  reportStore(error: EngineError | undefined): void {
    if (error === undefined)
      this.emit('info', 'the store takes writes again: what it held while it was failed is on disk');
    else
      this.emit(
        'error',
        `the store cannot write (${storeFailureGist(error.message)}): ${error.message}; this node refuses writes until it can (it retries by itself, every 30 s at most)`,
      );
  }

  /** Logs a slow transaction this node coordinated, with where its time went. */
  reportSlowTransaction(timing: TransactionTiming): void {
    const tenths = (ms: number): number => Math.round(ms * 10) / 10;
    const transaction: SlowTransactionFigures = {
      ...(timing.trx === '' ? {} : { trx: timing.trx }),
      ok: timing.ok,
      ...(timing.code === undefined ? {} : { code: timing.code }),
      attempts: timing.attempts,
      ms: tenths(timing.ms),
      phases: Object.fromEntries(Object.entries(timing.phases).map(([phase, ms]) => [phase, tenths(ms)])),
    };
    this.emit('info', slowTransactionText(timing), undefined, { transaction });
  }

  private emit(
    kind: NodeEventKind,
    message: string,
    peerId?: string,
    details: Pick<NodeEvent, 'transaction'> = {},
  ): void {
    const event: NodeEvent = {
      at: this.clock.now(),
      kind,
      message,
      ...(peerId === undefined ? {} : { peerId }),
      ...details,
    };
    this.hub.event(event);
  }

  private async refreshStatus(): Promise<void> {
    if (this.refreshing || this.closing !== undefined) return;
    this.refreshing = true;
    try {
      this.hub.publish(await this.statusAt(collectionCountMaxAgeMs));
    } catch (error) {
      if (this.closing === undefined)
        this.emit('error', `status refresh failed: ${toEngineError(error).message}`);
    } finally {
      this.refreshing = false;
    }
  }

  // NodeControl

  status(): Promise<NodeStatus> {
    return this.statusAt(0);
  }

  /** Why the store refuses writes now, if it does. */
  private storeFailure(): string | undefined {
    const raw = this.distributed.raw;
    return raw instanceof LevelRawStore ? raw.failed?.message : undefined;
  }

  /**
   * `collectionsMaxAgeMs`: how old the count of collections may be (0: counted now). The status the
   * node publishes every second takes one up to collectionCountMaxAgeMs old: a networked node counts
   * by asking every member for its catalog.
   */
  private async statusAt(collectionsMaxAgeMs: number): Promise<NodeStatus> {
    const now = this.clock.now();
    const [stats, collections] = await Promise.all([
      this.solo.blocks.stats(),
      this.solo.collectionCount(collectionsMaxAgeMs),
    ]);
    const peers = this.peerStatuses();
    const members = this.membersNow();
    const failure = this.storeFailure();
    return {
      version: this.options.version,
      peerId: this.peerId,
      network: this.config.network,
      role: this.config.role,
      gateway: this.config.gateway,
      bootstrapNode: this.config.bootstrapNode,
      clusterSize: this.config.clusterSize,
      clients: this.config.clients,
      dataDir: this.dataDir,
      pid: process.pid,
      startedAt: this.startedAt,
      uptimeMs: now - this.startedAt,
      listenAddresses: this.network?.addresses() ?? [],
      announceAddresses: [...this.config.announce],
      peers,
      connections: peers.length,
      dhtTableSize: this.network?.routingTableSize() ?? 0,
      collections,
      storage: {
        ...stats,
        capacityBytes: this.config.capacityBytes,
        ...(failure === undefined ? {} : { failure }),
      },
      pendingTransactions: this.database.pendingTransactions,
      rates: this.meter.status(),
      timings: this.distributed.timings.status(),
      ...(members === undefined ? {} : { members }),
    };
  }

  /** Stores a member's listen addresses (the member book looks them up: `addressesOf`). */
  private rememberAddresses(peer: string): void {
    if (this.distributed.wiring.cluster?.placement.isMember(peer) !== true) return;
    this.distributed.members.remember(peer).catch(() => undefined);
  }

  /**
   * Members known and reachable (this node counted in both), and the unreachable ones longest gone
   * first, once the node serves a cluster.
   */
  private membersNow(): MembersStatus | undefined {
    const placement = this.distributed.wiring.cluster?.placement;
    if (placement === undefined) return undefined;
    const members = placement.members();
    const unreachable = members
      .filter((peer) => !placement.isLive(peer))
      .map((peerId) => {
        const lost = placement.isCutOff(peerId);
        // Not met since this node started: away since it was last seen before, when that is known.
        const lastSeenAt = lost ? undefined : this.distributed.members.lastSeen(peerId);
        return {
          peerId,
          forMs:
            lastSeenAt === undefined
              ? placement.unreachableFor(peerId)
              : Math.max(0, this.clock.now() - lastSeenAt),
          lost,
          ...(lastSeenAt === undefined ? {} : { lastSeenAt }),
        };
      })
      .sort((a, b) => b.forMs - a.forMs || (a.peerId < b.peerId ? -1 : 1))
      .slice(0, unreachableListedMax);
    const foreign = [...(this.distributed.wiring.cluster?.foreignPeers() ?? [])]
      .slice(0, unreachableListedMax)
      .map(([peerId, clash]) => ({ peerId, collection: clash.collection }));
    return {
      known: members.length,
      reachable: placement.liveMembers().length,
      unreachable,
      ...(foreign.length > 0 ? { foreign } : {}),
    };
  }

  /**
   * Whether a majority of the known members was reachable when last looked (`watchMajority`);
   * undefined until it first was (a node starting up meets its members one by one: no alarm then).
   */
  private majorityReachable: boolean | undefined;

  /**
   * Logs the moment this node stops reaching a majority of the members it knows, and the moment it
   * does again: in between, what needs a majority of a cluster answers NO_QUORUM here, and an
   * operator reading the log (or the dashboard's events) should know why. Looked at after each
   * connection change, once the cluster has taken it into account.
   */
  private watchMajority(): void {
    setImmediate(() => {
      const members = this.membersNow();
      if (members === undefined || this.closing !== undefined) return;
      const majority = reachesMajority(members);
      if (this.majorityReachable === undefined) {
        if (majority) this.majorityReachable = true;
        return;
      }
      if (majority === this.majorityReachable) return;
      this.majorityReachable = majority;
      if (majority)
        this.emit(
          'info',
          `a majority of the members is reachable again (${members.reachable} of ${members.known})`,
        );
      else
        this.emit(
          'error',
          `only ${members.reachable} of the ${members.known} members are reachable: reads and writes that need a majority answer NO_QUORUM until more of them are back`,
        );
    });
  }

  identity(): Promise<IdentityInfo> {
    return Promise.resolve(this.keys.info);
  }

  /**
   * `node reload`: resolves the settings again (the config file as it is now; flags and environment
   * variables still win over it) and applies those in `reloadable` that changed; the others that
   * changed are named as needing a restart. A bad config file is CONFIG_INVALID and changes nothing.
   */
  async reload(): Promise<ReloadResult> {
    const load = this.options.reloadConfig;
    if (load === undefined)
      throw new EngineError('UNAVAILABLE', 'this node cannot reload its settings; restart it to change them');
    const { config: next, file } = await load();
    const applied: (keyof NodeConfig)[] = [];
    const needsRestart: (keyof NodeConfig)[] = [];
    for (const key of Object.keys(next) as (keyof NodeConfig)[]) {
      if (JSON.stringify(next[key]) === JSON.stringify(this.config[key])) continue;
      (reloadable.has(key) ? applied : needsRestart).push(key);
    }
    if (applied.length > 0)
      this.settings = { ...this.settings, ...Object.fromEntries(applied.map((key) => [key, next[key]])) };
    const from = file === undefined ? 'no config file' : file;
    this.emit(
      'info',
      `settings reloaded (${from}): ${applied.length === 0 ? 'none applied' : `applied ${applied.join(', ')}`}${needsRestart.length === 0 ? '' : `; changed but applied at the next start: ${needsRestart.join(', ')}`}`,
    );
    return { applied, needsRestart, ...(file === undefined ? {} : { configFile: file }) };
  }

  /** Begins a graceful stop; `stopped` settles when it is done. */
  stop(): Promise<void> {
    // After the current turn, so the reply to a stop request is on its way before connections drain.
    setImmediate(() => void this.close().catch(() => undefined));
    return Promise.resolve();
  }

  peers(): Promise<PeerStatus[]> {
    return Promise.resolve(this.peerStatuses());
  }

  private peerStatuses(): PeerStatus[] {
    return (this.network?.peers() ?? []).map((peer) => {
      const connectedAt = this.connectedAt.get(peer.id);
      return {
        id: peer.id,
        addresses: peer.addresses,
        direction: peer.direction,
        ...(peer.latencyMs === undefined ? {} : { latencyMs: peer.latencyMs }),
        ...(connectedAt === undefined ? {} : { connectedAt }),
        ...clockOffsetOf(this.distributed.wiring.cluster?.clocks.offsetOf(peer.id)),
        ...(this.network?.isNetworkNode(peer.id) === false ? { lightClient: true as const } : {}),
      };
    });
  }

  async peerInfo(peer?: string): Promise<PeerDetail> {
    const network = this.requireNetwork();
    if (peer === undefined || peer === this.peerId)
      return {
        id: this.peerId,
        self: true,
        connected: true,
        addresses: network.addresses(),
        network: this.config.network,
      };
    const connected = this.peerStatuses().find((status) => status.id === peer);
    if (connected !== undefined) return { ...connected, self: false, connected: true };
    const found = await network.findPeer(peer);
    return { id: found.id, self: false, connected: false, addresses: found.addresses };
  }

  async connect(address: string): Promise<PeerAddresses> {
    const found = await this.requireNetwork().connect(address);
    this.emit('info', `connected to ${found.id} at ${address}`, found.id);
    return found;
  }

  async ping(peer: string, count: number): Promise<PingResult> {
    const network = this.requireNetwork();
    const rttsMs: number[] = [];
    for (let i = 0; i < count; i++) rttsMs.push(round(await network.ping(peer)));
    return {
      peer,
      rttsMs,
      minMs: Math.min(...rttsMs),
      avgMs: round(rttsMs.reduce((sum, ms) => sum + ms, 0) / rttsMs.length),
      maxMs: Math.max(...rttsMs),
    };
  }

  findPeer(peer: string): Promise<PeerAddresses> {
    return this.requireNetwork().findPeer(peer);
  }

  async closest(key: string, k?: number): Promise<ClosestResult> {
    const blockId = isBlockId(key);
    const bytes = blockId
      ? new Uint8Array(Buffer.from(key, 'base64url'))
      : new Uint8Array(Buffer.from(key, 'utf8'));
    const count = k ?? this.config.clusterSize;
    const ids = await this.requireNetwork().closest(bytes, count);
    return {
      key,
      keyKind: blockId ? 'block-id' : 'text',
      dhtKey: createHash('sha256').update(bytes).digest('hex'),
      k: count,
      peers: ids.map((id) => ({ id, self: id === this.peerId })),
    };
  }

  watch(): AsyncIterable<StatusUpdate> {
    return this.hub.watch(this.watchers.signal);
  }

  private requireNetwork(): NetworkNode {
    if (this.network === undefined || this.closing !== undefined)
      throw new EngineError(
        'UNAVAILABLE',
        this.closing === undefined
          ? 'the node is still starting its network; try again in a moment'
          : 'the node is stopping',
      );
    return this.network;
  }

  /**
   * Stops gracefully: watchers and streams end, the control socket and libp2p close, transactions
   * being served finish (bounded), the store is flushed and closed, then the api and lock files go.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.emit('node:stop', 'node stopping');
      try {
        await this.teardown();
        this.resolveStopped();
      } catch (error) {
        this.rejectStopped(error);
        throw error;
      }
    })();
    return this.closing;
  }

  /**
   * Emits `peer joined` for a connected peer that is a node of the network — once it identified, or
   * unidentified after identifyWaitMs. Light clients (`--connect`), which announce none of the
   * network's protocols, come and go with every command they run and are not announced: they would
   * drown the event log of a node that serves a script.
   */
  private announceJoin(peer: string): void {
    const isNode = this.network?.isNetworkNode(peer);
    if (isNode === undefined) {
      if (this.joinsUnidentified.has(peer) || !this.connectedAt.has(peer)) return;
      const timer = setTimeout(() => {
        this.joinsUnidentified.delete(peer);
        this.announce(peer);
      }, identifyWaitMs);
      this.joinsUnidentified.set(peer, timer.unref());
      return;
    }
    // Identified: the timer is no longer needed either way.
    clearTimeout(this.joinsUnidentified.get(peer));
    this.joinsUnidentified.delete(peer);
    if (isNode) this.announce(peer);
  }

  /** `peer joined`, once per connection of a peer still connected. */
  private announce(peer: string): void {
    if (this.joinsAnnounced.has(peer) || !this.connectedAt.has(peer)) return;
    this.joinsAnnounced.add(peer);
    this.emit('peer:connect', `peer joined: ${peer}`, peer);
  }

  private async teardown(): Promise<void> {
    this.closing ??= Promise.resolve();
    clearInterval(this.statusTimer);
    for (const timer of this.joinsUnidentified.values()) clearTimeout(timer);
    this.joinsUnidentified.clear();
    this.loopDelay?.disable();
    clearInterval(this.probeTimer);
    clearInterval(this.sweepTimer);
    this.watchers.abort();
    const failures: unknown[] = [];
    const step = async (work: () => Promise<void> | undefined): Promise<void> => {
      try {
        await work();
      } catch (error) {
        failures.push(error);
      }
    };
    await step(() => this.control?.close());
    // The members connected until now were seen now (written with the store's close, below). Best
    // effort: a store that refuses writes (a full disk) must not make the stop fail.
    const placement = this.distributed.wiring.cluster?.placement;
    if (placement !== undefined)
      await this.distributed.members
        .seen(
          placement.liveMembers().filter((peer) => peer !== placement.self),
          this.clock.now(),
        )
        .catch(() => undefined);
    await step(() => this.ceremonies?.stop());
    await step(() => this.distributed.wiring.cluster?.detach());
    await step(() => this.network?.stop());
    await step(() => this.consensus?.stop());
    await step(() => this.database.drain(drainMs));
    await step(() => this.solo.close());
    await step(() => removeApi(this.dataDir));
    await step(() => this.lock.release());
    if (failures.length > 0) throw toEngineError(failures[0]);
  }
}

/** Requests from other peers: any method of the API by name (the params are checked by the method). */
function validateClientRequest(value: unknown): ClientRequest {
  const request = schema.anyMessage(value);
  if (!isApiMethod(request.type))
    throw new EngineError('BAD_INPUT', `unknown request type ${JSON.stringify(request.type)}`, {
      reason: schema.unknownTypeReason,
    });
  return request;
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

/**
 * The SoloNode as served by a node: measures committed transactions (rate, latency), counts those in
 * flight, and lets a stop wait for them.
 */
export class ServedDatabase implements Database {
  private readonly inFlight = new Set<Promise<unknown>>();
  private transactions = 0;

  constructor(
    private readonly inner: SoloNode,
    private readonly meter: RateMeter,
  ) {}

  get pendingTransactions(): number {
    return this.transactions;
  }

  private track<T>(work: Promise<T>): Promise<T> {
    this.inFlight.add(work);
    const forget = (): void => void this.inFlight.delete(work);
    work.then(forget, forget);
    return work;
  }

  /** Waits (at most `ms`) for every request in flight. */
  async drain(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.inFlight]),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))),
    ]);
    clearTimeout(timer);
  }

  transact(request: TxRequest, options?: TransactOptions): Promise<TxOutcome> {
    const started = performance.now();
    this.transactions++;
    const work = this.inner.transact(request, options).then(
      (outcome) => {
        this.transactions--;
        if (outcome.ok) this.meter.record(performance.now() - started);
        return outcome;
      },
      (error: unknown) => {
        this.transactions--;
        throw error;
      },
    );
    return this.track(work);
  }

  createCollection(name: string, kind: CollectionKind): Promise<CollectionInfo> {
    return this.track(this.inner.createCollection(name, kind));
  }
  listCollections(): Promise<CollectionInfo[]> {
    return this.track(this.inner.listCollections());
  }
  collectionInfo(name: string): Promise<CollectionInfo> {
    return this.track(this.inner.collectionInfo(name));
  }
  get(name: string, key: TreeKey, options?: { readonly at?: number }): Promise<GetResult> {
    return this.track(this.inner.get(name, key, options));
  }
  scan(name: string, options?: ScanOptions): AsyncIterable<{ readonly key: TreeKey; readonly value: Json }> {
    return this.inner.scan(name, options);
  }
  read(name: string, options?: ReadOptions): AsyncIterable<{ readonly index: number; readonly value: Json }> {
    return this.inner.read(name, options);
  }
  block(id: BlockId, options?: { readonly rev?: number }): Promise<BlockState> {
    return this.track(this.inner.block(id, options));
  }
  blockHistory(id: BlockId): Promise<BlockRevision[]> {
    return this.track(this.inner.blockHistory(id));
  }
  blockHolders(id: BlockId): Promise<BlockHolder[]> {
    return this.track(this.inner.blockHolders(id));
  }
  blockPending(id: BlockId): Promise<PendingTransform[]> {
    return this.track(this.inner.blockPending(id));
  }
  verifyBlock(id: BlockId): Promise<BlockVerification> {
    return this.track(this.inner.verifyBlock(id));
  }
  /** The node closes the store itself, after draining. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * `slow transaction <trx>: committed in 5138 ms, 2 attempts (execute 0.4, pend 1.3, decide 4912,
 * wait 180 ms)`: the phases in commit order, summed over the attempts.
 */
export function slowTransactionText(timing: TransactionTiming): string {
  const phases = commitPhases
    .filter((phase) => timing.phases[phase] !== undefined)
    .map((phase) => `${phase} ${shortMs(timing.phases[phase]!)}`);
  const what = timing.ok ? 'committed' : `failed (${timing.code ?? 'error'})`;
  const who = timing.trx === '' ? 'slow transaction' : `slow transaction ${timing.trx}`;
  const attempts = `${timing.attempts} attempt${timing.attempts === 1 ? '' : 's'}`;
  return `${who}: ${what} in ${shortMs(timing.ms)} ms, ${attempts}${phases.length > 0 ? ` (${phases.join(', ')} ms)` : ''}`;
}

/** `clockOffsetMs` of a peer's status, rounded to the millisecond, when known. */
function clockOffsetOf(offsetMs: number | undefined): { clockOffsetMs?: number } {
  return offsetMs === undefined ? {} : { clockOffsetMs: Math.round(offsetMs) };
}
