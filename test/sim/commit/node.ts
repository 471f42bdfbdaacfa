import { SeededRng } from '../../../src/engine/base/rng.js';
import type { Cluster } from '../../../src/engine/cluster/cluster.js';
import { NetworkConsensus } from '../../../src/engine/cluster/consensus-edge.js';
import { nodeVoteSigner } from '../../../src/engine/cluster/consensus-signer.js';
import { RawConsensusStore } from '../../../src/engine/cluster/consensus-store.js';
import { DeferredSyncs } from '../../../src/engine/cluster/deferred-syncs.js';
import type {
  ConsensusCertificate,
  ConsensusValue,
  EquivocationProof,
} from '../../../src/engine/consensus/types.js';
import { clusterWiring, memberBook } from '../../../src/engine/node/cluster-wiring.js';
import { SoloNode } from '../../../src/engine/node/solo-node.js';
import { MemoryRawStore } from '../../../src/engine/storage/memory-store.js';
import type { RawOp, RawRange, RawStore } from '../../../src/engine/storage/raw-store.js';
import type { DecisionFields, Ed25519Identity } from '../../../src/engine/transactions/certifier.js';
import type { TxOutcome, TxRequest } from '../../../src/engine/transactions/tx-types.js';
import type { SimNetwork } from './network.js';
import { SimPort } from './network.js';

/** What the world learns from every incarnation of every node. */
export interface NodeHooks {
  /** A log decision is about to be proposed to consensus (every decided entry value was one of these). */
  certifying(fields: Omit<DecisionFields, 'network' | 'membership'>): void;
  decided(
    node: number,
    blockId: string,
    slot: number,
    value: ConsensusValue,
    certificate: ConsensusCertificate,
    proposedHere: boolean,
  ): void;
  equivocation(node: number, proof: EquivocationProof): void;
  log(line: string): void;
}

export interface SimNodeInit {
  readonly seed: number;
  readonly network: string;
  /** Cluster size (k). */
  readonly k: number;
  /** How long an fsync takes (a crash inside it loses the batch). */
  readonly syncDelayMs: number;
  /** A deliberate bug, to show the checks catch it: `sync-lies` acknowledges fsyncs it never did. */
  readonly mutation?: 'sync-lies';
  /** What this node's clock reads minus true (virtual) time, ms; 0 when absent. */
  readonly clockSkewMs?: number;
}

/** Replays of a conflicting transaction before CONFLICT (the product default is limits.transactionAttemptsMax). */
const coordinatorAttemptsMax = 8;

/**
 * How long a transaction's pends and prepared entries live before they are settled (the product
 * default is limits.pendingExpiryMs, 30 s). Shorter, so entries left in doubt by the faults are
 * settled within the calm phase sooner, and commits race their expiry more often.
 */
const pendExpiryMs = 10_000;

/** How often a running node sweeps expired pends (as node.ts does). */
const sweepIntervalMs = 10_000;

/** One running incarnation: the real node stack (minus libp2p and the control socket) on a SimPort. */
interface Incarnation {
  readonly number: number;
  readonly store: DiskHandle;
  readonly port: SimPort;
  solo: SoloNode | undefined;
  cluster: Cluster | undefined;
  consensus: NetworkConsensus | undefined;
  sweep: ReturnType<typeof setInterval> | undefined;
  /** Resolves when this incarnation dies (clients waiting on it stop waiting). */
  readonly died: Promise<void>;
  readonly die: () => void;
  ready: boolean;
}

/**
 * A simulated node: a disk (MemoryRawStore) that outlives its processes, and at most one running
 * incarnation of the node stack on it. `crash()` kills the incarnation at once — its disk handle and
 * network port stop answering, so nothing it still had in flight runs any further — and the disk
 * loses every batch that was not synced.
 */
export class SimNode {
  readonly disk = new MemoryRawStore();
  readonly peerId: string;
  private incarnations = 0;
  private current: Incarnation | undefined;

  constructor(
    readonly index: number,
    readonly identity: Ed25519Identity,
    private readonly net: SimNetwork,
    private readonly init: SimNodeInit,
    private readonly hooks: NodeHooks,
  ) {
    this.peerId = identity.peerId;
  }

  get up(): boolean {
    return this.current !== undefined;
  }

  /** Started and serving (not still opening its store or joining). */
  get ready(): boolean {
    return this.current?.ready === true;
  }

  get cluster(): Cluster | undefined {
    return this.current?.cluster;
  }

  get solo(): SoloNode | undefined {
    return this.current?.solo;
  }

  /** Starts a new incarnation from the disk (the first one also writes the node's identity). */
  async start(): Promise<void> {
    if (this.current !== undefined) return;
    const number = ++this.incarnations;
    if (number === 1) {
      await this.disk.open();
      await this.disk.batch([{ type: 'put', key: SoloNode.identityKey, value: this.identity.toPkcs8() }]);
      await this.disk.sync();
    }
    let die!: () => void;
    const died = new Promise<void>((resolve) => (die = resolve));
    const incarnation: Incarnation = {
      number,
      store: new DiskHandle(this.disk, this.init.syncDelayMs, this.init.mutation === 'sync-lies'),
      port: new SimPort(this.net, this.index),
      solo: undefined,
      cluster: undefined,
      consensus: undefined,
      sweep: undefined,
      died,
      die,
      ready: false,
    };
    this.current = incarnation;
    this.hooks.log(`node ${this.index} starts (incarnation ${number})`);
    const { store, port } = incarnation;
    const skew = this.init.clockSkewMs ?? 0;
    const clock = { now: () => Date.now() + skew };
    const rng = new SeededRng((this.init.seed * 1_000_003 + this.index * 7_919 + number * 104_729) >>> 0);
    // The composition of RunningNode (node.ts: startNode + joinCluster), minus lock, socket and libp2p.
    const deferred = new DeferredSyncs(() => store.sync());
    const wiring = clusterWiring(this.init.network, this.init.k, await memberBook(store), { deferred });
    const solo = await SoloNode.open(
      { raw: store, clock, rng },
      {
        network: this.init.network,
        wiring: wiring.wire,
        // Fewer replays than the default 32: a hot account leaf under chaos otherwise spends most of
        // a run on conflict storms (each replay of a multi-collection transfer is two decisions).
        coordinator: { attemptsMax: coordinatorAttemptsMax, expiryMs: pendExpiryMs },
      },
    );
    incarnation.solo = solo;
    const cluster = wiring.cluster!;
    incarnation.cluster = cluster;
    const certifier = cluster.certifier;
    const certify = certifier.certify.bind(certifier);
    // Watch every decision a tail proposes (arguments passed on untouched).
    certifier.certify = (...args: Parameters<typeof certify>) => {
      this.hooks.certifying(args[0]);
      return certify(...args);
    };
    this.net.attach(this.index, port);
    const consensus = await NetworkConsensus.start(
      {
        network: port,
        store: new RawConsensusStore(store, deferred),
        clock,
        signer: nodeVoteSigner(solo.identity),
      },
      { admitGroup: (group) => cluster.admitGroup(group) },
    );
    incarnation.consensus = consensus;
    consensus.onDecided((blockId, slot, value, certificate, proposedHere) => {
      if (this.current !== incarnation) return;
      this.hooks.decided(this.index, blockId, slot, value, certificate, proposedHere);
      if (!proposedHere) cluster.decidedElsewhere(blockId);
    });
    consensus.onEquivocation((proof) => {
      if (this.current !== incarnation) return;
      this.hooks.equivocation(this.index, proof);
      cluster.exclude(proof.member);
    });
    wiring.proposer.target = consensus;
    await cluster.attach(port, consensus);
    incarnation.sweep = setInterval(() => void solo.sweepExpired().catch(() => undefined), sweepIntervalMs);
    incarnation.ready = true;
    this.hooks.log(`node ${this.index} ready`);
  }

  /** Kills the running incarnation; peers notice after `noticeMs` (0: a reset, at once). */
  crash(noticeMs: number): void {
    const incarnation = this.current;
    if (incarnation === undefined) return;
    this.current = undefined;
    incarnation.store.kill();
    incarnation.port.kill();
    this.net.detach(this.index, noticeMs);
    this.disk.dropUnsynced();
    clearInterval(incarnation.sweep);
    // Their timers go; whatever they still await hangs on the dead disk and port.
    void incarnation.consensus?.stop().catch(() => undefined);
    void incarnation.cluster?.detach().catch(() => undefined);
    incarnation.die();
    this.hooks.log(`node ${this.index} crashed (incarnation ${incarnation.number})`);
  }

  /**
   * A transaction submitted at this node, as a user's goes through its Database API. Settles with
   * 'crashed' if the node dies before answering.
   */
  transact(request: TxRequest): { outcome: Promise<TxOutcome>; died: Promise<'crashed'> } | undefined {
    const incarnation = this.current;
    if (incarnation?.ready !== true) return undefined;
    return {
      outcome: incarnation.solo!.transact(request),
      died: incarnation.died.then(() => 'crashed' as const),
    };
  }
}

/** Never settles: what a dead process's pending I/O does. */
const hang = <T>(): Promise<T> => new Promise<T>(() => undefined);

/** A process's handle on its disk: forwards until the process dies, then nothing settles any more. */
class DiskHandle implements RawStore {
  private dead = false;

  constructor(
    private readonly disk: MemoryRawStore,
    private readonly syncDelayMs: number,
    /** Mutation: sync() answers without making anything durable (a crash loses it all). */
    private readonly lies = false,
  ) {}

  kill(): void {
    this.dead = true;
  }

  private gate<T>(work: () => Promise<T>): Promise<T> {
    if (this.dead) return hang();
    return work().then((value) => (this.dead ? hang<T>() : value));
  }

  open(): Promise<void> {
    return this.gate(() => Promise.resolve());
  }

  close(): Promise<void> {
    // A node closing its store makes it durable; the simulation never closes a live node.
    return this.gate(() => this.disk.sync());
  }

  get(key: string): Promise<string | undefined> {
    return this.gate(() => this.disk.get(key));
  }

  getMany(keys: readonly string[]): Promise<Array<string | undefined>> {
    return this.gate(() => this.disk.getMany(keys));
  }

  batch(ops: readonly RawOp[]): Promise<void> {
    return this.gate(() => this.disk.batch(ops));
  }

  sync(): Promise<void> {
    if (this.lies) return this.gate(() => Promise.resolve());
    if (this.syncDelayMs <= 0) return this.gate(() => this.disk.sync());
    return this.gate(
      () =>
        new Promise<void>((resolve, reject) => {
          setTimeout(() => {
            if (this.dead) return;
            this.disk.sync().then(resolve, reject);
          }, this.syncDelayMs);
        }),
    );
  }

  iterate(range: RawRange): AsyncIterable<[string, string]> {
    const inner = this.disk.iterate(range);
    const gate = <T>(work: () => Promise<T>): Promise<T> => this.gate(work);
    return {
      [Symbol.asyncIterator]() {
        const it = inner[Symbol.asyncIterator]();
        return {
          next: () => gate(() => it.next()),
          return: (value?: unknown) =>
            gate(async () => {
              await it.return?.(value);
              return { done: true as const, value: undefined };
            }),
        };
      },
    };
  }

  sizeBytes(): Promise<number> {
    return this.gate(() => this.disk.sizeBytes());
  }
}
