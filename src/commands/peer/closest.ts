import { Args, Flags } from '@oclif/core';
import { DataCommand, closestRows } from '../../ui/cli/index.js';

export default class PeerClosest extends DataCommand<typeof PeerClosest> {
  static override summary = 'The k peers nearest a key: the cluster that would hold it';
  static override description =
    'Runs a DHT closest-peers query from the node and ranks the peers (this node included) by XOR ' +
    "distance between sha256 of the key and each peer's Kademlia id. A block id (43 base64url " +
    "characters) is hashed as its 32 bytes, like a block's own position, so the answer is that " +
    "block's future cluster; any other KEY is hashed as UTF-8 text. k defaults to the node's cluster " +
    'size. --json prints {"key","keyKind","dhtKey","k","peers":[{"id","self"}]}, nearest first.';
  static override examples = [
    '<%= config.bin %> <%= command.id %> accounts',
    {
      description: "The cluster of a collection's root block",
      command:
        '<%= config.bin %> <%= command.id %> "$(<%= config.bin %> collection info accounts --json | jq -r .root)"',
    },
    '<%= config.bin %> <%= command.id %> some-key --k 3',
  ];
  static override args = {
    key: Args.string({ ignoreStdin: true, description: 'block id or any text', required: true }),
  };
  static override flags = {
    k: Flags.integer({
      description: 'how many peers (1-20) [default: the cluster size]',
      min: 1,
      max: 20,
      helpValue: 'K',
    }),
  };

  override async run(): Promise<void> {
    const result = await this.withNode((node) => node.closest(this.args.key, this.flags.k));
    if (this.out.mode === 'json') await this.out.json(result);
    else await this.out.table(['RANK', 'PEER', ''], closestRows(result));
  }
}
