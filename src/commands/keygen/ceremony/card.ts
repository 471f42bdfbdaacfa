import { publishCard } from '../../../engine/index.js';
import { KeygenCommand, keygenFlags } from '../../../ui/cli/keygen/index.js';

export default class KeygenCeremonyCard extends KeygenCommand<typeof KeygenCeremonyCard> {
  static override summary =
    "Publish this participant's card: its ceremony peer id and encryption key, signed";
  static override description =
    'A key ceremony starts with cards: each participant writes its card (card-<peer>.json) to a shared ' +
    'directory, and the proposer builds the roster from them (keygen ceremony propose --cards DIR).\n\n' +
    "The first run creates this data directory's ceremony identity: an Ed25519 key, separate from the " +
    'node identity, sealed under the passphrase in DATA/keys/ceremony-identity.json (mode 0600), with a ' +
    'ristretto255 encryption key derived from it that other participants encrypt shares to. On a ' +
    'terminal the passphrase is asked twice. Later runs only print or write the card (no passphrase).\n\n' +
    'Without --out the card JSON is printed. --json prints {"card","created","file"}.';
  static override examples = [
    {
      description: 'Write the card to a shared directory',
      command: '<%= config.bin %> <%= command.id %> --out /media/usb/ceremony',
    },
    {
      description: 'Unattended, passphrase from a file',
      command: '<%= config.bin %> <%= command.id %> --out ./exchange --passphrase-file ~/.optimystic-pass',
    },
  ];
  static override flags = {
    out: keygenFlags.out,
    'passphrase-file': keygenFlags.passphraseFile,
  };

  override async run(): Promise<void> {
    const result = await publishCard({
      store: this.keyStore(),
      passphrase: this.passphrase(this.flags['passphrase-file'], true),
      outDir: this.flags.out ?? null,
    });
    if (this.out.mode === 'json') {
      await this.out.json(result);
      return;
    }
    if (result.file === null) {
      await this.out.json(result.card);
      return;
    }
    await this.out.say(
      `${result.created ? 'created ceremony identity' : 'ceremony identity'} ${result.card.peerId}`,
    );
    await this.out.say(`wrote ${result.file}`);
  }
}
