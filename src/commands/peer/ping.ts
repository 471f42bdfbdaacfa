import { Args, Flags } from '@oclif/core';
import { DataCommand, pingLines } from '../../ui/cli/index.js';

export default class PeerPing extends DataCommand<typeof PeerPing> {
  static override summary = 'Measure round trips from the node to a peer';
  static override description =
    'The node pings PEER (a peer id it can reach, or a multiaddr) --count times with the libp2p ping ' +
    'protocol and reports each round trip and the min/avg/max. --json prints ' +
    '{"peer","rttsMs","minMs","avgMs","maxMs"}. An unreachable peer fails with UNAVAILABLE or TIMEOUT ' +
    '(exit 6).';
  static override examples = [
    '<%= config.bin %> <%= command.id %> 12D3KooW…',
    '<%= config.bin %> <%= command.id %> /ip4/192.0.2.10/tcp/4001/p2p/12D3KooW… --count 5',
  ];
  static override args = {
    peer: Args.string({ ignoreStdin: true, description: 'peer id or multiaddr', required: true }),
  };
  static override flags = {
    count: Flags.integer({
      char: 'n',
      description: 'pings to send (1-10)',
      min: 1,
      max: 10,
      default: 3,
      helpValue: 'N',
    }),
  };

  override async run(): Promise<void> {
    const result = await this.withNode((node) => node.ping(this.args.peer, this.flags.count));
    if (this.out.mode === 'json') await this.out.json(result);
    else await this.out.lines(pingLines(result));
  }
}
