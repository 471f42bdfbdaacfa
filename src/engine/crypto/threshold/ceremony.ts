import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { assert, unreachable } from '../../base/assert.js';
import { canonicalJson } from '../../base/codec.js';
import { EngineError, type ErrorCode } from '../../base/errors.js';
import { limits } from '../../base/limits.js';
import type { Rng } from '../../base/rng.js';
import { equalBytes, fromBase64Url, sha256, toBase64Url, utf8 } from '../encoding.js';
import type { Identity } from '../identity.js';
import {
  combineKeyGenerationCommitments,
  combineReshare,
  finishKeyGeneration,
  seededRandom,
  shareFor,
  shareMatches,
  startDealing,
} from './dkg.js';
import {
  attemptContext,
  checkDeal,
  judgeAttempt,
  slotOf,
  sortBlame,
  type AttemptContext,
  type AttemptState,
  type Blame,
  type CheckedDeal,
  type Fault,
} from './judge.js';
import {
  buildPublicKey,
  checkPublicKey,
  checkShare,
  publicKeyDigest,
  type ThresholdPublicKey,
  type ThresholdShare,
} from './key.js';
import {
  messageDigest,
  parseCeremonyMessage,
  signMessage,
  verifyMessageSignature,
  type AcceptMessage,
  type CeremonyMessage,
  type Complaint,
  type ConfirmMessage,
  type DealMessage,
  type DeclineMessage,
  type ProposalMessage,
  type ResponseMessage,
} from './messages.js';
import { checkProposal, type CheckedProposal } from './proposal.js';
import {
  discloseSharedKey,
  encryptionSuite,
  openShare,
  sealShare,
  type EncryptionKeyPair,
} from './share-encryption.js';
import { scalarFromRandomBytes, type GroupPoint } from './suites.js';

/**
 * The ceremony core: `stepCeremony(state, input, keys) -> { state, effects }`, pure and
 * deterministic. Randomness is drawn once, when a participant joins (the state's seed); every later
 * choice derives from it, so re-running a step after a crash yields the same messages, never a
 * second, different deal. Time enters only as `Tick` inputs; the edge decides when a phase has
 * waited long enough and says so with `Deadline`.
 *
 * Phases, per attempt: proposed → dealing → responding → confirming → complete. A judged fault
 * ends the attempt; the next one starts at once without the culprits (or the ceremony fails when
 * too few remain). The state is JSON and holds the seed: seal it at rest.
 */

export interface CeremonyKeys {
  identity: Identity;
  encryption: EncryptionKeyPair;
  /** This participant's current share, when it deals in a refresh or reshare. */
  priorShare?: ThresholdShare;
}

export type CeremonyPhase = 'proposed' | 'dealing' | 'responding' | 'confirming' | 'complete' | 'failed';

export interface AttemptRecord {
  number: number;
  dealers: string[];
  recipients: string[];
  blame: Blame[];
}

export interface CeremonyOutcome {
  publicKey: ThresholdPublicKey;
  /** This participant's new share; null for a holder that dealt in a reshare but receives none. */
  share: ThresholdShare | null;
  transcript: string;
}

export interface CeremonyResult extends CeremonyOutcome {
  /** Every participant's signed confirmation of the transcript: the key's activation certificate. */
  confirmations: ConfirmMessage[];
}

export interface CeremonyFailure {
  code: ErrorCode;
  reason: string;
  culprits: string[];
}

export interface CeremonyState {
  format: 'optimystic-ceremony-state';
  version: 1;
  self: string;
  session: string;
  proposal: ProposalMessage;
  /** Secret: every random choice of this participant derives from it. */
  seed: string;
  phase: CeremonyPhase;
  decision: 'pending' | 'accepted' | 'declined';
  accepts: Record<string, AcceptMessage>;
  attempt: AttemptState & { outcome: CeremonyOutcome | null };
  history: AttemptRecord[];
  /** Authenticated messages for an attempt that has not started here yet. */
  buffered: CeremonyMessage[];
  result: CeremonyResult | null;
  failure: CeremonyFailure | null;
}

export type CeremonyInput =
  | { type: 'Receive'; message: unknown }
  | { type: 'Approve' }
  | { type: 'Decline'; reason: string }
  | { type: 'Deadline' }
  | { type: 'Tick'; nowMs: number };

export type CeremonyEffect =
  | { type: 'Broadcast'; message: CeremonyMessage }
  | { type: 'Blamed'; attempt: number; blame: Blame[] }
  | { type: 'Restarted'; attempt: number; dealers: string[]; recipients: string[] }
  | { type: 'Completed'; result: CeremonyResult }
  | { type: 'Failed'; failure: CeremonyFailure };

export interface CeremonyStep {
  state: CeremonyState;
  effects: CeremonyEffect[];
}

/**
 * Starts this participant's view of a proposed ceremony. Checks the proposal, that this identity is
 * in the roster with this encryption key, and (refresh, reshare) that a dealer holds a valid share of
 * the prior key. Nothing is sent until the operator approves.
 */
export function joinCeremony(proposal: unknown, keys: CeremonyKeys, rng: Rng, nowMs: number): CeremonyState {
  const checked = checkProposal(proposal, nowMs);
  checkKeys(checked, keys);
  return {
    format: 'optimystic-ceremony-state',
    version: 1,
    self: keys.identity.peerId,
    session: checked.session,
    proposal: checked.message,
    seed: toBase64Url(rng.bytes(32)),
    phase: 'proposed',
    decision: 'pending',
    accepts: {},
    attempt: emptyAttempt(0, checked.dealers, checked.recipients),
    history: [],
    buffered: [],
    result: null,
    failure: null,
  };
}

function checkKeys(checked: CheckedProposal, keys: CeremonyKeys): void {
  const self = keys.identity.peerId;
  const member = checked.members.get(self);
  if (member === undefined) throw new EngineError('BAD_INPUT', `${self} is not in this ceremony's roster`);
  if (!equalBytes(member.encryptionKey.toBytes(), keys.encryption.publicKey)) {
    throw new EngineError('BAD_INPUT', 'the roster lists a different encryption key for this participant');
  }
  if (checked.prior !== null && checked.priorIdentifiers.has(self)) {
    if (keys.priorShare === undefined)
      throw new EngineError(
        'BAD_INPUT',
        `this participant deals in the ${checked.proposal.kind} and needs its current share`,
      );
    const share = checkShare(checked.prior, keys.priorShare);
    if (share.json.peerId !== self)
      throw new EngineError('BAD_INPUT', 'the current share belongs to another holder');
  }
}

function emptyAttempt(
  number: number,
  dealers: readonly string[],
  recipients: readonly string[],
): CeremonyState['attempt'] {
  return {
    number,
    dealers: [...dealers],
    recipients: [...recipients],
    deals: {},
    conflictingDeals: {},
    responses: {},
    conflictingResponses: {},
    confirms: {},
    outcome: null,
  };
}

/** Copies the parts of the state a step may change; messages themselves are never mutated. */
function copyState(state: CeremonyState): CeremonyState {
  const a = state.attempt;
  return {
    ...state,
    accepts: { ...state.accepts },
    attempt: {
      ...a,
      dealers: [...a.dealers],
      recipients: [...a.recipients],
      deals: { ...a.deals },
      conflictingDeals: { ...a.conflictingDeals },
      responses: { ...a.responses },
      conflictingResponses: { ...a.conflictingResponses },
      confirms: { ...a.confirms },
    },
    history: [...state.history],
    buffered: [...state.buffered],
  };
}

/**
 * One step. Throws an EngineError, leaving the state as it was, for an input that must be rejected:
 * a malformed message (BAD_INPUT), a bad signature (BAD_SIGNATURE), a sender outside the roster or
 * outside the current attempt, another session, or a replay from an earlier attempt (BAD_INPUT).
 * Exact duplicates are accepted and change nothing.
 */
export function stepCeremony(state: CeremonyState, input: CeremonyInput, keys: CeremonyKeys): CeremonyStep {
  const checked = checkProposal(state.proposal);
  assert(keys.identity.peerId === state.self, 'keys belong to this participant');
  const next = copyState(state);
  const run = new Run(next, checked, keys);
  if (next.phase === 'complete' || next.phase === 'failed') {
    if (input.type === 'Receive') run.authenticate(input.message);
    return { state, effects: [] };
  }
  switch (input.type) {
    case 'Receive':
      run.receive(run.authenticate(input.message));
      break;
    case 'Approve':
      if (next.decision === 'pending') {
        next.decision = 'accepted';
        run.emit(
          signMessage<AcceptMessage>(keys.identity, {
            type: 'Accept',
            session: next.session,
            from: next.self,
          }),
        );
      }
      break;
    case 'Decline':
      if (next.decision === 'pending') {
        next.decision = 'declined';
        run.emit(
          signMessage<DeclineMessage>(keys.identity, {
            type: 'Decline',
            session: next.session,
            from: next.self,
            reason: input.reason.slice(0, 200),
          }),
        );
        run.fail('NO_QUORUM', 'this participant declined the proposal', [next.self]);
      }
      break;
    case 'Deadline':
      run.deadline();
      break;
    case 'Tick':
      if (input.nowMs >= checked.proposal.expiresAtMs)
        run.fail('TIMEOUT', 'the ceremony expired before it completed', []);
      break;
    default:
      unreachable(input, 'ceremony input');
  }
  run.advance();
  return { state: next, effects: run.effects };
}

/** Per-attempt secret seed (for the polynomial, the ephemeral key, complaint nonces). */
function attemptSeed(state: CeremonyState, attempt: number): Uint8Array {
  return hkdf(
    nobleSha256,
    fromBase64Url(state.seed, 'ceremony seed', { length: 32, code: 'CORRUPT' }),
    undefined,
    utf8(`optimystic/ceremony/attempt/${attempt}`),
    32,
  );
}

class Run {
  readonly effects: CeremonyEffect[] = [];
  private ctx: AttemptContext;
  private checkedDeals = new Map<string, CheckedDeal | { fault: Fault }>();

  constructor(
    private readonly state: CeremonyState,
    private readonly proposal: CheckedProposal,
    private readonly keys: CeremonyKeys,
  ) {
    this.ctx = attemptContext(
      proposal,
      state.attempt.number,
      state.attempt.dealers,
      state.attempt.recipients,
    );
  }

  emit(message: CeremonyMessage): void {
    this.effects.push({ type: 'Broadcast', message });
    this.receive(message);
  }

  fail(code: ErrorCode, reason: string, culprits: string[]): void {
    if (this.state.phase === 'failed' || this.state.phase === 'complete') return;
    this.state.phase = 'failed';
    this.state.failure = { code, reason, culprits };
    this.effects.push({ type: 'Failed', failure: this.state.failure });
  }

  /** Shape, session, roster membership and signature; anything else is judged later. */
  authenticate(value: unknown): CeremonyMessage {
    const message = parseCeremonyMessage(value);
    if (message.session !== this.state.session) {
      throw new EngineError('BAD_INPUT', 'message belongs to another ceremony session', {
        reason: 'wrong-session',
      });
    }
    const member = this.proposal.members.get(message.from);
    if (member === undefined)
      throw new EngineError('BAD_INPUT', `${message.from} is not in this ceremony's roster`, {
        reason: 'not-in-roster',
      });
    if (!verifyMessageSignature(message, member.identityKey)) {
      throw new EngineError(
        'BAD_SIGNATURE',
        `message claiming to come from ${message.from} has a bad signature`,
        { reason: 'bad-signature' },
      );
    }
    return message;
  }

  receive(message: CeremonyMessage): void {
    const s = this.state;
    switch (message.type) {
      case 'Proposal':
        if (message.signature !== s.proposal.signature)
          throw new EngineError('BAD_INPUT', 'a second, different proposal for this session');
        return;
      case 'Accept':
        s.accepts[message.from] ??= message;
        return;
      case 'Decline':
        this.fail('NO_QUORUM', `${message.from} declined the proposal: ${message.reason}`, [message.from]);
        return;
      case 'Deal':
      case 'Response':
      case 'Confirm':
        if (message.attempt < s.attempt.number) {
          throw new EngineError(
            'BAD_INPUT',
            `replayed message from attempt ${message.attempt}; attempt ${s.attempt.number} is running`,
            { reason: 'stale-attempt' },
          );
        }
        if (message.attempt > s.attempt.number) {
          if (!s.buffered.some((m) => messageDigest(m) === messageDigest(message))) {
            if (s.buffered.length >= limits.ceremonyBufferedMessagesMax)
              throw new EngineError('TOO_LARGE', 'too many messages for future attempts');
            s.buffered.push(message);
          }
          return;
        }
        this.receiveForAttempt(message);
        return;
      default:
        unreachable(message, 'ceremony message');
    }
  }

  private receiveForAttempt(message: DealMessage | ResponseMessage | ConfirmMessage): void {
    const a = this.state.attempt;
    const from = message.from;
    switch (message.type) {
      case 'Deal':
        if (!a.dealers.includes(from))
          throw new EngineError('BAD_INPUT', `${from} does not deal in attempt ${a.number}`, {
            reason: 'not-a-dealer',
          });
        this.recordDeal(message);
        return;
      case 'Response': {
        if (!this.ctx.participants.includes(from))
          throw new EngineError('BAD_INPUT', `${from} is not in attempt ${a.number}`, {
            reason: 'not-in-attempt',
          });
        const known = a.responses[from];
        if (known === undefined) a.responses[from] = message;
        else if (messageDigest(known) !== messageDigest(message)) a.conflictingResponses[from] ??= message;
        // Echoed deals relay what the responder saw: adopt the ones still missing, keep conflicting ones as evidence.
        for (const echo of message.deals) {
          const dealer = this.proposal.members.get(echo.from);
          const held = [a.deals[echo.from], a.conflictingDeals[echo.from]].filter((d) => d !== undefined);
          if (held.some((d) => messageDigest(d) === messageDigest(echo))) continue;
          if (
            dealer !== undefined &&
            a.dealers.includes(echo.from) &&
            echo.session === this.state.session &&
            echo.attempt === a.number &&
            verifyMessageSignature(echo, dealer.identityKey)
          ) {
            this.recordDeal(echo);
          }
        }
        return;
      }
      case 'Confirm':
        if (!this.ctx.participants.includes(from))
          throw new EngineError('BAD_INPUT', `${from} is not in attempt ${a.number}`, {
            reason: 'not-in-attempt',
          });
        a.confirms[from] ??= message;
        return;
      default:
        unreachable(message, 'attempt message');
    }
  }

  private recordDeal(deal: DealMessage): void {
    const a = this.state.attempt;
    const known = a.deals[deal.from];
    if (known === undefined) a.deals[deal.from] = deal;
    else if (messageDigest(known) !== messageDigest(deal)) a.conflictingDeals[deal.from] ??= deal;
  }

  /** The edge gave up waiting: whoever still owes a message for the current phase is at fault. */
  deadline(): void {
    const s = this.state;
    const a = s.attempt;
    let missing: string[] = [];
    let fault: Fault;
    switch (s.phase) {
      case 'proposed': {
        const silent = this.proposal.proposal.roster
          .map((c) => c.peerId)
          .filter((peer) => s.accepts[peer] === undefined);
        this.fail('NO_QUORUM', `no acceptance from ${silent.join(', ')}`, silent);
        return;
      }
      case 'dealing':
        missing = a.dealers.filter((peer) => a.deals[peer] === undefined);
        fault = 'missing-deal';
        break;
      case 'responding':
        missing = this.ctx.participants.filter((peer) => a.responses[peer] === undefined);
        fault = 'missing-response';
        break;
      case 'confirming':
        missing = this.ctx.participants.filter((peer) => a.confirms[peer] === undefined);
        fault = 'missing-confirmation';
        break;
      default:
        return;
    }
    if (missing.length === 0) return;
    this.restart(
      sortBlame(
        this.ctx,
        missing.map((peer) => ({ culprit: peer, fault, about: null })),
      ),
    );
  }

  /** Moves through every phase whose condition now holds. */
  advance(): void {
    for (;;) {
      const s = this.state;
      const a = s.attempt;
      const before = `${s.phase}/${a.number}`;
      switch (s.phase) {
        case 'proposed':
          if (
            s.decision === 'accepted' &&
            this.proposal.proposal.roster.every((c) => s.accepts[c.peerId] !== undefined)
          ) {
            s.phase = 'dealing';
            this.dealIfDealer();
          }
          break;
        case 'dealing':
          if (a.dealers.every((peer) => a.deals[peer] !== undefined)) {
            s.phase = 'responding';
            this.emit(this.createResponse());
          }
          break;
        case 'responding':
          if (this.ctx.participants.every((peer) => a.responses[peer] !== undefined)) this.judge();
          break;
        case 'confirming':
          this.checkConfirmations();
          break;
        case 'complete':
        case 'failed':
          return;
        default:
          unreachable(s.phase, 'ceremony phase');
      }
      if (`${s.phase}/${s.attempt.number}` === before) return;
    }
  }

  private checked(dealer: string): CheckedDeal | { fault: Fault } {
    let result = this.checkedDeals.get(dealer);
    if (result === undefined) {
      result = checkDeal(this.ctx, this.state.attempt.deals[dealer]!);
      this.checkedDeals.set(dealer, result);
    }
    return result;
  }

  private dealIfDealer(): void {
    const s = this.state;
    if (!s.attempt.dealers.includes(s.self)) return;
    const ctx = this.ctx;
    const suite = this.proposal.suite;
    const seed = attemptSeed(s, ctx.number);
    const { dealing, secret } = this.startOwnDealing(seed);
    const ephemeralSecret = scalarFromRandomBytes(
      encryptionSuite,
      hkdf(nobleSha256, seed, undefined, utf8('ephemeral'), 64),
    );
    const shares = ctx.recipients
      .filter((peer) => peer !== s.self)
      .map((peer) => {
        const share = suite.encodeScalar(shareFor(suite, secret, ctx.recipientIds.get(peer)!));
        const recipientKey = this.proposal.members.get(peer)!.encryptionKey;
        return {
          to: peer,
          ciphertext: toBase64Url(sealShare(slotOf(ctx, s.self, peer), ephemeralSecret, recipientKey, share)),
        };
      });
    this.emit(
      signMessage<DealMessage>(this.keys.identity, {
        type: 'Deal',
        session: s.session,
        attempt: ctx.number,
        from: s.self,
        commitments: dealing.commitments.map(toBase64Url),
        proof: toBase64Url(dealing.proof),
        ephemeralKey: toBase64Url(encryptionSuite.base.multiply(ephemeralSecret).toBytes()),
        shares,
      }),
    );
  }

  private startOwnDealing(seed: Uint8Array) {
    const ctx = this.ctx;
    const self = this.state.self;
    const constant =
      this.proposal.prior === null ? undefined : checkShare(this.proposal.prior, this.keys.priorShare).scalar;
    return startDealing(
      this.proposal.suite,
      ctx.proofContext,
      ctx.dealerIds.get(self)!,
      this.proposal.proposal.threshold,
      ctx.recipients.length,
      seededRandom(seed, 'polynomial'),
      constant,
    );
  }

  /** Opens this participant's share from a publicly valid deal; undefined when it is bad. */
  private ownShareFrom(dealer: string, deal: CheckedDeal): bigint | undefined {
    const self = this.state.self;
    const suite = this.proposal.suite;
    const plaintext = openShare(
      slotOf(this.ctx, dealer, self),
      deal.ephemeral,
      this.keys.encryption,
      deal.ciphertexts.get(self)!,
    );
    const share = plaintext === undefined ? undefined : suite.decodeScalar(plaintext);
    if (share === undefined || !shareMatches(suite, deal.points, this.ctx.recipientIds.get(self)!, share))
      return undefined;
    return share;
  }

  private createResponse(): ResponseMessage {
    const s = this.state;
    const a = s.attempt;
    const complaints: Complaint[] = [];
    if (a.recipients.includes(s.self)) {
      const seed = attemptSeed(s, a.number);
      for (const dealer of a.dealers) {
        if (dealer === s.self) continue;
        const deal = this.checked(dealer);
        if ('fault' in deal) continue; // a public fault; the judge names the dealer without help
        if (this.ownShareFrom(dealer, deal) !== undefined) continue;
        const fresh = hkdf(nobleSha256, seed, undefined, utf8(`complaint/${dealer}`), 32);
        const disclosed = discloseSharedKey(
          slotOf(this.ctx, dealer, s.self),
          deal.ephemeral,
          this.keys.encryption,
          fresh,
        );
        complaints.push({
          dealer,
          sharedKey: toBase64Url(disclosed.sharedKey),
          proof: toBase64Url(disclosed.proof),
        });
      }
    }
    return signMessage<ResponseMessage>(this.keys.identity, {
      type: 'Response',
      session: s.session,
      attempt: a.number,
      from: s.self,
      deals: a.dealers.map((peer) => a.deals[peer]!),
      complaints,
    });
  }

  private judge(): void {
    const s = this.state;
    for (const dealer of s.attempt.dealers) this.checked(dealer);
    const blame = judgeAttempt(this.ctx, s.attempt, this.checkedDeals);
    if (blame.length > 0) {
      this.restart(blame);
      return;
    }
    s.attempt.outcome = this.computeOutcome();
    s.phase = 'confirming';
    this.emit(
      signMessage<ConfirmMessage>(this.keys.identity, {
        type: 'Confirm',
        session: s.session,
        attempt: s.attempt.number,
        from: s.self,
        transcript: s.attempt.outcome.transcript,
        publicKey: publicKeyDigest(s.attempt.outcome.publicKey),
      }),
    );
  }

  private computeOutcome(): CeremonyOutcome {
    const s = this.state;
    const ctx = this.ctx;
    const suite = this.proposal.suite;
    const p = this.proposal.proposal;
    const self = s.self;
    const deals = new Map(ctx.dealers.map((peer) => [peer, this.checked(peer) as CheckedDeal] as const));
    const isRecipient = ctx.recipients.includes(self);
    const received = new Map<number, bigint>();
    if (isRecipient) {
      for (const [dealer, deal] of deals) {
        if (dealer === self) continue;
        const share = this.ownShareFrom(dealer, deal);
        assert(share !== undefined, 'a clean judgement means every share to this participant is valid');
        received.set(ctx.dealerIds.get(dealer)!, share);
      }
    }
    let commitments: GroupPoint[];
    let share: bigint | undefined;
    if (p.kind === 'dkg') {
      const myId = ctx.recipientIds.get(self)!;
      const others = ctx.dealers
        .filter((peer) => peer !== self)
        .map((peer) => ({
          identifier: ctx.dealerIds.get(peer)!,
          commitments: deals.get(peer)!.points.map((q) => q.toBytes()),
          proof: fromBase64Url(s.attempt.deals[peer]!.proof, 'proof'),
        }));
      const seed = attemptSeed(s, ctx.number);
      const finished = finishKeyGeneration(
        suite,
        ctx.proofContext,
        {
          identifier: myId,
          threshold: p.threshold,
          participants: ctx.recipients.length,
          random: seededRandom(seed, 'polynomial'),
        },
        others,
        received,
      );
      commitments = finished.commitments;
      share = finished.share;
      const expected = combineKeyGenerationCommitments(
        suite,
        [...deals.values()].map((d) => d.points),
      );
      assert(
        expected.every((c, k) => c.equals(commitments[k]!)),
        'noble aggregates the dealt commitments',
      );
    } else {
      if (isRecipient && ctx.dealers.includes(self)) {
        const { secret } = this.startOwnDealing(attemptSeed(s, ctx.number));
        received.set(ctx.dealerIds.get(self)!, shareFor(suite, secret, ctx.recipientIds.get(self)!));
      }
      const combined = combineReshare(
        suite,
        ctx.dealers.map((peer) => ({
          oldIdentifier: ctx.dealerIds.get(peer)!,
          commitments: deals.get(peer)!.points,
        })),
        isRecipient ? received : undefined,
      );
      commitments = combined.commitments;
      share = combined.share;
      assert(commitments[0]!.equals(this.proposal.prior!.groupKey), 'resharing keeps the group key');
    }
    const publicKey = buildPublicKey({
      suite,
      purpose: p.purpose,
      label: p.label,
      threshold: p.threshold,
      commitments,
      holders: ctx.recipients.map((peer) => ({ peerId: peer, identifier: ctx.recipientIds.get(peer)! })),
      session: s.session,
      keyId: this.proposal.prior?.json.keyId,
    });
    let shareJson: ThresholdShare | null = null;
    if (isRecipient) {
      assert(share !== undefined, 'recipients end with a share');
      const myId = ctx.recipientIds.get(self)!;
      const verifyingShare = fromBase64Url(publicKey.holders[myId - 1]!.verifyingShare, 'verifying share');
      assert(
        equalBytes(suite.base.multiply(share).toBytes(), verifyingShare),
        'the share matches its verifying share',
      );
      shareJson = {
        format: 'optimystic-threshold-share',
        version: 1,
        keyId: publicKey.keyId,
        suite: suite.id,
        session: s.session,
        peerId: self,
        identifier: myId,
        signingShare: toBase64Url(suite.encodeScalar(share)),
      };
    }
    return { publicKey, share: shareJson, transcript: transcriptOf(ctx, s.attempt, publicKey) };
  }

  private checkConfirmations(): void {
    const s = this.state;
    const a = s.attempt;
    const outcome = a.outcome!;
    const digest = publicKeyDigest(outcome.publicKey);
    const mismatched = this.ctx.participants.filter((peer) => {
      const c = a.confirms[peer];
      return c !== undefined && (c.transcript !== outcome.transcript || c.publicKey !== digest);
    });
    if (mismatched.length > 0) {
      this.fail(
        'CONFLICT',
        `transcripts differ from ${mismatched.join(', ')}; the key is not activated`,
        mismatched,
      );
      return;
    }
    if (!this.ctx.participants.every((peer) => a.confirms[peer] !== undefined)) return;
    s.phase = 'complete';
    s.result = { ...outcome, confirmations: this.ctx.participants.map((peer) => a.confirms[peer]!) };
    this.effects.push({ type: 'Completed', result: s.result });
  }

  /** Records the blame and starts the next attempt without the culprits, or fails. */
  private restart(blame: Blame[]): void {
    const s = this.state;
    const a = s.attempt;
    this.effects.push({ type: 'Blamed', attempt: a.number, blame });
    s.history.push({ number: a.number, dealers: [...a.dealers], recipients: [...a.recipients], blame });
    const culprits = new Set(blame.map((b) => b.culprit));
    const culpritList = [...culprits];
    if (culprits.has(s.self)) {
      this.fail('CONFLICT', 'the other participants hold this participant at fault', culpritList);
      return;
    }
    const dealers = a.dealers.filter((peer) => !culprits.has(peer));
    const recipients = a.recipients.filter((peer) => !culprits.has(peer));
    const p = this.proposal.proposal;
    const dealersNeeded = this.proposal.prior === null ? p.threshold : this.proposal.prior.json.threshold;
    if (
      recipients.length < p.threshold ||
      dealers.length < dealersNeeded ||
      a.number + 1 > limits.ceremonyParticipantsMax
    ) {
      this.fail('NO_QUORUM', `too few participants remain without ${culpritList.join(', ')}`, culpritList);
      return;
    }
    s.attempt = emptyAttempt(a.number + 1, dealers, recipients);
    s.phase = 'dealing';
    this.ctx = attemptContext(this.proposal, s.attempt.number, dealers, recipients);
    this.checkedDeals = new Map();
    this.effects.push({ type: 'Restarted', attempt: s.attempt.number, dealers, recipients });
    this.dealIfDealer();
    const buffered = s.buffered;
    s.buffered = [];
    for (const message of buffered) {
      try {
        this.receive(message);
      } catch {
        // A buffered message that no longer fits (its sender was excluded) is dropped.
      }
    }
  }
}

function transcriptOf(ctx: AttemptContext, attempt: AttemptState, publicKey: ThresholdPublicKey): string {
  const body = {
    session: ctx.proposal.session,
    attempt: ctx.number,
    dealers: ctx.dealers,
    recipients: ctx.recipients,
    deals: ctx.dealers.map((peer) => messageDigest(attempt.deals[peer]!)),
    responses: ctx.participants.map((peer) => messageDigest(attempt.responses[peer]!)),
    publicKey: publicKeyDigest(publicKey),
  };
  return toBase64Url(sha256(utf8('optimystic/threshold/transcript/v1\n'), utf8(canonicalJson(body))));
}

/**
 * Checks a key's activation certificate: the proposal that made it and every confirmation. Each
 * confirmation must be signed by a roster member for this session and name the same attempt,
 * transcript and public key; every holder of the key must have confirmed. BAD_CERTIFICATE otherwise.
 */
export function checkActivation(
  proposal: unknown,
  publicKey: ThresholdPublicKey,
  confirmations: readonly unknown[],
): { attempt: number; transcript: string } {
  const checked = checkProposal(proposal);
  const bad = (what: string): never => {
    throw new EngineError('BAD_CERTIFICATE', `key activation: ${what}`);
  };
  const pk = checkPublicKey(publicKey);
  const p = checked.proposal;
  if (pk.json.session !== checked.session) bad('the key comes from another ceremony');
  if (
    pk.json.suite !== p.suite ||
    pk.json.purpose !== p.purpose ||
    pk.json.threshold !== p.threshold ||
    pk.json.label !== p.label
  ) {
    bad('the key does not match its proposal');
  }
  if (confirmations.length === 0 || confirmations.length > limits.ceremonyParticipantsMax)
    bad('no confirmations');
  const digest = publicKeyDigest(pk.json);
  const confirmed = new Set<string>();
  let first: ConfirmMessage | undefined;
  for (const value of confirmations) {
    const message = parseCeremonyMessage(value);
    if (message.type !== 'Confirm' || message.session !== checked.session)
      return bad('a confirmation belongs elsewhere');
    const member = checked.members.get(message.from);
    if (member === undefined || !verifyMessageSignature(message, member.identityKey))
      return bad(`confirmation from ${message.from} does not verify`);
    first ??= message;
    if (
      message.attempt !== first.attempt ||
      message.transcript !== first.transcript ||
      message.publicKey !== digest
    )
      bad(`${message.from} confirmed something else`);
    if (confirmed.has(message.from)) bad(`${message.from} confirmed twice`);
    confirmed.add(message.from);
  }
  for (const holder of pk.json.holders)
    if (!confirmed.has(holder.peerId)) bad(`holder ${holder.peerId} did not confirm`);
  return { attempt: first!.attempt, transcript: first!.transcript };
}

/** For a message about to be delivered: who it is from and which attempt (for edges that route). */
export function describeMessage(message: CeremonyMessage): string {
  return 'attempt' in message
    ? `${message.type} from ${message.from} (attempt ${message.attempt})`
    : `${message.type} from ${message.from}`;
}
