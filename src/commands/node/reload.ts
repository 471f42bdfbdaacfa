import { EngineError } from '../../engine/index.js';
import { DataCommand } from '../../ui/cli/index.js';

export default class NodeReload extends DataCommand<typeof NodeReload> {
  static override summary = 'Make the running node read its settings again, without a restart';
  static override description =
    'Asks the node on --data to resolve its settings again — the flags and environment it was started ' +
    'with, and its config file as it is now — and to apply those that can change while it runs: ' +
    'clients (the light clients it serves) and slowTransactionMs. Settings that changed but need a ' +
    'restart (listen, network, clusterSize, …) are named and left as they are. A flag or environment ' +
    'variable given at start still wins over the file. A config file that does not validate is ' +
    'CONFIG_INVALID (exit 3) and changes nothing. The node logs what it applied as an info event.\n\n' +
    '--json prints {"applied","needsRestart","configFile"}. Only a node on this machine: not with --connect.';
  static override examples = [
    {
      description: 'Admit a light client: add its peer id to "clients" in DATA/config.json, then',
      command: '<%= config.bin %> <%= command.id %>',
    },
  ];

  override async run(): Promise<void> {
    if (this.flags.connect !== undefined)
      throw new EngineError(
        'BAD_INPUT',
        'node reload asks the node on --data on this machine; it cannot reload a node reached with --connect',
      );
    const result = await this.withNode((node) => node.reload());
    if (this.out.mode === 'json') {
      await this.out.json(result);
      return;
    }
    const list = (keys: readonly string[]): string => (keys.length === 0 ? 'none' : keys.join(', '));
    await this.out.fields([
      ['Config file', result.configFile ?? '(none found)'],
      ['Applied', list(result.applied)],
      ['Needs a restart', list(result.needsRestart)],
    ]);
  }
}
