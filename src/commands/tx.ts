import { Flags } from '@oclif/core';
import { EngineError, limits } from '../engine/index.js';
import {
  DataCommand,
  exitCodeFor,
  jsonLine,
  openLineInput,
  progressWanted,
  runTxLines,
  splitLines,
  TxProgress,
  type InputLine,
} from '../ui/cli/index.js';

export default class Tx extends DataCommand<typeof Tx> {
  static override summary =
    'Run transactions: one JSON object per input line, one result line per transaction';
  static override description =
    'Reads stdin (or --file) and writes one JSON result line per input line, in input order, even ' +
    'when --concurrency runs several at once. Each line is one atomic transaction, for example:\n' +
    '  {"actions":[{"collection":"accounts","op":"put","key":"bob","value":{"balance":0}}],\n' +
    '   "expect":[{"collection":"accounts","key":"bob","exists":false}]}\n' +
    'Ops: get, put (value), del, incr (by; optional path, min, max; with no path the value itself is ' +
    'the number), merge (value), append (value), read (from, limit, reverse), scan (from, to, limit, ' +
    'reverse). See docs/cli.md for the details.\n\n' +
    'Each result line is {"ok":true,"trx","commit","results","attempts"} or ' +
    '{"ok":false,"error":{"code","message","action"}}. A line that is not valid UTF-8 JSON, names an ' +
    'unknown op or collection, uses the wrong collection kind, or is over a size or nesting limit gets ' +
    'an error line and writes nothing; the lines after it still run.\n\n' +
    'With --certificates, each collection in "commit" also carries its commit certificate: the log ' +
    "decision signed by a majority of the collection's tail group (a solo data dir: by its own identity). " +
    'Check them offline with `optimystic block verify --certificates FILE`.\n\n' +
    'When stderr is a terminal and stdout is not (results going to a file or a pipe), a progress line ' +
    'on stderr shows the transactions done, failed and per second, and a summary line ends the run ' +
    '(with the replays, when lines conflicted with each other and ran again).\n\n' +
    'Exit status: 0 when every line succeeded, otherwise the exit code of the first failed line (see ' +
    'docs/errors.md). No input at all is a usage error (exit 2).';
  static override examples = [
    {
      description: 'One transaction from the shell',
      command: `echo '{"actions":[{"collection":"accounts","op":"get","key":"alice"}]}' | <%= config.bin %> <%= command.id %>`,
    },
    {
      description: 'A file of transactions, 8 at a time',
      command: '<%= config.bin %> <%= command.id %> --file transfers.ndjson --concurrency 8',
    },
    {
      description: 'Keep the commit certificates, then check them',
      command:
        '<%= config.bin %> <%= command.id %> --file transfers.ndjson --certificates > results.ndjson && <%= config.bin %> block verify --certificates results.ndjson',
    },
  ];
  static override flags = {
    file: Flags.string({
      char: 'f',
      description: 'read transactions from this file instead of stdin ("-" = stdin)',
      helpValue: 'FILE',
    }),
    concurrency: Flags.integer({
      char: 'c',
      description: `transactions running at once (results stay in input order; at most ${limits.txConcurrencyMax})`,
      min: 1,
      max: limits.txConcurrencyMax,
      default: 1,
      helpValue: 'N',
    }),
    certificates: Flags.boolean({
      description:
        'include each committed collection\'s commit certificate in "commit" (see block verify --certificates)',
      default: false,
    }),
  };

  override async run(): Promise<void> {
    const input = await this.openInput();
    const lines = splitLines(input, limits.txLineBytesMax);
    const first = await lines.next();
    if (first.done === true) {
      throw new EngineError(
        'BAD_INPUT',
        'no transactions in the input; give one JSON object per line, e.g. echo \'{"actions":[…]}\' | optimystic tx',
      );
    }
    async function* allLines(head: InputLine): AsyncGenerator<InputLine> {
      yield head;
      yield* lines;
    }

    const { certificates } = this.flags;
    // Results going to a file or pipe while a person watches the terminal: show how far it got.
    const progress = progressWanted(process.stdout.isTTY, process.stderr.isTTY)
      ? new TxProgress((text) => process.stderr.write(text))
      : undefined;
    const summary = await this.withDatabase((db) =>
      runTxLines(allLines(first.value), (request) => db.transact(request, { certificates }), {
        concurrency: this.flags.concurrency,
        signal: this.interrupt.signal,
        emit: async (line) => {
          await this.out.lines([jsonLine(line)]);
          progress?.result(line.ok, line.ok ? line.attempts : 1);
        },
      }),
    ).catch((error: unknown) => {
      progress?.clear();
      throw error;
    });
    progress?.finish(summary.interrupted);
    if (summary.interrupted) {
      throw new EngineError(
        'INTERRUPTED',
        `interrupted after ${summary.lines} line(s); every printed result is final, later lines were not run`,
      );
    }
    if (summary.firstFailure !== undefined) process.exitCode = exitCodeFor(summary.firstFailure);
  }

  private openInput(): Promise<AsyncIterable<Buffer | string>> {
    return openLineInput(
      this.flags.file,
      '--file',
      'tx reads one JSON transaction per line from stdin or --file; pipe them in (… | optimystic tx) or pass --file FILE',
    );
  }
}
