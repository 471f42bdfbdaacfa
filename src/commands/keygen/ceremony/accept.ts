import { Args, Flags } from '@oclif/core';
import { EngineError } from '../../../engine/index.js';
import {
  approvalLines,
  canPrompt,
  KeygenCommand,
  keygenFlags,
  pendingHint,
  promptLine,
} from '../../../ui/cli/keygen/index.js';

export default class KeygenCeremonyAccept extends KeygenCommand<typeof KeygenCeremonyAccept> {
  static override summary = 'Accept a key ceremony proposed to this node by another running node';
  static override description =
    'A ceremony started with `keygen ceremony start` on another node reaches this node (running on ' +
    '--data) and waits there: nothing is sent on its behalf until its operator accepts it here. The ' +
    "node's log, `keygen ceremony list` (phase proposed) and the coordinator's output name the session. " +
    'This command shows the proposal on stderr (kind, suite, t of n, label, expiry, every member by its ' +
    'node), asks on a terminal (unless --yes; elsewhere running the command is the acceptance), accepts ' +
    'it, and follows the ceremony until the key is made, one line per step (--json: NDJSON ' +
    'events); the last line is the group public key. The share is sealed in this data directory like ' +
    'any other: `keygen list` shows the key.\n\n' +
    'SESSION is the tag the coordinator printed (or any prefix of it, or of the session id). Refuse with ' +
    '`keygen ceremony decline SESSION --reason TEXT`. The node needs the keystore passphrase: given at ' +
    'node start, or else asked here and handed to the node over its control socket (memory only).';
  static override examples = [
    '<%= config.bin %> <%= command.id %> 0f717759a0fa',
    {
      description: 'Accept and return at once; the node goes on by itself',
      command: '<%= config.bin %> <%= command.id %> 0f717759a0fa --no-wait',
    },
  ];
  static override args = {
    session: Args.string({
      ignoreStdin: true,
      description: 'the ceremony: its tag, or the first characters of it',
    }),
  };
  static override flags = {
    yes: Flags.boolean({
      char: 'y',
      description: 'accept without asking on a terminal (the proposal is still shown)',
    }),
    wait: keygenFlags.wait,
    'passphrase-file': keygenFlags.passphraseFile,
  };

  override async run(): Promise<void> {
    await this.withCeremonies(
      { unlock: true, passphraseFile: this.flags['passphrase-file'] },
      async (api) => {
        const session = this.args.session ?? (await pendingHint(api, 'accept'));
        // What is accepted, shown first (on stderr): every member by its node.
        const proposed = await firstEvent(api.follow(session));
        if (proposed?.event === 'proposed' && proposed.summary !== undefined) {
          const nodes = proposed.nodes ?? {};
          const summary = proposed.summary;
          const lines = approvalLines(
            {
              kind: 'ceremony',
              ceremony: {
                ...summary,
                proposer: `node ${nodes[summary.proposer] ?? summary.proposer}`,
                members: summary.members.map((m) => ({
                  ...m,
                  peerId: `node ${nodes[m.peerId] ?? m.peerId}`,
                })),
              },
            },
            Date.now(),
          );
          if (!this.jsonEnabled() || canPrompt()) process.stderr.write(`${lines.join('\n')}\n`);
          if (!this.flags.yes && canPrompt()) {
            const answer = (await promptLine('Accept? y = accept, anything else = not now: ')).toLowerCase();
            if (answer !== 'y' && answer !== 'yes')
              throw new EngineError(
                'BAD_INPUT',
                `not accepted; run again to accept, or refuse with: optimystic keygen ceremony decline ${proposed.tag} --reason TEXT`,
              );
          }
        }
        const accepted = await api.decide(session, { approve: true });
        if (this.flags.wait) await this.followCeremony(api, accepted.session);
        else if (this.out.mode === 'json') await this.out.json(accepted);
        else await this.out.lines([`accepted ceremony ${accepted.tag}; the node takes part on its own`]);
      },
    );
  }
}

async function firstEvent<T>(events: AsyncIterable<T>): Promise<T | undefined> {
  for await (const event of events) return event;
  return undefined;
}
