import { Args, Flags } from '@oclif/core';
import { KeygenCommand, keygenFlags, pendingHint } from '../../../ui/cli/keygen/index.js';

export default class KeygenCeremonyDecline extends KeygenCommand<typeof KeygenCeremonyDecline> {
  static override summary = 'Refuse a key ceremony proposed to this node; it fails for everyone';
  static override description =
    'Sends a signed refusal, with the reason, to every participant node: the ceremony fails everywhere ' +
    'with NO_QUORUM and no key is made. SESSION as for `keygen ceremony accept`. Exits 0.';
  static override examples = ['<%= config.bin %> <%= command.id %> 0f717759a0fa --reason "wrong threshold"'];
  static override args = {
    session: Args.string({
      ignoreStdin: true,
      description: 'the ceremony: its tag, or the first characters of it',
    }),
  };
  static override flags = {
    reason: Flags.string({ description: 'why, shown to the others', default: 'declined by its operator' }),
    'passphrase-file': keygenFlags.passphraseFile,
  };

  override async run(): Promise<void> {
    await this.withCeremonies(
      { unlock: true, passphraseFile: this.flags['passphrase-file'] },
      async (api) => {
        const session = this.args.session ?? (await pendingHint(api, 'decline'));
        const declined = await api.decide(session, { approve: false, reason: this.flags.reason });
        if (this.out.mode === 'json') await this.out.json({ ...declined, decision: 'declined' });
        else await this.out.lines([`declined ceremony ${declined.tag}: it fails for every participant`]);
      },
    );
  }
}
