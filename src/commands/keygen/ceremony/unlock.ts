import { KeygenCommand, keygenFlags } from '../../../ui/cli/keygen/index.js';

export default class KeygenCeremonyUnlock extends KeygenCommand<typeof KeygenCeremonyUnlock> {
  static override summary =
    'Give the running node the keystore passphrase, so it can take part in ceremonies';
  static override description =
    'A node started without OPTIMYSTIC_PASSPHRASE or --passphrase-file cannot open its ceremony identity: ' +
    'it cannot present its card to a coordinator, accept, or resume a ceremony after a restart. This hands ' +
    'it the passphrase (from --passphrase-file, OPTIMYSTIC_PASSPHRASE or a prompt) over its control socket ' +
    '(mode 0600). The node checks it (a wrong one is BAD_SIGNATURE, exit 7), creates the ceremony identity ' +
    'if there is none, and keeps the passphrase in memory until it stops; it is never written or logged. ' +
    'A node that holds a passphrase already refuses another one (BAD_SIGNATURE).';
  static override examples = [
    '<%= config.bin %> <%= command.id %> --passphrase-file ~/.optimystic-passphrase',
  ];
  static override flags = { 'passphrase-file': keygenFlags.passphraseFile };

  override async run(): Promise<void> {
    const info = await this.withCeremonies(
      { unlock: false, passphraseFile: this.flags['passphrase-file'] },
      async (api) => api.unlock(await this.passphrase(this.flags['passphrase-file'])()),
    );
    if (this.out.mode === 'json') await this.out.json(info);
    else
      await this.out.lines([`node ${info.peerId} unlocked; ceremony identity ${info.card?.peerId ?? '?'}`]);
  }
}
