import { Flags } from '@oclif/core';
import { EngineError, stepCeremonyFiles } from '../../../engine/index.js';
import { ceremonyLines, KeygenCommand, keygenFlags } from '../../../ui/cli/keygen/index.js';

export default class KeygenCeremonyStep extends KeygenCommand<typeof KeygenCeremonyStep> {
  static override summary =
    "Advance a key ceremony by one step: read the others' new message files, write this participant's";
  static override description =
    'Reads every ceremony message in --in that this participant has not read yet, advances its sealed ' +
    'ceremony state, and writes its own new messages to --out (both default to each other, so one shared ' +
    'directory works). Run it again whenever new files arrive, until the ceremony completes; each run ' +
    'says what it is waiting for ("waiting for deals from 2 of 5: …").\n\n' +
    'The first step on a new proposal shows it and asks for approval on a terminal; elsewhere pass ' +
    '--approve (after reading it) or --decline REASON (the ceremony then fails for everyone). Without a ' +
    'decision nothing is written (BAD_INPUT, exit 2). On completion the share is sealed in ' +
    'DATA/keys/threshold/<keyId>/share.json and the key shows in `keygen list`. Refresh and reshare ' +
    'ceremonies (keygen refresh, keygen reshare) are stepped the same way.\n\n' +
    'Every message file of the ceremony is checked before anything is written: a file that does not ' +
    'decode (CORRUPT) or whose signature fails (BAD_SIGNATURE) stops the step with exit 7 and names the ' +
    'file; a message from outside the roster is BAD_INPUT (exit 2). Remove the file and run again.\n\n' +
    'A participant that never answers: once everyone has the same files, each runs the step with ' +
    '--deadline. Before dealing this fails the ceremony (NO_QUORUM, exit 6); later it blames the silent ' +
    'participants and restarts without them, or fails with NO_QUORUM when fewer than t would remain. An ' +
    'expired ceremony fails with TIMEOUT (exit 6); a participant blamed by the others gets CONFLICT (5).';
  static override examples = [
    {
      description: 'Approve and take part',
      command: '<%= config.bin %> <%= command.id %> --in /media/usb/ceremony --approve',
    },
    {
      description: 'Read from one directory, write to another',
      command: '<%= config.bin %> <%= command.id %> --in ./round1 --out ./round2',
    },
    {
      description: 'Give up on silent participants',
      command: '<%= config.bin %> <%= command.id %> --in ./exchange --deadline',
    },
  ];
  static override flags = {
    in: keygenFlags.in,
    out: keygenFlags.out,
    approve: keygenFlags.approve,
    decline: Flags.string({
      description: 'refuse the proposal, with a reason the others see',
      helpValue: 'REASON',
      exclusive: ['approve'],
    }),
    deadline: Flags.boolean({ description: "stop waiting: blame whoever has not sent this phase's message" }),
    session: Flags.string({
      description: 'which ceremony, when several are open (session id or its first characters)',
      helpValue: 'S',
    }),
    transport: keygenFlags.transport,
    'passphrase-file': keygenFlags.passphraseFile,
  };

  override async run(): Promise<void> {
    this.requireFiles(this.flags.transport);
    const { inDir, outDir } = this.exchangeDirs(this.flags);
    const progress = await stepCeremonyFiles({
      store: this.keyStore(),
      passphrase: this.passphrase(this.flags['passphrase-file']),
      decide: this.decider({ approve: this.flags.approve, decline: this.flags.decline }),
      inDir,
      outDir,
      ...(this.flags.session === undefined ? {} : { session: this.flags.session }),
      deadline: this.flags.deadline,
    });
    const failed =
      progress.phase === 'failed' && progress.failure !== null && progress.decision !== 'declined';
    if (this.out.mode === 'json') {
      if (!failed) await this.out.json(progress);
    } else {
      await this.out.lines(ceremonyLines(progress).slice(0, failed ? -1 : undefined));
    }
    if (failed) {
      const f = progress.failure!;
      throw new EngineError(f.code, `ceremony ${progress.summary.tag} failed: ${f.reason}`);
    }
  }
}
