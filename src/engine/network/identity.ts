/**
 * The node's libp2p identity, made from the same 32-byte Ed25519 seed the node persists in its data
 * dir (see crypto/identity.ts), so the peer id the network announces is the id that signs votes.
 */
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { Libp2pOptions } from 'libp2p';
import { EngineError } from '../base/errors.js';

/** A libp2p private key (Ed25519 for Optimystic nodes). */
export type PrivateKey = NonNullable<Libp2pOptions['privateKey']>;

/** The libp2p Ed25519 private key for a 32-byte seed (the RFC 8032 secret key). */
export async function privateKeyFromSeed(seed: Uint8Array): Promise<PrivateKey> {
  if (seed.length !== 32) throw new EngineError('BAD_INPUT', 'an Ed25519 identity seed is 32 bytes');
  return generateKeyPairFromSeed('Ed25519', seed);
}

/** The peer id (base58btc text) of a private key. */
export function peerIdOf(privateKey: PrivateKey): string {
  return peerIdFromPrivateKey(privateKey).toString();
}
