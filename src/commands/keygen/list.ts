import { checkActivation, EngineError, listCeremonies } from '../../engine/index.js';
import { KeygenCommand } from '../../ui/cli/keygen/index.js';

export default class KeygenList extends KeygenCommand<typeof KeygenList> {
  static override summary = 'List the threshold keys in this data directory';
  static override description =
    'One row per key: id, label, purpose, suite, threshold (t of n), and status — active (this data ' +
    'directory holds a share and the activation certificate verifies), public (no share here: a holder ' +
    'that left in a reshare), or damaged (key.json fails its checks; see keygen show). Reads only public ' +
    'files: no passphrase is needed. Ceremonies still running are counted below the table (keygen ' +
    'ceremony list shows them). --json prints an array of {keyId,label,purpose,suite,threshold,holders,' +
    'identifier,status,publicKey}.';
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    { description: 'Key ids only, for scripts', command: '<%= config.bin %> <%= command.id %> | cut -f1' },
  ];

  override async run(): Promise<void> {
    const store = this.keyStore();
    const rows = [];
    for (const entry of await store.listKeys()) {
      if (entry.key === null) {
        rows.push({
          keyId: entry.keyId,
          label: '',
          purpose: '',
          suite: '',
          threshold: null,
          holders: null,
          identifier: null,
          status: 'damaged',
          publicKey: null,
        });
        continue;
      }
      const k = entry.key;
      let status = entry.hasShare ? 'active' : 'public';
      try {
        checkActivation(k.activation.proposal, k.publicKey, k.activation.confirmations);
      } catch (error) {
        if (!(error instanceof EngineError)) throw error;
        status = 'damaged';
      }
      rows.push({
        keyId: k.publicKey.keyId,
        label: k.publicKey.label,
        purpose: k.publicKey.purpose,
        suite: k.publicKey.suite,
        threshold: k.publicKey.threshold,
        holders: k.publicKey.holders.length,
        identifier: entry.hasShare ? (k.holder?.identifier ?? null) : null,
        status,
        publicKey: Buffer.from(k.publicKey.groupKey, 'base64url').toString('hex'),
      });
    }
    if (this.out.mode === 'json') {
      await this.out.json(rows);
      return;
    }
    if (rows.length === 0 && this.out.mode === 'table') {
      await this.out.say(
        'no threshold keys yet; start a ceremony with: optimystic keygen ceremony card --out DIR',
      );
    } else {
      await this.out.table(
        ['KEY', 'LABEL', 'PURPOSE', 'SUITE', 'T/N', 'STATUS'],
        rows.map((r) => [
          r.keyId,
          r.label,
          r.purpose,
          r.suite,
          r.threshold === null ? '' : `${r.threshold}/${r.holders}`,
          r.status,
        ]),
      );
    }
    const running = (await listCeremonies(store)).filter(
      (c) => c.phase !== 'complete' && c.phase !== 'failed',
    );
    if (running.length > 0 && this.out.mode === 'table')
      await this.out.say(
        `${running.length} ceremon${running.length === 1 ? 'y' : 'ies'} in progress: optimystic keygen ceremony list`,
      );
  }
}
