import { Args, Flags } from '@oclif/core';
import { DataCommand, parseBlockIdArgument } from '../../ui/cli/index.js';

export default class BlockGet extends DataCommand<typeof BlockGet> {
  static override summary = 'Show a raw block, latest or at a past revision';
  static override description =
    'Blocks are what collections are made of (header, log, tree branches and leaves). Block revisions ' +
    'count from 1 per block; see them with `block history`. A block that does not exist, or a revision ' +
    'it never had, fails with NOT_FOUND (exit 4). Also shows which peers hold the block (its cluster: ' +
    'the --cluster-size peers nearest the block) and the revision each holds. With --json the output is ' +
    '{"id","rev","lsn","trxId","block","holders":[{"peer","rev"}]}; block is null when the block was ' +
    'deleted at that revision; a holder that did not answer has rev null and an error.';
  static override examples = [
    '<%= config.bin %> <%= command.id %> $(<%= config.bin %> collection info accounts --json | jq -r .root)',
    {
      description: 'The block as of its second revision',
      command: '<%= config.bin %> <%= command.id %> ID --at 2',
    },
  ];
  static override args = {
    id: Args.string({ ignoreStdin: true, description: 'block id (43 base64url characters)', required: true }),
  };
  static override flags = {
    at: Flags.integer({ description: 'block revision to show', min: 1, helpValue: 'REV' }),
  };

  override async run(): Promise<void> {
    const id = parseBlockIdArgument(this.args.id);
    const { at } = this.flags;
    const [state, holders] = await this.withDatabase(
      async (db) =>
        [await db.block(id, at === undefined ? {} : { rev: at }), await db.blockHolders(id)] as const,
    );
    const shown = {
      id: state.id,
      rev: state.rev,
      lsn: state.lsn,
      trxId: state.trxId,
      block: state.block ?? null,
      holders,
    };
    if (this.out.mode === 'json') {
      await this.out.json(shown);
      return;
    }
    await this.out.table(
      ['FIELD', 'VALUE'],
      [
        ['id', state.id],
        ['rev', String(state.rev)],
        ['lsn', String(state.lsn)],
        ['trx', state.trxId],
        ['type', state.block?.header.type ?? '(deleted)'],
        ['collection', state.block?.header.collection ?? ''],
        ...holders.map((holder, i): [string, string] => [
          i === 0 ? 'held by' : '',
          `${holder.peer}  ${holder.rev === null ? (holder.error ?? 'not held') : `rev ${holder.rev}`}`,
        ]),
      ],
    );
    if (state.block !== undefined) await this.out.json(state.block);
  }
}
