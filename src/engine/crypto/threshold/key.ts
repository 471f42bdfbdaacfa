import type { FrostPublic, FrostSecret } from '@noble/curves/abstract/frost.js';
import { canonicalJson } from '../../base/codec.js';
import { EngineError, type ErrorCode } from '../../base/errors.js';
import { limits } from '../../base/limits.js';
import { equalBytes, fromBase64Url, sha256, toBase64Url, tryFromBase64Url, utf8 } from '../encoding.js';
import { publicKeyFromPeerId } from '../identity.js';
import {
  evaluateCommitments,
  getSuite,
  isSuiteId,
  type GroupPoint,
  type Suite,
  type SuiteId,
} from './suites.js';

/**
 * Threshold key material as JSON. The public key is what every holder and user keeps (group key,
 * the Feldman commitments of the sharing polynomial, each holder's verifying share); a share is one
 * holder's secret. Identifiers are the 1-based positions the ceremony assigned. A key id names the
 * key across refreshes and reshares: it depends only on the suite and the group key.
 */

export const keyPurposes = ['sign', 'decrypt'] as const;
export type KeyPurpose = (typeof keyPurposes)[number];

export interface KeyHolder {
  peerId: string;
  identifier: number;
  verifyingShare: string;
}

export interface ThresholdPublicKey {
  format: 'optimystic-threshold-key';
  version: 1;
  keyId: string;
  suite: SuiteId;
  purpose: KeyPurpose;
  label: string;
  threshold: number;
  groupKey: string;
  /** Feldman commitments to the sharing polynomial; commitments[0] is the group key. */
  commitments: string[];
  holders: KeyHolder[];
  /** Session id of the ceremony that produced this generation of shares. */
  session: string;
}

export interface ThresholdShare {
  format: 'optimystic-threshold-share';
  version: 1;
  keyId: string;
  suite: SuiteId;
  session: string;
  peerId: string;
  identifier: number;
  /** The secret scalar; kept only inside a sealed envelope. */
  signingShare: string;
}

/** Which suites a purpose may use: signing wants a signature standard, decryption a prime-order group. */
export function suiteFitsPurpose(suite: SuiteId, purpose: KeyPurpose): boolean {
  return purpose === 'decrypt' ? suite === 'ristretto255-sha512' : suite !== 'ristretto255-sha512';
}

function keyIdDigest(suite: SuiteId, groupKey: Uint8Array): Uint8Array {
  return sha256(utf8(`optimystic/threshold/key-id/v1/${suite}/`), groupKey).subarray(0, 16);
}

/** The id of a key id digest (keyIdFor); the digest is copied, not changed. */
function keyIdOf(digest: Uint8Array): string {
  const id = Uint8Array.from(digest);
  id[0]! &= 0x7f;
  return toBase64Url(id);
}

/**
 * A key's id: 16 bytes of a domain-separated hash of suite and group key, base64url, with the top bit
 * of the first byte cleared so the id starts with A-Z or a-f. An id starting with '-' (1 key in 64
 * otherwise) would be read as a flag wherever a command takes it as an argument.
 */
export function keyIdFor(suite: SuiteId, groupKey: Uint8Array): string {
  return keyIdOf(keyIdDigest(suite, groupKey));
}

/** Whether an id belongs to this group key: the current form, or the full digest keys made before it had. */
export function keyIdMatches(id: unknown, suite: SuiteId, groupKey: Uint8Array): boolean {
  const digest = keyIdDigest(suite, groupKey);
  return id === keyIdOf(digest) || id === toBase64Url(digest);
}

export function publicKeyDigest(publicKey: ThresholdPublicKey): string {
  return toBase64Url(sha256(utf8('optimystic/threshold/public-key/v1\n'), utf8(canonicalJson(publicKey))));
}

/** A public key with its points decoded, after every consistency check. */
export interface CheckedPublicKey {
  json: ThresholdPublicKey;
  suite: Suite;
  groupKey: GroupPoint;
  commitments: GroupPoint[];
  verifyingShares: Map<number, GroupPoint>;
  holderByIdentifier: Map<number, KeyHolder>;
  holderByPeer: Map<string, KeyHolder>;
}

/** Checked keys by canonical text: signing and decrypting re-check the same key many times. */
const checkedCache = new Map<string, CheckedPublicKey>();

/**
 * Validates a public key from JSON: shape, suite and purpose, 2 ≤ t ≤ n, distinct holders, every
 * point canonical, commitments[0] = group key, and each verifying share equal to the commitments
 * evaluated at its identifier. `code` is BAD_INPUT for requests and messages, CORRUPT for stored keys.
 */
export function checkPublicKey(value: unknown, code: ErrorCode = 'BAD_INPUT'): CheckedPublicKey {
  let cacheKey: string | undefined;
  try {
    cacheKey = canonicalJson(value);
  } catch {
    cacheKey = undefined;
  }
  const cached = cacheKey === undefined ? undefined : checkedCache.get(cacheKey);
  if (cached !== undefined) return cached;
  const bad = (what: string): never => {
    throw new EngineError(code, `threshold public key: ${what}`);
  };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return bad('not an object');
  const v = value as Record<string, unknown>;
  if (v.format !== 'optimystic-threshold-key' || v.version !== 1) bad('unknown format or version');
  if (!isSuiteId(v.suite)) return bad('unknown suite');
  if (v.purpose !== 'sign' && v.purpose !== 'decrypt') return bad('unknown purpose');
  if (!suiteFitsPurpose(v.suite, v.purpose)) bad(`suite ${v.suite} is not used for ${v.purpose}`);
  if (typeof v.label !== 'string' || v.label.length > limits.ceremonyLabelCharsMax) bad('bad label');
  if (typeof v.session !== 'string' || tryFromBase64Url(v.session, 32) === undefined) bad('bad session id');
  if (!Array.isArray(v.holders) || !Array.isArray(v.commitments))
    return bad('holders and commitments must be arrays');
  const n = v.holders.length;
  const t = v.threshold;
  if (typeof t !== 'number' || !Number.isInteger(t) || t < 2 || t > n || n > limits.ceremonyParticipantsMax) {
    bad(`threshold ${String(t)} of ${n} holders is out of range`);
  }
  const suite = getSuite(v.suite);
  const decode = (text: unknown, what: string): GroupPoint => {
    const bytes = tryFromBase64Url(text, suite.pointBytes);
    const point = bytes === undefined ? undefined : suite.decodePoint(bytes);
    return point ?? bad(`${what} is not a valid point`);
  };
  const groupKey = decode(v.groupKey, 'group key');
  if (v.commitments.length !== t) bad('commitment count differs from the threshold');
  const commitments = v.commitments.map((c, i) => decode(c, `commitment ${i}`));
  if (!commitments[0]!.equals(groupKey)) bad('the first commitment is not the group key');
  if (!keyIdMatches(v.keyId, v.suite, groupKey.toBytes())) bad('key id does not match the group key');
  const verifyingShares = new Map<number, GroupPoint>();
  const holderByIdentifier = new Map<number, KeyHolder>();
  const holderByPeer = new Map<string, KeyHolder>();
  const holders: KeyHolder[] = [];
  for (const h of v.holders as unknown[]) {
    if (h === null || typeof h !== 'object') return bad('a holder is not an object');
    const holder = h as Record<string, unknown>;
    const id = holder.identifier;
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 1 || id > limits.ceremonyParticipantsMax)
      return bad('bad holder identifier');
    if (typeof holder.peerId !== 'string') return bad('bad holder peer id');
    publicKeyFromPeerId(holder.peerId, code);
    if (holderByIdentifier.has(id) || holderByPeer.has(holder.peerId)) bad('duplicate holder');
    const share = decode(holder.verifyingShare, `verifying share of ${id}`);
    if (!share.equals(evaluateCommitments(suite, commitments, BigInt(id))))
      bad(`verifying share of ${id} does not match the commitments`);
    const clean: KeyHolder = {
      peerId: holder.peerId,
      identifier: id,
      verifyingShare: holder.verifyingShare as string,
    };
    holders.push(clean);
    verifyingShares.set(id, share);
    holderByIdentifier.set(id, clean);
    holderByPeer.set(clean.peerId, clean);
  }
  const json: ThresholdPublicKey = {
    format: 'optimystic-threshold-key',
    version: 1,
    keyId: v.keyId as string,
    suite: v.suite,
    purpose: v.purpose,
    label: v.label as string,
    threshold: t as number,
    groupKey: v.groupKey as string,
    commitments: v.commitments as string[],
    holders,
    session: v.session as string,
  };
  const checked: CheckedPublicKey = {
    json,
    suite,
    groupKey,
    commitments,
    verifyingShares,
    holderByIdentifier,
    holderByPeer,
  };
  if (cacheKey !== undefined) {
    if (checkedCache.size >= limits.cryptoCheckedKeysCacheEntriesMax)
      checkedCache.delete(checkedCache.keys().next().value!);
    checkedCache.set(cacheKey, checked);
  }
  return checked;
}

/** A share checked against its public key: same key, known holder, s·G equal to the verifying share. */
export function checkShare(
  publicKey: CheckedPublicKey,
  value: unknown,
  code: ErrorCode = 'BAD_INPUT',
): { json: ThresholdShare; scalar: bigint } {
  const bad = (what: string): never => {
    throw new EngineError(code, `threshold share: ${what}`);
  };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return bad('not an object');
  const v = value as Record<string, unknown>;
  if (v.format !== 'optimystic-threshold-share' || v.version !== 1) bad('unknown format or version');
  if (v.keyId !== publicKey.json.keyId || v.suite !== publicKey.json.suite) bad('belongs to another key');
  if (v.session !== publicKey.json.session)
    bad('belongs to another generation of this key (refreshed or reshared since)');
  if (typeof v.identifier !== 'number') return bad('bad identifier');
  const holder = publicKey.holderByIdentifier.get(v.identifier);
  if (holder === undefined || holder.peerId !== v.peerId) return bad('not a holder of this key');
  const suite = publicKey.suite;
  const bytes = fromBase64Url(v.signingShare, 'signing share', { length: suite.scalarBytes, code });
  const scalar = suite.decodeScalar(bytes);
  if (scalar === undefined || suite.Fn.is0(scalar)) return bad('signing share is not a scalar');
  const expected = publicKey.verifyingShares.get(v.identifier)!;
  if (!equalBytes(suite.base.multiply(scalar).toBytes(), expected.toBytes())) {
    throw new EngineError('BAD_SIGNATURE', 'threshold share does not match its verifying share');
  }
  return { json: value as unknown as ThresholdShare, scalar };
}

/** noble's view of a public key. */
export function toFrostPublic(publicKey: CheckedPublicKey): FrostPublic {
  const suite = publicKey.suite;
  const verifyingShares: Record<string, Uint8Array> = {};
  for (const [id, point] of publicKey.verifyingShares)
    verifyingShares[suite.identifier(id)] = point.toBytes();
  return {
    signers: { min: publicKey.json.threshold, max: publicKey.json.holders.length },
    commitments: publicKey.commitments.map((c) => c.toBytes()),
    verifyingShares,
  } as FrostPublic;
}

export function toFrostSecret(suite: Suite, identifier: number, scalar: bigint): FrostSecret {
  return {
    identifier: suite.identifier(identifier),
    signingShare: suite.encodeScalar(scalar),
  } as FrostSecret;
}

/** Builds the public key JSON from decoded parts (the ceremony's last step). */
export function buildPublicKey(input: {
  suite: Suite;
  purpose: KeyPurpose;
  label: string;
  threshold: number;
  commitments: readonly GroupPoint[];
  holders: readonly { peerId: string; identifier: number }[];
  session: string;
  /** The key's id when it already has one (refresh and reshare keep it); derived otherwise. */
  keyId?: string | undefined;
}): ThresholdPublicKey {
  const { suite, commitments } = input;
  const groupKey = commitments[0]!;
  return {
    format: 'optimystic-threshold-key',
    version: 1,
    keyId: input.keyId ?? keyIdFor(suite.id, groupKey.toBytes()),
    suite: suite.id,
    purpose: input.purpose,
    label: input.label,
    threshold: input.threshold,
    groupKey: toBase64Url(groupKey.toBytes()),
    commitments: commitments.map((c) => toBase64Url(c.toBytes())),
    holders: input.holders.map((h) => ({
      peerId: h.peerId,
      identifier: h.identifier,
      verifyingShare: toBase64Url(evaluateCommitments(suite, commitments, BigInt(h.identifier)).toBytes()),
    })),
    session: input.session,
  };
}
