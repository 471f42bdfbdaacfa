import { checkActivation, type StoredKey } from '../../engine/index.js';
import { keyArg, KeygenCommand } from '../../ui/cli/keygen/index.js';

export default class KeygenShow extends KeygenCommand<typeof KeygenShow> {
  static override summary = 'Show a threshold key: public key, suite, t of n, holders, purpose, status';
  static override description =
    'KEY is a key id, a unique prefix of one (4 characters or more), or a label. The activation ' +
    "certificate (every participant's signed confirmation of the ceremony transcript) is checked: a key " +
    'whose certificate does not verify fails with BAD_CERTIFICATE (exit 7). No passphrase is needed.\n\n' +
    'For ed25519-sha512 keys the public key is an ordinary Ed25519 public key: group signatures verify ' +
    'with any Ed25519 verifier. --json prints the summary with the full public key JSON under "key", so ' +
    '`keygen show KEY --json > key.json` gives a file that `keygen encrypt key.json` accepts anywhere.';
  static override examples = [
    '<%= config.bin %> <%= command.id %> payments',
    {
      description: 'Export the public key',
      command: '<%= config.bin %> <%= command.id %> Qm3x --json > payments.key.json',
    },
  ];
  static override args = {
    key: keyArg,
  };

  override async run(): Promise<void> {
    const store = this.keyStore();
    const key = await store.resolveKey(this.args.key);
    const certificate = checkActivation(key.activation.proposal, key.publicKey, key.activation.confirmations);
    const hasShare = await store.hasShare(key.publicKey.keyId);
    const view = describe(key, hasShare, certificate.attempt);
    if (this.out.mode === 'json') {
      await this.out.json({ ...view, key: key.publicKey });
      return;
    }
    const fields: [string, string][] = [
      ['key', view.keyId],
      ['label', view.label === '' ? '(none)' : view.label],
      ['purpose', view.purpose],
      ['suite', view.suite],
      ['threshold', `${view.threshold} of ${view.holders.length}`],
      [
        'public key',
        `${view.publicKey.hex}${view.suite === 'ed25519-sha512' ? '  (an ordinary Ed25519 public key)' : ''}`,
      ],
      [
        'status',
        view.status === 'active'
          ? `active: this data directory holds share ${view.identifier}`
          : 'public: this data directory holds no share',
      ],
      [
        'made by',
        `${view.ceremony.kind} ceremony ${view.ceremony.session.slice(0, 12)}…, confirmed by all ${view.ceremony.confirmations}`,
      ],
      ['installed', new Date(view.installedAtMs).toISOString()],
    ];
    if (this.out.mode === 'plain') {
      await this.out.lines([
        ...fields.map(([name, value]) => `${name}\t${value}`),
        ...view.holders.map((h) => `holder\t${h.identifier}\t${h.peerId}${h.you ? '\tyou' : ''}`),
      ]);
      return;
    }
    const width = Math.max(...fields.map(([name]) => name.length));
    const lines = fields.map(([name, value]) => `${name.padEnd(width)}  ${value}`);
    lines.push('holders');
    for (const h of view.holders)
      lines.push(`  ${String(h.identifier).padStart(2)}  ${h.peerId}${h.you ? '  (you)' : ''}`);
    await this.out.lines(lines);
  }
}

function describe(key: StoredKey, hasShare: boolean, attempt: number) {
  const pk = key.publicKey;
  const mine = hasShare ? key.holder : null;
  const groupKey = Buffer.from(pk.groupKey, 'base64url');
  return {
    keyId: pk.keyId,
    label: pk.label,
    purpose: pk.purpose,
    suite: pk.suite,
    threshold: pk.threshold,
    publicKey: { hex: groupKey.toString('hex'), base64url: pk.groupKey },
    status: mine === null ? 'public' : 'active',
    identifier: mine?.identifier ?? null,
    holders: pk.holders.map((h) => ({
      identifier: h.identifier,
      peerId: h.peerId,
      you: h.identifier === mine?.identifier,
    })),
    ceremony: {
      kind: key.activation.proposal.proposal.kind,
      session: pk.session,
      attempt,
      confirmations: key.activation.confirmations.length,
    },
    installedAtMs: key.installedAtMs,
  };
}
