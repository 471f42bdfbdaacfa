import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { EngineError } from '../../../engine/index.js';

/**
 * Where a passphrase comes from, in order: `--passphrase-file FILE`, the OPTIMYSTIC_PASSPHRASE
 * variable, or a prompt without echo when stdin is a terminal. Nothing else, so a script can never
 * hang on a prompt it did not expect.
 */

export const passphraseEnvVar = 'OPTIMYSTIC_PASSPHRASE';

/** True when the operator can be asked something (stdin and stderr are terminals). */
export function canPrompt(): boolean {
  return process.stdin.isTTY === true && process.stderr.isTTY === true;
}

export async function resolvePassphrase(options: {
  file: string | undefined;
  env: NodeJS.ProcessEnv;
  /** Ask twice on a terminal (when creating something sealed under it for the first time). */
  confirm: boolean;
}): Promise<string> {
  if (options.file !== undefined) return readPassphraseFile(options.file);
  const fromEnv = options.env[passphraseEnvVar];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  if (!canPrompt()) {
    throw new EngineError(
      'BAD_INPUT',
      `a passphrase is needed: set ${passphraseEnvVar}, pass --passphrase-file FILE, or run on a terminal to be asked`,
    );
  }
  const first = await promptHidden('Passphrase: ');
  if (first === '') throw new EngineError('BAD_INPUT', 'the passphrase is empty');
  if (options.confirm && (await promptHidden('Passphrase again: ')) !== first)
    throw new EngineError('BAD_INPUT', 'the two passphrases differ; nothing was created');
  return first;
}

/** The first line of a file (a trailing newline is not part of the passphrase). */
export async function readPassphraseFile(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new EngineError(
      code === 'ENOENT' ? 'NOT_FOUND' : 'BAD_INPUT',
      `cannot read the passphrase file ${path} (${code ?? String(error)})`,
    );
  }
  const passphrase = text.split(/\r?\n/)[0] ?? '';
  if (passphrase === '')
    throw new EngineError('BAD_INPUT', `the passphrase file ${path} starts with an empty line`);
  return passphrase;
}

/** Reads a line from the terminal without echoing it. Ctrl-C is INTERRUPTED. */
export function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(question);
  stdin.setRawMode(true);
  stdin.setEncoding('utf8');
  stdin.resume();
  return new Promise((resolve, reject) => {
    let value = '';
    const finish = (error?: EngineError): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      if (error === undefined) resolve(value);
      else reject(error);
    };
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return finish();
        if (ch === '\u0003')
          return finish(new EngineError('INTERRUPTED', 'interrupted at the passphrase prompt'));
        if (ch === '\u0004') return finish();
        if (ch === '\u007f' || ch === '\b') value = Array.from(value).slice(0, -1).join('');
        else if (ch === '\u0015') value = '';
        else if (ch >= ' ') value += ch;
      }
    };
    stdin.on('data', onData);
  });
}

/** Asks a question on the terminal and returns the trimmed answer. Ctrl-C is INTERRUPTED. */
export function promptLine(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  return new Promise((resolve, reject) => {
    rl.on('SIGINT', () => {
      rl.close();
      process.stderr.write('\n');
      reject(new EngineError('INTERRUPTED', 'interrupted at the prompt'));
    });
    rl.question(question, (answer) => {
      rl.close();
      resolve(answer.trim());
    });
  });
}
