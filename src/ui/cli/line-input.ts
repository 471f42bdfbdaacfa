import { open } from 'node:fs/promises';
import { EngineError } from '../../engine/index.js';

/**
 * The input of a command that reads JSON lines: `file` (a path; "-" or none = stdin). A file that
 * cannot be read, a directory, or a terminal on stdin (nothing piped in) is BAD_INPUT, with `usage`
 * (what the command reads and how to give it) in the message.
 */
export async function openLineInput(
  file: string | undefined,
  flag: string,
  usage: string,
): Promise<AsyncIterable<Buffer | string>> {
  if (file !== undefined && file !== '-') {
    let handle;
    try {
      handle = await open(file, 'r');
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new EngineError('BAD_INPUT', `cannot read ${flag} ${file} (${reason})`);
    }
    if ((await handle.stat()).isDirectory()) {
      await handle.close();
      throw new EngineError('BAD_INPUT', `${flag} ${file} is a directory; ${usage}`);
    }
    return handle.createReadStream();
  }
  if (process.stdin.isTTY === true) throw new EngineError('BAD_INPUT', usage);
  return process.stdin;
}
