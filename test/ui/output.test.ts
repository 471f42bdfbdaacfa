import { EventEmitter } from 'node:events';
import { expect } from 'chai';
import { Chalk } from 'chalk';
import {
  formatTable,
  formatTsv,
  jsonLine,
  Output,
  OutputClosed,
  outputMode,
  type OutputSink,
} from '../../src/ui/cli/output.js';

const plainColor = new Chalk({ level: 0 });

/** Collects what is written; can pretend to be a terminal and to apply back-pressure. */
class FakeSink extends EventEmitter implements OutputSink {
  text = '';
  writes = 0;
  constructor(
    readonly isTTY: boolean,
    readonly columns: number | undefined = undefined,
    private readonly pressure = false,
  ) {
    super();
  }
  write(chunk: string): boolean {
    this.text += chunk;
    this.writes++;
    if (this.pressure) setImmediate(() => this.emit('drain'));
    return !this.pressure;
  }
  get lines(): string[] {
    return this.text.split('\n').slice(0, -1);
  }
}

describe('output', () => {
  it('chooses json with --json, a table on a terminal, plain lines in a pipe', () => {
    expect(outputMode(true, true)).to.equal('json');
    expect(outputMode(true, false)).to.equal('json');
    expect(outputMode(false, true)).to.equal('table');
    expect(outputMode(false, false)).to.equal('plain');
  });

  it('aligns table columns under a header', () => {
    const lines = formatTable(
      ['NAME', 'KIND', 'REV'],
      [
        ['accounts', 'tree', '12'],
        ['t', 'diary', '3'],
      ],
      { color: plainColor },
    );
    expect(lines).to.deep.equal(['NAME      KIND   REV', 'accounts  tree   12', 't         diary  3']);
  });

  it('truncates the last column to the terminal width, never below a readable minimum', () => {
    const [, row] = formatTable(['K', 'VALUE'], [['a', 'x'.repeat(100)]], {
      color: plainColor,
      widthMax: 40,
    });
    expect(row).to.have.length(40);
    expect(row!.endsWith('…')).to.equal(true);
    const [, narrow] = formatTable(['KEY', 'V'], [['k'.repeat(50), 'y'.repeat(40)]], {
      color: plainColor,
      widthMax: 20,
    });
    expect(narrow).to.equal(`${'k'.repeat(50)}  ${'y'.repeat(15)}…`);
  });

  it('colours a terminal table only when colour is on', () => {
    const coloured = formatTable(['A'], [['x']], { color: new Chalk({ level: 1 }) });
    expect(coloured[0]).to.include('\u001b[');
    expect(formatTable(['A'], [['x']], { color: plainColor })).to.deep.equal(['A', 'x']);
  });

  it('escapes tabs and newlines in tab-separated rows so each row stays one line', () => {
    expect(
      formatTsv([
        ['a\tb', 'c\nd', 'e\\f'],
        ['g', ''],
      ]),
    ).to.deep.equal(['a\\tb\tc\\nd\te\\\\f', 'g\t']);
  });

  it('prints one JSON value: indented on a terminal, a single line in a pipe', async () => {
    const tty = new FakeSink(true);
    await new Output('json', tty, plainColor).json({ a: [1] });
    expect(tty.text).to.equal('{\n  "a": [\n    1\n  ]\n}\n');
    const sink = new FakeSink(false);
    await new Output('json', sink, plainColor).json({ a: [1] });
    expect(sink.text).to.equal('{"a":[1]}\n');
  });

  it('prints tables as tab-separated lines without a header when piped, and says nothing in json mode', async () => {
    const sink = new FakeSink(false);
    const out = new Output('plain', sink, plainColor);
    await out.table(['NAME', 'KIND'], [['a', 'tree']]);
    await out.say('created');
    expect(sink.lines).to.deep.equal(['a\ttree', 'created']);
    const quiet = new FakeSink(false);
    await new Output('json', quiet, plainColor).say('created');
    expect(quiet.text).to.equal('');
  });

  it('streams NDJSON, one record per line, in json and plain modes', async () => {
    for (const mode of ['json', 'plain'] as const) {
      const sink = new FakeSink(false);
      const stream = new Output(mode, sink, plainColor).stream<{ key: string }>(['KEY'], (r) => [r.key]);
      await stream.push({ key: 'a' });
      await stream.push({ key: 'b\n' });
      await stream.end();
      expect(sink.lines.map((line) => JSON.parse(line) as unknown)).to.deep.equal([
        { key: 'a' },
        { key: 'b\n' },
      ]);
    }
  });

  it('streams a terminal table in aligned batches with one header, widths never shrinking', async () => {
    const sink = new FakeSink(true);
    const stream = new Output('table', sink, plainColor).stream<[string, string]>(['KEY', 'VALUE'], (r) => r);
    await stream.push(['alphabet', '1']);
    await stream.flush();
    await stream.push(['b', '2']);
    await stream.end();
    expect(sink.lines).to.deep.equal(['KEY       VALUE', 'alphabet  1', 'b         2']);
  });

  it('never cuts one-shot table cells (they hold ids to copy), but fits streamed values to the terminal', async () => {
    const id = 'x'.repeat(43);
    const table = new FakeSink(true, 20);
    await new Output('table', table, plainColor).table(['FIELD', 'VALUE'], [['root', id]]);
    expect(table.lines[1]).to.equal(`root   ${id}`);
    const stream = new FakeSink(true, 30);
    const records = new Output('table', stream, plainColor).stream<string>(['K', 'VALUE'], (v) => ['k', v]);
    await records.push(id);
    await records.end();
    expect(stream.lines[1]).to.have.length(30);
    const noWidth = new FakeSink(true, 0);
    const uncut = new Output('table', noWidth, plainColor).stream<string>(['K', 'VALUE'], (v) => ['k', v]);
    await uncut.push(id);
    await uncut.end();
    expect(noWidth.lines[1]).to.equal(`k  ${id}`);
  });

  it('shows "(none)" for an empty stream on a terminal, and nothing when piped', async () => {
    const tty = new FakeSink(true);
    await new Output('table', tty, plainColor).stream(['K'], () => []).end();
    expect(tty.lines).to.deep.equal(['(none)']);
    const pipe = new FakeSink(false);
    await new Output('plain', pipe, plainColor).stream(['K'], () => []).end();
    expect(pipe.text).to.equal('');
  });

  it('waits for the sink to drain when it applies back-pressure', async () => {
    const sink = new FakeSink(false, undefined, true);
    const stream = new Output('plain', sink, plainColor).stream<number>(['N'], (n) => [String(n)]);
    for (let i = 0; i < 5; i++) await stream.push(i);
    expect(sink.lines).to.deep.equal(['0', '1', '2', '3', '4']);
  });

  it('stops with OutputClosed once the reader of stdout has gone away (EPIPE)', async () => {
    const sink = new FakeSink(false);
    const out = new Output('plain', sink, plainColor);
    await out.lines(['first']);
    sink.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
    let thrown: unknown;
    await out.lines(['second']).catch((error: unknown) => (thrown = error));
    expect(thrown).to.be.instanceOf(OutputClosed);
    expect(sink.lines).to.deep.equal(['first']);
  });

  it('encodes JSON lines compactly, with null for undefined', () => {
    expect(jsonLine({ a: 1, b: 'x' })).to.equal('{"a":1,"b":"x"}');
    expect(jsonLine(undefined)).to.equal('null');
  });
});
