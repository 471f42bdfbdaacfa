import { createHash } from 'node:crypto';
import FakeTimers from '@sinonjs/fake-timers';
import { collectionHeaderId } from '../../../src/engine/base/ids.js';
import { SeededRng } from '../../../src/engine/base/rng.js';
import type { Json } from '../../../src/engine/base/codec.js';
import {
  isCollectionHeader,
  isLogBlock,
  type LogBlock,
} from '../../../src/engine/collections/log/log-block.js';
import type { ConsensusCertificate } from '../../../src/engine/consensus/types.js';
import { leadershipOrder, quorumOf } from '../../../src/engine/consensus/values.js';
import type { Block } from '../../../src/engine/storage/block.js';
import { VersionedBlockStore } from '../../../src/engine/storage/versioned-block-store.js';
import type { TxOutcome, TxRequest } from '../../../src/engine/transactions/tx-types.js';
import { derivedIdentity } from '../identities.js';
import { SimulationFailure } from '../world.js';
import { CommitChecker } from './checker.js';
import { SimNetwork, quietLinks } from './network.js';
import { SimNode } from './node.js';
import { accounts, initialBalance, type CommitSimOptions } from './options.js';
import {
  checkListAppend,
  completed,
  ListAppendGenerator,
  listAppendRequest,
  listCollection,
  type MicroOp,
  type Txn,
} from '../../helpers/list-append.js';

/** Captured before any clock is faked: draining microtasks between timers needs the real one. */
const realSetImmediate = globalThis.setImmediate;
const drain = (): Promise<void> => new Promise((resolve) => realSetImmediate(resolve));

export interface CommitSimResult {
  readonly seed: number;
  readonly members: number;
  /** Timers fired (deliveries, ticks, client actions, fsyncs…). */
  readonly steps: number;
  readonly virtualMs: number;
  readonly transactions: {
    readonly committed: number;
    readonly failed: number;
    readonly unknown: number;
    /** Acknowledged after the client had stopped waiting (still checked as acknowledged). */
    readonly lateAcks: number;
  };
  /** Read-only snapshots taken during the run whose total was checked. */
  readonly snapshots: number;
  readonly crashes: number;
  /** Crashes of a tail leader at the moment its consensus decided an entry it proposed. */
  readonly crashesInCommit: number;
  readonly decidedSlots: number;
  /** Log blocks sealed (their tail handed to a successor block and group), as the disks hold them. */
  readonly sealedLogBlocks: number;
  /** Requests answered INTERNAL (an assertion or unexpected failure inside a handler). */
  readonly internalErrors: number;
  /** Transactions certified at two LSNs of one collection (reported, not an invariant by itself). */
  readonly moved: number;
  /** From the start of the calm phase until the probe transaction committed. */
  readonly livenessMs: number;
  readonly balances: Readonly<Record<string, number>>;
  readonly ledgerEntries: number;
  /** A digest of every event and of the final data: equal for equal options. */
  readonly fingerprint: string;
}

/** The log entry of an acknowledged commit in one collection. */
interface StoredEntry {
  readonly id: string;
  readonly collection: string;
  readonly lsn: number;
  readonly trxId: string;
}

type TxKind = 'single' | 'multi' | 'doomed' | 'probe';

/** What a client learns of a transaction it submitted: its outcome, its node's crash, or nothing in time. */
async function answerOf(submitted: {
  readonly outcome: Promise<TxOutcome>;
  readonly died: Promise<'crashed'>;
}): Promise<TxOutcome | 'crashed' | 'timeout'> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const patience = new Promise<'timeout'>(
    (resolve) => (timer = setTimeout(() => resolve('timeout'), clientPatienceMs)),
  );
  const answer = await Promise.race([submitted.outcome, submitted.died, patience]);
  clearTimeout(timer);
  return answer;
}

interface ListTx {
  readonly id: string;
  ops: readonly MicroOp[];
  status: 'pending' | 'committed' | 'failed' | 'unknown';
  /** The round of final reads under way when it was acknowledged (0: before them). */
  ackRound?: number;
}

interface ClientTx {
  readonly id: string;
  readonly kind: TxKind;
  readonly from: string;
  readonly to: string;
  readonly amount: number;
  readonly node: number;
  status: 'pending' | 'committed' | 'failed' | 'unknown';
  code?: string;
  trx?: string;
  commit?: Readonly<Record<string, { readonly rev: number }>>;
  late?: boolean;
  /** The round of final reads under way when it was acknowledged (0: before them). */
  ackRound?: number;
}

const network = 'sim';
/** How long a client waits for an answer before it counts the transaction as unknown. */
const clientPatienceMs = 60_000;
/** Once the probe committed, how long clients still caught in the faults get to learn their outcome. */
const clientsAfterProbeMs = 5_000;
/** Rounds of final reads (2 s apart) within which every live node must read the same data. */
const finalReadRoundsMax = 5;
const verbose = process.env.OPTIMYSTIC_SIM_VERBOSE === '1';
const traceMax = Number(process.env.OPTIMYSTIC_SIM_TRACE ?? 200);

export async function runCommitSimulation(options: CommitSimOptions): Promise<CommitSimResult> {
  const clock = FakeTimers.install({
    now: 0,
    toFake: [
      'setTimeout',
      'clearTimeout',
      'setInterval',
      'clearInterval',
      'setImmediate',
      'clearImmediate',
      'Date',
    ],
  });
  try {
    return await new CommitWorld(options, clock).run();
  } finally {
    // Whatever is still running waits on a fake timer or a dead disk or port: let it get there while
    // the clock is still fake, so nothing of this run can start a real timer afterwards.
    await drain();
    await drain();
    clock.uninstall();
  }
}

class CommitWorld {
  private readonly rng: SeededRng;
  private readonly net: SimNetwork;
  private readonly nodes: SimNode[];
  private readonly checker = new CommitChecker(network);
  private readonly trace: string[] = [];
  private readonly hash = createHash('sha256');
  private readonly txs: ClientTx[] = [];
  private readonly listTxs: ListTx[] = [];
  private readonly listGenerators: ListAppendGenerator[] = [];
  private steps = 0;
  private t0 = 0;
  private calm = false;
  /** Faults are injected only between the end of the setup and the calm phase. */
  private chaos = false;
  private crashes = 0;
  private crashesInCommit = 0;
  private snapshots = 0;
  private failure: string | undefined;
  private clientsRunning = 0;
  /** Log entries of acknowledged commits: checked on a majority of disks at the acknowledgement and after every crash. */
  private readonly stored: StoredEntry[] = [];
  /** Nodes that have started at least once (late joiners join during the chaos phase). */
  private readonly joined = new Set<number>();
  /** The round of final reads under way (0: not begun). */
  private readRound = 0;

  constructor(
    private readonly options: CommitSimOptions,
    private readonly clock: FakeTimers.Clock,
  ) {
    this.rng = new SeededRng(options.seed);
    const identities = [...Array(options.members).keys()].map((i) =>
      derivedIdentity(`commit/${options.seed}/${i}`),
    );
    const hooks = {
      certifying: (fields: Parameters<CommitChecker['certifying']>[0]) => this.checker.certifying(fields),
      decided: this.decided.bind(this),
      equivocation: (node: number, proof: { member: string }) =>
        this.checker.violate(`honest member ${proof.member} proven to equivocate (reported by node ${node})`),
      log: (line: string) => this.log(line),
    };
    const peerIds = identities.map((identity) => identity.peerId);
    this.net = new SimNetwork(
      network,
      peerIds,
      new SeededRng(options.seed * 31 + 7),
      quietLinks([1, 5]),
      (line) => this.log(line),
    );
    this.nodes = identities.map(
      (identity, i) =>
        new SimNode(
          i,
          identity,
          this.net,
          {
            seed: options.seed,
            network,
            k: options.k,
            syncDelayMs: options.syncDelayMs,
            ...(options.mutation !== undefined ? { mutation: options.mutation } : {}),
            ...(options.clockSkewMs?.[i] !== undefined ? { clockSkewMs: options.clockSkewMs[i] } : {}),
          },
          hooks,
        ),
    );
  }

  async run(): Promise<CommitSimResult> {
    const { options } = this;
    // ---- setup on a quiet network: nodes meet, collections are created, accounts funded ----
    const late = new Set(options.lateJoiners.map((joiner) => joiner.node));
    const early = this.nodes.filter((node) => !late.has(node.index));
    for (const node of early) this.startNode(node);
    await this.require(
      'every node has met every other',
      () =>
        early.every(
          (node) =>
            node.ready &&
            node.cluster!.members().length === early.length &&
            node.cluster!.placement.liveMembers().length === early.length,
        ),
      10_000,
    );
    let setup = 'running';
    void (async () => {
      await early[0]!.solo!.createCollection('accounts', 'tree');
      await early[1 % early.length]!.solo!.createCollection('ledger', 'diary');
      for (let k = 0; k < (options.lists ?? 0); k++)
        await early[k % early.length]!.solo!.createCollection(listCollection(`k${k}`), 'diary');
      const funded = await early[2 % early.length]!.solo!.transact({
        actions: accounts.map((key) => ({
          collection: 'accounts',
          op: 'put' as const,
          key,
          value: { balance: initialBalance },
        })),
      });
      if (!funded.ok) throw new Error(`funding failed: ${funded.error.code} ${funded.error.message}`);
      setup = 'done';
    })().catch((error: unknown) => {
      setup = `setup failed: ${String(error)}`;
    });
    await this.require('the setup finished', () => setup !== 'running', 30_000);
    if (setup !== 'done') this.fail(setup);

    // ---- chaos: faults and clients ----
    this.t0 = Date.now();
    this.log(`workload starts`);
    this.net.faults = options.chaos;
    this.chaos = true;
    for (const { node, atMs } of options.lateJoiners)
      this.at(atMs, () => {
        this.log(`node ${node} joins the network`);
        this.startNode(this.nodes[node]!);
      });
    for (const { atMs, split } of options.partitions)
      this.at(atMs, () => {
        if (this.calm) return;
        this.log(`split ${JSON.stringify(split.groups)}${split.silent ? ' (silent)' : ''}`);
        this.net.split(split);
      });
    for (const crash of options.crashes) {
      this.at(crash.atMs, () => {
        if (this.calm) return;
        this.crash(crash.node, crash.noticeMs);
      });
      if (crash.restartAtMs !== null)
        this.at(Math.max(crash.restartAtMs, crash.atMs + crash.noticeMs + 1), () => {
          if (!this.calm && this.joined.has(crash.node)) this.startNode(this.nodes[crash.node]!);
        });
    }
    for (let c = 0; c < options.clients; c++) void this.client(c);
    await this.runUntil('the chaos phase ended', () => false, this.t0 + options.chaosMs);

    // ---- calm: heal, restart; a probe must commit; clients still waiting get a little longer ----
    this.calm = true;
    this.chaos = false;
    const calmAt = Date.now();
    this.log('calm: network healed, crashed nodes restart');
    this.net.faults = quietLinks(options.chaos.delayMs);
    this.net.split({ groups: [[...Array(options.members).keys()]], silent: false });
    for (const node of this.nodes) {
      if (options.downInCalm.includes(node.index)) this.crash(node.index, 0);
      else this.startNode(node);
    }
    // The probe starts at once: liveness must not wait for clients still caught in the faults.
    let probed = false;
    void this.probe().then(() => (probed = true));
    const deadline = calmAt + options.calmMs;
    if (!(await this.runUntil('the probe committed', () => probed, deadline)))
      this.fail(`liveness: no probe transaction committed within ${options.calmMs} ms of calm`);
    const livenessMs = Date.now() - calmAt;
    await this.runUntil(
      'clients finished',
      () => this.clientsRunning === 0,
      Date.now() + clientsAfterProbeMs,
    );
    // Let propagation and checkpoints settle, then read everything back through every live node.
    await this.runUntil('settled', () => false, Date.now() + 2_000);
    const views = await this.finalReads();
    const result = await this.finalChecks(views, livenessMs);
    // OPTIMYSTIC_SIM_PRINT=1 prints the trace of a passing run too (with OPTIMYSTIC_SIM_TRACE lines).
    if (process.env.OPTIMYSTIC_SIM_PRINT === '1') console.log(this.trace.join('\n'));
    return result;
  }

  // ---- the loop ----

  /** Fires timers one at a time (microtasks drained after each) until `done` or virtual `untilMs`. */
  /**
   * Fires timers one at a time (microtasks drained after each, invariants checked) until `done` or
   * virtual `untilMs`; true when done. `what` names the wait in the trace of a step that threw.
   */
  private async runUntil(what: string, done: () => boolean, untilMs: number): Promise<boolean> {
    for (;;) {
      await drain();
      this.check();
      if (done()) return true;
      if (Date.now() >= untilMs) return false;
      try {
        this.clock.next();
      } catch (error) {
        this.fail(
          `a timer threw while waiting until ${what}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
        );
      }
      this.steps++;
    }
  }

  /** `runUntil`, failing the run when the time runs out. */
  private async require(what: string, done: () => boolean, untilMs: number): Promise<void> {
    if (!(await this.runUntil(what, done, untilMs)))
      this.fail(`${what}: not by ${untilMs} ms of virtual time`);
  }

  private check(): void {
    if (this.failure !== undefined) this.fail(this.failure);
    if (this.checker.violations.length > 0) this.fail(this.checker.violations.join('\n'));
  }

  private fail(message: string): never {
    const history = this.txs.map(
      (tx) =>
        `${tx.id} ${tx.kind} ${tx.from}->${tx.to} ${tx.amount} at node ${tx.node}: ${tx.status}` +
        (tx.code !== undefined ? ` ${tx.code}` : '') +
        (tx.trx !== undefined ? ` ${tx.trx} ${JSON.stringify(tx.commit)}` : ''),
    );
    throw new SimulationFailure(
      `${message}\nclient transactions:\n  ${history.join('\n  ')}`,
      this.options.seed,
      this.trace.slice(),
    );
  }

  private at(ms: number, work: () => void): void {
    setTimeout(work, Math.max(0, this.t0 + ms - Date.now()));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  private log(line: string): void {
    const text = `${Date.now() - this.t0} ms: ${line}`;
    this.hash.update(text + '\n');
    this.trace.push(text);
    if (this.trace.length > traceMax) this.trace.shift();
  }

  // ---- nodes ----

  private startNode(node: SimNode): void {
    if (node.up) return;
    this.joined.add(node.index);
    node.start().catch((error: unknown) => {
      this.failure ??= `node ${node.index} failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`;
    });
  }

  private crash(index: number, noticeMs: number): void {
    const node = this.nodes[index]!;
    if (!node.up) return;
    this.crashes++;
    node.crash(noticeMs);
    // What was acknowledged was synced on a majority: a crash (which drops only unsynced writes) leaves it there.
    void this.checkStored(this.stored, `after node ${index} crashed`);
  }

  private decided(
    node: number,
    blockId: string,
    slot: number,
    value: Parameters<CommitChecker['observeDecided']>[3],
    certificate: ConsensusCertificate,
    proposedHere: boolean,
  ): void {
    this.checker.observeDecided(`node ${node}`, blockId, slot, value, certificate);
    const what = value.kind === 'entry' ? `${value.trxId} ${value.decision}` : value.kind;
    if (!proposedHere) {
      if (verbose) this.log(`node ${node} learned slot ${slot} of ${blockId.slice(0, 8)}: ${what}`);
      return;
    }
    this.log(`node ${node} decided slot ${slot} of ${blockId.slice(0, 8)}: ${what}`);
    const aim = this.options.crashOnDecide;
    if (
      !this.chaos ||
      value.kind !== 'entry' ||
      this.crashesInCommit >= aim.max ||
      this.rng.float() >= aim.probability
    )
      return;
    // The tail leader dies with the decision in hand: at once (its log write has reached nobody) or
    // a few ms later (it may have reached a minority of the log block's holders).
    this.crashesInCommit++;
    const afterMs = this.rng.int(4);
    this.log(`node ${node} will crash ${afterMs} ms after deciding ${what}`);
    setTimeout(() => {
      if (this.calm) return;
      this.crash(node, 0);
      const [lo, hi] = aim.restartAfterMs;
      setTimeout(
        () => {
          if (!this.calm) this.startNode(this.nodes[node]!);
        },
        this.net.between(lo, hi),
      );
    }, afterMs);
  }

  private readyNodes(): SimNode[] {
    return this.nodes.filter((node) => node.ready);
  }

  // ---- clients ----

  private async client(c: number): Promise<void> {
    this.clientsRunning++;
    try {
      for (let i = 0; i < this.options.transactions; i++) {
        await this.sleep(this.rng.int(this.options.thinkMs + 1));
        if (this.calm) return;
        if (this.rng.float() < 0.15) {
          await this.snapshot();
          continue;
        }
        if ((this.options.lists ?? 0) > 0 && this.rng.float() < 0.4) {
          await this.submitList(c, i);
          continue;
        }
        const r = this.rng.float();
        const kind: TxKind = r < 0.45 ? 'multi' : r < 0.85 ? 'single' : 'doomed';
        const from = accounts[this.rng.int(accounts.length)]!;
        let to = accounts[this.rng.int(accounts.length)]!;
        if (to === from) to = accounts[(accounts.indexOf(from) + 1) % accounts.length]!;
        const amount = kind === 'doomed' ? 10 * initialBalance * accounts.length : 1 + this.rng.int(30);
        await this.submit(`c${c}-${i}`, kind, from, to, amount);
      }
    } finally {
      this.clientsRunning--;
    }
  }

  private request(tx: Pick<ClientTx, 'id' | 'kind' | 'from' | 'to' | 'amount'>): TxRequest {
    const transfer = [
      { collection: 'accounts', op: 'incr' as const, key: tx.from, path: 'balance', by: -tx.amount, min: 0 },
      { collection: 'accounts', op: 'incr' as const, key: tx.to, path: 'balance', by: tx.amount },
    ];
    const record = { id: tx.id, from: tx.from, to: tx.to, amount: tx.amount };
    return {
      actions: [
        ...transfer,
        tx.kind === 'single'
          ? { collection: 'accounts', op: 'put' as const, key: `t:${tx.id}`, value: record }
          : { collection: 'ledger', op: 'append' as const, value: record },
      ],
    };
  }

  /** One list-append transaction through a random ready node; its outcome goes into the list history. */
  private async submitList(c: number, i: number): Promise<void> {
    const node = await this.someReadyNode();
    const generator = (this.listGenerators[c] ??= new ListAppendGenerator(
      this.options.seed,
      c + 1,
      this.options.lists ?? 0,
    ));
    const ops = generator.ops();
    const record: ListTx = { id: `c${c}-${i}`, ops, status: 'pending' };
    this.listTxs.push(record);
    const submitted = node.transact(listAppendRequest(ops))!;
    this.log(`client submits list ${record.id} at node ${node.index}: ${JSON.stringify(ops)}`);
    const answer = await answerOf(submitted);
    if (answer === 'crashed' || answer === 'timeout') {
      record.status = 'unknown';
      return;
    }
    if (answer.ok) {
      record.status = 'committed';
      record.ackRound = this.readRound;
      record.ops = completed(ops, answer);
      this.log(`client: list ${record.id} committed as ${answer.trx}: ${JSON.stringify(record.ops)}`);
    } else {
      const code = answer.error.code;
      record.status =
        code === 'EXPECT_FAILED' || code === 'CONFLICT' || code === 'BAD_INPUT' ? 'failed' : 'unknown';
      this.log(`client: list ${record.id} ${record.status} (${code})`);
    }
  }

  /** A random ready node, once there is one. */
  private async someReadyNode(): Promise<SimNode> {
    let ready = this.readyNodes();
    while (ready.length === 0) {
      await this.sleep(100);
      ready = this.readyNodes();
    }
    return ready[this.rng.int(ready.length)]!;
  }

  /** Submits one transaction through a random ready node and records what the client learns. */
  private async submit(
    id: string,
    kind: TxKind,
    from: string,
    to: string,
    amount: number,
  ): Promise<ClientTx> {
    const node = await this.someReadyNode();
    const tx: ClientTx = { id, kind, from, to, amount, node: node.index, status: 'pending' };
    this.txs.push(tx);
    const submitted = node.transact(this.request(tx))!;
    this.log(`client submits ${id} (${kind} ${from}->${to} ${amount}) at node ${node.index}`);
    const answer = await answerOf(submitted);
    if (answer === 'crashed' || answer === 'timeout') {
      tx.status = 'unknown';
      tx.code = answer;
      this.log(`client: ${id} unknown (${answer})`);
      // A late answer still counts: an acknowledged commit must be kept whenever it was acknowledged.
      void submitted.outcome.then((late) => {
        if (late.ok) this.acknowledge(tx, late, true);
      });
      return tx;
    }
    this.classify(tx, answer);
    return tx;
  }

  private classify(tx: ClientTx, outcome: TxOutcome): void {
    if (outcome.ok) {
      this.acknowledge(tx, outcome, false);
      return;
    }
    const code = outcome.error.code;
    tx.code = code;
    // CONFLICT (every attempt lost validation; nothing was decided), a failed guard and a malformed
    // request are final. NOT_FOUND is not: besides "no such collection" (a node that has met no one
    // yet) it is also a tail that does not know an entry the transaction already prepared.
    const definite = code === 'EXPECT_FAILED' || code === 'CONFLICT' || code === 'BAD_INPUT';
    tx.status = definite ? 'failed' : 'unknown';
    this.log(`client: ${tx.id} ${tx.status} (${code}: ${outcome.error.message.slice(0, 120)})`);
    if (tx.kind === 'doomed' && code !== 'EXPECT_FAILED' && definite)
      this.checker.violate(
        `${tx.id}: a transfer no balance can cover failed with ${code}, not EXPECT_FAILED`,
      );
  }

  private acknowledge(tx: ClientTx, outcome: Extract<TxOutcome, { ok: true }>, late: boolean): void {
    tx.status = 'committed';
    tx.trx = outcome.trx;
    tx.commit = outcome.commit;
    tx.late = late;
    tx.ackRound = this.readRound;
    this.log(
      `client: ${tx.id} committed as ${outcome.trx} ${JSON.stringify(outcome.commit)}${late ? ' (late)' : ''}`,
    );
    if (tx.kind === 'doomed') this.checker.violate(`${tx.id}: a transfer no balance can cover committed`);
    for (const [collection, { rev }] of Object.entries(outcome.commit)) {
      const owner = this.checker.ownerOf(collection, rev);
      if (owner !== undefined && owner !== outcome.trx)
        this.checker.violate(`${tx.id} acknowledged at ${collection}#${rev}, certified there for ${owner}`);
      const entry = { id: tx.id, collection, lsn: rev, trxId: outcome.trx };
      this.stored.push(entry);
      void this.checkStored([entry], 'when its client heard of it');
    }
  }

  /**
   * An acknowledged commit survives the crash of any minority: when the client hears of it, its log
   * entry (committed) is on the disks of a majority of its log block's cluster. Reads the disks
   * directly (no messages), so it changes nothing in the run.
   */
  private async checkStored(entries: readonly StoredEntry[], when: string): Promise<void> {
    const stores = this.nodes.map((node) => ({ node, store: new VersionedBlockStore(node.disk) }));
    const late = new Set(this.options.lateJoiners.map((joiner) => joiner.node));
    // A block's cluster is the k members nearest it; with late joiners it depends on who the writer
    // had met, so a copy counts on any of the k + (late joiners) nearest.
    const nearest = (blockId: string): string[] =>
      leadershipOrder(blockId, this.net.peerIds).slice(0, this.options.k + this.options.lateJoiners.length);
    // How many members the block's cluster has: every node there from the start, and a late joiner
    // once it has been handed the block (docs/cluster.md, "Members joining"): until then the
    // holders it displaced keep answering for the block, and they are the majority that counts.
    const clusterSize = async (blockId: string): Promise<number> => {
      let size = 0;
      for (const { node, store } of stores) {
        if (!this.joined.has(node.index)) continue;
        if (!late.has(node.index) || (await store.latest(blockId)) !== undefined) size++;
      }
      return Math.min(this.options.k, size);
    };
    for (const { id, collection, lsn, trxId } of entries) {
      const first = this.checker.blockOf(collection, lsn, trxId);
      if (first === undefined) continue;
      const holds = (block: Block | undefined): boolean =>
        isLogBlock(block) &&
        block.entries.some((e) => e.lsn === lsn && e.trxId === trxId && e.status === 'committed');
      // The entry is in the block it was decided in, or — when that block was sealed by it — in its
      // successor. The successor is the one the old block's seal names on any disk: its cluster is
      // not the old block's, so its holders need not hold the seal (sim seed 2375, 7 nodes).
      // Only a seal a majority of the old block's cluster holds links the log to its successor.
      const links = new Map<string, number>();
      for (const { node, store } of stores) {
        const block: Block | undefined = (await store.latest(first))?.block;
        if (isLogBlock(block) && typeof block.successor === 'string' && nearest(first).includes(node.peerId))
          links.set(block.successor, (links.get(block.successor) ?? 0) + 1);
      }
      const linkQuorum = quorumOf(await clusterSize(first));
      const successors = [...links].filter(([, count]) => count >= linkQuorum).map(([id]) => id);
      const copies = new Map<string, number>();
      for (const { node, store } of stores) {
        for (const blockId of [first, ...successors]) {
          const block: Block | undefined = (await store.latest(blockId))?.block;
          if (holds(block)) {
            if (nearest(blockId).includes(node.peerId)) copies.set(blockId, (copies.get(blockId) ?? 0) + 1);
            break;
          }
        }
      }
      let stored = false;
      let quorum = quorumOf(await clusterSize(first));
      for (const [blockId, count] of copies) {
        quorum = quorumOf(await clusterSize(blockId));
        if (count >= quorum) stored = true;
      }
      if (!stored)
        this.checker.violate(
          `${id} (acknowledged) ${when}: its log entry ${collection}#${lsn} is on ${Math.max(0, ...copies.values())} disks of its cluster (a majority is ${quorum})`,
        );
    }
  }

  /** A read-only scan of the accounts: a consistent snapshot always holds the whole money supply. */
  private async snapshot(): Promise<void> {
    const ready = this.readyNodes();
    if (ready.length === 0) return;
    const node = ready[this.rng.int(ready.length)]!;
    const submitted = node.transact({
      actions: [{ collection: 'accounts', op: 'scan', from: 'a', to: 'b' }],
    });
    if (submitted === undefined) return;
    const answer = await Promise.race([submitted.outcome, submitted.died]);
    if (answer === 'crashed' || !answer.ok) return;
    const scan = answer.results[0];
    if (scan?.op !== 'scan') return;
    const balances = scan.entries.map((entry) => balanceOf(entry.value));
    const total = balances.reduce((sum, b) => sum + b, 0);
    this.snapshots++;
    if (
      scan.entries.length !== accounts.length ||
      total !== initialBalance * accounts.length ||
      balances.some((b) => b < 0)
    )
      this.checker.violate(
        `read-only snapshot at node ${node.index} is not consistent: ${JSON.stringify(scan.entries)}`,
      );
  }

  /** After the faults: a transfer must commit (retried through live nodes, as a user would). */
  private async probe(): Promise<void> {
    // From a0 to a1; an account the workload emptied cannot pay (EXPECT_FAILED is a correct answer,
    // not a stall), so the next attempt pays from the next account: the 400 are somewhere.
    let from = 0;
    for (let attempt = 0; ; attempt++) {
      const payer = accounts[from % accounts.length]!;
      const payee = accounts[(from + 1) % accounts.length]!;
      const tx = await this.submit(`probe-${attempt}`, 'probe', payer, payee, 1);
      if (tx.status === 'committed') return;
      if (tx.code === 'EXPECT_FAILED') from++;
      // A user backs off too: 1 s, 2 s, 4 s, then every 5 s.
      await this.sleep(Math.min(5000, 1000 * 2 ** attempt));
    }
  }

  // ---- the end ----

  /**
   * Reads everything through every live node until they all read the same (a transaction still in
   * flight or settled by its tail may land between two nodes' reads): at most 5 rounds, 2 s apart.
   */
  private async finalReads(): Promise<{ views: Map<number, string>; round: number }> {
    let views = new Map<number, string>();
    for (let round = 1; round <= finalReadRoundsMax; round++) {
      if (round > 1) await this.runUntil('the next round of reads', () => false, Date.now() + 2_000);
      this.readRound = round;
      views = await this.readAll();
      // A node's final read is two reads (the tree, then the diary): a client transaction that
      // landed while they ran can be in the diary and not yet in the tree each node read (sim seed
      // 322, membership introductions). Agreement counts only from a round no client transaction
      // was in flight during.
      const settling =
        this.txs.some((tx) => tx.status === 'pending' || tx.ackRound === round) ||
        this.listTxs.some((tx) => tx.status === 'pending' || tx.ackRound === round);
      if (new Set(views.values()).size <= 1 && (!settling || round === finalReadRoundsMax))
        return { views, round };
      this.log(
        `round ${round} of final reads: ${settling ? 'a client transaction was in flight' : 'live nodes read different data'}`,
      );
    }
    const all = [...views];
    const [firstIndex, first] = all[0]!;
    const [index, other] = all.find(([, view]) => view !== first)!;
    this.fail(
      `live nodes read different data after ${finalReadRoundsMax} rounds:\n node ${firstIndex}: ${first}\n node ${index}: ${other}`,
    );
  }

  private async readAll(): Promise<Map<number, string>> {
    const views = new Map<number, string>();
    let pending = 0;
    for (const node of this.readyNodes()) {
      pending++;
      void (async () => {
        for (let attempt = 0; attempt < 10; attempt++) {
          try {
            const solo = node.solo!;
            const tree: [string, Json][] = [];
            for await (const { key, value } of solo.scan('accounts')) tree.push([key, value]);
            const diary: Json[] = [];
            for await (const { value } of solo.read('ledger')) diary.push(value);
            const lists: Record<string, Json[]> = {};
            for (let k = 0; k < (this.options.lists ?? 0); k++) {
              const list: Json[] = [];
              for await (const { value } of solo.read(listCollection(`k${k}`))) list.push(value);
              lists[`k${k}`] = list;
            }
            views.set(node.index, JSON.stringify({ tree, diary, lists }));
            return;
          } catch (error) {
            this.log(`final read at node ${node.index} failed: ${String(error)}`);
            await this.sleep(1000);
          }
        }
      })().finally(() => pending--);
    }
    await this.runUntil('final reads', () => pending === 0, Date.now() + 60_000);
    for (const node of this.readyNodes())
      if (!views.has(node.index))
        this.fail(`liveness: node ${node.index} could not read the data after the calm phase`);
    return views;
  }

  private async finalChecks(
    { views, round }: { views: Map<number, string>; round: number },
    livenessMs: number,
  ): Promise<CommitSimResult> {
    const first = [...views.values()][0]!;
    const { tree, diary, lists } = JSON.parse(first) as {
      tree: [string, Json][];
      diary: Json[];
      lists: Record<string, number[]>;
    };
    if ((this.options.lists ?? 0) > 0) {
      // Committed before the reads that agreed began: its reads and appends are known; later ones,
      // and unknown outcomes, only as appends that may or may not be there.
      const history: Txn[] = this.listTxs.map((tx, i) => ({
        id: i + 1,
        status:
          tx.status === 'committed' && (tx.ackRound ?? 0) < round
            ? 'ok'
            : tx.status === 'failed'
              ? 'fail'
              : 'info',
        ops: tx.ops,
      }));
      const result = checkListAppend(history, new Map(Object.entries(lists)));
      for (const anomaly of result.anomalies)
        this.fail(
          `list-append ${anomaly.kind}: ${anomaly.detail}${(anomaly.txns ?? [])
            .map(
              (id) =>
                `\n  T${id} = ${this.listTxs[id - 1]!.id}: ${JSON.stringify(this.listTxs[id - 1]!.ops)}`,
            )
            .join('')}`,
        );
      this.log(`list-append: ${result.committed} transactions, ${result.edges} dependencies, no anomaly`);
    }

    // Bank invariants: every transfer that left a trace left all of it.
    const balances: Record<string, number> = {};
    const expected: Record<string, number> = Object.fromEntries(accounts.map((a) => [a, initialBalance]));
    const applied = new Map<string, { from: string; to: string; amount: number; where: string }>();
    const record = (value: Json, where: string): void => {
      const t = value as { id: string; from: string; to: string; amount: number };
      if (applied.has(t.id))
        this.fail(`transfer ${t.id} applied twice (${applied.get(t.id)!.where} and ${where})`);
      applied.set(t.id, { ...t, where });
      expected[t.from]! -= t.amount;
      expected[t.to]! += t.amount;
    };
    for (const [key, value] of tree) {
      if (key.startsWith('t:')) record(value, 'accounts marker');
      else balances[key] = balanceOf(value);
    }
    for (const value of diary) record(value, 'ledger');
    this.log(`final data: ${first}`);
    const total = Object.values(balances).reduce((sum, b) => sum + b, 0);
    if (total !== initialBalance * accounts.length) this.fail(`money was created or lost: total ${total}`);
    for (const account of accounts) {
      if ((balances[account] ?? -1) < 0)
        this.fail(`account ${account} is negative or missing: ${balances[account]}`);
      if (balances[account] !== expected[account])
        this.fail(
          `a transaction landed partly: ${account} holds ${balances[account]}, its transfers say ${expected[account]}`,
        );
    }
    for (const tx of this.txs) {
      // Acknowledged before the reads that agreed began: it must be in them.
      if (tx.status === 'committed' && (tx.ackRound ?? 0) < round && !applied.has(tx.id))
        this.fail(
          `acknowledged transaction ${tx.id} (${tx.trx} ${JSON.stringify(tx.commit)}) is not visible`,
        );
      if (tx.status === 'failed' && applied.has(tx.id))
        this.fail(`transaction ${tx.id} failed (${tx.code}) but left a trace (${applied.get(tx.id)!.where})`);
    }

    // Logs: the committed entries of acknowledged transactions are where their certificates said,
    // and every certificate in a log verifies.
    const reader = this.readyNodes()[0]!;
    for (const collection of ['accounts', 'ledger']) {
      const entries = await this.logOf(reader, collection);
      for (const tx of this.txs) {
        const rev = tx.status === 'committed' ? tx.commit?.[collection]?.rev : undefined;
        if (rev === undefined) continue;
        const entry = entries.get(rev);
        if (entry === undefined || entry.trxId !== tx.trx || entry.status !== 'committed')
          this.fail(
            `acknowledged ${tx.id} (${tx.trx}) at ${collection}#${rev}: the log read through node ${reader.index} holds ${entry === undefined ? 'nothing' : `${entry.trxId} ${entry.status}`}` +
              ` (log blocks read: ${[...new Set([...entries.values()].map((e) => e.blockId.slice(0, 8)))].join(', ')}; ` +
              `on the disks: ${(await this.copiesOf(tx.trx!)).join('; ')})`,
          );
      }
    }

    // Every disk, live or not: log entries and persisted consensus decisions obey the same rules.
    const sealed = new Set<string>();
    for (const node of this.nodes) {
      const store = new VersionedBlockStore(node.disk);
      for await (const id of store.ids()) {
        const block = (await store.latest(id))?.block;
        if (!isLogBlock(block)) continue;
        if (block.successor !== null) sealed.add(id);
        for (const entry of block.entries)
          this.checker.observeLogEntry(
            `node ${node.index} disk`,
            { collection: block.header.collection, lsn: entry.lsn, trxId: entry.trxId, status: entry.status },
            entry.certificate,
          );
      }
      // The consensus store keeps one record per decision under k/<group>/d/<slot> (a group stored
      // whole by an earlier version sits under k/<group>).
      for await (const [key, text] of node.disk.iterate({ gte: 'k/', lt: 'k0' })) {
        const parts = key.split('/');
        const decided =
          parts.length === 2
            ? (JSON.parse(text) as { decided: ConsensusCertificate[] }).decided
            : parts[2] === 'd'
              ? [JSON.parse(text) as ConsensusCertificate]
              : [];
        for (const certificate of decided)
          this.checker.observeDecided(
            `node ${node.index} disk`,
            certificate.blockId,
            certificate.slot,
            certificate.value,
            certificate,
          );
      }
    }
    this.check();

    const count = (status: ClientTx['status']): number =>
      this.txs.filter((tx) => tx.status === status).length;
    this.hash.update(first);
    return {
      seed: this.options.seed,
      members: this.options.members,
      steps: this.steps,
      virtualMs: Date.now(),
      transactions: {
        committed: count('committed'),
        failed: count('failed'),
        unknown: count('unknown'),
        lateAcks: this.txs.filter((tx) => tx.late === true).length,
      },
      snapshots: this.snapshots,
      crashes: this.crashes,
      crashesInCommit: this.crashesInCommit,
      decidedSlots: this.checker.decidedSlots,
      sealedLogBlocks: sealed.size,
      internalErrors: this.net.internalErrors.length,
      moved: this.checker.movedTransactions().length,
      livenessMs,
      balances,
      ledgerEntries: diary.length,
      fingerprint: this.hash.digest('hex'),
    };
  }

  /** Where the disks hold log entries of a transaction: block, node, LSN, status, the block's successor. */
  private async copiesOf(trxId: string): Promise<string[]> {
    const found: string[] = [];
    for (const node of this.nodes) {
      const store = new VersionedBlockStore(node.disk);
      for await (const id of store.ids()) {
        const block = (await store.latest(id))?.block;
        if (!isLogBlock(block)) continue;
        for (const entry of block.entries)
          if (entry.trxId === trxId)
            found.push(
              `${id.slice(0, 8)} on node ${node.index}: ${entry.lsn} ${entry.status}, successor ${block.successor?.slice(0, 8) ?? 'none'}`,
            );
      }
    }
    return found;
  }

  /** A collection's log as a majority of its holders has it, through one node: LSN → entry. */
  private async logOf(
    node: SimNode,
    collection: string,
  ): Promise<Map<number, { trxId: string; status: string; blockId: string }>> {
    const entries = new Map<number, { trxId: string; status: string; blockId: string }>();
    let done = false;
    let problem: string | undefined;
    void (async () => {
      const solo = node.solo!;
      const header = (await solo.block(collectionHeaderId(collection))).block;
      if (!isCollectionHeader(header)) throw new Error(`no header for ${collection}`);
      let id: string | null = header.logHead;
      while (id !== null) {
        const block = (await solo.block(id)).block as LogBlock;
        if (!isLogBlock(block)) throw new Error(`log block ${id} of ${collection} is not a log block`);
        for (const entry of block.entries) {
          entries.set(entry.lsn, { trxId: entry.trxId, status: entry.status, blockId: id });
          if (!node.cluster!.certifier.verify(entry.certificate, block.members))
            problem ??= `the certificate of ${collection}#${entry.lsn} (${entry.trxId}) does not verify`;
        }
        id = block.successor;
      }
    })()
      .catch((error: unknown) => (problem ??= `reading the log of ${collection} failed: ${String(error)}`))
      .finally(() => (done = true));
    await this.runUntil(`the log of ${collection} was read`, () => done, Date.now() + 60_000);
    if (problem !== undefined) this.fail(problem);
    return entries;
  }
}

function balanceOf(value: Json): number {
  return (value as { balance: number }).balance;
}
