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
    'Cards of current holders come from the key itself; cards of new holders from --cards DIR (their ' +
    'card-*.json files, see keygen ceremony card). Peers are named by full peer id or their last 6+ ' +
    'characters. Then every participant runs `keygen ceremony step --in DIR --approve` until it completes.';
  static override examples = [
    {
      description: 'From 3-of-5 to 2-of-3, with one newcomer',
      command:
        '<%= config.bin %> <%= command.id %> payments --roster aB3dE9xYz1,Qm7KpL2wR4,NewPeer123 --threshold 2 --cards ./cards --out ./exchange',
    },
  ];
  static override args = {
    key: keyArg,
  };
  static override flags = {
    roster: Flags.string({
      description: 'the new holders, in order (comma-separated peer ids or tails)',
      multiple: true,
      required: true,
      helpValue: 'PEERS',
    }),
    threshold: Flags.integer({ description: 'the new threshold', min: 2, required: true }),
    cards: Flags.string({
      description: 'directory with the card-*.json files of new holders',
      helpValue: 'DIR',
    }),
    dealers: Flags.string({
      description: 'current holders who deal (comma-separated) [default: all]',
      multiple: true,
      helpValue: 'PEERS',
    }),
    out: keygenFlags.proposalOut,
    expires: keygenFlags.expires,
    transport: keygenFlags.transport,
    'passphrase-file': keygenFlags.passphraseFile,
  };

  override async run(): Promise<void> {
    this.requireFiles(this.flags.transport);
    const progress = await proposeCeremony({
      store: this.keyStore(),
      passphrase: this.passphrase(this.flags['passphrase-file']),
      outDir: this.flags.out,
      kind: 'reshare',
      keyRef: this.args.key,
      roster: this.list(this.flags.roster),
      dealers: this.list(this.flags.dealers),
      threshold: this.flags.threshold,
      ...(this.flags.cards === undefined ? {} : { cardsDir: this.flags.cards }),
      expiresInMs: parseDuration(this.flags.expires, '--expires'),
    });
    if (this.out.mode === 'json') await this.out.json(progress);
    else await this.out.lines(ceremonyLines(progress));
  }
}
