import { Args } from '@oclif/core';
import { DataCommand } from '../../ui/cli/index.js';

export default class PeerFind extends DataCommand<typeof PeerFind> {
  static override summary = "Find a peer's addresses through the DHT";
  static override description =
    'Kademlia peer routing from the node: asks the peers nearest to PEER for its addresses. Prints ' +
    'one address per line; --json prints {"id","addresses"}. Nobody knowing the peer is NOT_FOUND ' +
    '(exit 4); a lookup that runs out of time is TIMEOUT (exit 6).';
  static override examples = ['<%= config.bin %> <%= command.id %> 12D3KooW…'];
  static override args = {
    peer: Args.string({ ignoreStdin: true, description: 'peer id to look up', required: true }),
  };

  override async run(): Promise<void> {
    const found = await this.withNode((node) => node.findPeer(this.args.peer));
    if (this.out.mode === 'json') await this.out.json(found);
    else await this.out.lines(found.addresses.length > 0 ? [...found.addresses] : ['(no addresses known)']);
  }
}
