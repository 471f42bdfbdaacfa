/** One input line of `tx`, numbered from 1. */
export type InputLine =
  | { readonly number: number; readonly kind: 'text'; readonly bytes: Buffer }
  /** Longer than the bound: its bytes were dropped while reading, only the fact is kept. */
  | { readonly number: number; readonly kind: 'too-large'; readonly bytes: undefined };

const newline = 0x0a;
const carriageReturn = 0x0d;

/**
 * Splits a byte stream into lines without ever holding more than `lineBytesMax` bytes of one line: an
 * over-long line is skipped to its newline and reported as `too-large`. A final line without a
 * newline counts; the empty remainder after a final newline does not. A trailing `\r` is dropped.
 */
export async function* splitLines(
  chunks: AsyncIterable<Buffer | string>,
  lineBytesMax: number,
): AsyncGenerator<InputLine> {
  let parts: Buffer[] = [];
  let length = 0;
  let tooLarge = false;
  let number = 0;

  const finish = (): InputLine => {
    number++;
    if (tooLarge) {
      tooLarge = false;
      parts = [];
      length = 0;
      return { number, kind: 'too-large', bytes: undefined };
    }
    let bytes = Buffer.concat(parts, length);
    parts = [];
    length = 0;
    if (bytes.length > 0 && bytes[bytes.length - 1] === carriageReturn) bytes = bytes.subarray(0, -1);
    return { number, kind: 'text', bytes };
  };

  const take = (piece: Buffer): void => {
    if (tooLarge || piece.length === 0) return;
    if (length + piece.length > lineBytesMax) {
      tooLarge = true;
      parts = [];
      length = 0;
      return;
    }
    parts.push(piece);
    length += piece.length;
  };

  for await (const chunk of chunks) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    let start = 0;
    for (let at = buffer.indexOf(newline, start); at !== -1; at = buffer.indexOf(newline, start)) {
      take(buffer.subarray(start, at));
      yield finish();
      start = at + 1;
    }
    take(buffer.subarray(start));
  }
  if (length > 0 || tooLarge) yield finish();
}
