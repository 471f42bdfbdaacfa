import { proposeCeremony } from '../../engine/index.js';
import {
  ceremonyLines,
  keyArg,
  KeygenCommand,
  keygenFlags,
  parseDuration,
} from '../../ui/cli/keygen/index.js';

export default class KeygenRefresh extends KeygenCommand<typeof KeygenRefresh> {
  static override summary = 'Refresh a threshold key: same public key and threshold, every share replaced';
  static override description =
    "Proposes a proactive refresh among the key's current holders: each deals a new sharing of its own " +
    'share, so every holder ends with a new share of the same secret. Shares stolen before a refresh are ' +
    'useless after it. The key id and public key do not change; signatures and ciphertexts stay valid.\n\n' +
    'Run by a holder. It writes the proposal and its acceptance to --out; then every holder runs ' +
    '`keygen ceremony step --in DIR --approve` until it completes, exactly as for a new key. Each holder ' +
    'replaces its old share only once every holder has confirmed the new generation (the old one keeps ' +
    'working until then). Every holder must take part; to drop or add holders, use keygen reshare.';
  static override examples = [
    '<%= config.bin %> <%= command.id %> payments --out /media/usb/refresh',
    {
      description: 'Then, at every holder',
      command: '<%= config.bin %> keygen ceremony step --in /media/usb/refresh --approve',
    },
  ];
  static override args = {
    key: keyArg,
  };
  static override flags = {
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
      kind: 'refresh',
      keyRef: this.args.key,
      expiresInMs: parseDuration(this.flags.expires, '--expires'),
    });
    if (this.out.mode === 'json') await this.out.json(progress);
    else await this.out.lines(ceremonyLines(progress));
  }
}
