import { Flags } from '@oclif/core';
import { EngineError } from '../../../engine/index.js';
import { KeygenCommand, keygenFlags, parseDuration, suiteAndPurpose } from '../../../ui/cli/keygen/index.js';

export default class KeygenCeremonyStart extends KeygenCommand<typeof KeygenCeremonyStart> {
  static override summary = 'Start a key ceremony among running nodes, named by their peer ids';
  static override description =
    'Run against the node on --data (it must be running: optimystic node start). That node coordinates: ' +
    'it asks every participant node for its ceremony card, proposes the ceremony to all of them over the ' +
    'network (protocol /optimystic/<network>/ceremony/1), and takes part itself. Nothing happens on a ' +
    'participant until its operator runs `optimystic keygen ceremony accept SESSION` there; once all have ' +
    'accepted, the nodes deal, respond, judge and confirm on their own, and each seals its share in its ' +
    'keystore exactly like the air-gapped ceremony.\n\n' +
    'Prints one line per step until the key is made; the last line is the group public key (--json: one ' +
    'NDJSON event per step). Ctrl-C stops printing; the ceremony goes on in the node.\n\n' +
    'The node needs the keystore passphrase: given at node start (OPTIMYSTIC_PASSPHRASE, --passphrase-file), ' +
    'or else asked here (--passphrase-file, OPTIMYSTIC_PASSPHRASE, a prompt) and handed to the node over ' +
    'its control socket; it keeps it in memory only.\n\n' +
    'Participants must accept before --expires: otherwise the ceremony fails with NO_QUORUM (exit 6), ' +
    'naming who did not. Afterwards, a participant silent for --phase-timeout is blamed and the ceremony ' +
    'restarts without it (NO_QUORUM when fewer than t would remain). A node that cannot be reached is ' +
    'UNAVAILABLE (6); a card or message that fails its signature is BAD_SIGNATURE (7).';
  static override examples = [
    {
      description: 'A 3-of-5 signing key with four other nodes',
      command:
        '<%= config.bin %> <%= command.id %> --participants 12D3KooWAb…,12D3KooWCd…,12D3KooWEf…,12D3KooWGh… --threshold 3 --label payments',
    },
    {
      description: 'A 2-of-3 decryption key; participants have 30 minutes to accept',
      command:
        '<%= config.bin %> <%= command.id %> --participants 12D3KooWAb…,12D3KooWCd… --threshold 2 --purpose decrypt --expires 30m',
    },
  ];
  static override flags = {
    participants: Flags.string({
      description:
        'peer ids of the participant nodes (repeat or comma-separate); this node takes part too. Share identifiers follow this order, this node first unless listed',
      multiple: true,
      required: true,
      helpValue: 'PEERID',
    }),
    threshold: keygenFlags.threshold,
    suite: keygenFlags.suite,
    purpose: keygenFlags.purpose,
    label: keygenFlags.label,
    expires: Flags.string({
      description: 'how long participants have to accept, and the ceremony to complete',
      default: '1h',
      helpValue: 'DURATION',
    }),
    'phase-timeout': Flags.string({
      description: 'how long a round waits for a silent participant before blaming it',
      default: '60s',
      helpValue: 'DURATION',
    }),
    wait: keygenFlags.wait,
    'passphrase-file': keygenFlags.passphraseFile,
  };

  override async run(): Promise<void> {
    const kind = suiteAndPurpose(this.flags.suite, this.flags.purpose);
    const participants = this.list(this.flags.participants);
    if (participants.length === 0)
      throw new EngineError('BAD_INPUT', '--participants needs at least one peer id');
    const expiresInMs = parseDuration(this.flags.expires, '--expires');
    const phaseTimeoutMs = parseDuration(this.flags['phase-timeout'], '--phase-timeout');
    await this.startNetworked(
      { wait: this.flags.wait, passphraseFile: this.flags['passphrase-file'] },
      (api) =>
        api.startCeremony({
          participants,
          threshold: this.flags.threshold,
          ...kind,
          label: this.flags.label,
          expiresInMs,
          phaseTimeoutMs,
        }),
    );
  }
}
