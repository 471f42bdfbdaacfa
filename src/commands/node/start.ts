import { Flags } from '@oclif/core';
import {
  EngineError,
  loadNodeConfig,
  startNode,
  type NodeEvent,
  type RunningNode,
} from '../../engine/index.js';
import { DataCommand, eventLine } from '../../ui/cli/index.js';
import { passphraseEnvVar, readPassphraseFile, sealCostFromEnv } from '../../ui/cli/keygen/index.js';

export default class NodeStart extends DataCommand<typeof NodeStart> {
  static override summary = 'Run a node in the foreground';
  static override description =
    'Opens the data directory (its store, and its Ed25519 identity — created on first start, the ' +
    'libp2p peer id), joins the peer-to-peer network (TCP, Noise, Yamux, Kademlia DHT namespaced by ' +
    '--network) and serves the database: other optimystic commands on the same --data go through ' +
    'this node (over a control socket in the data directory), and remote ones reach it with ' +
    '--connect when --clients allows them (peer ids, or any; by default the node serves no light ' +
    "client and refuses them with BAD_INPUT naming their peer id; a client's peer id is shown by " +
    'optimystic keygen identity --client on its machine).\n\n' +
    'On a terminal it draws a live dashboard (q or Ctrl-C asks before stopping the node). Otherwise, ' +
    'or with --no-dashboard or --json, it prints one NDJSON log line per event (node:start, ' +
    'peer:connect, peer:disconnect, info, error, node:stop). SIGINT, SIGTERM or SIGHUP stop it gracefully: ' +
    'requests finish, the store is flushed and the lock released; exit 0.\n\n' +
    'Settings come from flags, then OPTIMYSTIC_* variables (OPTIMYSTIC_PORT, OPTIMYSTIC_LISTEN, ' +
    'OPTIMYSTIC_ANNOUNCE, OPTIMYSTIC_BOOTSTRAP, OPTIMYSTIC_NETWORK, OPTIMYSTIC_ROLE, ' +
    'OPTIMYSTIC_CAPACITY, OPTIMYSTIC_GATEWAY, OPTIMYSTIC_BOOTSTRAP_NODE, OPTIMYSTIC_CLUSTER_SIZE, OPTIMYSTIC_CLIENTS; lists ' +
    'comma-separated), then a config file (--config FILE, else DATA/config.json, else ' +
    'optimystic.config.{json,yaml,yml,js,mjs,cjs} or .optimysticrc in the working directory), then ' +
    'defaults. A bad value is named with where it came from: a flag is a usage error (exit 2), a ' +
    'variable or file setting is CONFIG_INVALID (exit 3).\n\n' +
    'Only one node runs per data directory: a second start is refused with DATA_DIR_BUSY (exit 6). ' +
    'The lock of a node that crashed is detected and cleared.\n\n' +
    'Key ceremonies with other nodes (keygen ceremony start, accept) need the keystore passphrase in the ' +
    'node: --passphrase-file FILE (OPTIMYSTIC_PASSPHRASE_FILE) or OPTIMYSTIC_PASSPHRASE. The node checks it ' +
    'at start (a wrong one stops it with BAD_SIGNATURE, exit 7), creates the ceremony identity if there is ' +
    'none, and keeps it in memory only. Without it the node still runs; `keygen ceremony unlock` gives it later.';
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    {
      description: 'A second node on this machine, joining the first',
      command:
        '<%= config.bin %> <%= command.id %> --data ~/.optimystic-2 --port 4002 --bootstrap /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW…',
    },
    {
      description: 'A public bootstrap node and gateway',
      command:
        '<%= config.bin %> <%= command.id %> --port 4001 --announce /ip4/203.0.113.7/tcp/4001 --gateway --bootstrap-node',
    },
    {
      description: 'Log lines instead of the dashboard, on loopback with a free port',
      command: '<%= config.bin %> <%= command.id %> --no-dashboard --listen /ip4/127.0.0.1/tcp/0',
    },
  ];
  static override flags = {
    port: Flags.integer({
      description: 'TCP port to listen on, on every IPv4 interface (0 = any free port) [default: 4001]',
      min: 0,
      max: 65535,
      helpValue: 'PORT',
      exclusive: ['listen'],
    }),
    listen: Flags.string({
      description: 'multiaddr to listen on instead of --port (repeat or comma-separate)',
      multiple: true,
      delimiter: ',',
      helpValue: 'MULTIADDR',
    }),
    announce: Flags.string({
      description:
        'multiaddr to announce instead of the listen addresses, e.g. a public address (repeat or comma-separate)',
      multiple: true,
      delimiter: ',',
      helpValue: 'MULTIADDR',
    }),
    bootstrap: Flags.string({
      description: 'peer to join through, ending in /p2p/<peer id> (repeat or comma-separate)',
      multiple: true,
      delimiter: ',',
      helpValue: 'MULTIADDR',
    }),
    network: Flags.string({
      description:
        'network name: nodes of different networks never talk; a data directory keeps the network it was first opened for [default: default]',
      helpValue: 'NAME',
    }),
    role: Flags.string({
      description: 'transaction node, or storage node (long-term storage) [default: transaction]',
      options: ['transaction', 'storage'],
    }),
    capacity: Flags.string({
      description: 'storage this node offers: bytes, or "10GB", "512MiB" (0 = unlimited) [default: 0]',
      helpValue: 'BYTES',
    }),
    gateway: Flags.boolean({
      description: 'serve circuit relay for NAT-ed peers (with --announce of a public address)',
      allowNo: true,
    }),
    'bootstrap-node': Flags.boolean({
      description: 'run as a stable entry point for others (needs a fixed port)',
      allowNo: true,
    }),
    'cluster-size': Flags.integer({
      description: 'peers per block cluster, k [default: 5]',
      min: 1,
      max: 20,
      helpValue: 'K',
    }),
    'slow-transaction-ms': Flags.integer({
      description:
        'log each transaction this node coordinates that takes at least MS milliseconds, with where its time went (0: every one) [default: 1000]',
      min: 0,
      max: 3_600_000,
      helpValue: 'MS',
    }),
    clients: Flags.string({
      description:
        'peer ids allowed to use this node as light clients (--connect), or "any" (repeat or comma-separate) [default: none]',
      multiple: true,
      delimiter: ',',
      helpValue: 'PEERID',
    }),
    config: Flags.string({
      description: 'config file to use (JSON, YAML or JS) instead of searching for one',
      env: 'OPTIMYSTIC_CONFIG',
      helpValue: 'FILE',
    }),
    dashboard: Flags.boolean({
      description: 'draw the live dashboard on a terminal; --no-dashboard prints NDJSON log lines instead',
      allowNo: true,
      default: true,
    }),
    'passphrase-file': Flags.string({
      description:
        'keystore passphrase for key ceremonies with other nodes: the first line of FILE (else OPTIMYSTIC_PASSPHRASE; else none, see keygen ceremony unlock)',
      env: 'OPTIMYSTIC_PASSPHRASE_FILE',
      helpValue: 'FILE',
    }),
  };

  override async run(): Promise<void> {
    if (this.flags.connect !== undefined)
      throw new EngineError(
        'BAD_INPUT',
        'node start runs a node here; --connect (or OPTIMYSTIC_CONNECT) is for reaching a remote one',
      );
    if (this.flags.offline)
      throw new EngineError(
        'BAD_INPUT',
        'node start joins the network; --offline (or OPTIMYSTIC_OFFLINE) contradicts it',
      );
    const { flags } = this;
    const env = { ...process.env };
    // Reloads (node reload) resolve the settings the same way: these flags, this environment.
    const load = () =>
      loadNodeConfig({
        dataDir: this.dataDir,
        flags: {
          port: flags.port,
          listen: flags.listen,
          announce: flags.announce,
          bootstrap: flags.bootstrap,
          network: flags.network,
          role: flags.role,
          capacityBytes: flags.capacity,
          gateway: flags.gateway,
          bootstrapNode: flags['bootstrap-node'],
          clusterSize: flags['cluster-size'],
          clients: flags.clients,
          slowTransactionMs: flags['slow-transaction-ms'],
        },
        env,
        ...(flags.config === undefined ? {} : { configPath: flags.config }),
      });
    const { config, file } = await load();
    // Never prompted for (the node runs unattended), never logged: a file or the variable, or none.
    const passphrase =
      flags['passphrase-file'] !== undefined
        ? await readPassphraseFile(flags['passphrase-file'])
        : process.env[passphraseEnvVar] || undefined;
    const sealCostLog2 = sealCostFromEnv();
    const node = await startNode({
      dataDir: this.dataDir,
      config,
      version: this.config.version,
      ...(file === undefined ? {} : { configFile: file }),
      reloadConfig: load,
      keygen: {
        ...(passphrase === undefined ? {} : { passphrase }),
        ...(sealCostLog2 === undefined ? {} : { sealCostLog2 }),
      },
    });
    const dashboard =
      flags.dashboard && !this.jsonEnabled() && process.stdout.isTTY === true && process.stdin.isTTY === true;
    const stop = (): void => void node.close().catch(() => undefined);
    this.interrupt.signal.addEventListener('abort', stop);
    // SIGHUP: the terminal went away (a closed window or tmux session); stop as cleanly as on SIGTERM.
    process.on('SIGTERM', stop);
    process.on('SIGHUP', stop);
    try {
      if (dashboard) await this.runDashboard(node);
      else await this.runLogging(node, file);
    } finally {
      this.interrupt.signal.removeEventListener('abort', stop);
      process.off('SIGTERM', stop);
      process.off('SIGHUP', stop);
    }
  }

  private async runDashboard(node: RunningNode): Promise<void> {
    // Ink and React load only when a dashboard is drawn.
    const { startDashboard } = await import('../../ui/dashboard/index.js');
    const handle = startDashboard(node.hub, { ownsNode: true, onQuit: () => node.close() });
    // Stopped some other way (node stop, SIGTERM): take the dashboard down.
    void node.stopped.then(
      () => handle.close(),
      () => handle.close(),
    );
    await handle.waitUntilExit();
    await node.stopped;
    process.stdout.write(`node ${node.peerId} stopped\n`);
  }

  private async runLogging(node: RunningNode, configFile: string | undefined): Promise<void> {
    const print = (event: NodeEvent): void => {
      const extra =
        event.kind === 'node:start'
          ? {
              peerId: node.peerId,
              addresses: node.hub.current()?.listenAddresses ?? [],
              network: node.config.network,
              dataDir: node.dataDir,
              pid: process.pid,
              ...(configFile === undefined ? {} : { configFile }),
            }
          : {};
      writeLine(eventLine(event, extra));
    };
    process.stdout.on('error', () => undefined);
    for (const event of node.hub.recentEvents()) print(event);
    const unsubscribe = node.hub.subscribe((_status, events) => events.forEach(print));
    try {
      await node.stopped;
    } finally {
      unsubscribe();
    }
    writeLine(
      eventLine({ at: Date.now(), kind: 'node:stop', message: 'node stopped' }, { peerId: node.peerId }),
    );
  }
}

/** Log lines go straight to stdout; a reader that went away (`| head`) does not stop the node. */
function writeLine(line: string): void {
  if (!process.stdout.writable) return;
  process.stdout.write(`${line}\n`, () => undefined);
}
