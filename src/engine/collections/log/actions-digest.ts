import { createHash } from 'node:crypto';
import { canonicalJson, sortKeys } from '../../base/codec.js';
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
 * actions too large to keep inline.
 */
export function canonicalDigest(value: unknown): string {
  const sorted = sortedForNative(value, 0);
  const text = sorted === unfit ? canonicalJson(value) : JSON.stringify(sorted);
  return createHash('sha256').update(text).digest('base64url');
}

/** Returned by sortedForNative for a value the native encoder would not encode as canonicalJson does. */
const unfit: unique symbol = Symbol('unfit');

/**
 * The value with every object's keys in sorted order (objects already sorted are kept, not copied),
 * so that JSON.stringify gives `canonicalJson(value)`, several times faster on large values (the
 * actions of a transaction of 10,000 puts); `unfit` for anything on which the two could differ: a key
 * that may be an array index (such keys enumerate first, in numeric order), an object that is neither
 * plain nor an array, an array with a hole (canonicalJson leaves it empty), a value JSON cannot hold,
 * a member named toJSON (JSON.stringify would call it), or nesting past canonicalJson's bound (a
 * cycle ends there too). Each unfit value is then encoded by canonicalJson, which decides its text or
 * its error.
 */
function sortedForNative(value: unknown, depth: number): unknown {
  if (depth > limits.jsonDepthMax + 8) return unfit;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : unfit;
    case 'object': {
      if (value === null) return value;
      if (Array.isArray(value)) {
        let out: unknown[] | undefined;
        for (let i = 0; i < value.length; i++) {
          if (!(i in value)) return unfit;
          const item: unknown = value[i];
          if (item === undefined) return unfit; // both write null; rare enough to leave to canonicalJson
          const sorted = sortedForNative(item, depth + 1);
          if (sorted === unfit) return unfit;
          if (sorted !== item) (out ??= value.slice())[i] = sorted;
        }
        return out ?? value;
      }
      const prototype: unknown = Object.getPrototypeOf(value);
      if (prototype !== Object.prototype && prototype !== null) return unfit;
      const source = value as Record<string, unknown>;
      const keys = Object.keys(source);
      let inOrder = true;
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i]!;
        const first = key.charCodeAt(0);
        if ((first >= 48 && first <= 57) || key === 'toJSON') return unfit;
        if (i > 0 && keys[i - 1]! > key) inOrder = false;
      }
      if (inOrder) {
        let out: Record<string, unknown> | undefined;
        for (const key of keys) {
          const item = source[key];
          if (item === undefined) continue;
          const sorted = sortedForNative(item, depth + 1);
          if (sorted === unfit) return unfit;
          if (sorted !== item) (out ??= copyOf(source, keys))[key] = sorted;
        }
        return out ?? value;
      }
      const out: Record<string, unknown> = {};
      for (const key of sortKeys(keys)) {
        const item = source[key];
        if (item === undefined) continue;
        const sorted = sortedForNative(item, depth + 1);
        if (sorted === unfit) return unfit;
        define(out, key, sorted);
      }
      return out;
    }
    default:
      return unfit;
  }
}

function copyOf(source: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of keys) define(out, key, source[key]);
  return out;
}

/** Sets a member; plain assignment of "__proto__" would set the prototype instead. */
function define(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__')
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}
