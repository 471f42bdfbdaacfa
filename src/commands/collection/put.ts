import { Args } from '@oclif/core';
import { DataCommand, parseJsonArgument, transactOne } from '../../ui/cli/index.js';

export default class CollectionPut extends DataCommand<typeof CollectionPut> {
  static override summary = 'Store a JSON value under a key of a Tree';
  static override description =
    'Runs as a one-action transaction, committed durably before the command returns. VALUE must be ' +
    'JSON (quote strings: \'"text"\'); invalid JSON fails with BAD_INPUT and an over-large or ' +
    'too deeply nested value with TOO_LARGE (both exit 2), and nothing is written. ' +
    'With --json the output is {"collection","key","rev","trx"}.';
  static override examples = [
    `<%= config.bin %> <%= command.id %> accounts alice '{"balance":100}'`,
    {
      description: 'A plain string value',
      command: `<%= config.bin %> <%= command.id %> settings theme '"dark"'`,
    },
  ];
  static override args = {
    name: Args.string({ ignoreStdin: true, description: 'tree collection name', required: true }),
    key: Args.string({ ignoreStdin: true, description: 'key to write', required: true }),
    value: Args.string({ ignoreStdin: true, description: 'JSON value', required: true }),
  };

  override async run(): Promise<void> {
    const { name, key } = this.args;
    const value = parseJsonArgument(this.args.value, 'value');
    const { trx, rev } = await this.withDatabase((db) =>
      transactOne(db, { collection: name, op: 'put', key, value }),
    );
    if (this.out.mode === 'json') await this.out.json({ collection: name, key, rev, trx });
    else await this.out.say(`put ${key} in ${name}${rev === null ? '' : ` at revision ${rev}`}`);
  }
}
