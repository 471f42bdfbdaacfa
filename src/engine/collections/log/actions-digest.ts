import { createHash } from 'node:crypto';
import { EngineError } from '../../base/errors.js';
import { limits } from '../../base/limits.js';

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
 * sha256 (base64url) of `canonicalJson(value)` (base/codec.ts): the digest a log entry keeps of
 * actions too large to keep inline. Same text, same errors, but built by appending to one string
 * instead of mapping and joining at every level, which made the digest of a 10,000-action
 * transaction cost more than executing it.
 */
export function canonicalDigest(value: unknown): string {
  return createHash('sha256').update(canonicalText(value, 0)).digest('base64url');
}

function canonicalText(value: unknown, depth: number): string {
  if (depth > limits.jsonDepthMax + 8)
    throw new EngineError('TOO_LARGE', 'value nested too deeply to encode');
  if (value === null || typeof value === 'boolean') return String(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new EngineError('BAD_INPUT', 'numbers must be finite');
    return JSON.stringify(value);
  }
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      // A hole stays empty, as Array.prototype.map and join leave it.
      if (!(i in value)) continue;
      const item: unknown = value[i];
      out += canonicalText(item === undefined ? null : item, depth + 1);
    }
    return out + ']';
  }
  if (typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj).sort();
    let out = '{';
    let first = true;
    for (const key of keys) {
      const item = obj[key];
      if (item === undefined) continue;
      if (!first) out += ',';
      first = false;
      out += JSON.stringify(key) + ':' + canonicalText(item, depth + 1);
    }
    return out + '}';
  }
  throw new EngineError('BAD_INPUT', `cannot encode a ${typeof value} as JSON`);
}
