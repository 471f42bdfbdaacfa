import { createHash } from 'node:crypto';
import { EngineError, type ErrorCode } from '../base/errors.js';
import { toBase64Url } from '../base/ids.js';

/**
 * Byte encodings shared by the crypto layer. Every byte string that crosses a boundary (message,
 * file, key) is base64url without padding, decoded strictly: one text per byte string, so a
 * signature over canonical JSON cannot be replayed under an alternative spelling of the same bytes.
 */

const base64UrlPattern = /^[A-Za-z0-9_-]*$/;

export { toBase64Url };

export interface DecodeOptions {
  /** Exact byte length required, if any. */
  length?: number;
  /** Largest accepted byte length. */
  lengthMax?: number;
  /** Error code to raise; BAD_INPUT for requests and messages, CORRUPT for stored data. */
  code?: ErrorCode;
}

/** Decodes canonical base64url (no padding, no stray trailing bits) or throws an EngineError. */
export function fromBase64Url(text: unknown, what: string, options: DecodeOptions = {}): Uint8Array {
  const code = options.code ?? 'BAD_INPUT';
  if (typeof text !== 'string' || !base64UrlPattern.test(text) || text.length % 4 === 1) {
    throw new EngineError(code, `${what} is not base64url text`);
  }
  const bytes = new Uint8Array(Buffer.from(text, 'base64url'));
  if (toBase64Url(bytes) !== text) throw new EngineError(code, `${what} is not canonical base64url`);
  if (options.length !== undefined && bytes.length !== options.length) {
    throw new EngineError(code, `${what} must be ${options.length} bytes, got ${bytes.length}`);
  }
  if (options.lengthMax !== undefined && bytes.length > options.lengthMax) {
    throw new EngineError('TOO_LARGE', `${what} is over ${options.lengthMax} bytes`);
  }
  return bytes;
}

/** Decodes base64url and reports failure as undefined instead of throwing (for judging faults). */
export function tryFromBase64Url(text: unknown, length?: number): Uint8Array | undefined {
  if (typeof text !== 'string' || !base64UrlPattern.test(text)) return undefined;
  const bytes = new Uint8Array(Buffer.from(text, 'base64url'));
  if (toBase64Url(bytes) !== text) return undefined;
  if (length !== undefined && bytes.length !== length) return undefined;
  return bytes;
}

export function utf8(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'utf8'));
}

export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Equality without an early exit, for comparing secrets and tags. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Big-endian 32-bit length prefix, so concatenated variable-length fields cannot be re-split. */
export function lengthPrefixed(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + bytes.length);
  new DataView(out.buffer).setUint32(0, bytes.length);
  out.set(bytes, 4);
  return out;
}

export function sha256(...parts: readonly Uint8Array[]): Uint8Array {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return new Uint8Array(hash.digest());
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function fromHex(text: string): Uint8Array {
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(text)) throw new EngineError('BAD_INPUT', 'not hex text');
  return new Uint8Array(Buffer.from(text, 'hex'));
}

/** Overwrites a secret buffer; best effort, since copies may survive elsewhere in the heap. */
export function wipe(bytes: Uint8Array): void {
  bytes.fill(0);
}
