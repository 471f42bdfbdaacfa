import { Args } from '@oclif/core';
import { DataCommand, transactOne } from '../../ui/cli/index.js';

export default class CollectionDel extends DataCommand<typeof CollectionDel> {
  static override summary = 'Delete a key from a Tree';
  static override description =
    'Runs as a one-action transaction. Deleting a key that is not there succeeds and reports ' +
    'deleted: false. With --json the output is {"collection","key","deleted","rev","trx"}.';
  static override examples = ['<%= config.bin %> <%= command.id %> accounts alice'];
  static override args = {
    name: Args.string({ ignoreStdin: true, description: 'tree collection name', required: true }),
    key: Args.string({ ignoreStdin: true, description: 'key to delete', required: true }),
  };

  override async run(): Promise<void> {
    const { name, key } = this.args;
    const { trx, rev, result } = await this.withDatabase((db) =>
      transactOne(db, { collection: name, op: 'del', key }),
    );
    if (this.out.mode === 'json')
      await this.out.json({ collection: name, key, deleted: result.deleted, rev, trx });
    else
      await this.out.say(
        result.deleted ? `deleted ${key} from ${name}` : `${key} was not in ${name}; nothing to delete`,
      );
  }
}
