/**
 * Operating errors: an expected failure carries a stable `code` from this closed union. Callers and
 * tests branch on the code, never on the message. Programmer errors use `assert` instead.
 */
export const errorCodes = [
  'INTERNAL', // a bug: an invariant broke somewhere we did not expect
  'BAD_INPUT', // malformed request: invalid JSON, unknown op, wrong argument shape
  'TOO_LARGE', // a value, action list, message or nesting depth over its limit (base/limits.ts)
  'WRONG_TYPE', // an operation for one collection kind used on the other (tree op on a diary)
  'EXISTS', // creating something that already exists
  'CONFIG_INVALID', // a configuration file or flag value failed validation
  'NOT_FOUND', // collection, key, block or revision does not exist
  'CONFLICT', // optimistic validation failed; retrying on fresh state may succeed
  'UNAVAILABLE', // a resource could not be reached in time
  'TIMEOUT', // a request exceeded its deadline
  'NO_QUORUM', // a consensus group lacks a reachable majority
  'DATA_DIR_BUSY', // another process holds the data directory
  'BAD_SIGNATURE', // a signature did not verify
  'BAD_CERTIFICATE', // a commit certificate did not verify
  'CORRUPT', // stored data failed a checksum or could not be decoded
  'EXPECT_FAILED', // a transaction precondition or guard did not hold; final, never retried
  'INTERRUPTED', // the user interrupted the operation
] as const;

export type ErrorCode = (typeof errorCodes)[number];

/** Codes for which running the same request again on fresh state may succeed. */
const retryableCodes: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'CONFLICT',
  'UNAVAILABLE',
  'TIMEOUT',
  'NO_QUORUM',
]);

export interface EngineErrorDetails {
  readonly [key: string]: unknown;
}

export class EngineError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: EngineErrorDetails | undefined;

  constructor(code: ErrorCode, message: string, details?: EngineErrorDetails, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EngineError';
    this.code = code;
    this.retryable = retryableCodes.has(code);
    this.details = details;
  }

  toJSON(): { code: ErrorCode; message: string } & EngineErrorDetails {
    return { ...(this.details ?? {}), code: this.code, message: this.message };
  }
}

export function isEngineError(error: unknown, code?: ErrorCode): error is EngineError {
  return error instanceof EngineError && (code === undefined || error.code === code);
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (errorCodes as readonly string[]).includes(value);
}

/** Wraps anything thrown into an EngineError, keeping EngineErrors as they are. */
export function toEngineError(error: unknown): EngineError {
  if (error instanceof EngineError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new EngineError('INTERNAL', message, undefined, { cause: error });
}

/** NOT_FOUND for a collection no one created, with the command that creates it. */
export function noSuchCollection(collection: string): EngineError {
  return new EngineError(
    'NOT_FOUND',
    `collection ${collection} does not exist; create it with: optimystic collection create ${collection} --type tree (or --type diary)`,
    { collection },
  );
}
