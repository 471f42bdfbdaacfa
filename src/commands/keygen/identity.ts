import { Flags } from '@oclif/core';
import {
  dataDirIdentity,
  isNoNodeRunning,
  lightClientIdentity,
  type IdentityInfo,
} from '../../engine/index.js';
import { DataCommand } from '../../ui/cli/index.js';

export default class KeygenIdentity extends DataCommand<typeof KeygenIdentity> {
  static override summary = "Show this node's Ed25519 identity, creating it if there is none";
  static override description =
    'A node is known by one Ed25519 key pair, kept in its data directory: its libp2p peer id, and the ' +
    'key that signs its votes and certificates. It is created the first time the data directory is ' +
    'used (by any command) and never changes — peers reject a node whose key changed.\n\n' +
    'Prints the peer id and the raw public key (base64url). With a node running on --data, asks it; ' +
    'otherwise opens the data directory (creating the identity if needed, which is then reported). ' +
    '--json prints {"peerId","publicKey","created"}.\n\n' +
    'With --client, the light-client identity instead: the key --connect uses, kept in DATA/client.key ' +
    '(made on first use, by this command or by --connect). A node serves a light client only if its ' +
    '--clients setting names that peer id (or is any). --json adds "path".';
  static override flags = {
    client: Flags.boolean({
      description: 'show the light-client identity (DATA/client.key, used by --connect) instead',
      default: false,
    }),
  };
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    {
      description: 'The peer id only',
      command: '<%= config.bin %> <%= command.id %> --json | jq -r .peerId',
    },
    {
      description: 'The peer id a node must allow (--clients) for --connect from this machine',
      command: '<%= config.bin %> <%= command.id %> --client',
    },
  ];

  override async run(): Promise<void> {
    if (this.flags.client) {
      const client = await lightClientIdentity(this.dataDir);
      if (this.out.mode === 'json') {
        await this.out.json(client);
        return;
      }
      await this.out.fields([
        ['Peer ID', client.peerId],
        ['Public key', client.publicKey],
        ['Key file', client.path],
      ]);
      if (client.created) this.notice(`made a light-client key in ${client.path}`);
      return;
    }
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
