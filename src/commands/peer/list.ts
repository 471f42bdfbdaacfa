import { DataCommand, peerColumns, peerRow } from '../../ui/cli/index.js';

export default class PeerList extends DataCommand<typeof PeerList> {
  static override summary = 'List the peers the node is connected to';
  static override description =
    'One row per connected peer: its id, who opened the connection, the last measured round trip and ' +
    'an address. Piped, tab-separated lines without a header; with --json, an array of ' +
    '{"id","addresses","direction","latencyMs","connectedAt"}. Needs a running node (on --data, or ' +
    '--connect); UNAVAILABLE (exit 6) without one.';
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    { description: 'Peer ids only', command: '<%= config.bin %> <%= command.id %> | cut -f1' },
  ];

  override async run(): Promise<void> {
    const peers = await this.withNode((node) => node.peers());
    if (this.out.mode === 'json') await this.out.json(peers);
    else if (peers.length === 0 && this.out.mode === 'table')
      await this.out.say('no peers connected; join a network with: optimystic peer connect MULTIADDR');
    else await this.out.table(peerColumns, peers.map(peerRow));
  }
}
