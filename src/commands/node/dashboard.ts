import { EngineError, RemoteStatusSource } from '../../engine/index.js';
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
    const ended = await this.withNode(async (node) => {
      if (!draw) {
        try {
          for await (const update of node.watch()) {
            if (this.interrupt.interrupted) break;
            await this.out.lines([jsonLine(update)]);
          }
        } catch (error) {
          if (this.interrupt.interrupted) return 'detached';
          throw error;
        }
        return this.interrupt.interrupted ? 'detached' : 'stopped';
      }
      const source = new RemoteStatusSource(node);
      await source.ready();
      const { startDashboard } = await import('../../ui/dashboard/index.js');
      let nodeEnded = false;
      const handle = startDashboard(source, { ownsNode: false, onQuit: () => Promise.resolve() });
      void source.closed.then(
        () => ((nodeEnded = true), handle.close()),
        () => ((nodeEnded = true), handle.close()),
      );
      await handle.waitUntilExit();
      return nodeEnded ? 'stopped' : 'detached';
    });
    if (ended === 'stopped') {
      if (this.out.mode !== 'json') process.stderr.write('the node stopped\n');
    } else if (ended !== 'detached') {
      throw new EngineError('INTERNAL', 'dashboard ended in an unknown way');
    }
  }
}
