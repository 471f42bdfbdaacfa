import { Flags } from '@oclif/core';
import { proposeCeremony } from '../../engine/index.js';
import {
  ceremonyLines,
  keyArg,
  KeygenCommand,
  keygenFlags,
  parseDuration,
} from '../../ui/cli/keygen/index.js';

export default class KeygenReshare extends KeygenCommand<typeof KeygenReshare> {
  static override summary = 'Reshare a threshold key to a new set of holders and/or a new threshold';
  static override description =
    'Proposes a reshare: the current holders (all, or those named by --dealers; at least the current ' +
    'threshold of them) deal new shares of the same secret to the peers named by --roster, in that ' +
    'order, with threshold --threshold. The key id and public key do not change. Holders not in the new ' +
    'roster end with no share (theirs is deleted once the new holders confirm).\n\n' +
    'Through files (the default): --roster and --dealers name ceremony identities (full peer id or their ' +
    'last 6+ characters). Cards of current holders come from the key itself; cards of new holders from ' +
    '--cards DIR (their card-*.json files, see keygen ceremony card). Then every participant runs ' +
    '`keygen ceremony step --in DIR --approve` until it completes.\n\n' +
    'With --transport network: --roster and --dealers name the nodes (full libp2p peer ids) the new ' +
    'holders and the dealers run on; each node presents its own card. The node running on --data ' +
    "proposes it to all of them (the current holders' nodes are known from the ceremony that made the " +
    'key over the network) and follows it like keygen ceremony start; each other participant accepts ' +
    'with `keygen ceremony accept SESSION` on its node.';
  static override examples = [
    {
      description: 'From 3-of-5 to 2-of-3, with one newcomer',
      command:
        '<%= config.bin %> <%= command.id %> payments --roster aB3dE9xYz1,Qm7KpL2wR4,NewPeer123 --threshold 2 --cards ./cards --out ./exchange',
    },
    {
      description: 'Between running nodes: three nodes hold it from now on, two of them needed',
      command:
        '<%= config.bin %> <%= command.id %> payments --transport network --roster 12D3KooWAb…,12D3KooWCd…,12D3KooWEf… --threshold 2',
    },
  ];
  static override args = {
    key: keyArg,
  };
  static override flags = {
    roster: Flags.string({
      description:
        'the new holders, in order (comma-separated): peer ids or tails of ceremony identities; with --transport network, the peer ids of their nodes',
      multiple: true,
      required: true,
      helpValue: 'PEERS',
    }),
    threshold: Flags.integer({ description: 'the new threshold', min: 2, required: true }),
    cards: Flags.string({
      description: '--transport files: directory with the card-*.json files of new holders',
      helpValue: 'DIR',
    }),
    dealers: Flags.string({
      description:
        'current holders who deal (comma-separated; with --transport network, their nodes) [default: all]',
      multiple: true,
      helpValue: 'PEERS',
    }),
    out: keygenFlags.renewalOut,
    expires: keygenFlags.expires,
    transport: keygenFlags.renewalTransport,
    'phase-timeout': keygenFlags.phaseTimeout,
    wait: keygenFlags.wait,
    'passphrase-file': keygenFlags.passphraseFile,
  };

  override async run(): Promise<void> {
    const expiresInMs = parseDuration(this.flags.expires, '--expires');
    if (this.flags.transport === 'network') {
      const phaseTimeoutMs = parseDuration(this.flags['phase-timeout'], '--phase-timeout');
      await this.startNetworked(
        { wait: this.flags.wait, passphraseFile: this.flags['passphrase-file'] },
        (api) =>
          api.renewKey({
            kind: 'reshare',
            key: this.args.key,
            participants: this.list(this.flags.roster),
            dealers: this.list(this.flags.dealers),
            threshold: this.flags.threshold,
            expiresInMs,
            phaseTimeoutMs,
          }),
      );
      return;
    }
    const progress = await proposeCeremony({
      store: this.keyStore(),
      passphrase: this.passphrase(this.flags['passphrase-file']),
      outDir: this.proposalDir(this.flags.out),
      kind: 'reshare',
      keyRef: this.args.key,
      roster: this.list(this.flags.roster),
      dealers: this.list(this.flags.dealers),
      threshold: this.flags.threshold,
      ...(this.flags.cards === undefined ? {} : { cardsDir: this.flags.cards }),
      expiresInMs,
    });
    if (this.out.mode === 'json') await this.out.json(progress);
    else await this.out.lines(ceremonyLines(progress));
  }
}
