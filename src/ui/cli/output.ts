import { once } from 'node:events';
import chalk, { type ChalkInstance } from 'chalk';

/**
 * How a command prints its result:
 * - `json`: --json. A single JSON value for one-shot commands, NDJSON (one value per line) for streams.
 * - `table`: stdout is a terminal. Aligned columns with a header, and colour.
 * - `plain`: stdout is a pipe or file. Tab-separated lines without a header for one-shot commands;
 *   NDJSON for streams, so `scan | jq` works without --json.
 */
export type OutputMode = 'json' | 'table' | 'plain';

export function outputMode(json: boolean, isTTY: boolean): OutputMode {
  if (json) return 'json';
  return isTTY ? 'table' : 'plain';
}

/** Gap between table columns. */
const columnGap = '  ';
/** Narrowest the last column is squeezed to when a terminal is narrow; below it, lines just wrap. */
const lastColumnMinChars = 16;

export interface TableOptions {
  readonly color: ChalkInstance;
  /** Terminal width; the last column is truncated with an ellipsis to fit it. */
  readonly widthMax?: number | undefined;
  /** Columns already printed widths from earlier batches of the same stream (kept, never shrunk). */
  readonly widths?: readonly number[];
  readonly header?: boolean;
}

/** Widths of each column over a header and rows. */
export function columnWidths(
  columns: readonly string[],
  rows: readonly (readonly string[])[],
  base: readonly number[] = [],
): number[] {
  return columns.map((column, i) =>
    Math.max(base[i] ?? 0, column.length, ...rows.map((row) => (row[i] ?? '').length)),
  );
}

function truncate(text: string, width: number): string {
  if (text.length <= width) return text;
  return width <= 1 ? '…' : `${text.slice(0, width - 1)}…`;
}

/** Aligned table lines (header first, in bold) for a terminal. Cells are plain text. */
export function formatTable(
  columns: readonly string[],
  rows: readonly (readonly string[])[],
  options: TableOptions,
): string[] {
  const widths = options.widths ? [...options.widths] : columnWidths(columns, rows);
  const last = columns.length - 1;
  const leading = widths.slice(0, last).reduce((sum, width) => sum + width + columnGap.length, 0);
  const lastWidth =
    options.widthMax !== undefined
      ? Math.max(lastColumnMinChars, options.widthMax - leading)
      : Number.POSITIVE_INFINITY;
  const render = (cells: readonly string[], style: (text: string, column: number) => string): string =>
    cells
      .map((cell, i) =>
        i === last ? style(truncate(cell, lastWidth), i) : style(cell.padEnd(widths[i] ?? 0), i),
      )
      .join(columnGap)
      .trimEnd();
  const lines: string[] = [];
  if (options.header !== false) lines.push(render(columns, (text) => options.color.bold(text)));
  for (const row of rows) lines.push(render(row, (text, i) => (i === 0 ? options.color.cyan(text) : text)));
  return lines;
}

/** A cell of tab-separated output: tabs, newlines and backslashes are escaped so each row stays one line. */
export function tsvCell(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\r/g, '\\r').replace(/\n/g, '\\n');
}

export function formatTsv(rows: readonly (readonly string[])[]): string[] {
  return rows.map((row) => row.map(tsvCell).join('\t'));
}

/** A JSON value as one line of text (NDJSON record, table cell, `--json` output when piped). */
export function jsonLine(value: unknown): string {
  return JSON.stringify(value) ?? 'null';
}

/**
 * Thrown by Output when the reader of stdout has gone away (EPIPE, as in `scan | head -1`). Commands
 * stop and close cleanly; DataCommand exits quietly, since nobody is left to read a message.
 */
export class OutputClosed extends Error {
  constructor() {
    super('stdout was closed by its reader');
    this.name = 'OutputClosed';
  }
}

/** The writable side Output prints to; process.stdout in the CLI, a collecting stream in tests. */
export interface OutputSink extends NodeJS.EventEmitter {
  write(chunk: string): boolean;
  readonly isTTY?: boolean | undefined;
  readonly columns?: number | undefined;
}

/** Prints a command's results in the chosen mode, honouring back-pressure on large outputs. */
export class Output {
  readonly mode: OutputMode;
  private readonly sink: OutputSink;
  private readonly color: ChalkInstance;

  private closed = false;

  constructor(mode: OutputMode, sink: OutputSink = process.stdout, color: ChalkInstance = chalk) {
    this.mode = mode;
    this.sink = sink;
    this.color = color;
    sink.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') this.closed = true;
    });
  }

  /** Writes lines, waiting for the sink to drain when it asks to. */
  async lines(lines: readonly string[]): Promise<void> {
    if (lines.length === 0) return;
    if (this.closed) throw new OutputClosed();
    if (this.sink.write(`${lines.join('\n')}\n`)) return;
    try {
      await once(this.sink, 'drain');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EPIPE') throw new OutputClosed();
      throw error;
    }
  }

  /** One JSON value: indented on a terminal, one line otherwise. */
  async json(value: unknown): Promise<void> {
    const text = this.sink.isTTY === true ? JSON.stringify(value, null, 2) : jsonLine(value);
    await this.lines([text ?? 'null']);
  }

  /**
   * A table: aligned with a header on a terminal, tab-separated without a header when piped. Cells are
   * never cut here (they hold ids people copy); only streams of arbitrary values are fitted to the width.
   */
  async table(columns: readonly string[], rows: readonly (readonly string[])[]): Promise<void> {
    if (this.mode === 'table') {
      await this.lines(formatTable(columns, rows, { color: this.color }));
    } else {
      await this.lines(formatTsv(rows));
    }
  }

  /**
   * Labelled values (a status, an identity): aligned `Label  value` lines with bold labels on a
   * terminal, `label<TAB>value` lines when piped. A value with several lines continues under itself.
   */
  async fields(rows: readonly (readonly [string, string])[]): Promise<void> {
    if (this.mode === 'table') {
      const width = Math.max(0, ...rows.map(([label]) => label.length));
      const lines: string[] = [];
      for (const [label, value] of rows) {
        const [first = '', ...rest] = value.split('\n');
        lines.push(`${this.color.bold(label.padEnd(width))}${columnGap}${first}`.trimEnd());
        for (const line of rest) lines.push(`${' '.repeat(width)}${columnGap}${line}`);
      }
      await this.lines(lines);
    } else {
      await this.lines(
        formatTsv(rows.map(([label, value]) => [label.toLowerCase().replace(/\s+/g, '_'), value])),
      );
    }
  }

  /** A short human sentence, shown in table and plain modes (never in json mode). */
  async say(text: string): Promise<void> {
    if (this.mode !== 'json') await this.lines([text]);
  }

  /**
   * Starts a stream of records: NDJSON in json and plain modes, a table in batches on a terminal, its
   * last column cut to the terminal width (the full record is one `--json` away).
   */
  stream<T>(columns: readonly string[], toRow: (record: T) => readonly string[]): RecordStream<T> {
    // A pseudo-terminal can report 0 columns: then nothing is cut.
    const width = this.sink.columns !== undefined && this.sink.columns > 0 ? this.sink.columns : undefined;
    return new RecordStream(this, columns, toRow, this.color, width);
  }
}

/** Rows a terminal stream buffers before printing an aligned batch. */
const streamBatchRows = 100;

export class RecordStream<T> {
  private readonly output: Output;
  private readonly columns: readonly string[];
  private readonly toRow: (record: T) => readonly string[];
  private readonly color: ChalkInstance;
  private readonly widthMax: number | undefined;
  private batch: (readonly string[])[] = [];
  private widths: number[] = [];
  private headerShown = false;
  count = 0;

  constructor(
    output: Output,
    columns: readonly string[],
    toRow: (record: T) => readonly string[],
    color: ChalkInstance,
    widthMax: number | undefined,
  ) {
    this.output = output;
    this.columns = columns;
    this.toRow = toRow;
    this.color = color;
    this.widthMax = widthMax;
  }

  async push(record: T): Promise<void> {
    this.count++;
    if (this.output.mode !== 'table') {
      await this.output.lines([jsonLine(record)]);
      return;
    }
    this.batch.push(this.toRow(record));
    if (this.batch.length >= streamBatchRows) await this.flush();
  }

  /** Prints buffered terminal rows now (a follower calls this after each poll). */
  async flush(): Promise<void> {
    if (this.batch.length === 0) return;
    this.widths = columnWidths(this.columns, this.batch, this.widths);
    const lines = formatTable(this.columns, this.batch, {
      color: this.color,
      widthMax: this.widthMax,
      widths: this.widths,
      header: !this.headerShown,
    });
    this.headerShown = true;
    this.batch = [];
    await this.output.lines(lines);
  }

  async end(): Promise<void> {
    await this.flush();
    if (this.count === 0 && this.output.mode === 'table') await this.output.lines([this.color.dim('(none)')]);
  }
}
