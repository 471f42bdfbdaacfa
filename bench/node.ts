// Node figures for `npm run bench`, as NDJSON like bench/run.ts: cold start of `node start` until it
// listens, CLI start-up (`--version`, `node status`), a transaction delegated to a running node
// (control socket) beside the same transaction embedded, and the peak RSS of an idle node. Runs the
// built CLI (bin/run.js over dist/; OPTIMYSTIC_CLI_ROOT for another build). Nothing here asserts.
import '../src/shim.js';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openDatabase, reachDatabase, type Database, type TxRequest } from '../src/engine/index.js';

const cliRoot = process.env['OPTIMYSTIC_CLI_ROOT'] ?? fileURLToPath(new URL('..', import.meta.url));
const bin = join(cliRoot, 'bin', 'run.js');
/** Repetitions of each wall-time figure; the median is reported (start-up times are noisy). */
const runs = Number(process.env['BENCH_NODE_RUNS'] ?? 5);
/** Transactions per round-trip figure. */
const txCount = Number(process.env['BENCH_NODE_TX'] ?? 500);
/** How long the idle node sits before its peak RSS is read. */
const idleMs = Number(process.env['BENCH_NODE_IDLE_MS'] ?? 3000);

function emit(record: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(record) + '\n');
}

function round(n: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function env(): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env))
    if (!key.startsWith('OPTIMYSTIC_')) out[key] = value;
  return out;
}

function cliMs(args: readonly string[], input?: string): number {
  const start = performance.now();
  const result = spawnSync(process.execPath, [bin, ...args], {
    env: env(),
    input: input ?? '',
    encoding: 'utf8',
  });
  const ms = performance.now() - start;
  if (result.status !== 0) throw new Error(`${args.join(' ')} failed (${result.status}): ${result.stderr}`);
  return ms;
}

/** Starts `node start` and resolves with the process once its node:start line is out. */
function startNode(dataDir: string): Promise<{ child: ChildProcessWithoutNullStreams; ms: number }> {
  const start = performance.now();
  const child = spawn(
    process.execPath,
    [bin, 'node', 'start', '--no-dashboard', '--listen', '/ip4/127.0.0.1/tcp/0', '--data', dataDir],
    {
      env: env(),
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  return new Promise((resolve, reject) => {
    let buffer = '';
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      buffer += text;
      if (buffer.includes('"kind":"node:start"')) resolve({ child, ms: performance.now() - start });
    });
    child.on('exit', (code) => reject(new Error(`node start exited (${code}): ${stderr}`)));
  });
}

async function stopNode(child: ChildProcessWithoutNullStreams): Promise<void> {
  child.removeAllListeners('exit');
  const exited = new Promise((resolve) => child.on('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** Peak resident set (VmHWM) of a process, in MiB, from /proc. */
function peakRssMiB(pid: number): number | undefined {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match === null ? undefined : Number(match[1]) / 1024;
  } catch {
    return undefined;
  }
}

const put = (i: number): TxRequest => ({
  actions: [{ collection: 'bench', op: 'put', key: `k${i}`, value: { i } }],
});

async function sequentialTx(db: Database, offset: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < txCount; i++) {
    const outcome = await db.transact(put(offset + i));
    if (!outcome.ok) throw new Error(`transaction failed: ${outcome.error.code}`);
  }
  return performance.now() - start;
}

async function main(): Promise<void> {
  if (!existsSync(join(cliRoot, 'dist', 'commands'))) {
    emit({ bench: 'node', skipped: `no build in ${cliRoot}: run npm run build first` });
    return;
  }
  const root = await mkdtemp(join(tmpdir(), 'optimystic-bench-node-'));
  try {
    // CLI start-up: oclif and our imports, no database.
    const version = Array.from({ length: runs }, () => cliMs(['--version']));
    emit({ bench: 'cli.version', runs, medianMs: round(median(version)) });

    // Cold start: a fresh data directory each time (identity created, store opened, libp2p listening).
    const starts: number[] = [];
    for (let i = 0; i < runs; i++) {
      const { child, ms } = await startNode(join(root, `cold-${i}`));
      starts.push(ms);
      await stopNode(child);
    }
    emit({
      bench: 'node.start.to-listening',
      runs,
      medianMs: round(median(starts)),
      minMs: round(Math.min(...starts)),
    });

    const dataDir = join(root, 'node');
    const { child } = await startNode(dataDir);
    try {
      await new Promise((resolve) => setTimeout(resolve, idleMs));
      const rss = peakRssMiB(child.pid!);
      emit({
        bench: 'node.idle.peak-rss',
        idleMs,
        ...(rss === undefined ? { skipped: 'no /proc' } : { peakRssMiB: round(rss) }),
      });

      const status = Array.from({ length: runs }, () =>
        cliMs(['node', 'status', '--json', '--data', dataDir]),
      );
      emit({ bench: 'cli.node-status', runs, medianMs: round(median(status)) });

      // One transaction per CLI run: what a shell script pays per `tx` call, through the node.
      cliMs(['collection', 'create', 'bench', '--type', 'tree', '--data', dataDir]);
      const line = `${JSON.stringify(put(-1))}\n`;
      const delegatedCli = Array.from({ length: runs }, () => cliMs(['tx', '--data', dataDir], line));
      emit({ bench: 'cli.tx.one-line.delegated', runs, medianMs: round(median(delegatedCli)) });

      // Round trips from a program: sequential single-put transactions over the control socket.
      const remote = await reachDatabase({ dataDir });
      let delegatedMs: number;
      try {
        delegatedMs = await sequentialTx(remote, 0);
      } finally {
        await remote.close();
      }
      emit({
        bench: 'tx.put.sequential.delegated',
        ops: txCount,
        ms: round(delegatedMs),
        opsPerSec: round((txCount / delegatedMs) * 1000),
        meanMs: round(delegatedMs / txCount, 3),
      });
      const embeddedDir = join(root, 'embedded');
      const embeddedCli = (): number => cliMs(['tx', '--data', embeddedDir], line);
      cliMs(['collection', 'create', 'bench', '--type', 'tree', '--data', embeddedDir]);
      emit({
        bench: 'cli.tx.one-line.embedded',
        runs,
        medianMs: round(median(Array.from({ length: runs }, embeddedCli))),
      });
      const embedded = await openDatabase({ dataDir: embeddedDir });
      let embeddedMs: number;
      try {
        embeddedMs = await sequentialTx(embedded, 0);
      } finally {
        await embedded.close();
      }
      emit({
        bench: 'tx.put.sequential.embedded',
        ops: txCount,
        ms: round(embeddedMs),
        opsPerSec: round((txCount / embeddedMs) * 1000),
        meanMs: round(embeddedMs / txCount, 3),
      });
      emit({
        bench: 'tx.put.sequential.delegated-vs-embedded',
        baseline: 'tx.put.sequential.embedded',
        ratio: round(embeddedMs / delegatedMs, 3),
        overheadMsPerTx: round((delegatedMs - embeddedMs) / txCount, 3),
      });
    } finally {
      await stopNode(child);
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

await main();
