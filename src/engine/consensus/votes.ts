import { canonicalJson } from '../base/codec.js';
import { limits } from '../base/limits.js';
import { membershipHash, verifyEd25519 } from '../transactions/certifier.js';
import type {
  Ballot,
  ConsensusCertificate,
  EquivocationProof,
  GroupHeader,
  SignatureVerifier,
} from './types.js';
import { isBallot, isConsensusValue, isSlot, quorumOf, valueDigest } from './values.js';

/**
 * Signed votes and what is built from them. A vote is an Ed25519 signature over a domain-separated
 * canonical message binding network, block id, membership hash, slot, ballot and value digest, so a
 * vote for one group, slot, ballot or value never counts for another.
 */

const voteDomain = 'optimystic/consensus/vote/v1';

export interface VoteFields extends GroupHeader {
  readonly slot: number;
  readonly ballot: Ballot;
  readonly digest: string;
}

/**
 * The canonical JSON of the vote fields (keys sorted, as `canonicalJson` writes them), built directly:
 * every vote signed or checked goes through here. A unit test pins it to `canonicalJson`.
 */
export function voteText(fields: VoteFields): string {
  const q = JSON.stringify;
  return (
    `{"ballot":{"leader":${q(fields.ballot.leader)},"round":${q(fields.ballot.round)}},` +
    `"blockId":${q(fields.blockId)},"digest":${q(fields.digest)},"domain":${q(voteDomain)},` +
    `"membership":${q(fields.membership)},"network":${q(fields.network)},"slot":${q(fields.slot)}}`
  );
}

/** The canonical form of the vote fields, for reference (and the test that pins `voteText` to it). */
export function voteCanonical(fields: VoteFields): string {
  return canonicalJson({
    domain: voteDomain,
    network: fields.network,
    blockId: fields.blockId,
    membership: fields.membership,
    slot: fields.slot,
    ballot: { round: fields.ballot.round, leader: fields.ballot.leader },
    digest: fields.digest,
  });
}

export function voteMessage(fields: VoteFields): Buffer {
  return Buffer.from(voteText(fields));
}

export const defaultVerifier: SignatureVerifier = verifyEd25519;

/**
 * Votes already found valid: a decision's votes are checked by its leader, again inside its
 * certificate by every member that learns it, and again by every reader. Verification is a pure
 * function, so remembering a bounded number of results changes nothing but the cost.
 */
const validVotes = new Set<string>();

export function verifyVote(
  member: string,
  fields: VoteFields,
  signature: string,
  verify: SignatureVerifier = defaultVerifier,
): boolean {
  if (typeof signature !== 'string' || signature.length === 0 || signature.length > 512) return false;
  const text = voteText(fields);
  const key = verify === defaultVerifier ? `${member}\n${signature}\n${text}` : null;
  if (key !== null && validVotes.has(key)) return true;
  const ok = verify(member, Buffer.from(text), signature);
  if (ok && key !== null) {
    if (validVotes.size >= limits.consensusVerifiedVotesCachedMax) validVotes.clear();
    validVotes.add(key);
  }
  return ok;
}

/** Why a certificate does not verify, or null when it does. */
export function certificateProblem(
  certificate: ConsensusCertificate,
  members: readonly string[],
  network: string,
  verify: SignatureVerifier = defaultVerifier,
): string | null {
  if (typeof certificate !== 'object' || certificate === null) return 'not an object';
  if (certificate.network !== network) return 'wrong network';
  if (certificate.membership !== membershipHash(members)) return 'wrong membership';
  if (typeof certificate.blockId !== 'string') return 'no block id';
  if (!isSlot(certificate.slot)) return 'bad slot';
  if (!isBallot(certificate.ballot) || !members.includes(certificate.ballot.leader)) return 'bad ballot';
  if (!isConsensusValue(certificate.value)) return 'bad value';
  const signatures: readonly unknown[] = certificate.signatures;
  if (!Array.isArray(signatures) || signatures.length > members.length * 2) return 'bad signature list';
  const fields: VoteFields = {
    network,
    blockId: certificate.blockId,
    membership: certificate.membership,
    slot: certificate.slot,
    ballot: certificate.ballot,
    digest: valueDigest(certificate.value),
  };
  const memberSet = new Set(members);
  const signers = new Set<string>();
  const needed = quorumOf(members.length);
  for (const entry of certificate.signatures) {
    if (typeof entry !== 'object' || entry === null) continue;
    const { member, signature } = entry;
    if (typeof member !== 'string') continue;
    if (!memberSet.has(member) || signers.has(member)) continue;
    if (verifyVote(member, fields, signature, verify)) signers.add(member);
    if (signers.size >= needed) return null;
  }
  return `${signers.size} valid signatures of ${needed} needed`;
}

/**
 * Verifies a consensus certificate offline: right network and membership, a well-formed value, and
 * valid votes by a majority of distinct recorded members, all in the certificate's slot and ballot.
 */
export function verifyConsensusCertificate(
  certificate: ConsensusCertificate,
  members: readonly string[],
  network: string,
  verify: SignatureVerifier = defaultVerifier,
): boolean {
  return certificateProblem(certificate, members, network, verify) === null;
}

/** Verifies an equivocation proof offline: two valid votes by one member, one slot and ballot, two values. */
export function verifyEquivocationProof(
  proof: EquivocationProof,
  members: readonly string[],
  network: string,
  verify: SignatureVerifier = defaultVerifier,
): boolean {
  if (proof.network !== network || proof.membership !== membershipHash(members)) return false;
  if (!members.includes(proof.member) || !isSlot(proof.slot) || !isBallot(proof.ballot)) return false;
  const [first, second] = proof.votes;
  if (first.digest === second.digest) return false;
  return proof.votes.every((vote) =>
    verifyVote(
      proof.member,
      {
        network,
        blockId: proof.blockId,
        membership: proof.membership,
        slot: proof.slot,
        ballot: proof.ballot,
        digest: vote.digest,
      },
      vote.signature,
      verify,
    ),
  );
}
