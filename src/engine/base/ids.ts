import { createHash } from 'node:crypto';
import type { Rng } from './rng.js';

/** A block id: 32 bytes, base64url without padding (43 characters). */
export type BlockId = string;
/** A transaction id: 16 random bytes, base64url. */
export type TrxId = string;

const blockIdPattern = /^[A-Za-z0-9_-]{43}$/;

/**
 * Bytes as base64url without padding, through a view of them, not a copy (Buffer.from of a
 * Uint8Array copies it element by element). The crypto layer's encoding (crypto/encoding.ts) too.
 */
export function toBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

export function newBlockId(rng: Rng): BlockId {
  // A random id never starts with '-', so no command line mistakes one for a flag (1 in 64 would).
  for (;;) {
    const id = toBase64Url(rng.bytes(32));
    if (!id.startsWith('-')) return id;
  }
}

export function newTrxId(rng: Rng): TrxId {
  return toBase64Url(rng.bytes(16));
}

export function isBlockId(value: unknown): value is BlockId {
  return typeof value === 'string' && blockIdPattern.test(value);
}

/** Header block id of a collection: any peer derives it from the name alone. */
export function collectionHeaderId(name: string): BlockId {
  return createHash('sha256').update(`optimystic/collection/${name}`).digest('base64url');
}

/** A block's position in Kademlia key space: sha256 of its id bytes. */
export function blockKey(id: BlockId): Uint8Array {
  return new Uint8Array(createHash('sha256').update(Buffer.from(id, 'base64url')).digest());
}
