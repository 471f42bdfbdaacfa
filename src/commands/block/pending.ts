import { Args } from '@oclif/core';
import { DataCommand, describeTransform, parseBlockIdArgument } from '../../ui/cli/index.js';

export default class BlockPending extends DataCommand<typeof BlockPending> {
  static override summary = 'Show transforms staged on a block that have not committed yet';
  static override description =
    'A transaction stages (pends) its change on every block it writes before committing; a pend that ' +
    'never commits is cancelled when it expires. Usually empty on an idle data directory. With --json ' +
    'the output is an array of {"trxId","blockId","collection","baseRev","transform","expiresAt"}.';
  static override examples = ['<%= config.bin %> <%= command.id %> ID'];
  static override args = {
    id: Args.string({ ignoreStdin: true, description: 'block id (43 base64url characters)', required: true }),
  };

  override async run(): Promise<void> {
    const id = parseBlockIdArgument(this.args.id);
    const pending = await this.withDatabase((db) => db.blockPending(id));
    if (this.out.mode === 'json') {
      await this.out.json(pending);
      return;
    }
    if (pending.length === 0 && this.out.mode === 'table') {
      await this.out.say('nothing pending on this block');
      return;
    }
    await this.out.table(
      ['TRX', 'BASE REV', 'EXPIRES', 'CHANGE'],
      pending.map((p) => [
        p.trxId,
        String(p.baseRev),
        new Date(p.expiresAt).toISOString(),
        describeTransform(p.transform),
      ]),
    );
  }
}
