import { Args } from '@oclif/core';
import { DataCommand } from '../../ui/cli/index.js';

export default class CollectionInfo extends DataCommand<typeof CollectionInfo> {
  static override summary = "Show a collection's kind, revision and the blocks it is made of";
  static override description =
    'The revision is the number of the latest committed log entry; pass it to --at to read the ' +
    'collection as it was. The header, root and tail ids can be inspected with `block get`. ' +
    'An unknown name fails with NOT_FOUND (exit 4).';
  static override examples = [
    '<%= config.bin %> <%= command.id %> accounts',
    {
      description: 'Inspect the root block',
      command:
        '<%= config.bin %> block get $(<%= config.bin %> <%= command.id %> accounts --json | jq -r .root)',
    },
  ];
  static override args = {
    name: Args.string({ ignoreStdin: true, description: 'collection name', required: true }),
  };

  override async run(): Promise<void> {
    const info = await this.withDatabase((db) => db.collectionInfo(this.args.name));
    if (this.out.mode === 'json') {
      await this.out.json(info);
      return;
    }
    await this.out.table(
      ['FIELD', 'VALUE'],
      [
        ['name', info.name],
        ['kind', info.kind],
        ['rev', String(info.rev)],
        ['header', info.id],
        ['root', info.root],
        ['tail', info.tail],
        ['uncheckpointed', String(info.uncheckpointed)],
      ],
    );
  }
}
