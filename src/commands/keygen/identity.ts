import { dataDirIdentity, isNoNodeRunning, type IdentityInfo } from '../../engine/index.js';
import { DataCommand } from '../../ui/cli/index.js';

export default class KeygenIdentity extends DataCommand<typeof KeygenIdentity> {
  static override summary = "Show this node's Ed25519 identity, creating it if there is none";
  static override description =
    'A node is known by one Ed25519 key pair, kept in its data directory: its libp2p peer id, and the ' +
    'key that signs its votes and certificates. It is created the first time the data directory is ' +
    'used (by any command) and never changes — peers reject a node whose key changed.\n\n' +
    'Prints the peer id and the raw public key (base64url). With a node running on --data, asks it; ' +
    'otherwise opens the data directory (creating the identity if needed, which is then reported). ' +
    '--json prints {"peerId","publicKey","created"}.';
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    {
      description: 'The peer id only',
      command: '<%= config.bin %> <%= command.id %> --json | jq -r .peerId',
    },
  ];

  override async run(): Promise<void> {
    const identity = this.flags.offline
      ? await dataDirIdentity(this.dataDir)
      : await this.fromNodeOrDataDir();
    if (this.out.mode === 'json') {
      await this.out.json(identity);
      return;
    }
    await this.out.fields([
      ['Peer ID', identity.peerId],
      ['Public key', identity.publicKey],
    ]);
    if (identity.created) this.notice(`created a new identity in ${this.dataDir}`);
  }

  private async fromNodeOrDataDir(): Promise<IdentityInfo & { readonly created: boolean }> {
    try {
      return { ...(await this.withNode((node) => node.identity())), created: false };
    } catch (error) {
      if (!isNoNodeRunning(error)) throw error;
      return dataDirIdentity(this.dataDir);
    }
  }
}
