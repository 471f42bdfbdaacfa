import { chalkStderr } from 'chalk';
import { EngineError, isErrorCode, type ErrorCode } from '../../engine/index.js';
import { exitCodeFor, type ExitCode } from './exit-codes.js';

/** What the CLI reports for an error: a stable code, a one-line message, the exit code, and a stack. */
export interface Failure {
  readonly code: ErrorCode;
  readonly message: string;
  readonly exit: ExitCode;
  /** Shown only with --verbose. */
  readonly stack: string | undefined;
}

// Matches ANSI colour sequences; oclif colours parts of its parse-error messages.
// eslint-disable-next-line no-control-regex
const ansiPattern = /\u001b\[[0-9;]*m/g;

/**
 * Collapses a message to one line: drops colour, blank lines and oclif's "See more help" trailer, and
 * joins the rest. A line ending in ':' introduces the next, so it is joined with a space.
 */
export function oneLine(message: string): string {
  const lines = message
    .replace(ansiPattern, '')
    .split(/\r?\n/)
    .map((line) => line.replace(/\s+/g, ' ').trim())
    .filter((line) => line !== '' && !/^see more help with --help$/i.test(line));
  let out = '';
  for (const line of lines) {
    if (out === '') out = line;
    else if (out.endsWith(':')) out = `${out} ${line}`;
    else out = `${out}; ${line}`;
  }
  return out === '' ? 'unknown error' : out;
}

/**
 * Hints the engine cannot give, because they depend on how the CLI was invoked. (Engine messages
 * already say what to do about operating errors; a bug only the CLI can ask to have reported.)
 */
const cliHints: Partial<Record<ErrorCode, string>> = {
  INTERNAL: 'this is a bug: rerun with --verbose and report the output',
};

/** Turns anything thrown into a Failure. EngineErrors keep their code; anything else is a bug. */
export function describeFailure(error: unknown): Failure {
  if (error instanceof EngineError) {
    const message = oneLine(error.message);
    const hint = cliHints[error.code];
    return {
      code: error.code,
      message: hint === undefined || message.includes(hint) ? message : `${message}; ${hint}`,
      exit: exitCodeFor(error.code),
      stack: error.stack,
    };
  }
  // Errors from another copy of the engine module (or serialised ones) still carry a valid code.
  const foreignCode: unknown = error instanceof Error ? (error as { code?: unknown }).code : undefined;
  if (error instanceof Error && isErrorCode(foreignCode)) {
    return describeFailure(new EngineError(foreignCode, error.message, undefined, { cause: error }));
  }
  const message = error instanceof Error ? error.message : String(error);
  return {
    code: 'INTERNAL',
    message: `unexpected error: ${oneLine(message)}; ${cliHints.INTERNAL}`,
    exit: exitCodeFor('INTERNAL'),
    stack: error instanceof Error ? error.stack : undefined,
  };
}

/**
 * A command-line usage error (unknown flag, missing argument, bad flag value) from oclif's parser,
 * as a BAD_INPUT EngineError so it renders and exits like every other usage error.
 */
export function usageError(error: unknown, commandLine: string): EngineError {
  if (error instanceof EngineError) return error;
  const missing = missingArgNames(error);
  if (missing !== undefined) {
    const noun = missing.length === 1 ? 'argument' : 'arguments';
    return new EngineError(
      'BAD_INPUT',
      `missing ${noun} ${missing.join(' ')} (see: ${commandLine} --help)`,
      undefined,
      {
        cause: error,
      },
    );
  }
  const raw = error instanceof Error ? error.message : String(error);
  const message = oneLine(raw)
    .replace(/^Parsing (--[\w-]+);\s*/, '$1: ')
    .replace(/^The following errors? occurred:\s*/, '');
  // `-aB3x…` is no flag anyone would type: most likely an id that starts with '-'.
  const idLike = /^Nonexistent flags?: -[A-Za-z0-9_][A-Za-z0-9_-]{3,}/.test(message);
  const hint = idLike
    ? `; to pass an argument that starts with '-', end the flags with --, as in: ${commandLine} [FLAGS] -- -ID`
    : '';
  return new EngineError('BAD_INPUT', `${message}${hint} (see: ${commandLine} --help)`, undefined, {
    cause: error,
  });
}

/** Names of the missing arguments, upper-cased as help shows them, when oclif says some are missing. */
function missingArgNames(error: unknown): string[] | undefined {
  if (!(error instanceof Error) || !error.message.startsWith('Missing')) return undefined;
  const args: unknown = (error as { args?: unknown }).args;
  if (!Array.isArray(args)) return undefined;
  const names = args
    .map((arg: unknown) => (arg as { name?: unknown }).name)
    .filter((name) => typeof name === 'string');
  return names.length === 0 ? undefined : names.map((name) => name.toUpperCase());
}

/** The JSON error document printed on stdout with --json. */
export function failureJson(failure: Failure): { error: { code: ErrorCode; message: string } } {
  return { error: { code: failure.code, message: failure.message } };
}

/**
 * Prints a failure and sets the exit code: the JSON error document on stdout with --json, otherwise
 * one line on stderr. The stack follows on stderr only when asked for (--verbose).
 */
export function reportFailure(
  failure: Failure,
  options: { readonly json: boolean; readonly verbose: boolean },
): void {
  process.exitCode = failure.exit;
  if (options.json) {
    process.stdout.write(`${JSON.stringify(failureJson(failure))}\n`);
  } else {
    process.stderr.write(
      `${chalkStderr.red('Error')} ${chalkStderr.dim(`(${failure.code})`)}: ${failure.message}\n`,
    );
  }
  if (options.verbose && failure.stack !== undefined) process.stderr.write(`${failure.stack}\n`);
}
