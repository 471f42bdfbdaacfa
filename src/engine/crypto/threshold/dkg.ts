import type { DKG_Round1, DKG_Round2, DKG_Secret } from '@noble/curves/abstract/frost.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { assert } from '../../base/assert.js';
import { equalBytes, utf8 } from '../encoding.js';
import { verifyProofOfPossession } from './proofs.js';
import {
  evaluateCommitments,
  evaluatePolynomial,
  lagrangeAtZero,
  type GroupPoint,
  type Suite,
} from './suites.js';

/**
 * Key generation and resharing as layers over noble's FROST DKG (the Komlo–Goldberg PedPoP
 * scheme). noble computes the polynomial, commitments and proof of possession (round 1), re-checks
 * every other dealer's package (round 2) and aggregates the final share and public key (round 3).
 * What it lacks, and this module adds:
 *
 * - dealing every share at once: the ceremony's deal carries all encrypted shares in the same
 *   broadcast as the commitments, before anyone has seen the other packages, so shares are
 *   evaluated here from round 1's polynomial (noble's round 2 later recomputes them; they must match);
 * - naming the culprit: a proof or share check that fails says which dealer it was;
 * - deterministic round 1 from a seed, so a participant re-derives its own dealing after a restart
 *   of its process (an air-gapped step) and never deals two different polynomials;
 * - resharing: an existing holder deals a polynomial whose constant term is its current share, and
 *   recipients combine the dealings with Lagrange coefficients, which keeps the group key.
 */

/** A dealer's public package, decoded. */
export interface Dealing {
  /** Identifier the proof of possession binds (dealer's index: new for key generation, old for resharing). */
  identifier: number;
  commitments: Uint8Array[];
  proof: Uint8Array;
}

/** Deterministic randomness for noble from a secret seed: HKDF-SHA-256 output blocks with a counter. */
export function seededRandom(seed: Uint8Array, label: string): (length?: number) => Uint8Array<ArrayBuffer> {
  let counter = 0;
  return (length = 32) => {
    assert(length <= 255 * 32, 'seeded randomness is drawn in small pieces');
    return hkdf(sha256, seed, undefined, utf8(`${label}/${counter++}`), length);
  };
}

export interface DealerSecret {
  coefficients: bigint[];
  noble: DKG_Secret;
}

/**
 * Round 1 through noble: a random polynomial of degree t−1 (constant term `constant` when resharing),
 * its commitments, and the proof of possession under the ceremony's context.
 */
export function startDealing(
  suite: Suite,
  context: string | undefined,
  identifier: number,
  threshold: number,
  participants: number,
  random: (length?: number) => Uint8Array<ArrayBuffer>,
  constant?: bigint,
): { dealing: Dealing; secret: DealerSecret } {
  const frost = suite.frostFor(context);
  const secretBytes = constant === undefined ? undefined : suite.encodeScalar(constant);
  const { public: pub, secret } = frost.DKG.round1(
    suite.identifier(identifier),
    { min: threshold, max: participants },
    secretBytes,
    random,
  );
  assert(secret.coefficients !== undefined, 'round 1 keeps the polynomial');
  return {
    dealing: {
      identifier,
      commitments: pub.commitment.map((c) => new Uint8Array(c)),
      proof: new Uint8Array(pub.proofOfKnowledge),
    },
    secret: { coefficients: [...secret.coefficients], noble: secret },
  };
}

/** The share of a recipient (its 1-based identifier) under a dealer's polynomial. */
export function shareFor(suite: Suite, secret: DealerSecret, recipient: number): bigint {
  return evaluatePolynomial(suite, secret.coefficients, BigInt(recipient));
}

export type DealingFault =
  'wrong-commitment-count' | 'invalid-point' | 'bad-proof-of-possession' | 'wrong-constant';

/**
 * Public checks on a dealing: exactly t commitments, each a valid non-identity point, and a proof of
 * possession for this context and identifier. When resharing, the constant commitment must equal
 * the dealer's verifying share in the old key.
 */
export function checkDealing(
  suite: Suite,
  context: string | undefined,
  dealing: Dealing,
  threshold: number,
  expectedConstant?: GroupPoint,
): { points: GroupPoint[] } | { fault: DealingFault } {
  if (dealing.commitments.length !== threshold) return { fault: 'wrong-commitment-count' };
  const points: GroupPoint[] = [];
  for (const bytes of dealing.commitments) {
    const point = suite.decodePoint(bytes);
    if (point === undefined) return { fault: 'invalid-point' };
    points.push(point);
  }
  if (expectedConstant !== undefined && !points[0]!.equals(expectedConstant))
    return { fault: 'wrong-constant' };
  if (
    !verifyProofOfPossession(suite, context, suite.identifier(dealing.identifier), points[0]!, dealing.proof)
  ) {
    return { fault: 'bad-proof-of-possession' };
  }
  return { points };
}

/** Feldman check: share·G equals the dealer's commitments evaluated at the recipient. */
export function shareMatches(
  suite: Suite,
  commitments: readonly GroupPoint[],
  recipient: number,
  share: bigint,
): boolean {
  return suite.base.multiply(share).equals(evaluateCommitments(suite, commitments, BigInt(recipient)));
}

/**
 * Key generation, last step, through noble's rounds 2 and 3: re-derives this participant's round 1
 * from the same seed, checks the other dealings again, checks that the shares it dealt are the ones
 * noble computes, and aggregates. Returns the group commitments and this participant's share.
 */
export function finishKeyGeneration(
  suite: Suite,
  context: string | undefined,
  own: {
    identifier: number;
    threshold: number;
    participants: number;
    random: (length?: number) => Uint8Array<ArrayBuffer>;
  },
  others: readonly Dealing[],
  received: ReadonlyMap<number, bigint>,
): { commitments: GroupPoint[]; share: bigint; verifyingShares: Map<number, Uint8Array> } {
  const frost = suite.frostFor(context);
  const { secret } = startDealing(
    suite,
    context,
    own.identifier,
    own.threshold,
    own.participants,
    own.random,
  );
  const round1: DKG_Round1[] = others.map((d) => ({
    identifier: suite.identifier(d.identifier),
    commitment: d.commitments.map((c) => new Uint8Array(c)),
    proofOfKnowledge: new Uint8Array(d.proof),
  }));
  const outgoing = frost.DKG.round2(secret.noble, round1);
  for (const d of others) {
    const computed = outgoing[suite.identifier(d.identifier)];
    assert(computed !== undefined, 'noble deals to every other participant');
    assert(
      equalBytes(computed.signingShare, suite.encodeScalar(shareFor(suite, secret, d.identifier))),
      'dealt shares equal the ones noble computes',
    );
  }
  const round2: DKG_Round2[] = others.map((d) => {
    const share = received.get(d.identifier);
    assert(share !== undefined, 'a share from every other dealer');
    return {
      identifier: suite.identifier(d.identifier),
      signingShare: suite.encodeScalar(share),
    } as DKG_Round2;
  });
  const key = frost.DKG.round3(secret.noble, round1, round2);
  const commitments = key.public.commitments.map((bytes) => suite.decodePoint(bytes)!);
  const verifyingShares = new Map<number, Uint8Array>();
  for (let id = 1; id <= own.participants; id++) {
    const bytes = key.public.verifyingShares[suite.identifier(id)];
    assert(bytes !== undefined, 'noble reports a verifying share per participant');
    verifyingShares.set(id, new Uint8Array(bytes));
  }
  const share = suite.decodeScalar(key.secret.signingShare);
  assert(share !== undefined, 'noble returns a canonical share');
  return { commitments, share, verifyingShares };
}

/** Group commitments of a fresh key from the dealings' commitments (what non-holders compute). */
export function combineKeyGenerationCommitments(
  suite: Suite,
  dealings: readonly (readonly GroupPoint[])[],
): GroupPoint[] {
  const t = dealings[0]!.length;
  const out: GroupPoint[] = [];
  for (let k = 0; k < t; k++) {
    let acc = suite.zero;
    for (const d of dealings) acc = acc.add(d[k]!);
    out.push(acc);
  }
  return out;
}

/**
 * Resharing, last step: with Q the dealers (old identifiers) and λ their Lagrange coefficients at
 * zero, the new commitments are Σ λ_i·C_i,k and a recipient's new share is Σ λ_i·f_i(j). The
 * constant term is Σ λ_i·s_i = the old group secret, so the group key is unchanged.
 */
export function combineReshare(
  suite: Suite,
  dealings: readonly { oldIdentifier: number; commitments: readonly GroupPoint[] }[],
  received: ReadonlyMap<number, bigint> | undefined,
): { commitments: GroupPoint[]; share: bigint | undefined } {
  const xs = dealings.map((d) => BigInt(d.oldIdentifier));
  const lambdas = dealings.map((d) => lagrangeAtZero(suite, xs, BigInt(d.oldIdentifier)));
  const t = dealings[0]!.commitments.length;
  const commitments: GroupPoint[] = [];
  for (let k = 0; k < t; k++) {
    let acc = suite.zero;
    dealings.forEach((d, i) => {
      acc = acc.add(d.commitments[k]!.multiplyUnsafe(lambdas[i]!));
    });
    commitments.push(acc);
  }
  let share: bigint | undefined;
  if (received !== undefined) {
    share = suite.Fn.ZERO;
    dealings.forEach((d, i) => {
      const part = received.get(d.oldIdentifier);
      assert(part !== undefined, 'a share from every dealer');
      share = suite.Fn.add(share!, suite.Fn.mul(lambdas[i]!, part));
    });
  }
  return { commitments, share };
}
