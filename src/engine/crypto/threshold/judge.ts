import { tryFromBase64Url } from '../encoding.js';
import { checkDealing, shareMatches } from './dkg.js';
import {
  messageDigest,
  verifyMessageSignature,
  type ConfirmMessage,
  type DealMessage,
  type ResponseMessage,
} from './messages.js';
import type { CheckedProposal } from './proposal.js';
import { checkDisclosure, encryptionSuite, openWithSharedKey, type ShareSlot } from './share-encryption.js';
import type { GroupPoint } from './suites.js';

/**
 * Judging one attempt of a ceremony: a pure function from the messages of the attempt to the list of
 * participants at fault. Every honest participant that holds the same messages reaches the same
 * list, in the same order, which is what lets them all restart without the same culprits.
 */

export const faults = [
  'equivocating-deal',
  'equivocating-response',
  'wrong-commitment-count',
  'invalid-point',
  'wrong-constant',
  'bad-proof-of-possession',
  'missing-share',
  'bad-ciphertext',
  'bad-share',
  'false-complaint',
  'bad-complaint-proof',
  'malformed-response',
  'forged-echo',
  'missing-deal',
  'missing-response',
  'missing-confirmation',
] as const;
export type Fault = (typeof faults)[number];

export interface Blame {
  culprit: string;
  fault: Fault;
  /** The other participant involved (the complainer, or the dealer of a bad share), if any. */
  about: string | null;
}

/** Messages of one attempt, as a participant holds them. */
export interface AttemptState {
  number: number;
  dealers: string[];
  recipients: string[];
  deals: Record<string, DealMessage>;
  /** A second, different, validly signed deal from the same dealer: proof of equivocation. */
  conflictingDeals: Record<string, DealMessage>;
  responses: Record<string, ResponseMessage>;
  conflictingResponses: Record<string, ResponseMessage>;
  confirms: Record<string, ConfirmMessage>;
}

/** What the attempt's participants, identifiers and keys are. */
export interface AttemptContext {
  proposal: CheckedProposal;
  number: number;
  /** Proof-of-possession context: session and attempt. */
  proofContext: string;
  dealers: string[];
  recipients: string[];
  /** Dealers and recipients, in roster order. */
  participants: string[];
  /** 1-based identifiers in the new key. */
  recipientIds: Map<string, number>;
  /** Identifier a dealer's proof binds: its new identifier (key generation) or its old one (refresh, reshare). */
  dealerIds: Map<string, number>;
}

export function attemptContext(
  proposal: CheckedProposal,
  number: number,
  dealers: readonly string[],
  recipients: readonly string[],
): AttemptContext {
  const inAttempt = new Set([...dealers, ...recipients]);
  const recipientIds = new Map(recipients.map((peer, i) => [peer, i + 1] as const));
  const dealerIds = new Map(
    dealers.map(
      (peer) =>
        [
          peer,
          proposal.proposal.kind === 'dkg' ? recipientIds.get(peer)! : proposal.priorIdentifiers.get(peer)!,
        ] as const,
    ),
  );
  return {
    proposal,
    number,
    proofContext: `${proposal.session}/${number}`,
    dealers: [...dealers],
    recipients: [...recipients],
    participants: proposal.proposal.roster.map((c) => c.peerId).filter((peer) => inAttempt.has(peer)),
    recipientIds,
    dealerIds,
  };
}

export function slotOf(ctx: AttemptContext, dealer: string, recipient: string): ShareSlot {
  return { session: ctx.proposal.session, attempt: ctx.number, dealer, recipient };
}

export interface CheckedDeal {
  points: GroupPoint[];
  ephemeral: GroupPoint;
  ciphertexts: Map<string, Uint8Array>;
}

const shareCiphertextBytes = 32 + 16;

/** Public checks on a deal, in a fixed order so the named fault is the same everywhere. */
export function checkDeal(ctx: AttemptContext, deal: DealMessage): CheckedDeal | { fault: Fault } {
  const suite = ctx.proposal.suite;
  const t = ctx.proposal.proposal.threshold;
  if (deal.commitments.length !== t) return { fault: 'wrong-commitment-count' };
  const commitments: Uint8Array[] = [];
  for (const text of deal.commitments) {
    const bytes = tryFromBase64Url(text, suite.pointBytes);
    if (bytes === undefined) return { fault: 'invalid-point' };
    commitments.push(bytes);
  }
  const proof = tryFromBase64Url(deal.proof, suite.pointBytes + suite.scalarBytes) ?? new Uint8Array();
  const expectedConstant = ctx.proposal.prior?.verifyingShares.get(ctx.dealerIds.get(deal.from)!);
  const dealing = checkDealing(
    suite,
    ctx.proofContext,
    { identifier: ctx.dealerIds.get(deal.from)!, commitments, proof },
    t,
    expectedConstant,
  );
  if ('fault' in dealing) return { fault: dealing.fault };
  const ephemeralBytes = tryFromBase64Url(deal.ephemeralKey, 32);
  const ephemeral = ephemeralBytes === undefined ? undefined : encryptionSuite.decodePoint(ephemeralBytes);
  if (ephemeral === undefined) return { fault: 'invalid-point' };
  const expected = ctx.recipients.filter((r) => r !== deal.from);
  if (deal.shares.length !== expected.length) return { fault: 'missing-share' };
  const ciphertexts = new Map<string, Uint8Array>();
  for (const entry of deal.shares) {
    const bytes = tryFromBase64Url(entry.ciphertext, shareCiphertextBytes);
    if (!expected.includes(entry.to) || ciphertexts.has(entry.to) || bytes === undefined)
      return { fault: 'missing-share' };
    ciphertexts.set(entry.to, bytes);
  }
  return { points: dealing.points, ephemeral, ciphertexts };
}

/** Judges a complete attempt (every deal and response present). */
export function judgeAttempt(
  ctx: AttemptContext,
  attempt: AttemptState,
  checked: Map<string, CheckedDeal | { fault: Fault }>,
): Blame[] {
  const blame: Blame[] = [];
  const add = (culprit: string, fault: Fault, about: string | null = null): void => {
    if (!blame.some((b) => b.culprit === culprit && b.fault === fault && b.about === about))
      blame.push({ culprit, fault, about });
  };
  const suite = ctx.proposal.suite;
  const members = ctx.proposal.members;
  const badDealers = new Set<string>();

  for (const dealer of ctx.dealers) {
    if (attempt.conflictingDeals[dealer] !== undefined) {
      add(dealer, 'equivocating-deal');
      badDealers.add(dealer);
    }
  }
  for (const peer of ctx.participants)
    if (attempt.conflictingResponses[peer] !== undefined) add(peer, 'equivocating-response');

  // Echoes: every response repeats exactly one deal per dealer; a version nobody else holds is either
  // a third deal from an equivocating dealer (signed by it) or a forgery by the responder.
  for (const peer of ctx.participants) {
    const response = attempt.responses[peer];
    if (response === undefined || attempt.conflictingResponses[peer] !== undefined) continue;
    const echoed = new Set<string>();
    for (const echo of response.deals) {
      if (!ctx.dealers.includes(echo.from) || echoed.has(echo.from)) {
        add(peer, 'malformed-response');
        continue;
      }
      echoed.add(echo.from);
      const digest = messageDigest(echo);
      const known = [attempt.deals[echo.from], attempt.conflictingDeals[echo.from]]
        .filter((d) => d !== undefined)
        .map((d) => messageDigest(d));
      if (known.includes(digest)) continue;
      const sender = members.get(echo.from)!;
      if (
        echo.session !== ctx.proposal.session ||
        echo.attempt !== ctx.number ||
        !verifyMessageSignature(echo, sender.identityKey)
      ) {
        add(peer, 'forged-echo', echo.from);
      } else {
        add(echo.from, 'equivocating-deal');
        badDealers.add(echo.from);
      }
    }
    if (echoed.size !== ctx.dealers.length) add(peer, 'malformed-response');
  }

  for (const dealer of ctx.dealers) {
    if (badDealers.has(dealer)) continue;
    const result = checked.get(dealer);
    if (result !== undefined && 'fault' in result) {
      add(dealer, result.fault);
      badDealers.add(dealer);
    }
  }

  // Complaints: the revealed key and its proof decide between the dealer and the complainer.
  for (const peer of ctx.participants) {
    const response = attempt.responses[peer];
    if (response === undefined || attempt.conflictingResponses[peer] !== undefined) continue;
    const seen = new Set<string>();
    for (const complaint of response.complaints) {
      const dealer = complaint.dealer;
      if (
        !ctx.recipients.includes(peer) ||
        !ctx.dealers.includes(dealer) ||
        dealer === peer ||
        seen.has(dealer)
      ) {
        add(peer, 'malformed-response');
        continue;
      }
      seen.add(dealer);
      if (badDealers.has(dealer)) continue;
      const deal = checked.get(dealer) as CheckedDeal;
      const recipientKey = members.get(peer)!.encryptionKey;
      const keyBytes = tryFromBase64Url(complaint.sharedKey, 32);
      const sharedKey = keyBytes === undefined ? undefined : encryptionSuite.decodePoint(keyBytes);
      const proof = tryFromBase64Url(complaint.proof, 64);
      const slot = slotOf(ctx, dealer, peer);
      if (
        sharedKey === undefined ||
        proof === undefined ||
        !checkDisclosure(slot, deal.ephemeral, recipientKey, sharedKey, proof)
      ) {
        add(peer, 'bad-complaint-proof', dealer);
        continue;
      }
      const plaintext = openWithSharedKey(
        slot,
        deal.ephemeral,
        recipientKey,
        sharedKey,
        deal.ciphertexts.get(peer)!,
      );
      if (plaintext === undefined) {
        add(dealer, 'bad-ciphertext', peer);
        continue;
      }
      const share = suite.decodeScalar(plaintext);
      if (share === undefined || !shareMatches(suite, deal.points, ctx.recipientIds.get(peer)!, share))
        add(dealer, 'bad-share', peer);
      else add(peer, 'false-complaint', dealer);
    }
  }
  return sortBlame(ctx, blame);
}

export function sortBlame(ctx: AttemptContext, blame: Blame[]): Blame[] {
  const order = (peer: string | null): number =>
    peer === null ? -1 : ctx.proposal.proposal.roster.findIndex((c) => c.peerId === peer);
  return [...blame].sort(
    (a, b) =>
      order(a.culprit) - order(b.culprit) ||
      a.fault.localeCompare(b.fault) ||
      order(a.about) - order(b.about),
  );
}
