import { EngineError } from '../../base/errors.js';
import { limits } from '../../base/limits.js';
import type { Rng } from '../../base/rng.js';
import { toBase64Url, tryFromBase64Url } from '../encoding.js';
import { publicKeyFromPeerId, verifyDomain, type Identity } from '../identity.js';
import {
  checkPublicKey,
  suiteFitsPurpose,
  type CheckedPublicKey,
  type KeyPurpose,
  type ThresholdPublicKey,
} from './key.js';
import {
  ceremonyDomain,
  checkParticipantCard,
  parseCeremonyMessage,
  sessionIdOf,
  signedBytes,
  signMessage,
  type CeremonyKind,
  type ParticipantCard,
  type Proposal,
  type ProposalMessage,
} from './messages.js';
import { getSuite, isSuiteId, type GroupPoint, type Suite, type SuiteId } from './suites.js';

/**
 * Proposals: what a ceremony will do, signed by the proposer. The session id is the hash of the
 * proposal, so every later message that names the session commits to the whole proposal.
 */

export interface ProposalInput {
  kind: CeremonyKind;
  /** Required for key generation; refresh and reshare take the prior key's suite. */
  suite?: SuiteId;
  purpose?: KeyPurpose;
  label?: string;
  /** Threshold of the resulting key; refresh keeps the prior one. */
  threshold?: number;
  roster: ParticipantCard[];
  /** Who receives shares, in identifier order; key generation and refresh derive it. */
  recipients?: string[];
  prior?: ThresholdPublicKey;
  expiresAtMs: number;
}

export interface RosterMember {
  peerId: string;
  identityKey: Uint8Array;
  encryptionKey: GroupPoint;
}

export interface CheckedProposal {
  message: ProposalMessage;
  proposal: Proposal;
  session: string;
  suite: Suite;
  members: Map<string, RosterMember>;
  prior: CheckedPublicKey | null;
  /** Current holders taking part (refresh and reshare), by peer id, with their identifier in the prior key. */
  priorIdentifiers: Map<string, number>;
  /** Dealers of the first attempt, in dealing order. */
  dealers: string[];
  recipients: string[];
}

export function createProposal(identity: Identity, input: ProposalInput, rng: Rng): ProposalMessage {
  const prior = input.prior === undefined ? null : checkPublicKey(input.prior);
  let recipients = input.recipients;
  if (input.kind === 'dkg') recipients ??= input.roster.map((c) => c.peerId);
  if (input.kind === 'refresh' && prior !== null) {
    recipients ??= [...prior.json.holders].sort((a, b) => a.identifier - b.identifier).map((h) => h.peerId);
  }
  if (recipients === undefined) throw new EngineError('BAD_INPUT', 'a reshare names its recipients');
  const suite = input.suite ?? prior?.json.suite;
  if (suite === undefined) throw new EngineError('BAD_INPUT', 'key generation names its suite');
  const purpose =
    input.purpose ?? prior?.json.purpose ?? (suite === 'ristretto255-sha512' ? 'decrypt' : 'sign');
  const threshold = input.threshold ?? prior?.json.threshold;
  if (threshold === undefined) throw new EngineError('BAD_INPUT', 'key generation names its threshold');
  const proposal: Proposal = {
    version: 1,
    kind: input.kind,
    suite,
    purpose,
    label: input.label ?? prior?.json.label ?? '',
    threshold,
    roster: input.roster,
    recipients,
    prior: prior === null ? null : prior.json,
    expiresAtMs: input.expiresAtMs,
    nonce: toBase64Url(rng.bytes(32)),
    proposer: identity.peerId,
  };
  const message = signMessage<ProposalMessage>(identity, {
    type: 'Proposal',
    session: sessionIdOf(proposal),
    from: identity.peerId,
    proposal,
  });
  checkProposal(message);
  return message;
}

const checkedProposals = new Map<string, CheckedProposal>();

/**
 * Validates a proposal message completely: shape, proposer signature, session id, every card and
 * its signature, roster and recipient sets, threshold, suite and purpose, and for refresh and
 * reshare the prior key and which of its holders deal. Expiry is checked when `nowMs` is given.
 */
export function checkProposal(value: unknown, nowMs?: number): CheckedProposal {
  const message = parseCeremonyMessage(value);
  if (message.type !== 'Proposal') throw new EngineError('BAD_INPUT', 'not a Proposal message');
  const session = sessionIdOf(message.proposal);
  let checked = checkedProposals.get(session);
  if (checked === undefined || checked.message.signature !== message.signature) {
    checked = checkProposalUncached(message, session);
    if (checkedProposals.size >= limits.ceremonyCacheEntriesMax)
      checkedProposals.delete(checkedProposals.keys().next().value!);
    checkedProposals.set(session, checked);
  }
  if (nowMs !== undefined && nowMs >= checked.proposal.expiresAtMs)
    throw new EngineError('TIMEOUT', 'the proposal has expired');
  return checked;
}

function checkProposalUncached(message: ProposalMessage, session: string): CheckedProposal {
  const bad = (what: string): never => {
    throw new EngineError('BAD_INPUT', `proposal: ${what}`);
  };
  const p = message.proposal;
  if (message.session !== session) bad('session id does not match the proposal');
  if (message.from !== p.proposer) bad('sender is not the proposer');
  if (!isSuiteId(p.suite)) return bad('unknown suite ' + JSON.stringify(p.suite));
  if (!suiteFitsPurpose(p.suite, p.purpose)) bad(`suite ${p.suite} is not used for ${p.purpose}`);
  if (tryFromBase64Url(p.nonce, 32) === undefined) bad('nonce must be 32 bytes');
  if (p.expiresAtMs <= 0) bad('expiry must be a time');
  if (p.roster.length < 2 || p.roster.length > limits.ceremonyParticipantsMax)
    bad(`roster must have 2 to ${limits.ceremonyParticipantsMax} members`);
  const members = new Map<string, RosterMember>();
  for (const card of p.roster) {
    if (members.has(card.peerId)) bad(`${card.peerId} appears twice in the roster`);
    const { identityKey, encryptionKey } = checkParticipantCard(card);
    members.set(card.peerId, { peerId: card.peerId, identityKey, encryptionKey });
  }
  const proposer = members.get(p.proposer);
  if (proposer === undefined) return bad('the proposer is not in the roster');
  const signature = tryFromBase64Url(message.signature, 64);
  if (
    signature === undefined ||
    !verifyDomain(proposer.identityKey, ceremonyDomain, signedBytes(message), signature)
  ) {
    throw new EngineError('BAD_SIGNATURE', 'proposal signature does not verify');
  }
  const recipients = p.recipients;
  if (new Set(recipients).size !== recipients.length) bad('a recipient appears twice');
  for (const r of recipients) if (!members.has(r)) bad(`recipient ${r} is not in the roster`);
  if (!Number.isInteger(p.threshold) || p.threshold < 2 || p.threshold > recipients.length) {
    bad(`threshold ${p.threshold} must be between 2 and the ${recipients.length} recipients`);
  }
  const priorIdentifiers = new Map<string, number>();
  let prior: CheckedPublicKey | null = null;
  let dealers: string[];
  if (p.kind === 'dkg') {
    if (p.prior !== null) bad('key generation has no prior key');
    if (recipients.length !== members.size) bad('in key generation every roster member receives a share');
    dealers = [...recipients];
  } else {
    if (p.prior === null) return bad(`${p.kind} needs the prior key`);
    prior = checkPublicKey(p.prior);
    if (prior.json.suite !== p.suite || prior.json.purpose !== p.purpose)
      bad('suite and purpose must match the prior key');
    for (const h of prior.json.holders)
      if (members.has(h.peerId)) priorIdentifiers.set(h.peerId, h.identifier);
    dealers = [...priorIdentifiers.entries()].sort((a, b) => a[1] - b[1]).map(([peer]) => peer);
    if (dealers.length < prior.json.threshold)
      bad(`only ${dealers.length} current holders take part; ${prior.json.threshold} are needed`);
    for (const peer of members.keys()) {
      if (!priorIdentifiers.has(peer) && !recipients.includes(peer))
        bad(`${peer} neither holds a share nor receives one`);
    }
    if (p.kind === 'refresh') {
      if (p.threshold !== prior.json.threshold) bad('refresh keeps the threshold');
      if (members.size !== prior.json.holders.length || priorIdentifiers.size !== members.size)
        bad('refresh involves exactly the current holders');
      if (recipients.length !== members.size) bad('in a refresh every holder receives a new share');
    }
  }
  for (const peer of members.keys()) publicKeyFromPeerId(peer);
  return {
    message,
    proposal: p,
    session,
    suite: getSuite(p.suite),
    members,
    prior,
    priorIdentifiers,
    dealers,
    recipients: [...recipients],
  };
}
