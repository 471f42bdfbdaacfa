import { Args, Flags } from '@oclif/core';
import { EngineError } from '../../engine/index.js';
import { DataCommand, jsonLine } from '../../ui/cli/index.js';

export default class CollectionGet extends DataCommand<typeof CollectionGet> {
  static override summary = 'Read the value stored under a key of a Tree';
  static override description =
    'Prints the value as JSON. A key that is not there fails with NOT_FOUND (exit 4), so scripts can ' +
    'test for it. With --at REV the read sees the collection as of that revision (time travel). ' +
    'With --json the output is {"key","found","value","rev"}, where rev is the revision the read saw.';
  static override examples = [
    '<%= config.bin %> <%= command.id %> accounts alice',
    {
      description: 'As of collection revision 3',
      command: '<%= config.bin %> <%= command.id %> accounts alice --at 3',
    },
  ];
  static override args = {
    name: Args.string({ ignoreStdin: true, description: 'tree collection name', required: true }),
    key: Args.string({ ignoreStdin: true, description: 'key to read', required: true }),
  };
  static override flags = {
    at: Flags.integer({ description: 'read as of this collection revision', min: 0, helpValue: 'REV' }),
  };

  override async run(): Promise<void> {
    const { name, key } = this.args;
    const at = this.flags.at;
    const result = await this.withDatabase((db) => db.get(name, key, at === undefined ? {} : { at }));
    if (!result.found) {
      throw new EngineError(
        'NOT_FOUND',
        `no key ${JSON.stringify(key)} in ${name}${at === undefined ? '' : ` at revision ${at}`}; list keys with: optimystic collection scan ${name}`,
      );
    }
    if (this.out.mode === 'json') await this.out.json(result);
    else if (this.out.mode === 'table') await this.out.json(result.value);
    else await this.out.lines([jsonLine(result.value)]);
  }
}
