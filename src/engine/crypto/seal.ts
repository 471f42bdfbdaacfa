import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { scrypt } from 'node:crypto';
import { canonicalJson } from '../base/codec.js';
import { EngineError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import type { Rng } from '../base/rng.js';
import { fromBase64Url, toBase64Url, utf8, wipe } from './encoding.js';

/**
 * Key material at rest: a versioned JSON envelope holding scrypt parameters, a salt, a nonce and an
 * XChaCha20-Poly1305 ciphertext. Everything in the envelope except the ciphertext is bound to it as
 * associated data, so editing the cost, the content label or the salt fails authentication exactly
 * like a wrong passphrase does. Both report BAD_SIGNATURE (an integrity failure): a wrong
 * passphrase cannot be told apart from tampering, by design.
 *
 * The key is derived by node:crypto's scrypt (OpenSSL), on libuv's thread pool: at the default cost
 * (2^17, 128 MiB) a derivation takes about 0.4 s there against 0.7 s in JavaScript (@noble/hashes,
 * which sealed before; the output is the same, RFC 7914), and a running node that seals ceremony
 * state no longer stops serving for that long. Derivations run one at a time, so at most one
 * derivation's memory is held at once.
 */

export const sealedFormat = 'optimystic-sealed';

export interface SealedEnvelope {
  format: typeof sealedFormat;
  version: 1;
  /** What the plaintext is (`identity`, `threshold-share`, `ceremony-state`, …); authenticated. */
  content: string;
  kdf: { name: 'scrypt'; costLog2: number; blockSize: number; parallelism: number; salt: string };
  cipher: 'xchacha20-poly1305';
  nonce: string;
  ciphertext: string;
}

export interface SealOptions {
  /** Label stored in the envelope and checked on open when given. Defaults to `data`. */
  content?: string;
  /** scrypt cost as log2(N); defaults to limits.sealScryptCostLog2. */
  costLog2?: number;
}

const blockSize = 8;
const parallelism = 1;
const saltBytes = 16;
const nonceBytes = 24;
const keyBytes = 32;
const tagBytes = 16;
const contentPattern = /^[a-z0-9][a-z0-9-]{0,63}$/;

export async function sealWithPassphrase(
  plaintext: Uint8Array,
  passphrase: string,
  rng: Rng,
  options: SealOptions = {},
): Promise<SealedEnvelope> {
  const content = options.content ?? 'data';
  const costLog2 = options.costLog2 ?? limits.sealScryptCostLog2;
  if (!contentPattern.test(content))
    throw new EngineError('BAD_INPUT', 'a sealed content label is lowercase letters, digits and dashes');
  checkCost(costLog2, 'BAD_INPUT');
  if (plaintext.length > limits.sealedPlaintextBytesMax) {
    throw new EngineError('TOO_LARGE', `sealed data is over ${limits.sealedPlaintextBytesMax} bytes`);
  }
  const salt = rng.bytes(saltBytes);
  const nonce = rng.bytes(nonceBytes);
  const header: Omit<SealedEnvelope, 'ciphertext'> = {
    format: sealedFormat,
    version: 1,
    content,
    kdf: { name: 'scrypt', costLog2, blockSize, parallelism, salt: toBase64Url(salt) },
    cipher: 'xchacha20-poly1305',
    nonce: toBase64Url(nonce),
  };
  const key = await deriveKey(passphrase, salt, costLog2);
  try {
    const ciphertext = xchacha20poly1305(key, nonce, utf8(canonicalJson(header))).encrypt(plaintext);
    return { ...header, ciphertext: toBase64Url(ciphertext) };
  } finally {
    wipe(key);
  }
}

/**
 * Opens an envelope. Throws CORRUPT when the value is not a well-formed envelope, BAD_SIGNATURE when
 * authentication fails (wrong passphrase or any edit), BAD_INPUT when `expectedContent` differs.
 */
export async function openWithPassphrase(
  sealed: unknown,
  passphrase: string,
  expectedContent?: string,
): Promise<Uint8Array> {
  const envelope = parseEnvelope(sealed);
  if (expectedContent !== undefined && envelope.content !== expectedContent) {
    throw new EngineError('BAD_INPUT', `sealed file holds ${envelope.content}, expected ${expectedContent}`);
  }
  const salt = fromBase64Url(envelope.kdf.salt, 'sealed salt', { length: saltBytes, code: 'CORRUPT' });
  const nonce = fromBase64Url(envelope.nonce, 'sealed nonce', { length: nonceBytes, code: 'CORRUPT' });
  const ciphertext = fromBase64Url(envelope.ciphertext, 'sealed ciphertext', { code: 'CORRUPT' });
  if (ciphertext.length < tagBytes || ciphertext.length > limits.sealedPlaintextBytesMax + tagBytes) {
    throw new EngineError('CORRUPT', 'sealed ciphertext has an impossible length');
  }
  const { ciphertext: _ciphertext, ...header } = envelope;
  const key = await deriveKey(passphrase, salt, envelope.kdf.costLog2);
  try {
    return xchacha20poly1305(key, nonce, utf8(canonicalJson(header))).decrypt(ciphertext);
  } catch {
    throw new EngineError('BAD_SIGNATURE', 'wrong passphrase, or the sealed file was altered');
  } finally {
    wipe(key);
  }
}

/** True when the value looks like a sealed envelope (for callers choosing how to read a file). */
export function isSealedEnvelope(value: unknown): value is SealedEnvelope {
  try {
    parseEnvelope(value);
    return true;
  } catch {
    return false;
  }
}

function parseEnvelope(value: unknown): SealedEnvelope {
  const bad = (what: string): never => {
    throw new EngineError('CORRUPT', `not a sealed envelope: ${what}`);
  };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return bad('not an object');
  const v = value as Record<string, unknown>;
  if (v.format !== sealedFormat) return bad('unknown format');
  if (v.version !== 1) return bad(`unsupported version ${String(v.version)}`);
  if (typeof v.content !== 'string' || !contentPattern.test(v.content)) return bad('bad content label');
  if (v.cipher !== 'xchacha20-poly1305') return bad('unknown cipher');
  if (typeof v.nonce !== 'string' || typeof v.ciphertext !== 'string')
    return bad('missing nonce or ciphertext');
  const kdf = v.kdf;
  if (kdf === null || typeof kdf !== 'object' || Array.isArray(kdf)) return bad('missing kdf');
  const k = kdf as Record<string, unknown>;
  if (
    k.name !== 'scrypt' ||
    k.blockSize !== blockSize ||
    k.parallelism !== parallelism ||
    typeof k.salt !== 'string'
  ) {
    return bad('unsupported kdf parameters');
  }
  if (typeof k.costLog2 !== 'number') return bad('missing scrypt cost');
  checkCost(k.costLog2, 'CORRUPT');
  const extra = Object.keys(v).filter(
    (key) => !['format', 'version', 'content', 'kdf', 'cipher', 'nonce', 'ciphertext'].includes(key),
  );
  const extraKdf = Object.keys(k).filter(
    (key) => !['name', 'costLog2', 'blockSize', 'parallelism', 'salt'].includes(key),
  );
  if (extra.length > 0 || extraKdf.length > 0) return bad('unknown fields');
  return {
    format: sealedFormat,
    version: 1,
    content: v.content,
    kdf: { name: 'scrypt', costLog2: k.costLog2, blockSize, parallelism, salt: k.salt },
    cipher: 'xchacha20-poly1305',
    nonce: v.nonce,
    ciphertext: v.ciphertext,
  };
}

function checkCost(costLog2: number, code: 'BAD_INPUT' | 'CORRUPT'): void {
  if (
    !Number.isInteger(costLog2) ||
    costLog2 < limits.sealScryptCostLog2Min ||
    costLog2 > limits.sealScryptCostLog2Max
  ) {
    throw new EngineError(
      code,
      `scrypt cost 2^${costLog2} is outside 2^${limits.sealScryptCostLog2Min}..2^${limits.sealScryptCostLog2Max}`,
    );
  }
}

/** The derivation in progress (or the last one): the next one starts after it. */
let derivations: Promise<unknown> = Promise.resolve();

function deriveKey(passphrase: string, salt: Uint8Array, costLog2: number): Promise<Uint8Array> {
  if (typeof passphrase !== 'string' || passphrase.length === 0)
    return Promise.reject(new EngineError('BAD_INPUT', 'the passphrase is empty'));
  const N = 2 ** costLog2;
  const password = utf8(passphrase.normalize('NFC'));
  const derived = derivations.then(
    () =>
      new Promise<Uint8Array>((resolve, reject) => {
        scrypt(
          password,
          salt,
          keyBytes,
          { N, r: blockSize, p: parallelism, maxmem: 128 * N * blockSize + 1024 * 1024 },
          (error, key) => {
            password.fill(0);
            if (error === null) resolve(new Uint8Array(key.buffer, key.byteOffset, key.byteLength));
            else reject(error);
          },
        );
      }),
  );
  derivations = derived.catch(() => undefined);
  return derived;
}
