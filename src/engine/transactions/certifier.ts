import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { ed25519PeerId, ed25519PublicKeyOfPeerId } from '../base/base58.js';
import { canonicalJson } from '../base/codec.js';
import type { BlockId, TrxId } from '../base/ids.js';
import type { Certificate, EntryStatus } from '../collections/log/log-block.js';
import { batchRootMessage, batchTree, rootOfPath } from './decision-tree.js';

/** The fields a decision signature covers (domain-separated, canonical JSON). */
export interface DecisionFields {
  readonly network: string;
  readonly collection: string;
  readonly blockId: BlockId;
  readonly lsn: number;
  readonly trxId: TrxId;
  readonly decision: EntryStatus;
  readonly membership: string;
}

const decisionDomain = 'optimystic/decision/v1';

export function decisionMessage(fields: DecisionFields): Buffer {
  const { network, collection, blockId, lsn, trxId, decision, membership } = fields;
  // canonicalJson's text written out directly (members in sorted order) for the usual shape; a
  // certificate that arrived with other types in these fields is encoded by canonicalJson itself.
  if (
    typeof network === 'string' &&
    typeof collection === 'string' &&
    typeof blockId === 'string' &&
    typeof lsn === 'number' &&
    Number.isFinite(lsn) &&
    typeof trxId === 'string' &&
    typeof decision === 'string' &&
    typeof membership === 'string'
  ) {
    return Buffer.from(
      `{"blockId":${JSON.stringify(blockId)},"collection":${JSON.stringify(collection)},"decision":${JSON.stringify(decision)},"domain":"${decisionDomain}","lsn":${String(lsn)},"membership":${JSON.stringify(membership)},"network":${JSON.stringify(network)},"trxId":${JSON.stringify(trxId)}}`,
    );
  }
  return Buffer.from(
    canonicalJson({
      domain: decisionDomain,
      network: fields.network,
      collection: fields.collection,
      blockId: fields.blockId,
      lsn: fields.lsn,
      trxId: fields.trxId,
      decision: fields.decision,
      membership: fields.membership,
    }),
  );
}

/** Hash of a recorded membership list (order-independent). */
export function membershipHash(members: readonly string[]): string {
  let hash = membershipHashes.get(members);
  if (hash === undefined) {
    hash = createHash('sha256')
      .update(canonicalJson([...members].sort()))
      .digest('base64url');
    membershipHashes.set(members, hash);
  }
  return hash;
}

/** Membership lists are recorded once per log block and reused for every decision: hash each once. */
const membershipHashes = new WeakMap<readonly string[], string>();

/**
 * Produces and checks commit certificates. A solo node certifies alone (quorum of one); the network
 * version gathers a quorum of signed votes through consensus and implements the same interface.
 */
export interface Certifier {
  certify(
    fields: Omit<DecisionFields, 'network' | 'membership'>,
    members: readonly string[],
    entry?: EntryContext,
  ): Promise<Certificate>;
  /**
   * Optional: certifies several decisions of one log block at once (one tail batch). Each certificate
   * must verify alone, like one from `certify`. Tails without it certify decision by decision.
   */
  certifyBatch?(
    decisions: readonly Omit<DecisionFields, 'network' | 'membership'>[],
    members: readonly string[],
  ): Promise<Certificate[]>;
  /** True when the certificate carries a valid quorum for the given membership. */
  verify(certificate: Certificate, members: readonly string[]): boolean;
  /**
   * When `error` is a certify refusal because the group already decided other entries at or next to
   * the LSN asked for: those decisions, as log certificates with the entry content they carried, so
   * the tail writes them before deciding anything else. Undefined for any other error.
   */
  decidedElsewhere?(
    error: unknown,
    collection: string,
    members: readonly string[],
  ): readonly RecoveredDecision[] | undefined;
  /**
   * Optional: whether this node voted for an entry of the log block's group past `lsn` (a decision
   * the log may lack: the node's previous process stopped between the votes and the log write).
   */
  votedBeyond?(blockId: BlockId, members: readonly string[], lsn: number): Promise<boolean>;
}

/** What a log decision is taken against, beyond the signed fields (used by consensus certifiers). */
export interface EntryContext {
  /** The transaction the tail's log holds at lsn - 1 (null: none before it). */
  readonly prev?: TrxId | null;
  /** The entry without lsn, trxId, status and certificate: what a successor needs to write it. */
  readonly body?: Readonly<Record<string, unknown>>;
}

/** A decision a group took that the tail's log may lack. */
export interface RecoveredDecision {
  readonly lsn: number;
  readonly trxId: TrxId;
  readonly decision: EntryStatus;
  readonly certificate: Certificate;
  /** The entry content (see EntryContext.body); absent for decisions proposed without one. */
  readonly body: Readonly<Record<string, unknown>> | undefined;
}

/**
 * An Ed25519 identity held in memory: its public key (`id`, base64url), the libp2p peer id the same
 * key makes (`peerId`, what members are known by), and a signer.
 */
export class Ed25519Identity {
  readonly id: string;
  readonly peerId: string;
  private readonly privateKey: KeyObject;

  private constructor(privateKey: KeyObject) {
    this.privateKey = privateKey;
    const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
    const raw = spki.subarray(spki.length - 32);
    this.id = raw.toString('base64url');
    this.peerId = ed25519PeerId(raw);
  }

  static generate(): Ed25519Identity {
    return new Ed25519Identity(generateKeyPairSync('ed25519').privateKey);
  }

  /** From a PKCS#8 DER private key, base64url. */
  static fromPkcs8(encoded: string): Ed25519Identity {
    return new Ed25519Identity(
      createPrivateKey({ key: Buffer.from(encoded, 'base64url'), format: 'der', type: 'pkcs8' }),
    );
  }

  toPkcs8(): string {
    return this.privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64url');
  }

  sign(message: Uint8Array): string {
    return sign(null, message, this.privateKey).toString('base64url');
  }
}

const spkiPrefix = Buffer.from('302a300506032b6570032100', 'hex');

/** Public keys of members seen recently; building a KeyObject costs more than verifying with it. */
const publicKeys = new Map<string, KeyObject>();
const publicKeysMax = 4096;

/**
 * The public key of a member id. Two forms are accepted: an Ed25519 libp2p peer id (`12D3KooW…`,
 * what networked nodes are known by), and the raw 32-byte key in base64url (solo data dirs). They
 * cannot be confused: a peer id is 52 characters, a base64url key 43. Throws for anything else.
 */
function publicKeyOf(memberId: string): KeyObject {
  let key = publicKeys.get(memberId);
  if (key === undefined) {
    const raw = ed25519PublicKeyOfPeerId(memberId) ?? Buffer.from(memberId, 'base64url');
    key = createPublicKey({
      key: Buffer.concat([spkiPrefix, raw]),
      format: 'der',
      type: 'spki',
    });
    if (publicKeys.size >= publicKeysMax) publicKeys.clear();
    publicKeys.set(memberId, key);
  }
  return key;
}

/**
 * Signatures already found good (or made here), by member and signature, with the exact message they
 * cover. One vote is checked several times on its way (the accept, the decision's certificate, the
 * promotion's proof, a read that reinforces the commit); each check after the first compares bytes
 * instead of verifying again (~100 µs). Only a byte-identical message matches, so nothing is
 * accepted that a verification would refuse. Oldest first out.
 */
const verifiedSignatures = new Map<string, Buffer>();
const verifiedSignaturesMax = 8192;

/** Records a good signature (one this node made, or one just verified). */
export function rememberSignature(memberId: string, message: Uint8Array, signature: string): void {
  const key = `${memberId} ${signature}`;
  if (verifiedSignatures.has(key)) return;
  if (verifiedSignatures.size >= verifiedSignaturesMax)
    verifiedSignatures.delete(verifiedSignatures.keys().next().value!);
  verifiedSignatures.set(key, Buffer.from(message));
}

/** Checks a member's Ed25519 signature (base64url); false, never a throw, for any malformed input. */
export function verifyEd25519(memberId: string, message: Uint8Array, signature: string): boolean {
  const known = verifiedSignatures.get(`${memberId} ${signature}`);
  if (known !== undefined && known.equals(message)) return true;
  let good: boolean;
  try {
    good = verify(null, message, publicKeyOf(memberId), Buffer.from(signature, 'base64url'));
  } catch {
    return false;
  }
  if (good) rememberSignature(memberId, message, signature);
  return good;
}

/** Verifies a certificate's signatures against a membership: a majority of distinct members must sign. */
export function verifyCertificate(certificate: Certificate, members: readonly string[]): boolean {
  const membership = membershipHash(members);
  if (certificate.membership !== membership) return false;
  const message = signedMessage(certificate);
  if (message === undefined) return false;
  const memberSet = new Set(members);
  const signers = new Set<string>();
  for (const { member, signature } of certificate.signatures) {
    if (!memberSet.has(member) || signers.has(member)) continue;
    if (verifyEd25519(member, message, signature)) signers.add(member);
  }
  return signers.size > Math.floor(members.length / 2);
}

/**
 * What a certificate's signatures cover: its decision message, or for a decision certified in a batch
 * the batch root its audit path leads to (undefined when the path is malformed).
 */
function signedMessage(certificate: Certificate): Buffer | undefined {
  const batch = (certificate as { batch?: unknown }).batch;
  if (batch === undefined) return decisionMessage(certificate);
  if (typeof batch !== 'object' || batch === null) return undefined;
  const path = batch as NonNullable<Certificate['batch']>;
  const root = rootOfPath(decisionMessage(certificate), path);
  return root === undefined ? undefined : batchRootMessage(root, path.size);
}

/** Certifies decisions alone: the solo node is the whole membership. */
export class SoloCertifier implements Certifier {
  /**
   * Certificate objects this certifier issued in this process. The in-process block holder verifies
   * what the in-process tail just signed; checking the object's identity spares a signature
   * verification per commit. Anything else (read from disk, received) is verified in full.
   */
  private readonly issued = new WeakSet<Certificate>();

  /**
   * `verifyOther` checks the certificates this certifier did not issue in this process (default: a
   * quorum of `members` signed a decision of `network`). A solo node passes one that also accepts what
   * a network's groups decided by consensus (its store opened alone, read-only), which this layer
   * cannot check itself.
   */
  constructor(
    private readonly identity: Ed25519Identity,
    private readonly network: string,
    private readonly verifyOther: (certificate: Certificate, members: readonly string[]) => boolean = (
      certificate,
      members,
    ) => certificate.network === network && verifyCertificate(certificate, members),
  ) {}

  /**
   * The id to sign as for a group: the node's peer id, as running nodes know it, unless the group
   * records the node by its bare public key (`identity.id`, what solo data directories recorded
   * before): its certificates keep matching the group recorded.
   */
  private signerFor(members: readonly string[]): string {
    return members.includes(this.identity.id) ? this.identity.id : this.identity.peerId;
  }

  certify(
    fields: Omit<DecisionFields, 'network' | 'membership'>,
    members: readonly string[],
  ): Promise<Certificate> {
    const full: DecisionFields = { ...fields, network: this.network, membership: membershipHash(members) };
    const signature = this.identity.sign(decisionMessage(full));
    const certificate: Certificate = Object.freeze({
      ...full,
      signatures: Object.freeze([{ member: this.signerFor(members), signature }]),
    });
    this.issued.add(certificate);
    return Promise.resolve(certificate);
  }

  /**
   * One signature for a whole tail batch: over the root of a Merkle tree of the decision messages,
   * each certificate carrying its audit path (a batch of one is certified plainly).
   */
  certifyBatch(
    decisions: readonly Omit<DecisionFields, 'network' | 'membership'>[],
    members: readonly string[],
  ): Promise<Certificate[]> {
    if (decisions.length === 1) return this.certify(decisions[0]!, members).then((c) => [c]);
    const membership = membershipHash(members);
    const full = decisions.map((fields): DecisionFields => ({
      ...fields,
      network: this.network,
      membership,
    }));
    const { root, paths } = batchTree(full.map(decisionMessage));
    const signatures = Object.freeze([
      {
        member: this.signerFor(members),
        signature: this.identity.sign(batchRootMessage(root, full.length)),
      },
    ]);
    return Promise.resolve(
      full.map((fields, i) => {
        const certificate: Certificate = Object.freeze({ ...fields, signatures, batch: paths[i]! });
        this.issued.add(certificate);
        return certificate;
      }),
    );
  }

  verify(certificate: Certificate, members: readonly string[]): boolean {
    if (this.issued.has(certificate)) return certificate.membership === membershipHash(members);
    return this.verifyOther(certificate, members);
  }
}
