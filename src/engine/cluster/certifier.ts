import { EngineError } from '../base/errors.js';
import type { Certificate } from '../collections/log/log-block.js';
import { ConsensusCertifier, verifyConsensusLogCertificate } from '../consensus/consensus-certifier.js';
import type { ConsensusProposer } from '../consensus/memory-network.js';
import { isMemberList, sortedMemberList } from '../consensus/values.js';
import {
  membershipHash,
  verifyCertificate,
  type Certifier,
  type DecisionFields,
  type EntryContext,
  type RecoveredDecision,
} from '../transactions/certifier.js';

/** A certificate that names the members its quorum is counted against. */
export interface MemberCertificate extends Certificate {
  readonly members: readonly string[];
}

/** True when two membership lists name the same members (`a` sorted, as certificates and groups keep it). */
export function sameMembers(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const sorted = [...b].sort();
  return a.every((member, i) => member === sorted[i]);
}

/** The recorded members of a log block (its consensus group), or undefined when it is not found. */
export type MembersOf = (logBlockId: string) => Promise<readonly string[] | undefined>;

/**
 * Checks that each certificate's named members are the group recorded in the log block it names:
 * a quorum of members someone made up is no quorum. Recorded memberships never change, so they are
 * cached. Throws BAD_CERTIFICATE.
 */
export class MembershipCheck {
  private readonly recorded = new Map<string, readonly string[]>();

  constructor(private readonly membersOf: MembersOf) {}

  async check(certificates: readonly Certificate[]): Promise<void> {
    for (const certificate of certificates) {
      const named = (certificate as Partial<MemberCertificate>).members;
      if (named === undefined) continue;
      let members = this.recorded.get(certificate.blockId);
      if (members === undefined) {
        members = await this.membersOf(certificate.blockId);
        if (members === undefined)
          throw new EngineError(
            'BAD_CERTIFICATE',
            `certificate names log block ${certificate.blockId}, which is not found`,
          );
        if (this.recorded.size >= 4096) this.recorded.clear();
        this.recorded.set(certificate.blockId, members);
      }
      if (!Array.isArray(named) || !sameMembers(named, members))
        throw new EngineError(
          'BAD_CERTIFICATE',
          `certificate for ${certificate.trxId} names members other than those recorded in log block ${certificate.blockId}`,
        );
    }
  }
}

/**
 * Certificates of a networked node: decided by the tail group's consensus, and carrying the group's
 * member list so any holder can count the quorum without fetching the log block (the list must hash
 * to the certificate's membership). Certificates a node issued alone before it joined a network
 * (one signature over the decision message) still verify.
 */
export class NetworkCertifier implements Certifier {
  private readonly consensus: ConsensusCertifier;

  constructor(
    proposer: ConsensusProposer,
    private readonly network: string,
  ) {
    this.consensus = new ConsensusCertifier({ proposer }, { network });
  }

  async certify(
    fields: Omit<DecisionFields, 'network' | 'membership'>,
    members: readonly string[],
    entry?: EntryContext,
  ): Promise<Certificate> {
    const sorted = sortedMemberList(members);
    if (sorted.length === 0) throw new EngineError('INTERNAL', 'a decision needs a group');
    const certificate = await this.consensus.certify(fields, sorted, entry);
    const named: MemberCertificate = { ...certificate, members: sorted };
    return named;
  }

  votedBeyond(blockId: string, members: readonly string[], lsn: number): Promise<boolean> {
    return this.consensus.votedBeyond(blockId, members, lsn);
  }

  decidedElsewhere(
    error: unknown,
    collection: string,
    members: readonly string[],
  ): readonly RecoveredDecision[] | undefined {
    const sorted = sortedMemberList(members);
    return this.consensus.decidedElsewhere(error, collection, sorted)?.map((decision) => {
      const named: MemberCertificate = { ...decision.certificate, members: sorted };
      return { ...decision, certificate: named };
    });
  }

  verify(certificate: Certificate, members: readonly string[]): boolean {
    return verifyNetworkCertificate(certificate, members, this.network);
  }
}

/**
 * Whether a certificate of `network` carries a quorum: counted against the members it names when they
 * hash to its membership, else against `members`; decided by consensus, or issued by a node alone.
 */
export function verifyNetworkCertificate(
  certificate: Certificate,
  members: readonly string[],
  network: string,
): boolean {
  if (certificate.network !== network) return false;
  const named = (certificate as Partial<MemberCertificate>).members;
  const list = isMemberList(named) ? sortedMemberList(named) : undefined;
  const group = list !== undefined && membershipHash(list) === certificate.membership ? list : members;
  if ('consensus' in certificate) return verifyConsensusLogCertificate(certificate, group, network);
  return verifyCertificate(certificate, group);
}

/** What a certificate shows by itself (checkCertificateAlone). */
export interface CertificateCheck {
  readonly status: 'verified' | 'invalid' | 'unverifiable';
  /** Why it is not verified. */
  readonly detail?: string;
  /** The members whose signatures were counted (verified only). */
  readonly signers?: readonly string[];
  /** The membership the quorum was counted against. */
  readonly members?: readonly string[];
}

const decisions: ReadonlySet<unknown> = new Set(['prepared', 'committed', 'aborted']);

/** True when `value` has a certificate's fields with their types (nothing about its signatures yet). */
export function isCertificateShape(value: unknown): value is Certificate {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const c = value as Record<string, unknown>;
  return (
    typeof c['network'] === 'string' &&
    typeof c['collection'] === 'string' &&
    typeof c['blockId'] === 'string' &&
    typeof c['trxId'] === 'string' &&
    typeof c['membership'] === 'string' &&
    Number.isSafeInteger(c['lsn']) &&
    decisions.has(c['decision']) &&
    Array.isArray(c['signatures']) &&
    c['signatures'].every(
      (s: unknown) =>
        typeof s === 'object' &&
        s !== null &&
        typeof (s as Record<string, unknown>)['member'] === 'string' &&
        typeof (s as Record<string, unknown>)['signature'] === 'string',
    )
  );
}

/**
 * Checks a certificate with nothing else at hand (a transaction's result, a file): that a majority of
 * the membership it was taken against signed its decision with their Ed25519 keys (a member id is its
 * public key). That membership is the member list a networked node's certificate names, or for one
 * that names none (a solo node's), its signers — either must hash to the certificate's `membership`,
 * else it is `unverifiable` alone. Whether those members are the group the collection's log recorded
 * needs the log: `block verify ID` checks that too.
 */
export function checkCertificateAlone(certificate: unknown): CertificateCheck {
  if (!isCertificateShape(certificate))
    return {
      status: 'invalid',
      detail:
        'not a commit certificate (network, collection, blockId, lsn, trxId, decision, membership, signatures)',
    };
  const named = (certificate as Partial<MemberCertificate>).members;
  let members: readonly string[];
  if (named !== undefined) {
    if (!isMemberList(named)) return { status: 'invalid', detail: 'its member list is malformed' };
    members = sortedMemberList(named);
    if (membershipHash(members) !== certificate.membership)
      return { status: 'invalid', detail: 'the members it names do not hash to its membership' };
  } else {
    members = sortedMemberList([...new Set(certificate.signatures.map((s) => s.member))]);
    if (members.length === 0 || membershipHash(members) !== certificate.membership)
      return {
        status: 'unverifiable',
        detail: `it does not name its members; check it against the log with block verify ${certificate.blockId}`,
      };
  }
  const good =
    'consensus' in certificate
      ? verifyConsensusLogCertificate(certificate, members, certificate.network)
      : verifyCertificate(certificate, members);
  if (!good)
    return {
      status: 'invalid',
      detail: `its signatures are not a valid majority of its ${members.length} member(s)`,
      members,
    };
  const memberSet = new Set(members);
  const signers = [...new Set(certificate.signatures.map((s) => s.member))].filter((m) => memberSet.has(m));
  return { status: 'verified', signers, members };
}
