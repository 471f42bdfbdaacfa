/**
 * `npm run fault [-- OPTIONS]`: the multi-process fault test (see test/fault/harness.ts). Prints
 * progress on stderr, the figures on stdout (and the report as JSON with --json), and exits 1 on any
 * violation, 2 on bad options, 130 on Ctrl-C. Every process it started is stopped on the way out.
 */
import '../../src/shim.js';
import { parseArgs } from 'node:util';
import { buildIfStale, cliRoot } from '../helpers/built-cli.js';
import {
  defaultFaultOptions,
  formatReport,
  killAllChildren,
  runFault,
  type FaultOptions,
} from './harness.js';

const help = `Usage: npm run fault -- [options]

Starts N \`optimystic node start\` processes on 127.0.0.1 (the built CLI; OPTIMYSTIC_CLI_ROOT picks
another build, otherwise dist/ is rebuilt when stale), creates a tree \`accounts\` and a diary
\`transfers\`, and runs a bank workload of atomic transfers (incr −amount with min 0, incr +amount,
append {id,from,to,amount}) from concurrent \`optimystic tx\` clients through different nodes, while a
random node is killed with SIGKILL and restarted every few seconds. Then it reads everything back and
checks: constant total, no negative balance, every acknowledged transfer in the diary exactly once,
no failed one, balances equal to the opening balances plus the diary's transfers, and every node
serving the same state; and once every node is back, a transfer through each node commits within
the liveness window. Beside the bank, --list-clients clients run a list-append workload (each of
--lists lists a diary; transactions append unique values to some and read others whole) whose
history is checked for lost appends and serializability anomalies: a cycle of write-write,
write-read and read-write dependencies among committed transactions (G0, G1c, G2), reads of values
no committed transaction appended, and lists whose orders disagree. Exits 1 on any violation or
liveness failure. The report gives the latency of acknowledged transfers, also apart for those that
ran while a node was down (killed and not yet serving reads) and those that did not, lists the
slowest ones, and sums up the transactions the nodes logged as slow (a second or more): their
attempts, and the share of their time each commit phase took (wait, execute, pend, decide, finish).

Options:
  --nodes N          node processes (default ${defaultFaultOptions.nodes})
  --seconds S        workload length (default ${defaultFaultOptions.seconds})
  --clients C        concurrent tx clients (default ${defaultFaultOptions.clients})
  --list-clients L   list-append clients beside them, 0 for none (default ${defaultFaultOptions.listClients})
  --lists K          lists of the list-append workload (default ${defaultFaultOptions.listKeys})
  --kill-every S     seconds between kills, 0 for none (default ${defaultFaultOptions.killEvery})
  --partition-every S  seconds between partitions, 0 for none (default 0): each node runs in a
                     network namespace of its own (needs root and iproute2) and a random minority is
                     cut off, packets dropped without a reset, then healed
  --partition-for S  how long each partition lasts (default 4)
  --accounts N       accounts (default ${defaultFaultOptions.accounts})
  --balance B        opening balance of each account (default ${defaultFaultOptions.initialBalance})
  --max-amount A     largest transfer (default ${defaultFaultOptions.maxAmount})
  --settle S         seconds with every node up before reading back (default ${defaultFaultOptions.settleSeconds})
  --liveness S       after settling, a transfer through every node must commit within S seconds
                     (default ${defaultFaultOptions.livenessSeconds})
  --tx-timeout S     give up on an unanswered transaction after S seconds (default ${defaultFaultOptions.txTimeoutSeconds})
  --seed N           seed of the workload and kill schedule (default: random, printed)
  --cluster-size K   passed to node start
  --keep             keep the data directories, every node's log (<dir>/nN.ndjson) and every
                     transfer with its timing (<dir>/transfers.ndjson); the path is printed
  --json             print the report as JSON too
  -h, --help         this text
`;

function number(value: string | undefined, name: string, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min) {
    console.error(`--${name} must be a number ≥ ${min}, got ${value}\n\n${help}`);
    process.exit(2);
  }
  return n;
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        nodes: { type: 'string' },
        seconds: { type: 'string' },
        clients: { type: 'string' },
        'list-clients': { type: 'string' },
        lists: { type: 'string' },
        'kill-every': { type: 'string' },
        'partition-every': { type: 'string' },
        'partition-for': { type: 'string' },
        accounts: { type: 'string' },
        balance: { type: 'string' },
        'max-amount': { type: 'string' },
        settle: { type: 'string' },
        'tx-timeout': { type: 'string' },
        liveness: { type: 'string' },
        seed: { type: 'string' },
        'cluster-size': { type: 'string' },
        keep: { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    });
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${help}`);
    process.exit(2);
  }
  const v = parsed.values;
  if (v.help === true) {
    process.stdout.write(help);
    return;
  }
  const d = defaultFaultOptions;
  const options: FaultOptions = {
    nodes: number(v.nodes, 'nodes', d.nodes, 1),
    seconds: number(v.seconds, 'seconds', d.seconds, 1),
    clients: number(v.clients, 'clients', d.clients, 1),
    listClients: number(v['list-clients'], 'list-clients', d.listClients),
    listKeys: number(v.lists, 'lists', d.listKeys, 1),
    killEvery: number(v['kill-every'], 'kill-every', d.killEvery),
    partitionEvery: number(v['partition-every'], 'partition-every', 0),
    partitionSeconds: number(v['partition-for'], 'partition-for', 4, 1),
    accounts: number(v.accounts, 'accounts', d.accounts, 2),
    initialBalance: number(v.balance, 'balance', d.initialBalance, 1),
    maxAmount: number(v['max-amount'], 'max-amount', d.maxAmount, 1),
    settleSeconds: number(v.settle, 'settle', d.settleSeconds),
    livenessSeconds: number(v.liveness, 'liveness', d.livenessSeconds, 1),
    txTimeoutSeconds: number(v['tx-timeout'], 'tx-timeout', d.txTimeoutSeconds, 1),
    seed: number(v.seed, 'seed', Math.floor(Math.random() * 2 ** 31)),
    cliRoot,
    ...(v['cluster-size'] !== undefined ? { nodeArgs: ['--cluster-size', v['cluster-size']] } : {}),
    keep: v.keep === true,
    log: (line) => console.error(line),
  };
  const interrupt = new AbortController();
  let interrupts = 0;
  process.on('SIGINT', () => {
    interrupts++;
    console.error(interrupts === 1 ? 'interrupted: stopping every process…' : 'killing every process');
    if (interrupts > 1) {
      killAllChildren();
      process.exit(130);
    }
    interrupt.abort();
  });
  process.on('SIGTERM', () => interrupt.abort());
  process.on('exit', () => killAllChildren());

  buildIfStale();
  console.error(`fault: seed ${options.seed} (rerun with --seed ${options.seed})`);
  let report;
  try {
    report = await runFault({ ...options, signal: interrupt.signal });
  } catch (error) {
    console.error(`fault run failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(interrupt.signal.aborted ? 130 : 1);
  }
  console.log(formatReport(report));
  if (options.keep === true) console.log(`data kept in ${report.dataRoot}`);
  if (v.json === true) console.log(JSON.stringify(report));
  process.exitCode = report.violations.length === 0 && report.liveness.length === 0 ? 0 : 1;
}

await main();
