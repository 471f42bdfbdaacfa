import { schnorr } from '@noble/curves/secp256k1.js';
import { EngineError } from '../base/errors.js';

/**
 * BIP-340 Schnorr signatures over secp256k1 (x-only public keys), through noble. Used where a
 * secp256k1 signature must verify under Bitcoin's rules; FROST(secp256k1, SHA-256) group signatures
 * follow RFC 9591 instead and verify with `verifyGroupSignature`.
 */

export function bip340PublicKey(secretKey: Uint8Array): Uint8Array {
  try {
    return schnorr.getPublicKey(secretKey);
  } catch (error) {
    throw new EngineError(
      'BAD_INPUT',
      `not a secp256k1 secret key: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

/** Signs with the given 32 bytes of auxiliary randomness (BIP-340 default signing). */
export function signBip340(secretKey: Uint8Array, message: Uint8Array, auxRand: Uint8Array): Uint8Array {
  if (auxRand.length !== 32) throw new EngineError('BAD_INPUT', 'BIP-340 auxiliary randomness is 32 bytes');
  try {
    return schnorr.sign(message, secretKey, auxRand);
  } catch (error) {
    throw new EngineError(
      'BAD_INPUT',
      `cannot sign: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

/** True only for a valid signature; malformed keys and signatures are simply invalid. */
export function verifyBip340(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    return schnorr.verify(signature, message, publicKey);
  } catch {
    return false;
  }
}
