import { Args, Flags } from '@oclif/core';
import {
  checkCertificateAlone,
  EngineError,
  limits,
  type CertificateCheck,
  type RevisionVerification,
} from '../../engine/index.js';
import {
  DataCommand,
  exitCodeFor,
  openLineInput,
  parseBlockIdArgument,
  splitLines,
  type InputLine,
} from '../../ui/cli/index.js';

/** One certificate of a --certificates input, checked. */
interface CertificateRecord extends CertificateCheck {
  readonly line: number;
  readonly collection: string | null;
  readonly lsn: number | null;
  readonly trxId: string | null;
  readonly decision: string | null;
}

export default class BlockVerify extends DataCommand<typeof BlockVerify> {
  static override summary =
    "Check a block's revisions against its collection's certified log, or commit certificates alone";
  static override description =
    'For each committed revision, finds the log entry that made it and verifies its commit certificate ' +
    "(a quorum of Ed25519 signatures of the log block's recorded members), offline. One record per " +
    'revision: {"rev","lsn","trxId","status","detail","signers"}; status is verified, invalid or ' +
    'unverifiable (entry not held here). Exits 0 when every revision verifies, 7 (integrity) otherwise, ' +
    'and 4 for an unknown block.\n\n' +
    'With --certificates FILE ("-" = stdin) instead of an ID, checks certificates with no data ' +
    'directory or network at all: each line is a result line of `optimystic tx --certificates` (every ' +
    'collection it committed in) or one certificate. One record per certificate: ' +
    '{"line","collection","lsn","trxId","decision","status","detail","signers","members"}. A certificate ' +
    'verifies when a majority of the members it names (a solo data dir: its one signer) signed its ' +
    'decision; that those are the members the log recorded for the collection is what verifying the log ' +
    'block by ID checks. Exits 0 when every certificate verifies, 7 otherwise.';
  static override examples = [
    '<%= config.bin %> <%= command.id %> ID',
    '<%= config.bin %> <%= command.id %> "$(<%= config.bin %> collection info accounts --json | jq -r .root)" --json',
    '<%= config.bin %> tx --certificates < transfers.ndjson > results.ndjson; <%= config.bin %> <%= command.id %> --certificates results.ndjson',
  ];
  static override args = {
    id: Args.string({
      description: 'block id (43 base64url characters)',
      required: false,
      ignoreStdin: true,
    }),
  };
  static override flags = {
    certificates: Flags.string({
      description: 'check the certificates in this file of tx --certificates results ("-" = stdin), offline',
      helpValue: 'FILE',
    }),
  };

  override async run(): Promise<void> {
    const { certificates } = this.flags;
    if (certificates !== undefined) {
      if (this.args.id !== undefined)
        throw new EngineError('BAD_INPUT', 'give a block ID or --certificates FILE, not both');
      await this.checkCertificates(certificates);
      return;
    }
    if (this.args.id === undefined)
      throw new EngineError(
        'BAD_INPUT',
        'give the block ID to verify (optimystic collection info NAME shows ids), or --certificates FILE',
      );
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

  private async checkCertificates(file: string): Promise<void> {
    const input = await openLineInput(
      file,
      '--certificates',
      'block verify --certificates reads result lines of `optimystic tx --certificates` (or certificates, one per line); pipe them in or give a file',
    );
    let count = 0;
    let failed = 0;
    async function* records(): AsyncGenerator<CertificateRecord> {
      for await (const line of splitLines(input, limits.txLineBytesMax)) {
        for (const record of certificateRecords(line)) {
          count++;
          if (record.status !== 'verified') failed++;
          yield record;
        }
      }
    }
    const stream = this.out.stream<CertificateRecord>(
      ['LINE', 'COLLECTION', 'LSN', 'TRX', 'STATUS', 'DETAIL'],
      (record) => [
        String(record.line),
        record.collection ?? '',
        record.lsn === null ? '' : String(record.lsn),
        record.trxId ?? '',
        record.status,
        record.detail ?? `signed by ${record.signers?.length ?? 0} of ${record.members?.length ?? 0}`,
      ],
    );
    await this.printStream(stream, records());
    if (count === 0)
      throw new EngineError(
        'BAD_INPUT',
        'no certificates in the input; run transactions with optimystic tx --certificates and give its output',
      );
    if (failed > 0) process.exitCode = exitCodeFor('BAD_CERTIFICATE');
  }
}

/** The certificates one input line holds, each checked: a tx result line's, or the line itself. */
function certificateRecords(line: InputLine): CertificateRecord[] {
  const unreadable = (detail: string): CertificateRecord[] => [
    {
      line: line.number,
      collection: null,
      lsn: null,
      trxId: null,
      decision: null,
      status: 'invalid',
      detail,
    },
  ];
  if (line.kind === 'too-large') return unreadable(`longer than ${limits.txLineBytesMax} bytes`);
  const text = line.bytes.toString('utf8');
  if (text.trim() === '') return [];
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return unreadable('not a JSON line');
  }
  const record = (certificate: unknown, collection: string | null): CertificateRecord => {
    const c = (typeof certificate === 'object' && certificate !== null ? certificate : {}) as Record<
      string,
      unknown
    >;
    return {
      line: line.number,
      collection: typeof c['collection'] === 'string' ? c['collection'] : collection,
      lsn: typeof c['lsn'] === 'number' ? c['lsn'] : null,
      trxId: typeof c['trxId'] === 'string' ? c['trxId'] : null,
      decision: typeof c['decision'] === 'string' ? c['decision'] : null,
      ...checkCertificateAlone(certificate),
    };
  };
  const result = value as { ok?: unknown; commit?: unknown; trx?: unknown };
  if (typeof value !== 'object' || value === null || !('ok' in result)) return [record(value, null)];
  if (result.ok !== true) return []; // a failed transaction committed nothing
  if (typeof result.commit !== 'object' || result.commit === null)
    return unreadable('a result line without "commit"');
  const out: CertificateRecord[] = [];
  for (const [collection, point] of Object.entries(result.commit as Record<string, unknown>)) {
    const certificate = (point as { certificate?: unknown } | null)?.certificate;
    if (certificate === undefined) {
      out.push({
        line: line.number,
        collection,
        lsn:
          typeof (point as { rev?: unknown } | null)?.rev === 'number'
            ? (point as { rev: number }).rev
            : null,
        trxId: typeof result.trx === 'string' ? result.trx : null,
        decision: null,
        status: 'unverifiable',
        detail: 'no certificate in this result; run tx with --certificates',
      });
    } else out.push(record(certificate, collection));
  }
  return out;
}
