import { createHash } from 'node:crypto';
import { canonicalJson } from '../base/codec.js';
import type { Certificate } from '../collections/log/log-block.js';
import type {
  Certifier,
  DecisionFields,
  EntryContext,
  RecoveredDecision,
} from '../transactions/certifier.js';
import { conflictingDecisions } from './driver.js';
import type { ConsensusProposer } from './memory-network.js';
import type { Ballot, ConsensusCertificate, ConsensusValue } from './types.js';
import { sortedMemberList } from './values.js';
import { verifyConsensusCertificate } from './votes.js';

/**
 * A log certificate backed by consensus: the usual fields, the quorum's vote signatures, and where
 * the votes were cast (slot and ballot of the tail block's group). The votes sign the consensus vote
 * message, whose value digest binds collection, LSN, transaction and decision (`entryValue`).
 */
export interface ConsensusLogCertificate extends Certificate {
  readonly consensus: {
    readonly slot: number;
    readonly ballot: Ballot;
    /** Hash of the entry content the value carried (absent when it carried none). */
    readonly body?: string;
  };
}

const entryDomain = 'optimystic/consensus/entry/v1';

/** Hash of an entry body (canonical JSON), as bound into an entry value's digest. */
export function entryBodyHash(body: Readonly<Record<string, unknown>>): string {
  return createHash('sha256').update(canonicalJson(body)).digest('base64url');
}

/**
 * The consensus value a log decision is agreed as: its LSN in the open (so the leader can refuse a
 * second transaction at one LSN), everything else bound by the digest, the body's hash included.
 */
export function entryValue(
  fields: Omit<DecisionFields, 'membership'>,
  bodyHash?: string,
): Extract<ConsensusValue, { kind: 'entry' }> {
  const digest = createHash('sha256')
    .update(
      canonicalJson({
        domain: entryDomain,
        network: fields.network,
        collection: fields.collection,
        blockId: fields.blockId,
        lsn: fields.lsn,
        trxId: fields.trxId,
        decision: fields.decision,
        ...(bodyHash !== undefined ? { body: bodyHash } : {}),
      }),
    )
    .digest('base64url');
  return { kind: 'entry', trxId: fields.trxId, decision: fields.decision, digest, lsn: fields.lsn };
}

export interface ConsensusCertifierComponents {
  readonly proposer: ConsensusProposer;
}

export interface ConsensusCertifierInit {
  readonly network: string;
}

/**
 * The Certifier of a networked node: a log decision is certified by getting it decided by the tail
 * block's consensus group; the certificate is the quorum's signed votes. Verification is offline and
 * needs only the recorded members (peer ids on a network, whose keys `verifyEd25519` reads from the
 * ids themselves). The proposer is `NetworkConsensus` (cluster/consensus-edge.ts) on a node, or the
 * in-memory network in tests; a proposal at a member that does not lead fails UNAVAILABLE with
 * `details.leader`, and the caller takes it there.
 */
export class ConsensusCertifier implements Certifier {
  constructor(
    private readonly components: ConsensusCertifierComponents,
    private readonly init: ConsensusCertifierInit,
  ) {}

  /** Certifier.votedBeyond, answered by the proposer's durable state (false when it cannot say). */
  async votedBeyond(blockId: string, members: readonly string[], lsn: number): Promise<boolean> {
    const proposer = this.components.proposer;
    if (proposer.votedBeyond === undefined) return false;
    return proposer.votedBeyond({ blockId, members: sortedMemberList(members) }, lsn);
  }

  async certify(
    fields: Omit<DecisionFields, 'network' | 'membership'>,
    members: readonly string[],
    entry?: EntryContext,
  ): Promise<ConsensusLogCertificate> {
    const network = this.init.network;
    const group = { network, blockId: fields.blockId, members: sortedMemberList(members) };
    const bodyHash = entry?.body !== undefined ? entryBodyHash(entry.body) : undefined;
    const value: ConsensusValue = {
      ...entryValue({ ...fields, network }, bodyHash),
      ...(entry?.prev !== undefined ? { prev: entry.prev } : {}),
      ...(entry?.body !== undefined ? { body: entry.body } : {}),
    };
    const decided = await this.components.proposer.propose(group, value);
    return {
      network,
      collection: fields.collection,
      blockId: fields.blockId,
      lsn: fields.lsn,
      trxId: fields.trxId,
      decision: fields.decision,
      membership: decided.membership,
      signatures: decided.signatures,
      consensus: {
        slot: decided.slot,
        ballot: decided.ballot,
        ...(bodyHash !== undefined ? { body: bodyHash } : {}),
      },
    };
  }

  /**
   * The decided entries a conflict refusal carried, as log certificates of `collection`. Each value
   * is checked: its digest must be the one this collection, block, LSN, transaction, decision and
   * body give (a member cannot slip in an entry of its own making), and its votes must verify.
   */
  decidedElsewhere(
    error: unknown,
    collection: string,
    members: readonly string[],
  ): readonly RecoveredDecision[] | undefined {
    const decided = conflictingDecisions(error);
    if (decided === undefined) return undefined;
    const network = this.init.network;
    const recovered: RecoveredDecision[] = [];
    for (const cert of decided) {
      const value = cert.value;
      if (value.kind !== 'entry' || value.lsn === undefined) continue;
      const bodyHash = value.body !== undefined ? entryBodyHash(value.body) : undefined;
      const fields = {
        network,
        collection,
        blockId: cert.blockId,
        lsn: value.lsn,
        trxId: value.trxId,
        decision: value.decision,
      };
      if (entryValue(fields, bodyHash).digest !== value.digest) continue;
      const certificate: ConsensusLogCertificate = {
        ...fields,
        membership: cert.membership,
        signatures: cert.signatures,
        consensus: {
          slot: cert.slot,
          ballot: cert.ballot,
          ...(bodyHash !== undefined ? { body: bodyHash } : {}),
        },
      };
      if (!this.verify(certificate, members)) continue;
      recovered.push({
        lsn: value.lsn,
        trxId: value.trxId,
        decision: value.decision,
        certificate,
        body: value.body,
      });
    }
    return recovered;
  }

  verify(certificate: Certificate, members: readonly string[]): boolean {
    return verifyConsensusLogCertificate(certificate, members, this.init.network);
  }
}

/** Whether a log certificate decided by consensus carries a quorum of `members` for `network`. */
export function verifyConsensusLogCertificate(
  certificate: Certificate,
  members: readonly string[],
  network: string,
): boolean {
  const consensus = (certificate as Partial<ConsensusLogCertificate>).consensus;
  if (typeof consensus !== 'object' || consensus === null) return false;
  if (certificate.network !== network) return false;
  const rebuilt: ConsensusCertificate = {
    network: certificate.network,
    blockId: certificate.blockId,
    membership: certificate.membership,
    slot: consensus.slot,
    ballot: consensus.ballot,
    value: entryValue(certificate, consensus.body),
    signatures: certificate.signatures,
  };
  return verifyConsensusCertificate(rebuilt, sortedMemberList(members), network);
}
