// Network figures for `npm run bench` (or `npm run bench -- --only network`), NDJSON like
// bench/run.ts: transactions through a database of 3 and 5 in-process nodes on 127.0.0.1 (startNode,
// full mesh), and through 3 `node start` processes (the built CLI; control socket of one node). Each
// figure sits beside baselines measured in the same run: the same workload embedded (a solo node),
// raw Ed25519 sign/verify (node:crypto), a trivial libp2p request round trip (measured before and
// between the runs; the latency target uses the median), and one synced classic-level write. Nothing
// here asserts; targets are printed with `met`.
//
// Workloads: sequential single-key puts from one client (tx/s, p50/p99), 8 concurrent clients on
// distinct keys of one collection, 8 concurrent clients on 8 collections, a 2-collection atomic
// transaction (incr + diary append), and a read-only transaction over two collections (gets in both;
// BENCH_NET_MULTI × 2 of them). On the 3-node network the sequential run is long (history) and
// its first and last tenths are compared. On the in-process networks, transfers on one hot leaf run
// once through one node and once with the clients spread over the nodes (`.spread`: transfers made
// per client, since coordinators nearer the tail would otherwise take most commits).
//
// Sizes: BENCH_NET_SEQ (sequential transactions on 5 nodes, embedded and multi-process; default 200),
// BENCH_NET_HISTORY (sequential transactions on 3 nodes; default 2000), BENCH_NET_CONC (transactions
// per concurrent run; default 160), BENCH_NET_MULTI (2-collection transactions; default 60),
// BENCH_NET_WARMUP (sequential transactions the multi-process nodes run before anything is measured;
// default 600, 0 for none).
//
// Round trips of one single-collection commit on the critical path, counted from src/engine/cluster
// and src/engine/transactions/coordinator.ts (coordinator C, tail leader L):
//   view (C→L) 1 · block reads 0 (C reads its own copy of each block it holds; the blocks it only
//   reads are checked against a majority of their holders while the pend is under way, the written
//   ones by the pend itself) · pend (to every holder, each syncs) 1 · commit (C→L) 1 · consensus
//   accept round (L→group, one batch per member, the signed votes come back in its reply, each durable
//   before it is sent; L's own vote is written meanwhile) 1 · log write (L writes the log block to its
//   cluster and, in the same request, promotes the commit at the blocks' holders; the decision rides
//   along) 1  →  5 when C ≠ L, 3 when C = L (view and commit are local). A coordinator that does not
//   hold a block reads it from its cluster: one more round trip per tree level. A 2-collection
//   transaction replaces commit by a prepare and a decide at each tail (in parallel across tails for
//   prepare).
//
// Requests per transaction (`<label>.requests-per-tx`, the sequential run on the in-process networks)
// are counted by protocol and message type at every node (network `observeRequest`). After the
// multi-process sequential run, each node's `node status` timings (`proc3.timings`: commit phases at
// the coordinator, requests sent and served by type, as [count, p50 ms, p99 ms]) say where that run's
// time went (they cover the node's last minute, so the end of the warm-up before it too).
import '../src/shim.js';
import { ClassicLevel } from 'classic-level';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EventLoopUtilization } from 'node:perf_hooks';
import { defaultNodeConfig, type NodeConfig } from '../src/engine/config/schema.js';
import { leadershipOrder } from '../src/engine/consensus/values.js';
import { openDatabase, reachNode, type TimingsStatus, type TxRequest } from '../src/engine/index.js';
import { createNetworkNode, privateKeyFromSeed, schema } from '../src/engine/network/index.js';
import { startNode, type RunningNode } from '../src/engine/node/node.js';
import type { TxOutcome } from '../src/engine/transactions/tx-types.js';

const seqCount = Number(process.env['BENCH_NET_SEQ'] ?? 200);
const historyCount = Number(process.env['BENCH_NET_HISTORY'] ?? 2000);
const concCount = Number(process.env['BENCH_NET_CONC'] ?? 160);
const multiCount = Number(process.env['BENCH_NET_MULTI'] ?? 60);
const warmupCount = Number(process.env['BENCH_NET_WARMUP'] ?? 600);
const clients = 8;
const cliRoot = process.env['OPTIMYSTIC_CLI_ROOT'] ?? fileURLToPath(new URL('..', import.meta.url));
const loopback: NodeConfig = { ...defaultNodeConfig, listen: ['/ip4/127.0.0.1/tcp/0'] };

function emit(record: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(record) + '\n');
}

function round(n: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

let peakRss = process.memoryUsage().rss;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);

// ---- what the workloads run against ---------------------------------------------------------------

interface Target {
  transact(request: TxRequest): Promise<TxOutcome>;
  createCollection(name: string, kind: 'tree' | 'diary'): Promise<unknown>;
}

function check(outcome: TxOutcome): void {
  if (!outcome.ok)
    throw new Error(`bench transaction failed: ${outcome.error.code} ${outcome.error.message}`);
}

const put = (collection: string, key: string, i: number): TxRequest => ({
  actions: [{ collection, op: 'put', key, value: { i, name: `user-${i}`, tags: ['a', 'b'] } }],
});

interface Latencies {
  readonly ops: number;
  /** Transactions that committed (opsPerSec counts only these). */
  readonly committed: number;
  readonly ms: number;
  readonly opsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly attemptsPerTx: number;
  /**
   * Milliseconds this process's main thread was busy per transaction, and the share of the run it
   * was busy. With in-process nodes that is every node's work (they share the thread): a share near
   * 1 means the run was bound by CPU, not by round trips. In the multi-process run it is the client's
   * alone.
   */
  readonly busyMsPerTx: number;
  readonly busyShare: number;
  /** Transactions that failed (by code); a bench run goes on and reports them. */
  readonly failed?: Readonly<Record<string, number>>;
}

function summarise(
  samples: readonly number[],
  ms: number,
  attempts: number,
  busy: EventLoopUtilization,
  failed: Readonly<Record<string, number>> = {},
): Latencies {
  // Latencies of every transaction (failed ones too: a client waited for them); the rate and the
  // attempts count committed transactions only.
  const sorted = samples.filter((x) => x !== undefined).sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  const committed = samples.length - Object.values(failed).reduce((a, b) => a + b, 0);
  return {
    ops: samples.length,
    committed,
    ms: round(ms),
    opsPerSec: round((committed / ms) * 1000),
    p50Ms: round(at(0.5), 2),
    p99Ms: round(at(0.99), 2),
    attemptsPerTx: round(attempts / Math.max(1, committed), 3),
    busyMsPerTx: round(busy.active / Math.max(1, samples.length), 2),
    busyShare: round(busy.utilization, 2),
    ...(Object.keys(failed).length > 0 ? { failed } : {}),
  };
}

/** Runs `count` transactions from `workers` concurrent clients; `make(i)` builds the i-th. */
async function drive(
  target: Target,
  count: number,
  workers: number,
  make: (i: number, worker: number) => TxRequest,
  onDone?: (i: number, worker: number) => void,
  /** Where each client sends its transactions (default: `target`). */
  targetOf?: (worker: number) => Target,
): Promise<{ stats: Latencies; samples: number[] }> {
  const samples: number[] = [];
  let next = 0;
  let attempts = 0;
  const failed: Record<string, number> = {};
  const start = performance.now();
  const loop = performance.eventLoopUtilization();
  await Promise.all(
    Array.from({ length: workers }, async (_, worker) => {
      for (;;) {
        const i = next++;
        if (i >= count) return;
        const t = performance.now();
        const outcome = await (targetOf?.(worker) ?? target).transact(make(i, worker));
        samples[i] = performance.now() - t;
        if (outcome.ok) attempts += outcome.attempts;
        else {
          failed[outcome.error.code] = (failed[outcome.error.code] ?? 0) + 1;
          if (failed[outcome.error.code] === 1)
            emit({ bench: 'network.error', code: outcome.error.code, message: outcome.error.message, at: i });
        }
        if (outcome.ok) onDone?.(i, worker);
      }
    }),
  );
  const busy = performance.eventLoopUtilization(loop);
  return { stats: summarise(samples, performance.now() - start, attempts, busy, failed), samples };
}

/** Requests sent by every node of an in-process network, by protocol and message type. */
class RequestCounter {
  private counts = new Map<string, number>();
  private on = false;

  readonly observe = (_peer: string, name: string, message: unknown): void => {
    if (!this.on) return;
    const m = message as { type?: unknown; items?: unknown };
    const key = `${name}.${String(m.type)}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  };

  start(): void {
    this.counts = new Map();
    this.on = true;
  }

  /** Stops counting; the counts per transaction. */
  stop(transactions: number): { total: number; byType: Record<string, number> } {
    this.on = false;
    const byType: Record<string, number> = {};
    let total = 0;
    for (const [key, count] of [...this.counts].sort()) {
      byType[key] = round(count / transactions, 2);
      total += count;
    }
    return { total: round(total / transactions, 2), byType };
  }
}

interface WorkloadFigures {
  readonly sequential: Latencies;
  readonly concurrentKeys: Latencies;
  readonly concurrentCollections: Latencies;
  readonly multiCollection: Latencies;
  /** Sequential: mean ms of the first and last tenth. */
  readonly tenths?: { first: number; last: number };
  /** Sequential: the share of transactions whose tail group another node led (counted requests). */
  readonly remoteTailShare?: number;
}

/** The four workloads against one target, emitting one line each under `label`. */
/** Creates a collection, retrying what may succeed on a retry (a busy or briefly unreachable group). */
async function create(label: string, target: Target, name: string, kind: 'tree' | 'diary'): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await target.createCollection(name, kind);
      return;
    } catch (error) {
      const code = (error as { code?: string }).code;
      const retryable = (error as { retryable?: boolean }).retryable === true;
      if (!retryable || attempt >= 5) throw error;
      emit({
        bench: 'network.error',
        where: `${label} create ${name}`,
        code,
        message: (error as Error).message,
        attempt,
      });
      await sleep(200 * attempt);
    }
  }
}

async function workloads(
  label: string,
  target: Target,
  sequentialCount: number,
  requests?: RequestCounter,
  afterSequential?: () => Promise<void>,
): Promise<WorkloadFigures> {
  for (const name of ['seq', 'conc', 'bank', 'hot', ...Array.from({ length: clients }, (_, c) => `c${c}`)])
    await create(label, target, name, 'tree');
  await create(label, target, 'log', 'diary');
  const opened = await target.transact(put('bank', 'acct', 0));
  if (!opened.ok) await target.transact(put('bank', 'acct', 0)).then(check);

  requests?.start();
  const seq = await drive(target, sequentialCount, 1, (i) => put('seq', `k${String(i).padStart(6, '0')}`, i));
  emit({ bench: `${label}.tx.put.sequential`, clients: 1, ...seq.stats });
  await afterSequential?.();
  let remoteTailShare: number | undefined;
  if (requests !== undefined) {
    const counted = requests.stop(sequentialCount);
    emit({ bench: `${label}.requests-per-tx`, workload: 'sequential', ...counted });
    // The coordinator sends `tail.commit` only when another node leads the tail's group. The log moves
    // to a new block (and group) as it grows, and the sealing leader picks a successor it leads, so the
    // share is near 0 or near 1 in a run (whichever member the collection's first log block drew).
    remoteTailShare = Math.min(1, counted.byType['tail.commit'] ?? 0);
  }
  let tenths: WorkloadFigures['tenths'];
  if (sequentialCount >= 100) {
    const tenth = Math.floor(sequentialCount / 10);
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    tenths = { first: mean(seq.samples.slice(0, tenth)), last: mean(seq.samples.slice(-tenth)) };
  }

  // Distinct keys of one collection conflict only when they share a leaf: spread the workers over the
  // tree first (each writes into its own key range, as distinct writers of a real collection do).
  const prefill = Array.from({ length: clients }, (_, w) =>
    Array.from({ length: 64 }, (_, j) => ({
      collection: 'conc',
      op: 'put' as const,
      key: `w${w}-p${String(j).padStart(3, '0')}`,
      value: { filler: j },
    })),
  ).flat();
  await target.transact({ actions: prefill }).then(check);
  const keys = await drive(target, concCount, clients, (i, w) => put('conc', `w${w}-${i}`, i));
  emit({ bench: `${label}.tx.put.concurrent8.one-collection`, clients, ...keys.stats });

  const colls = await drive(target, concCount, clients, (i, w) => put(`c${w}`, `k${i}`, i));
  emit({ bench: `${label}.tx.put.concurrent8.eight-collections`, clients, ...colls.stats });

  const multi = await drive(target, multiCount, 1, (i) => ({
    actions: [
      { collection: 'bank', op: 'incr', key: 'acct', path: 'i', by: 1 },
      { collection: 'log', op: 'append', value: { i } },
    ],
  }));
  emit({ bench: `${label}.tx.two-collections.sequential`, clients: 1, ...multi.stats });

  // A read-only transaction over two collections: its cut across them is checked at both tails
  // (docs/cluster.md), each confirming its cached log against a majority of its group.
  const readOnly = await drive(target, multiCount * 2, 1, (i) => ({
    actions: [
      { collection: 'bank', op: 'get', key: 'acct' },
      { collection: 'seq', op: 'get', key: `k${String(i % sequentialCount).padStart(6, '0')}` },
    ],
  }));
  emit({ bench: `${label}.tx.read-only.two-collections.sequential`, clients: 1, ...readOnly.stats });

  // Contention: the clients move money among 10 accounts that share one leaf (two guarded increments
  // per transfer), so concurrent transfers conflict on that block and take turns through retries:
  // throughput, attempts per commit, and transfers that gave up (`failed.CONFLICT`).
  await openAccounts(target, 'hot');
  const hot = await drive(target, concCount, clients, (i, w) => hotTransfer('hot', i, w));
  emit({ bench: `${label}.tx.transfer.concurrent8.one-leaf`, clients, ...hot.stats });
  return {
    sequential: seq.stats,
    concurrentKeys: keys.stats,
    concurrentCollections: colls.stats,
    multiCollection: multi.stats,
    ...(tenths !== undefined ? { tenths } : {}),
    ...(remoteTailShare !== undefined ? { remoteTailShare } : {}),
  };
}

/** Accounts of the one-leaf transfers: few enough to share one leaf. */
const hotAccounts = 10;

function openAccounts(target: Target, collection: string): Promise<void> {
  return target
    .transact({
      actions: Array.from({ length: hotAccounts }, (_, a) => ({
        collection,
        op: 'put' as const,
        key: `a${a}`,
        value: { balance: 1_000_000 },
      })),
    })
    .then(check);
}

/** Transfer `i` of client `w`: two guarded increments on accounts of one leaf. */
function hotTransfer(collection: string, i: number, w: number): TxRequest {
  const from = (i * 7 + w) % hotAccounts;
  const to = (from + 1 + (i % (hotAccounts - 1))) % hotAccounts;
  return {
    actions: [
      { collection, op: 'incr', key: `a${from}`, path: 'balance', by: -1, min: 0 },
      { collection, op: 'incr', key: `a${to}`, path: 'balance', by: 1 },
    ],
  };
}

/**
 * The one-leaf transfers again, with the clients spread over the nodes (client w at node w mod n):
 * coordinators then differ in how many round trips they are from the tail, and optimistic commits
 * favour the nearest. Reports how many transfers each client made (fairness) beside the usual figures.
 */
async function spreadTransfers(label: string, targets: readonly Target[]): Promise<void> {
  await create(label, targets[0]!, 'spread', 'tree');
  await openAccounts(targets[0]!, 'spread');
  const perClient = Array.from({ length: clients }, () => 0);
  const run = await drive(
    targets[0]!,
    concCount,
    clients,
    (i, w) => hotTransfer('spread', i, w),
    (_, w) => perClient[w]!++,
    (w) => targets[w % targets.length]!,
  );
  emit({
    bench: `${label}.tx.transfer.concurrent8.one-leaf.spread`,
    clients,
    nodes: targets.length,
    ...run.stats,
    perClient,
  });
}

// ---- baselines -------------------------------------------------------------------------------------

function ed25519Baseline(): { signPerSec: number; verifyPerSec: number } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const message = Buffer.alloc(200, 7);
  const n = 3000;
  let t = performance.now();
  let signature = Buffer.alloc(0);
  for (let i = 0; i < n; i++) signature = sign(null, message, privateKey);
  const signPerSec = (n / (performance.now() - t)) * 1000;
  t = performance.now();
  for (let i = 0; i < n; i++) if (!verify(null, message, publicKey, signature)) throw new Error('verify');
  const verifyPerSec = (n / (performance.now() - t)) * 1000;
  emit({ bench: 'baseline.ed25519.sign', ops: n, opsPerSec: round(signPerSec) });
  emit({ bench: 'baseline.ed25519.verify', ops: n, opsPerSec: round(verifyPerSec) });
  return { signPerSec, verifyPerSec };
}

/** One synced classic-level put (what a holder pays to make a vote or a pend durable). */
async function syncWriteBaseline(root: string): Promise<number> {
  const db = new ClassicLevel<string, string>(join(root, 'raw'), { valueEncoding: 'utf8' });
  await db.open();
  const n = 300;
  const value = 'x'.repeat(200);
  const t = performance.now();
  for (let i = 0; i < n; i++) await db.put(`k${i}`, value, { sync: true });
  const ms = (performance.now() - t) / n;
  await db.close();
  emit({ bench: 'baseline.raw.put.sync', ops: n, meanMs: round(ms, 3), opsPerSec: round(1000 / ms) });
  return ms;
}

/** A trivial request/response over libp2p on 127.0.0.1 (the same framing the protocols use). */
async function loopbackBaseline(): Promise<number> {
  const validate = schema.messageUnion({ echo: schema.object({ n: schema.integer({ min: 0 }) }) });
  const a = await createNetworkNode(
    { privateKey: await privateKeyFromSeed(new Uint8Array(32).fill(1)) },
    { network: 'bench', listen: ['/ip4/127.0.0.1/tcp/0'] },
  );
  const b = await createNetworkNode(
    { privateKey: await privateKeyFromSeed(new Uint8Array(32).fill(2)) },
    { network: 'bench', listen: ['/ip4/127.0.0.1/tcp/0'] },
  );
  try {
    a.trust(() => true);
    b.trust(() => true);
    await a.handle('echo', (request) => Promise.resolve({ n: request.n }), { validate });
    await b.connect(a.addresses()[0]!);
    const rtt = async (count: number): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < count; i++) {
        const t = performance.now();
        await b.request(a.peerId, 'echo', { type: 'echo', n: i });
        out.push(performance.now() - t);
      }
      return out;
    };
    await rtt(50);
    const samples = (await rtt(500)).sort((x, y) => x - y);
    const p50 = samples[Math.floor(samples.length / 2)]!;
    emit({
      bench: 'baseline.libp2p.request.rtt',
      ops: samples.length,
      p50Ms: round(p50, 3),
      p99Ms: round(samples[Math.floor(samples.length * 0.99)]!, 3),
      meanMs: round(samples.reduce((x, y) => x + y, 0) / samples.length, 3),
    });
    return p50;
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
}

// ---- in-process networks ---------------------------------------------------------------------------

async function network(root: string, count: number, requests: RequestCounter): Promise<RunningNode[]> {
  const nodes: RunningNode[] = [];
  const observed = { observeRequest: requests.observe };
  const first = await startNode({
    dataDir: join(root, 'n0'),
    config: loopback,
    version: 'bench',
    network: observed,
  });
  nodes.push(first);
  const bootstrap = (await first.status()).listenAddresses;
  for (let i = 1; i < count; i++)
    nodes.push(
      await startNode({
        dataDir: join(root, `n${i}`),
        config: { ...loopback, bootstrap },
        version: 'bench',
        network: observed,
      }),
    );
  for (const a of nodes)
    for (const b of nodes)
      if (a !== b) await a.connect((await b.status()).listenAddresses[0]!).catch(() => undefined);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const counts = await Promise.all(nodes.map(async (node) => (await node.peers()).length));
    if (counts.every((n) => n >= count - 1)) break;
    if (Date.now() > deadline) throw new Error(`the ${count} nodes did not form a mesh: ${counts.join(',')}`);
    await sleep(50);
  }
  await sleep(300);
  return nodes;
}

/** Whether the coordinator leads the tail group of a collection (fewer round trips then). */
async function coordinatorLeads(nodes: readonly RunningNode[], collection: string): Promise<boolean> {
  const info = await nodes[0]!.database.collectionInfo(collection);
  const members = nodes.map((n) => n.peerId);
  return leadershipOrder(info.tail, members)[0] === nodes[0]!.peerId;
}

async function inProcess(
  root: string,
  count: number,
  sequentialCount: number,
): Promise<{ figures: WorkloadFigures; leads: boolean; rssMiB: number }> {
  const dir = await mkdtemp(join(root, `net${count}-`));
  const rssBefore = process.memoryUsage().rss;
  peakRss = rssBefore;
  const requests = new RequestCounter();
  const nodes = await network(dir, count, requests);
  try {
    const db = nodes[0]!.database;
    const figures = await workloads(`net${count}`, db, sequentialCount, requests);
    await spreadTransfers(
      `net${count}`,
      nodes.map((node) => node.database),
    );
    const leads = await coordinatorLeads(nodes, 'seq');
    const rssMiB = peakRss / 1024 / 1024;
    emit({
      bench: `net${count}.memory`,
      nodes: count,
      processPeakRssMiB: round(rssMiB),
      perNodeMiB: round(rssMiB / count),
      note: 'one process holds every node; the multi-process run gives the real per-node figure',
    });
    return { figures, leads, rssMiB };
  } finally {
    for (const node of nodes) await node.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

// ---- the multi-process run -------------------------------------------------------------------------

function envWithoutOptimystic(): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env))
    if (!key.startsWith('OPTIMYSTIC_')) out[key] = value;
  return out;
}

function startProcess(
  dataDir: string,
  bootstrap: readonly string[],
): Promise<{ child: ChildProcessWithoutNullStreams; address: string }> {
  const args = [
    join(cliRoot, 'bin', 'run.js'),
    'node',
    'start',
    '--no-dashboard',
    '--listen',
    '/ip4/127.0.0.1/tcp/0',
    '--data',
    dataDir,
  ];
  if (bootstrap.length > 0) args.push('--bootstrap', bootstrap.join(','));
  const child = spawn(process.execPath, args, {
    env: envWithoutOptimystic(),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let buffer = '';
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      buffer += text;
      for (const line of buffer.split('\n')) {
        if (!line.includes('"kind":"node:start"')) continue;
        const record = JSON.parse(line) as { addresses: string[] };
        resolve({ child, address: record.addresses[0]! });
        return;
      }
    });
    child.on('exit', (code) => reject(new Error(`node start exited (${code}): ${stderr.slice(-500)}`)));
  });
}

async function stopProcess(child: ChildProcessWithoutNullStreams): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.removeAllListeners('exit');
  const exited = new Promise((resolve) => child.on('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(timer);
}

function vmHwmMiB(pid: number): number | undefined {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match === null ? undefined : Number(match[1]) / 1024;
  } catch {
    return undefined;
  }
}

/** `node status` timings as `name: [count, p50Ms, p99Ms]`, for one NDJSON line per node. */
function compactTimings(timings: TimingsStatus): Record<string, Record<string, [number, number, number]>> {
  const compact = (figures: TimingsStatus['phases']): Record<string, [number, number, number]> =>
    Object.fromEntries(
      Object.entries(figures).map(([name, f]) => [name, [f.count, f.p50Ms, f.p99Ms]] as const),
    );
  return { phases: compact(timings.phases), sent: compact(timings.sent), served: compact(timings.served) };
}

async function multiProcess(root: string): Promise<WorkloadFigures | undefined> {
  if (!existsSync(join(cliRoot, 'dist', 'commands'))) {
    emit({
      bench: 'proc3',
      skipped: `no build in ${cliRoot}: run npm run build first (or set OPTIMYSTIC_CLI_ROOT)`,
    });
    return undefined;
  }
  const dir = await mkdtemp(join(root, 'proc3-'));
  const children: ChildProcessWithoutNullStreams[] = [];
  const onExit = (): void => {
    for (const child of children) child.kill('SIGKILL');
  };
  process.on('exit', onExit);
  try {
    const first = await startProcess(join(dir, 'n0'), []);
    children.push(first.child);
    const rest = await Promise.all([1, 2].map((i) => startProcess(join(dir, `n${i}`), [first.address])));
    children.push(...rest.map((r) => r.child));
    const db = await reachNode({ dataDir: join(dir, 'n0') });
    try {
      const deadline = Date.now() + 30_000;
      while ((await db.peers()).length < 2) {
        if (Date.now() > deadline) throw new Error('the 3 node processes did not connect');
        await sleep(100);
      }
      await sleep(500);
      // Fresh processes run their first few hundred transactions in unoptimised code (V8 compiles a
      // function only once it has run hot): 13 ms p50 over the first 200 against 6–8 ms after 1,000
      // on this machine. A node serves for days, so the figures below are taken after a warm-up on a
      // collection of its own; its first 200 are reported too (`proc3.warmup`).
      if (warmupCount > 0) {
        await create('proc3', db, 'warmup', 'tree');
        const warm = await drive(db, warmupCount, 1, (i) =>
          put('warmup', `k${String(i).padStart(6, '0')}`, i),
        );
        const cold = [...warm.samples.slice(0, 200)].sort((a, b) => a - b);
        const last = [...warm.samples.slice(-200)].sort((a, b) => a - b);
        emit({
          bench: 'proc3.warmup',
          ops: warmupCount,
          first200P50Ms: round(cold[cold.length >> 1] ?? 0, 2),
          last200P50Ms: round(last[last.length >> 1] ?? 0, 2),
        });
      }
      // Where the sequential run's time went, as each node reports it (`node status` timings).
      const timings = async (): Promise<void> => {
        for (const [node, dataDir] of [0, 1, 2].map((i) => [i, join(dir, `n${i}`)] as const)) {
          const remote = node === 0 ? db : await reachNode({ dataDir });
          try {
            const status = await remote.status();
            if (status.timings !== undefined)
              emit({ bench: 'proc3.timings', node, ...compactTimings(status.timings) });
          } finally {
            if (remote !== db) await remote.close();
          }
        }
      };
      const figures = await workloads('proc3', db, seqCount, undefined, timings);
      for (const [i, child] of children.entries()) {
        const rss = vmHwmMiB(child.pid!);
        emit({
          bench: 'proc3.node.peak-rss',
          node: i,
          ...(rss === undefined ? { skipped: 'no /proc' } : { peakRssMiB: round(rss) }),
        });
      }
      return figures;
    } finally {
      await db.close();
    }
  } finally {
    await Promise.all(children.map((child) => stopProcess(child)));
    process.off('exit', onExit);
    await rm(dir, { recursive: true, force: true });
  }
}

// ---- main -----------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'optimystic-bench-net-'));
  try {
    emit({ bench: 'network.env', seqCount, historyCount, concCount, multiCount, clients });
    ed25519Baseline();
    const syncMs = await syncWriteBaseline(root);
    // The round trip is measured again between the runs and the median taken: one measurement at one
    // moment of this shared machine ranged 0.11–0.28 ms between runs, and the latency target scales
    // with it.
    const rtts = [await loopbackBaseline()];

    const embeddedDir = await mkdtemp(join(root, 'embedded-'));
    const embedded = await openDatabase({ dataDir: embeddedDir });
    let solo: WorkloadFigures;
    try {
      solo = await workloads('embedded', embedded, seqCount);
    } finally {
      await embedded.close();
    }

    const net3 = await inProcess(root, 3, historyCount);
    rtts.push(await loopbackBaseline());
    const net5 = await inProcess(root, 5, seqCount);
    rtts.push(await loopbackBaseline());
    const proc3 = await multiProcess(root);
    rtts.push(await loopbackBaseline());
    const sorted = [...rtts].sort((a, b) => a - b);
    const rttMs = (sorted[(sorted.length - 1) >> 1]! + sorted[sorted.length >> 1]!) / 2;
    emit({
      bench: 'baseline.libp2p.request.rtt.median',
      samplesP50Ms: rtts.map((r) => round(r, 3)),
      medianMs: round(rttMs, 3),
    });

    // Targets.
    for (const [label, run] of [
      ['net3', net3],
      ['net5', net5],
    ] as const) {
      // 3 round trips when the coordinator leads the tail's group (pend, accept, log write), 5 when
      // another node does (a view and the commit travel to it too), weighted by how often each held.
      const remoteShare = run.figures.remoteTailShare ?? (run.leads ? 0 : 1);
      const roundTrips = round(3 + 2 * remoteShare, 2);
      const budgetMs = rttMs * roundTrips + syncMs;
      const seqMs = run.figures.sequential.p50Ms;
      emit({
        bench: `${label}.target.sequential-latency`,
        p50Ms: seqMs,
        remoteTailShare: round(remoteShare, 2),
        roundTrips,
        rttMs: round(rttMs, 3),
        syncWriteMs: round(syncMs, 3),
        budgetMs: round(budgetMs, 2),
        ratio: round(seqMs / budgetMs, 2),
        targetRatioMax: 3,
        met: seqMs <= 3 * budgetMs,
        vsEmbedded: round(seqMs / solo.sequential.p50Ms, 2),
        // Every node runs on this one thread: the CPU one transaction costs all of them together.
        busyMsPerTx: run.figures.sequential.busyMsPerTx,
        busyShare: run.figures.sequential.busyShare,
      });
      const scale = run.figures.concurrentKeys.opsPerSec / run.figures.sequential.opsPerSec;
      emit({
        bench: `${label}.target.concurrent8-scaling`,
        sequentialOpsPerSec: run.figures.sequential.opsPerSec,
        concurrent8OpsPerSec: run.figures.concurrentKeys.opsPerSec,
        eightCollectionsOpsPerSec: run.figures.concurrentCollections.opsPerSec,
        ratio: round(scale, 2),
        targetRatio: 4,
        met: scale >= 4,
      });
    }
    if (net3.figures.tenths !== undefined) {
      const { first, last } = net3.figures.tenths;
      emit({
        bench: 'net3.target.history-flatness',
        transactions: historyCount,
        firstTenthMeanMs: round(first, 2),
        lastTenthMeanMs: round(last, 2),
        ratio: round(first / last, 3),
        targetRatio: 0.8,
        met: first / last >= 0.8,
      });
    }
    if (proc3 !== undefined) {
      const scale = proc3.concurrentKeys.opsPerSec / proc3.sequential.opsPerSec;
      emit({
        bench: 'proc3.target.concurrent8-scaling',
        sequentialOpsPerSec: proc3.sequential.opsPerSec,
        concurrent8OpsPerSec: proc3.concurrentKeys.opsPerSec,
        ratio: round(scale, 2),
        targetRatio: 4,
        met: scale >= 4,
      });
    }
  } finally {
    clearInterval(sampler);
    await rm(root, { recursive: true, force: true });
  }
}

await main();
