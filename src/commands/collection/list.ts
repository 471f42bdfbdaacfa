import { DataCommand } from '../../ui/cli/index.js';

export default class CollectionList extends DataCommand<typeof CollectionList> {
  static override summary = 'List the collections in the data directory';
  static override description =
    'On a terminal, a table of name, kind and revision. Piped, one tab-separated line per collection ' +
    '(name, kind, revision). With --json, an array of collection info objects.';
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    { description: 'Names only, for scripts', command: '<%= config.bin %> <%= command.id %> | cut -f1' },
  ];

  override async run(): Promise<void> {
    const collections = await this.withDatabase((db) => db.listCollections());
    if (this.out.mode === 'json') {
      await this.out.json(collections);
      return;
    }
    if (collections.length === 0 && this.out.mode === 'table') {
      await this.out.say(
        'no collections yet; create one with: optimystic collection create NAME --type tree',
      );
      return;
    }
    await this.out.table(
      ['NAME', 'KIND', 'REV'],
      collections.map((c) => [c.name, c.kind, String(c.rev)]),
    );
  }
}
