import { Args, Flags } from '@oclif/core';
import type { Json, ScanOptions, TreeKey } from '../../engine/index.js';
import { DataCommand, jsonLine } from '../../ui/cli/index.js';

export default class CollectionScan extends DataCommand<typeof CollectionScan> {
  static override summary = 'Stream the entries of a Tree in key order';
  static override description =
    'Streams {"key","value"} records: NDJSON when piped or with --json, a table on a terminal. ' +
    'Bounds are inclusive; --reverse walks from the high end. With --at REV the scan sees the ' +
    'collection as of that revision. Ctrl-C stops the stream (exit 130).';
  static override examples = [
    '<%= config.bin %> <%= command.id %> accounts',
    {
      description: 'Keys from "a" to "m", at most 10',
      command: '<%= config.bin %> <%= command.id %> accounts --from a --to m --limit 10',
    },
    {
      description: 'The last 5 keys',
      command: '<%= config.bin %> <%= command.id %> accounts --reverse --limit 5',
    },
    { description: 'Values only', command: '<%= config.bin %> <%= command.id %> accounts | jq -c .value' },
  ];
  static override args = {
    name: Args.string({ ignoreStdin: true, description: 'tree collection name', required: true }),
  };
  static override flags = {
    from: Flags.string({ description: 'lowest key to include', helpValue: 'KEY' }),
    to: Flags.string({ description: 'highest key to include', helpValue: 'KEY' }),
    limit: Flags.integer({ description: 'stop after this many entries', min: 1, helpValue: 'N' }),
    reverse: Flags.boolean({ description: 'highest key first' }),
    at: Flags.integer({ description: 'read as of this collection revision', min: 0, helpValue: 'REV' }),
  };

  override async run(): Promise<void> {
    const { from, to, limit, reverse, at } = this.flags;
    const options: ScanOptions = {
      ...(from === undefined ? {} : { from }),
      ...(to === undefined ? {} : { to }),
      ...(limit === undefined ? {} : { limit }),
      ...(reverse ? { reverse } : {}),
      ...(at === undefined ? {} : { at }),
    };
    const stream = this.out.stream<{ readonly key: TreeKey; readonly value: Json }>(
      ['KEY', 'VALUE'],
      (entry) => [entry.key, jsonLine(entry.value)],
    );
    await this.withDatabase((db) => this.printStream(stream, db.scan(this.args.name, options)));
  }
}
