import { Args, Flags } from '@oclif/core';
import { DataCommand } from '../../ui/cli/index.js';

export default class CollectionCreate extends DataCommand<typeof CollectionCreate> {
  static override summary = 'Create a Tree (ordered key → JSON map) or a Diary (append-only list)';
  static override description =
    'The name is how every other command and transaction finds the collection. Creating a name that ' +
    'already exists fails with EXISTS (exit 2) and changes nothing.';
  static override examples = [
    {
      description: 'An ordered key/value collection',
      command: '<%= config.bin %> <%= command.id %> accounts --type tree',
    },
    {
      description: 'An append-only log',
      command: '<%= config.bin %> <%= command.id %> transfers --type diary',
    },
  ];
  static override args = {
    name: Args.string({ ignoreStdin: true, description: 'collection name', required: true }),
  };
  static override flags = {
    type: Flags.option({
      options: ['tree', 'diary'] as const,
      description: 'kind of collection',
      required: true,
    })(),
  };

  protected override get createsDatabase(): boolean {
    return true;
  }

  override async run(): Promise<void> {
    const info = await this.withDatabase((db) => db.createCollection(this.args.name, this.flags.type));
    if (this.out.mode === 'json') await this.out.json(info);
    else await this.out.say(`created ${info.kind} collection ${info.name}`);
  }
}
