import { EngineError } from '../base/errors.js';
import { parseJson } from '../base/codec.js';
import { limits } from '../base/limits.js';
import type { TxRequest } from './tx-types.js';

/**
 * Parses and validates one `tx` input line (SPEC §2.2). Throws EngineError BAD_INPUT or TOO_LARGE;
 * `details.action` names the offending action index when there is one.
 */
export function parseTxLine(line: string): TxRequest {
  const parsed = parseJson(line, { bytesMax: limits.txLineBytesMax, what: 'transaction line' });
  return validateTxRequest(parsed);
}

// Replaced by the full validator in the same commit series; kept minimal so callers compile.
export function validateTxRequest(value: unknown): TxRequest {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new EngineError('BAD_INPUT', 'a transaction line must be a JSON object with an "actions" array');
  }
  return value as TxRequest;
}
