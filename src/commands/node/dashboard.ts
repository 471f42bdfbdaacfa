import { isEngineError, RemoteStatusSource, type RemoteNode } from '../../engine/index.js';
import { DataCommand, jsonLine } from '../../ui/cli/index.js';

export default class NodeDashboard extends DataCommand<typeof NodeDashboard> {
  static override summary = 'Attach the live dashboard to the running node';
  static override description =
    'Draws the same dashboard as node start, for the node running on --data (or a remote node with ' +
    '--connect), fed by its status updates. q or Ctrl-C detaches; the node keeps running. When the ' +
    'node stops, the dashboard closes and the command exits 0.\n\n' +
    'When stdout is not a terminal, or with --json, it prints the updates instead: one NDJSON line ' +
    '{"status","events"} per update (the first one carries the recent events), until Ctrl-C.';
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    {
      description: 'Follow transactions per second from a script',
      command: '<%= config.bin %> <%= command.id %> --json | jq -c .status.rates.txPerSec',
    },
  ];

  override async run(): Promise<void> {
    const draw = !this.jsonEnabled() && process.stdout.isTTY === true && process.stdin.isTTY === true;
    const outcome = await this.withNode((node) => (draw ? this.draw(node) : this.print(node)));
    if (outcome === 'node-stopped' && this.out.mode !== 'json') process.stderr.write('the node stopped\n');
  }

  /** The Ink dashboard until the operator detaches or the node stops. */
  private async draw(node: RemoteNode): Promise<Ending> {
    const source = new RemoteStatusSource(node);
    await source.ready();
    const { startDashboard } = await import('../../ui/dashboard/index.js');
    let nodeStopped = false;
    const handle = startDashboard(source, { ownsNode: false, onQuit: () => Promise.resolve() });
    const onEnd = (): void => {
      nodeStopped = true;
      handle.close();
    };
    void source.closed.then(onEnd, onEnd);
    await handle.waitUntilExit();
    return nodeStopped ? 'node-stopped' : 'detached';
  }

  /** NDJSON updates until Ctrl-C or the node stops (its stream ends, or its connection closes). */
  private async print(node: RemoteNode): Promise<Ending> {
    let received = 0;
    try {
      for await (const update of node.watch()) {
        if (this.interrupt.interrupted) return 'detached';
        await this.out.lines([jsonLine(update)]);
        received++;
      }
    } catch (error) {
      if (this.interrupt.interrupted) return 'detached';
      if (!(received > 0 && isEngineError(error, 'UNAVAILABLE'))) throw error;
    }
    return this.interrupt.interrupted ? 'detached' : 'node-stopped';
  }
}

type Ending = 'detached' | 'node-stopped';
