import { Args } from '@oclif/core';
import type { BlockRevision } from '../../engine/index.js';
import { DataCommand, describeTransform, parseBlockIdArgument } from '../../ui/cli/index.js';

export default class BlockHistory extends DataCommand<typeof BlockHistory> {
  static override summary = "Stream a block's committed revisions, oldest first";
  static override description =
    'One record per revision: {"rev","lsn","trxId","transform"}, as NDJSON when piped or with ' +
    '--json, a table on a terminal. lsn is the log entry (collection revision) that made it. ' +
    'An unknown block fails with NOT_FOUND (exit 4).';
  static override examples = [
    '<%= config.bin %> <%= command.id %> ID',
    '<%= config.bin %> <%= command.id %> ID | jq -c .transform',
  ];
  static override args = {
    id: Args.string({ ignoreStdin: true, description: 'block id (43 base64url characters)', required: true }),
  };

  override async run(): Promise<void> {
    const id = parseBlockIdArgument(this.args.id);
    const revisions = await this.withDatabase((db) => db.blockHistory(id));
    const stream = this.out.stream<BlockRevision>(['REV', 'LSN', 'TRX', 'CHANGE'], (revision) => [
      String(revision.rev),
      String(revision.lsn),
      revision.trxId,
      describeTransform(revision.transform),
    ]);
    await this.printStream(stream, revisions);
  }
}
