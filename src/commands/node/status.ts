import { DataCommand, statusFields } from '../../ui/cli/index.js';

export default class NodeStatus extends DataCommand<typeof NodeStatus> {
  static override summary = 'Show the complete state of the running node';
  static override description =
    'Asks the node running on --data (or, with --connect, a remote node) for its state: identity, ' +
    'addresses, peers and connections with latency, DHT routing table size, collections, storage ' +
    'used and capacity, transactions in flight, tx/s and commit latency p50/p99, and where the ' +
    'time went over the last minute (commit phases; requests sent and served, by type). On a terminal, ' +
    'labelled lines; piped, label<TAB>value lines; with --json, the whole status object (see ' +
    'docs/cli.md for its fields).\n\n' +
    'With no node running it fails with UNAVAILABLE (exit 6).';
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    {
      description: 'The peer id, for scripts',
      command: '<%= config.bin %> <%= command.id %> --json | jq -r .peerId',
    },
    {
      description: 'An address others can bootstrap from',
      command: '<%= config.bin %> <%= command.id %> --json | jq -r ".listenAddresses[0]"',
    },
  ];

  override async run(): Promise<void> {
    const status = await this.withNode((node) => node.status());
    if (this.out.mode === 'json') await this.out.json(status);
    else await this.out.fields(statusFields(status));
  }
}
