import { systemClock, type Clock } from '../base/clock.js';
import { EngineError, isEngineError } from '../base/errors.js';
import { collectionHeaderId, newTrxId, newBlockId, type BlockId } from '../base/ids.js';
import { limits } from '../base/limits.js';
import { randomBytes } from 'node:crypto';
import type { Rng } from '../base/rng.js';
import type { Json } from '../base/codec.js';
import { BTree } from '../collections/btree/btree.js';
import { blockTypes, type Block, type BlockOp } from '../storage/block.js';
import type { BlockAccess } from '../collections/block-access.js';
import {
  isCollectionHeader,
  isLogBlock,
  newLogBlock,
  type CollectionHeader,
  type LogBlock,
  type LogEntry,
} from '../collections/log/log-block.js';
import type { BlockRevision, BlockState, PendingTransform } from '../storage/block-store.js';
import type { RawOp, RawStore } from '../storage/raw-store.js';
import { VersionedBlockStore } from '../storage/versioned-block-store.js';
import { Ed25519Identity, SoloCertifier, type Certifier } from '../transactions/certifier.js';
import { verifyNetworkCertificate } from '../cluster/certifier.js';
import type { RepoClient, TailClient } from '../transactions/protocol.js';
import { Coordinator, type CoordinatorInit } from '../transactions/coordinator.js';
import { LocalRepo } from '../transactions/local-repo.js';
import { LogTail } from '../transactions/log-tail.js';
import { isCollectionName } from '../transactions/tx-parse.js';
import type {
  ActionResult,
  TreeKey,
  TransactOptions,
  TxOutcome,
  TxRequest,
} from '../transactions/tx-types.js';
import type {
  BlockHolder,
  BlockVerification,
  RevisionVerification,
  CollectionInfo,
  CollectionKind,
  Database,
  GetResult,
  ReadOptions,
  ScanOptions,
} from './database-api.js';

export interface SoloNodeComponents {
  readonly raw: RawStore;
  readonly clock?: Clock;
  readonly rng?: Rng;
}

export interface SoloNodeInit {
  /**
   * Network name bound into every certificate. Absent: the one the store recorded at its first open
   * (`default` for a new store); present and different from it: CONFIG_INVALID.
   */
  readonly network?: string;
  /** The data directory, as its errors name it. */
  readonly dataDir?: string;
  /** Coordinator settings (tests use the afterExecute seam to interleave transactions). */
  readonly coordinator?: CoordinatorInit;
  /**
   * A running node in a network: replaces the in-process repo and tail with clients that reach the
   * blocks' clusters (the local store stays this node's share of the blocks).
   */
  readonly wiring?: (parts: WiringParts) => NodeWiring;
}

/** What a networked wiring gets to build on. */
export interface WiringParts {
  readonly identity: Ed25519Identity;
  readonly blocks: VersionedBlockStore;
  readonly clock: Clock;
  readonly rng: Rng;
  /** Collection names this node has recorded. */
  readonly catalog: () => Promise<string[]>;
  /** The id this process's coordinator names itself by (CoordinatorInit.coordinatorId). */
  readonly coordinatorId: string;
}

/** The commit path and block access of a networked node. */
export interface NodeWiring {
  readonly repo: RepoClient;
  readonly tails: TailClient;
  readonly certifier: Certifier;
  /** Membership to record in a new log block. */
  membersFor(blockId: BlockId): readonly string[];
  readonly reader: BlockReader;
  /** Every collection name known in the network. */
  catalog(): Promise<string[]>;
  /** The members of a block's cluster and the revision each holds. */
  holders(id: BlockId): Promise<BlockHolder[]>;
}

/** Block reads (`block get|history|pending|verify`). */
export interface BlockReader {
  latest(id: BlockId): Promise<BlockState | undefined>;
  at(id: BlockId, point: { readonly rev: number }): Promise<BlockState | undefined>;
  history(id: BlockId): Promise<BlockRevision[]>;
  pendingOf(id: BlockId): Promise<PendingTransform[]>;
}

const identityKey = 'i/identity';
/** The network whose database the store holds (its certificates name it), recorded at the first open. */
const networkKey = 'i/network';
/**
 * Present once no collection's log names this node by its bare public key (see SoloNode.open): set
 * for a new store, and by the first networked open of a store an older version made.
 */
const peerIdGroupsKey = 'i/groups-by-peer-id';
const catalogPrefix = 'c/';

/**
 * A node with a cluster of one: the same repo, log tail and coordinator objects the network node
 * drives, wired in-process over one store. This is the embedded default every command falls back to.
 */
export class SoloNode implements Database {
  /** The raw-store key holding the node's identity (PKCS#8): the libp2p identity of a running node too. */
  static readonly identityKey = identityKey;
  readonly identity: Ed25519Identity;
  readonly blocks: VersionedBlockStore;
  readonly tails: TailClient;
  readonly repo: LocalRepo;
  /**
   * Collections whose logs named this node by its bare key and were handed to a peer-id group when
   * this (networked) open swept an older store.
   */
  handedOverAtOpen: readonly string[] = [];
  /** The in-process tail (`tails` unless a network wiring replaced it). */
  private readonly soloTail: LogTail;
  private readonly coordinator: Coordinator;
  private readonly raw: RawStore;
  private readonly clock: Clock;
  /** A networked node's last count of the collections, and the count under way (collectionCount). */
  private counted?: { readonly at: number; readonly count: number };
  private counting: Promise<number> | undefined;
  private readonly certifier: Certifier;
  private readonly wiring: NodeWiring | undefined;
  private readonly reader: BlockReader;
  private readonly rng: Rng;
  private closed = false;

  private constructor(components: SoloNodeComponents, identity: Ed25519Identity, init: SoloNodeInit) {
    this.raw = components.raw;
    this.clock = components.clock ?? systemClock;
    this.rng = components.rng ?? new PooledRng();
    this.identity = identity;
    // The node is a member by its peer id, as running nodes know it: a collection made here and later
    // served by `node start` has a tail group the network can reach. Stores made before recorded the
    // bare public key (`identity.id`); such a log block still certifies under that id, and hands over
    // to a successor naming the peer id at its next append (or when a node starts on the store).
    const members = [identity.peerId];
    const network = init.network ?? 'default';
    // A network node's store opened alone (read-only, `--offline`) holds certificates its groups
    // decided by consensus: they verify here too (the network check covers a solo node's own).
    const certifier = new SoloCertifier(identity, network, (certificate, group) =>
      verifyNetworkCertificate(certificate, group, network),
    );
    this.certifier = certifier;
    this.blocks = new VersionedBlockStore(this.raw);
    this.repo = new LocalRepo(
      { blocks: this.blocks, certifier },
      { members, formerMembers: [[identity.id]] },
    );
    this.soloTail = new LogTail(
      { blocks: this.blocks, repo: this.repo, certifier, clock: this.clock, rng: this.rng },
      {
        members,
        resolveInDoubtOnLoad: true,
        shouldSeal: (tail) => tail.members.length === 1 && tail.members[0] === identity.id,
      },
    );
    this.tails = this.soloTail;
    // Networked, the coordinator names itself and this incarnation to the tails, which resolve what
    // an earlier incarnation left prepared (a solo node's tail resolves whatever it finds prepared
    // when it loads: resolveInDoubtOnLoad). The incarnation is the start time and process id: two
    // starts of one node never share both, and nothing is drawn from the node's random source (a
    // draw would move every id drawn after it, and with them a seeded simulation's schedule).
    let coordinatorId: string | undefined;
    if (init.wiring !== undefined) {
      coordinatorId = `${identity.peerId}:${this.clock.now().toString(36)}.${process.pid.toString(36)}`;
      this.wiring = init.wiring({
        identity,
        blocks: this.blocks,
        clock: this.clock,
        rng: this.rng,
        catalog: () => this.localCatalog(),
        coordinatorId,
      });
    }
    if (this.wiring !== undefined) {
      this.tails = this.wiring.tails;
      this.certifier = this.wiring.certifier;
    }
    this.reader = this.wiring?.reader ?? this.blocks;
    this.coordinator = new Coordinator(
      { repo: this.wiring?.repo ?? this.repo, tails: this.tails, clock: this.clock, rng: this.rng },
      { ...(coordinatorId !== undefined ? { coordinatorId } : {}), ...(init.coordinator ?? {}) },
    );
  }

  /** Opens a solo node on an opened RawStore (its identity is created on first open). */
  static async open(components: SoloNodeComponents, init: SoloNodeInit = {}): Promise<SoloNode> {
    const [stored, recordedNetwork, groupsByPeerId] = await components.raw.getMany([
      identityKey,
      networkKey,
      peerIdGroupsKey,
    ]);
    // A data directory holds the database of one network: its certificates name the network, and
    // its members are that network's. Opened for another, it would mix the two.
    if (init.network !== undefined && recordedNetwork !== undefined && recordedNetwork !== init.network)
      throw new EngineError(
        'CONFIG_INVALID',
        `${init.dataDir ?? 'this data directory'} holds the database of network ${JSON.stringify(recordedNetwork)}, not ${JSON.stringify(init.network)}: run it with --network ${recordedNetwork} (or OPTIMYSTIC_NETWORK), or give network ${JSON.stringify(init.network)} a data directory of its own`,
      );
    const network = init.network ?? recordedNetwork ?? 'default';
    let identity: Ed25519Identity;
    const record: RawOp[] = [];
    if (stored === undefined) {
      identity = Ed25519Identity.generate();
      record.push({ type: 'put', key: identityKey, value: identity.toPkcs8() });
    } else {
      identity = Ed25519Identity.fromPkcs8(stored);
    }
    if (recordedNetwork === undefined) record.push({ type: 'put', key: networkKey, value: network });
    // A new store has no collection yet: none of its logs can name the bare key.
    if (stored === undefined) record.push({ type: 'put', key: peerIdGroupsKey, value: '1' });
    if (record.length > 0) {
      await components.raw.batch(record);
      await components.raw.sync();
    }
    const handedOver: string[] = [];
    if (init.wiring !== undefined && stored !== undefined && groupsByPeerId === undefined) {
      // A store an older version made embedded: the networked tail cannot decide in a group that names
      // this node by its bare key (its votes carry its peer id, and no other node knows the bare key).
      // Each such log hands over to a group naming the peer id first, decided alone as before.
      const { wiring: _networked, ...solo } = init;
      const plain = new SoloNode(components, identity, { ...solo, network });
      for (const name of await plain.localCatalog())
        if (await plain.soloTail.reconfigure(name)) handedOver.push(name);
      await plain.blocks.sync();
      await components.raw.batch([{ type: 'put', key: peerIdGroupsKey, value: '1' }]);
      await components.raw.sync();
    }
    const node = new SoloNode(components, identity, { ...init, network });
    node.handedOverAtOpen = handedOver;
    // A networked node's expired pends are resolved by their tails once the network is up.
    if (init.wiring === undefined) await node.sweepExpired();
    return node;
  }

  async createCollection(name: string, kind: CollectionKind): Promise<CollectionInfo> {
    if (!isCollectionName(name)) {
      throw new EngineError(
        'BAD_INPUT',
        `invalid collection name ${JSON.stringify(name)}: use 1-128 letters, digits, '.', '_' or '-'`,
      );
    }
    if (kind !== 'tree' && kind !== 'diary')
      throw new EngineError('BAD_INPUT', `collection type must be tree or diary, not ${String(kind)}`);
    const headerId = collectionHeaderId(name);
    const capture = new CaptureAccess(this.rng);
    const rootId = BTree.create(capture, name);
    const root = capture.inserted[0]!;
    const logId = newBlockId(this.rng);
    const header: CollectionHeader = {
      header: { id: headerId, type: blockTypes.collectionHeader, collection: name },
      name,
      kind,
      root: rootId,
      logHead: logId,
      logTail: logId,
      createdAt: this.clock.now(),
    };
    const members = this.wiring?.membersFor(logId) ?? [this.identity.peerId];
    const log = newLogBlock(logId, name, null, 1, [...members].sort());
    await this.tails.create({ trxId: newTrxId(this.rng), header, root, log });
    await this.raw.batch([{ type: 'put', key: catalogPrefix + name, value: kind }]);
    await this.raw.sync();
    return this.collectionInfo(name);
  }

  async listCollections(): Promise<CollectionInfo[]> {
    const names = this.wiring !== undefined ? await this.wiring.catalog() : await this.localCatalog();
    return Promise.all(names.map((name) => this.collectionInfo(name)));
  }

  /** Collection names recorded in this node's catalog. */
  private async localCatalog(): Promise<string[]> {
    const names: string[] = [];
    for await (const [key] of this.raw.iterate({ gte: catalogPrefix, lt: catalogPrefix + '\uffff' })) {
      names.push(key.slice(catalogPrefix.length));
    }
    return names;
  }

  /**
   * How many collections exist: as `collection list` counts them (cheaper than listing them: the
   * names only). A networked node counts the catalogs of every member it reaches. `maxAgeMs`: a count
   * that recent will do (the status a node publishes every second passes collectionCountMaxAgeMs,
   * as counting asks every member); meanwhile a new count is under way and the previous one stands,
   * so a slow member never holds that status up. Counting only this node's own catalog showed 0 on a
   * node that held and served collections other nodes had created.
   */
  async collectionCount(maxAgeMs = 0): Promise<number> {
    const wiring = this.wiring;
    if (wiring === undefined) return (await this.localCatalog()).length;
    const counted = this.counted;
    if (counted !== undefined && maxAgeMs > 0 && this.clock.now() - counted.at < maxAgeMs)
      return counted.count;
    const count = async (): Promise<number> => {
      const names = await wiring.catalog();
      this.counted = { at: this.clock.now(), count: names.length };
      return names.length;
    };
    if (maxAgeMs === 0) return count();
    this.counting ??= count().finally(() => (this.counting = undefined));
    if (counted === undefined) return this.counting;
    this.counting.catch(() => undefined);
    return counted.count;
  }

  async collectionInfo(name: string): Promise<CollectionInfo> {
    const view = await this.tails.view(name);
    return {
      name,
      kind: view.header.kind,
      id: view.header.header.id,
      rev: view.stableLsn,
      root: view.header.root,
      tail: view.tailId,
      uncheckpointed: view.uncheckpointed.length,
    };
  }

  async get(name: string, key: TreeKey, options: { readonly at?: number } = {}): Promise<GetResult> {
    const result = await this.readOnly({ actions: [{ collection: name, op: 'get', key }] }, name, options.at);
    const got = result.results[0] as Extract<ActionResult, { op: 'get' }>;
    return { key, found: got.found, value: got.value, rev: result.rev };
  }

  async *scan(name: string, options: ScanOptions = {}): AsyncIterable<{ key: TreeKey; value: Json }> {
    const at = options.at ?? (await this.collectionInfo(name)).rev;
    let remaining = options.limit ?? Number.POSITIVE_INFINITY;
    let bound: string | undefined = options.reverse === true ? options.to : options.from;
    let skip: string | undefined;
    while (remaining > 0) {
      const page = Math.min(remaining + (skip !== undefined ? 1 : 0), limits.scanPageItemsMax);
      const range =
        options.reverse === true
          ? {
              ...(bound !== undefined ? { to: bound } : {}),
              ...(options.from !== undefined ? { from: options.from } : {}),
              reverse: true,
            }
          : {
              ...(bound !== undefined ? { from: bound } : {}),
              ...(options.to !== undefined ? { to: options.to } : {}),
            };
      const result = await this.readOnly(
        { actions: [{ collection: name, op: 'scan', ...range, limit: page }] },
        name,
        at,
      );
      const entries = (result.results[0] as Extract<ActionResult, { op: 'scan' }>).entries;
      for (const entry of entries) {
        if (entry.key === skip) continue;
        yield entry;
        if (--remaining <= 0) return;
      }
      if (entries.length < page) return;
      bound = entries.at(-1)!.key;
      skip = bound;
    }
  }

  async *read(name: string, options: ReadOptions = {}): AsyncIterable<{ index: number; value: Json }> {
    const at = options.at ?? (await this.collectionInfo(name)).rev;
    let remaining = options.limit ?? Number.POSITIVE_INFINITY;
    let from = options.from;
    const reverse = options.reverse === true;
    while (remaining > 0) {
      if (from !== undefined && from < 0) return;
      const page = Math.min(remaining, limits.scanPageItemsMax);
      const result = await this.readOnly(
        {
          actions: [
            { collection: name, op: 'read', ...(from !== undefined ? { from } : {}), reverse, limit: page },
          ],
        },
        name,
        at,
      );
      const entries = (result.results[0] as Extract<ActionResult, { op: 'read' }>).entries;
      for (const entry of entries) {
        yield entry;
        remaining--;
      }
      if (entries.length < page) return;
      from = entries.at(-1)!.index + (reverse ? -1 : 1);
    }
  }

  transact(request: TxRequest, options: TransactOptions = {}): Promise<TxOutcome> {
    if (this.closed)
      return Promise.resolve({ ok: false, error: { code: 'UNAVAILABLE', message: 'database is closed' } });
    return this.coordinator.run(request, options.certificates === true ? { certificates: true } : {});
  }

  async block(id: BlockId, options: { readonly rev?: number } = {}): Promise<BlockState> {
    const state =
      options.rev === undefined
        ? await this.reader.latest(id)
        : await this.reader.at(id, { rev: options.rev });
    if (state === undefined) {
      throw new EngineError(
        'NOT_FOUND',
        options.rev === undefined
          ? `block ${id} does not exist`
          : `block ${id} has no revision ${options.rev}`,
      );
    }
    return state;
  }

  async blockHistory(id: BlockId): Promise<BlockRevision[]> {
    const history = await this.reader.history(id);
    if (history.length === 0) throw new EngineError('NOT_FOUND', `block ${id} does not exist`);
    return history;
  }

  async blockHolders(id: BlockId): Promise<BlockHolder[]> {
    if (this.wiring !== undefined) return this.wiring.holders(id);
    return [{ peer: this.identity.peerId, rev: (await this.blocks.latest(id))?.rev ?? null }];
  }

  blockPending(id: BlockId): Promise<PendingTransform[]> {
    return this.reader.pendingOf(id);
  }

  async verifyBlock(id: BlockId): Promise<BlockVerification> {
    const history = await this.blockHistory(id);
    const first = history[0]!;
    const latest = await this.reader.latest(id);
    const header =
      latest?.block?.header ?? (first.transform.kind === 'insert' ? first.transform.block.header : undefined);
    if (header === undefined) throw new EngineError('NOT_FOUND', `block ${id} has no readable header`);
    const minLsn = Math.min(...history.map((revision) => revision.lsn));
    const entries = await this.logEntriesFrom(header.collection, minLsn);
    const revisions = history.map((revision): RevisionVerification => {
      const base = { rev: revision.rev, lsn: revision.lsn, trxId: revision.trxId };
      // A decision on a prepared entry is a revision of the log block tagged "<trx>:<decision>".
      const trxId = header.type === blockTypes.logBlock ? revision.trxId.split(':')[0]! : revision.trxId;
      const found = entries.get(trxId);
      if (found === undefined) {
        return {
          ...base,
          status: 'unverifiable',
          detail: `no log entry for transaction ${trxId} is held here`,
        };
      }
      const { entry, members } = found;
      const certificate = entry.certificate;
      const matches =
        certificate.trxId === entry.trxId &&
        certificate.lsn === entry.lsn &&
        certificate.collection === header.collection &&
        certificate.decision === entry.status;
      if (!matches || !this.certifier.verify(certificate, members)) {
        return {
          ...base,
          status: 'invalid',
          detail: `the certificate of log entry ${entry.lsn} does not verify`,
        };
      }
      const signers = certificate.signatures.map((signature) => signature.member);
      if (header.type === blockTypes.logBlock) return { ...base, status: 'verified', signers };
      if (entry.status !== 'committed' || entry.lsn !== revision.lsn) {
        return {
          ...base,
          status: 'invalid',
          detail: `log entry ${entry.lsn} is ${entry.status}, not a commit at ${revision.lsn}`,
        };
      }
      const tailWrite = header.type === blockTypes.collectionHeader;
      if (!tailWrite && !entry.writes.includes(id)) {
        return { ...base, status: 'invalid', detail: `log entry ${entry.lsn} does not name this block` };
      }
      return { ...base, status: 'verified', signers };
    });
    return {
      id,
      collection: header.collection,
      type: header.type,
      verified: revisions.every((revision) => revision.status === 'verified'),
      revisions,
    };
  }

  /** Entries of a collection's log with lsn ≥ minLsn, by transaction, with their block's membership. */
  private async logEntriesFrom(
    collection: string,
    minLsn: number,
  ): Promise<Map<string, { entry: LogEntry; members: readonly string[] }>> {
    const out = new Map<string, { entry: LogEntry; members: readonly string[] }>();
    const reader = this.reader;
    const headerState = await reader.latest(collectionHeaderId(collection));
    if (!isCollectionHeader(headerState?.block)) return out;
    let cursor = (await reader.latest(headerState.block.logTail))?.block;
    while (isLogBlock(cursor) && cursor.successor !== null)
      cursor = (await reader.latest(cursor.successor))?.block;
    // Newest first, back to the block holding minLsn, and the block before that: the entry that sealed
    // a block opens its successor, but the predecessor's group decided it (LogTail.append), so that
    // entry is checked against that group.
    const chain: LogBlock[] = [];
    let before: LogBlock | undefined;
    while (isLogBlock(cursor)) {
      chain.push(cursor);
      if (cursor.prior === null) break;
      const prior = (await reader.latest(cursor.prior))?.block;
      if (cursor.firstLsn <= minLsn) {
        if (isLogBlock(prior)) before = prior;
        break;
      }
      cursor = prior;
    }
    chain.forEach((block, i) => {
      const decidedBefore = chain[i + 1] ?? before;
      for (const entry of block.entries) {
        const opening = decidedBefore !== undefined && entry.lsn === block.firstLsn;
        out.set(entry.trxId, { entry, members: opening ? decidedBefore.members : block.members });
      }
    });
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.raw.close();
  }

  /** Read-only transaction on one collection, optionally at a past revision; throws on failure. */
  private async readOnly(
    request: TxRequest,
    name: string,
    at: number | undefined,
  ): Promise<{ results: readonly ActionResult[]; rev: number }> {
    const atMap = at === undefined ? undefined : new Map([[name, at]]);
    // The revision of the snapshot the transaction read (asking the tail again afterwards cost a
    // round trip to its leader per read, and could name a later revision than the one read).
    let read: number | undefined;
    const outcome = await this.coordinator.run(request, {
      ...(atMap === undefined ? {} : { at: atMap }),
      onRead: (snapshots) => (read = snapshots.get(name)),
    });
    if (!outcome.ok) throw new EngineError(outcome.error.code, outcome.error.message);
    return { results: outcome.results, rev: at ?? read ?? (await this.tails.view(name)).stableLsn };
  }

  /**
   * Pends left behind by a process that died: cancelled unless their transaction committed (then the
   * tail's recovery promotes them) or is still undecided.
   */
  async sweepExpired(): Promise<void> {
    const expired = await this.blocks.expired(this.clock.now(), limits.sweepPendsMax);
    for (const pend of expired) {
      // A tail that cannot answer now may hold a commit: ask again at the next sweep rather than guess.
      const outcome = await this.tails
        .outcomeOf(pend.collection, pend.trxId)
        .catch((error: unknown) => (isEngineError(error, 'NOT_FOUND') ? ('unknown' as const) : undefined));
      if (outcome === undefined) continue;
      if (outcome === 'aborted' || outcome === 'unknown')
        await this.blocks.cancel(pend.trxId, [pend.blockId]);
      else if (outcome === 'committed' || outcome === 'prepared') await this.tails.view(pend.collection);
    }
    if (expired.length > 0) await this.blocks.sync();
  }
}

/** Collects the blocks an algorithm inserts when building a new structure outside a transaction. */
class CaptureAccess implements BlockAccess {
  readonly inserted: Block[] = [];
  constructor(private readonly rng: Rng) {}
  get(id: BlockId): Promise<Block> {
    return Promise.reject(new EngineError('NOT_FOUND', `block ${id} does not exist`));
  }
  tryGet(): Promise<Block | undefined> {
    return Promise.resolve(undefined);
  }
  insert(block: Block): void {
    this.inserted.push(block);
  }
  update(_id: BlockId, _ops: readonly BlockOp[]): void {
    throw new EngineError('INTERNAL', 'a new structure updates nothing');
  }
  delete(): void {
    throw new EngineError('INTERNAL', 'a new structure deletes nothing');
  }
  newId(): BlockId {
    return newBlockId(this.rng);
  }
}

/**
 * The system's CSPRNG drawn from a pool: one randomBytes call per poolBytes instead of one per
 * transaction or block id (each call is a getrandom system call, about 10 us here). The node uses
 * randomness for ids and back-off only; no key material comes from it.
 */
class PooledRng implements Rng {
  private static readonly poolBytes = 4096;
  private pool: Buffer = Buffer.alloc(0);
  private at = 0;

  bytes(length: number): Uint8Array {
    if (length > PooledRng.poolBytes) return new Uint8Array(randomBytes(length));
    if (this.at + length > this.pool.length) {
      this.pool = randomBytes(PooledRng.poolBytes);
      this.at = 0;
    }
    const out = new Uint8Array(this.pool.subarray(this.at, this.at + length));
    this.at += length;
    return out;
  }

  float(): number {
    const four = this.bytes(4);
    return (((four[0]! << 24) | (four[1]! << 16) | (four[2]! << 8) | four[3]!) >>> 0) / 0x1_0000_0000;
  }

  int(maxExclusive: number): number {
    return Math.floor(this.float() * maxExclusive);
  }
}
