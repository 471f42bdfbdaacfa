import { createHash } from 'node:crypto';
import { canonicalJson } from '../base/codec.js';
import type { Certificate } from '../collections/log/log-block.js';
import type { Certifier, DecisionFields } from '../transactions/certifier.js';
import type { ConsensusProposer } from './memory-network.js';
import type { Ballot, ConsensusCertificate, ConsensusValue } from './types.js';
import { verifyConsensusCertificate } from './votes.js';

/**
 * A log certificate backed by consensus: the usual fields, the quorum's vote signatures, and where
 * the votes were cast (slot and ballot of the tail block's group). The votes sign the consensus vote
 * message, whose value digest binds collection, LSN, transaction and decision (`entryValue`).
 */
export interface ConsensusLogCertificate extends Certificate {
  readonly consensus: { readonly slot: number; readonly ballot: Ballot };
}

const entryDomain = 'optimystic/consensus/entry/v1';

/** The consensus value a log decision is agreed as. */
export function entryValue(fields: Omit<DecisionFields, 'membership'>): ConsensusValue {
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
      }),
    )
    .digest('base64url');
  return { kind: 'entry', trxId: fields.trxId, decision: fields.decision, digest };
}

function sortedMembers(members: readonly string[]): string[] {
  return [...new Set(members)].sort();
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

  async certify(
    fields: Omit<DecisionFields, 'network' | 'membership'>,
    members: readonly string[],
  ): Promise<ConsensusLogCertificate> {
    const network = this.init.network;
    const group = { network, blockId: fields.blockId, members: sortedMembers(members) };
    const decided = await this.components.proposer.propose(group, entryValue({ ...fields, network }));
    return {
      network,
      collection: fields.collection,
      blockId: fields.blockId,
      lsn: fields.lsn,
      trxId: fields.trxId,
      decision: fields.decision,
      membership: decided.membership,
      signatures: decided.signatures,
      consensus: { slot: decided.slot, ballot: decided.ballot },
    };
  }

  verify(certificate: Certificate, members: readonly string[]): boolean {
    const consensus = (certificate as Partial<ConsensusLogCertificate>).consensus;
    if (typeof consensus !== 'object' || consensus === null) return false;
    if (certificate.network !== this.init.network) return false;
    const rebuilt: ConsensusCertificate = {
      network: certificate.network,
      blockId: certificate.blockId,
      membership: certificate.membership,
      slot: consensus.slot,
      ballot: consensus.ballot,
      value: entryValue(certificate),
      signatures: certificate.signatures,
    };
    return verifyConsensusCertificate(rebuilt, sortedMembers(members), this.init.network);
  }
}
