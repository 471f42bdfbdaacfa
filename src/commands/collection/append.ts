import { Args } from '@oclif/core';
import { DataCommand, parseJsonArgument, transactOne } from '../../ui/cli/index.js';

export default class CollectionAppend extends DataCommand<typeof CollectionAppend> {
  static override summary = 'Append a JSON entry to a Diary';
  static override description =
    'Runs as a one-action transaction and prints the index the entry landed at (indexes start at 0). ' +
    'Invalid JSON fails with BAD_INPUT, an over-large or too deeply nested entry with TOO_LARGE, and ' +
    'a Tree instead of a Diary with WRONG_TYPE (all exit 2); nothing is written. ' +
    'With --json the output is {"collection","index","rev","trx"}.';
  static override examples = [
    `<%= config.bin %> <%= command.id %> transfers '{"from":"alice","to":"bob","amount":10}'`,
  ];
  static override args = {
    name: Args.string({ ignoreStdin: true, description: 'diary collection name', required: true }),
    value: Args.string({ ignoreStdin: true, description: 'JSON entry', required: true }),
  };

  override async run(): Promise<void> {
    const { name } = this.args;
    const value = parseJsonArgument(this.args.value, 'entry');
    const { trx, rev, result } = await this.withDatabase((db) =>
      transactOne(db, { collection: name, op: 'append', value }),
    );
    if (this.out.mode === 'json') await this.out.json({ collection: name, index: result.index, rev, trx });
    else await this.out.say(`appended to ${name} at index ${result.index}`);
  }
}
