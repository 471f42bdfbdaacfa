import { createHash } from 'node:crypto';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { canonicalJson } from '../base/codec.js';
import { EngineError, isEngineError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import {
  aggregateSignature,
  checkParticipantCard,
  checkProposal,
  checkPublicKey,
  combinePartialDecryptions,
  commitToSign,
  createPartialDecryption,
  createProposal,
  createSigningPackage,
  fromBase64Url,
  joinCeremony,
  messageDigest,
  parseCeremonyMessage,
  publicKeyFromPeerId,
  signPackage,
  stepCeremony,
  toBase64Url,
  toHex,
  verifyMessageSignature,
  type Blame,
  type CeremonyEffect,
  type CeremonyFailure,
  type CeremonyInput,
  type CeremonyKeys,
  type CeremonyKind,
  type CeremonyMessage,
  type CeremonyPhase,
  type CeremonyState,
  type CheckedProposal,
  type KeyPurpose,
  type ParticipantCard,
  type PartialDecryption,
  type ProposalMessage,
  type SignatureShare,
  type SigningCommitment,
  type SigningNonces,
  type SigningPackage,
  type SuiteId,
  type ThresholdCiphertext,
  type ThresholdShare,
} from '../crypto/index.js';
import {
  fileExists,
  readJsonFile,
  writeFileAtomic,
  type CeremonyIdentity,
  type KeyStore,
  type StoredKey,
} from './keystore.js';

/**
 * Air-gapped key ceremonies, signing and decryption through files. Each participant runs one step at
 * a time on its own data directory: it reads the message files other participants left in an
 * exchange directory (`--in`), advances its sealed state, and writes its own messages (`--out`). The
 * cryptography is the pure crypto layer's; this module is the edge that keeps files, asks the
 * operator for approval (through `decide`) and decides what to read and when.
 *
 * Exchange file names (one directory may hold several ceremonies and requests at once):
 *
 * ```
 * card-<peer>.json                              a participant card
 * ceremony-<S>-proposal.json                    the proposal (S: 12 hex digits of the session id)
 * ceremony-<S>-accept-<peer>.json               acceptance, or ceremony-<S>-decline-<peer>.json
 * ceremony-<S>-a<N>-deal-<peer>.json            attempt N: deal, then response, then confirm
 * ceremony-<S>-a<N>-response-<peer>.json
 * ceremony-<S>-a<N>-confirm-<peer>.json
 * sign-<R>-request.json                         signing request R (16 hex digits), from the coordinator
 * sign-<R>-commit-<peer>.json                   round one: a holder's nonce commitment
 * sign-<R>-package.json                         the coordinator's signing package
 * sign-<R>-share-<peer>.json                    round two: a holder's signature share
 * sign-<R>-signature.json                       the aggregated signature
 * decrypt-<R>-request.json                      decryption request R, with the ciphertext
 * decrypt-<R>-partial-<peer>.json               a holder's partial decryption with its DLEQ proof
 * ```
 *
 * `<peer>` is the last 10 characters of the sender's peer id. Names only route files: what counts is
 * the content, which is authenticated (ceremony messages are signed; signature shares and partial
 * decryptions are checked against the holder's verifying share).
 */

// --- exchange directory --------------------------------------------------------------------------

/** A ceremony response echoes every deal (n² ciphertexts); a 64-member one stays far below this. */
export const exchangeFileBytesMax = limits.messageBytesMax;
/** Public exchange files are readable by others (they travel between machines); partials are not. */
const publicFileMode = 0o644;
const privateFileMode = 0o600;
const peerTagChars = 10;

export function peerTag(peerId: string): string {
  return peerId.slice(-peerTagChars);
}

export function sessionTag(session: string): string {
  return toHex(fromBase64Url(session, 'session id', { length: 32 })).slice(0, 12);
}

function isSessionId(text: string): boolean {
  try {
    fromBase64Url(text, 'session id', { length: 32 });
    return true;
  } catch {
    return false;
  }
}

export function ceremonyFileName(message: CeremonyMessage): string {
  const prefix = `ceremony-${sessionTag(message.session)}`;
  const peer = peerTag(message.from);
  switch (message.type) {
    case 'Proposal':
      return `${prefix}-proposal.json`;
    case 'Accept':
      return `${prefix}-accept-${peer}.json`;
    case 'Decline':
      return `${prefix}-decline-${peer}.json`;
    case 'Deal':
      return `${prefix}-a${message.attempt}-deal-${peer}.json`;
    case 'Response':
      return `${prefix}-a${message.attempt}-response-${peer}.json`;
    case 'Confirm':
      return `${prefix}-a${message.attempt}-confirm-${peer}.json`;
  }
}

export interface ExchangeFile {
  name: string;
  path: string;
  /** The parsed JSON, or the error reading it. */
  value: unknown;
  error: EngineError | null;
}

/** Reads every `<prefix>*.json` file in a directory, sorted by name. A missing directory is NOT_FOUND. */
export async function readExchangeDir(dir: string, prefix: string): Promise<ExchangeFile[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new EngineError('NOT_FOUND', `exchange directory ${dir} does not exist`);
    if (code === 'ENOTDIR') throw new EngineError('BAD_INPUT', `${dir} is not a directory`);
    throw error;
  }
  const files: ExchangeFile[] = [];
  for (const name of names.filter((n) => n.startsWith(prefix) && n.endsWith('.json')).sort()) {
    const path = join(dir, name);
    try {
      files.push({
        name,
        path,
        value: await readJsonFile(path, `exchange file ${name}`, {
          code: 'CORRUPT',
          bytesMax: exchangeFileBytesMax,
        }),
        error: null,
      });
    } catch (error) {
      if (!(error instanceof EngineError)) throw error;
      files.push({ name, path, value: undefined, error });
    }
  }
  return files;
}

/** Reads the same prefix from several directories (each once), later duplicates of a name dropped. */
async function readExchangeDirs(dirs: readonly string[], prefix: string): Promise<ExchangeFile[]> {
  const seen = new Set<string>();
  const out: ExchangeFile[] = [];
  for (const dir of [...new Set(dirs)]) {
    if (dir !== dirs[0] && !(await fileExists(dir))) continue;
    for (const file of await readExchangeDir(dir, prefix)) {
      if (seen.has(file.name)) continue;
      seen.add(file.name);
      out.push(file);
    }
  }
  return out;
}

/**
 * Writes an exchange file atomically. The same content already there is fine (a step run again
 * writes the very same messages); different content under the name is refused with EXISTS.
 */
export async function writeExchangeFile(
  dir: string,
  name: string,
  value: unknown,
  mode: number = publicFileMode,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, name);
  if (await fileExists(path)) {
    let existing: unknown;
    try {
      existing = await readJsonFile(path, `exchange file ${name}`, { bytesMax: exchangeFileBytesMax });
    } catch {
      existing = undefined;
    }
    if (existing !== undefined && canonicalJson(existing) === canonicalJson(value)) return;
    throw new EngineError(
      'EXISTS',
      `${path} already exists with other content; move it away or use another --out directory`,
    );
  }
  await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`, mode);
}

// --- approval --------------------------------------------------------------------------------------

export type Decision = { approve: true } | { approve: false; reason: string };

/** What a participant is asked to approve. */
export type ApprovalRequest =
  | { kind: 'ceremony'; ceremony: CeremonySummary }
  | {
      kind: 'sign';
      keyId: string;
      label: string;
      request: string;
      /** The bytes to be signed. */
      message: Uint8Array;
    }
  | {
      kind: 'decrypt';
      keyId: string;
      label: string;
      request: string;
      requester: string | null;
      ciphertextDigest: string;
      ciphertextBytes: number;
    };

/** Asks the operator; undefined means no decision could be had (no --approve and no terminal). */
export type Decide = (request: ApprovalRequest) => Promise<Decision | undefined>;

/** The passphrase, asked for only when a secret is actually needed. */
export type PassphraseSource = () => Promise<string>;

function needsApproval(what: string): EngineError {
  return new EngineError(
    'BAD_INPUT',
    `${what} needs your approval: read it, then rerun with --approve (or answer y at the prompt on a terminal)`,
  );
}

// --- ceremonies --------------------------------------------------------------------------------

export interface CeremonyMember {
  peerId: string;
  deals: boolean;
  receives: boolean;
  you: boolean;
}

/** A proposal as shown to the operator before approval and in listings. */
export interface CeremonySummary {
  session: string;
  tag: string;
  kind: CeremonyKind;
  suite: SuiteId;
  purpose: KeyPurpose;
  label: string;
  threshold: number;
  recipients: number;
  proposer: string;
  members: CeremonyMember[];
  /** refresh and reshare: the key whose shares change (its id does not). */
  priorKeyId: string | null;
  priorThreshold: number | null;
  expiresAtMs: number;
}

export function summarizeProposal(message: ProposalMessage, self: string | null): CeremonySummary {
  const checked = checkProposal(message);
  const p = checked.proposal;
  return {
    session: checked.session,
    tag: sessionTag(checked.session),
    kind: p.kind,
    suite: p.suite,
    purpose: p.purpose,
    label: p.label,
    threshold: p.threshold,
    recipients: p.recipients.length,
    proposer: p.proposer,
    members: p.roster.map((card) => ({
      peerId: card.peerId,
      deals: checked.dealers.includes(card.peerId),
      receives: p.recipients.includes(card.peerId),
      you: card.peerId === self,
    })),
    priorKeyId: p.prior?.keyId ?? null,
    priorThreshold: p.prior?.threshold ?? null,
    expiresAtMs: p.expiresAtMs,
  };
}

/** Public record of a ceremony this data directory takes part in (`ceremonies/<session>/record.json`). */
export interface CeremonyRecord {
  format: 'optimystic-ceremony-record';
  version: 1;
  session: string;
  proposal: ProposalMessage;
  summary: CeremonySummary;
  phase: CeremonyPhase;
  attempt: number;
  keyId: string | null;
  failure: CeremonyFailure | null;
  /** Exchange files this participant wrote, in order (copies are under sent/). */
  sent: string[];
  updatedAtMs: number;
  /**
   * Set for a ceremony run over the network between running nodes (ceremony-net.ts): the node drives
   * it, not `keygen ceremony step`.
   */
  network?: CeremonyRoutes;
}

/** Where the participants of a networked ceremony run: the node behind each ceremony identity. */
export interface CeremonyRoutes {
  /** The node (libp2p peer id) that proposed the ceremony. */
  coordinator: string;
  /** Ceremony peer id → node peer id, one per roster member. */
  nodes: Record<string, string>;
  /** Ceremony peer id → its identity's signature over its node's peer id (ceremony-net.ts). */
  bindings?: Record<string, string>;
  /** How long a round may wait for a silent participant before the node blames it. */
  phaseTimeoutMs: number;
}

/** Sealed (`ceremonies/<session>/state.json`): the state holds the seed of every random choice. */
interface CeremonySecrets {
  format: 'optimystic-ceremony-secrets';
  version: 1;
  state: CeremonyState;
  /** Digests of the messages already fed to the state. */
  consumed: string[];
  /** refresh and reshare: this dealer's current share, kept until the new generation is installed. */
  priorShare: ThresholdShare | null;
}

export type Waiting = {
  for: 'acceptances' | 'deals' | 'responses' | 'confirmations';
  missing: string[];
  of: number;
};

export interface KeySummary {
  keyId: string;
  suite: SuiteId;
  purpose: KeyPurpose;
  label: string;
  threshold: number;
  holders: number;
  /** The group public key, hex (for ed25519-sha512, an ordinary Ed25519 public key). */
  publicKeyHex: string;
  /** This data directory's identifier in the key, or null when it holds no share. */
  identifier: number | null;
  session: string;
}

export type CeremonyEvent =
  | { type: 'blamed'; attempt: number; blame: Blame[] }
  | { type: 'restarted'; attempt: number; dealers: string[]; recipients: string[] };

/** What a ceremony command did and where the ceremony stands. */
export interface CeremonyProgress {
  session: string;
  summary: CeremonySummary;
  self: string;
  phase: CeremonyPhase;
  attempt: number;
  /** This run joined the ceremony (and decided on it). */
  joined: boolean;
  decision: 'approved' | 'declined' | null;
  read: { file: string; type: string; from: string }[];
  ignored: { file: string; reason: string }[];
  wrote: string[];
  events: CeremonyEvent[];
  waiting: Waiting | null;
  key: KeySummary | null;
  failure: CeremonyFailure | null;
}

export function summarizeKey(key: StoredKey): KeySummary {
  const pk = checkPublicKey(key.publicKey);
  return {
    keyId: pk.json.keyId,
    suite: pk.json.suite,
    purpose: pk.json.purpose,
    label: pk.json.label,
    threshold: pk.json.threshold,
    holders: pk.json.holders.length,
    publicKeyHex: toHex(pk.groupKey.toBytes()),
    identifier: key.holder?.identifier ?? null,
    session: pk.json.session,
  };
}

export const ceremonyDir = (session: string): string => `ceremonies/${session}`;
const messageRank: Record<CeremonyMessage['type'], number> = {
  Proposal: 0,
  Accept: 1,
  Decline: 1,
  Deal: 2,
  Response: 3,
  Confirm: 4,
};

/** Public records of every ceremony in the store, newest first. */
export async function listCeremonies(store: KeyStore): Promise<CeremonyRecord[]> {
  const records: CeremonyRecord[] = [];
  for (const session of await store.list('ceremonies')) {
    const record = await readCeremonyRecord(store, session);
    if (record !== undefined) records.push(record);
  }
  return records.sort((a, b) => b.updatedAtMs - a.updatedAtMs);
}

export async function readCeremonyRecord(
  store: KeyStore,
  session: string,
): Promise<CeremonyRecord | undefined> {
  const value = await store.readRecord(`${ceremonyDir(session)}/record.json`, `ceremony ${session}`);
  if (value === undefined) return undefined;
  const record = value as CeremonyRecord;
  if (record.format !== 'optimystic-ceremony-record' || record.session !== session)
    throw new EngineError('CORRUPT', `ceremony record ${session} is malformed`);
  return record;
}

export function isFinished(phase: CeremonyPhase): boolean {
  return phase === 'complete' || phase === 'failed';
}

/** Writes this data directory's participant card (creating the ceremony identity on first use). */
export async function publishCard(options: {
  store: KeyStore;
  passphrase: PassphraseSource;
  outDir: string | null;
}): Promise<{ card: ParticipantCard; created: boolean; file: string | null }> {
  const { store } = options;
  const lock = await store.lock();
  try {
    let card = await store.readCard();
    let created = false;
    if (card === undefined || !(await store.hasIdentity())) {
      card = (await store.createIdentity(await options.passphrase())).card;
      created = true;
    }
    checkParticipantCard(card);
    let file: string | null = null;
    if (options.outDir !== null) {
      file = `card-${peerTag(card.peerId)}.json`;
      await writeExchangeFile(options.outDir, file, card);
    }
    return { card, created, file };
  } finally {
    await lock.release();
  }
}

/** Reads every `card-*.json` in a directory; a card whose signature fails names its file. */
export async function readCards(dir: string): Promise<Map<string, ParticipantCard>> {
  const cards = new Map<string, ParticipantCard>();
  for (const file of await readExchangeDir(dir, 'card-')) {
    if (file.error !== null) throw new EngineError(file.error.code, `${file.name}: ${file.error.message}`);
    const value = file.value as ParticipantCard;
    try {
      if (value === null || typeof value !== 'object' || Array.isArray(value))
        throw new EngineError('BAD_INPUT', 'not a card');
      const card = { peerId: value.peerId, encryptionKey: value.encryptionKey, signature: value.signature };
      checkParticipantCard(card);
      const known = cards.get(card.peerId);
      if (known !== undefined && canonicalJson(known) !== canonicalJson(card))
        throw new EngineError('BAD_INPUT', `a second, different card for ${card.peerId}`);
      cards.set(card.peerId, card);
    } catch (error) {
      if (!(error instanceof EngineError)) throw error;
      const code = error.code === 'BAD_SIGNATURE' ? 'BAD_SIGNATURE' : 'BAD_INPUT';
      throw new EngineError(code, `card file ${file.path}: ${error.message}`);
    }
  }
  return cards;
}

/** Finds a peer by full peer id or a unique tail of it (6 characters or more). */
function pickPeer(ref: string, peers: readonly string[], where: string): string {
  if (peers.includes(ref)) return ref;
  const matches = ref.length >= 6 ? peers.filter((p) => p.endsWith(ref)) : [];
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) throw new EngineError('BAD_INPUT', `${ref} matches several peers in ${where}`);
  throw new EngineError('NOT_FOUND', `no participant ${ref} in ${where}`);
}

export interface ProposeOptions {
  store: KeyStore;
  passphrase: PassphraseSource;
  outDir: string;
  kind: CeremonyKind;
  expiresInMs: number;
  /** Key generation: cards of the participants; refresh and reshare: cards of new recipients. */
  cardsDir?: string;
  /** Key generation: members to take from cardsDir (default all); reshare: the new holders, in order. */
  roster?: string[];
  suite?: SuiteId;
  purpose?: KeyPurpose;
  label?: string;
  threshold?: number;
  /** refresh and reshare: the key. */
  keyRef?: string;
  /** reshare: current holders who deal (default all of them). */
  dealers?: string[];
}

/**
 * Proposes a ceremony: builds and signs the proposal, joins it (the proposer approves by proposing),
 * and writes the proposal and its acceptance to the exchange directory.
 */
export async function proposeCeremony(options: ProposeOptions): Promise<CeremonyProgress> {
  const { store } = options;
  const lock = await store.lock();
  try {
    const passphrase = await options.passphrase();
    const me = await store.openIdentity(passphrase);
    const self = me.identity.peerId;
    const expiresAtMs = store.clock.now() + options.expiresInMs;
    let message: ProposalMessage;
    let priorShare: ThresholdShare | null = null;
    if (options.kind === 'dkg') {
      const cards =
        options.cardsDir === undefined
          ? new Map<string, ParticipantCard>()
          : await readCards(options.cardsDir);
      cards.set(self, me.card);
      let roster: ParticipantCard[];
      if (options.roster !== undefined && options.roster.length > 0) {
        const chosen = options.roster.map((ref) => pickPeer(ref, [...cards.keys()], 'the cards'));
        if (!chosen.includes(self)) chosen.unshift(self);
        roster = [...new Set(chosen)].map((peer) => cards.get(peer)!);
      } else {
        roster = [...cards.values()].sort((a, b) => (a.peerId < b.peerId ? -1 : 1));
      }
      message = createKeyProposal(store, me, { ...options, roster, expiresAtMs });
    } else {
      const key = await store.resolveKey(options.keyRef ?? '');
      const pk = checkPublicKey(key.publicKey, 'CORRUPT');
      const holders = [...pk.json.holders].sort((a, b) => a.identifier - b.identifier).map((h) => h.peerId);
      const known = new Map(key.activation.proposal.proposal.roster.map((c) => [c.peerId, c] as const));
      if (options.cardsDir !== undefined)
        for (const [peer, card] of await readCards(options.cardsDir)) known.set(peer, card);
      known.set(self, me.card);
      const cardOf = (peer: string): ParticipantCard => {
        const card = known.get(peer);
        if (card === undefined)
          throw new EngineError('NOT_FOUND', `no card for ${peer}: put its card file in --cards DIR`);
        return card;
      };
      if (key.holder !== null) priorShare = (await store.openShare(pk.json.keyId, passphrase)).share;
      if (options.kind === 'refresh') {
        if (key.holder === null)
          throw new EngineError('BAD_INPUT', `only a holder of key ${pk.json.keyId} can propose its refresh`);
        message = createProposal(
          me.identity,
          { kind: 'refresh', roster: holders.map(cardOf), prior: pk.json, expiresAtMs },
          store.rng,
        );
      } else {
        if (options.roster === undefined || options.roster.length === 0)
          throw new EngineError('BAD_INPUT', 'a reshare needs --roster: the peers that will hold the key');
        const recipients = options.roster.map((ref) => pickPeer(ref, [...known.keys()], 'the known cards'));
        const dealers =
          options.dealers === undefined || options.dealers.length === 0
            ? holders
            : options.dealers.map((ref) => pickPeer(ref, holders, `the holders of key ${pk.json.keyId}`));
        const members = [...new Set([...dealers, ...recipients])];
        if (!members.includes(self))
          throw new EngineError('BAD_INPUT', 'the proposer must deal or receive a share in the reshare');
        message = createProposal(
          me.identity,
          {
            kind: 'reshare',
            roster: members.map(cardOf),
            recipients,
            prior: pk.json,
            ...(options.threshold === undefined ? {} : { threshold: options.threshold }),
            expiresAtMs,
          },
          store.rng,
        );
      }
      if (!checkProposal(message).priorIdentifiers.has(self)) priorShare = null;
    }
    const run = new CeremonyRun(store, me, passphrase, message, fileSink(options.outDir));
    return await run.propose(priorShare);
  } finally {
    await lock.release();
  }
}

/** Builds and signs a key generation proposal over a roster of cards (in identifier order). */
export function createKeyProposal(
  store: KeyStore,
  me: CeremonyIdentity,
  options: {
    roster: ParticipantCard[];
    expiresAtMs: number;
    suite?: SuiteId;
    purpose?: KeyPurpose;
    label?: string;
    threshold?: number;
  },
): ProposalMessage {
  if (options.threshold === undefined) throw new EngineError('BAD_INPUT', 'key generation needs --threshold');
  return createProposal(
    me.identity,
    {
      kind: 'dkg',
      suite: options.suite ?? (options.purpose === 'decrypt' ? 'ristretto255-sha512' : 'ed25519-sha512'),
      ...(options.purpose === undefined ? {} : { purpose: options.purpose }),
      label: options.label ?? '',
      threshold: options.threshold,
      roster: options.roster,
      expiresAtMs: options.expiresAtMs,
    },
    store.rng,
  );
}

export interface StepOptions {
  store: KeyStore;
  passphrase: PassphraseSource;
  decide: Decide;
  inDir: string;
  outDir: string;
  /** Which ceremony, when several are open: a session id, or a prefix of it or of its tag. */
  session?: string;
  /** Stop waiting: blame whoever still owes the current phase's message (or fail, before dealing). */
  deadline?: boolean;
}

interface ParsedFile {
  file: ExchangeFile;
  message: CeremonyMessage;
}

/**
 * One air-gapped step: reads the exchange directory, joins a new proposal for this participant
 * (after the operator approves) or advances the ceremony in progress with every message not yet
 * read, and writes this participant's new messages.
 *
 * Every message file of the ceremony is authenticated before anything is written: a file that does
 * not decode is CORRUPT, a bad signature is BAD_SIGNATURE (both exit 7), a sender outside the roster
 * is BAD_INPUT; each names the file. Messages the ceremony no longer wants (an earlier attempt, a
 * participant excluded since) are skipped and reported.
 */
export async function stepCeremonyFiles(options: StepOptions): Promise<CeremonyProgress> {
  const { store } = options;
  const lock = await store.lock();
  try {
    const passphrase = await options.passphrase();
    const me = await store.openIdentity(passphrase);
    const self = me.identity.peerId;
    const files = await readExchangeDir(options.inDir, 'ceremony-');
    const parsed: ParsedFile[] = [];
    for (const file of files) {
      if (file.error !== null) continue;
      try {
        parsed.push({ file, message: parseCeremonyMessage(file.value) });
      } catch (error) {
        if (!(error instanceof EngineError)) throw error;
        file.error = new EngineError('CORRUPT', `${file.name} is not a ceremony message: ${error.message}`);
      }
    }
    const session = await chooseCeremony(store, self, parsed, files, options);
    const record = await readCeremonyRecord(store, session.session);
    const proposal = record?.proposal ?? (session.proposal!.message as ProposalMessage);
    let checked: CheckedProposal;
    try {
      // Signature first: an edited proposal is an integrity failure, whatever else it breaks.
      if (record === undefined && !verifyMessageSignature(proposal, publicKeyFromPeerId(proposal.from)))
        throw new EngineError(
          'BAD_SIGNATURE',
          `the proposal's signature by ${proposal.from} does not verify (altered or forged)`,
        );
      checked = checkProposal(proposal);
    } catch (error) {
      if (!(error instanceof EngineError) || record !== undefined) throw error;
      throw new EngineError(error.code, `${session.proposal!.file.path}: ${error.message}`);
    }
    if (record !== undefined && isFinished(record.phase)) return finishedProgress(store, record, self);
    if (record?.network !== undefined)
      throw new EngineError(
        'BAD_INPUT',
        `ceremony ${sessionTag(record.session)} runs over the network between running nodes; the node on this data directory drives it (see keygen ceremony accept)`,
      );
    const incoming = authenticate(checked, self, parsed, files);

    const run = new CeremonyRun(store, me, passphrase, proposal, fileSink(options.outDir));
    if (record === undefined) {
      const decision = await options.decide({
        kind: 'ceremony',
        ceremony: summarizeProposal(proposal, self),
      });
      if (decision === undefined)
        throw needsApproval(`ceremony ${sessionTag(checked.session)} (${describeProposal(checked)})`);
      run.join(await priorShareFor(store, checked, self, passphrase));
      await run.saveJoined();
      run.apply(decision.approve ? { type: 'Approve' } : { type: 'Decline', reason: decision.reason });
      run.decision = decision.approve ? 'approved' : 'declined';
    } else {
      await run.open();
    }
    run.apply({ type: 'Tick', nowMs: store.clock.now() });
    for (const { file, message } of incoming) run.receive(file.name, message);
    if (options.deadline === true && !isFinished(run.state.phase)) run.apply({ type: 'Deadline' });
    return await run.finish();
  } finally {
    await lock.release();
  }
}

function describeProposal(checked: CheckedProposal): string {
  const p = checked.proposal;
  const what = p.kind === 'dkg' ? 'new key' : `${p.kind} of key ${p.prior!.keyId}`;
  return `${what}, ${p.suite}, ${p.threshold} of ${p.recipients.length}, for ${p.purpose}${p.label === '' ? '' : `, "${p.label}"`}, proposed by ${p.proposer}`;
}

async function chooseCeremony(
  store: KeyStore,
  self: string,
  parsed: readonly ParsedFile[],
  files: readonly ExchangeFile[],
  options: StepOptions,
): Promise<{ session: string; proposal: ParsedFile | undefined }> {
  const records = await listCeremonies(store);
  const known = new Map(records.map((r) => [r.session, r] as const));
  const proposals = new Map<string, ParsedFile>();
  const nowMs = store.clock.now();
  const explicit = options.session !== undefined && options.session !== '';
  for (const p of parsed) {
    if (p.message.type !== 'Proposal' || known.has(p.message.session)) continue;
    if (!isSessionId(p.message.session)) continue; // no session at all: nothing to join
    if (!p.message.proposal.roster.some((card) => card.peerId === self)) continue;
    // An expired proposal left in the directory is not a candidate unless asked for (then: TIMEOUT).
    if (!explicit && p.message.proposal.expiresAtMs <= nowMs) continue;
    proposals.set(p.message.session, p);
  }
  // A proposal file naming us that does not even decode or verify must not pass unnoticed.
  for (const file of files) {
    if (file.error !== null && /^ceremony-[0-9a-f]{12}-proposal\.json$/.test(file.name)) {
      const tag = file.name.slice('ceremony-'.length, 'ceremony-'.length + 12);
      if (![...known.keys()].some((s) => sessionTag(s) === tag))
        throw new EngineError(file.error.code, `${file.path}: ${file.error.message}`);
    }
  }
  const candidates = new Set<string>();
  if (explicit) {
    const ref = options.session!;
    for (const s of [...known.keys(), ...proposals.keys()])
      if (s.startsWith(ref) || sessionTag(s).startsWith(ref.toLowerCase())) candidates.add(s);
    if (candidates.size === 0)
      throw new EngineError(
        'NOT_FOUND',
        `no ceremony ${ref} in progress here or proposed in ${options.inDir}`,
      );
  } else {
    // A networked ceremony is driven by the node (ceremony-net.ts), never by a step.
    for (const r of records) if (!isFinished(r.phase) && r.network === undefined) candidates.add(r.session);
    for (const s of proposals.keys()) candidates.add(s);
    // Nothing open: a step run again after the end reports how the ceremony in the directory ended.
    const ended = records.find(
      (r) => isFinished(r.phase) && parsed.some((p) => p.message.session === r.session),
    );
    if (candidates.size === 0 && ended !== undefined) return { session: ended.session, proposal: undefined };
    if (candidates.size === 0) {
      throw new EngineError(
        'NOT_FOUND',
        `no ceremony to step: none in progress here and no proposal naming ${self} in ${options.inDir}`,
      );
    }
  }
  if (candidates.size > 1) {
    throw new EngineError(
      'BAD_INPUT',
      `several ceremonies could step (${[...candidates].map(sessionTag).join(', ')}); pick one with --session`,
    );
  }
  const session = [...candidates][0]!;
  return { session, proposal: proposals.get(session) };
}

/**
 * Authenticates every message file of this ceremony before anything is written, and returns the
 * messages from others in delivery order.
 */
function authenticate(
  checked: CheckedProposal,
  self: string,
  parsed: readonly ParsedFile[],
  files: readonly ExchangeFile[],
): ParsedFile[] {
  const tag = `ceremony-${sessionTag(checked.session)}-`;
  for (const file of files) {
    if (file.error !== null && file.name.startsWith(tag))
      throw new EngineError(file.error.code, `${file.path}: ${file.error.message}`);
  }
  const mine: ParsedFile[] = [];
  for (const p of parsed) {
    const { message, file } = p;
    if (message.session !== checked.session) {
      if (file.name.startsWith(tag))
        throw new EngineError(
          'CORRUPT',
          `${file.path} is named for ceremony ${sessionTag(checked.session)} but holds a message of another session`,
        );
      continue;
    }
    const member = checked.members.get(message.from);
    if (member === undefined) {
      throw new EngineError(
        'BAD_INPUT',
        `${file.path}: ${message.type} from ${message.from}, who is not in this ceremony's roster; remove the file`,
      );
    }
    if (!verifyMessageSignature(message, member.identityKey)) {
      throw new EngineError(
        'BAD_SIGNATURE',
        `${file.path}: the signature of this ${message.type} claiming to come from ${message.from} does not verify (altered or forged); remove the file and get a good copy from its sender`,
      );
    }
    if (message.from !== self) mine.push(p);
  }
  return mine.sort((a, b) => {
    const rank = messageRank[a.message.type] - messageRank[b.message.type];
    if (rank !== 0) return rank;
    const attempt =
      ('attempt' in a.message ? a.message.attempt : 0) - ('attempt' in b.message ? b.message.attempt : 0);
    return attempt !== 0 ? attempt : a.file.name < b.file.name ? -1 : 1;
  });
}

/** refresh and reshare: a dealer brings its share of the prior generation (null for anyone else). */
export async function priorShareFor(
  store: KeyStore,
  checked: CheckedProposal,
  self: string,
  passphrase: string,
): Promise<ThresholdShare | null> {
  const prior = checked.prior;
  if (prior === null || !checked.priorIdentifiers.has(self)) return null;
  const keyId = prior.json.keyId;
  const { key, share } = await store.openShare(keyId, passphrase);
  if (key.publicKey.session !== prior.json.session) {
    throw new EngineError(
      'BAD_INPUT',
      `this ${checked.proposal.kind} starts from another generation of key ${keyId} than the one held here; ` +
        'finish the earlier ceremony first, or ask for a new proposal',
    );
  }
  return share;
}

async function finishedProgress(
  store: KeyStore,
  record: CeremonyRecord,
  self: string,
): Promise<CeremonyProgress> {
  let key: KeySummary | null = null;
  if (record.keyId !== null) {
    try {
      key = summarizeKey(await store.readKey(record.keyId));
    } catch (error) {
      if (!isEngineError(error, 'NOT_FOUND')) throw error;
    }
  }
  return {
    session: record.session,
    summary: record.summary,
    self,
    phase: record.phase,
    attempt: record.attempt,
    joined: false,
    decision: null,
    read: [],
    ignored: [],
    wrote: [],
    events: [],
    waiting: null,
    key,
    failure: record.failure,
  };
}

/** Where a ceremony's outgoing messages go: an exchange directory, or the network (ceremony-net.ts). */
export type MessageSink = (name: string, message: CeremonyMessage) => Promise<void>;

/** The air-gapped sink: each message becomes an exchange file in `outDir`. */
export function fileSink(outDir: string): MessageSink {
  return (name, message) => writeExchangeFile(outDir, name, message);
}

/**
 * One participant's work on one ceremony: the state, the inputs fed to it, and what to send. An
 * air-gapped command makes one per run; a node keeps one open while a networked ceremony runs and
 * calls `finish` after every batch of inputs.
 */
export class CeremonyRun {
  state!: CeremonyState;
  decision: CeremonyProgress['decision'] = null;
  /** A networked ceremony's routes, kept in its record. */
  network: CeremonyRoutes | undefined;
  private consumed = new Set<string>();
  private priorShare: ThresholdShare | null = null;
  private joined = false;
  private outgoing: CeremonyMessage[] = [];
  private effects: CeremonyEffect[] = [];
  private read: CeremonyProgress['read'] = [];
  private ignored: CeremonyProgress['ignored'] = [];
  private readonly dir: string;

  constructor(
    private readonly store: KeyStore,
    private readonly me: CeremonyIdentity,
    private readonly passphrase: string,
    readonly proposal: ProposalMessage,
    private readonly sink: MessageSink,
  ) {
    this.dir = ceremonyDir(proposal.session);
  }

  private get keys(): CeremonyKeys {
    const keys: CeremonyKeys = { identity: this.me.identity, encryption: this.me.encryption };
    if (this.priorShare !== null) keys.priorShare = this.priorShare;
    return keys;
  }

  join(priorShare: ThresholdShare | null): void {
    this.priorShare = priorShare;
    this.state = joinCeremony(this.proposal, this.keys, this.store.rng, this.store.clock.now());
    this.consumed.add(messageDigest(this.proposal));
    this.joined = true;
  }

  /** The proposer: joins, sends the proposal and approves it (proposing is approving). */
  async propose(priorShare: ThresholdShare | null): Promise<CeremonyProgress> {
    this.join(priorShare);
    await this.saveJoined();
    await this.writeMessage(this.proposal);
    this.apply({ type: 'Approve' });
    this.decision = 'approved';
    return this.finish();
  }

  async open(): Promise<void> {
    const value = await this.store.openRecord(
      `${this.dir}/state.json`,
      'ceremony-state',
      this.passphrase,
      `ceremony ${sessionTag(this.proposal.session)}`,
    );
    const secrets = value as CeremonySecrets | undefined;
    if (secrets?.format !== 'optimystic-ceremony-secrets' || secrets.state.session !== this.proposal.session)
      throw new EngineError(
        'CORRUPT',
        `the state of ceremony ${sessionTag(this.proposal.session)} is missing or malformed`,
      );
    this.state = secrets.state;
    this.consumed = new Set(secrets.consumed);
    this.priorShare = secrets.priorShare;
  }

  /** Seals the freshly joined state before anything else, so its seed (every later choice) is fixed. */
  async saveJoined(): Promise<void> {
    await this.saveSecrets();
    await this.saveRecord([]);
  }

  apply(input: CeremonyInput): void {
    const step = stepCeremony(this.state, input, this.keys);
    this.state = step.state;
    for (const effect of step.effects) {
      this.effects.push(effect);
      if (effect.type === 'Broadcast') this.outgoing.push(effect.message);
    }
  }

  /** Feeds one message (named for progress reports); a message the ceremony no longer wants is listed as ignored. */
  receive(name: string, message: CeremonyMessage): void {
    const digest = messageDigest(message);
    if (this.consumed.has(digest)) return;
    try {
      this.apply({ type: 'Receive', message });
      this.read.push({ file: name, type: message.type, from: message.from });
    } catch (error) {
      if (!isEngineError(error, 'BAD_INPUT')) throw error;
      const reason = error.details?.['reason'];
      this.ignored.push({
        file: name,
        reason: typeof reason === 'string' ? `${reason}: ${error.message}` : error.message,
      });
    }
    this.consumed.add(digest);
  }

  async writeMessage(message: CeremonyMessage): Promise<string> {
    const name = ceremonyFileName(message);
    await this.store.writeRecord(`${this.dir}/sent/${name}`, message);
    await this.sink(name, message);
    return name;
  }

  private async saveSecrets(): Promise<void> {
    const secrets: CeremonySecrets = {
      format: 'optimystic-ceremony-secrets',
      version: 1,
      state: this.state,
      consumed: [...this.consumed],
      priorShare: this.priorShare,
    };
    await this.store.sealRecord(`${this.dir}/state.json`, 'ceremony-state', secrets, this.passphrase);
  }

  private async saveRecord(wrote: readonly string[], keyId: string | null = null): Promise<void> {
    const previous = await readCeremonyRecord(this.store, this.proposal.session);
    const network = this.network ?? previous?.network;
    const record: CeremonyRecord = {
      format: 'optimystic-ceremony-record',
      version: 1,
      session: this.proposal.session,
      proposal: this.proposal,
      summary: summarizeProposal(this.proposal, this.me.identity.peerId),
      phase: this.state.phase,
      attempt: this.state.attempt.number,
      keyId,
      failure: this.state.failure,
      sent: [...new Set([...(previous?.sent ?? []), ...wrote])],
      updatedAtMs: this.store.clock.now(),
      ...(network === undefined ? {} : { network }),
    };
    await this.store.writeRecord(`${this.dir}/record.json`, record);
  }

  /**
   * Sends the outgoing messages, then installs a completed key, then saves the state, and reports
   * what this batch did. Every step is deterministic from the sealed seed, so a crash in between
   * repeats the same messages. A finished ceremony's secrets (seed, and a dealer's old share) are
   * deleted once it is recorded.
   */
  async finish(): Promise<CeremonyProgress> {
    const wrote: string[] = [];
    const outgoing = this.outgoing;
    const effects = this.effects;
    const read = this.read;
    const ignored = this.ignored;
    this.outgoing = [];
    this.effects = [];
    this.read = [];
    this.ignored = [];
    for (const message of outgoing) wrote.push(await this.writeMessage(message));
    let key: KeySummary | null = null;
    const s = this.state;
    if (s.phase === 'complete' && s.result !== null) {
      const stored = await this.store.installKey(
        {
          publicKey: s.result.publicKey,
          activation: { proposal: s.proposal, confirmations: s.result.confirmations },
          share: s.result.share,
        },
        this.passphrase,
      );
      await this.store.audit({
        event: s.result.share === null ? 'share-retired' : 'key-installed',
        keyId: stored.publicKey.keyId,
        session: s.session,
        kind: s.proposal.proposal.kind,
        identifier: stored.holder?.identifier ?? null,
      });
      key = summarizeKey(stored);
    }
    if (isFinished(s.phase)) {
      await this.saveRecord(wrote, key?.keyId ?? null);
      await this.store.removeRecord(`${this.dir}/state.json`);
    } else {
      await this.saveSecrets();
      await this.saveRecord(wrote);
    }
    const events: CeremonyEvent[] = [];
    for (const e of effects) {
      if (e.type === 'Blamed') events.push({ type: 'blamed', attempt: e.attempt, blame: e.blame });
      if (e.type === 'Restarted')
        events.push({ type: 'restarted', attempt: e.attempt, dealers: e.dealers, recipients: e.recipients });
    }
    const joined = this.joined;
    const decision = this.decision;
    this.joined = false;
    this.decision = null;
    return {
      session: s.session,
      summary: summarizeProposal(this.proposal, this.me.identity.peerId),
      self: this.me.identity.peerId,
      phase: s.phase,
      attempt: s.attempt.number,
      joined,
      decision,
      read,
      ignored,
      wrote,
      events,
      waiting: waitingOf(s),
      key,
      failure: s.failure,
    };
  }
}

/** Who the ceremony is waiting for in its current phase. */
export function waitingOf(state: CeremonyState): Waiting | null {
  const roster = state.proposal.proposal.roster.map((c) => c.peerId);
  const a = state.attempt;
  const inAttempt = new Set([...a.dealers, ...a.recipients]);
  const participants = roster.filter((peer) => inAttempt.has(peer));
  switch (state.phase) {
    case 'proposed':
      return {
        for: 'acceptances',
        missing: roster.filter((p) => state.accepts[p] === undefined),
        of: roster.length,
      };
    case 'dealing':
      return {
        for: 'deals',
        missing: a.dealers.filter((p) => a.deals[p] === undefined),
        of: a.dealers.length,
      };
    case 'responding':
      return {
        for: 'responses',
        missing: participants.filter((p) => a.responses[p] === undefined),
        of: participants.length,
      };
    case 'confirming':
      return {
        for: 'confirmations',
        missing: participants.filter((p) => a.confirms[p] === undefined),
        of: participants.length,
      };
    default:
      return null;
  }
}

// --- signing -----------------------------------------------------------------------------------

export interface SignRequest {
  format: 'optimystic-sign-request';
  version: 1;
  request: string;
  keyId: string;
  /** The key generation the request is for; holders of another generation refuse it. */
  session: string;
  message: string;
  /** The coordinator's ceremony peer id, when it has one (informational). */
  coordinator: string | null;
  createdAtMs: number;
}

interface SignCommitFile {
  format: 'optimystic-sign-commitment';
  request: string;
  peerId: string;
  commitment: SigningCommitment;
}

interface SignPackageFile {
  format: 'optimystic-sign-package';
  request: string;
  package: SigningPackage;
}

interface SignShareFile {
  format: 'optimystic-sign-share';
  request: string;
  peerId: string;
  share: SignatureShare;
}

export interface SignatureFile {
  format: 'optimystic-signature';
  request: string;
  keyId: string;
  suite: SuiteId;
  message: string;
  /** base64url */
  signature: string;
  publicKey: string;
  signers: number[];
}

/** Bookkeeping of a holder for one request (`requests/sign-<R>/holder.json`). */
interface HolderRecord {
  status: 'committed' | 'signed' | 'not-chosen' | 'served';
  keyId: string;
  messageDigest?: string;
  updatedAtMs: number;
}

/** Bookkeeping of the coordinator or requester (`requests/<kind>-<R>/origin.json`). */
interface OriginRecord<T> {
  request: T;
  status: 'open' | 'done';
  updatedAtMs: number;
}

export interface SignProgress {
  request: string;
  keyId: string;
  /** What this run did, in order (`committed`, `signed`, `package`, `signature`, `not-chosen`). */
  did: string[];
  wrote: string[];
  coordinator: boolean;
  waiting: { for: 'commitments' | 'signature shares'; have: number; need: number; missing: string[] } | null;
  signature: SignatureFile | null;
}

const requestIdPattern = /^[0-9a-f]{16}$/;

function newRequestId(store: KeyStore): string {
  return toHex(store.rng.bytes(8));
}

function digestOf(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function requireSigningKey(key: StoredKey): void {
  if (key.publicKey.purpose !== 'sign')
    throw new EngineError(
      'BAD_INPUT',
      `key ${key.publicKey.keyId} is for ${key.publicKey.purpose}, not signing`,
    );
}

/** Coordinator, first run: writes the request; a coordinator that holds a share also commits. */
export async function requestSignature(options: {
  store: KeyStore;
  passphrase: PassphraseSource;
  keyRef: string;
  message: Uint8Array;
  outDir: string;
}): Promise<SignProgress> {
  const { store } = options;
  if (options.message.length > limits.thresholdMessageBytesMax)
    throw new EngineError('TOO_LARGE', `the message is over ${limits.thresholdMessageBytesMax} bytes`);
  const lock = await store.lock();
  try {
    const key = await store.resolveKey(options.keyRef);
    requireSigningKey(key);
    // A holder opens its share first: a wrong passphrase writes nothing.
    const holding = key.holder !== null && (await store.hasShare(key.publicKey.keyId));
    const passphrase = holding ? await options.passphrase() : '';
    const share = holding ? (await store.openShare(key.publicKey.keyId, passphrase)).share : null;
    const card = await store.readCard();
    const request: SignRequest = {
      format: 'optimystic-sign-request',
      version: 1,
      request: newRequestId(store),
      keyId: key.publicKey.keyId,
      session: key.publicKey.session,
      message: toBase64Url(options.message),
      coordinator: card?.peerId ?? null,
      createdAtMs: store.clock.now(),
    };
    const origin: OriginRecord<SignRequest> = { request, status: 'open', updatedAtMs: store.clock.now() };
    await store.writeRecord(`requests/sign-${request.request}/origin.json`, origin);
    const name = `sign-${request.request}-request.json`;
    await writeExchangeFile(options.outDir, name, request);
    const progress: SignProgress = {
      request: request.request,
      keyId: request.keyId,
      did: ['request'],
      wrote: [name],
      coordinator: true,
      waiting: { for: 'commitments', have: 0, need: key.publicKey.threshold, missing: [] },
      signature: null,
    };
    if (share !== null) {
      progress.wrote.push(await commitAsHolder(store, passphrase, key, share, request, options.outDir));
      progress.did.push('committed');
      progress.waiting!.have = 1;
    }
    return progress;
  } finally {
    await lock.release();
  }
}

async function commitAsHolder(
  store: KeyStore,
  passphrase: string,
  key: StoredKey,
  share: ThresholdShare,
  request: SignRequest,
  outDir: string,
): Promise<string> {
  const { nonces, commitment } = commitToSign(key.publicKey, share, store.rng);
  const dir = `requests/sign-${request.request}`;
  await store.sealRecord(`${dir}/nonces.json`, 'signing-nonces', nonces, passphrase);
  const message = fromBase64Url(request.message, 'message');
  const record: HolderRecord = {
    status: 'committed',
    keyId: key.publicKey.keyId,
    messageDigest: digestOf(message),
    updatedAtMs: store.clock.now(),
  };
  await store.writeRecord(`${dir}/holder.json`, record);
  const file: SignCommitFile = {
    format: 'optimystic-sign-commitment',
    request: request.request,
    peerId: share.peerId,
    commitment,
  };
  const name = `sign-${request.request}-commit-${peerTag(share.peerId)}.json`;
  await writeExchangeFile(outDir, name, file);
  return name;
}

interface SignFiles {
  requests: Map<string, SignRequest>;
  commits: Map<string, { file: ExchangeFile; value: SignCommitFile }[]>;
  packages: Map<string, SignPackageFile>;
  shares: Map<string, { file: ExchangeFile; value: SignShareFile }[]>;
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}

function sortedByFile<T extends { file: ExchangeFile }>(list: T[] | undefined): T[] {
  return [...(list ?? [])].sort((a, b) => (a.file.name < b.file.name ? -1 : 1));
}

async function readSignFiles(dirs: readonly string[], keyId: string): Promise<SignFiles> {
  const out: SignFiles = { requests: new Map(), commits: new Map(), packages: new Map(), shares: new Map() };
  for (const file of await readExchangeDirs(dirs, 'sign-')) {
    if (file.error !== null) throw new EngineError(file.error.code, `${file.path}: ${file.error.message}`);
    const v = file.value as Record<string, unknown> | null;
    if (v === null || typeof v !== 'object')
      throw new EngineError('CORRUPT', `${file.path} is not a signing file`);
    const request = typeof v.request === 'string' ? v.request : '';
    if (!requestIdPattern.test(request)) throw new EngineError('CORRUPT', `${file.path} names no request`);
    switch (v.format) {
      case 'optimystic-sign-request':
        if (v.keyId === keyId) out.requests.set(request, v as unknown as SignRequest);
        break;
      case 'optimystic-sign-commitment':
        push(out.commits, request, { file, value: v as unknown as SignCommitFile });
        break;
      case 'optimystic-sign-package':
        out.packages.set(request, v as unknown as SignPackageFile);
        break;
      case 'optimystic-sign-share':
        push(out.shares, request, { file, value: v as unknown as SignShareFile });
        break;
      case 'optimystic-signature':
        break;
      default:
        throw new EngineError('CORRUPT', `${file.path} is not a signing file`);
    }
  }
  return out;
}

/**
 * Every later signing run, for holders and the coordinator alike: a holder commits to requests it
 * approves, then signs the coordinator's package; the coordinator builds the package from t
 * commitments, then aggregates the shares. A bad share is BAD_SIGNATURE naming its holder; a
 * coordinator that cannot take its next step yet gets NO_QUORUM saying what is missing.
 */
export async function advanceSigning(options: {
  store: KeyStore;
  passphrase: PassphraseSource;
  decide: Decide;
  keyRef: string;
  inDir: string;
  outDir: string;
  request?: string;
  /** Coordinator: holders (identifiers or peer ids) to ask for shares; default the first t that committed. */
  signers?: string[];
  /**
   * Coordinator, without `request`: leave out its requests that are done even when their files are
   * still in the directory (a node's exchange directory keeps every request of the key).
   */
  openOnly?: boolean;
}): Promise<SignProgress[]> {
  const { store } = options;
  const lock = await store.lock();
  try {
    const key = await store.resolveKey(options.keyRef);
    requireSigningKey(key);
    const keyId = key.publicKey.keyId;
    const dirs = [options.inDir, options.outDir];
    let files = await readSignFiles(dirs, keyId);
    const pick = (id: string): boolean => options.request === undefined || id.startsWith(options.request);
    const progress = new Map<string, SignProgress>();
    const entry = (request: string): SignProgress => {
      let p = progress.get(request);
      if (p === undefined) {
        p = { request, keyId, did: [], wrote: [], coordinator: false, waiting: null, signature: null };
        progress.set(request, p);
      }
      return p;
    };
    const holding = key.holder !== null && (await store.hasShare(keyId));
    const holderRecord = async (id: string): Promise<HolderRecord | undefined> =>
      (await store.readRecord(`requests/sign-${id}/holder.json`, 'signing record')) as
        HolderRecord | undefined;
    let opened: { passphrase: string; share: ThresholdShare } | undefined;
    const openShare = async (): Promise<{ passphrase: string; share: ThresholdShare }> => {
      if (opened === undefined) {
        const passphrase = await options.passphrase();
        opened = { passphrase, share: (await store.openShare(keyId, passphrase)).share };
      }
      return opened;
    };

    // Requests this data directory coordinates.
    const origins: OriginRecord<SignRequest>[] = [];
    for (const id of await store.list('requests')) {
      if (!id.startsWith('sign-') || !pick(id.slice('sign-'.length))) continue;
      const origin = (await store.readRecord(`requests/${id}/origin.json`, 'signing request')) as
        OriginRecord<SignRequest> | undefined;
      if (origin === undefined || origin.request.keyId !== keyId) continue;
      if (
        options.request === undefined &&
        origin.status === 'done' &&
        (options.openOnly === true || !files.requests.has(origin.request.request))
      )
        continue;
      origins.push(origin);
      entry(origin.request.request).coordinator = true;
    }
    const coordinated = new Set(origins.map((o) => o.request.request));

    // Holder, round one: decide on every new request first, so a missing approval writes nothing.
    const toCommit: SignRequest[] = [];
    if (holding) {
      for (const [id, request] of files.requests) {
        if (!pick(id) || request.session !== key.publicKey.session) continue;
        if ((await holderRecord(id)) !== undefined || files.packages.has(id)) continue;
        if (!coordinated.has(id)) {
          const decision = await options.decide({
            kind: 'sign',
            keyId,
            label: key.publicKey.label,
            request: id,
            message: fromBase64Url(request.message, 'message', { code: 'CORRUPT' }),
          });
          if (decision === undefined) throw needsApproval(`signing request ${id} for key ${keyId}`);
          if (!decision.approve) continue;
        }
        toCommit.push(request);
      }
    }
    for (const request of toCommit) {
      const { passphrase, share } = await openShare();
      const p = entry(request.request);
      p.wrote.push(await commitAsHolder(store, passphrase, key, share, request, options.outDir));
      p.did.push('committed');
    }

    // Coordinator, round one: a package once t holders committed.
    if (toCommit.length > 0) files = await readSignFiles(dirs, keyId);
    for (const origin of origins)
      await buildPackage(store, key, origin, files, entry(origin.request.request), options);

    // Holder, round two: sign every package that includes this holder.
    if (holding) {
      files = await readSignFiles(dirs, keyId);
      for (const [id, request] of files.requests) {
        const pkg = files.packages.get(id)?.package;
        if (!pick(id) || pkg === undefined || (await holderRecord(id))?.status !== 'committed') continue;
        const { passphrase, share } = await openShare();
        const p = entry(id);
        const written = await signAsHolder(store, passphrase, key, share, request, pkg, options.outDir);
        if (written === null) p.did.push('not-chosen');
        else {
          p.wrote.push(written);
          p.did.push('signed');
        }
      }
    }

    // Coordinator, last step: aggregate once every chosen holder's share is in.
    files = await readSignFiles(dirs, keyId);
    for (const origin of origins)
      await aggregate(store, key, origin, files, entry(origin.request.request), options);

    if (progress.size === 0) {
      throw new EngineError(
        'NOT_FOUND',
        `no signing request for key ${keyId} in ${options.inDir} needs this data directory`,
      );
    }
    return [...progress.values()];
  } finally {
    await lock.release();
  }
}

async function signAsHolder(
  store: KeyStore,
  passphrase: string,
  key: StoredKey,
  share: ThresholdShare,
  request: SignRequest,
  pkg: SigningPackage,
  outDir: string,
): Promise<string | null> {
  const dir = `requests/sign-${request.request}`;
  const holder = (await store.readRecord(`${dir}/holder.json`, 'signing record')) as HolderRecord;
  const nonces = (await store.openRecord(
    `${dir}/nonces.json`,
    'signing-nonces',
    passphrase,
    'signing nonces',
  )) as SigningNonces | undefined;
  if (nonces === undefined)
    throw new EngineError(
      'NOT_FOUND',
      `the nonces of signing request ${request.request} are gone; ask for a new request`,
    );
  if (!pkg.commitments.some((c) => c.identifier === share.identifier)) {
    await store.removeRecord(`${dir}/nonces.json`);
    await store.writeRecord(`${dir}/holder.json`, {
      ...holder,
      status: 'not-chosen',
      updatedAtMs: store.clock.now(),
    });
    return null;
  }
  const message = fromBase64Url(pkg.message, 'package message', { code: 'BAD_INPUT' });
  if (digestOf(message) !== holder.messageDigest) {
    throw new EngineError(
      'BAD_INPUT',
      `the signing package of request ${request.request} carries another message than the one approved; refusing to sign`,
    );
  }
  const signatureShare = signPackage(key.publicKey, share, nonces, pkg);
  // The nonces must never sign twice: they are gone before the share leaves this machine.
  await store.removeRecord(`${dir}/nonces.json`);
  await store.writeRecord(`${dir}/holder.json`, {
    ...holder,
    status: 'signed',
    updatedAtMs: store.clock.now(),
  });
  await store.audit({
    event: 'sign-share',
    keyId: key.publicKey.keyId,
    request: request.request,
    identifier: share.identifier,
    messageSha256: holder.messageDigest,
    coordinator: request.coordinator,
  });
  const file: SignShareFile = {
    format: 'optimystic-sign-share',
    request: request.request,
    peerId: share.peerId,
    share: signatureShare,
  };
  const name = `sign-${request.request}-share-${peerTag(share.peerId)}.json`;
  await writeExchangeFile(outDir, name, file);
  return name;
}

async function buildPackage(
  store: KeyStore,
  key: StoredKey,
  origin: OriginRecord<SignRequest>,
  files: SignFiles,
  progress: SignProgress,
  options: { outDir: string; signers?: string[] },
): Promise<void> {
  const request = origin.request;
  const id = request.request;
  const pk = checkPublicKey(key.publicKey, 'CORRUPT');
  if (request.session !== pk.json.session)
    throw new EngineError(
      'CONFLICT',
      `key ${pk.json.keyId} was refreshed since request ${id}; make a new request`,
    );
  if ((await store.readRecord(`requests/sign-${id}/package.json`, 'signing package')) !== undefined) return;
  const t = pk.json.threshold;
  // One commitment per holder, checked for key and holder.
  const byId = new Map<number, SigningCommitment>();
  for (const { file, value } of sortedByFile(files.commits.get(id))) {
    const c = value.commitment;
    const holder = c !== null && typeof c === 'object' ? pk.holderByIdentifier.get(c.identifier) : undefined;
    if (holder === undefined || c.keyId !== pk.json.keyId || holder.peerId !== value.peerId)
      throw new EngineError(
        'BAD_INPUT',
        `${file.path}: a commitment that is not from a holder of key ${pk.json.keyId}`,
      );
    const known = byId.get(c.identifier);
    if (known !== undefined && canonicalJson(known) !== canonicalJson(c))
      throw new EngineError(
        'BAD_INPUT',
        `${file.path}: a second, different commitment from ${holder.peerId}`,
      );
    byId.set(c.identifier, c);
  }
  let chosen = [...byId.keys()].sort((a, b) => a - b);
  if (options.signers !== undefined && options.signers.length > 0) {
    const wanted = options.signers.map((ref) => {
      const asNumber = /^\d+$/.test(ref) ? Number(ref) : undefined;
      if (asNumber !== undefined && pk.holderByIdentifier.has(asNumber)) return asNumber;
      return pk.holderByPeer.get(pickPeer(ref, [...pk.holderByPeer.keys()], `key ${pk.json.keyId}`))!
        .identifier;
    });
    chosen = chosen.filter((i) => wanted.includes(i));
  }
  chosen = chosen.slice(0, t);
  if (chosen.length < t) {
    const missing = pk.json.holders.filter((h) => !byId.has(h.identifier)).map((h) => h.peerId);
    progress.waiting = { for: 'commitments', have: chosen.length, need: t, missing };
    return;
  }
  const message = fromBase64Url(request.message, 'message', { code: 'CORRUPT' });
  const pkg = createSigningPackage(
    pk.json,
    message,
    chosen.map((i) => byId.get(i)!),
  );
  await store.writeRecord(`requests/sign-${id}/package.json`, pkg);
  const file: SignPackageFile = { format: 'optimystic-sign-package', request: id, package: pkg };
  const name = `sign-${id}-package.json`;
  await writeExchangeFile(options.outDir, name, file);
  progress.did.push('package');
  progress.wrote.push(name);
}

async function aggregate(
  store: KeyStore,
  key: StoredKey,
  origin: OriginRecord<SignRequest>,
  files: SignFiles,
  progress: SignProgress,
  options: { outDir: string },
): Promise<void> {
  const id = origin.request.request;
  const pk = checkPublicKey(key.publicKey, 'CORRUPT');
  const pkg = (await store.readRecord(`requests/sign-${id}/package.json`, 'signing package')) as
    SigningPackage | undefined;
  if (pkg === undefined) return; // still collecting commitments (progress.waiting says so)
  // A share from every holder in the package, each checked against its verifying share.
  const needed = pkg.commitments.map((c) => c.identifier);
  const shares = new Map<number, SignatureShare>();
  for (const { value } of sortedByFile(files.shares.get(id))) {
    const s = value.share;
    if (s === null || typeof s !== 'object' || !needed.includes(s.identifier)) continue;
    if (!shares.has(s.identifier)) shares.set(s.identifier, s);
  }
  const missing = needed.filter((i) => !shares.has(i));
  if (missing.length > 0) {
    progress.waiting = {
      for: 'signature shares',
      have: shares.size,
      need: needed.length,
      missing: missing.map((i) => pk.holderByIdentifier.get(i)!.peerId),
    };
    return;
  }
  const signature = aggregateSignature(pk.json, pkg, [...shares.values()]);
  const result: SignatureFile = {
    format: 'optimystic-signature',
    request: id,
    keyId: pk.json.keyId,
    suite: pk.json.suite,
    message: origin.request.message,
    signature: toBase64Url(signature),
    publicKey: toBase64Url(pk.groupKey.toBytes()),
    signers: needed,
  };
  const name = `sign-${id}-signature.json`;
  await writeExchangeFile(options.outDir, name, result);
  if (origin.status !== 'done') {
    await store.writeRecord(`requests/sign-${id}/origin.json`, {
      ...origin,
      status: 'done',
      updatedAtMs: store.clock.now(),
    });
    await store.audit({ event: 'signature-aggregated', keyId: pk.json.keyId, request: id, signers: needed });
  }
  progress.did.push('signature');
  progress.wrote.push(name);
  progress.waiting = null;
  progress.signature = result;
}

// --- decryption --------------------------------------------------------------------------------

export interface DecryptRequest {
  format: 'optimystic-decrypt-request';
  version: 1;
  request: string;
  keyId: string;
  session: string;
  ciphertext: ThresholdCiphertext;
  requester: string | null;
  createdAtMs: number;
}

interface PartialFile {
  format: 'optimystic-decrypt-partial';
  request: string;
  peerId: string;
  partial: PartialDecryption;
}

export interface DecryptProgress {
  request: string;
  keyId: string;
  did: string[];
  wrote: string[];
  requester: boolean;
  /** Requester: the plaintext, once t valid partials combined. */
  plaintext: Uint8Array | null;
  /** Holders whose partial decryption failed its proof. */
  rejected: { identifier: number; peerId: string }[];
  partials: number;
  threshold: number;
}

function requireDecryptionKey(key: StoredKey): void {
  if (key.publicKey.purpose !== 'decrypt')
    throw new EngineError(
      'BAD_INPUT',
      `key ${key.publicKey.keyId} is for ${key.publicKey.purpose}, not decryption`,
    );
}

/** Requester, first run: writes the request; a requester that holds a share adds its own partial. */
export async function requestDecryption(options: {
  store: KeyStore;
  passphrase: PassphraseSource;
  keyRef: string;
  ciphertext: ThresholdCiphertext;
  outDir: string;
}): Promise<DecryptProgress> {
  const { store } = options;
  const lock = await store.lock();
  try {
    const key = await store.resolveKey(options.keyRef);
    requireDecryptionKey(key);
    const ct = options.ciphertext;
    if (ct === null || typeof ct !== 'object' || ct.keyId !== key.publicKey.keyId)
      throw new EngineError('BAD_INPUT', `the ciphertext is not for key ${key.publicKey.keyId}`);
    // A holder opens its share first: a wrong passphrase writes nothing.
    const holding = key.holder !== null && (await store.hasShare(key.publicKey.keyId));
    const share = holding
      ? (await store.openShare(key.publicKey.keyId, await options.passphrase())).share
      : null;
    const card = await store.readCard();
    const request: DecryptRequest = {
      format: 'optimystic-decrypt-request',
      version: 1,
      request: newRequestId(store),
      keyId: key.publicKey.keyId,
      session: key.publicKey.session,
      ciphertext: ct,
      requester: card?.peerId ?? null,
      createdAtMs: store.clock.now(),
    };
    await store.writeRecord(`requests/decrypt-${request.request}/origin.json`, {
      request,
      status: 'open',
      updatedAtMs: store.clock.now(),
    } satisfies OriginRecord<DecryptRequest>);
    const name = `decrypt-${request.request}-request.json`;
    await writeExchangeFile(options.outDir, name, request);
    const progress: DecryptProgress = {
      request: request.request,
      keyId: request.keyId,
      did: ['request'],
      wrote: [name],
      requester: true,
      plaintext: null,
      rejected: [],
      partials: 0,
      threshold: key.publicKey.threshold,
    };
    if (share !== null) {
      progress.wrote.push(await decryptAsHolder(store, key, share, request, options.outDir));
      progress.did.push('partial');
      progress.partials = 1;
    }
    return progress;
  } finally {
    await lock.release();
  }
}

async function decryptAsHolder(
  store: KeyStore,
  key: StoredKey,
  share: ThresholdShare,
  request: DecryptRequest,
  outDir: string,
): Promise<string> {
  const partial = createPartialDecryption(key.publicKey, share, request.ciphertext, store.rng);
  const record: HolderRecord = {
    status: 'served',
    keyId: key.publicKey.keyId,
    updatedAtMs: store.clock.now(),
  };
  await store.writeRecord(`requests/decrypt-${request.request}/holder.json`, record);
  await store.audit({
    event: 'decrypt-partial',
    keyId: key.publicKey.keyId,
    request: request.request,
    identifier: share.identifier,
    ciphertextDigest: partial.ciphertextDigest,
    requester: request.requester,
  });
  const file: PartialFile = {
    format: 'optimystic-decrypt-partial',
    request: request.request,
    peerId: share.peerId,
    partial,
  };
  const name = `decrypt-${request.request}-partial-${peerTag(share.peerId)}.json`;
  // Anyone holding t partials can decrypt: they are as sensitive as the plaintext.
  await writeExchangeFile(outDir, name, file, privateFileMode);
  return name;
}

/**
 * Every later decryption run: a holder answers the requests it approves with a partial decryption;
 * the requester combines t valid partials (NO_QUORUM, naming invalid ones, when it has fewer).
 */
export async function advanceDecryption(options: {
  store: KeyStore;
  passphrase: PassphraseSource;
  decide: Decide;
  keyRef: string;
  inDir: string;
  outDir: string;
  request?: string;
  /** Requester, without `request`: leave out its finished requests whose files are still there. */
  openOnly?: boolean;
}): Promise<DecryptProgress[]> {
  const { store } = options;
  const lock = await store.lock();
  try {
    const key = await store.resolveKey(options.keyRef);
    requireDecryptionKey(key);
    const keyId = key.publicKey.keyId;
    const requests = new Map<string, DecryptRequest>();
    const partials = new Map<string, { file: ExchangeFile; value: PartialFile }[]>();
    for (const file of await readExchangeDirs([options.inDir, options.outDir], 'decrypt-')) {
      if (file.error !== null) throw new EngineError(file.error.code, `${file.path}: ${file.error.message}`);
      const v = file.value as Record<string, unknown> | null;
      const request = v !== null && typeof v === 'object' && typeof v.request === 'string' ? v.request : '';
      if (!requestIdPattern.test(request))
        throw new EngineError('CORRUPT', `${file.path} is not a decryption file`);
      if (v!.format === 'optimystic-decrypt-request') {
        if (v!.keyId === keyId) requests.set(request, v as unknown as DecryptRequest);
      } else if (v!.format === 'optimystic-decrypt-partial') {
        push(partials, request, { file, value: v as unknown as PartialFile });
      } else {
        throw new EngineError('CORRUPT', `${file.path} is not a decryption file`);
      }
    }
    const pick = (id: string): boolean => options.request === undefined || id.startsWith(options.request);
    const progress = new Map<string, DecryptProgress>();
    const entry = (request: string): DecryptProgress => {
      let p = progress.get(request);
      if (p === undefined) {
        p = {
          request,
          keyId,
          did: [],
          wrote: [],
          requester: false,
          plaintext: null,
          rejected: [],
          partials: 0,
          threshold: key.publicKey.threshold,
        };
        progress.set(request, p);
      }
      return p;
    };

    // Holder: every approved request not yet served.
    const toServe: DecryptRequest[] = [];
    if (key.holder !== null && (await store.hasShare(keyId))) {
      for (const [id, request] of requests) {
        if (!pick(id) || request.session !== key.publicKey.session) continue;
        if ((await store.readRecord(`requests/decrypt-${id}/holder.json`, 'decryption record')) !== undefined)
          continue;
        if (
          (await store.readRecord(`requests/decrypt-${id}/origin.json`, 'decryption request')) === undefined
        ) {
          const decision = await options.decide({
            kind: 'decrypt',
            keyId,
            label: key.publicKey.label,
            request: id,
            requester: request.requester,
            ciphertextDigest: digestOf(new TextEncoder().encode(canonicalJson(request.ciphertext))),
            ciphertextBytes:
              typeof request.ciphertext.ciphertext === 'string'
                ? Math.floor((request.ciphertext.ciphertext.length * 3) / 4)
                : 0,
          });
          if (decision === undefined) throw needsApproval(`decryption request ${id} for key ${keyId}`);
          if (!decision.approve) continue;
        }
        toServe.push(request);
      }
    }
    if (toServe.length > 0) {
      const { share } = await store.openShare(keyId, await options.passphrase());
      for (const request of toServe) {
        const p = entry(request.request);
        const name = await decryptAsHolder(store, key, share, request, options.outDir);
        p.wrote.push(name);
        p.did.push('partial');
        // Our own partial is now in --out; count it for a requester below.
        push(partials, request.request, {
          file: { name, path: join(options.outDir, name), value: undefined, error: null },
          value: (await readJsonFile(join(options.outDir, name), name)) as PartialFile,
        });
      }
    }

    // Requester: combine.
    const mine: OriginRecord<DecryptRequest>[] = [];
    for (const id of await store.list('requests')) {
      if (!id.startsWith('decrypt-') || !pick(id.slice('decrypt-'.length))) continue;
      const origin = (await store.readRecord(`requests/${id}/origin.json`, 'decryption request')) as
        OriginRecord<DecryptRequest> | undefined;
      if (origin === undefined || origin.request.keyId !== keyId) continue;
      if (!partials.has(origin.request.request) && !requests.has(origin.request.request)) continue;
      if (options.openOnly === true && options.request === undefined && origin.status === 'done') continue;
      mine.push(origin);
    }
    if (mine.length > 1) {
      throw new EngineError(
        'BAD_INPUT',
        `several decryption requests of this data directory are in ${options.inDir} (${mine.map((o) => o.request.request).join(', ')}); pick one with --request`,
      );
    }
    for (const origin of mine) {
      const id = origin.request.request;
      const p = entry(id);
      p.requester = true;
      const list = sortedByFile(partials.get(id)).map(({ value }) => value.partial);
      p.partials = list.length;
      const combined = combinePartialDecryptions(key.publicKey, origin.request.ciphertext, list);
      p.plaintext = combined.plaintext;
      p.rejected = combined.rejected;
      p.did.push('plaintext');
      if (origin.status !== 'done') {
        await store.writeRecord(`requests/decrypt-${id}/origin.json`, {
          ...origin,
          status: 'done',
          updatedAtMs: store.clock.now(),
        });
        await store.audit({
          event: 'decryption-combined',
          keyId,
          request: id,
          rejected: combined.rejected.map((r) => r.peerId),
        });
      }
    }
    if (progress.size === 0) {
      throw new EngineError(
        'NOT_FOUND',
        `no decryption request for key ${keyId} in ${options.inDir} needs this data directory`,
      );
    }
    return [...progress.values()];
  } finally {
    await lock.release();
  }
}
