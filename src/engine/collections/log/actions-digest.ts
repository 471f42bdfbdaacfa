import { createHash } from 'node:crypto';
import { canonicalJson } from '../../base/codec.js';

/**
 * Whether `JSON.stringify(value)` is at most `max` characters long, without building the whole text
 * when it is not: an array is measured item by item and the count stops once it passes `max`.
 */
export function jsonLengthAtMost(value: unknown, max: number): boolean {
  if (!Array.isArray(value)) return (JSON.stringify(value) ?? '').length <= max;
  let length = 2 + Math.max(0, value.length - 1);
  for (const item of value) {
    length += (JSON.stringify(item) ?? 'null').length;
    if (length > max) return false;
  }
  return length <= max;
}

/**
 * sha256 (base64url) of `canonicalJson(value)` (base/codec.ts, which builds the text in one
 * appending pass): the digest a log entry keeps of actions too large to keep inline.
 */
export function canonicalDigest(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('base64url');
}
