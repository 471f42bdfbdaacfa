import { Flags } from '@oclif/core';
import { proposeCeremony } from '../../../engine/index.js';
import {
  ceremonyLines,
  KeygenCommand,
  keygenFlags,
  parseDuration,
  suiteAndPurpose,
} from '../../../ui/cli/keygen/index.js';

export default class KeygenCeremonyPropose extends KeygenCommand<typeof KeygenCeremonyPropose> {
  static override summary = 'Propose a key ceremony to the participants whose cards are in a directory';
  static override description =
    'Builds the proposal — suite, purpose, threshold t, roster (the cards: peer id and encryption key of ' +
    'every participant), label, expiry and a fresh nonce — signs it, and writes it to --out as ' +
    'ceremony-<S>-proposal.json, where S names the session (a hash of the whole proposal). The proposer ' +
    'takes part and approves by proposing: its acceptance is written too.\n\n' +
    'Then every participant runs `keygen ceremony step --in DIR --out DIR` (with --approve, or answering ' +
    'the prompt), again and again, until the key is complete: acceptances, then deals, responses and ' +
    'confirmations. Every participant receives a share; the key is active only when all n confirm.\n\n' +
    'The roster is every card-*.json in --cards (plus this participant), or only the peers named by ' +
    '--roster (full peer ids or their last 6+ characters). Suite: ed25519-sha512 for signing (signatures ' +
    'verify as ordinary Ed25519), secp256k1-sha256 for signing, ristretto255-sha512 for decryption.';
  static override examples = [
    {
      description: 'A 3-of-5 signing key',
      command:
        '<%= config.bin %> <%= command.id %> --cards ./exchange --threshold 3 --suite ed25519-sha512 --purpose sign --label payments --out ./exchange',
    },
    {
      description: 'A 2-of-3 decryption key among three named participants',
      command:
        '<%= config.bin %> <%= command.id %> --cards ./cards --roster aB3dE9xYz1,Qm7KpL2wR4,Zz9Yy8Xx7W --threshold 2 --purpose decrypt --out ./exchange',
    },
  ];
  static override flags = {
    cards: Flags.string({
      description: "directory holding the participants' card-*.json files",
      helpValue: 'DIR',
      required: true,
    }),
    threshold: keygenFlags.threshold,
    suite: keygenFlags.suite,
    purpose: keygenFlags.purpose,
    label: keygenFlags.label,
    roster: Flags.string({
      description: 'participants to include (peer ids or tails; comma-separated) [default: every card]',
      multiple: true,
      helpValue: 'PEERS',
    }),
    expires: keygenFlags.expires,
    out: keygenFlags.proposalOut,
    transport: keygenFlags.transport,
    'passphrase-file': keygenFlags.passphraseFile,
  };

  override async run(): Promise<void> {
    this.requireFiles(this.flags.transport);
    const kind = suiteAndPurpose(this.flags.suite, this.flags.purpose);
    const progress = await proposeCeremony({
      store: this.keyStore(),
      passphrase: this.passphrase(this.flags['passphrase-file']),
      outDir: this.flags.out,
      kind: 'dkg',
      cardsDir: this.flags.cards,
      roster: this.list(this.flags.roster),
      threshold: this.flags.threshold,
      ...kind,
      label: this.flags.label,
      expiresInMs: parseDuration(this.flags.expires, '--expires'),
    });
    if (this.out.mode === 'json') await this.out.json(progress);
    else await this.out.lines(ceremonyLines(progress));
  }
}
