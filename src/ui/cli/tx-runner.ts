import {
  EngineError,
  parseTxLine,
  toEngineError,
  type ErrorCode,
  type TxOutcome,
  type TxRequest,
} from '../../engine/index.js';
import { oneLine } from './failure.js';
import type { InputLine } from './tx-lines.js';

/** One output line of `tx` (SPEC §2.2). */
export type TxResultLine =
  | Extract<TxOutcome, { readonly ok: true }>
  | {
      readonly ok: false;
      readonly error: { readonly code: ErrorCode; readonly message: string; readonly action?: number };
    };

export interface TxRunOptions {
  /**
   * Transactions running at once (≥ 1). Results still come out in input order: a line that finishes
   * while one before it still runs is held (the next line starts meanwhile), so one slow or replayed
   * transaction does not leave the others idle.
   */
  readonly concurrency: number;
  /** Finished results held behind a line still running before the runner waits for it (default 64 × concurrency). */
  readonly heldResultsMax?: number;
  /** Once aborted, no further line is started; lines already started finish and are reported. */
  readonly signal?: AbortSignal;
  /** Receives each result line, in input order. */
  readonly emit: (line: TxResultLine) => Promise<void>;
}

export interface TxRunSummary {
  readonly lines: number;
  /** Code of the first failed line in input order, if any. */
  readonly firstFailure: ErrorCode | undefined;
  /** True when the signal stopped the run before the input ended. */
  readonly interrupted: boolean;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function failed(error: EngineError): TxResultLine {
  const action = error.details?.['action'];
  return {
    ok: false,
    error: {
      code: error.code,
      message: oneLine(error.message),
      ...(typeof action === 'number' ? { action } : {}),
    },
  };
}

/** Decodes and parses one line; errors come back as the error line to print. */
export function parseInputLine(line: InputLine): TxRequest | EngineError {
  if (line.kind === 'too-large') {
    return new EngineError('TOO_LARGE', `line ${line.number} is over the transaction line size limit`);
  }
  let text: string;
  try {
    text = utf8.decode(line.bytes);
  } catch {
    return new EngineError(
      'BAD_INPUT',
      `line ${line.number} is not UTF-8 text; tx reads one JSON object per line`,
    );
  }
  if (line.number === 1 && text.startsWith('\uFEFF')) text = text.slice(1);
  if (text.trim() === '') {
    return new EngineError('BAD_INPUT', `line ${line.number} is empty; tx reads one JSON object per line`);
  }
  try {
    return parseTxLine(text);
  } catch (error) {
    return toEngineError(error);
  }
}

async function runLine(
  line: InputLine,
  transact: (request: TxRequest) => Promise<TxOutcome>,
): Promise<TxResultLine> {
  const request = parseInputLine(line);
  if (request instanceof EngineError) return failed(request);
  try {
    const outcome = await transact(request);
    if (outcome.ok) return outcome;
    return failed(
      new EngineError(
        outcome.error.code,
        outcome.error.message,
        outcome.error.action === undefined ? undefined : { action: outcome.error.action },
      ),
    );
  } catch (error) {
    return failed(toEngineError(error));
  }
}

/**
 * Runs `tx` input lines: up to `concurrency` transactions at once, results emitted strictly in input
 * order. A line that does not parse never reaches `transact`, so it writes nothing. Every line is
 * processed even after a failure; the summary names the first failure.
 *
 * A line starts as soon as fewer than `concurrency` run, not when the oldest unreported one is done: a
 * window that waited for its oldest line stalled behind every replayed transaction (8 concurrent puts
 * of ascending keys, half of them replayed once, ran no faster than one at a time). Results that
 * finish early wait in order, at most `heldResultsMax` of them.
 */
export async function runTxLines(
  lines: AsyncIterable<InputLine>,
  transact: (request: TxRequest) => Promise<TxOutcome>,
  options: TxRunOptions,
): Promise<TxRunSummary> {
  const heldMax = Math.max(options.concurrency, options.heldResultsMax ?? options.concurrency * 64);
  /** Lines started and not yet emitted, in input order; `result` once finished. */
  const queue: { result: TxResultLine | undefined; readonly done: Promise<TxResultLine> }[] = [];
  let running = 0;
  let wake: (() => void) | undefined;
  let count = 0;
  let firstFailure: ErrorCode | undefined;
  let interrupted = false;

  const start = (line: InputLine): void => {
    running++;
    const entry: (typeof queue)[number] = {
      result: undefined,
      // runLine reports every failure as a result line; it never rejects.
      done: runLine(line, transact).then((result) => {
        entry.result = result;
        running--;
        const resume = wake;
        wake = undefined;
        resume?.();
        return result;
      }),
    };
    queue.push(entry);
  };
  const emitFinished = async (): Promise<void> => {
    while (queue[0]?.result !== undefined) {
      const result = queue.shift()!.result!;
      if (!result.ok && firstFailure === undefined) firstFailure = result.error.code;
      await options.emit(result);
    }
  };

  try {
    for await (const line of lines) {
      if (options.signal?.aborted === true) {
        interrupted = true;
        break;
      }
      count++;
      start(line);
      await emitFinished();
      while (running >= options.concurrency || queue.length >= heldMax) {
        await new Promise<void>((resolve) => (wake = resolve));
        await emitFinished();
      }
    }
    while (queue.length > 0) {
      await queue[0]!.done;
      await emitFinished();
    }
  } finally {
    // If emitting failed, the transactions still running must finish before the database closes.
    await Promise.all(queue.map((entry) => entry.done));
  }
  return { lines: count, firstFailure, interrupted };
}
