import { Args } from '@oclif/core';
import { DataCommand, peerDetailFields } from '../../ui/cli/index.js';

export default class PeerInfo extends DataCommand<typeof PeerInfo> {
  static override summary = 'Show this node, or one peer';
  static override description =
    'Without PEER: this node — its peer id, network and the addresses others can dial. With a peer ' +
    'id: the connected peer (addresses, direction, latency), or, when not connected, what DHT peer ' +
    'routing finds about it (NOT_FOUND, exit 4, when nobody knows it). --json prints ' +
    '{"id","self","connected","addresses",…}.';
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> 12D3KooWRyv6BHW5z32DpwxewwVsGREheRFJxoysZk8UyX8xaewE',
  ];
  static override args = {
    peer: Args.string({ ignoreStdin: true, description: 'peer id (default: this node)' }),
  };

  override async run(): Promise<void> {
    const { peer } = this.args;
    const detail = await this.withNode((node) => node.peerInfo(peer));
    if (this.out.mode === 'json') await this.out.json(detail);
    else await this.out.fields(peerDetailFields(detail));
  }
}
