import type { FROST, NonceCommitments } from '@noble/curves/abstract/frost.js';
import { canonicalJson } from '../../base/codec.js';
import { EngineError } from '../../base/errors.js';
import { limits } from '../../base/limits.js';
import type { Rng } from '../../base/rng.js';
import { fromBase64Url, sha256, toBase64Url, utf8 } from '../encoding.js';
import { verifySignature } from '../identity.js';
import { nobleRng } from './suites.js';
import {
  checkPublicKey,
  checkShare,
  toFrostPublic,
  toFrostSecret,
  type CheckedPublicKey,
  type ThresholdPublicKey,
  type ThresholdShare,
} from './key.js';

/**
 * FROST signing (RFC 9591) with t of n holders, over noble's implementation.
 *
 * Round one: each chosen holder calls `commitToSign`, keeps the secret nonces (single use) and sends
 * the commitment to the coordinator. The coordinator is untrusted: `createSigningPackage` only
 * gathers commitments and the message; every holder re-validates the package in `signPackage`, which
 * refuses a package that does not carry the holder's own commitment unchanged. Round two's shares
 * are checked one by one in `aggregateSignature`; a bad share is named, never silently dropped.
 */

export interface SigningCommitment {
  keyId: string;
  identifier: number;
  hiding: string;
  binding: string;
}

/** Secret, single use: sealed while waiting for the package, deleted right after signing. */
export interface SigningNonces {
  format: 'optimystic-signing-nonces';
  keyId: string;
  session: string;
  identifier: number;
  hiding: string;
  binding: string;
  commitment: SigningCommitment;
}

export interface SigningPackage {
  format: 'optimystic-signing-package';
  keyId: string;
  /** base64url of the message bytes. */
  message: string;
  /** Sorted by identifier. */
  commitments: SigningCommitment[];
}

export interface SignatureShare {
  keyId: string;
  identifier: number;
  /** Digest of the signing package this share answers. */
  packageDigest: string;
  share: string;
}

/** A holder named in a blame: its identifier in the key and its peer id. */
export interface HolderRef {
  identifier: number;
  peerId: string;
}

export function commitToSign(
  publicKey: ThresholdPublicKey,
  share: ThresholdShare,
  rng: Rng,
): { nonces: SigningNonces; commitment: SigningCommitment } {
  const pk = checkPublicKey(publicKey);
  requirePurpose(pk);
  const { scalar } = checkShare(pk, share);
  const generated = pk.suite.frost.commit(toFrostSecret(pk.suite, share.identifier, scalar), nobleRng(rng));
  const commitment: SigningCommitment = {
    keyId: pk.json.keyId,
    identifier: share.identifier,
    hiding: toBase64Url(generated.commitments.hiding),
    binding: toBase64Url(generated.commitments.binding),
  };
  const nonces: SigningNonces = {
    format: 'optimystic-signing-nonces',
    keyId: pk.json.keyId,
    session: pk.json.session,
    identifier: share.identifier,
    hiding: toBase64Url(generated.nonces.hiding),
    binding: toBase64Url(generated.nonces.binding),
    commitment,
  };
  generated.nonces.hiding.fill(0);
  generated.nonces.binding.fill(0);
  return { nonces, commitment };
}

/** Coordinator: gathers t..n commitments and the message into one package. */
export function createSigningPackage(
  publicKey: ThresholdPublicKey,
  message: Uint8Array,
  commitments: readonly SigningCommitment[],
): SigningPackage {
  const pk = checkPublicKey(publicKey);
  requirePurpose(pk);
  const pkg: SigningPackage = {
    format: 'optimystic-signing-package',
    keyId: pk.json.keyId,
    message: toBase64Url(message),
    commitments: [...commitments].sort((a, b) => a.identifier - b.identifier),
  };
  parsePackage(pk, pkg);
  return pkg;
}

export function signingPackageDigest(pkg: SigningPackage): string {
  return toBase64Url(sha256(utf8('optimystic/threshold/signing-package/v1\n'), utf8(canonicalJson(pkg))));
}

interface ParsedPackage {
  message: Uint8Array;
  list: NonceCommitments[];
  identifiers: number[];
}

function parsePackage(pk: CheckedPublicKey, pkg: SigningPackage): ParsedPackage {
  const bad = (what: string): never => {
    throw new EngineError('BAD_INPUT', `signing package: ${what}`);
  };
  if (pkg === null || typeof pkg !== 'object' || pkg.format !== 'optimystic-signing-package')
    return bad('unknown format');
  if (pkg.keyId !== pk.json.keyId) bad('made for another key');
  const message = fromBase64Url(pkg.message, 'message', { lengthMax: limits.thresholdMessageBytesMax });
  if (!Array.isArray(pkg.commitments)) return bad('commitments must be an array');
  const t = pk.json.threshold;
  const n = pk.json.holders.length;
  if (pkg.commitments.length < t || pkg.commitments.length > n)
    bad(`needs ${t} to ${n} commitments, got ${pkg.commitments.length}`);
  const suite = pk.suite;
  const list: NonceCommitments[] = [];
  const identifiers: number[] = [];
  let previous = 0;
  for (const c of pkg.commitments) {
    if (c === null || typeof c !== 'object' || c.keyId !== pk.json.keyId)
      return bad('a commitment is for another key');
    if (!pk.holderByIdentifier.has(c.identifier)) bad(`identifier ${String(c.identifier)} holds no share`);
    if (c.identifier <= previous) bad('commitments must be sorted by identifier, without repeats');
    previous = c.identifier;
    const hiding = fromBase64Url(c.hiding, 'hiding commitment', { length: suite.pointBytes });
    const binding = fromBase64Url(c.binding, 'binding commitment', { length: suite.pointBytes });
    if (suite.decodePoint(hiding) === undefined || suite.decodePoint(binding) === undefined)
      bad(`commitment of ${c.identifier} is not a valid point`);
    list.push({ identifier: suite.identifier(c.identifier), hiding, binding } as NonceCommitments);
    identifiers.push(c.identifier);
  }
  return { message, list, identifiers };
}

/**
 * Holder, round two. Checks the package (key, commitments, own commitment unchanged) and returns the
 * signature share. The nonces must never be used again: the caller deletes them afterwards.
 */
export function signPackage(
  publicKey: ThresholdPublicKey,
  share: ThresholdShare,
  nonces: SigningNonces,
  pkg: SigningPackage,
): SignatureShare {
  const pk = checkPublicKey(publicKey);
  requirePurpose(pk);
  const { scalar } = checkShare(pk, share);
  const suite = pk.suite;
  if (
    nonces.format !== 'optimystic-signing-nonces' ||
    nonces.keyId !== pk.json.keyId ||
    nonces.identifier !== share.identifier
  ) {
    throw new EngineError('BAD_INPUT', 'these signing nonces belong to another key or holder');
  }
  if (nonces.session !== pk.json.session)
    throw new EngineError('BAD_INPUT', 'these signing nonces predate a refresh of the key');
  const parsed = parsePackage(pk, pkg);
  const own = pkg.commitments.find((c) => c.identifier === share.identifier);
  if (own === undefined)
    throw new EngineError('BAD_INPUT', 'the signing package does not include this holder');
  if (own.hiding !== nonces.commitment.hiding || own.binding !== nonces.commitment.binding) {
    throw new EngineError(
      'BAD_INPUT',
      'the signing package carries a different commitment for this holder (the nonces were not made for it)',
    );
  }
  const secretNonces = {
    hiding: fromBase64Url(nonces.hiding, 'hiding nonce', { length: suite.scalarBytes }),
    binding: fromBase64Url(nonces.binding, 'binding nonce', { length: suite.scalarBytes }),
  };
  const frost: FROST = suite.frost;
  let shareBytes: Uint8Array;
  try {
    shareBytes = frost.signShare(
      toFrostSecret(suite, share.identifier, scalar),
      toFrostPublic(pk),
      secretNonces,
      parsed.list,
      parsed.message,
    );
  } catch (error) {
    throw new EngineError(
      'BAD_INPUT',
      `cannot sign this package: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  return {
    keyId: pk.json.keyId,
    identifier: share.identifier,
    packageDigest: signingPackageDigest(pkg),
    share: toBase64Url(shareBytes),
  };
}

/** Checks one signature share against the holder's verifying share (RFC 9591 §5.4). */
export function verifySignatureShare(
  publicKey: ThresholdPublicKey,
  pkg: SigningPackage,
  share: SignatureShare,
): boolean {
  const pk = checkPublicKey(publicKey);
  const parsed = parsePackage(pk, pkg);
  return shareIsValid(pk, pkg, parsed, share);
}

function shareIsValid(
  pk: CheckedPublicKey,
  pkg: SigningPackage,
  parsed: ParsedPackage,
  share: SignatureShare,
): boolean {
  if (share === null || typeof share !== 'object' || share.keyId !== pk.json.keyId) return false;
  if (!parsed.identifiers.includes(share.identifier) || share.packageDigest !== signingPackageDigest(pkg))
    return false;
  const suite = pk.suite;
  let bytes: Uint8Array;
  try {
    bytes = fromBase64Url(share.share, 'signature share', { length: suite.scalarBytes });
  } catch {
    return false;
  }
  if (suite.decodeScalar(bytes) === undefined) return false;
  try {
    return suite.frost.verifyShare(
      toFrostPublic(pk),
      parsed.list,
      parsed.message,
      suite.identifier(share.identifier),
      bytes,
    );
  } catch {
    return false;
  }
}

/** Holders whose share is missing or invalid, sorted by identifier. */
export function findInvalidSignatureShares(
  publicKey: ThresholdPublicKey,
  pkg: SigningPackage,
  shares: readonly SignatureShare[],
): HolderRef[] {
  const pk = checkPublicKey(publicKey);
  const parsed = parsePackage(pk, pkg);
  const culprits: HolderRef[] = [];
  for (const id of parsed.identifiers) {
    const candidates = shares.filter((s) => s !== null && typeof s === 'object' && s.identifier === id);
    if (candidates.length !== 1 || !shareIsValid(pk, pkg, parsed, candidates[0]!)) {
      culprits.push({ identifier: id, peerId: pk.holderByIdentifier.get(id)!.peerId });
    }
  }
  return culprits;
}

/**
 * Coordinator, last step: checks every share, then aggregates. Throws BAD_SIGNATURE naming every
 * holder whose share is missing or invalid (details.culprits); the coordinator may then start over
 * without them.
 */
export function aggregateSignature(
  publicKey: ThresholdPublicKey,
  pkg: SigningPackage,
  shares: readonly SignatureShare[],
): Uint8Array {
  const pk = checkPublicKey(publicKey);
  requirePurpose(pk);
  const parsed = parsePackage(pk, pkg);
  const culprits = findInvalidSignatureShares(publicKey, pkg, shares);
  if (culprits.length > 0) {
    throw new EngineError(
      'BAD_SIGNATURE',
      `invalid signature share from ${culprits.map((c) => c.peerId).join(', ')}`,
      { culprits },
    );
  }
  const suite = pk.suite;
  const byId: Record<string, Uint8Array> = {};
  for (const s of shares) byId[suite.identifier(s.identifier)] = fromBase64Url(s.share, 'signature share');
  const signature = suite.frost.aggregate(toFrostPublic(pk), parsed.list, parsed.message, byId);
  if (!verifyGroupSignature(publicKey, parsed.message, signature)) {
    throw new EngineError('BAD_SIGNATURE', 'the aggregated signature does not verify');
  }
  return signature;
}

/**
 * Verifies a group signature. Ed25519 keys go through node:crypto, as any RFC 8032 verifier would;
 * secp256k1 keys through the suite's Schnorr verification (RFC 9591 Appendix A encoding).
 */
export function verifyGroupSignature(
  publicKey: ThresholdPublicKey,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  const pk = checkPublicKey(publicKey);
  const groupKey = pk.groupKey.toBytes();
  if (pk.suite.id === 'ed25519-sha512') return verifySignature(groupKey, message, signature);
  try {
    return pk.suite.frost.verify(signature, message, groupKey);
  } catch {
    return false;
  }
}

function requirePurpose(pk: CheckedPublicKey): void {
  if (pk.json.purpose !== 'sign')
    throw new EngineError('BAD_INPUT', `key ${pk.json.keyId} is for ${pk.json.purpose}, not signing`);
}
