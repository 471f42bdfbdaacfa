/**
 * Key ceremonies between running nodes: the networked transport of the ceremony core.
 *
 * Participants are named by their nodes' peer ids. Each node answers the `ceremony` protocol
 * (`/optimystic/<network>/ceremony/1`) with two requests:
 *
 * ```
 * {type:'card'}                          → NodeCard: the node's ceremony card, bound to the node
 * {type:'deliver', message, routes?}     → {ok:true}: one signed ceremony message (the same JSON the
 *                                          air-gapped exchange files hold); a proposal carries routes
 * ```
 *
 * The coordinator's node collects a card from every participant node, proposes (the proposal is the
 * core's, signed and bound to the session) and sends it with the routes: for every roster member,
 * the node it runs on, proved by a signature of the member's ceremony identity over the node's peer
 * id. A participant node checks all of that, records the proposal and waits for its operator
 * (`keygen ceremony accept`); nothing is sent before. Then every message a participant's state
 * machine broadcasts goes to every other participant node, and is retried until that node
 * acknowledges it (after sealing it into its state) or the ceremony expires. A node acknowledges only
 * messages from the node of their signer, signed by a roster member of a ceremony it knows.
 *
 * Time: while acceptances are missing the ceremony waits until its expiry (then NO_QUORUM, naming
 * who never accepted); afterwards each phase waits `phaseTimeoutMs` before the node says `Deadline`
 * (the silent are blamed and the ceremony restarts without them); past the expiry, TIMEOUT.
 *
 * State lives in the keystore exactly as for the air-gapped transport (ceremony-files.ts, whose
 * CeremonyRun this module drives): the sealed state, the public record (with the routes), copies of
 * sent messages. A node that restarts resumes its open ceremonies and sends its messages again.
 */
import { join } from 'node:path';
import { ed25519PublicKeyOfPeerId } from '../base/base58.js';
import { canonicalJson } from '../base/codec.js';
import { systemClock, type Clock } from '../base/clock.js';
import { EngineError, isEngineError, toEngineError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import type { Rng } from '../base/rng.js';
import {
  checkParticipantCard,
  checkProposal,
  checkPublicKey,
  createProposal,
  decodeSignature,
  encodeSignature,
  messageDigest,
  parseCeremonyMessage,
  publicKeyFromPeerId,
  verifyDomain,
  verifyMessageSignature,
  type Blame,
  type CeremonyFailure,
  type CeremonyMessage,
  type CeremonyPhase,
  type CheckedProposal,
  type KeyPurpose,
  type ParticipantCard,
  type ProposalMessage,
  type SuiteId,
} from '../crypto/index.js';
import type { NetworkNode, RequestContext } from '../network/index.js';
// The schema module alone: the network barrel would load libp2p into every command that imports the engine.
import * as schema from '../network/schema.js';
import {
  CeremonyRun,
  ceremonyDir,
  ceremonyFileName,
  createKeyProposal,
  isFinished,
  listCeremonies,
  priorShareFor,
  readExchangeDir,
  writeExchangeFile,
  readCeremonyRecord,
  sessionTag,
  summarizeKey,
  summarizeProposal,
  type CeremonyProgress,
  type CeremonyRecord,
  type CeremonyRoutes,
  type CeremonySummary,
  type KeySummary,
  type Waiting,
} from './ceremony-files.js';
import { fileExists, KeyStore, type CeremonyIdentity } from './keystore.js';

export const ceremonyProtocolName = 'ceremony';
/** The ceremony identity signs the node it runs on with this domain. */
export const nodeBindingDomain = 'optimystic/ceremony/node-binding/v1';
/** How long a round waits for a silent participant by default. */
export const defaultPhaseTimeoutMs = 60_000;
export const phaseTimeoutMsMin = 1_000;
export const phaseTimeoutMsMax = 3_600_000;
/** Open networked ceremonies a node takes part in at once; more proposals are refused. */
const openCeremoniesMax = 16;
/** Progress events kept per ceremony for a late `follow`. */
const historyMax = 1_000;
const retryMinMs = 250;
const retryMaxMs = 5_000;
const lockRetryMs = 100;
const lockWaitMs = 10_000;
const bindingFile = 'ceremony-node.json';
/** Files one exchange request carries at most (a request, a package, a signature, two per holder). */
const exchangeFilesMax = 3 + 2 * limits.ceremonyParticipantsMax;
/** Nodes remembered per key as having sent signing files (they get this node's files too). */
const exchangeSendersMax = 64;
/** The files that travel between nodes (see ceremony-files.ts for the names). */
const exchangeFileName =
  /^(sign-[0-9a-f]{16}-(request|package|signature|(commit|share)-[A-Za-z0-9_-]{1,16})|decrypt-[0-9a-f]{16}-(request|partial-[A-Za-z0-9_-]{1,16}))\.json$/;
/** Decryption requests whose requester node a node remembers per key. */
const exchangeRequestsMax = 256;
/** Files a key's exchange directory takes from other nodes before it refuses more (a bound on what peers can make this node store). */
const exchangeDirFilesMax = 4096;

/** The request id (16 hex digits) an exchange file name carries. */
function requestOfFile(name: string): string {
  return name.slice(name.indexOf('-') + 1, name.indexOf('-') + 17);
}

/** A participant card and the node it runs on, bound by the card's identity. */
export interface NodeCard {
  card: ParticipantCard;
  /** The node's libp2p peer id. */
  node: string;
  /** The ceremony identity's signature over the node's peer id (domain nodeBindingDomain), base64url. */
  binding: string;
}

/** Routes on the wire: every roster member with its node and binding. */
interface WireRoutes {
  coordinator: string;
  phaseTimeoutMs: number;
  members: NodeCard[];
}

/** One step of a networked ceremony, as `follow` reports it (the CLI prints one line each). */
export interface CeremonyNetEvent {
  event:
    | 'proposed'
    | 'decided'
    | 'received'
    | 'ignored'
    | 'phase'
    | 'blamed'
    | 'restarted'
    | 'undelivered'
    | 'complete'
    | 'failed';
  session: string;
  tag: string;
  at: number;
  phase: CeremonyPhase;
  attempt: number;
  /** proposed: what is proposed, and the node of every member (ceremony peer id → node). */
  summary?: CeremonySummary;
  nodes?: Record<string, string>;
  coordinator?: string;
  /** decided: this node's decision. */
  decision?: 'approved' | 'declined';
  /** received / ignored / undelivered: the message type, its signer and the signer's node. */
  type?: string;
  from?: string;
  node?: string;
  reason?: string;
  /** phase, received: who the phase still waits for (ceremony peer ids; `nodes` maps them). */
  waiting?: (Waiting & { nodes: string[] }) | null;
  blame?: Blame[];
  recipients?: string[];
  key?: KeySummary;
  failure?: CeremonyFailure;
}

export interface StartCeremonyOptions {
  /** Participant nodes (peer ids); this node takes part whether listed or not. Share identifiers follow this order. */
  participants: string[];
  threshold: number;
  suite?: SuiteId;
  purpose?: KeyPurpose;
  label?: string;
  expiresInMs: number;
  phaseTimeoutMs?: number;
}

/**
 * A refresh or reshare of a key this node's data directory knows, run between running nodes. The
 * participants are the nodes the members run on: for a refresh every holder (whose node is known from
 * the ceremony that made the key's current generation, when this node took part in it over the
 * network, or found among `participants`); for a reshare the current holders that deal and the new
 * holders (`participants`, in identifier order).
 */
export interface RenewCeremonyOptions {
  kind: 'refresh' | 'reshare';
  /** The key: its id, a unique prefix of it (4 characters or more), or its label. */
  key: string;
  /** refresh: nodes of holders the key's record does not place; reshare: the new holders' nodes. */
  participants: string[];
  /** reshare: the nodes of the current holders that deal (default every holder). */
  dealers?: string[];
  /** reshare: the new threshold (default the key's). */
  threshold?: number;
  expiresInMs: number;
  phaseTimeoutMs?: number;
}

/** `keygen sign --transport network`: what to send where. */
export interface ExchangeOptions {
  /** The key: its id, a unique prefix of it, or its label. */
  key: string;
  /** More nodes to send to (a holder's node this data directory does not know, a requester's). */
  nodes?: string[];
}

export interface ExchangeReport {
  keyId: string;
  /** The exchange directory the files were read from (other nodes' files arrive there too). */
  dir: string;
  files: number;
  sent: string[];
  failed: { node: string; code: string; message: string }[];
}

export interface StartedCeremony {
  session: string;
  tag: string;
  summary: CeremonySummary;
  nodes: Record<string, string>;
}

export interface CeremonyServiceInfo {
  peerId: string;
  /** The node holds the keystore passphrase (it can take part in ceremonies). */
  unlocked: boolean;
  card: ParticipantCard | null;
  ceremonies: { session: string; tag: string; phase: CeremonyPhase; decided: boolean; coordinator: string }[];
}

/** What the node's API reaches: the control socket's `keygen.*` methods. */
export interface CeremonyApi {
  info(): Promise<CeremonyServiceInfo>;
  unlock(passphrase: string): Promise<CeremonyServiceInfo>;
  startCeremony(options: StartCeremonyOptions): Promise<StartedCeremony>;
  renewKey(options: RenewCeremonyOptions): Promise<StartedCeremony>;
  /** Sends the key's signing exchange files to the nodes of its holders (ExchangeOptions). */
  exchange(options: ExchangeOptions): Promise<ExchangeReport>;
  decide(
    ref: string | undefined,
    decision: { approve: true } | { approve: false; reason: string },
  ): Promise<StartedCeremony>;
  follow(ref: string): AsyncIterable<CeremonyNetEvent>;
}

export interface CeremonyServiceInit {
  dataDir: string;
  network: NetworkNode;
  /** The keystore passphrase given when the node started; kept in memory only, never logged. */
  passphrase?: string;
  /** scrypt cost for files sealed from now on (tests lower it). */
  sealCostLog2?: number;
  clock?: Clock;
  rng?: Rng;
  /** Node log lines (info: ceremony progress; error: failures). */
  log?: (kind: 'info' | 'error', message: string, peerId?: string) => void;
  /** Timer resolution (default 250 ms). */
  tickMs?: number;
  /** Deadline of one delivery request (default: the network's). */
  requestTimeoutMs?: number;
}

const { object, optional, json, messageUnion, string, array } = schema;

const wireRequest = messageUnion({
  card: object({}),
  deliver: object({ message: json(), routes: optional(json()) }),
  exchange: object({
    keyId: string({ charsMin: 1, charsMax: 64 }),
    files: array(object({ name: string({ charsMin: 1, charsMax: 128 }), value: json() }), {
      itemsMax: exchangeFilesMax,
    }),
    /** The sender's node card: proves which ceremony identity runs on the sending node. */
    card: optional(json()),
  }),
});
type WireRequest = ReturnType<typeof wireRequest>;

interface Incoming {
  message: CeremonyMessage;
  resolve: () => void;
  reject: (error: unknown) => void;
}

interface Delivery {
  message: CeremonyMessage;
  node: string;
  attempts: number;
  dueAt: number;
  inFlight: boolean;
}

/** One networked ceremony this node takes part in. */
interface Open {
  session: string;
  tag: string;
  proposal: ProposalMessage;
  checked: CheckedProposal;
  routes: CeremonyRoutes;
  summary: CeremonySummary;
  /** Undefined until this node's operator decided (a proposal received, waiting for `accept`). */
  run: CeremonyRun | undefined;
  /** Before the decision: messages received (acceptances), kept in `inbox.json` too. */
  inbox: CeremonyMessage[];
  incoming: Incoming[];
  batching: boolean;
  /** A Deadline or Tick from the timer is queued. */
  timing: boolean;
  phaseKey: string;
  phaseSince: number;
  finishedAt: number | undefined;
  history: CeremonyNetEvent[];
  /** Messages reported as received before this node decided (not reported again when fed). */
  reported: Set<string>;
  listeners: Set<() => void>;
  outbox: Delivery[];
}

function nodeOf(open: Open, peer: string): string {
  return open.routes.nodes[peer] ?? peer;
}

function bindingBytes(card: ParticipantCard, node: string): Uint8Array {
  return new TextEncoder().encode(canonicalJson({ peerId: card.peerId, node }));
}

/** Checks a node card: the card itself, and that its identity signed this node's peer id. */
export function checkNodeCard(value: unknown, node?: string): NodeCard {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new EngineError('BAD_INPUT', 'a node card is an object');
  const v = value as Record<string, unknown>;
  const card = v['card'] as ParticipantCard;
  if (card === null || typeof card !== 'object')
    throw new EngineError('BAD_INPUT', 'a node card holds a card');
  const clean = { peerId: card.peerId, encryptionKey: card.encryptionKey, signature: card.signature };
  checkParticipantCard(clean);
  if (typeof v['node'] !== 'string' || (node !== undefined && v['node'] !== node))
    throw new EngineError('BAD_INPUT', `the card is bound to another node than ${node ?? 'its sender'}`);
  if (
    !verifyDomain(
      publicKeyFromPeerId(clean.peerId),
      nodeBindingDomain,
      bindingBytes(clean, v['node']),
      decodeSignature(v['binding']),
    )
  )
    throw new EngineError(
      'BAD_SIGNATURE',
      `the binding of ceremony identity ${clean.peerId} to node ${v['node']} does not verify`,
    );
  return { card: clean, node: v['node'], binding: v['binding'] as string };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs the ceremonies of one node over its network (see the module comment). */
export class CeremonyService implements CeremonyApi {
  private readonly store: KeyStore;
  private readonly network: NetworkNode;
  private readonly clock: Clock;
  private readonly log: NonNullable<CeremonyServiceInit['log']>;
  private readonly requestTimeoutMs: number | undefined;
  private passphrase: string | undefined;
  private me: CeremonyIdentity | undefined;
  private nodeCard: NodeCard | undefined;
  private readonly open = new Map<string, Open>();
  /** Exchange requests being stored, by key (receiveExchange). */
  private readonly exchanges = new Map<string, Promise<unknown>>();
  private queue: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  private constructor(init: CeremonyServiceInit) {
    this.store = new KeyStore(init.dataDir, {
      ...(init.sealCostLog2 === undefined ? {} : { sealCostLog2: init.sealCostLog2 }),
      ...(init.rng === undefined ? {} : { rng: init.rng }),
      ...(init.clock === undefined ? {} : { clock: init.clock }),
    });
    this.network = init.network;
    this.clock = init.clock ?? systemClock;
    this.log = init.log ?? (() => undefined);
    this.requestTimeoutMs = init.requestTimeoutMs;
  }

  /**
   * Serves the protocol and resumes open ceremonies. With a passphrase, first opens the ceremony
   * identity (creating it when there is none): a wrong passphrase fails here, with BAD_SIGNATURE.
   */
  static async start(init: CeremonyServiceInit): Promise<CeremonyService> {
    const service = new CeremonyService(init);
    if (init.passphrase !== undefined) await service.unlockWith(init.passphrase);
    await init.network.handle(
      ceremonyProtocolName,
      (request: WireRequest, context) => service.serve(request, context),
      {
        validate: wireRequest,
        frameBytesMax: limits.messageBytesMax,
      },
    );
    await service.resume();
    service.timer = setInterval(() => service.onTimer(), init.tickMs ?? 250);
    return service;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    for (const open of this.open.values()) {
      for (const incoming of open.incoming.splice(0))
        incoming.reject(new EngineError('UNAVAILABLE', 'the node is stopping'));
      for (const wake of open.listeners) wake();
    }
    await this.network.unhandle(ceremonyProtocolName).catch(() => undefined);
    await this.queue.catch(() => undefined);
  }

  // --- keystore access ---------------------------------------------------------------------------

  /** Runs keystore work one at a time in this process, under the keystore's lock (waiting while a command holds it). */
  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(async () => {
      const started = this.clock.now();
      let lock: { release: () => Promise<void> } | undefined;
      while (lock === undefined) {
        try {
          lock = await this.store.lock();
        } catch (error) {
          if (!isEngineError(error, 'DATA_DIR_BUSY') || this.clock.now() - started > lockWaitMs) throw error;
          await sleep(lockRetryMs);
        }
      }
      try {
        return await work();
      } finally {
        await lock.release();
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private requireUnlocked(): { me: CeremonyIdentity; passphrase: string } {
    if (this.me === undefined || this.passphrase === undefined)
      throw new EngineError(
        'BAD_INPUT',
        `node ${this.network.peerId} does not hold the keystore passphrase: start it with OPTIMYSTIC_PASSPHRASE or --passphrase-file, or run: optimystic keygen ceremony unlock`,
      );
    return { me: this.me, passphrase: this.passphrase };
  }

  private unlockWith(passphrase: string): Promise<void> {
    return this.exclusive(async () => {
      const created = !(await this.store.hasIdentity());
      const me = created
        ? await this.store.createIdentity(passphrase)
        : await this.store.openIdentity(passphrase);
      const node = this.network.peerId;
      this.nodeCard = {
        card: me.card,
        node,
        binding: encodeSignature(me.identity.signDomain(nodeBindingDomain, bindingBytes(me.card, node))),
      };
      await this.store.writeRecord(bindingFile, this.nodeCard);
      this.me = me;
      this.passphrase = passphrase;
      if (created) this.log('info', `created the ceremony identity ${me.card.peerId} for node ${node}`);
    });
  }

  async unlock(passphrase: string): Promise<CeremonyServiceInfo> {
    if (this.passphrase === undefined) {
      await this.unlockWith(passphrase);
      await this.resume();
    } else if (passphrase !== this.passphrase) {
      throw new EngineError('BAD_SIGNATURE', 'this is not the passphrase the node was unlocked with');
    }
    return this.info();
  }

  /** This node's card, from memory or (a locked node) from the binding it saved when last unlocked. */
  private async ownCard(): Promise<NodeCard> {
    if (this.nodeCard !== undefined) return this.nodeCard;
    const saved = await this.store.readRecord(bindingFile, 'node card');
    if (saved !== undefined) {
      try {
        const card = checkNodeCard(saved, this.network.peerId);
        const current = await this.store.readCard();
        if (current !== undefined && current.peerId === card.card.peerId) return (this.nodeCard = card);
      } catch (error) {
        if (!(error instanceof EngineError)) throw error;
      }
    }
    throw new EngineError(
      'UNAVAILABLE',
      `node ${this.network.peerId} has no ceremony identity unlocked: start it with OPTIMYSTIC_PASSPHRASE or --passphrase-file, or run optimystic keygen ceremony unlock on it`,
    );
  }

  async info(): Promise<CeremonyServiceInfo> {
    let card: ParticipantCard | null = null;
    try {
      card = (await this.ownCard()).card;
    } catch (error) {
      if (!isEngineError(error, 'UNAVAILABLE')) throw error;
    }
    return {
      peerId: this.network.peerId,
      unlocked: this.passphrase !== undefined,
      card,
      ceremonies: [...this.open.values()].map((o) => ({
        session: o.session,
        tag: o.tag,
        phase: o.run?.state.phase ?? 'proposed',
        decided: o.run !== undefined,
        coordinator: o.routes.coordinator,
      })),
    };
  }

  // --- the protocol --------------------------------------------------------------------------------

  private async serve(request: WireRequest, context: RequestContext): Promise<unknown> {
    if (this.stopped) throw new EngineError('UNAVAILABLE', 'the node is stopping');
    if (request.type === 'card') return this.ownCard();
    if (request.type === 'exchange')
      return this.receiveExchange(request.keyId, request.files, context.peerId, request.card);
    const message = parseCeremonyMessage(request.message);
    const open = this.open.get(message.session);
    if (open === undefined) {
      if (message.type === 'Proposal') return this.receiveProposal(message, request.routes, context.peerId);
      const record = await this.recordOf(message.session);
      if (record !== undefined && isFinished(record.phase)) return { ok: true, finished: true };
      // Perhaps its proposal is still on the way: the sender tries again.
      throw new EngineError('UNAVAILABLE', `no ceremony ${sessionTag(message.session)} here (yet)`);
    }
    this.authenticate(open, message, context.peerId);
    if (open.run === undefined) {
      await this.keepForLater(open, message);
      return { ok: true };
    }
    if (open.finishedAt !== undefined) return { ok: true, finished: true };
    await new Promise<void>((resolve, reject) => {
      open.incoming.push({ message, resolve, reject });
      this.schedule(open);
    });
    return { ok: true };
  }

  private async recordOf(session: string): Promise<CeremonyRecord | undefined> {
    try {
      return await readCeremonyRecord(this.store, session);
    } catch (error) {
      if (isEngineError(error, 'BAD_INPUT')) throw new EngineError('BAD_INPUT', 'not a session id');
      throw error;
    }
  }

  /** A message of a known ceremony: from a roster member, sent by that member's node, signed by it. */
  private authenticate(open: Open, message: CeremonyMessage, senderNode: string): void {
    const member = open.checked.members.get(message.from);
    if (member === undefined)
      throw new EngineError(
        'BAD_INPUT',
        `${message.type} from ${message.from}, who is not in the roster of ceremony ${open.tag}`,
        { reason: 'not-in-roster' },
      );
    if (open.routes.nodes[message.from] !== senderNode)
      throw new EngineError(
        'BAD_INPUT',
        `node ${senderNode} is not the node of participant ${message.from} in ceremony ${open.tag}`,
        { reason: 'wrong-node' },
      );
    if (!verifyMessageSignature(message, member.identityKey))
      throw new EngineError(
        'BAD_SIGNATURE',
        `the ${message.type} claiming to come from ${message.from} does not verify (altered or forged)`,
      );
  }

  private async receiveProposal(
    message: ProposalMessage,
    routesValue: unknown,
    sender: string,
  ): Promise<unknown> {
    if (!verifyMessageSignature(message, publicKeyFromPeerId(message.from)))
      throw new EngineError('BAD_SIGNATURE', `the proposal's signature by ${message.from} does not verify`);
    const checked = checkProposal(message, this.clock.now());
    const routes = this.checkRoutes(checked, routesValue, sender);
    const mine = await this.ownCard();
    if (routes.nodes[mine.card.peerId] !== this.network.peerId)
      throw new EngineError(
        'BAD_INPUT',
        `ceremony ${sessionTag(checked.session)} does not name this node (${this.network.peerId}) with its card`,
      );
    const listed = message.proposal.roster.find((c) => c.peerId === mine.card.peerId);
    if (listed === undefined || canonicalJson(listed) !== canonicalJson(mine.card))
      throw new EngineError(
        'BAD_INPUT',
        `ceremony ${sessionTag(checked.session)} lists another card for this node`,
      );
    if ([...this.open.values()].filter((o) => o.finishedAt === undefined).length >= openCeremoniesMax)
      throw new EngineError(
        'UNAVAILABLE',
        `node ${this.network.peerId} already takes part in ${openCeremoniesMax} ceremonies`,
      );
    await this.exclusive(async () => {
      if (this.open.has(checked.session)) return;
      const existing = await readCeremonyRecord(this.store, checked.session);
      if (existing !== undefined) return; // finished here before, or joined through files
      const summary = summarizeProposal(message, mine.card.peerId);
      const record: CeremonyRecord = {
        format: 'optimystic-ceremony-record',
        version: 1,
        session: checked.session,
        proposal: message,
        summary,
        phase: 'proposed',
        attempt: 0,
        keyId: null,
        failure: null,
        sent: [],
        updatedAtMs: this.clock.now(),
        network: routes,
      };
      await this.store.writeRecord(`${ceremonyDir(checked.session)}/record.json`, record);
      const open = this.track(message, checked, routes, undefined, []);
      this.event(open, { event: 'proposed', summary, nodes: routes.nodes, coordinator: routes.coordinator });
      this.log(
        'info',
        `ceremony ${open.tag} proposed by node ${routes.coordinator} (${describe(summary)}); to take part: optimystic keygen ceremony accept ${open.tag}`,
        routes.coordinator,
      );
    });
    return { ok: true };
  }

  /** The routes of a proposal: one bound node per roster member, the proposer's being the sender. */
  private checkRoutes(checked: CheckedProposal, value: unknown, sender: string): CeremonyRoutes {
    const v = value as Partial<WireRoutes> | null | undefined;
    if (v === null || typeof v !== 'object' || !Array.isArray(v.members))
      throw new EngineError('BAD_INPUT', 'a networked proposal needs its routes');
    const phaseTimeoutMs = v.phaseTimeoutMs;
    if (
      typeof phaseTimeoutMs !== 'number' ||
      !Number.isInteger(phaseTimeoutMs) ||
      phaseTimeoutMs < phaseTimeoutMsMin ||
      phaseTimeoutMs > phaseTimeoutMsMax
    )
      throw new EngineError('BAD_INPUT', 'routes: phaseTimeoutMs out of range');
    const roster = checked.proposal.roster;
    if (v.members.length !== roster.length)
      throw new EngineError('BAD_INPUT', 'routes: one member per roster card');
    const nodes: Record<string, string> = {};
    const bindings: Record<string, string> = {};
    const seen = new Set<string>();
    roster.forEach((card, i) => {
      const member = checkNodeCard(v.members![i]);
      if (canonicalJson(member.card) !== canonicalJson(card))
        throw new EngineError('BAD_INPUT', `routes: member ${i + 1} is not the roster's card`);
      if (seen.has(member.node)) throw new EngineError('BAD_INPUT', `routes: node ${member.node} twice`);
      seen.add(member.node);
      nodes[card.peerId] = member.node;
      bindings[card.peerId] = member.binding;
    });
    if (v.coordinator !== sender || nodes[checked.proposal.proposer] !== sender)
      throw new EngineError('BAD_INPUT', `node ${sender} is not the node of the proposer`);
    return { coordinator: sender, nodes, bindings, phaseTimeoutMs };
  }

  private wireRoutes(open: Open): WireRoutes {
    return {
      coordinator: open.routes.coordinator,
      phaseTimeoutMs: open.routes.phaseTimeoutMs,
      members: open.proposal.proposal.roster.map((card) => ({
        card,
        node: open.routes.nodes[card.peerId]!,
        binding: open.routes.bindings?.[card.peerId] ?? '',
      })),
    };
  }

  /** Before this node decides: acceptances (or a decline) of others, kept until it does. */
  private async keepForLater(open: Open, message: CeremonyMessage): Promise<void> {
    if (message.type === 'Proposal') return; // the one this node holds (authenticated above)
    const digest = messageDigest(message);
    if (open.inbox.some((m) => messageDigest(m) === digest)) return;
    if (open.inbox.length >= open.checked.proposal.roster.length * 2)
      throw new EngineError('UNAVAILABLE', `ceremony ${open.tag} waits for this node's decision`);
    open.inbox.push(message);
    open.reported.add(`${message.type}/${message.from}`);
    await this.exclusive(() => this.store.writeRecord(`${ceremonyDir(open.session)}/inbox.json`, open.inbox));
    this.event(open, {
      event: 'received',
      type: message.type,
      from: message.from,
      node: nodeOf(open, message.from),
    });
  }

  private track(
    proposal: ProposalMessage,
    checked: CheckedProposal,
    routes: CeremonyRoutes,
    run: CeremonyRun | undefined,
    inbox: CeremonyMessage[],
  ): Open {
    const open: Open = {
      session: checked.session,
      tag: sessionTag(checked.session),
      proposal,
      checked,
      routes,
      summary: summarizeProposal(proposal, this.me?.card.peerId ?? this.nodeCard?.card.peerId ?? null),
      run,
      inbox,
      incoming: [],
      batching: false,
      timing: false,
      phaseKey: run === undefined ? 'undecided' : `${run.state.phase}/${run.state.attempt.number}`,
      phaseSince: this.clock.now(),
      finishedAt: undefined,
      history: [],
      reported: new Set(),
      listeners: new Set(),
      outbox: [],
    };
    this.open.set(open.session, open);
    return open;
  }

  // --- running ceremonies ------------------------------------------------------------------------

  private newRun(open: Open): CeremonyRun {
    const { me, passphrase } = this.requireUnlocked();
    const run = new CeremonyRun(this.store, me, passphrase, open.proposal, (_name, message) => {
      this.enqueue(open, message);
      return Promise.resolve();
    });
    run.network = open.routes;
    return run;
  }

  async startCeremony(options: StartCeremonyOptions): Promise<StartedCeremony> {
    const { me } = this.requireUnlocked();
    const self = this.network.peerId;
    const nodes: string[] = [];
    for (const node of [self, ...options.participants]) {
      checkPeerId(node, 'participant');
      if (!nodes.includes(node)) nodes.push(node);
    }
    if (options.participants.includes(self)) {
      // Listed explicitly: keep the operator's order (it gives the share identifiers).
      nodes.splice(0, nodes.length, ...[...new Set(options.participants)]);
    }
    if (nodes.length < 2)
      throw new EngineError('BAD_INPUT', 'a ceremony needs at least one other participant node');
    if (nodes.length > limits.ceremonyParticipantsMax)
      throw new EngineError('BAD_INPUT', `at most ${limits.ceremonyParticipantsMax} participants`);
    const phaseTimeoutMs = checkPhaseTimeout(options.phaseTimeoutMs);
    const cards = await this.fetchCards(nodes);
    const message = createKeyProposal(this.store, me, {
      roster: cards.map((c) => c.card),
      expiresAtMs: this.clock.now() + options.expiresInMs,
      threshold: options.threshold,
      ...(options.suite === undefined ? {} : { suite: options.suite }),
      ...(options.purpose === undefined ? {} : { purpose: options.purpose }),
      ...(options.label === undefined ? {} : { label: options.label }),
    });
    return this.propose(message, cards, phaseTimeoutMs);
  }

  /**
   * Proposes a refresh or a reshare of a key (RenewCeremonyOptions) to the nodes of its members; this
   * node must hold a share (refresh) or deal or receive one (reshare). The rest runs as startCeremony.
   */
  async renewKey(options: RenewCeremonyOptions): Promise<StartedCeremony> {
    const { me } = this.requireUnlocked();
    const self = this.network.peerId;
    for (const node of options.participants)
      checkPeerId(node, options.kind === 'reshare' ? 'roster node' : 'participant');
    for (const node of options.dealers ?? []) checkPeerId(node, 'dealer');
    const phaseTimeoutMs = checkPhaseTimeout(options.phaseTimeoutMs);
    const key = await this.store.resolveKey(options.key);
    const prior = checkPublicKey(key.publicKey, 'CORRUPT').json;
    const holders = [...prior.holders].sort((a, b) => a.identifier - b.identifier).map((h) => h.peerId);
    // Ceremony identity -> node: the nodes named here first, then the routes of the ceremony that made
    // this generation (when this node took part in it over the network).
    const named = await this.fetchCards([...new Set([...options.participants, ...(options.dealers ?? [])])]);
    const byIdentity = new Map(named.map((c) => [c.card.peerId, c] as const));
    const identityOf = (node: string): string => named.find((c) => c.node === node)!.card.peerId;
    const origin = await this.recordOf(prior.session);
    const routed = origin?.network?.nodes ?? {};
    const placed = (identity: string): string => {
      const node = byIdentity.get(identity)?.node ?? (identity === me.card.peerId ? self : routed[identity]);
      if (node === undefined)
        throw new EngineError(
          'BAD_INPUT',
          `no node known for holder ${identity} of key ${prior.keyId}: name the node it runs on with --participants`,
        );
      return node;
    };
    let members: string[];
    let recipients: string[] | undefined;
    if (options.kind === 'refresh') {
      if (key.holder === null)
        throw new EngineError('BAD_INPUT', `only a holder of key ${prior.keyId} can propose its refresh`);
      members = holders;
    } else {
      if (options.participants.length === 0)
        throw new EngineError(
          'BAD_INPUT',
          'a reshare needs --participants: the nodes that will hold the key',
        );
      recipients = options.participants.map(identityOf);
      const dealers =
        options.dealers === undefined || options.dealers.length === 0
          ? holders
          : options.dealers.map((node) => {
              const identity = identityOf(node);
              if (!holders.includes(identity))
                throw new EngineError('BAD_INPUT', `node ${node} holds no share of key ${prior.keyId}`);
              return identity;
            });
      members = [...new Set([...dealers, ...recipients])];
      if (!members.includes(me.card.peerId))
        throw new EngineError('BAD_INPUT', 'the proposer must deal or receive a share in the reshare');
    }
    // The cards of members placed by the routes come fresh from their nodes (each must be reachable,
    // and still bound to that identity); those of the nodes named were fetched above.
    const routedCards = await this.fetchCards(members.filter((id) => !byIdentity.has(id)).map(placed));
    const byNode = new Map(routedCards.map((c) => [c.node, c] as const));
    const cards = members.map((id) => byIdentity.get(id) ?? byNode.get(placed(id))!);
    cards.forEach((c, i) => {
      if (c.card.peerId !== members[i])
        throw new EngineError(
          'BAD_INPUT',
          `node ${c.node} now presents ceremony identity ${c.card.peerId}, not ${members[i]!}: name the node of ${members[i]!} with --participants`,
        );
    });
    const message = createProposal(
      me.identity,
      {
        kind: options.kind,
        roster: cards.map((c) => c.card),
        prior,
        ...(recipients === undefined ? {} : { recipients }),
        ...(options.threshold === undefined ? {} : { threshold: options.threshold }),
        expiresAtMs: this.clock.now() + options.expiresInMs,
      },
      this.store.rng,
    );
    return this.propose(message, cards, phaseTimeoutMs);
  }

  // --- exchange files between nodes (keygen sign|decrypt --transport network) ---------------------

  /** Ceremony identity -> node for a key's current holders, from the ceremony that made it (if any). */
  private async holderNodes(session: string): Promise<Record<string, string>> {
    return (await this.recordOf(session))?.network?.nodes ?? {};
  }

  private async exchangeSenders(keyId: string): Promise<string[]> {
    const value = await this.store.readRecord(`exchange/${keyId}/nodes.json`, 'exchange nodes');
    return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
  }

  /** The requester's node for each decryption request (its partial decryptions go there and nowhere else). */
  private async requesterNodes(keyId: string): Promise<Record<string, string>> {
    const value = await this.store.readRecord(`exchange/${keyId}/requesters.json`, 'exchange requesters');
    return value !== null && typeof value === 'object' ? (value as Record<string, string>) : {};
  }

  /**
   * Sends the key's exchange files to the other nodes: signing files and decryption requests to
   * the holders' nodes, the nodes named and those that sent files here; a partial decryption only
   * to the node its request came from. Files of finished signing requests stay home.
   */
  async exchange(options: ExchangeOptions): Promise<ExchangeReport> {
    for (const node of options.nodes ?? []) checkPeerId(node, 'node');
    const key = await this.store.resolveKey(options.key);
    const keyId = key.publicKey.keyId;
    const dir = signExchangeDir(this.store.root, keyId);
    const self = this.network.peerId;
    const targets = new Set<string>([
      ...Object.values(await this.holderNodes(key.publicKey.session)),
      ...(await this.exchangeSenders(keyId)),
      ...(options.nodes ?? []),
    ]);
    targets.delete(self);
    const all: { name: string; value: unknown }[] = [];
    for (const file of await readExchangeDir(dir, '').catch((error: unknown) => {
      if (isEngineError(error, 'NOT_FOUND')) return [];
      throw error;
    })) {
      if (file.error === null && exchangeFileName.test(file.name))
        all.push({ name: file.name, value: file.value });
    }
    // A signing request with its signature is over: its files need not travel again.
    const done = new Set(
      all.filter((f) => f.name.endsWith('-signature.json')).map((f) => requestOfFile(f.name)),
    );
    const requesters = await this.requesterNodes(keyId);
    const broadcast: { name: string; value: unknown }[] = [];
    const directed = new Map<string, { name: string; value: unknown }[]>();
    for (const file of all) {
      if (done.has(requestOfFile(file.name))) continue;
      if (!file.name.includes('-partial-')) broadcast.push(file);
      else {
        const node = requesters[requestOfFile(file.name)];
        if (node === undefined || node === self) continue;
        directed.set(node, [...(directed.get(node) ?? []), file]);
      }
    }
    const card = await this.ownCard().catch(() => undefined);
    const report: ExchangeReport = { keyId, dir, files: 0, sent: [], failed: [] };
    const plan = new Map<string, { name: string; value: unknown }[]>();
    for (const node of targets) if (broadcast.length > 0) plan.set(node, [...broadcast]);
    for (const [node, files] of directed) plan.set(node, [...(plan.get(node) ?? []), ...files]);
    report.files = broadcast.length + [...directed.values()].reduce((n, f) => n + f.length, 0);
    await Promise.all(
      [...plan].map(async ([node, files]) => {
        try {
          for (let at = 0; at < files.length; at += exchangeFilesMax)
            await this.network.request(
              node,
              ceremonyProtocolName,
              {
                type: 'exchange',
                keyId,
                files: files.slice(at, at + exchangeFilesMax),
                ...(card === undefined ? {} : { card }),
              },
              this.requestTimeoutMs === undefined ? {} : { timeoutMs: this.requestTimeoutMs },
            );
          report.sent.push(node);
        } catch (error) {
          const e = toEngineError(error);
          report.failed.push({ node, code: e.code, message: e.message });
        }
      }),
    );
    report.sent.sort();
    return report;
  }

  /**
   * Exchange files from another node, for a key this data directory knows: stored in the key's
   * exchange directory (what is there already with other content stays), the sender remembered so
   * this node's files reach it too. A file claiming a holder whose node is known must come from that
   * node; a partial decryption is taken only for a request this data directory made (mode 0600),
   * and a decryption request's sender is remembered as where its partials go when it is the
   * requester's node (storeExchange). The content is checked where it is used, as for files carried
   * by hand.
   */
  private receiveExchange(
    keyId: string,
    files: readonly { name: string; value: unknown }[],
    sender: string,
    card?: unknown,
  ): Promise<unknown> {
    if (!/^[A-Za-z0-9_-]{16,64}$/.test(keyId))
      return Promise.reject(new EngineError('BAD_INPUT', 'not a key id'));
    // One at a time per key: each updates the key's sender and requester records (read, then written).
    const run = (this.exchanges.get(keyId) ?? Promise.resolve()).then(() =>
      this.storeExchange(keyId, files, sender, card),
    );
    const settled = run.catch(() => undefined);
    this.exchanges.set(keyId, settled);
    void settled.then(() => {
      if (this.exchanges.get(keyId) === settled) this.exchanges.delete(keyId);
    });
    return run;
  }

  private async storeExchange(
    keyId: string,
    files: readonly { name: string; value: unknown }[],
    sender: string,
    card?: unknown,
  ): Promise<unknown> {
    const key = await this.store.readKey(keyId);
    const nodes = await this.holderNodes(key.publicKey.session);
    // The node a ceremony identity runs on: a holder's from the routes, else the sender's own when
    // its card (bound to the sending node) names that identity.
    let senderIdentity: string | undefined;
    try {
      if (card !== undefined) senderIdentity = checkNodeCard(card, sender).card.peerId;
    } catch {
      senderIdentity = undefined;
    }
    const requesterNode = (identity: string): string | undefined =>
      nodes[identity] ?? (identity === senderIdentity ? sender : undefined);
    const dir = signExchangeDir(this.store.root, keyId);
    if ((await this.store.list(`exchange/${keyId}`)).length + files.length > exchangeDirFilesMax)
      throw new EngineError(
        'UNAVAILABLE',
        `the exchange directory of key ${keyId} on node ${this.network.peerId} is full (${exchangeDirFilesMax} files): delete finished requests' files from keys/exchange/${keyId}/ in its data directory`,
      );
    const requesters = await this.requesterNodes(keyId);
    let requestersChanged = false;
    let stored = 0;
    const refused: string[] = [];
    /** Files new here (the same files come again with every send of an open request). */
    const arrived: string[] = [];
    for (const { name, value } of files) {
      const claimed = (value as { peerId?: unknown } | null)?.peerId;
      const from = typeof claimed === 'string' ? nodes[claimed] : undefined;
      const request = requestOfFile(name);
      const partial = name.includes('-partial-');
      const ours =
        partial &&
        (await this.store.readRecord(`requests/decrypt-${request}/origin.json`, 'decryption request')) !==
          undefined;
      if (!exchangeFileName.test(name) || (from !== undefined && from !== sender) || (partial && !ours)) {
        refused.push(name);
        continue;
      }
      try {
        if (!(await fileExists(join(dir, name)))) arrived.push(name);
        await writeExchangeFile(dir, name, value, partial ? 0o600 : undefined);
        stored++;
      } catch (error) {
        if (!isEngineError(error, 'EXISTS')) throw error;
        refused.push(name);
        continue;
      }
      if (
        name.startsWith('decrypt-') &&
        name.endsWith('-request.json') &&
        requesters[request] === undefined
      ) {
        // Partials go to the requester's node and nowhere else: the node the routes name for the
        // requester when it holds a share, else the sender if its card proves the requester runs
        // there. A node that merely passed the request on is never recorded, nor is anything for a
        // request this data directory made itself.
        const requester = (value as { requester?: unknown } | null)?.requester;
        const mine =
          (await this.store.readRecord(`requests/decrypt-${request}/origin.json`, 'decryption request')) !==
          undefined;
        if (!mine && typeof requester === 'string' && requesterNode(requester) === sender) {
          requesters[request] = sender;
          requestersChanged = true;
        }
      }
    }
    if (requestersChanged) {
      const kept = Object.entries(requesters).slice(-exchangeRequestsMax);
      await this.store.writeRecord(`exchange/${keyId}/requesters.json`, Object.fromEntries(kept));
    }
    const senders = await this.exchangeSenders(keyId);
    if (!senders.includes(sender) && sender !== this.network.peerId) {
      await this.store.writeRecord(
        `exchange/${keyId}/nodes.json`,
        [...senders, sender].slice(-exchangeSendersMax),
      );
    }
    // Tell the operator (node log, dashboard) about requests that wait for this data directory.
    for (const name of key.holder === null ? [] : arrived) {
      if (!name.endsWith('-request.json')) continue;
      const kind = name.startsWith('sign-') ? 'sign' : 'decrypt';
      this.log(
        'info',
        `${kind === 'sign' ? 'signing' : 'decryption'} request for key ${key.publicKey.label || keyId} from node ${sender}: answer with optimystic keygen ${kind} ${keyId} --transport network (request ${requestOfFile(name)})`,
        sender,
      );
    }
    return { ok: true, stored, refused };
  }

  /** This node's own card, the others fetched from their nodes; one ceremony identity per node. */
  private async fetchCards(nodes: readonly string[]): Promise<NodeCard[]> {
    const self = this.network.peerId;
    const cards = await Promise.all(
      nodes.map((node) => (node === self ? this.ownCard() : this.fetchCard(node))),
    );
    const identities = new Set(cards.map((c) => c.card.peerId));
    if (identities.size !== cards.length)
      throw new EngineError('BAD_INPUT', 'two participant nodes present the same ceremony identity');
    return cards;
  }

  /** Sends a proposal this node made to the nodes of its roster (`cards`, in roster order) and joins it. */
  private async propose(
    message: ProposalMessage,
    cards: readonly NodeCard[],
    phaseTimeoutMs: number,
  ): Promise<StartedCeremony> {
    const { me, passphrase } = this.requireUnlocked();
    const self = this.network.peerId;
    const checked = checkProposal(message, this.clock.now());
    const routes: CeremonyRoutes = {
      coordinator: self,
      nodes: Object.fromEntries(cards.map((c) => [c.card.peerId, c.node])),
      bindings: Object.fromEntries(cards.map((c) => [c.card.peerId, c.binding])),
      phaseTimeoutMs,
    };
    const open = await this.exclusive(async () => {
      const priorShare = await priorShareFor(this.store, checked, me.card.peerId, passphrase);
      const open = this.track(message, checked, routes, undefined, []);
      const summary = summarizeProposal(message, me.card.peerId);
      this.event(open, { event: 'proposed', summary, nodes: routes.nodes, coordinator: self });
      open.run = this.newRun(open);
      this.report(open, await open.run.propose(priorShare));
      return open;
    });
    this.log('info', `ceremony ${open.tag} proposed to ${cards.length} nodes (${describe(open.summary)})`);
    return { session: open.session, tag: open.tag, summary: open.summary, nodes: routes.nodes };
  }

  private async fetchCard(node: string): Promise<NodeCard> {
    let value: unknown;
    try {
      value = await this.network.request(
        node,
        ceremonyProtocolName,
        { type: 'card' },
        {
          ...(this.requestTimeoutMs === undefined ? {} : { timeoutMs: this.requestTimeoutMs }),
        },
      );
    } catch (error) {
      const e = toEngineError(error);
      throw new EngineError(e.code, `participant node ${node}: ${e.message}`, { node }, { cause: error });
    }
    try {
      return checkNodeCard(value, node);
    } catch (error) {
      const e = toEngineError(error);
      throw new EngineError(e.code, `participant node ${node} sent a bad card: ${e.message}`, { node });
    }
  }

  /** The operator's decision on a proposal received (`keygen ceremony accept` / `decline`). */
  async decide(
    ref: string | undefined,
    decision: { approve: true } | { approve: false; reason: string },
  ): Promise<StartedCeremony> {
    let open: Open;
    try {
      open = this.find(
        ref,
        (o) => o.run === undefined && o.finishedAt === undefined,
        'waiting for a decision',
      );
    } catch (error) {
      if (!isEngineError(error, 'NOT_FOUND') || ref === undefined) throw error;
      // Accepting again what this node accepted already just follows it.
      const decided = this.find(ref, (o) => o.run !== undefined, 'known');
      if (decision.approve && decided.run!.state.decision === 'accepted')
        return {
          session: decided.session,
          tag: decided.tag,
          summary: decided.summary,
          nodes: decided.routes.nodes,
        };
      throw new EngineError('BAD_INPUT', `this node already decided on ceremony ${decided.tag}`);
    }
    this.requireUnlocked();
    await this.exclusive(async () => {
      if (open.run !== undefined) return; // decided meanwhile
      const run = this.newRun(open);
      const { me, passphrase } = this.requireUnlocked();
      // A refresh or reshare: a dealer brings its share of the key's current generation.
      run.join(await priorShareFor(this.store, open.checked, me.card.peerId, passphrase));
      await run.saveJoined();
      run.apply(decision.approve ? { type: 'Approve' } : { type: 'Decline', reason: decision.reason });
      run.decision = decision.approve ? 'approved' : 'declined';
      open.run = run;
      run.apply({ type: 'Tick', nowMs: this.clock.now() });
      for (const message of open.inbox) this.feed(open, message);
      open.inbox = [];
      const progress = await run.finish();
      await this.store.removeRecord(`${ceremonyDir(open.session)}/inbox.json`);
      this.report(open, progress);
    });
    return { session: open.session, tag: open.tag, summary: open.summary, nodes: open.routes.nodes };
  }

  /** Feeds one authenticated message to a decided ceremony; a message it no longer wants is reported, not thrown. */
  private feed(open: Open, message: CeremonyMessage): void {
    open.run!.receive(`${ceremonyFileName(message)}`, message);
  }

  /** Processes the messages that arrived, as one batch: one seal of the state for all of them. */
  private schedule(open: Open): void {
    if (open.batching || this.stopped) return;
    open.batching = true;
    void this.exclusive(async () => {
      const batch = open.incoming.splice(0);
      const run = open.run!;
      const failed = new Map<Incoming, unknown>();
      for (const incoming of batch) {
        try {
          this.feed(open, incoming.message);
        } catch (error) {
          failed.set(incoming, error);
        }
      }
      if (!isFinished(run.state.phase)) run.apply({ type: 'Tick', nowMs: this.clock.now() });
      try {
        this.report(open, await run.finish());
      } catch (error) {
        for (const incoming of batch) incoming.reject(error);
        throw error;
      }
      for (const incoming of batch) {
        const error = failed.get(incoming);
        if (error === undefined) incoming.resolve();
        else incoming.reject(error);
      }
    })
      .catch((error: unknown) => {
        for (const incoming of open.incoming.splice(0)) incoming.reject(error);
        this.log('error', `ceremony ${open.tag}: ${toEngineError(error).message}`);
      })
      .finally(() => {
        open.batching = false;
        if (open.incoming.length > 0) this.schedule(open);
      });
  }

  /** Turns a batch's progress into events (and node log lines at the milestones). */
  private report(open: Open, progress: CeremonyProgress): void {
    if (progress.decision !== null) this.event(open, { event: 'decided', decision: progress.decision });
    const waiting = this.waitingWithNodes(open, progress.waiting);
    for (const r of progress.read)
      if (!open.reported.has(`${r.type}/${r.from}`))
        this.event(open, {
          event: 'received',
          type: r.type,
          from: r.from,
          node: nodeOf(open, r.from),
          waiting,
        });
    for (const i of progress.ignored)
      this.event(open, { event: 'ignored', reason: `${i.file}: ${i.reason}` });
    for (const e of progress.events) {
      if (e.type === 'blamed') this.event(open, { event: 'blamed', blame: e.blame });
      else this.event(open, { event: 'restarted', recipients: e.recipients });
    }
    const phaseKey = `${progress.phase}/${progress.attempt}`;
    if (phaseKey !== open.phaseKey) {
      open.phaseKey = phaseKey;
      open.phaseSince = this.clock.now();
      if (!isFinished(progress.phase)) {
        this.event(open, { event: 'phase', waiting });
        this.log('info', `ceremony ${open.tag}: phase ${progress.phase}, attempt ${progress.attempt}`);
      }
    }
    if (progress.phase === 'complete' && progress.key !== null) {
      open.finishedAt = this.clock.now();
      this.event(open, { event: 'complete', key: progress.key });
      this.log(
        'info',
        `ceremony ${open.tag} complete: key ${progress.key.keyId}, public key ${progress.key.publicKeyHex}`,
      );
    } else if (progress.phase === 'failed' && progress.failure !== null) {
      open.finishedAt = this.clock.now();
      this.event(open, { event: 'failed', failure: progress.failure });
      this.log('error', `ceremony ${open.tag} failed (${progress.failure.code}): ${progress.failure.reason}`);
    }
  }

  private waitingWithNodes(open: Open, waiting: Waiting | null): (Waiting & { nodes: string[] }) | null {
    return waiting === null ? null : { ...waiting, nodes: waiting.missing.map((peer) => nodeOf(open, peer)) };
  }

  private event(
    open: Open,
    fields: Omit<CeremonyNetEvent, 'session' | 'tag' | 'at' | 'phase' | 'attempt'>,
  ): void {
    const event: CeremonyNetEvent = {
      session: open.session,
      tag: open.tag,
      at: this.clock.now(),
      phase: open.run?.state.phase ?? 'proposed',
      attempt: open.run?.state.attempt.number ?? 0,
      ...fields,
    };
    open.history.push(event);
    if (open.history.length > historyMax) open.history.splice(1, open.history.length - historyMax);
    for (const wake of open.listeners) wake();
  }

  // --- delivery ------------------------------------------------------------------------------------

  private enqueue(open: Open, message: CeremonyMessage): void {
    const now = this.clock.now();
    for (const node of Object.values(open.routes.nodes)) {
      if (node === this.network.peerId) continue;
      open.outbox.push({ message, node, attempts: 0, dueAt: now, inFlight: false });
    }
    setImmediate(() => this.pump(open));
  }

  private pump(open: Open): void {
    const now = this.clock.now();
    if (now >= open.checked.proposal.expiresAtMs) {
      open.outbox = open.outbox.filter((d) => d.inFlight);
      return;
    }
    // In order per node: a message goes only when the ones before it to that node have arrived.
    const busy = new Set<string>();
    for (const delivery of open.outbox) {
      if (busy.has(delivery.node)) continue;
      busy.add(delivery.node);
      if (delivery.inFlight || delivery.dueAt > now || this.stopped) continue;
      delivery.inFlight = true;
      delivery.attempts += 1;
      const request: Record<string, unknown> = { type: 'deliver', message: delivery.message };
      if (delivery.message.type === 'Proposal') request['routes'] = this.wireRoutes(open);
      this.network
        .request(delivery.node, ceremonyProtocolName, request, {
          frameBytesMax: limits.messageBytesMax,
          ...(this.requestTimeoutMs === undefined ? {} : { timeoutMs: this.requestTimeoutMs }),
        })
        .then(
          () => {
            open.outbox = open.outbox.filter((d) => d !== delivery);
            this.pump(open);
          },
          (error: unknown) => {
            delivery.inFlight = false;
            const e = toEngineError(error);
            if (['BAD_INPUT', 'BAD_SIGNATURE', 'CORRUPT', 'TOO_LARGE', 'BAD_CERTIFICATE'].includes(e.code)) {
              // Refused for good: trying again would be refused the same way.
              open.outbox = open.outbox.filter((d) => d !== delivery);
              this.event(open, {
                event: 'undelivered',
                type: delivery.message.type,
                node: delivery.node,
                reason: `${e.code}: ${e.message}`,
              });
              this.log(
                'error',
                `ceremony ${open.tag}: node ${delivery.node} refused our ${delivery.message.type} (${e.code}): ${e.message}`,
                delivery.node,
              );
              this.pump(open);
              return;
            }
            delivery.dueAt =
              this.clock.now() + Math.min(retryMaxMs, retryMinMs * 2 ** (delivery.attempts - 1));
          },
        );
    }
  }

  // --- time --------------------------------------------------------------------------------------

  private onTimer(): void {
    if (this.stopped) return;
    const now = this.clock.now();
    for (const open of this.open.values()) {
      this.pump(open);
      if (open.finishedAt !== undefined) {
        if (open.outbox.length === 0 && open.listeners.size === 0 && now - open.finishedAt > 60_000)
          this.open.delete(open.session);
        continue;
      }
      const expired = now >= open.checked.proposal.expiresAtMs;
      if (open.run === undefined) {
        if (expired) void this.expireUndecided(open);
        continue;
      }
      const phase = open.run.state.phase;
      if (open.timing) continue;
      if (expired || (phase !== 'proposed' && now - open.phaseSince >= open.routes.phaseTimeoutMs)) {
        // Acceptances missing at the expiry: NO_QUORUM naming the silent; later phases blame the silent.
        const input =
          expired && phase !== 'proposed'
            ? ({ type: 'Tick', nowMs: now } as const)
            : ({ type: 'Deadline' } as const);
        open.phaseSince = now;
        open.timing = true;
        void this.exclusive(async () => {
          if (open.finishedAt !== undefined || isFinished(open.run!.state.phase)) return;
          open.run!.apply(input);
          this.report(open, await open.run!.finish());
        })
          .catch((error: unknown) =>
            this.log('error', `ceremony ${open.tag}: ${toEngineError(error).message}`),
          )
          .finally(() => (open.timing = false));
      }
    }
  }

  /** A proposal this node never decided on, now expired: recorded as failed here. */
  private async expireUndecided(open: Open): Promise<void> {
    open.finishedAt = this.clock.now();
    const failure: CeremonyFailure = {
      code: 'NO_QUORUM',
      reason: 'this node did not accept the proposal before it expired',
      culprits: [],
    };
    try {
      await this.exclusive(async () => {
        const record = await readCeremonyRecord(this.store, open.session);
        if (record === undefined) return;
        await this.store.writeRecord(`${ceremonyDir(open.session)}/record.json`, {
          ...record,
          phase: 'failed',
          failure,
          updatedAtMs: this.clock.now(),
        } satisfies CeremonyRecord);
        await this.store.removeRecord(`${ceremonyDir(open.session)}/inbox.json`);
      });
    } catch (error) {
      this.log('error', `ceremony ${open.tag}: ${toEngineError(error).message}`);
    }
    this.event(open, { event: 'failed', failure });
  }

  /** Picks up the open networked ceremonies of the keystore (after a restart, or an unlock). */
  private async resume(): Promise<void> {
    const records = await this.exclusive(() => listCeremonies(this.store));
    for (const record of records) {
      if (record.network === undefined || isFinished(record.phase) || this.open.has(record.session)) continue;
      const checked = checkProposal(record.proposal);
      const joined =
        (await this.store.readRecord(`${ceremonyDir(record.session)}/state.json`, 'ceremony state')) !==
        undefined;
      if (!joined) {
        const inbox = ((await this.store.readRecord(
          `${ceremonyDir(record.session)}/inbox.json`,
          'ceremony inbox',
        )) ?? []) as CeremonyMessage[];
        const open = this.track(
          record.proposal,
          checked,
          record.network,
          undefined,
          inbox.map((m) => parseCeremonyMessage(m)),
        );
        this.event(open, {
          event: 'proposed',
          summary: open.summary,
          nodes: record.network.nodes,
          coordinator: record.network.coordinator,
        });
        continue;
      }
      if (this.passphrase === undefined) {
        this.log(
          'info',
          `ceremony ${sessionTag(record.session)} waits for the keystore passphrase: run optimystic keygen ceremony unlock`,
        );
        continue;
      }
      await this.exclusive(async () => {
        const open = this.track(record.proposal, checked, record.network!, undefined, []);
        const run = this.newRun(open);
        await run.open();
        open.run = run;
        open.phaseKey = `${run.state.phase}/${run.state.attempt.number}`;
        this.event(open, { event: 'phase', waiting: null });
        // Send everything again: receivers drop duplicates, and some may have missed them.
        for (const name of await this.store.list(`${ceremonyDir(record.session)}/sent`)) {
          const sent = await this.store.readRecord(
            `${ceremonyDir(record.session)}/sent/${name}`,
            'sent message',
          );
          if (sent !== undefined) this.enqueue(open, parseCeremonyMessage(sent));
        }
        this.log(
          'info',
          `ceremony ${open.tag} resumed (phase ${run.state.phase}, attempt ${run.state.attempt.number})`,
        );
      });
    }
  }

  // --- following ---------------------------------------------------------------------------------

  private find(ref: string | undefined, wanted: (open: Open) => boolean, what: string): Open {
    const matches = [...this.open.values()].filter(
      (o) =>
        wanted(o) &&
        (ref === undefined || ref === '' || o.session.startsWith(ref) || o.tag.startsWith(ref.toLowerCase())),
    );
    if (matches.length === 1) return matches[0]!;
    if (matches.length === 0)
      throw new EngineError(
        'NOT_FOUND',
        ref === undefined
          ? `no ceremony on node ${this.network.peerId} is ${what}`
          : `no ceremony ${ref} on node ${this.network.peerId} is ${what}`,
      );
    throw new EngineError(
      'BAD_INPUT',
      `several ceremonies are ${what} (${matches.map((o) => o.tag).join(', ')}); name one`,
    );
  }

  /** Every event of a ceremony so far, then each new one, ending with `complete` or `failed`. */
  async *follow(ref: string): AsyncGenerator<CeremonyNetEvent, void, undefined> {
    let open: Open | undefined;
    try {
      open = this.find(ref, () => true, 'known');
    } catch (error) {
      if (!isEngineError(error, 'NOT_FOUND')) throw error;
    }
    if (open === undefined) {
      yield await this.finishedEvent(ref);
      return;
    }
    let index = 0;
    let wake: (() => void) | undefined;
    const listener = (): void => wake?.();
    open.listeners.add(listener);
    try {
      for (;;) {
        while (index < open.history.length) {
          const event = open.history[index++]!;
          yield event;
          if (event.event === 'complete' || event.event === 'failed') return;
        }
        if (this.stopped) throw new EngineError('UNAVAILABLE', 'the node stopped');
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    } finally {
      open.listeners.delete(listener);
    }
  }

  /** A ceremony no longer followed in memory: its outcome from the record. */
  private async finishedEvent(ref: string): Promise<CeremonyNetEvent> {
    const records = (await listCeremonies(this.store)).filter(
      (r) =>
        r.network !== undefined &&
        (r.session.startsWith(ref) || sessionTag(r.session).startsWith(ref.toLowerCase())),
    );
    if (records.length !== 1)
      throw new EngineError(
        records.length === 0 ? 'NOT_FOUND' : 'BAD_INPUT',
        records.length === 0
          ? `no networked ceremony ${ref} on node ${this.network.peerId}`
          : `${ref} names several ceremonies; give more of it`,
      );
    const r = records[0]!;
    const base = {
      session: r.session,
      tag: sessionTag(r.session),
      at: r.updatedAtMs,
      phase: r.phase,
      attempt: r.attempt,
    };
    if (r.phase === 'complete' && r.keyId !== null)
      return { ...base, event: 'complete', key: summarizeKey(await this.store.readKey(r.keyId)) };
    if (r.phase === 'failed' && r.failure !== null) return { ...base, event: 'failed', failure: r.failure };
    throw new EngineError(
      'UNAVAILABLE',
      `ceremony ${base.tag} is not running on this node now (it waits for the passphrase?)`,
    );
  }
}

function describe(summary: CeremonySummary): string {
  return `${summary.suite}, ${summary.threshold} of ${summary.recipients}, for ${summary.purpose}${summary.label === '' ? '' : `, "${summary.label}"`}`;
}

/** Nodes are known by Ed25519 peer ids (12D3KooW…): checked without loading libp2p's peer-id module. */
function checkPeerId(node: string, what: string): void {
  if (ed25519PublicKeyOfPeerId(node) === undefined)
    throw new EngineError(
      'BAD_INPUT',
      `${what} ${JSON.stringify(node)} is not a peer id (a node's is an Ed25519 one, 12D3KooW…)`,
    );
}

function checkPhaseTimeout(value: number | undefined): number {
  const phaseTimeoutMs = value ?? defaultPhaseTimeoutMs;
  if (phaseTimeoutMs < phaseTimeoutMsMin || phaseTimeoutMs > phaseTimeoutMsMax)
    throw new EngineError(
      'BAD_INPUT',
      `the phase timeout must lie between ${phaseTimeoutMsMin / 1000}s and ${phaseTimeoutMsMax / 3_600_000}h`,
    );
  return phaseTimeoutMs;
}

/** Where a node keeps the signing files of a key that travel between nodes (`keygen sign --transport network`). */
export function signExchangeDir(keystoreRoot: string, keyId: string): string {
  return join(keystoreRoot, 'exchange', keyId);
}
