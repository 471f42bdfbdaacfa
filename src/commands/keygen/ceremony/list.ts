import { listCeremonies } from '../../../engine/index.js';
import { describeCeremony, KeygenCommand } from '../../../ui/cli/keygen/index.js';

export default class KeygenCeremonyList extends KeygenCommand<typeof KeygenCeremonyList> {
  static override summary = 'List the key ceremonies this data directory takes or took part in';
  static override description =
    'Newest first: session tag (the S in exchange file names), what the ceremony makes, its phase ' +
    '(proposed, dealing, responding, confirming, complete, failed), attempt, and the key it made. Reads ' +
    'only public records: no passphrase is needed. --json prints the full records, proposals included.';
  static override examples = ['<%= config.bin %> <%= command.id %>'];

  override async run(): Promise<void> {
    const records = await listCeremonies(this.keyStore());
    if (this.out.mode === 'json') {
      await this.out.json(records);
      return;
    }
    if (records.length === 0 && this.out.mode === 'table') {
      await this.out.say(
        'no ceremonies yet; propose one with: optimystic keygen ceremony propose --cards DIR --threshold T --out DIR',
      );
      return;
    }
    await this.out.table(
      ['SESSION', 'WHAT', 'PHASE', 'ATTEMPT', 'KEY', 'UPDATED'],
      records.map((r) => [
        r.summary.tag,
        describeCeremony(r.summary),
        r.failure === null ? r.phase : `failed (${r.failure.code})`,
        String(r.attempt),
        r.keyId ?? '',
        new Date(r.updatedAtMs).toISOString(),
      ]),
    );
  }
}
