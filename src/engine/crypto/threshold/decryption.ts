import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { canonicalJson } from '../../base/codec.js';
import { EngineError } from '../../base/errors.js';
import { limits } from '../../base/limits.js';
import type { Rng } from '../../base/rng.js';
import { concatBytes, fromBase64Url, lengthPrefixed, sha256, toBase64Url, utf8 } from '../encoding.js';
import {
  checkPublicKey,
  checkShare,
  type CheckedPublicKey,
  type ThresholdPublicKey,
  type ThresholdShare,
} from './key.js';
import { proveDleq, proveKnowledge, verifyDleq, verifyKnowledge } from './proofs.js';
import type { HolderRef } from './signing.js';
import { lagrangeAtZero, scalarFromRandomBytes, type GroupPoint } from './suites.js';

/**
 * Threshold decryption: ElGamal key encapsulation to the group key in ristretto255, then
 * ChaCha20-Poly1305 under a key from HKDF-SHA-256 of the shared point.
 *
 * Anyone with the public key encrypts: U = r·G, S = r·Y. The ciphertext carries a Schnorr proof
 * that its author knows r, bound to the AEAD ciphertext and associated data, so nobody can
 * re-purpose U (or a multiple of it) to make holders decrypt something else. A holder answers with
 * D_i = s_i·U and a DLEQ proof that it used the same s_i as its verifying share Y_i = s_i·G; the
 * requester checks every partial, names the holders of invalid ones, and recovers S = Σ λ_i·D_i
 * from t valid partials. The group secret never exists anywhere.
 */

export interface ThresholdCiphertext {
  format: 'optimystic-threshold-ciphertext';
  version: 1;
  keyId: string;
  /** U = r·G */
  ephemeral: string;
  /** Proof of knowledge of r, bound to everything below. */
  proof: string;
  associatedData: string;
  ciphertext: string;
}

export interface PartialDecryption {
  keyId: string;
  identifier: number;
  ciphertextDigest: string;
  /** D_i = s_i·U */
  share: string;
  proof: string;
}

const kdfSalt = utf8('optimystic/threshold/ecies/v1');

export function ciphertextDigest(ciphertext: ThresholdCiphertext): string {
  return toBase64Url(sha256(utf8('optimystic/threshold/ciphertext/v1\n'), utf8(canonicalJson(ciphertext))));
}

function requireDecryptionKey(publicKey: ThresholdPublicKey): CheckedPublicKey {
  const pk = checkPublicKey(publicKey);
  if (pk.json.purpose !== 'decrypt')
    throw new EngineError('BAD_INPUT', `key ${pk.json.keyId} is for ${pk.json.purpose}, not decryption`);
  return pk;
}

function proofContext(keyId: string, ciphertext: Uint8Array, associatedData: Uint8Array): Uint8Array {
  return concatBytes(
    utf8('optimystic/threshold/ciphertext-proof/v1'),
    lengthPrefixed(utf8(keyId)),
    sha256(ciphertext),
    sha256(associatedData),
  );
}

function aeadFor(pk: CheckedPublicKey, U: GroupPoint, S: GroupPoint, associatedData: Uint8Array) {
  const info = concatBytes(lengthPrefixed(utf8(pk.json.keyId)), U.toBytes(), pk.groupKey.toBytes());
  const okm = hkdf(nobleSha256, S.toBytes(), kdfSalt, info, 44);
  return chacha20poly1305(
    okm.subarray(0, 32),
    okm.subarray(32),
    concatBytes(info, lengthPrefixed(associatedData)),
  );
}

export function encryptToGroup(
  publicKey: ThresholdPublicKey,
  plaintext: Uint8Array,
  rng: Rng,
  associatedData: Uint8Array = new Uint8Array(),
): ThresholdCiphertext {
  const pk = requireDecryptionKey(publicKey);
  if (plaintext.length > limits.thresholdPlaintextBytesMax)
    throw new EngineError('TOO_LARGE', `plaintext is over ${limits.thresholdPlaintextBytesMax} bytes`);
  const suite = pk.suite;
  const r = scalarFromRandomBytes(suite, rng.bytes(64));
  const U = suite.base.multiply(r);
  const S = pk.groupKey.multiply(r);
  const sealed = aeadFor(pk, U, S, associatedData).encrypt(plaintext);
  const proof = proveKnowledge(suite, proofContext(pk.json.keyId, sealed, associatedData), r, rng.bytes(32));
  return {
    format: 'optimystic-threshold-ciphertext',
    version: 1,
    keyId: pk.json.keyId,
    ephemeral: toBase64Url(U.toBytes()),
    proof: toBase64Url(proof),
    associatedData: toBase64Url(associatedData),
    ciphertext: toBase64Url(sealed),
  };
}

interface ParsedCiphertext {
  U: GroupPoint;
  associatedData: Uint8Array;
  sealed: Uint8Array;
  digest: string;
}

/** Checks the ciphertext's form and its proof; BAD_SIGNATURE when the proof fails (tampered or mauled). */
function parseCiphertext(pk: CheckedPublicKey, ct: ThresholdCiphertext): ParsedCiphertext {
  if (
    ct === null ||
    typeof ct !== 'object' ||
    ct.format !== 'optimystic-threshold-ciphertext' ||
    ct.version !== 1
  ) {
    throw new EngineError('BAD_INPUT', 'not a threshold ciphertext');
  }
  if (ct.keyId !== pk.json.keyId)
    throw new EngineError('BAD_INPUT', `ciphertext is for key ${String(ct.keyId)}, not ${pk.json.keyId}`);
  const suite = pk.suite;
  const U = suite.decodePoint(
    fromBase64Url(ct.ephemeral, 'ciphertext ephemeral key', { length: suite.pointBytes }),
  );
  if (U === undefined)
    throw new EngineError('BAD_SIGNATURE', 'ciphertext ephemeral key is not a valid point');
  const associatedData = fromBase64Url(ct.associatedData, 'associated data', {
    lengthMax: limits.thresholdPlaintextBytesMax,
  });
  const sealed = fromBase64Url(ct.ciphertext, 'ciphertext', {
    lengthMax: limits.thresholdPlaintextBytesMax + 16,
  });
  const proof = fromBase64Url(ct.proof, 'ciphertext proof', { length: 2 * suite.scalarBytes });
  if (!verifyKnowledge(suite, proofContext(pk.json.keyId, sealed, associatedData), U, proof)) {
    throw new EngineError('BAD_SIGNATURE', 'ciphertext proof does not verify: the ciphertext was altered');
  }
  return { U, associatedData, sealed, digest: ciphertextDigest(ct) };
}

function partialContext(keyId: string, digest: string, identifier: number): Uint8Array {
  return concatBytes(
    utf8('optimystic/threshold/partial-decryption/v1'),
    lengthPrefixed(utf8(keyId)),
    lengthPrefixed(utf8(digest)),
    utf8(String(identifier)),
  );
}

/** Holder: checks the ciphertext, then returns s_i·U with a DLEQ proof. */
export function createPartialDecryption(
  publicKey: ThresholdPublicKey,
  share: ThresholdShare,
  ciphertext: ThresholdCiphertext,
  rng: Rng,
): PartialDecryption {
  const pk = requireDecryptionKey(publicKey);
  const { scalar } = checkShare(pk, share);
  const parsed = parseCiphertext(pk, ciphertext);
  const suite = pk.suite;
  const D = parsed.U.multiply(scalar);
  const Y = pk.verifyingShares.get(share.identifier)!;
  const proof = proveDleq(
    suite,
    partialContext(pk.json.keyId, parsed.digest, share.identifier),
    scalar,
    { X: Y, H: parsed.U, K: D },
    rng.bytes(32),
  );
  return {
    keyId: pk.json.keyId,
    identifier: share.identifier,
    ciphertextDigest: parsed.digest,
    share: toBase64Url(D.toBytes()),
    proof: toBase64Url(proof),
  };
}

function partialPoint(
  pk: CheckedPublicKey,
  parsed: ParsedCiphertext,
  partial: PartialDecryption,
): GroupPoint | undefined {
  if (
    partial === null ||
    typeof partial !== 'object' ||
    partial.keyId !== pk.json.keyId ||
    partial.ciphertextDigest !== parsed.digest
  )
    return undefined;
  const Y = typeof partial.identifier === 'number' ? pk.verifyingShares.get(partial.identifier) : undefined;
  if (Y === undefined) return undefined;
  const suite = pk.suite;
  let D: GroupPoint | undefined;
  let proof: Uint8Array;
  try {
    D = suite.decodePoint(fromBase64Url(partial.share, 'partial decryption', { length: suite.pointBytes }));
    proof = fromBase64Url(partial.proof, 'partial decryption proof', { length: 2 * suite.scalarBytes });
  } catch {
    return undefined;
  }
  if (D === undefined) return undefined;
  return verifyDleq(
    suite,
    partialContext(pk.json.keyId, parsed.digest, partial.identifier),
    { X: Y, H: parsed.U, K: D },
    proof,
  )
    ? D
    : undefined;
}

export function verifyPartialDecryption(
  publicKey: ThresholdPublicKey,
  ciphertext: ThresholdCiphertext,
  partial: PartialDecryption,
): boolean {
  const pk = requireDecryptionKey(publicKey);
  return partialPoint(pk, parseCiphertext(pk, ciphertext), partial) !== undefined;
}

export interface CombinedDecryption {
  plaintext: Uint8Array;
  /** Holders whose partials were rejected (invalid proof, wrong ciphertext, malformed), by identifier. */
  rejected: HolderRef[];
}

/**
 * Requester: checks every partial, rejects invalid ones by holder, and decrypts with t valid ones.
 * NO_QUORUM (details.rejected) when fewer than t are valid; BAD_SIGNATURE when the ciphertext's
 * AEAD fails.
 */
export function combinePartialDecryptions(
  publicKey: ThresholdPublicKey,
  ciphertext: ThresholdCiphertext,
  partials: readonly PartialDecryption[],
): CombinedDecryption {
  const pk = requireDecryptionKey(publicKey);
  const parsed = parseCiphertext(pk, ciphertext);
  const valid = new Map<number, GroupPoint>();
  const rejected = new Map<number, HolderRef>();
  for (const partial of partials) {
    const D = partialPoint(pk, parsed, partial);
    const id = partial !== null && typeof partial === 'object' ? partial.identifier : undefined;
    const holder = typeof id === 'number' ? pk.holderByIdentifier.get(id) : undefined;
    if (D !== undefined) {
      if (!valid.has(partial.identifier)) valid.set(partial.identifier, D);
    } else if (holder !== undefined) {
      rejected.set(holder.identifier, { identifier: holder.identifier, peerId: holder.peerId });
    }
  }
  const rejectedList = [...rejected.values()]
    .filter((r) => !valid.has(r.identifier))
    .sort((a, b) => a.identifier - b.identifier);
  const t = pk.json.threshold;
  if (valid.size < t) {
    throw new EngineError('NO_QUORUM', `need ${t} valid partial decryptions, have ${valid.size}`, {
      rejected: rejectedList,
      valid: valid.size,
      threshold: t,
    });
  }
  const chosen = [...valid.keys()].sort((a, b) => a - b).slice(0, t);
  const suite = pk.suite;
  const xs = chosen.map((id) => BigInt(id));
  let S = suite.zero;
  for (const id of chosen) S = S.add(valid.get(id)!.multiplyUnsafe(lagrangeAtZero(suite, xs, BigInt(id))));
  let plaintext: Uint8Array;
  try {
    plaintext = aeadFor(pk, parsed.U, S, parsed.associatedData).decrypt(parsed.sealed);
  } catch {
    throw new EngineError(
      'BAD_SIGNATURE',
      'ciphertext failed authentication: it was altered or made for another key',
    );
  }
  return { plaintext, rejected: rejectedList };
}
