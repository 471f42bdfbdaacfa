import { Flags } from '@oclif/core';
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
    'Run by a holder. Through files (the default), it writes the proposal and its acceptance to --out; ' +
    'then every holder runs `keygen ceremony step --in DIR --approve` until it completes, exactly as for a ' +
    'new key.\n\n' +
    'With --transport network, the node running on --data proposes it to the nodes of the other holders ' +
    '(known from the ceremony that made the key over the network; name any others with --participants) ' +
    'and follows it like keygen ceremony start: each holder accepts with `keygen ceremony accept SESSION` ' +
    'on its node, and the nodes finish it on their own.\n\n' +
    'Each holder replaces its old share only once every holder has confirmed the new generation (the old ' +
    'one keeps working until then). Every holder must take part; to drop or add holders, use keygen reshare.';
  static override examples = [
    '<%= config.bin %> <%= command.id %> payments --out /media/usb/refresh',
    {
      description: 'Then, at every holder',
      command: '<%= config.bin %> keygen ceremony step --in /media/usb/refresh --approve',
    },
    {
      description: 'Between running nodes (each other holder then runs keygen ceremony accept)',
      command: '<%= config.bin %> <%= command.id %> payments --transport network',
    },
  ];
  static override args = {
    key: keyArg,
  };
  static override flags = {
    out: keygenFlags.renewalOut,
    expires: keygenFlags.expires,
    transport: keygenFlags.renewalTransport,
    participants: Flags.string({
      description:
        "--transport network: peer ids of holders' nodes this data directory does not know (repeat or comma-separate)",
      multiple: true,
      helpValue: 'PEERID',
    }),
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
            kind: 'refresh',
            key: this.args.key,
            participants: this.list(this.flags.participants),
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
      kind: 'refresh',
      keyRef: this.args.key,
      expiresInMs,
    });
    if (this.out.mode === 'json') await this.out.json(progress);
    else await this.out.lines(ceremonyLines(progress));
  }
}
