import { limits, parseJson, type Json } from '../../engine/index.js';

/**
 * Parses a JSON value given on the command line with the engine's bounded parser: invalid JSON is
 * BAD_INPUT; text over the value size limit or nested too deeply is TOO_LARGE.
 */
export function parseJsonArgument(text: string, what: string): Json {
  return parseJson(text, { bytesMax: limits.valueBytesMax, what });
}
