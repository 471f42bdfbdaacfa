/**
 * The control protocol spoken on a node's Unix socket: newline-delimited JSON, several requests in
 * flight on one connection, matched by id.
 *
 *   request    {"id":1,"method":"db.get","params":{"name":"accounts","key":"alice"}}
 *   reply      {"id":1,"result":{…}}
 *   failure    {"id":1,"error":{"code":"NOT_FOUND","message":"…"}}
 *   stream     {"id":2,"item":{…}} … {"id":2,"end":true}     (scan, read, node.watch)
 *   cancel     {"id":3,"method":"cancel","params":{"id":2}}   stops stream 2 (it ends with "end")
 *
 * A line that is not JSON, over the size bound, or not a request gets a failure frame (with the id
 * when one could be read, else null); the connection stays usable.
 */
import { EngineError, isErrorCode, type ErrorCode } from '../base/errors.js';
import { limits } from '../base/limits.js';
import { parseJson } from '../base/codec.js';

/** One request or reply line: the largest transaction line plus its envelope. */
export const controlLineBytesMax = limits.messageBytesMax;

export type RequestId = number | string;

export interface ControlRequest {
  readonly id: RequestId;
  readonly method: string;
  readonly params: unknown;
}

export type ControlFrame =
  | { readonly id: RequestId; readonly result: unknown }
  | { readonly id: RequestId | null; readonly error: { readonly code: ErrorCode; readonly message: string } }
  | { readonly id: RequestId; readonly item: unknown }
  | { readonly id: RequestId; readonly end: true };

const idCharsMax = 64;
const methodPattern = /^[a-z][A-Za-z0-9.]{0,63}$/;

function isRequestId(value: unknown): value is RequestId {
  return (
    (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) ||
    (typeof value === 'string' && value.length > 0 && value.length <= idCharsMax)
  );
}

/** Parses one request line; a malformed one throws with the id attached when it could be read. */
export function parseRequestLine(line: string): ControlRequest {
  let value: unknown;
  try {
    value = parseJson(line, { bytesMax: controlLineBytesMax, what: 'control request' });
  } catch (error) {
    throw new RequestLineError(null, error as EngineError);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new RequestLineError(null, new EngineError('BAD_INPUT', 'a control request is a JSON object'));
  const record = value as Record<string, unknown>;
  const id = isRequestId(record['id']) ? record['id'] : null;
  if (id === null)
    throw new RequestLineError(
      null,
      new EngineError(
        'BAD_INPUT',
        `a control request needs an "id": a non-negative integer or a string of 1-${idCharsMax} characters`,
      ),
    );
  const method = record['method'];
  if (typeof method !== 'string' || !methodPattern.test(method))
    throw new RequestLineError(
      id,
      new EngineError('BAD_INPUT', 'a control request needs a "method" such as "node.status"'),
    );
  return { id, method, params: record['params'] ?? {} };
}

/** A request line that could not be served, with the id to answer (null when unreadable). */
export class RequestLineError extends Error {
  constructor(
    readonly id: RequestId | null,
    readonly error: EngineError,
  ) {
    super(error.message);
  }
}

/** A failure frame for any error; unexpected errors are reported by code only. */
export function errorFrame(id: RequestId | null, error: unknown): ControlFrame {
  if (error instanceof EngineError) return { id, error: { code: error.code, message: error.message } };
  const code = (error as { code?: unknown } | null)?.code;
  if (error instanceof Error && isErrorCode(code)) return { id, error: { code, message: error.message } };
  return { id, error: { code: 'INTERNAL', message: 'internal error in the node (see its log)' } };
}

/** Encodes a frame as one line. */
export function frameLine(frame: ControlFrame): string {
  return `${JSON.stringify(frame)}\n`;
}

export type SplitLine = { readonly line: string } | { readonly tooLarge: true };

/**
 * Splits a byte stream into lines with a bound on each: a line over `lineBytesMax` is skipped up to
 * its newline and reported once as `tooLarge`, so a sender cannot make the reader hold more than the
 * bound, and the stream stays in step for the next line.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private held = 0;
  private discarding = false;

  constructor(private readonly lineBytesMax: number = controlLineBytesMax) {}

  push(chunk: Buffer): SplitLine[] {
    const out: SplitLine[] = [];
    let start = 0;
    while (start < chunk.length) {
      const newline = chunk.indexOf(0x0a, start);
      const end = newline === -1 ? chunk.length : newline;
      const piece = chunk.subarray(start, end);
      if (!this.discarding) {
        if (this.held + piece.length > this.lineBytesMax) {
          this.parts = [];
          this.held = 0;
          this.discarding = true;
          out.push({ tooLarge: true });
        } else {
          this.parts.push(piece);
          this.held += piece.length;
        }
      }
      if (newline === -1) break;
      if (!this.discarding) {
        const line = Buffer.concat(this.parts).toString('utf8').replace(/\r$/, '');
        if (line.trim() !== '') out.push({ line });
      }
      this.parts = [];
      this.held = 0;
      this.discarding = false;
      start = newline + 1;
    }
    return out;
  }
}
