import { concatBytes, lengthPrefixed, utf8 } from '../encoding.js';
import type { GroupPoint, Suite } from './suites.js';

/**
 * Zero-knowledge proofs over a suite's group (Fiat–Shamir, challenges from the suite's
 * hash-to-scalar with an Optimystic prefix, every statement element and a caller context hashed in):
 *
 * - DLEQ (Chaum–Pedersen): log_G(X) = log_H(K) without revealing the logarithm. Used by complaints
 *   (the complainer reveals its ECDH key and proves it is x·E for its published X = x·G) and by
 *   partial decryptions (D = s·U for the holder's verifying share Y = s·G).
 * - Schnorr proof of knowledge of log_G(X), used by threshold ciphertexts.
 * - Verification of the key-generation proof of possession noble's DKG produces (RFC 9591-style
 *   Schnorr with the DKG prefix), so a faulty dealer can be named before noble's own checks run.
 *
 * Nonces are hedged: derived from the secret, the statement and fresh bytes from the caller.
 */

const dleqTag = utf8('optimystic/threshold/dleq/v1');
const dleqNonceTag = utf8('optimystic/threshold/dleq-nonce/v1');
const pokTag = utf8('optimystic/threshold/pok/v1');
const pokNonceTag = utf8('optimystic/threshold/pok-nonce/v1');

export interface DleqStatement {
  /** X = x·G */
  X: GroupPoint;
  /** The second base. */
  H: GroupPoint;
  /** K = x·H */
  K: GroupPoint;
}

function dleqChallenge(
  suite: Suite,
  context: Uint8Array,
  s: DleqStatement,
  A1: GroupPoint,
  A2: GroupPoint,
): bigint {
  return suite.hashToScalar(
    dleqTag,
    concatBytes(
      lengthPrefixed(context),
      suite.base.toBytes(),
      s.X.toBytes(),
      s.H.toBytes(),
      s.K.toBytes(),
      A1.toBytes(),
      A2.toBytes(),
    ),
  );
}

/** Proof (challenge ‖ response, two scalars) that K = x·H for the X = x·G in the statement. */
export function proveDleq(
  suite: Suite,
  context: Uint8Array,
  x: bigint,
  statement: DleqStatement,
  freshBytes: Uint8Array,
): Uint8Array {
  const nonceInput = concatBytes(
    suite.encodeScalar(x),
    lengthPrefixed(context),
    statement.H.toBytes(),
    statement.K.toBytes(),
    freshBytes,
  );
  const k = nonceScalar(suite, dleqNonceTag, nonceInput);
  const A1 = suite.base.multiply(k);
  const A2 = statement.H.multiply(k);
  const c = dleqChallenge(suite, context, statement, A1, A2);
  const z = suite.Fn.add(k, suite.Fn.mul(c, x));
  return concatBytes(suite.encodeScalar(c), suite.encodeScalar(z));
}

export function verifyDleq(
  suite: Suite,
  context: Uint8Array,
  statement: DleqStatement,
  proof: Uint8Array,
): boolean {
  const n = suite.scalarBytes;
  if (proof.length !== 2 * n) return false;
  const c = suite.decodeScalar(proof.subarray(0, n));
  const z = suite.decodeScalar(proof.subarray(n));
  if (c === undefined || z === undefined) return false;
  const A1 = suite.base.multiplyUnsafe(z).subtract(statement.X.multiplyUnsafe(c));
  const A2 = statement.H.multiplyUnsafe(z).subtract(statement.K.multiplyUnsafe(c));
  return suite.Fn.eql(dleqChallenge(suite, context, statement, A1, A2), c);
}

function pokChallenge(suite: Suite, context: Uint8Array, X: GroupPoint, R: GroupPoint): bigint {
  return suite.hashToScalar(pokTag, concatBytes(lengthPrefixed(context), X.toBytes(), R.toBytes()));
}

/** Schnorr proof (challenge ‖ response) of knowledge of x with X = x·G, bound to a context. */
export function proveKnowledge(
  suite: Suite,
  context: Uint8Array,
  x: bigint,
  freshBytes: Uint8Array,
): Uint8Array {
  const X = suite.base.multiply(x);
  const k = nonceScalar(
    suite,
    pokNonceTag,
    concatBytes(suite.encodeScalar(x), lengthPrefixed(context), freshBytes),
  );
  const R = suite.base.multiply(k);
  const c = pokChallenge(suite, context, X, R);
  return concatBytes(suite.encodeScalar(c), suite.encodeScalar(suite.Fn.add(k, suite.Fn.mul(c, x))));
}

export function verifyKnowledge(
  suite: Suite,
  context: Uint8Array,
  X: GroupPoint,
  proof: Uint8Array,
): boolean {
  const n = suite.scalarBytes;
  if (proof.length !== 2 * n) return false;
  const c = suite.decodeScalar(proof.subarray(0, n));
  const z = suite.decodeScalar(proof.subarray(n));
  if (c === undefined || z === undefined) return false;
  const R = suite.base.multiplyUnsafe(z).subtract(X.multiplyUnsafe(c));
  return suite.Fn.eql(pokChallenge(suite, context, X, R), c);
}

/**
 * Checks a DKG proof of possession as noble's FROST DKG writes it: R ‖ μ with
 * R = μ·G − c·C₀ and c = H_dkg(identifier ‖ C₀ ‖ R), where H_dkg carries the suite's DKG prefix
 * (bound to the ceremony context when one is given).
 */
export function verifyProofOfPossession(
  suite: Suite,
  context: string | undefined,
  identifier: string,
  constantCommitment: GroupPoint,
  proof: Uint8Array,
): boolean {
  const pointBytes = suite.pointBytes;
  if (proof.length !== pointBytes + suite.scalarBytes) return false;
  const R = suite.decodePoint(proof.subarray(0, pointBytes));
  const mu = suite.decodeScalar(proof.subarray(pointBytes));
  if (R === undefined || mu === undefined) return false;
  const idBytes = Buffer.from(identifier, 'hex');
  const c = suite.hashToScalar(
    suite.proofTag(context),
    concatBytes(idBytes, constantCommitment.toBytes(), R.toBytes()),
  );
  return suite.base.multiplyUnsafe(mu).subtract(constantCommitment.multiplyUnsafe(c)).equals(R);
}

function nonceScalar(suite: Suite, tag: Uint8Array, input: Uint8Array): bigint {
  // The suite's hash-to-scalar is already uniform over the field; zero is skipped (never in practice).
  for (let counter = 0; ; counter++) {
    const k = suite.hashToScalar(tag, concatBytes(Uint8Array.of(counter), input));
    if (!suite.Fn.is0(k)) return k;
  }
}
