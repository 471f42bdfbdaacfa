/**
 * The node's identity is the SoloNode's Ed25519 key kept in the store (PKCS#8). libp2p is given the
 * same key, made from its 32-byte seed, so the peer id other nodes see is the key that signs votes.
 */
import { EngineError } from '../base/errors.js';
import { peerIdOf, privateKeyFromSeed, type PrivateKey } from '../network/index.js';
import type { Ed25519Identity } from '../transactions/certifier.js';
import type { IdentityInfo } from './node-api.js';

/** PKCS#8 v1 wrapping of an Ed25519 private key (RFC 8410): this header, then the 32-byte seed. */
const pkcs8Ed25519Header = Buffer.from('302e020100300506032b657004220420', 'hex');

/** The RFC 8032 seed inside an Ed25519 PKCS#8 key (base64url DER); undefined if it is not one. */
export function ed25519SeedOfPkcs8(pkcs8: string): Uint8Array | undefined {
  const der = Buffer.from(pkcs8, 'base64url');
  if (
    der.length !== pkcs8Ed25519Header.length + 32 ||
    !der.subarray(0, pkcs8Ed25519Header.length).equals(pkcs8Ed25519Header)
  )
    return undefined;
  return new Uint8Array(der.subarray(pkcs8Ed25519Header.length));
}

/** The Ed25519 PKCS#8 key (base64url DER) of a 32-byte seed. */
export function pkcs8OfEd25519Seed(seed: Uint8Array): string {
  return Buffer.concat([pkcs8Ed25519Header, seed]).toString('base64url');
}

/** The seed of the node identity kept in the store; CORRUPT if it is not an Ed25519 PKCS#8 key. */
export function seedFromPkcs8(pkcs8: string): Uint8Array {
  const seed = ed25519SeedOfPkcs8(pkcs8);
  if (seed === undefined)
    throw new EngineError('CORRUPT', 'the stored node identity is not an Ed25519 PKCS#8 key');
  return seed;
}

export interface NodeKeys {
  readonly privateKey: PrivateKey;
  readonly info: IdentityInfo;
}

/** The libp2p key and the public identity of a SoloNode identity. */
export async function nodeKeys(identity: Ed25519Identity): Promise<NodeKeys> {
  const privateKey = await privateKeyFromSeed(seedFromPkcs8(identity.toPkcs8()));
  return { privateKey, info: { peerId: peerIdOf(privateKey), publicKey: identity.id } };
}
