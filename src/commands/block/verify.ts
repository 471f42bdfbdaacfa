import { Args } from '@oclif/core';
import type { RevisionVerification } from '../../engine/index.js';
import { DataCommand, exitCodeFor, parseBlockIdArgument } from '../../ui/cli/index.js';

export default class BlockVerify extends DataCommand<typeof BlockVerify> {
  static override summary = "Check every revision of a block against its collection's certified log";
  static override description =
    'For each committed revision, finds the log entry that made it and verifies its commit certificate ' +
    "(a quorum of Ed25519 signatures of the log block's recorded members), offline. One record per " +
    'revision: {"rev","lsn","trxId","status","detail","signers"}; status is verified, invalid or ' +
    'unverifiable (entry not held here). Exits 0 when every revision verifies, 7 (integrity) otherwise, ' +
    'and 4 for an unknown block.';
  static override examples = [
    '<%= config.bin %> <%= command.id %> ID',
    '<%= config.bin %> <%= command.id %> "$(<%= config.bin %> collection info accounts --json | jq -r .root)" --json',
  ];
  static override args = {
    id: Args.string({ description: 'block id (43 base64url characters)', required: true }),
  };

  override async run(): Promise<void> {
    const id = parseBlockIdArgument(this.args.id);
    const verification = await this.withDatabase((db) => db.verifyBlock(id));
    if (this.out.mode === 'json') {
      await this.out.json(verification);
    } else {
      const stream = this.out.stream<RevisionVerification>(
        ['REV', 'LSN', 'TRX', 'STATUS', 'DETAIL'],
        (revision) => [
          String(revision.rev),
          String(revision.lsn),
          revision.trxId,
          revision.status,
          revision.detail ?? '',
        ],
      );
      await this.printStream(stream, verification.revisions);
    }
    if (!verification.verified) process.exitCode = exitCodeFor('BAD_CERTIFICATE');
  }
}
