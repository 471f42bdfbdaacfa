import { Readable } from 'node:stream';
import { expect } from 'chai';
import { splitLines, type InputLine } from '../../src/ui/cli/tx-lines.js';

/** The parts as a stream of chunks, exactly as given (no re-chunking). */
function chunks(...parts: (string | Buffer)[]): AsyncIterable<Buffer | string> {
  return Readable.from(parts, { objectMode: true }) as AsyncIterable<Buffer | string>;
}

/** Line texts, with 'TOO LARGE' standing for an over-long line. */
async function collect(source: AsyncIterable<Buffer | string>, max = 1024): Promise<string[]> {
  const out: string[] = [];
  let expected = 1;
  for await (const line of splitLines(source, max)) {
    expect(line.number).to.equal(expected++);
    out.push(line.kind === 'too-large' ? 'TOO LARGE' : line.bytes.toString('utf8'));
  }
  return out;
}

describe('tx input lines', () => {
  it('splits on newlines across chunk boundaries', async () => {
    expect(await collect(chunks('{"a":', '1}\n{"b"', ':2}\n'))).to.deep.equal(['{"a":1}', '{"b":2}']);
  });

  it('counts a last line without a newline, but not the empty rest after a final newline', async () => {
    expect(await collect(chunks('x\ny'))).to.deep.equal(['x', 'y']);
    expect(await collect(chunks('x\n'))).to.deep.equal(['x']);
    expect(await collect(chunks(''))).to.deep.equal([]);
  });

  it('keeps blank lines in the middle, so results still pair with input lines', async () => {
    expect(await collect(chunks('a\n\nb\n'))).to.deep.equal(['a', '', 'b']);
  });

  it('drops the \\r of CRLF line ends', async () => {
    expect(await collect(chunks('a\r\nb\r\n'))).to.deep.equal(['a', 'b']);
  });

  it('reports an over-long line as too large without keeping its bytes, and carries on after it', async () => {
    const lines = await collect(
      chunks('ok\n', 'x'.repeat(10), 'y'.repeat(10), 'z\nnext\n', 'w'.repeat(30)),
      16,
    );
    expect(lines).to.deep.equal(['ok', 'TOO LARGE', 'next', 'TOO LARGE']);
  });

  it('accepts a line of exactly the limit', async () => {
    expect(await collect(chunks('a'.repeat(16), '\n'), 16)).to.deep.equal(['a'.repeat(16)]);
  });

  it('passes bytes through untouched, so invalid UTF-8 can be reported later', async () => {
    const lines: InputLine[] = [];
    for await (const line of splitLines(chunks(Buffer.from([0xff, 0xfe, 0x0a, 0x00])), 64)) lines.push(line);
    expect(lines.map((line) => line.bytes && [...line.bytes])).to.deep.equal([[0xff, 0xfe], [0x00]]);
  });
});
