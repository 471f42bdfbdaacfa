import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import type { Rng } from '../../base/rng.js';
import { concatBytes, lengthPrefixed, utf8 } from '../encoding.js';
import type { Identity } from '../identity.js';
import { proveDleq, verifyDleq } from './proofs.js';
import { getSuite, scalarFromRandomBytes, type GroupPoint, type Suite } from './suites.js';

/**
 * Shares travel inside one broadcast, each encrypted to its recipient's static key: the dealer picks
 * one ephemeral key e per deal (E = e·G in ristretto255), the recipient's key is X = x·G, and both
 * sides reach K = e·X = x·E. HKDF-SHA-256 turns K into a ChaCha20-Poly1305 key and nonce; the HKDF
 * info and the AEAD's associated data bind session, attempt, dealer, recipient, E and X, so a
 * ciphertext is good for exactly one slot of one ceremony.
 *
 * If a share is bad, the recipient complains by revealing K with a DLEQ proof that K = x·E for its
 * published X. Everyone can then open that one ciphertext and judge, and x stays secret.
 */

export const encryptionSuite: Suite = getSuite('ristretto255-sha512');

export interface EncryptionKeyPair {
  /** x, secret */
  secret: bigint;
  /** X = x·G, 32 bytes */
  publicKey: Uint8Array;
}

export function encryptionKeyFromSecret(secret: bigint): EncryptionKeyPair {
  return { secret, publicKey: encryptionSuite.base.multiply(secret).toBytes() };
}

export function generateEncryptionKey(rng: Rng): EncryptionKeyPair {
  return encryptionKeyFromSecret(scalarFromRandomBytes(encryptionSuite, rng.bytes(64)));
}

/** The static encryption key a node derives from its identity key, so it keeps one secret, not two. */
export function encryptionKeyFromIdentity(identity: Identity): EncryptionKeyPair {
  const okm = hkdf(
    sha256,
    identity.exportSecretKey(),
    utf8('optimystic/threshold/encryption-key/v1'),
    undefined,
    64,
  );
  return encryptionKeyFromSecret(scalarFromRandomBytes(encryptionSuite, okm));
}

/** Which slot a ciphertext fills. */
export interface ShareSlot {
  session: string;
  attempt: number;
  dealer: string;
  recipient: string;
}

const shareSalt = utf8('optimystic/threshold/share/v1');
const complaintTag = utf8('optimystic/threshold/complaint/v1');

function slotInfo(slot: ShareSlot, E: GroupPoint, X: GroupPoint): Uint8Array {
  const attempt = new Uint8Array(4);
  new DataView(attempt.buffer).setUint32(0, slot.attempt);
  return concatBytes(
    lengthPrefixed(utf8(slot.session)),
    attempt,
    lengthPrefixed(utf8(slot.dealer)),
    lengthPrefixed(utf8(slot.recipient)),
    E.toBytes(),
    X.toBytes(),
  );
}

function cipherFor(slot: ShareSlot, E: GroupPoint, X: GroupPoint, K: GroupPoint) {
  const info = slotInfo(slot, E, X);
  const okm = hkdf(sha256, K.toBytes(), shareSalt, info, 44);
  return chacha20poly1305(okm.subarray(0, 32), okm.subarray(32), info);
}

/** Dealer side: encrypts one share to X under the deal's ephemeral secret e. */
export function sealShare(
  slot: ShareSlot,
  ephemeralSecret: bigint,
  recipientKey: GroupPoint,
  plaintext: Uint8Array,
): Uint8Array {
  const E = encryptionSuite.base.multiply(ephemeralSecret);
  const K = recipientKey.multiply(ephemeralSecret);
  return cipherFor(slot, E, recipientKey, K).encrypt(plaintext);
}

/** Recipient side: opens a share with x; undefined when authentication fails. */
export function openShare(
  slot: ShareSlot,
  ephemeralKey: GroupPoint,
  recipient: EncryptionKeyPair,
  ciphertext: Uint8Array,
): Uint8Array | undefined {
  const X = encryptionSuite.decodePoint(recipient.publicKey);
  if (X === undefined) return undefined;
  return openWithSharedKey(slot, ephemeralKey, X, ephemeralKey.multiply(recipient.secret), ciphertext);
}

/** Opens a share with the revealed K (anyone, once a complaint has shown K). */
export function openWithSharedKey(
  slot: ShareSlot,
  ephemeralKey: GroupPoint,
  recipientKey: GroupPoint,
  sharedKey: GroupPoint,
  ciphertext: Uint8Array,
): Uint8Array | undefined {
  try {
    return cipherFor(slot, ephemeralKey, recipientKey, sharedKey).decrypt(ciphertext);
  } catch {
    return undefined;
  }
}

function complaintContext(slot: ShareSlot, E: GroupPoint, X: GroupPoint): Uint8Array {
  return concatBytes(complaintTag, slotInfo(slot, E, X));
}

/** Complainer: reveals K = x·E with a proof that it used the x behind its published X. */
export function discloseSharedKey(
  slot: ShareSlot,
  ephemeralKey: GroupPoint,
  recipient: EncryptionKeyPair,
  freshBytes: Uint8Array,
): { sharedKey: Uint8Array; proof: Uint8Array } {
  const X = encryptionSuite.base.multiply(recipient.secret);
  const K = ephemeralKey.multiply(recipient.secret);
  const proof = proveDleq(
    encryptionSuite,
    complaintContext(slot, ephemeralKey, X),
    recipient.secret,
    { X, H: ephemeralKey, K },
    freshBytes,
  );
  return { sharedKey: K.toBytes(), proof };
}

/** Judge: does the revealed K belong to the complainer's X for this slot? */
export function checkDisclosure(
  slot: ShareSlot,
  ephemeralKey: GroupPoint,
  recipientKey: GroupPoint,
  sharedKey: GroupPoint,
  proof: Uint8Array,
): boolean {
  return verifyDleq(
    encryptionSuite,
    complaintContext(slot, ephemeralKey, recipientKey),
    { X: recipientKey, H: ephemeralKey, K: sharedKey },
    proof,
  );
}
