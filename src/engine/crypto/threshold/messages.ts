import { canonicalJson } from '../../base/codec.js';
import { EngineError } from '../../base/errors.js';
import { limits } from '../../base/limits.js';
import { fromBase64Url, sha256, toBase64Url, tryFromBase64Url, utf8 } from '../encoding.js';
import { decodeSignature, publicKeyFromPeerId, verifyDomain, type Identity } from '../identity.js';
import type { KeyPurpose, ThresholdPublicKey } from './key.js';
import { encryptionSuite } from './share-encryption.js';
import type { GroupPoint, SuiteId } from './suites.js';

/**
 * Ceremony messages: JSON discriminated unions, each signed by its sender's identity key over the
 * canonical JSON of every other field, and each naming the session it belongs to. They are plain
 * data, so an edge can carry them over the network or in files between air-gapped machines.
 */

export const ceremonyDomain = 'optimystic/threshold/ceremony/v1';
export const cardDomain = 'optimystic/threshold/card/v1';

export const ceremonyKinds = ['dkg', 'refresh', 'reshare'] as const;
export type CeremonyKind = (typeof ceremonyKinds)[number];

/** A participant's published ceremony key: its peer id (which holds its identity key) and encryption key. */
export interface ParticipantCard {
  peerId: string;
  encryptionKey: string;
  signature: string;
}

export interface Proposal {
  version: 1;
  kind: CeremonyKind;
  suite: SuiteId;
  purpose: KeyPurpose;
  label: string;
  /** Threshold of the key this ceremony produces. */
  threshold: number;
  /** Everyone taking part: recipients of new shares and, for refresh and reshare, the current holders who deal. */
  roster: ParticipantCard[];
  /** Peer ids that receive shares, in identifier order. */
  recipients: string[];
  /** The key being refreshed or reshared. */
  prior: ThresholdPublicKey | null;
  expiresAtMs: number;
  nonce: string;
  proposer: string;
}

export interface ProposalMessage {
  type: 'Proposal';
  session: string;
  from: string;
  proposal: Proposal;
  signature: string;
}

export interface AcceptMessage {
  type: 'Accept';
  session: string;
  from: string;
  signature: string;
}

export interface DeclineMessage {
  type: 'Decline';
  session: string;
  from: string;
  reason: string;
  signature: string;
}

export interface EncryptedShare {
  to: string;
  ciphertext: string;
}

export interface DealMessage {
  type: 'Deal';
  session: string;
  attempt: number;
  from: string;
  commitments: string[];
  proof: string;
  ephemeralKey: string;
  shares: EncryptedShare[];
  signature: string;
}

export interface Complaint {
  dealer: string;
  sharedKey: string;
  proof: string;
}

export interface ResponseMessage {
  type: 'Response';
  session: string;
  attempt: number;
  from: string;
  /** Every deal this participant judged, one per dealer (so equivocation shows). */
  deals: DealMessage[];
  complaints: Complaint[];
  signature: string;
}

export interface ConfirmMessage {
  type: 'Confirm';
  session: string;
  attempt: number;
  from: string;
  transcript: string;
  publicKey: string;
  signature: string;
}

export type CeremonyMessage =
  ProposalMessage | AcceptMessage | DeclineMessage | DealMessage | ResponseMessage | ConfirmMessage;
export type AttemptMessage = DealMessage | ResponseMessage | ConfirmMessage;
type Unsigned<T> = T extends unknown ? Omit<T, 'signature'> : never;

export function signedBytes(message: Unsigned<CeremonyMessage> | CeremonyMessage): Uint8Array {
  const { signature: _signature, ...rest } = message as CeremonyMessage;
  return utf8(canonicalJson(rest));
}

export function signMessage<T extends CeremonyMessage>(identity: Identity, unsigned: Unsigned<T>): T {
  return {
    ...unsigned,
    signature: toBase64Url(identity.signDomain(ceremonyDomain, signedBytes(unsigned))),
  } as T;
}

export function verifyMessageSignature(message: CeremonyMessage, identityKey: Uint8Array): boolean {
  const signature = tryFromBase64Url(message.signature, 64);
  return (
    signature !== undefined && verifyDomain(identityKey, ceremonyDomain, signedBytes(message), signature)
  );
}

export function messageDigest(message: CeremonyMessage): string {
  return toBase64Url(sha256(utf8('optimystic/threshold/message/v1\n'), utf8(canonicalJson(message))));
}

export function sessionIdOf(proposal: Proposal): string {
  return toBase64Url(sha256(utf8('optimystic/threshold/session/v1\n'), utf8(canonicalJson(proposal))));
}

// --- participant cards ----------------------------------------------------------------------------

export function createParticipantCard(identity: Identity, encryptionPublicKey: Uint8Array): ParticipantCard {
  const body = { peerId: identity.peerId, encryptionKey: toBase64Url(encryptionPublicKey) };
  return { ...body, signature: toBase64Url(identity.signDomain(cardDomain, utf8(canonicalJson(body)))) };
}

/** Checks a card: Ed25519 peer id, valid ristretto255 key, signature by the peer id's key. */
export function checkParticipantCard(card: ParticipantCard): {
  identityKey: Uint8Array;
  encryptionKey: GroupPoint;
} {
  const identityKey = publicKeyFromPeerId(card.peerId);
  const encryptionKey = encryptionSuite.decodePoint(
    fromBase64Url(card.encryptionKey, 'encryption key', { length: 32 }),
  );
  if (encryptionKey === undefined)
    throw new EngineError('BAD_INPUT', `encryption key of ${card.peerId} is not a valid point`);
  const signature = decodeSignature(card.signature);
  if (
    !verifyDomain(
      identityKey,
      cardDomain,
      utf8(canonicalJson({ peerId: card.peerId, encryptionKey: card.encryptionKey })),
      signature,
    )
  ) {
    throw new EngineError('BAD_SIGNATURE', `participant card of ${card.peerId} has a bad signature`);
  }
  return { identityKey, encryptionKey };
}

// --- shape parsing --------------------------------------------------------------------------------
//
// Parsing checks JSON types and sizes only. Cryptographic content (points, proofs, ciphertexts) is
// judged later, so that a signed message with bad content blames its sender instead of vanishing.

const textCharsMax = 512;

class Shape {
  constructor(private readonly what: string) {}
  fail(detail: string): never {
    throw new EngineError('BAD_INPUT', `${this.what}: ${detail}`);
  }
  object(value: unknown, keys: readonly string[]): Record<string, unknown> {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) this.fail('not an object');
    const obj = value as Record<string, unknown>;
    for (const key of Object.keys(obj)) if (!keys.includes(key)) this.fail(`unexpected field ${key}`);
    for (const key of keys) if (!(key in obj)) this.fail(`missing field ${key}`);
    return obj;
  }
  text(value: unknown, field: string, max = textCharsMax): string {
    if (typeof value !== 'string' || value.length > max)
      this.fail(`${field} must be text of at most ${max} characters`);
    return value;
  }
  count(value: unknown, field: string): number {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
      this.fail(`${field} must be a whole number`);
    return value;
  }
  list(value: unknown, field: string, max = limits.ceremonyParticipantsMax): unknown[] {
    if (!Array.isArray(value) || value.length > max)
      this.fail(`${field} must be a list of at most ${max} items`);
    return value;
  }
}

const attemptsMax = limits.ceremonyParticipantsMax;

function parseDeal(value: unknown, what: string): DealMessage {
  const s = new Shape(what);
  const o = s.object(value, [
    'type',
    'session',
    'attempt',
    'from',
    'commitments',
    'proof',
    'ephemeralKey',
    'shares',
    'signature',
  ]);
  if (o.type !== 'Deal') s.fail('not a Deal');
  const attempt = s.count(o.attempt, 'attempt');
  if (attempt > attemptsMax) s.fail('attempt out of range');
  return {
    type: 'Deal',
    session: s.text(o.session, 'session'),
    attempt,
    from: s.text(o.from, 'from'),
    commitments: s.list(o.commitments, 'commitments').map((c) => s.text(c, 'commitment')),
    proof: s.text(o.proof, 'proof'),
    ephemeralKey: s.text(o.ephemeralKey, 'ephemeralKey'),
    shares: s.list(o.shares, 'shares').map((item) => {
      const e = s.object(item, ['to', 'ciphertext']);
      return { to: s.text(e.to, 'to'), ciphertext: s.text(e.ciphertext, 'ciphertext') };
    }),
    signature: s.text(o.signature, 'signature'),
  };
}

/** Parses an untrusted value into a ceremony message (shape only); throws BAD_INPUT. */
export function parseCeremonyMessage(value: unknown): CeremonyMessage {
  const s = new Shape('ceremony message');
  if (value === null || typeof value !== 'object' || Array.isArray(value)) s.fail('not an object');
  const type = (value as Record<string, unknown>).type;
  switch (type) {
    case 'Proposal': {
      const o = s.object(value, ['type', 'session', 'from', 'proposal', 'signature']);
      return {
        type,
        session: s.text(o.session, 'session'),
        from: s.text(o.from, 'from'),
        proposal: parseProposalShape(o.proposal),
        signature: s.text(o.signature, 'signature'),
      };
    }
    case 'Accept': {
      const o = s.object(value, ['type', 'session', 'from', 'signature']);
      return {
        type,
        session: s.text(o.session, 'session'),
        from: s.text(o.from, 'from'),
        signature: s.text(o.signature, 'signature'),
      };
    }
    case 'Decline': {
      const o = s.object(value, ['type', 'session', 'from', 'reason', 'signature']);
      return {
        type,
        session: s.text(o.session, 'session'),
        from: s.text(o.from, 'from'),
        reason: s.text(o.reason, 'reason'),
        signature: s.text(o.signature, 'signature'),
      };
    }
    case 'Deal':
      return parseDeal(value, 'Deal');
    case 'Response': {
      const o = s.object(value, ['type', 'session', 'attempt', 'from', 'deals', 'complaints', 'signature']);
      const attempt = s.count(o.attempt, 'attempt');
      if (attempt > attemptsMax) s.fail('attempt out of range');
      return {
        type,
        session: s.text(o.session, 'session'),
        attempt,
        from: s.text(o.from, 'from'),
        deals: s.list(o.deals, 'deals').map((d) => parseDeal(d, 'echoed Deal')),
        complaints: s.list(o.complaints, 'complaints').map((item) => {
          const c = s.object(item, ['dealer', 'sharedKey', 'proof']);
          return {
            dealer: s.text(c.dealer, 'dealer'),
            sharedKey: s.text(c.sharedKey, 'sharedKey'),
            proof: s.text(c.proof, 'proof'),
          };
        }),
        signature: s.text(o.signature, 'signature'),
      };
    }
    case 'Confirm': {
      const o = s.object(value, [
        'type',
        'session',
        'attempt',
        'from',
        'transcript',
        'publicKey',
        'signature',
      ]);
      const attempt = s.count(o.attempt, 'attempt');
      if (attempt > attemptsMax) s.fail('attempt out of range');
      return {
        type,
        session: s.text(o.session, 'session'),
        attempt,
        from: s.text(o.from, 'from'),
        transcript: s.text(o.transcript, 'transcript'),
        publicKey: s.text(o.publicKey, 'publicKey'),
        signature: s.text(o.signature, 'signature'),
      };
    }
    default:
      return s.fail(`unknown message type ${JSON.stringify(type)}`);
  }
}

function parseProposalShape(value: unknown): Proposal {
  const s = new Shape('proposal');
  const o = s.object(value, [
    'version',
    'kind',
    'suite',
    'purpose',
    'label',
    'threshold',
    'roster',
    'recipients',
    'prior',
    'expiresAtMs',
    'nonce',
    'proposer',
  ]);
  if (o.version !== 1) s.fail('unsupported version');
  if (!(ceremonyKinds as readonly unknown[]).includes(o.kind)) s.fail('unknown kind');
  if (o.purpose !== 'sign' && o.purpose !== 'decrypt') s.fail('unknown purpose');
  if (o.prior !== null && (typeof o.prior !== 'object' || Array.isArray(o.prior)))
    s.fail('prior must be a public key or null');
  return {
    version: 1,
    kind: o.kind as CeremonyKind,
    suite: s.text(o.suite, 'suite') as SuiteId,
    purpose: o.purpose as KeyPurpose,
    label: s.text(o.label, 'label', limits.ceremonyLabelCharsMax),
    threshold: s.count(o.threshold, 'threshold'),
    roster: s.list(o.roster, 'roster').map((item) => {
      const c = s.object(item, ['peerId', 'encryptionKey', 'signature']);
      return {
        peerId: s.text(c.peerId, 'peerId'),
        encryptionKey: s.text(c.encryptionKey, 'encryptionKey'),
        signature: s.text(c.signature, 'signature'),
      };
    }),
    recipients: s.list(o.recipients, 'recipients').map((r) => s.text(r, 'recipient')),
    prior: o.prior as ThresholdPublicKey | null,
    expiresAtMs: s.count(o.expiresAtMs, 'expiresAtMs'),
    nonce: s.text(o.nonce, 'nonce'),
    proposer: s.text(o.proposer, 'proposer'),
  };
}
