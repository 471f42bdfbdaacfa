import { Args } from '@oclif/core';
import { EngineError } from '../../engine/index.js';
import { DataCommand } from '../../ui/cli/index.js';

export default class PeerConnect extends DataCommand<typeof PeerConnect> {
  static override summary = 'Make the node dial a peer';
  static override description =
    'The node on --data dials MULTIADDR (with or without /p2p/<peer id>) and reports the peer it ' +
    'reached: {"id","addresses"} with --json. A peer that cannot be reached fails with UNAVAILABLE or ' +
    'TIMEOUT (exit 6). Only the node on this machine takes this order: not with --connect.';
  static override examples = ['<%= config.bin %> <%= command.id %> /ip4/192.0.2.10/tcp/4001/p2p/12D3KooW…'];
  static override args = {
    multiaddr: Args.string({ ignoreStdin: true, description: 'address of the peer to dial', required: true }),
  };

  override async run(): Promise<void> {
    if (this.flags.connect !== undefined)
      throw new EngineError(
        'BAD_INPUT',
        'peer connect orders the node on --data on this machine; it is not served to --connect clients',
      );
    const found = await this.withNode((node) => node.connect(this.args.multiaddr));
    if (this.out.mode === 'json') await this.out.json(found);
    else await this.out.say(`connected to ${found.id} at ${found.addresses.join(', ')}`);
  }
}
