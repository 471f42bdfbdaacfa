/**
 * The multi-process fault test (SPEC §11): N `optimystic node start` processes on 127.0.0.1 form one
 * database; several `optimystic tx` clients run a bank workload through different nodes while a
 * killer SIGKILLs a random node every few seconds and restarts it on the same data directory and
 * port. At the end (every node up, a settle period) the history is read back through the CLI and
 * checked: the total is constant, no balance is negative, every acknowledged transfer is in the
 * `transfers` diary exactly once, no definitely failed transfer is, and the balances are exactly
 * what the diary's transfers make of the initial balances. Every node serves the same state.
 * Beside the bank, `listClients` clients run the list-append workload (test/helpers/list-append.ts),
 * whose history is checked for lost appends and serializability anomalies (checkLists).
 *
 * Used by `npm run fault` (test/fault/run.ts) and the short CI form (test/fault/fault.test.ts).
 *
 * One hazard of the CLI is handled here on purpose: a data command on a directory whose node is
 * not running opens the directory embedded (a solo node). A client that started `tx --data DIR`
 * just as DIR's node was killed would commit outside the network. So a `tx` process is started only
 * against a node that is up, and a node is killed only when every `tx` process aimed at it has
 * answered at least once (it reached the node's control socket, so it will never open the
 * directory itself). Kills still land mid-commit: the processes keep streaming transfers.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { reachNode, type SlowTransactionFigures } from '../../src/engine/index.js';
import type { TxOutcome } from '../../src/engine/transactions/tx-types.js';
import { NetnsHosts } from '../helpers/netns.js';
import {
  checkListAppend,
  completed,
  ListAppendGenerator,
  listAppendRequest,
  listCollection,
  type MicroOp,
  type Txn,
} from '../helpers/list-append.js';

export interface FaultOptions {
  /** Node processes (default 5). */
  readonly nodes: number;
  /** Length of the workload, seconds (kills happen during it). */
  readonly seconds: number;
  /** Concurrent `tx` clients (each one process at a time, one transaction in flight). */
  readonly clients: number;
  /**
   * More clients beside the bank's, running the list-append workload (test/helpers/list-append.ts:
   * transactions appending to and reading lists, each list a diary), whose history is checked for
   * lost writes and serializability anomalies. 0: none.
   */
  readonly listClients: number;
  /** Lists (keys) of the list-append workload. */
  readonly listKeys: number;
  /** Seconds between kills (0 = no kills). */
  readonly killEvery: number;
  /**
   * Seconds between partitions (0 or absent = none). Partitions need network namespaces
   * (test/helpers/netns.ts: root and iproute2): each node then runs in a namespace of its own, and
   * every `partitionEvery` seconds a random minority is cut off — packets dropped, no reset — for
   * `partitionSeconds`, then healed.
   */
  readonly partitionEvery?: number;
  /** How long each partition lasts, seconds (default 4). */
  readonly partitionSeconds?: number;
  /** Accounts in the `accounts` tree, and each one's opening balance. */
  readonly accounts: number;
  readonly initialBalance: number;
  /** Largest transfer amount (amounts are 1..maxAmount). */
  readonly maxAmount: number;
  /** Seconds to wait with every node up before reading back. */
  readonly settleSeconds: number;
  /** After the settle period, a transfer through each probed node must commit within this (retrying). */
  readonly livenessSeconds: number;
  /** Nodes probed for liveness, one after another (default: all; the last restarted first). */
  readonly livenessNodes?: number;
  /** A transaction with no answer for this long is given up on (its outcome is unknown). */
  readonly txTimeoutSeconds: number;
  readonly seed: number;
  /** The build to run (a directory with bin/run.js, dist/ and oclif.manifest.json). */
  readonly cliRoot: string;
  /** Extra `node start` flags (e.g. --cluster-size). */
  readonly nodeArgs?: readonly string[];
  /** Keep the data directories (their path is printed). */
  readonly keep?: boolean;
  /** Progress lines (default: none). */
  readonly log?: (line: string) => void;
  /** Aborts the run (SIGINT): every process is stopped and the run rejects. */
  readonly signal?: AbortSignal;
}

export const defaultFaultOptions: Omit<FaultOptions, 'cliRoot'> = {
  nodes: 5,
  seconds: 60,
  clients: 4,
  listClients: 2,
  listKeys: 4,
  killEvery: 5,
  accounts: 10,
  initialBalance: 100,
  maxAmount: 30,
  settleSeconds: 5,
  livenessSeconds: 30,
  txTimeoutSeconds: 45,
  seed: 1,
};

export interface Transfer {
  readonly id: string;
  readonly from: string;
  readonly to: string;
  readonly amount: number;
}

export type Outcome = 'ok' | 'failed' | 'unknown';

/** What a `tx` process learned of one transaction. */
interface Settled {
  outcome: Outcome;
  /** The error code of a failed or unknown outcome (or `no-answer` / `process-exit`). */
  code?: string;
  /** The error message, for the report's samples. */
  message?: string;
  /** The diary index the commit reported. */
  index?: number;
  ms?: number;
  /** The action results of a committed transaction. */
  results?: unknown[];
  /** Attempts the commit took (the `tx` answer's `attempts`). */
  attempts?: number;
}

/** One list-append transaction: its micro-ops and what became of it. */
export interface ListRecord extends Settled {
  readonly ops: readonly MicroOp[];
  readonly client: number;
  readonly node: number;
  /** When it was sent, ms from the start of the run. */
  readonly at: number;
}

export interface TransferRecord extends Settled {
  readonly transfer: Transfer;
  readonly client: number;
  readonly node: number;
  /** When it was sent, ms from the start of the run. */
  readonly at: number;
  outcome: Outcome;
  /** The error code of a failed or unknown outcome (or `no-answer` / `process-exit`). */
  code?: string;
  /** The error message, for the report's samples. */
  message?: string;
  /** The diary index the commit reported. */
  index?: number;
  ms?: number;
}

export interface Restart {
  readonly node: number;
  readonly killedAt: number;
  /** From the restart (spawn) to the first read the node served, ms. */
  readonly recoveryMs: number | undefined;
  /** From the kill to the same read, ms. */
  readonly downMs: number | undefined;
}

export interface FaultReport {
  readonly seed: number;
  readonly options: Omit<FaultOptions, 'log' | 'signal'>;
  readonly ops: { readonly ok: number; readonly failed: number; readonly unknown: number };
  readonly failedCodes: Readonly<Record<string, number>>;
  /** One message per error code seen (failed or unknown). */
  readonly errorSamples: Readonly<Record<string, string>>;
  readonly unknownCodes: Readonly<Record<string, number>>;
  /** Unknown outcomes the diary says committed / did not. */
  readonly unknownCommitted: number;
  /** One transfer through each node once the faults are over and the settle period passed. */
  readonly afterSettle: readonly { node: number; outcome: Outcome; code?: string; ms?: number }[];
  readonly restarts: readonly Restart[];
  /** Partitions made during the workload: when, which nodes were cut off, for how long (ms). */
  readonly partitions: readonly {
    readonly at: number;
    readonly side: readonly number[];
    readonly ms: number;
  }[];
  /** Safety: broken invariants of the history (the run fails). */
  readonly violations: readonly string[];
  /** Liveness: the database did not get going again once the faults were over (the run fails). */
  readonly liveness: readonly string[];
  readonly diaryEntries: number;
  readonly total: number;
  readonly expectedTotal: number;
  readonly workloadMs: number;
  /** Latency of acknowledged transfers, ms. */
  readonly okLatencyMs: { readonly p50: number; readonly p99: number; readonly max: number } | undefined;
  /** Attempts per acknowledged transfer (conflicts replay a transaction). */
  readonly okAttempts: { readonly mean: number; readonly max: number } | undefined;
  /**
   * The same latency apart for the acknowledged transfers that ran while a node was down (from its
   * kill until it served a read again) and for the others: what the kills cost, and what contention
   * alone does.
   */
  readonly okLatencyByKills: {
    readonly metKill: LatencyFigures | undefined;
    readonly clear: LatencyFigures | undefined;
  };
  /** The slowest acknowledged transfers, with the nodes that were down while each ran. */
  readonly slowest: readonly SlowTransfer[];
  /**
   * The transactions the nodes logged as slow (a second or more, bank and list clients alike): how
   * many attempts they took, and the share of their summed time each commit phase took.
   */
  readonly slowTransactions: {
    readonly count: number;
    readonly attemptsMedian: number;
    readonly attemptsMax: number;
    readonly phaseShares: Readonly<Record<string, number>>;
  };
  readonly dataRoot: string;
  /** The list-append workload: its outcomes and what the history check found. */
  readonly listAppend:
    | {
        readonly ok: number;
        readonly failed: number;
        readonly unknown: number;
        /** Transactions in the dependency graph, and its edges. */
        readonly committed: number;
        readonly edges: number;
        readonly elements: number;
        readonly anomalies: number;
      }
    | undefined;
}

export interface LatencyFigures {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

export interface SlowTransfer {
  readonly id: string;
  readonly client: number;
  readonly node: number;
  /** Sent at, ms from the start of the run. */
  readonly at: number;
  readonly ms: number;
  readonly attempts: number | undefined;
  /** Nodes down (killed, not yet serving reads) at some point while it ran. */
  readonly down: readonly number[];
}

// ---- small tools ---------------------------------------------------------------------------------

/** mulberry32: a small seeded PRNG, so a run's workload and kill schedule follow from its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env))
    if (!key.startsWith('OPTIMYSTIC_') && key !== 'NODE_ENV') env[key] = value;
  return { ...env, NO_COLOR: '1' };
}

/** Every child process this module started and has not seen exit. */
const children = new Set<ChildProcessWithoutNullStreams>();

function spawnCli(
  cliRoot: string,
  args: readonly string[],
  /** A network namespace to run it in (`ip netns exec`, which execs the command in place). */
  namespace?: string,
): ChildProcessWithoutNullStreams {
  const command = [process.execPath, join(cliRoot, 'bin', 'run.js'), ...args];
  const [file, ...rest] = namespace === undefined ? command : ['ip', 'netns', 'exec', namespace, ...command];
  const child = spawn(file!, rest, { cwd: cliRoot, env: cleanEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  child.on('error', () => children.delete(child));
  child.stdin.on('error', () => undefined);
  return child;
}

/** SIGKILLs every child still running (the last resort on exit). */
export function killAllChildren(): void {
  for (const child of children) {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  children.clear();
}

interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function cli(cliRoot: string, args: readonly string[], timeoutMs = 60_000): Promise<CliRun> {
  const child = spawnCli(cliRoot, args);
  child.stdin.end();
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function ndjson(text: string): unknown[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as unknown);
}

function lineSplitter(onLine: (line: string) => void): (text: string) => void {
  let buffer = '';
  return (text) => {
    buffer += text;
    let newline;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      if (line.trim() !== '') onLine(line);
    }
  };
}

// ---- nodes ---------------------------------------------------------------------------------------

type NodeState = 'starting' | 'up' | 'dying' | 'down';

export class NodeHandle {
  state: NodeState = 'down';
  child: ChildProcessWithoutNullStreams | undefined;
  address: string | undefined;
  port = 0;
  peerId: string | undefined;
  stderr = '';
  log: string[] = [];
  /** The transactions this node logged as slow (`slow transaction …` events), across restarts. */
  readonly slow: SlowTransactionFigures[] = [];

  constructor(
    readonly index: number,
    readonly dataDir: string,
    /** Where every line the node logs goes too (kept runs: `<data dir>.ndjson`, across restarts). */
    readonly logFile?: string,
    /** The network namespace the node runs in, and its address there (partition runs). */
    readonly host?: { readonly namespace: string; readonly address: string },
  ) {
    if (host !== undefined) this.port = 4001;
  }

  /** Starts `node start`; resolves with its first address once its node:start line is out. */
  start(cliRoot: string, bootstrap: readonly string[], extra: readonly string[]): Promise<string> {
    const listen = `/ip4/${this.host?.address ?? '127.0.0.1'}/tcp/${this.port}`;
    const args = ['node', 'start', '--no-dashboard', '--data', this.dataDir, '--listen', listen, ...extra];
    if (bootstrap.length > 0) args.push('--bootstrap', bootstrap.join(','));
    const child = spawnCli(cliRoot, args, this.host?.namespace);
    this.child = child;
    this.state = 'starting';
    this.stderr = '';
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`node ${this.index} did not start in 60 s: ${this.stderr.slice(-500)}`));
      }, 60_000);
      child.stdout.setEncoding('utf8').on(
        'data',
        lineSplitter((line) => {
          this.log.push(line);
          if (this.log.length > 200) this.log.shift();
          if (this.logFile !== undefined) appendFileSync(this.logFile, line + '\n');
          let record: {
            kind?: string;
            addresses?: string[];
            peerId?: string;
            transaction?: SlowTransactionFigures;
          };
          try {
            record = JSON.parse(line) as typeof record;
          } catch {
            return;
          }
          if (record.transaction !== undefined) this.slow.push(record.transaction);
          if (record.kind === 'node:start' && record.addresses?.[0] !== undefined) {
            clearTimeout(timer);
            this.address = record.addresses[0];
            this.peerId = record.peerId;
            this.port = Number(/\/tcp\/(\d+)/.exec(this.address)?.[1] ?? 0);
            resolve(this.address);
          }
        }),
      );
      child.stderr.setEncoding('utf8').on('data', (text: string) => (this.stderr += text));
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        if (this.child === child) this.state = 'down';
        reject(
          new Error(
            `node ${this.index} exited (${code ?? signal}) before starting: ${this.stderr.slice(-500)}`,
          ),
        );
      });
    });
  }

  async kill9(): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    this.state = 'dying';
    const exited = new Promise((resolve) => child.once('exit', resolve));
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    else return void (this.state = 'down');
    await exited;
    this.state = 'down';
  }

  /** Graceful stop (SIGTERM), SIGKILL after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    this.state = 'dying';
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
    this.state = 'down';
  }
}

// ---- clients -------------------------------------------------------------------------------------

interface Waiting {
  readonly record: Settled;
  readonly started: number;
  readonly resolve: () => void;
}

/** One `tx --data DIR --json` process and the transfer in flight on it. */
class TxProcess {
  readonly child: ChildProcessWithoutNullStreams;
  /** Answered at least once: it reached the node's control socket. */
  connected = false;
  waiting: Waiting | undefined;
  exited = false;
  stderr = '';

  constructor(
    cliRoot: string,
    readonly node: NodeHandle,
  ) {
    this.child = spawnCli(cliRoot, ['tx', '--data', node.dataDir, '--json']);
    this.child.stdout.setEncoding('utf8').on(
      'data',
      lineSplitter((line) => this.answer(line)),
    );
    this.child.stderr.setEncoding('utf8').on('data', (text: string) => (this.stderr += text.slice(0, 2000)));
    this.child.on('exit', () => {
      this.exited = true;
      this.settle('unknown', 'process-exit');
    });
    // A read-only probe first: its answer says the process reached the node's control socket.
    this.child.stdin.write(probeLine + '\n');
  }

  private answer(line: string): void {
    if (!this.connected) {
      this.connected = true;
      return;
    }
    let result: {
      ok?: boolean;
      error?: { code?: string; message?: string };
      results?: { op?: string; index?: number }[];
      attempts?: unknown;
    };
    try {
      result = JSON.parse(line) as typeof result;
    } catch {
      this.settle('unknown', 'bad-output');
      return;
    }
    if (result.ok === true) {
      const append = result.results?.find((r) => r.op === 'append');
      if (this.waiting !== undefined && result.results !== undefined)
        this.waiting.record.results = result.results;
      if (this.waiting !== undefined && typeof result.attempts === 'number')
        this.waiting.record.attempts = result.attempts;
      this.settle('ok', undefined, append?.index);
    } else {
      const code = result.error?.code ?? 'NO_CODE';
      this.settle(definiteFailures.has(code) ? 'failed' : 'unknown', code, undefined, result.error?.message);
    }
  }

  private settle(outcome: Outcome, code: string | undefined, index?: number, message?: string): void {
    const waiting = this.waiting;
    if (waiting === undefined) return;
    this.waiting = undefined;
    waiting.record.outcome = outcome;
    if (code !== undefined) waiting.record.code = code;
    if (index !== undefined) waiting.record.index = index;
    if (message !== undefined) waiting.record.message = message.slice(0, 300);
    waiting.record.ms = Date.now() - waiting.started;
    waiting.resolve();
  }

  /** Sends one transaction; resolves when it has an outcome (unknown on timeout or exit). */
  run(record: Settled, line: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.settle('unknown', 'no-answer');
        this.kill();
      }, timeoutMs);
      this.waiting = {
        record,
        started: Date.now(),
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      if (this.exited) {
        this.settle('unknown', 'process-exit');
        return;
      }
      this.child.stdin.write(line + '\n');
    });
  }

  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }

  /** Ends input and waits for the process to finish (SIGKILL after graceMs). */
  async close(graceMs = 10_000): Promise<void> {
    if (this.exited) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.stdin.end();
    const timer = setTimeout(() => this.kill(), graceMs);
    await exited;
    clearTimeout(timer);
  }
}

/**
 * Codes that say the transaction definitely did not commit: a failed guard (decided before anything
 * is pended) and a conflict after the last retry (every attempt was rejected by a tail). Anything
 * else — unavailable, timeout, no quorum, a lost process — leaves the outcome unknown.
 */
const definiteFailures = new Set(['EXPECT_FAILED', 'CONFLICT']);

const probeLine = JSON.stringify({ actions: [{ collection: 'accounts', op: 'get', key: 'acct-000' }] });

function transferLine(t: Transfer): string {
  return JSON.stringify({
    actions: [
      { collection: 'accounts', op: 'incr', key: t.from, path: 'balance', by: -t.amount, min: 0 },
      { collection: 'accounts', op: 'incr', key: t.to, path: 'balance', by: t.amount },
      { collection: 'transfers', op: 'append', value: { ...t } },
    ],
  });
}

export function accountName(i: number): string {
  return `acct-${String(i).padStart(3, '0')}`;
}

// ---- the run -------------------------------------------------------------------------------------

export async function runFault(options: FaultOptions): Promise<FaultReport> {
  const log = options.log ?? (() => undefined);
  const random = seededRandom(options.seed);
  const root = mkdtempSync(join(tmpdir(), 'optimystic-fault-'));
  const partitionEvery = options.partitionEvery ?? 0;
  let net: NetnsHosts | undefined;
  if (partitionEvery > 0) {
    const why = NetnsHosts.available();
    if (why !== undefined) throw new Error(`partitions need network namespaces: ${why}`);
    net = new NetnsHosts(options.nodes, `of${process.pid % 100_000}`);
    net.create();
  }
  const nodes = Array.from(
    { length: options.nodes },
    (_, i) =>
      new NodeHandle(
        i,
        join(root, `n${i}`),
        options.keep === true ? join(root, `n${i}.ndjson`) : undefined,
        net === undefined ? undefined : { namespace: net.namespace(i), address: net.address(i) },
      ),
  );
  const partitions: { at: number; side: number[]; ms: number }[] = [];
  const txProcesses = new Set<TxProcess>();
  const records: TransferRecord[] = [];
  const listRecords: ListRecord[] = [];
  const restarts: Restart[] = [];
  const violations: string[] = [];
  const liveness: string[] = [];
  const t0 = Date.now();
  const elapsed = (): string => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
  let aborted = false;
  const onAbort = (): void => {
    aborted = true;
  };
  options.signal?.addEventListener('abort', onAbort);
  const checkAbort = (): void => {
    if (aborted || options.signal?.aborted === true) throw new Error('interrupted');
  };
  const nodeArgs = options.nodeArgs ?? [];
  const bootstrapFor = (node: NodeHandle): string[] =>
    nodes.filter((n) => n !== node && n.address !== undefined).map((n) => n.address!);

  try {
    // 1. Start the nodes: the first alone, the others bootstrapping from every node up so far.
    log(`${elapsed()} data in ${root}; starting ${options.nodes} nodes (seed ${options.seed})`);
    await nodes[0]!.start(options.cliRoot, [], nodeArgs);
    nodes[0]!.state = 'up';
    checkAbort();
    const bootstrap = [nodes[0]!.address!];
    await Promise.all(
      nodes.slice(1).map(async (node) => {
        await node.start(options.cliRoot, bootstrap, nodeArgs);
        node.state = 'up';
      }),
    );
    log(`${elapsed()} nodes up: ${nodes.map((n) => n.address).join(' ')}`);
    await waitForMesh(nodes, options.nodes - 1, 30_000);
    log(`${elapsed()} every node sees ${options.nodes - 1} peers`);

    // 2. The collections and the opening balances.
    await Promise.all([
      mustCli(options.cliRoot, [
        'collection',
        'create',
        'accounts',
        '--type',
        'tree',
        '--json',
        '--data',
        nodes[0]!.dataDir,
      ]),
      mustCli(options.cliRoot, [
        'collection',
        'create',
        'transfers',
        '--type',
        'diary',
        '--json',
        '--data',
        nodes[1 % nodes.length]!.dataDir,
      ]),
    ]);
    // The list-append workload's lists: one diary each, created through different nodes.
    if (options.listClients > 0)
      await Promise.all(
        Array.from({ length: options.listKeys }, (_, k) =>
          mustCli(options.cliRoot, [
            'collection',
            'create',
            listCollection(`k${k}`),
            '--type',
            'diary',
            '--json',
            '--data',
            nodes[k % nodes.length]!.dataDir,
          ]),
        ),
      );
    const opening = JSON.stringify({
      actions: Array.from({ length: options.accounts }, (_, i) => ({
        collection: 'accounts',
        op: 'put',
        key: accountName(i),
        value: { balance: options.initialBalance },
      })),
    });
    const seeded = await cliWithInput(
      options.cliRoot,
      ['tx', '--json', '--data', nodes[0]!.dataDir],
      opening,
    );
    const seededLines = ndjson(seeded.stdout) as { ok?: boolean }[];
    if (seeded.code !== 0 || seededLines.length !== 1 || seededLines[0]?.ok !== true)
      throw new Error(
        `opening balances failed (exit ${seeded.code}): ${seeded.stdout.slice(0, 1000)} ${seeded.stderr.slice(0, 500)}`,
      );
    log(
      `${elapsed()} ${options.accounts} accounts of ${options.initialBalance}; workload for ${options.seconds} s`,
    );

    // 3. Workload and killer.
    const workloadStart = Date.now();
    const workloadEnd = workloadStart + options.seconds * 1000;
    let nextId = 0;
    /** One client: a `tx` process at a time, sending the transactions `next` makes, one at a time. */
    const client = async (
      c: number,
      next: (node: number) => { record: Settled; line: string },
    ): Promise<void> => {
      let proc: TxProcess | undefined;
      let home = c % nodes.length;
      while (Date.now() < workloadEnd && !aborted) {
        // A process that reached its node keeps going even while the killer takes that node down:
        // that is how kills land mid-commit. New processes go only to nodes that are up.
        if (proc === undefined || proc.exited) {
          proc?.kill();
          if (proc !== undefined) txProcesses.delete(proc);
          proc = undefined;
          const target = pickUp(nodes, home);
          if (target === undefined) {
            await sleep(200);
            continue;
          }
          home = target.index;
          proc = new TxProcess(options.cliRoot, target);
          txProcesses.add(proc);
        }
        const { record, line } = next(proc.node.index);
        await proc.run(record, line, options.txTimeoutSeconds * 1000);
        if (record.outcome === 'unknown') {
          // The process may hold a dead control connection: start afresh.
          proc.kill();
          txProcesses.delete(proc);
          proc = undefined;
          await sleep(100);
        }
      }
      if (proc !== undefined) {
        await proc.close();
        txProcesses.delete(proc);
      }
    };
    const transfer = (c: number) => (node: number) => {
      const from = Math.floor(random() * options.accounts);
      let to = Math.floor(random() * (options.accounts - 1));
      if (to >= from) to++;
      const transfer: Transfer = {
        id: `t${nextId++}`,
        from: accountName(from),
        to: accountName(to),
        amount: 1 + Math.floor(random() * options.maxAmount),
      };
      const record: TransferRecord = {
        transfer,
        client: c,
        node,
        at: Date.now() - t0,
        outcome: 'unknown',
      };
      records.push(record);
      return { record, line: transferLine(transfer) };
    };
    const listAppend = (c: number) => {
      const generator = new ListAppendGenerator(options.seed, c + 1, options.listKeys);
      return (node: number) => {
        const ops = generator.ops();
        const record: ListRecord = { ops, client: c, node, outcome: 'unknown', at: Date.now() - t0 };
        listRecords.push(record);
        return { record, line: JSON.stringify(listAppendRequest(ops)) };
      };
    };

    const killer = async (): Promise<void> => {
      if (options.killEvery <= 0) return;
      for (;;) {
        const wake = Date.now() + options.killEvery * 1000;
        while (Date.now() < wake && Date.now() < workloadEnd && !aborted) await sleep(100);
        if (Date.now() >= workloadEnd || aborted) return;
        const candidates = nodes.filter((n) => n.state === 'up');
        // Keep a majority up: never kill when only a bare majority is left.
        if (candidates.length <= Math.floor(nodes.length / 2) + 1) continue;
        const victim = candidates[Math.floor(random() * candidates.length)]!;
        victim.state = 'dying';
        // Wait (bounded) until every tx process aimed at the victim has reached it (see the top).
        const waitUntil = Date.now() + 20_000;
        while ([...txProcesses].some((p) => p.node === victim && !p.connected && !p.exited)) {
          if (Date.now() > waitUntil) {
            for (const p of txProcesses) if (p.node === victim && !p.connected) p.kill();
            break;
          }
          await sleep(50);
        }
        const killedAt = Date.now();
        await victim.kill9();
        log(`${elapsed()} killed node ${victim.index} (pid ${victim.child?.pid})`);
        // Restart it on the same data directory and port, in the background.
        void restart(victim, killedAt);
      }
    };

    // Partitions: a random minority (one node, or up to a bare minority) cut off, then healed.
    const partitioner = async (): Promise<void> => {
      if (net === undefined) return;
      const lasts = (options.partitionSeconds ?? 4) * 1000;
      for (;;) {
        const wake = Date.now() + partitionEvery * 1000;
        while (Date.now() < wake && Date.now() < workloadEnd && !aborted) await sleep(100);
        if (Date.now() >= workloadEnd || aborted) return;
        const size = 1 + Math.floor(random() * Math.floor((nodes.length - 1) / 2));
        const side: number[] = [];
        while (side.length < size) {
          const pick = Math.floor(random() * nodes.length);
          if (!side.includes(pick)) side.push(pick);
        }
        const at = Date.now();
        net.partition(side);
        log(`${elapsed()} partition: nodes ${side.join(', ')} cut off for ${lasts / 1000} s`);
        while (Date.now() < at + lasts && !aborted) await sleep(100);
        net.heal();
        partitions.push({ at: at - t0, side: side.sort((a, b) => a - b), ms: Date.now() - at });
        log(`${elapsed()} partition healed`);
      }
    };

    const pendingRestarts: Promise<void>[] = [];
    const restart = (node: NodeHandle, killedAt: number): Promise<void> => {
      const work = (async () => {
        await sleep(500);
        const spawnedAt = Date.now();
        let started = false;
        for (let attempt = 0; attempt < 5 && !started && !aborted; attempt++) {
          try {
            await node.start(options.cliRoot, bootstrapFor(node), nodeArgs);
            started = true;
          } catch (error) {
            log(`${elapsed()} node ${node.index} restart failed: ${String(error).slice(0, 300)}`);
            await sleep(1000);
          }
        }
        if (!started) {
          violations.push(`node ${node.index} could not be restarted on its data directory`);
          restarts.push({
            node: node.index,
            killedAt: killedAt - t0,
            recoveryMs: undefined,
            downMs: undefined,
          });
          return;
        }
        const servedAt = await firstRead(node, 60_000);
        node.state = 'up';
        restarts.push({
          node: node.index,
          killedAt: killedAt - t0,
          recoveryMs: servedAt === undefined ? undefined : servedAt - spawnedAt,
          downMs: servedAt === undefined ? undefined : servedAt - killedAt,
        });
        log(
          `${elapsed()} node ${node.index} back: ${servedAt === undefined ? 'served no read within 60 s' : `first read ${servedAt - spawnedAt} ms after restart`}`,
        );
      })();
      pendingRestarts.push(work);
      return work;
    };

    // A bank that commits nothing for 10 s is stalled: say what its tails hold undecided.
    let lastOk = -1;
    let stalledFor = 0;
    const progress = setInterval(() => {
      const counts = tally(records);
      const lists = listRecords.filter((r) => r.outcome === 'ok').length;
      log(
        `${elapsed()} ok ${counts.ok} failed ${counts.failed} unknown ${counts.unknown} (in flight ${counts.inflight})${options.listClients > 0 ? `; lists ok ${lists}` : ''}`,
      );
      stalledFor = counts.ok === lastOk ? stalledFor + 1 : 0;
      lastOk = counts.ok;
      if (stalledFor === 2) {
        const reader = pickUp(nodes, 0);
        if (reader !== undefined)
          void undecided(options.cliRoot, reader, ['accounts', 'transfers']).then((text) =>
            log(`${elapsed()} stalled: no transfer committed for 10 s; ${text}`),
          );
      }
    }, 5000);
    try {
      await Promise.all([
        ...Array.from({ length: options.clients }, (_, c) => client(c, transfer(c))),
        // List clients start on other nodes than the bank's first ones.
        ...Array.from({ length: options.listClients }, (_, l) =>
          client(options.clients + l, listAppend(options.clients + l)),
        ),
        killer(),
        partitioner(),
      ]);
    } finally {
      clearInterval(progress);
      net?.heal();
    }
    const workloadMs = Date.now() - workloadStart;
    checkAbort();
    log(`${elapsed()} workload over; waiting for restarts and settling ${options.settleSeconds} s`);

    // 4. Everyone up, settle, read back.
    await Promise.all(pendingRestarts);
    for (const node of nodes) {
      if (node.state === 'down') {
        const at = Date.now();
        await node.start(options.cliRoot, bootstrapFor(node), nodeArgs);
        await firstRead(node, 60_000);
        node.state = 'up';
        restarts.push({
          node: node.index,
          killedAt: at - t0,
          recoveryMs: Date.now() - at,
          downMs: undefined,
        });
      }
    }
    await waitForMesh(nodes, options.nodes - 1, 30_000).catch((error: unknown) =>
      log(`${elapsed()} warning: ${String(error)}`),
    );
    await sleep(options.settleSeconds * 1000);
    checkAbort();

    // Liveness once the faults are over: a fresh transfer through each node (in parallel, on distinct
    // accounts) must commit within the liveness window, retrying what the CLI calls retryable (SPEC
    // §5.3: a tail left holding a prepared entry by a dead coordinator resolves it itself).
    const afterSettle: TransferRecord[] = [];
    // One node at a time (every transfer appends to the same diary, so parallel probes would only
    // contend with each other); the most recently restarted nodes first, then node 0.
    const lastRestarted = [...restarts].sort((a, b) => b.killedAt - a.killedAt).map((r) => r.node);
    const probeOrder = [...new Set([...lastRestarted, ...nodes.map((n) => n.index)])]
      .slice(0, options.livenessNodes ?? nodes.length)
      .map((i) => nodes[i]!);
    for (const node of probeOrder) {
      const livenessDeadline = Date.now() + options.livenessSeconds * 1000;
      const settleStart = Date.now();
      await (async () => {
        for (let attempt = 0; ; attempt++) {
          const transfer: Transfer = {
            id: `after-${node.index}-${attempt}`,
            from: accountName((2 * node.index) % options.accounts),
            to: accountName((2 * node.index + 1) % options.accounts),
            amount: 0,
          };
          const record: TransferRecord = {
            transfer,
            client: -1,
            node: node.index,
            at: Date.now() - t0,
            outcome: 'unknown',
          };
          records.push(record);
          const left = Math.max(1000, livenessDeadline - Date.now());
          const run = await cliWithInput(
            options.cliRoot,
            ['tx', '--json', '--data', node.dataDir],
            transferLine(transfer),
            left,
          );
          const result = (ndjson(run.stdout)[0] ?? {}) as {
            ok?: boolean;
            error?: { code?: string; message?: string };
          };
          record.ms = Date.now() - settleStart;
          if (result.ok === true) {
            record.outcome = 'ok';
            afterSettle.push(record);
            return;
          }
          const code = result.error?.code ?? (run.code === null ? 'no-answer' : `exit ${run.code}`);
          record.outcome = definiteFailures.has(code) ? 'failed' : 'unknown';
          record.code = code;
          if (result.error?.message !== undefined) record.message = result.error.message.slice(0, 300);
          if (Date.now() >= livenessDeadline) {
            afterSettle.push(record);
            liveness.push(
              `no transfer through node ${node.index} committed within ${options.livenessSeconds} s after every node was back and ${options.settleSeconds} s of settling (${attempt + 1} tries; last: ${code} ${record.message ?? run.stderr.slice(0, 200)})`,
            );
            return;
          }
          await sleep(500);
        }
      })();
    }
    log(
      `${elapsed()} after settling: ${afterSettle.map((r) => `node ${r.node} ${r.outcome} at ${r.ms} ms`).join(', ')}`,
    );

    // Through the CLI on node 0 (what a user would run), and through every other node's control
    // socket: they must all serve the same state (reads see every committed transaction).
    // A transaction whose client gave up may still be committing on the nodes: wait until the
    // collections' revisions stand still, read, and read again if they moved meanwhile.
    const reader = nodes[0]!;
    let revs = await quiesce(reader, 30_000);
    let scan: CliRun, diary: CliRun, others: Awaited<ReturnType<typeof readThroughSocket>>[];
    for (let round = 1; ; round++) {
      [scan, diary, others] = await Promise.all([
        mustCli(options.cliRoot, ['collection', 'scan', 'accounts', '--json', '--data', reader.dataDir]),
        mustCli(options.cliRoot, ['collection', 'read', 'transfers', '--json', '--data', reader.dataDir]),
        Promise.all(nodes.slice(1).map((node) => readThroughSocket(node))),
      ]);
      const after = await revisions(reader);
      if (after === revs || round >= 3) break;
      log(`${elapsed()} revisions moved during the read-back (${revs} → ${after}); reading again`);
      revs = await quiesce(reader, 30_000);
    }
    const balances = new Map<string, number>();
    const rows = ndjson(scan.stdout) as { key: string; value: { balance: number } }[];
    for (const row of rows) balances.set(row.key, row.value.balance);
    const entries = ndjson(diary.stdout) as { index: number; value: Transfer }[];
    log(
      `${elapsed()} read back ${balances.size} accounts and ${entries.length} diary entries through node 0`,
    );
    const canonical = (value: unknown): string => JSON.stringify(value);
    others.forEach((other, i) => {
      const index = i + 1;
      if ('error' in other) {
        violations.push(`node ${index} could not serve the read-back: ${other.error}`);
        return;
      }
      if (canonical(other.accounts) !== canonical(rows))
        violations.push(
          `node ${index} serves other balances than node 0: ${canonical(other.accounts).slice(0, 300)}`,
        );
      if (canonical(other.transfers) !== canonical(entries))
        violations.push(
          `node ${index} serves another transfers diary than node 0 (${other.transfers.length} vs ${entries.length} entries)`,
        );
    });

    // Every transfer with its timing beside the node logs: what a slow or failed one met.
    if (options.keep === true)
      writeFileSync(join(root, 'transfers.ndjson'), records.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const check = checkHistory(options, records, balances, entries);
    violations.push(...check.violations);
    const listAppendReport =
      options.listClients > 0 ? await checkLists(options, nodes, listRecords, violations, log) : undefined;
    const counts = tally(records.filter((r) => r.client >= 0));
    const failedCodes: Record<string, number> = {};
    const unknownCodes: Record<string, number> = {};
    for (const r of records) {
      if (r.outcome === 'failed') failedCodes[r.code ?? '?'] = (failedCodes[r.code ?? '?'] ?? 0) + 1;
      if (r.outcome === 'unknown') unknownCodes[r.code ?? '?'] = (unknownCodes[r.code ?? '?'] ?? 0) + 1;
    }
    const { log: _log, signal: _signal, ...reported } = options;
    return {
      seed: options.seed,
      options: reported,
      ops: { ok: counts.ok, failed: counts.failed, unknown: counts.unknown },
      failedCodes,
      unknownCodes,
      errorSamples: Object.fromEntries(
        records.flatMap((r) =>
          r.code !== undefined && r.message !== undefined ? [[r.code, r.message]] : [],
        ),
      ),
      unknownCommitted: check.unknownCommitted,
      afterSettle: afterSettle.map((r) => ({
        node: r.node,
        outcome: r.outcome,
        ...(r.code !== undefined ? { code: r.code } : {}),
        ...(r.ms !== undefined ? { ms: r.ms } : {}),
      })),
      restarts: restarts.sort((a, b) => a.killedAt - b.killedAt),
      partitions,
      violations,
      liveness,
      diaryEntries: entries.length,
      total: check.total,
      expectedTotal: options.accounts * options.initialBalance,
      workloadMs,
      okLatencyMs: latencies(records),
      okAttempts: attemptsOf(records),
      ...byKills(records, restarts, Date.now() - t0),
      slowTransactions: slowSummary(nodes.flatMap((node) => node.slow)),
      dataRoot: root,
      listAppend: listAppendReport,
    };
  } catch (error) {
    if (error instanceof Error)
      error.message += `\n(seed ${options.seed}; node logs under ${root}${options.keep === true ? '' : ', removed'})\n${nodes
        .map((n) => `node ${n.index} stderr: ${n.stderr.slice(-400)}`)
        .join('\n')}`;
    throw error;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    for (const p of txProcesses) p.kill();
    await Promise.all(nodes.map((n) => n.stop().catch(() => undefined)));
    killAllChildren();
    net?.destroy();
    if (options.keep !== true) rmSync(root, { recursive: true, force: true });
  }
}

/**
 * Reads every list through every node (one read-only transaction each, through the CLI, so all of a
 * node's lists come from one snapshot) until the nodes agree — a transaction whose client gave up may
 * still land — and checks the list-append history against node 0's lists.
 */
async function checkLists(
  options: FaultOptions,
  nodes: readonly NodeHandle[],
  listRecords: readonly ListRecord[],
  violations: string[],
  log: (line: string) => void,
): Promise<NonNullable<FaultReport['listAppend']>> {
  const reads: MicroOp[] = Array.from({ length: options.listKeys }, (_, k) => ({ f: 'read', key: `k${k}` }));
  const line = JSON.stringify(listAppendRequest(reads));
  let lists: (Map<string, readonly number[]> | string)[] = [];
  for (let round = 1; round <= 3; round++) {
    lists = await Promise.all(
      nodes.map(async (node) => {
        const run = await cliWithInput(
          options.cliRoot,
          ['tx', '--json', '--data', node.dataDir],
          line,
          60_000,
        );
        const outcome = (ndjson(run.stdout)[0] ?? {
          ok: false,
          error: { code: `exit ${run.code}` },
        }) as TxOutcome;
        if (!outcome.ok) return `${outcome.error.code} ${outcome.error.message ?? run.stderr.slice(0, 200)}`;
        return new Map(
          completed(reads, outcome).map((op) => [op.key, op.f === 'read' ? (op.value ?? []) : []]),
        );
      }),
    );
    const texts = lists.map((l) => (typeof l === 'string' ? l : JSON.stringify([...l])));
    if (texts.every((text) => text === texts[0])) break;
    log(`list read-back: the nodes disagree (round ${round}); reading again`);
    await sleep(2000);
  }
  const first = lists[0];
  lists.forEach((l, i) => {
    if (typeof l === 'string') violations.push(`node ${i} could not read the lists: ${l}`);
    else if (typeof first !== 'string' && JSON.stringify([...l]) !== JSON.stringify([...first!]))
      violations.push(`node ${i} serves other lists than node 0`);
  });
  const history: Txn[] = listRecords.map((record, i) => ({
    id: i + 1,
    status: record.outcome === 'ok' ? 'ok' : record.outcome === 'failed' ? 'fail' : 'info',
    ops:
      record.outcome === 'ok'
        ? completed(record.ops, {
            ok: true,
            trx: '',
            commit: {},
            results: record.results as never,
            attempts: 1,
          })
        : record.ops,
  }));
  const finals = typeof first === 'string' || first === undefined ? new Map<string, number[]>() : first;
  const result = checkListAppend(history, finals);
  const describe = (id: number): string => {
    const record = listRecords[id - 1]!;
    const ops = history[id - 1]!.ops.map((op) =>
      op.f === 'append'
        ? `append ${op.key} ${op.value}`
        : `read ${op.key} [${(op.value ?? ['?']).join(',')}]`,
    );
    return `T${id} (at ${(record.at / 1000).toFixed(1)} s, client ${record.client} via node ${record.node}, ${record.outcome}${record.code !== undefined ? ` ${record.code}` : ''}, ${record.ms ?? '?'} ms): ${ops.join('; ')}`;
  };
  for (const anomaly of result.anomalies)
    violations.push(
      `list-append ${anomaly.kind}: ${anomaly.detail}${(anomaly.txns ?? []).map((id) => `\n      ${describe(id)}`).join('')}`,
    );
  if (options.keep === true && result.anomalies.length > 0)
    writeFileSync(
      join(dirname(nodes[0]!.dataDir), 'list-append-history.json'),
      JSON.stringify({ history, finals: [...finals], records: listRecords }, null, 1),
    );
  const count = (outcome: Outcome): number => listRecords.filter((r) => r.outcome === outcome).length;
  return {
    ok: count('ok'),
    failed: count('failed'),
    unknown: count('unknown'),
    committed: result.committed,
    edges: result.edges,
    elements: [...finals.values()].reduce((n, l) => n + l.length, 0),
    anomalies: result.anomalies.length,
  };
}

/** What the collections' tail blocks hold undecided (prepared entries), read through `node`. */
async function undecided(cliRoot: string, node: NodeHandle, collections: readonly string[]): Promise<string> {
  const parts = await Promise.all(
    collections.map(async (collection) => {
      const info = await cli(
        cliRoot,
        ['collection', 'info', collection, '--json', '--data', node.dataDir],
        20_000,
      );
      const tail = (ndjson(info.stdout)[0] as { tail?: string } | undefined)?.tail;
      if (tail === undefined) return `${collection}: no info (${info.stderr.slice(0, 120)})`;
      const block = await cli(cliRoot, ['block', 'get', tail, '--json', '--data', node.dataDir], 20_000);
      const state = ndjson(block.stdout)[0] as
        | {
            rev?: number;
            block?: {
              entries?: {
                lsn: number;
                trxId: string;
                status: string;
                expiresAt?: number;
                coordinator?: string;
              }[];
            };
          }
        | undefined;
      const entries = state?.block?.entries ?? [];
      const prepared = entries.filter((entry) => entry.status === 'prepared');
      const last = entries.at(-1);
      return `${collection} tail ${tail.slice(0, 8)} rev ${state?.rev ?? '?'} last lsn ${last?.lsn ?? '?'}; prepared: ${
        prepared
          .map(
            (entry) =>
              `${entry.lsn} ${entry.trxId.slice(0, 8)} (${entry.coordinator?.slice(-16) ?? '?'}, expires in ${entry.expiresAt === undefined ? '?' : Math.round((entry.expiresAt - Date.now()) / 1000)} s)`,
          )
          .join(', ') || 'none'
      }`;
    }),
  );
  return parts.join('; ');
}

/** Workload transfers that were acknowledged, each with the nodes down while it ran. */
function acknowledged(
  records: readonly TransferRecord[],
  restarts: readonly Restart[],
  endMs: number,
): { record: TransferRecord; ms: number; down: number[] }[] {
  return records.flatMap((record) => {
    if (record.client < 0 || record.outcome !== 'ok' || record.ms === undefined) return [];
    const ms = record.ms;
    const down = restarts
      .filter(
        (r) =>
          r.killedAt <= record.at + ms &&
          record.at <= (r.downMs === undefined ? endMs : r.killedAt + r.downMs),
      )
      .map((r) => r.node);
    return [{ record, ms, down: [...new Set(down)].sort((a, b) => a - b) }];
  });
}

function figures(ms: number[]): LatencyFigures | undefined {
  if (ms.length === 0) return undefined;
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { count: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted.at(-1)! };
}

function byKills(
  records: readonly TransferRecord[],
  restarts: readonly Restart[],
  endMs: number,
): Pick<FaultReport, 'okLatencyByKills' | 'slowest'> {
  const acked = acknowledged(records, restarts, endMs);
  return {
    okLatencyByKills: {
      metKill: figures(acked.filter((a) => a.down.length > 0).map((a) => a.ms)),
      clear: figures(acked.filter((a) => a.down.length === 0).map((a) => a.ms)),
    },
    slowest: acked
      .sort((a, b) => b.ms - a.ms)
      .slice(0, slowestShown)
      .map(({ record, ms, down }) => ({
        id: record.transfer.id,
        client: record.client,
        node: record.node,
        at: record.at,
        ms,
        attempts: record.attempts,
        down,
      })),
  };
}

/** Slowest acknowledged transfers the report lists. */
const slowestShown = 5;

function slowSummary(slow: readonly SlowTransactionFigures[]): FaultReport['slowTransactions'] {
  const attempts = slow.map((t) => t.attempts).sort((a, b) => a - b);
  const totals = new Map<string, number>();
  for (const t of slow)
    for (const [phase, ms] of Object.entries(t.phases)) totals.set(phase, (totals.get(phase) ?? 0) + ms);
  const all = [...totals.values()].reduce((a, b) => a + b, 0);
  return {
    count: slow.length,
    attemptsMedian: attempts[Math.floor(attempts.length / 2)] ?? 0,
    attemptsMax: attempts.at(-1) ?? 0,
    phaseShares: Object.fromEntries(
      [...totals]
        .sort((a, b) => b[1] - a[1])
        .map(([phase, ms]) => [phase, all > 0 ? Math.round((ms / all) * 100) / 100 : 0]),
    ),
  };
}

function latencies(records: readonly TransferRecord[]): FaultReport['okLatencyMs'] {
  const all = figures(records.flatMap((r) => (r.outcome === 'ok' && r.ms !== undefined ? [r.ms] : [])));
  return all === undefined ? undefined : { p50: all.p50, p99: all.p99, max: all.max };
}

function attemptsOf(records: readonly TransferRecord[]): FaultReport['okAttempts'] {
  const attempts = records.flatMap((r) =>
    r.outcome === 'ok' && r.attempts !== undefined ? [r.attempts] : [],
  );
  if (attempts.length === 0) return undefined;
  const mean = attempts.reduce((a, b) => a + b, 0) / attempts.length;
  return { mean: Math.round(mean * 100) / 100, max: Math.max(...attempts) };
}

function tally(records: readonly TransferRecord[]): {
  ok: number;
  failed: number;
  unknown: number;
  inflight: number;
} {
  let ok = 0;
  let failed = 0;
  let unknown = 0;
  for (const r of records) {
    if (r.outcome === 'ok') ok++;
    else if (r.outcome === 'failed') failed++;
    else if (r.ms !== undefined) unknown++;
  }
  return { ok, failed, unknown, inflight: records.length - ok - failed - unknown };
}

/**
 * The checks, on what was read back: the accounts are all there; no balance is negative; the total
 * is the opening total; every diary entry is a transfer some client sent, with the amounts it sent,
 * at most once; every acknowledged transfer is there (at the index its commit reported); no
 * definitely failed one is; and each balance is the opening balance plus what the diary moved.
 */
export function checkHistory(
  options: Pick<FaultOptions, 'accounts' | 'initialBalance'>,
  records: readonly TransferRecord[],
  balances: ReadonlyMap<string, number>,
  entries: readonly { index: number; value: Transfer }[],
): { violations: string[]; total: number; unknownCommitted: number } {
  const violations: string[] = [];
  const sent = new Map(records.map((r) => [r.transfer.id, r]));
  let total = 0;
  for (let i = 0; i < options.accounts; i++) {
    const balance = balances.get(accountName(i));
    if (balance === undefined) violations.push(`account ${accountName(i)} is missing`);
    else {
      total += balance;
      if (balance < 0) violations.push(`account ${accountName(i)} has a negative balance ${balance}`);
    }
  }
  if (balances.size !== options.accounts)
    violations.push(`the accounts tree has ${balances.size} keys, expected ${options.accounts}`);
  const expectedTotal = options.accounts * options.initialBalance;
  if (total !== expectedTotal) violations.push(`total is ${total}, expected ${expectedTotal}`);

  const seen = new Map<string, number>();
  const recomputed = new Map<string, number>();
  for (let i = 0; i < options.accounts; i++) recomputed.set(accountName(i), options.initialBalance);
  entries.forEach((entry, position) => {
    if (entry.index !== position) violations.push(`diary index ${entry.index} at position ${position}`);
    const t = entry.value;
    const record = sent.get(t.id);
    if (record === undefined) {
      violations.push(`diary entry ${entry.index} is a transfer nobody sent: ${JSON.stringify(t)}`);
      return;
    }
    if (
      JSON.stringify(record.transfer) !==
      JSON.stringify({ id: t.id, from: t.from, to: t.to, amount: t.amount })
    )
      violations.push(
        `diary entry ${entry.index} differs from what was sent: ${JSON.stringify(t)} vs ${JSON.stringify(record.transfer)}`,
      );
    seen.set(t.id, (seen.get(t.id) ?? 0) + 1);
    if (seen.get(t.id) === 2) violations.push(`transfer ${t.id} is in the diary more than once`);
    if (record.outcome === 'failed')
      violations.push(`transfer ${t.id} failed (${record.code}) but is in the diary at ${entry.index}`);
    recomputed.set(record.transfer.from, recomputed.get(record.transfer.from)! - record.transfer.amount);
    recomputed.set(record.transfer.to, recomputed.get(record.transfer.to)! + record.transfer.amount);
  });
  let unknownCommitted = 0;
  for (const record of records) {
    const count = seen.get(record.transfer.id) ?? 0;
    if (record.outcome === 'ok') {
      if (count === 0)
        violations.push(
          `acknowledged transfer ${record.transfer.id} (client ${record.client}, node ${record.node}) is not in the diary`,
        );
      else if (record.index !== undefined && entries[record.index]?.value.id !== record.transfer.id)
        violations.push(
          `acknowledged transfer ${record.transfer.id} reported diary index ${record.index}, which holds ${entries[record.index]?.value.id ?? 'nothing'}`,
        );
    }
    if (record.outcome === 'unknown' && count > 0) unknownCommitted++;
  }
  for (const [account, expected] of recomputed) {
    const actual = balances.get(account);
    if (actual !== undefined && actual !== expected)
      violations.push(`account ${account} holds ${actual}, but the diary's transfers make it ${expected}`);
  }
  return { violations, total, unknownCommitted };
}

function pickUp(nodes: readonly NodeHandle[], preferred: number): NodeHandle | undefined {
  for (let i = 0; i < nodes.length; i++) {
    const node = nodes[(preferred + i) % nodes.length]!;
    if (node.state === 'up') return node;
  }
  return undefined;
}

async function mustCli(cliRoot: string, args: readonly string[]): Promise<CliRun> {
  const run = await cli(cliRoot, args);
  if (run.code !== 0)
    throw new Error(
      `optimystic ${args.join(' ')} failed (exit ${run.code}): ${run.stdout.slice(0, 500)} ${run.stderr.slice(0, 500)}`,
    );
  return run;
}

function cliWithInput(
  cliRoot: string,
  args: readonly string[],
  input: string,
  timeoutMs = 120_000,
): Promise<CliRun> {
  const child = spawnCli(cliRoot, args);
  child.stdin.end(input + '\n');
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Waits until every node sees at least `peers` peers (through its control socket). */
async function waitForMesh(nodes: readonly NodeHandle[], peers: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const node of nodes) {
    for (;;) {
      const seen = await peerCount(node);
      if (seen >= peers) break;
      if (Date.now() > deadline) throw new Error(`node ${node.index} sees ${seen} peers, wanted ${peers}`);
      await sleep(200);
    }
  }
}

async function peerCount(node: NodeHandle): Promise<number> {
  try {
    const remote = await reachNode({ dataDir: node.dataDir, startingWaitMs: 2000 });
    try {
      return (await remote.peers()).length;
    } finally {
      await remote.close();
    }
  } catch {
    return 0;
  }
}

/** The revisions of both collections, as node 0 serves them ("accounts/transfers"). */
async function revisions(node: NodeHandle): Promise<string> {
  try {
    const remote = await reachNode({ dataDir: node.dataDir, startingWaitMs: 2000 });
    try {
      const [a, t] = await Promise.all([
        remote.collectionInfo('accounts'),
        remote.collectionInfo('transfers'),
      ]);
      return `${a.rev}/${t.rev}`;
    } finally {
      await remote.close();
    }
  } catch (error) {
    return `error ${String(error).slice(0, 80)}`;
  }
}

/** Waits until the revisions are the same two reads in a row, 1.5 s apart (at most timeoutMs). */
async function quiesce(node: NodeHandle, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = await revisions(node);
  for (;;) {
    await sleep(1500);
    const now = await revisions(node);
    if (now === last || Date.now() > deadline) return now;
    last = now;
  }
}

/** Everything in both collections, through the node's control socket. */
async function readThroughSocket(
  node: NodeHandle,
): Promise<{ accounts: unknown[]; transfers: unknown[] } | { error: string }> {
  try {
    const remote = await reachNode({ dataDir: node.dataDir, startingWaitMs: 2000 });
    try {
      const accounts: unknown[] = [];
      for await (const row of remote.scan('accounts')) accounts.push(row);
      const transfers: unknown[] = [];
      for await (const entry of remote.read('transfers')) transfers.push(entry);
      return { accounts, transfers };
    } finally {
      await remote.close();
    }
  } catch (error) {
    return { error: String(error).slice(0, 300) };
  }
}

/**
 * Polls the node's control socket (never the directory itself: reachNode does not open it embedded)
 * until it serves a read of the accounts tree; the time of that read, or undefined.
 */
async function firstRead(node: NodeHandle, timeoutMs: number): Promise<number | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const remote = await reachNode({ dataDir: node.dataDir, startingWaitMs: 2000 });
      try {
        await remote.get('accounts', accountName(0));
        return Date.now();
      } finally {
        await remote.close();
      }
    } catch {
      await sleep(100);
    }
  }
  return undefined;
}

/** The figures, for people. */
export function formatReport(report: FaultReport): string {
  const lines: string[] = [];
  const o = report.options;
  lines.push(
    `fault run: seed ${report.seed}, ${o.nodes} nodes, ${o.clients} clients, ${Math.round(report.workloadMs / 1000)} s workload, kill every ${o.killEvery} s`,
  );
  lines.push(
    `transfers: ok ${report.ops.ok}, failed ${report.ops.failed} ${JSON.stringify(report.failedCodes)}, unknown ${report.ops.unknown} ${JSON.stringify(report.unknownCodes)} (${report.unknownCommitted} of them committed)`,
  );
  if (report.okLatencyMs !== undefined)
    lines.push(
      `acknowledged transfer latency: p50 ${report.okLatencyMs.p50} ms, p99 ${report.okLatencyMs.p99} ms, max ${report.okLatencyMs.max} ms` +
        (report.okAttempts !== undefined
          ? `; attempts mean ${report.okAttempts.mean}, max ${report.okAttempts.max}`
          : ''),
    );
  const { metKill, clear } = report.okLatencyByKills;
  const part = (label: string, f: LatencyFigures | undefined): string =>
    f === undefined
      ? `${label}: none`
      : `${label}: ${f.count}, p50 ${f.p50} ms, p99 ${f.p99} ms, max ${f.max} ms`;
  if (metKill !== undefined || clear !== undefined)
    lines.push(`  ${part('while a node was down', metKill)}; ${part('with every node up', clear)}`);
  if (report.slowest.length > 0)
    lines.push(
      `  slowest: ${report.slowest
        .map(
          (t) =>
            `${t.id} (client ${t.client} via node ${t.node}, sent at ${(t.at / 1000).toFixed(1)} s) ${t.ms} ms, ${t.attempts === undefined ? '?' : `${t.attempts} attempt${t.attempts === 1 ? '' : 's'}`}, ${t.down.length === 0 ? 'every node up' : `node ${t.down.join(', ')} down`}`,
        )
        .join('; ')}`,
    );
  const slow = report.slowTransactions;
  if (slow.count > 0)
    lines.push(
      `transactions the nodes logged as slow (1 s or more): ${slow.count}, attempts median ${slow.attemptsMedian}, max ${slow.attemptsMax}; their time: ${Object.entries(
        slow.phaseShares,
      )
        .map(([phase, share]) => `${phase} ${Math.round(share * 100)}%`)
        .join(', ')}`,
    );
  lines.push(
    `after settling, a transfer through each node committed: ${report.afterSettle.map((r) => `node ${r.node} ${r.outcome === 'ok' ? `after ${r.ms ?? '?'} ms` : `never (${r.code ?? '?'})`}`).join(', ')}`,
  );
  lines.push(
    `diary entries ${report.diaryEntries}; total ${report.total} (expected ${report.expectedTotal})`,
  );
  const lists = report.listAppend;
  if (lists !== undefined)
    lines.push(
      `list-append: ok ${lists.ok}, failed ${lists.failed}, unknown ${lists.unknown}; ${lists.elements} elements in ${o.listKeys} lists; dependency graph of ${lists.committed} transactions and ${lists.edges} edges; ${lists.anomalies} anomalies`,
    );
  for (const [code, message] of Object.entries(report.errorSamples)) lines.push(`  e.g. ${code}: ${message}`);
  if (report.partitions.length > 0)
    lines.push(
      `partitions: ${report.partitions.length} (${report.partitions.map((p) => `${(p.at / 1000).toFixed(1)} s: ${p.side.join('+')} for ${(p.ms / 1000).toFixed(1)} s`).join('; ')})`,
    );
  lines.push(`restarts: ${report.restarts.length}`);
  for (const r of report.restarts)
    lines.push(
      `  node ${r.node} killed at ${(r.killedAt / 1000).toFixed(1)} s: ${r.recoveryMs === undefined ? 'never served a read' : `serves reads ${r.recoveryMs} ms after its restart (${r.downMs ?? '?'} ms after the kill)`}`,
    );
  const recoveries = report.restarts
    .flatMap((r) => (r.recoveryMs === undefined ? [] : [r.recoveryMs]))
    .sort((a, b) => a - b);
  if (recoveries.length > 0)
    lines.push(
      `recovery: median ${recoveries[Math.floor(recoveries.length / 2)]} ms, max ${recoveries.at(-1)} ms`,
    );
  lines.push(`liveness failures: ${report.liveness.length}`);
  for (const v of report.liveness) lines.push(`  LIVENESS ${v}`);
  lines.push(`violations: ${report.violations.length}`);
  for (const v of report.violations) lines.push(`  VIOLATION ${v}`);
  return lines.join('\n');
}
