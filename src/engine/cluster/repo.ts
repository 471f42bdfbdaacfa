/**
 * The `repo` protocol and its client: block holders serve get / pend / cancel / promote / apply of
 * the blocks they hold; the ClusterRepoClient sends each request to the cluster of every block it
 * names and needs a majority of each cluster to answer. Reads take the newest state a majority
 * returns, so a holder that missed a promotion never hides a commit; a member that does not hold a
 * block (it joined the cluster and was not handed the block yet) is no vote for its absence.
 */
import type { Clash, Marks } from './database-marks.js';
import { createHash } from 'node:crypto';
import type { Clock } from '../base/clock.js';
import type { PeerClocks } from './peer-clocks.js';
import { canonicalJson } from '../base/codec.js';
import { EngineError, isEngineError, toEngineError, type ErrorCode } from '../base/errors.js';
import { isBlockId, type BlockId, type TrxId } from '../base/ids.js';
import { limits } from '../base/limits.js';
import { quorumOf } from '../consensus/values.js';
import type { NetworkNode } from '../network/index.js';
import { schema } from '../network/index.js';
import type {
  BlockRevision,
  BlockState,
  BlockStore,
  DirectRevision,
  PendingTransform,
  PendOutcome,
} from '../storage/block-store.js';
import type { LocalRepo } from '../transactions/local-repo.js';
import type {
  GetBlockRequest,
  PendOptions,
  PendResult,
  PromoteRequest,
  ReadToVerify,
  RepoClient,
} from '../transactions/protocol.js';
import { staleRead } from '../transactions/protocol.js';
import type { DeferredSyncs } from './deferred-syncs.js';
import type { MembershipCheck } from './certifier.js';
import type { Placement } from './placement.js';
import { consensusWireItemsMax } from './consensus-wire.js';

export const repoProtocolName = 'repo';

/** Revisions per replication message (a message over the frame bound goes in halves: sendChunk). */
const replicationChunkRevisions = 128;
/** Background repairs running at once. */
const repairsInFlightMax = 64;
/** Blocks remembered as stale here at most (a bound on memory: forgetting one costs a retried transaction). */
const suspectBlocksMax = 10_000;
/** Rounds of a write (fanOut) while its answers name members this node had not met. */
const fanOutRoundsMax = 3;
/** Block clusters remembered by a repo client (a few hundred bytes each; cleared when full). */
const clustersCachedMax = 4096;

const { messageUnion, object, optional, json, string, integer, array, boolean } = schema;

const blockIdField = string({ charsMax: 64 });
const itemsMax = limits.consensusMembersMax * 64;
/**
 * Read blocks checked with one pend request (a few dozen bytes each); a transaction that read more
 * blocks of one holder's has the rest checked by reads of their own (verifyReads).
 */
const pendChecksMax = 256;
/** Members one hello or answer lists at most (peer ids are ~52 characters: ~50 KiB). */
export const membersListedMax = 1024;

const memberField = string({ charsMax: 128 });
/** The asker's member digest (Placement.digest): an answer carries the holder's members when it differs. */
const digestField = { mv: optional(string({ charsMax: 32 })) };

export const validateRepoRequest = messageUnion({
  /** The asker's members: the answer lists the holder's, and each learns those it did not know. */
  hello: object({
    members: optional(array(memberField, { itemsMax: membersListedMax })),
    // The sender's coordinator name, `<peer id>:<incarnation>` (see LogTail.resolveRestarted).
    coordinator: optional(string({ charsMax: 256 })),
    // The sender's collections by creating transaction (DatabaseMarks): a peer of another database is
    // not admitted.
    collections: optional(json()),
    // The sender holds no block (a peer then has nothing to check there).
    empty: optional(boolean()),
    // The sender's clock when it sent this (PeerClocks; the answer carries the receiver's).
    now: optional(integer({ min: 0 })),
  }),
  get: object({
    ...digestField,
    blockId: blockIdField,
    atLsn: optional(integer({ min: 0 })),
    rev: optional(integer({ min: 1 })),
    reinforce: optional(json()),
    /** The asker holds this revision already: answer only the revision unless the block is newer. */
    newerThan: optional(integer({ min: 0 })),
    /** The digest of the asker's copy at `newerThan` (contentDigest): a holder whose copy there differs answers it whole. */
    digest: optional(string({ charsMax: 128 })),
  }),
  pend: object({
    ...digestField,
    items: array(json(), { itemsMax }),
    /** The asker's clock when it sent this: the items' expiry is moved into the holder's (PeerClocks). */
    now: optional(integer({ min: 0 })),
    /** Blocks the asker read and does not pend: the answer carries this holder's revision of each. */
    check: optional(array(blockIdField, { itemsMax: pendChecksMax })),
  }),
  cancel: object({
    ...digestField,
    trxId: string({ charsMax: 128 }),
    blockIds: array(blockIdField, { itemsMax }),
  }),
  promote: object({ ...digestField, request: json() }),
  apply: object({
    ...digestField,
    revisions: array(json(), { itemsMax }),
    /** Committed transactions to promote here once the revisions are stored (in log order). */
    promote: optional(array(json(), { itemsMax })),
    /** Consensus `Decided` messages of the log's group riding along (DecisionCarrier). */
    consensus: optional(array(json(), { itemsMax: consensusWireItemsMax })),
    /** The revisions the writer built on (RevisionBase): a holder whose copy differs there refuses. */
    bases: optional(array(json(), { itemsMax })),
  }),
  history: object({ ...digestField, blockId: blockIdField, fromRev: optional(integer({ min: 1 })) }),
  pending: object({ ...digestField, blockId: blockIdField }),
  catalog: object({ ...digestField }),
  /** A peer's collections by creating transaction: which of them this node holds created otherwise. */
  marks: object({ collections: json() }),
});

export type RepoRequest = ReturnType<typeof validateRepoRequest>;

/** A `get` asked of a peer outside the block's cluster that does not hold it: where to ask instead. */
export interface RepoRedirect {
  readonly redirect: readonly string[];
}

/** A `get` answer to an asker that holds the block at `newerThan` or later: the holder's revision only. */
export interface NotNewer {
  readonly notNewer: number;
}

type GetAnswer = BlockState | RepoRedirect | NotNewer | null;

/**
 * What a copy of a block holds at its revision. Revisions are numbered per holder: a write that
 * reached a minority and lost the compare-and-set elsewhere, or a decision written again by another
 * tail with other content under the same tag (a seal names a successor drawn at random), leaves
 * copies that differ at one revision number, so reads compare content, not numbers alone.
 */
export function contentDigest(state: BlockState): string {
  const known = contentDigests.get(state);
  if (known !== undefined && known.block === state.block && known.rev === state.rev) return known.digest;
  const digest = createHash('sha256')
    .update(state.block === undefined ? 'deleted' : canonicalJson(state.block))
    .digest('base64url');
  contentDigests.set(state, { block: state.block, rev: state.rev, digest });
  return digest;
}

/**
 * contentDigest of states met lately (a block store hands out one state object per revision it has
 * cached, so a hot block is hashed once per revision, not on every read), kept with what it covered.
 */
const contentDigests = new WeakMap<BlockState, { block: unknown; rev: number; digest: string }>();

/** Whether a read's answer (a state, or the revision a `newerThan` answer names) holds the block. */
function holds(value: BlockState | null | number): boolean {
  return typeof value === 'number' ? value > 0 : value !== null;
}

/** A block state from a `get` answer (a redirect means the peer does not hold it). */
function stateOf(answer: BlockState | RepoRedirect | null): BlockState | null {
  return answer === null || 'redirect' in answer ? null : answer;
}

/**
 * Consensus decisions a log write carries to the members that record it (the consensus edge): the
 * writer takes what its edge still holds for a member, the member hands what arrives to its edge once
 * the revisions are stored, so a decision costs no request of its own.
 */
export interface DecisionCarrier {
  takeDecided(peer: string): unknown[];
  deliver(from: string, items: readonly unknown[]): Promise<void>;
}

export interface RepoServerParts {
  /** Records a member seen for the first time. */
  readonly remember: (peer: string) => Promise<void>;
  /** Certificates' named members must be their log block's recorded group. */
  readonly membership: MembershipCheck;
  readonly repo: LocalRepo;
  readonly blocks: BlockStore;
  readonly placement: Placement;
  /** Collection names this node knows of. */
  readonly catalog: () => Promise<string[]>;
  /** This node's clock and what it knows of its peers': the deadlines other nodes send are moved into it. */
  readonly clock?: Clock;
  readonly clocks?: PeerClocks;
  /** Where decisions carried by a log write go (absent: they are ignored). */
  readonly decisions?: () => DecisionCarrier | undefined;
  /**
   * Members another member named (a hello's list): counted from now on (Placement.introduce). With
   * `from` and its digest, the asker of a request knows other members than this node does: its list
   * is asked for (a hello, in the background).
   */
  readonly learn?: (members: readonly string[]) => void;
  readonly differs?: (from: string, digest: string) => void;
  /** A peer greeted as `coordinator` (its own name: `<its peer id>:<incarnation>`). */
  readonly greeted?: (coordinator: string) => void;
  /**
   * A peer that is no member yet said hello with its collections (`theirs`, unchecked): what makes it
   * hold another database, if anything (it is then not admitted), and this node's collections for it
   * to check in turn (DatabaseMarks).
   */
  readonly admit?: (peer: string, theirs: unknown, empty: boolean) => Promise<Clash | undefined>;
  readonly marks?: () => Promise<Marks>;
  /** A peer's `marks` request: the clash its collections make with this node's, if any. */
  readonly checkMarks?: (peer: string, theirs: unknown) => Promise<Clash | undefined>;
}

/**
 * Answers one repo request from a peer (answerRepoRequest). An asker whose member digest differs
 * from this node's gets the member list with an object answer (`members`), so it counts the members
 * it had not met before it counts a majority of anything.
 */
export async function serveRepoRequest(
  parts: RepoServerParts,
  request: RepoRequest,
  from: string,
): Promise<unknown> {
  const answer = await answerRepoRequest(parts, request, from);
  const digest = 'mv' in request ? request.mv : undefined;
  if (digest === undefined || digest === parts.placement.digest()) return answer;
  parts.differs?.(from, digest);
  const members = parts.placement.members().slice(0, membersListedMax);
  if (answer === true) return { members };
  if (answer !== null && typeof answer === 'object' && !Array.isArray(answer)) return { ...answer, members };
  return answer;
}

function checkBlockId(id: unknown): BlockId {
  if (!isBlockId(id)) throw new EngineError('BAD_INPUT', `not a block id: ${JSON.stringify(id)}`);
  return id;
}

/** Answers one repo request from a peer. Writes are accepted only from members of the database. */
async function answerRepoRequest(
  parts: RepoServerParts,
  request: RepoRequest,
  from: string,
): Promise<unknown> {
  switch (request.type) {
    case 'hello': {
      if (request.now !== undefined && parts.clock !== undefined)
        parts.clocks?.observe(from, request.now, parts.clock.now());
      if (!parts.placement.isMember(from) && parts.admit !== undefined) {
        const foreign = await parts.admit(from, request.collections, request.empty === true);
        if (foreign !== undefined) return { peerId: parts.placement.self, foreign };
      }
      if (parts.placement.add(from)) await parts.remember(from);
      if (request.members !== undefined) parts.learn?.(request.members);
      if (typeof request.coordinator === 'string' && request.coordinator.startsWith(`${from}:`))
        parts.greeted?.(request.coordinator);
      return {
        peerId: parts.placement.self,
        members: parts.placement.members().slice(0, membersListedMax),
        ...(await answerMarks(parts)),
        ...(parts.clock !== undefined ? { now: parts.clock.now() } : {}),
      };
    }
    case 'get': {
      if (Array.isArray(request.reinforce))
        await parts.membership.check(
          (request.reinforce as NonNullable<GetBlockRequest['reinforce']>).flatMap((ref) =>
            ref.certificate === undefined ? [] : [ref.certificate],
          ),
        );
      const id = checkBlockId(request.blockId);
      const cluster = parts.placement.clusterOf(id);
      if (!cluster.includes(parts.placement.self) && (await parts.blocks.latest(id)) === undefined)
        return { redirect: cluster } satisfies RepoRedirect;
      if (request.rev !== undefined) return (await parts.blocks.at(id, { rev: request.rev })) ?? null;
      const state = await parts.repo.get({
        blockId: checkBlockId(request.blockId),
        ...(request.atLsn !== undefined ? { atLsn: request.atLsn } : {}),
        ...(Array.isArray(request.reinforce)
          ? { reinforce: request.reinforce as NonNullable<GetBlockRequest['reinforce']> }
          : {}),
      });
      // Not newer, and (when the asker says what it holds) the same content at that revision.
      if (
        request.newerThan !== undefined &&
        (state?.rev ?? 0) <= request.newerThan &&
        (state === undefined ||
          state.rev < request.newerThan ||
          request.digest === undefined ||
          contentDigest(state) === request.digest)
      )
        return { notNewer: state?.rev ?? 0 } satisfies NotNewer;
      return state ?? null;
    }
    case 'history':
      return parts.blocks.history(
        checkBlockId(request.blockId),
        request.fromRev === undefined ? {} : { fromRev: request.fromRev },
      );
    case 'pending':
      return parts.blocks.pendingOf(checkBlockId(request.blockId));
    case 'catalog':
      return parts.catalog();
    case 'marks':
      return (await parts.checkMarks?.(from, request.collections)) ?? null;
    default:
      break;
  }
  if (!parts.placement.isLive(from))
    throw new EngineError('BAD_INPUT', 'only members of this database may write blocks here');
  switch (request.type) {
    case 'pend': {
      const sent = request.items as PendingTransform[];
      for (const item of sent) checkBlockId(item.blockId);
      // Their expiry, set by the asker's clock, as this node's clock reads it (PeerClocks).
      const { now: sentAt } = request;
      const { clock, clocks } = parts;
      const items =
        sentAt === undefined || clock === undefined || clocks === undefined
          ? sent
          : sent.map((item) => ({
              ...item,
              expiresAt: clocks.localDeadline(from, item.expiresAt, sentAt, clock.now()),
            }));
      const result = await parts.repo.pend(items);
      await parts.repo.sync();
      if (request.check === undefined) return result;
      // Read after the pend, as a read the asker sent alongside would be.
      const held = await revisionsHeld(parts.blocks, request.check.map(checkBlockId));
      return { ...result, held } satisfies PendAnswer;
    }
    case 'cancel':
      await parts.repo.cancel(request.trxId, request.blockIds.map(checkBlockId));
      await parts.repo.sync();
      return true;
    case 'promote': {
      const promote = request.request as PromoteRequest;
      if (!Array.isArray(promote.proof)) throw new EngineError('BAD_INPUT', 'promote needs a proof');
      await parts.membership.check(promote.proof);
      await parts.repo.promote(promote);
      await parts.repo.sync();
      return true;
    }
    case 'apply': {
      const behind = await applyIfNewer(
        parts.blocks,
        request.revisions as DirectRevision[],
        (request.bases ?? []) as RevisionBase[],
      );
      const promoted =
        request.promote === undefined
          ? undefined
          : await promoteEach(parts.repo, parts.membership, request.promote as PromoteRequest[]);
      await parts.blocks.sync();
      // The decisions of the entries just stored: the member's consensus learns them now.
      if (request.consensus !== undefined && request.consensus.length > 0)
        await parts.decisions?.()?.deliver(from, request.consensus);
      return promoted === undefined ? { behind } : { behind, promoted };
    }
  }
}

/** A member asked about a checked read with a pend, and where the read's block is in its `check` list. */
interface CheckAsked {
  readonly member: string;
  readonly at: number;
}

/** A revision a holder has of a block and the LSN it was committed at (0, 0: it holds none). */
interface HeldRevision {
  readonly rev: number;
  readonly lsn: number;
}

/** A holder's answer to a pend: its outcome, and with `check` what it holds of each block named. */
interface PendAnswer {
  readonly ok: boolean;
  readonly outcomes: readonly PendOutcome[];
  readonly held?: readonly HeldRevision[];
}

/** A promise with a handler attached now; the returned function gives its value or throws its error. */
function settled<T>(value: Promise<T> | T): () => Promise<T> {
  const outcome = Promise.resolve(value).then(
    (ok) => ({ ok: true as const, value: ok }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  return async () => {
    const result = await outcome;
    if (result.ok) return result.value;
    throw result.error;
  };
}

/** What this holder has of each block. */
async function revisionsHeld(blocks: BlockStore, ids: readonly BlockId[]): Promise<HeldRevision[]> {
  return Promise.all(
    ids.map(async (id) => {
      const state = await blocks.latest(id);
      return { rev: state?.rev ?? 0, lsn: state?.lsn ?? 0 };
    }),
  );
}

/**
 * Promotes committed transactions in order, each on its own: whether each one was applied (a holder
 * that lacks a pend, or a proof that does not verify, fails that one only).
 */
async function promoteEach(
  repo: LocalRepo,
  membership: MembershipCheck | undefined,
  promotes: readonly PromoteRequest[],
): Promise<boolean[]> {
  const done: boolean[] = [];
  for (const promote of promotes) {
    try {
      if (!Array.isArray(promote.proof) || !Array.isArray(promote.blockIds))
        throw new EngineError('BAD_INPUT', 'promote needs block ids and a proof');
      for (const id of promote.blockIds) checkBlockId(id);
      await membership?.check(promote.proof);
      await repo.promote(promote);
      done.push(true);
    } catch {
      done.push(false);
    }
  }
  return done;
}

/** Blocks a holder could not take revisions of because it lacks earlier ones: its latest revision. */
export type Behind = { readonly blockId: BlockId; readonly rev: number }[];

/**
 * The revision of a block a writer's (or a repair's) first revision of it is built on: revisions are
 * numbered per holder, so a holder whose revision at that number is another transaction's (a write
 * that reached a minority and lost its compare-and-set elsewhere) must not take what follows.
 */
export interface RevisionBase {
  readonly blockId: BlockId;
  readonly rev: number;
  readonly trxId: TrxId;
}

/**
 * Writes replicated revisions a holder does not have yet. A revision already held (same rev and
 * transaction) is skipped, so a retried replication is harmless; a different transaction at a held
 * revision is refused (CONFLICT), and so is a revision whose base (named in `bases`) is another
 * transaction's here than the writer's. A block whose revisions start past what the holder has is
 * left alone and reported, so the sender can send the missing ones first.
 */
export async function applyIfNewer(
  blocks: BlockStore,
  revisions: readonly DirectRevision[],
  bases: readonly RevisionBase[] = [],
): Promise<Behind> {
  const behind: Behind = [];
  const held = new Map<BlockId, number>();
  for (const revision of revisions) {
    checkBlockId(revision.blockId);
    if (behind.some((b) => b.blockId === revision.blockId)) continue;
    let rev = held.get(revision.blockId);
    if (rev === undefined) {
      const state = await blocks.latest(revision.blockId);
      rev = state?.rev ?? 0;
      // The first revision of this block here: the holder's copy must be the one it was built on.
      const base = bases.find((b) => b.blockId === revision.blockId && b.rev === revision.baseRev);
      if (state !== undefined && base !== undefined && rev === base.rev && state.trxId !== base.trxId)
        throw new EngineError(
          'CONFLICT',
          `block ${revision.blockId} has revision ${rev} from another transaction than the one written on`,
        );
    }
    if (rev > revision.baseRev) {
      // Held already when it is the same change: the same tag is not enough, since two tails that
      // write one decided entry may write different content under it (a seal names a successor
      // each draws at random: sim seed 457 with introductions forked a log that way).
      const at = revision.baseRev + 1;
      const [existing] = await blocks.history(revision.blockId, { fromRev: at, toRev: at });
      const trxId = existing?.trxId ?? (await blocks.at(revision.blockId, { rev: at }))?.trxId;
      if (
        trxId === revision.trxId &&
        (existing?.rev !== at || canonicalJson(existing.transform) === canonicalJson(revision.transform))
      )
        continue;
      throw new EngineError(
        'CONFLICT',
        `block ${revision.blockId} already has revision ${at} from another transaction or with other content`,
      );
    }
    if (rev < revision.baseRev) {
      behind.push({ blockId: revision.blockId, rev });
      continue;
    }
    await blocks.apply([revision]);
    held.set(revision.blockId, rev + 1);
  }
  return behind;
}

export interface ClusterRepoParts {
  readonly local: LocalRepo;
  /** This node's clock: a pend says what it read when it was sent (absent: it says nothing). */
  readonly clock?: Clock;
  readonly blocks: BlockStore;
  readonly placement: Placement;
  readonly network: () => NetworkNode | undefined;
  /** Decisions a log write may carry to the members it goes to. */
  readonly decisions?: () => DecisionCarrier | undefined;
  /** Members an answer named that this node had not met (Placement.introduce; Cluster greets them). */
  readonly learn?: (members: readonly string[]) => void;
  /**
   * Where pends this node takes as the only member of their blocks' clusters leave their sync (its
   * commit's log write syncs them), and what a write to another member settles first. Without it
   * every pend is synced.
   */
  readonly deferred?: DeferredSyncs;
}

/** A cluster read (getCounted): the state, and how many members that answered hold it, or the block. */
export interface CountedRead {
  readonly state: BlockState | undefined;
  /** Members that answered with the state returned (this node included). */
  readonly holding: number;
  /** Members that answered holding the block at any revision (this node included). */
  readonly holders: number;
  /** The member the state came from. */
  readonly source?: string;
}

export interface ApplyWriteOptions {
  /**
   * Write this node's copy only after the other members answered, and only when a majority of each
   * block's cluster then holds the write with it: a write other holders refuse (it was built on a
   * stale copy) must not leave this node's copy diverged from theirs, since nothing takes a revision
   * back off a disk (sim seed 957: a tail's seal refused at the holders, kept here, led this node's
   * tail to a successor the log never named). Costs the local write's latency after the round trip.
   */
  readonly localLast?: boolean;
}

type Answer<T> =
  | { readonly member: string; readonly ok: true; readonly value: T }
  | {
      readonly member: string;
      readonly ok: false;
      readonly error: EngineError;
    };

/** RepoClient over the clusters of the blocks a request names. */
export class ClusterRepoClient implements RepoClient {
  /** Checks commit proofs' named members before anything is sent (set by the cluster). */
  membership: MembershipCheck | undefined;
  /** Promotion is a round trip to every holder: the coordinator answers first (readers reinforce). */
  readonly promotesInBackground = true;

  constructor(private readonly parts: ClusterRepoParts) {}

  /**
   * The newest state a majority of the block's cluster returns (reinforced first). This node's own
   * copy is read first when it is a holder; every other member is asked only for something newer (it
   * answers with its revision otherwise), so a block crosses the network only when this copy is behind.
   * Every member is asked, and only members that hold the block make the majority (the handoff,
   * docs/cluster.md "Members joining"): while members join, the first majority of a block's new
   * cluster may not hold it yet (the commit simulation's late-joiner seeds 26, 50 and 97 lose
   * acknowledged commits when reads ask only a majority; 1313 when answers without the block count).
   */
  async get(request: GetBlockRequest): Promise<BlockState | undefined> {
    if (request.verifyLater === true) {
      const own = await this.ownCopy(request);
      if (own !== undefined) return own;
    }
    return (await this.getCounted(request)).state;
  }

  /**
   * This node's copy of a block, for a read whose freshness the caller checks later (`verifyLater`):
   * only when this node holds the block, its copy has every commit the request names (it applies
   * those it has pends for), and no check found the copy stale since. Undefined: read the cluster.
   *
   * What such a copy can still lack is a commit the tail has checkpointed, which a majority of the
   * block's holders have: the transaction's pend (a written block's base revision, checked at every
   * holder) or `verifyReads` (a block it only reads) finds that, and the transaction runs again.
   */
  private async ownCopy(request: GetBlockRequest): Promise<BlockState | undefined> {
    const { blockId } = request;
    if (this.suspect.has(blockId) || !this.clusterOf(blockId).includes(this.self)) return undefined;
    const { verifyLater: _, ...plain } = request;
    const own = await this.parts.local.get(plain).catch(() => undefined);
    if (own === undefined) return undefined;
    const named = Math.max(0, ...(request.reinforce ?? []).map((ref) => ref.lsn));
    return own.lsn >= named ? own : undefined;
  }

  /**
   * Reads the blocks again from a majority of their holders: the ids of those that hold something
   * newer than the revision the transaction saw. Each stale copy here is read from the cluster until
   * a read finds it current again (a read of the cluster also brings it up to date).
   */
  async verifyReads(reads: readonly ReadToVerify[]): Promise<BlockId[]> {
    const checked = await Promise.all(
      reads.map(async (read) => {
        const { state } = await this.getCounted(read.request);
        return staleRead(read, state?.rev ?? 0, state?.lsn ?? 0) ? read.request.blockId : undefined;
      }),
    );
    const stale = checked.filter((id): id is BlockId => id !== undefined);
    for (const id of stale) this.suspectCopy(id);
    return stale;
  }

  distrust(blockIds: readonly BlockId[]): void {
    for (const id of blockIds) this.suspectCopy(id);
  }

  /** Blocks whose copy here was found behind the cluster: read from the cluster until current. */
  private readonly suspect = new Set<BlockId>();

  private suspectCopy(blockId: BlockId): void {
    if (this.suspect.size >= suspectBlocksMax) this.suspect.clear();
    this.suspect.add(blockId);
  }

  /**
   * `get`, with how many of the members that answered hold a revision at least as new as the state
   * returned (this node included): a majority of them means a majority of the cluster holds it.
   */
  async getCounted(
    request: GetBlockRequest,
    options: { readonly everyone?: boolean } = {},
  ): Promise<CountedRead> {
    // Answers that named members this node had not met grew the cluster: read it again, so the
    // majority is one of the cluster as the members that answered see it.
    for (let round = 1; ; round++) {
      const members = this.placement.members();
      const read = await this.getCountedOnce(request, options).catch((error: unknown) => {
        if (this.placement.members() === members || round >= fanOutRoundsMax) throw error;
        return undefined;
      });
      if (read !== undefined && (this.placement.members() === members || round >= fanOutRoundsMax))
        return read;
    }
  }

  /** `everyone`: wait for every member's answer, not the first majority (a check that must count all). */
  private async getCountedOnce(
    request: GetBlockRequest,
    options: { readonly everyone?: boolean } = {},
  ): Promise<CountedRead> {
    const cluster = this.clusterOf(request.blockId);
    let own: Promise<BlockState | null> | undefined;
    let ownState: BlockState | null | undefined;
    if (cluster.includes(this.self)) {
      own = this.parts.local.get(request).then((state) => state ?? null);
      ownState = await own.catch(() => undefined);
    }
    const newerThan = ownState === undefined ? undefined : (ownState?.rev ?? 0);
    const ownDigest = ownState === undefined || ownState === null ? undefined : contentDigest(ownState);
    const call = (member: string): Promise<BlockState | null | number> => {
      if (member === this.self && own !== undefined) return own;
      return this.remote<GetAnswer>(member, {
        type: 'get',
        ...request,
        ...(newerThan === undefined ? {} : { newerThan }),
        ...(ownDigest === undefined ? {} : { digest: ownDigest }),
      }).then((answer) => (answer !== null && 'notNewer' in answer ? answer.notNewer : stateOf(answer)));
    };
    const answers =
      options.everyone === true
        ? await this.askEach(cluster, cluster.length, call, holds)
        : await this.ask(request.blockId, call, holds);
    this.requireQuorum(request.blockId, answers);
    // Handoff: members that joined the block's cluster and have not received it yet answer without
    // it. While too few answers hold the block to be a majority, the members the joiners displaced
    // (the next nearest, holders before the cluster grew) are asked too, so a read never takes the
    // silence of new members for the absence of what the previous holders stored.
    const absent = answers.filter((answer) => answer.ok && !holds(answer.value)).length;
    const held = answers.filter((answer) => answer.ok && holds(answer.value)).length;
    let extra: Answer<BlockState | null | number>[] = [];
    if (absent > 0 && held < quorumOf(cluster.length))
      extra = await this.askDisplaced(request.blockId, absent, call);
    // Each answer's version: its revision and content. A bare revision number equal to this node's
    // is this node's content (the holder compared digests); a lower one is just behind.
    const versionOf = (value: BlockState | null | number): { rev: number; digest: string | undefined } => {
      if (value === null) return { rev: 0, digest: undefined };
      if (typeof value === 'number')
        return { rev: value, digest: value > 0 && value === ownState?.rev ? ownDigest : undefined };
      return { rev: value.rev, digest: value === ownState ? ownDigest : contentDigest(value) };
    };
    const versions = [...answers, ...extra].flatMap((answer) =>
      answer.ok ? [{ answer, ...versionOf(answer.value) }] : [],
    );
    // The newest revision wins; copies that differ at it (see contentDigest) are decided by how many
    // answers hold each, the first answered on a tie.
    const newest = Math.max(0, ...versions.map((version) => version.rev));
    const votes = new Map<string, number>();
    for (const version of versions)
      if (version.rev === newest && version.digest !== undefined)
        votes.set(version.digest, (votes.get(version.digest) ?? 0) + 1);
    let chosen: string | undefined;
    for (const [digest, count] of votes)
      if (chosen === undefined || count > votes.get(chosen)!) chosen = digest;
    // Copies that differ at the newest revision, none held by a majority of the cluster among the
    // first answers: a write a minority took (its writer lost the compare-and-set race elsewhere)
    // stays on its holders at the same revision as the one the majority took. The first answers may
    // be a tie between them (this node's copy answered first), so every member is asked before one is
    // chosen (sim seed 13557: a log block's seal naming another successor on one holder, read through
    // that holder, hid the rest of the log).
    if (
      options.everyone !== true &&
      votes.size > 1 &&
      chosen !== undefined &&
      votes.get(chosen)! < quorumOf(cluster.length)
    )
      return this.getCountedOnce(request, { ...options, everyone: true });
    let best: BlockState | undefined;
    let source: string | undefined;
    if (chosen !== undefined) {
      if (chosen === ownDigest && ownState?.rev === newest) {
        best = ownState;
        source = this.self;
      }
      for (const version of versions) {
        const value = version.answer.value;
        if (source !== undefined) break;
        if (version.digest === chosen && typeof value !== 'number' && value !== null) {
          best = value;
          source = version.answer.member;
        }
      }
    }
    // This node's copy is current again once a cluster read finds nothing newer or other than it;
    // a copy that differs from the newest one is read from the cluster (verifyLater) from now on.
    if (newerThan !== undefined) {
      if (best === undefined || (newerThan === best.rev && ownDigest === chosen))
        this.suspect.delete(request.blockId);
      else if (newerThan === best.rev) this.suspectCopy(request.blockId);
    }
    // Holders that answered with less than the newest state missed revisions, and members that do
    // not hold the block yet were never handed it: bring them up to date (the handoff completes).
    // A holder whose copy differs at the newest revision is not: nothing can be applied on it.
    if (best !== undefined && source !== undefined) {
      for (const version of versions) {
        if (!answers.includes(version.answer)) continue;
        if (version.rev < best.rev) this.repair(request.blockId, version.answer.member, version.rev, source);
      }
    }
    const holding = versions.filter(
      (version) => answers.includes(version.answer) && version.rev === newest && version.digest === chosen,
    ).length;
    const holders = answers.filter((answer) => answer.ok && holds(answer.value)).length;
    return source === undefined
      ? { state: best, holding, holders }
      : { state: best, holding, holders, source };
  }

  /**
   * The revision of a block each reachable member of its cluster holds (this node's from its store).
   * Cheap: asked with `newerThan: held`, a holder answers its revision number unless it has newer.
   */
  async revisionsOf(blockId: BlockId, held: number): Promise<{ member: string; rev: number }[]> {
    const answers = await Promise.allSettled(
      this.clusterOf(blockId).map(async (member) => {
        if (member === this.self) return { member, rev: (await this.parts.local.get({ blockId }))?.rev ?? 0 };
        const answer = await this.remote<GetAnswer>(member, { type: 'get', blockId, newerThan: held });
        const rev = answer !== null && 'notNewer' in answer ? answer.notNewer : (stateOf(answer)?.rev ?? 0);
        return { member, rev };
      }),
    );
    return answers.flatMap((a) => (a.status === 'fulfilled' ? [a.value] : []));
  }

  private readonly repairing = new Set<string>();

  /**
   * Sends a holder the revisions of a block it lacks (after `held`), read from `source`. In the
   * background and at most once at a time per block and holder; failures are left for the next read.
   */
  repair(blockId: BlockId, holder: string, held: number, source: string): void {
    this.bringUpToDate(blockId, holder, async () => {
      // From the revision the holder has on: the source's revision there is the base the rest is
      // built on, and a holder whose copy differs at it refuses them.
      const fromRev = Math.max(1, held);
      const history =
        source === this.self
          ? await this.parts.blocks.history(blockId, { fromRev })
          : await this.remote<BlockRevision[]>(source, { type: 'history', blockId, fromRev });
      const at = history.find((revision) => revision.rev === held);
      await this.send(
        holder,
        blockId,
        history.filter((revision) => revision.rev > held),
        at === undefined ? undefined : { blockId, rev: held, trxId: at.trxId },
      );
    });
  }

  /**
   * Runs `work`, which brings `holder`'s copy of a block up to date, in the background: at most once
   * at a time per block and holder (and repairsInFlightMax in all); failures are left for later.
   */
  private bringUpToDate(blockId: BlockId, holder: string, work: () => Promise<void>): void {
    const key = `${blockId}/${holder}`;
    if (this.repairing.has(key) || this.repairing.size >= repairsInFlightMax) return;
    this.repairing.add(key);
    void work()
      .catch(() => undefined)
      .finally(() => this.repairing.delete(key));
  }

  /**
   * Hands a member that joined a block's cluster the block as a majority of the cluster holds it (the
   * newest state a cluster read finds), never this node's copy alone: a copy that fell behind, handed
   * to a joiner, makes the joiner count as a holder of a block the others moved past — an entry
   * acknowledged at 2 of 3 holders is then on 2 of 4 that hold the block (sim seed 2290). The newest
   * state counts only when a majority of the rest of the cluster answered holding the block (so the
   * answers meet every majority the writes before the joiner counted); else, or when the read finds
   * no majority (NO_QUORUM), nothing is sent: later reads and log writes hand the block over.
   */
  async handOff(blockId: BlockId, member: string): Promise<void> {
    const { state, source, holders } = await this.getCounted({ blockId });
    if (state === undefined || source === undefined || source === member) return;
    const rest = this.clusterOf(blockId).filter((m) => m !== member).length;
    if (holders < quorumOf(rest)) return;
    const history =
      source === this.self
        ? await this.parts.blocks.history(blockId)
        : await this.remote<BlockRevision[]>(source, { type: 'history', blockId });
    await this.send(
      member,
      blockId,
      history.filter((revision) => revision.rev <= state.rev),
    );
  }

  /**
   * Sends revisions of one block to a holder, in order, in bounded chunks. `base`: the sender's
   * revision the first one is built on (a holder whose copy differs there refuses, CONFLICT).
   */
  async send(
    holder: string,
    blockId: BlockId,
    history: readonly BlockRevision[],
    base?: RevisionBase,
  ): Promise<void> {
    const revisions = [...history]
      .sort((a, b) => a.rev - b.rev)
      .map((revision): DirectRevision => ({
        blockId,
        trxId: revision.trxId,
        lsn: revision.lsn,
        baseRev: revision.rev - 1,
        transform: revision.transform,
      }));
    for (let i = 0; i < revisions.length; i += replicationChunkRevisions) {
      const chunk = revisions.slice(i, i + replicationChunkRevisions);
      await this.sendChunk(holder, chunk, i === 0 && base !== undefined ? [base] : []);
    }
  }

  /**
   * One replication message, or — when it is over the frame limit (revisions that insert or rewrite
   * large blocks) — its halves in order, the base with the first.
   */
  private async sendChunk(
    holder: string,
    chunk: readonly DirectRevision[],
    bases: readonly RevisionBase[],
  ): Promise<void> {
    let behind: Behind;
    try {
      ({ behind } = await this.applyAt(holder, chunk, [], bases));
    } catch (error) {
      if (!isEngineError(error, 'TOO_LARGE') || chunk.length < 2) throw error;
      const half = Math.ceil(chunk.length / 2);
      await this.sendChunk(holder, chunk.slice(0, half), bases);
      await this.sendChunk(holder, chunk.slice(half), []);
      return;
    }
    if (behind.length > 0)
      throw new EngineError('UNAVAILABLE', `member ${holder} is missing earlier revisions`);
  }

  /**
   * Pends at every holder of each block; `verify` reads are checked as verifyReads does, asking the
   * holders the pend goes to along with it (`check`), and with reads of their own only the blocks
   * whose cluster those holders do not cover or that too few of them answered for.
   */
  async pend(items: readonly PendingTransform[], options: PendOptions = {}): Promise<PendResult> {
    const byId = new Map(items.map((item) => [item.blockId, item]));
    const sent = new Map<string, BlockId[]>();
    const targets = new Set<string>();
    for (const item of items) for (const member of this.clusterOf(item.blockId)) targets.add(member);
    const { checks, asks, separately } = this.planChecks(options.verify ?? [], targets);
    // Alone in every cluster the pend goes to: nobody but this node's own tail relies on it, and that
    // tail's log write is synced (DeferredSyncs).
    const deferred = targets.size === 1 && targets.has(this.self) ? this.parts.deferred : undefined;
    // Both run alongside the pend and are awaited after it (settled: a failure is thrown from there).
    const verifiedSeparately = settled(separately.length > 0 ? this.verifyReads(separately) : []);
    const ownRevs = settled(
      revisionsHeld(
        this.parts.blocks,
        [...checks.keys()].map((read) => read.request.blockId),
      ),
    );
    const answers = await this.fanOut(
      items.map((item) => item.blockId),
      async (member, ids): Promise<PendAnswer> => {
        sent.set(member, ids);
        const list = ids.map((id) => byId.get(id)!);
        if (member !== this.self) return this.pendAt(member, list, asks.get(member));
        const result = await this.parts.local.pend(list);
        if (deferred !== undefined) deferred.defer();
        else await this.parts.local.sync();
        return result;
      },
    );
    const results = new Map<string, PendAnswer | EngineError>(
      [...answers].map(([member, answer]) => [
        member,
        answer.ok ? (answer.value as PendAnswer) : answer.error,
      ]),
    );
    const stale = await this.staleOf(checks, results, await ownRevs());
    stale.push(...(await verifiedSeparately()));
    const { ok, outcomes } = await this.pendOutcomes(items, results, sent);
    return stale.length > 0 ? { ok, outcomes, stale } : { ok, outcomes };
  }

  /**
   * One member's part of a pend, in one request — or, when that is over the frame limit (a
   * transaction writing several large leaves: 60 values of 60 KB made 3.6 MB per member), in halves,
   * the check riding with the first, their answers joined in order. Each block's pend stands on its
   * own at a holder, so splitting changes nothing but the number of requests.
   */
  private async pendAt(
    member: string,
    items: readonly PendingTransform[],
    check: readonly BlockId[] | undefined,
  ): Promise<PendAnswer> {
    try {
      return await this.remote<PendAnswer>(member, {
        type: 'pend',
        items,
        ...(check !== undefined ? { check } : {}),
        ...(this.parts.clock !== undefined ? { now: this.parts.clock.now() } : {}),
      });
    } catch (error) {
      if (!isEngineError(error, 'TOO_LARGE') || items.length < 2) throw error;
    }
    const half = Math.ceil(items.length / 2);
    const first = await this.pendAt(member, items.slice(0, half), check);
    const second = await this.pendAt(member, items.slice(half), undefined);
    return {
      ok: first.ok && second.ok,
      outcomes: [...first.outcomes, ...second.outcomes],
      ...(first.held !== undefined ? { held: first.held } : {}),
    };
  }

  /**
   * Which reads to check with the pend: each one whose cluster is covered by the pend's targets (and
   * this node), with the remote members to ask (at most pendChecksMax per member); the rest are
   * checked `separately`, by verifyReads.
   */
  private planChecks(
    reads: readonly ReadToVerify[],
    targets: ReadonlySet<string>,
  ): { checks: Map<ReadToVerify, CheckAsked[]>; asks: Map<string, BlockId[]>; separately: ReadToVerify[] } {
    const checks = new Map<ReadToVerify, CheckAsked[]>();
    const asks = new Map<string, BlockId[]>();
    const separately: ReadToVerify[] = [];
    for (const read of reads) {
      const { blockId } = read.request;
      const cluster = this.clusterOf(blockId);
      const remote = cluster.filter((member) => member !== this.self);
      const covered =
        remote.length > 0 &&
        remote.every((member) => targets.has(member) && (asks.get(member)?.length ?? 0) < pendChecksMax);
      if (!covered) {
        separately.push(read);
        continue;
      }
      checks.set(
        read,
        remote.map((member) => {
          let ids = asks.get(member);
          if (ids === undefined) asks.set(member, (ids = []));
          ids.push(blockId);
          return { member, at: ids.length - 1 };
        }),
      );
    }
    return { checks, asks, separately };
  }

  /**
   * The checked reads a holder answered with a newer revision than the transaction read (a copy read
   * here that was behind: read from the cluster from now on). A read fewer than a majority of its
   * cluster answered for holding the block is read again from the cluster (getCounted: NO_QUORUM,
   * or the displaced holders asked while the cluster grows).
   */
  private async staleOf(
    checks: ReadonlyMap<ReadToVerify, readonly CheckAsked[]>,
    results: ReadonlyMap<string, PendAnswer | EngineError>,
    ownRevs: readonly HeldRevision[],
  ): Promise<BlockId[]> {
    const stale: BlockId[] = [];
    const again: ReadToVerify[] = [];
    let index = 0;
    for (const [read, members] of checks) {
      const { blockId } = read.request;
      const cluster = this.clusterOf(blockId);
      const revs: ({ member: string } & HeldRevision)[] = [];
      if (cluster.includes(this.self))
        revs.push({ member: this.self, ...(ownRevs[index] ?? { rev: 0, lsn: 0 }) });
      index++;
      for (const { member, at } of members) {
        const result = results.get(member);
        if (result === undefined || result instanceof EngineError) continue;
        const held = result.held?.[at];
        if (held !== undefined) revs.push({ member, ...held });
      }
      if (revs.some((answer) => staleRead(read, answer.rev, answer.lsn))) {
        stale.push(blockId);
        this.suspectCopy(blockId);
        continue;
      }
      if (revs.filter((answer) => answer.rev > 0).length < quorumOf(cluster.length)) {
        again.push(read);
        continue;
      }
      // Holders behind the revision read here get it from this node's copy, when it is that one.
      const own = revs.find((answer) => answer.member === this.self);
      if (own !== undefined && own.rev === read.rev)
        for (const answer of revs)
          if (answer.rev < read.rev) this.repair(blockId, answer.member, answer.rev, this.self);
    }
    if (again.length > 0) stale.push(...(await this.verifyReads(again)));
    return stale;
  }

  /** Each pended block's outcome from its holders' answers: ok once a majority of its cluster took it. */
  private async pendOutcomes(
    items: readonly PendingTransform[],
    results: ReadonlyMap<string, PendAnswer | EngineError>,
    sent: ReadonlyMap<string, BlockId[]>,
  ): Promise<{ ok: boolean; outcomes: PendOutcome[] }> {
    const clusters = items.map((item) => this.clusterOf(item.blockId));
    let ok = true;
    let unreachable = false;
    const outcomes = items.map((item, i): PendOutcome => {
      const cluster = clusters[i]!;
      let accepted = 0;
      let refusal: PendOutcome | undefined;
      for (const member of cluster) {
        const result = results.get(member);
        if (result === undefined || result instanceof EngineError) continue;
        const outcome = result.outcomes[sent.get(member)!.indexOf(item.blockId)];
        if (outcome?.status === 'ok' && result.ok) accepted++;
        else if (outcome !== undefined && outcome.status !== 'ok') refusal ??= outcome;
      }
      if (accepted >= quorumOf(cluster.length)) {
        this.repairBehind(item, cluster, results, sent);
        return { status: 'ok' };
      }
      ok = false;
      // Refused because holders lack revisions (a member joined and was not handed the block yet; of
      // two members both must take a pend): they are handed the block now, as a majority read finds
      // it (handOff: a holder that took this pend may itself be behind), so a later attempt finds
      // them current instead of waiting for the rebalance to reach the block.
      this.handOffBehind(item, cluster, results, sent);
      // Holders have revisions past the one this transaction read: the copy it read is behind.
      if (refusal?.status === 'stale' && refusal.currentRev > item.baseRev) this.suspectCopy(item.blockId);
      if (refusal !== undefined) return refusal;
      unreachable = true;
      return { status: 'full' };
    });
    if (!ok && unreachable && outcomes.every((o) => o.status === 'ok' || o.status === 'full')) {
      await this.cancel(
        items[0]!.trxId,
        items.map((i) => i.blockId),
      ).catch(() => undefined);
      throw new EngineError(
        'NO_QUORUM',
        `a majority of a block cluster did not accept the pend${ownFailure(results.get(this.self))}`,
      );
    }
    return { ok, outcomes };
  }

  /**
   * Holders that refused a pend because they lack revisions the transaction read (they missed a
   * promotion, or one is still on its way) are sent them in the background from a holder that took it.
   */
  private repairBehind(
    item: PendingTransform,
    cluster: readonly string[],
    results: ReadonlyMap<string, PendAnswer | EngineError>,
    sent: ReadonlyMap<string, BlockId[]>,
  ): void {
    const outcomeAt = (member: string): PendOutcome | undefined =>
      pendOutcomeAt(results, sent, member, item.blockId);
    const source = [...cluster]
      .sort((a, b) => (a === this.self ? -1 : b === this.self ? 1 : 0))
      .find((member) => outcomeAt(member)?.status === 'ok');
    if (source === undefined) return;
    for (const member of cluster) {
      const outcome = outcomeAt(member);
      if (outcome?.status === 'stale' && outcome.currentRev < item.baseRev)
        this.repair(item.blockId, member, outcome.currentRev, source);
    }
  }

  /**
   * After a pend that did not stand: members that refused it for lack of the revisions it was based
   * on are handed the block in the background (handOff), at most one hand-off per block and member
   * at a time, so a transaction that retries does not start one per attempt.
   */
  private handOffBehind(
    item: PendingTransform,
    cluster: readonly string[],
    results: ReadonlyMap<string, PendAnswer | EngineError>,
    sent: ReadonlyMap<string, BlockId[]>,
  ): void {
    for (const member of cluster) {
      const outcome = pendOutcomeAt(results, sent, member, item.blockId);
      if (outcome?.status === 'stale' && outcome.currentRev < item.baseRev)
        this.bringUpToDate(item.blockId, member, () => this.handOff(item.blockId, member));
    }
  }

  /** Brings a holder that could not take a promotion up to date from `source` (in the background). */
  private catchUp(blockId: BlockId, holder: string, source: string): void {
    void this.remote<GetAnswer>(holder, { type: 'get', blockId, newerThan: Number.MAX_SAFE_INTEGER })
      .then((answer) => {
        const rev = answer !== null && 'notNewer' in answer ? answer.notNewer : (stateOf(answer)?.rev ?? 0);
        this.repair(blockId, holder, rev, source);
      })
      .catch(() => undefined);
  }

  async cancel(trxId: TrxId, blockIds: readonly BlockId[]): Promise<void> {
    await this.fanOut(blockIds, (member, ids) =>
      member === this.self
        ? this.parts.local.cancel(trxId, ids).then(() => this.parts.local.sync())
        : this.remote(member, { type: 'cancel', trxId, blockIds: ids }),
    );
  }

  async promote(request: PromoteRequest): Promise<void> {
    await this.membership?.check(request.proof);
    const answers = await this.fanOut(request.blockIds, (member, ids) => {
      const part = { ...request, blockIds: ids };
      return member === this.self
        ? this.parts.local.promote(part).then(() => this.parts.local.sync())
        : this.remote(member, { type: 'promote', request: part });
    });
    // A live holder that could not promote (it refused the pend, being behind, or never had it)
    // catches up from one that did — also when too few did for the promotion to count yet, so that
    // a commit held by a minority of its holders spreads instead of staying there.
    for (const [member, answer] of answers) {
      if (answer.ok || !this.placement.isLive(member)) continue;
      for (const id of request.blockIds) {
        const cluster = this.clusterOf(id);
        if (!cluster.includes(member)) continue;
        const source = [this.self, ...cluster].find(
          (m) => cluster.includes(m) && answers.get(m)?.ok === true,
        );
        if (source !== undefined) this.catchUp(id, member, source);
      }
    }
    this.requireStored(request.blockIds, answers, 'BAD_CERTIFICATE', 'apply the commit');
  }

  /**
   * Replicates revisions written by a log tail to every block's cluster; a majority must store them.
   * `promotes` (committed transactions the revisions record, in log order) ride in the same requests
   * to the members of their blocks' clusters: resolves with the transactions promoted at a majority
   * of every written block's cluster. A promotion that falls short is not an error here (the
   * coordinator promotes what the tail did not).
   */
  async apply(
    revisions: readonly DirectRevision[],
    promotes: readonly PromoteRequest[] = [],
    options: ApplyWriteOptions = {},
  ): Promise<Set<TrxId>> {
    const byId = new Map<BlockId, DirectRevision[]>();
    for (const revision of revisions) {
      let list = byId.get(revision.blockId);
      if (list === undefined) byId.set(revision.blockId, (list = []));
      list.push(revision);
    }
    const written = new Set(promotes.flatMap((p) => p.blockIds));
    const targets = [...new Set([...byId.keys(), ...written])];
    // Writes this node deferred the sync of must not be outlived by one that reaches another disk.
    if (
      this.parts.deferred?.pending === true &&
      targets.some((id) => this.clusterOf(id).some((member) => member !== this.self))
    )
      await this.parts.deferred.settle();
    const bases = await this.basesOf(byId);
    /** Per member: which of `promotes` it applied (by index). */
    const promotedAt = new Map<string, Set<number>>();
    /** With `localLast`: the other members' writes, and which of them stored it. */
    const remote: Promise<unknown>[] = [];
    const storedBy = new Set<string>();
    const answers = await this.fanOut(targets, async (member, ids) => {
      if (options.localLast === true) {
        if (member !== this.self) {
          const done = this.applyParts(member, ids, byId, promotes, bases, promotedAt);
          remote.push(done);
          await done;
          storedBy.add(member);
          return;
        }
        // Every member's write has started (fanOut starts them in one turn): wait for them all.
        await Promise.resolve();
        await Promise.allSettled(remote);
        for (const id of ids) {
          const cluster = this.clusterOf(id);
          if (cluster.filter((m) => storedBy.has(m)).length + 1 < quorumOf(cluster.length))
            throw new EngineError(
              'CONFLICT',
              `too few holders of block ${id} took the write: this node's copy is left as it was`,
            );
        }
      }
      await this.applyParts(member, ids, byId, promotes, bases, promotedAt);
    });
    this.requireStored([...byId.keys()], answers, 'CONFLICT', 'store the log write');
    const promoted = new Set<TrxId>();
    promotes.forEach((promote, index) => {
      const everywhere = promote.blockIds.every((id) => {
        const cluster = this.clusterOf(id);
        const done = cluster.filter((m) => promotedAt.get(m)?.has(index) === true).length;
        return done >= quorumOf(cluster.length);
      });
      if (everywhere) promoted.add(promote.trxId);
    });
    return promoted;
  }

  /** One member's part of a log write (`apply`): its revisions and promotions, and what it lacked first. */
  private async applyParts(
    member: string,
    ids: readonly BlockId[],
    byId: ReadonlyMap<BlockId, readonly DirectRevision[]>,
    promotes: readonly PromoteRequest[],
    bases: readonly RevisionBase[],
    promotedAt: Map<string, Set<number>>,
  ): Promise<void> {
    const mine = new Set(ids);
    const part = ids.flatMap((id) => byId.get(id) ?? []);
    const indexes: number[] = [];
    const promoteParts: PromoteRequest[] = [];
    promotes.forEach((promote, index) => {
      const blockIds = promote.blockIds.filter((id) => mine.has(id));
      if (blockIds.length === 0) return;
      indexes.push(index);
      promoteParts.push({ ...promote, blockIds });
    });
    const mineBases = bases.filter((base) => mine.has(base.blockId));
    const { behind, promoted } = await this.applyAt(member, part, promoteParts, mineBases);
    promotedAt.set(member, new Set(indexes.filter((_, i) => promoted[i] === true)));
    if (behind.length === 0) return;
    // The holder missed earlier revisions (it joined late or was down): send those, then these.
    for (const { blockId, rev } of behind) {
      const first = byId.get(blockId)![0]!;
      const missing = await this.parts.blocks.history(blockId, {
        fromRev: Math.max(1, rev),
        toRev: first.baseRev,
      });
      const at = missing.find((revision) => revision.rev === rev);
      await this.send(
        member,
        blockId,
        missing.filter((revision) => revision.rev > rev),
        at === undefined ? undefined : { blockId, rev, trxId: at.trxId },
      );
    }
    const still = await this.applyAt(
      member,
      behind.flatMap(({ blockId }) => byId.get(blockId)!),
    );
    if (still.behind.length > 0)
      throw new EngineError(
        'UNAVAILABLE',
        `member ${member} could not catch up with block ${still.behind[0]!.blockId}`,
      );
  }

  /**
   * Throws unless a majority of each block's cluster answered ok: with the error of code `reason`
   * some member gave (it says why better than a count), else NO_QUORUM.
   */
  private requireStored(
    blockIds: readonly BlockId[],
    answers: ReadonlyMap<string, Answer<unknown>>,
    reason: ErrorCode,
    what: string,
  ): void {
    for (const id of blockIds) {
      const cluster = this.clusterOf(id);
      const done = cluster.filter((m) => answers.get(m)?.ok === true).length;
      if (done >= quorumOf(cluster.length)) continue;
      for (const answer of answers.values())
        if (!answer.ok && isEngineError(answer.error, reason)) throw answer.error;
      const own = answers.get(this.self);
      throw new EngineError(
        'NO_QUORUM',
        `a majority of the cluster of block ${id} did not ${what}${ownFailure(own?.ok === false ? own.error : undefined)}`,
      );
    }
  }

  /**
   * The revisions of this node's copies that a write's first revision of each block is built on (a
   * tail writes on the copy it holds): sent along, so a holder whose copy differs there refuses.
   */
  private async basesOf(byId: ReadonlyMap<BlockId, readonly DirectRevision[]>): Promise<RevisionBase[]> {
    const bases: RevisionBase[] = [];
    for (const [blockId, list] of byId) {
      const rev = list[0]!.baseRev;
      if (rev === 0) continue;
      const latest = await this.parts.blocks.latest(blockId);
      const state = latest?.rev === rev ? latest : await this.parts.blocks.at(blockId, { rev });
      if (state?.rev === rev) bases.push({ blockId, rev, trxId: state.trxId });
    }
    return bases;
  }

  private async applyAt(
    member: string,
    revisions: readonly DirectRevision[],
    promotes: readonly PromoteRequest[] = [],
    bases: readonly RevisionBase[] = [],
  ): Promise<{ behind: Behind; promoted: readonly boolean[] }> {
    if (member !== this.self) {
      const carried = this.parts.decisions?.()?.takeDecided(member) ?? [];
      const request = {
        type: 'apply',
        revisions,
        ...(promotes.length > 0 ? { promote: promotes } : {}),
        ...(bases.length > 0 ? { bases } : {}),
      };
      type Applied = { behind?: Behind; promoted?: boolean[] };
      const answer = await this.remote<Applied>(
        member,
        carried.length > 0 ? { ...request, consensus: carried } : request,
      ).catch((error: unknown) => {
        // Too large with the decisions aboard: the log write goes alone (the decisions are lost, as
        // any consensus message may be; the cores catch up).
        if (carried.length > 0 && isEngineError(error, 'TOO_LARGE'))
          return this.remote<Applied>(member, request);
        throw error;
      });
      return {
        behind: Array.isArray(answer.behind) ? answer.behind : [],
        promoted: Array.isArray(answer.promoted) ? answer.promoted : [],
      };
    }
    const behind = await applyIfNewer(this.parts.blocks, revisions, bases);
    const promoted = promotes.length === 0 ? [] : await promoteEach(this.parts.local, undefined, promotes);
    await this.parts.blocks.sync();
    return { behind, promoted };
  }

  /** A block at a revision, from the first member of its cluster that has it. */
  async at(blockId: BlockId, rev: number): Promise<BlockState | undefined> {
    const answers = await this.ask<BlockState | null>(
      blockId,
      (member) =>
        member === this.self
          ? this.parts.blocks.at(blockId, { rev }).then((state) => state ?? null)
          : this.remote<BlockState | RepoRedirect | null>(member, { type: 'get', blockId, rev }).then(
              stateOf,
            ),
      (state) => state !== null,
    );
    for (const answer of answers) if (answer.ok && answer.value !== null) return answer.value;
    return undefined;
  }

  /** Revisions of a block from one member (this node's from its store), from `fromRev` on. */
  historyAt(member: string, blockId: BlockId, fromRev: number): Promise<BlockRevision[]> {
    return member === this.self
      ? this.parts.blocks.history(blockId, { fromRev })
      : this.remote<BlockRevision[]>(member, { type: 'history', blockId, fromRev });
  }

  /** Revisions of a block from the cluster member holding the most of them. */
  async history(blockId: BlockId): Promise<BlockRevision[]> {
    const answers = await this.ask<BlockRevision[]>(
      blockId,
      (member) =>
        member === this.self
          ? this.parts.blocks.history(blockId)
          : this.remote(member, { type: 'history', blockId }),
      (revisions) => revisions.length > 0,
    );
    let best: BlockRevision[] = [];
    for (const answer of answers) if (answer.ok && answer.value.length > best.length) best = answer.value;
    return best;
  }

  /** Pends on a block at any member of its cluster (deduplicated by transaction). */
  async pendingOf(blockId: BlockId): Promise<PendingTransform[]> {
    const answers = await this.ask<PendingTransform[]>(blockId, (member) =>
      member === this.self
        ? this.parts.blocks.pendingOf(blockId)
        : this.remote(member, { type: 'pending', blockId }),
    );
    const byTrx = new Map<string, PendingTransform>();
    for (const answer of answers) if (answer.ok) for (const p of answer.value) byTrx.set(p.trxId, p);
    return [...byTrx.values()];
  }

  /** Which members of a block's cluster hold it, and at what revision (for `block get`). */
  async holders(blockId: BlockId): Promise<{ peer: string; rev: number | null; error?: string }[]> {
    const cluster = this.clusterOf(blockId);
    return Promise.all(
      cluster.map(async (member) => {
        try {
          const state =
            member === this.self
              ? await this.parts.blocks.latest(blockId)
              : stateOf(
                  await this.remote<BlockState | RepoRedirect | null>(member, { type: 'get', blockId }),
                );
          return { peer: member, rev: state?.rev ?? null };
        } catch (error) {
          return { peer: member, rev: null, error: toEngineError(error).message };
        }
      }),
    );
  }

  /** Collection names known to any live member. */
  async catalog(local: () => Promise<string[]>): Promise<string[]> {
    const names = new Set(await local());
    await Promise.all(
      this.placement
        .members()
        .filter((m) => m !== this.self)
        .map(async (member) => {
          const remote = await this.remote<string[]>(member, { type: 'catalog' }).catch(() => []);
          for (const name of remote) names.add(name);
        }),
    );
    return [...names].sort();
  }

  /**
   * Nothing to wait for: what a networked commit relies on is durable before the coordinator gets
   * here — every pend was synced by each holder (this node's too) before it answered, and the
   * decision by the log write at a majority. What this node wrote since without a sync (revisions it
   * promoted or reinforced, decisions it learned) is a copy the cluster can rebuild: its pends are on
   * disk and their outcomes in the log. Flushing it here would put an fsync on every answer.
   */
  sync(): Promise<void> {
    return Promise.resolve();
  }

  /** A read is only as good as the majority behind it: fewer answers than that is NO_QUORUM. */
  private requireQuorum(blockId: BlockId, answers: readonly Answer<unknown>[]): void {
    const cluster = this.clusterOf(blockId);
    const ok = answers.filter((answer) => answer.ok).length;
    if (ok < quorumOf(cluster.length))
      throw new EngineError(
        'NO_QUORUM',
        `only ${ok} of the ${cluster.length} holders of block ${blockId} answered; a majority is needed`,
      );
  }

  private get self(): string {
    return this.placement.self;
  }

  /** Clusters computed since the membership last changed (each is a hash per member to compute). */
  private clusters = new Map<BlockId, readonly string[]>();
  private clustersOf: readonly string[] | undefined;

  /** The block's cluster (Placement.clusterOf), remembered until the membership changes. */
  private clusterOf(blockId: BlockId): readonly string[] {
    const members = this.placement.members();
    if (members !== this.clustersOf || this.clusters.size >= clustersCachedMax) {
      this.clusters = new Map();
      this.clustersOf = members;
    }
    let cluster = this.clusters.get(blockId);
    if (cluster === undefined) this.clusters.set(blockId, (cluster = this.placement.clusterOf(blockId)));
    return cluster;
  }

  private get placement(): Placement {
    return this.parts.placement;
  }

  /**
   * One request to a member, with this node's member digest: an answer that lists the member's
   * members (its digest differs) teaches this node those it had not met, before the caller counts a
   * majority of anything (clusterOf then includes them; the list is taken off the answer).
   */
  private async remote<T>(member: string, request: Record<string, unknown>): Promise<T> {
    const network = this.parts.network();
    if (network === undefined) throw new EngineError('UNAVAILABLE', 'the network is not up');
    const answer = await network.request<T>(member, repoProtocolName, {
      ...request,
      mv: this.placement.digest(),
    });
    if (answer !== null && typeof answer === 'object' && !Array.isArray(answer) && 'members' in answer) {
      const { members, ...rest } = answer as { members: unknown };
      if (Array.isArray(members))
        this.parts.learn?.(members.filter((m): m is string => typeof m === 'string'));
      return rest as T;
    }
    return answer;
  }

  /**
   * Asks every member of a block's cluster; resolves once a majority answered (or all settled).
   * Answers that arrive later are dropped. With `counts`, only answers it accepts make the majority
   * (a member that does not hold the block is no vote for its absence): with fewer, every answer
   * is awaited.
   */
  private ask<T>(
    blockId: BlockId,
    call: (member: string) => Promise<T>,
    counts: (value: T) => boolean = () => true,
  ): Promise<Answer<T>[]> {
    const cluster = this.clusterOf(blockId);
    return this.askEach(cluster, quorumOf(cluster.length), call, counts, true);
  }

  /**
   * `ask` of any members: resolves once `quorum` answers count (or all settled). With `failFast`, it
   * also resolves once every member still connected (or not yet met) has answered and fewer than
   * `quorum` of all answers are good, without waiting for members cut off from this node
   * (Placement.isCutOff: their connection dropped, none since). They are asked too, which dials
   * them again, but across a partition that dropped packets without a reset such a dial hangs until
   * its deadline; the caller refuses a read with fewer good answers than a majority (NO_QUORUM)
   * anyway, so waiting only made the minority side refuse seconds later. With a majority of good
   * answers, everyone is awaited as before (a member that does not hold the block is no vote for its
   * absence, and the one cut off may hold the newest revision).
   */
  private askEach<T>(
    members: readonly string[],
    quorum: number,
    call: (member: string) => Promise<T>,
    counts: (value: T) => boolean,
    failFast = false,
  ): Promise<Answer<T>[]> {
    if (members.length === 0) return Promise.resolve([]);
    const cutOff = new Set(failFast ? members.filter((member) => this.placement.isCutOff(member)) : []);
    const awaited = members.length - cutOff.size;
    return new Promise((resolve) => {
      const answers: Answer<T>[] = [];
      let settled = 0;
      let settledAwaited = 0;
      let good = 0;
      let counted = 0;
      const check = (): void => {
        if (counted >= quorum || settled === members.length) resolve(answers.slice());
        else if (cutOff.size > 0 && settledAwaited === awaited && good < quorum) resolve(answers.slice());
      };
      for (const member of members) {
        call(member)
          .then(
            (value) => {
              answers.push({ member, ok: true, value });
              good++;
              if (counts(value)) counted++;
            },
            (error: unknown) => answers.push({ member, ok: false, error: toEngineError(error) }),
          )
          .finally(() => {
            settled++;
            if (!cutOff.has(member)) settledAwaited++;
            check();
          });
      }
      // Every member is cut off: nothing to wait for (the requests go on in the background).
      if (awaited === 0) check();
    });
  }

  /**
   * The members a block's cluster no longer includes because `count` nearer ones joined (the next
   * nearest after the cluster): the block's holders before those members arrived. Asked, with every
   * answer awaited, when members of the cluster do not hold the block yet.
   */
  private askDisplaced<T>(
    blockId: BlockId,
    count: number,
    call: (member: string) => Promise<T>,
  ): Promise<Answer<T>[]> {
    const displaced = this.placement.displacedFrom(blockId, count);
    return this.askEach(displaced, displaced.length, call, () => true);
  }

  /**
   * Sends each member the ids (of `blockIds`) whose cluster it belongs to; waits for every answer.
   * Answers may name members this node had not met (`remote`): the clusters then grow, and the
   * members that joined them are sent their ids too (a round more, at most `fanOutRoundsMax`), so
   * the caller counts a majority of the clusters as the members that answered see them.
   */
  private async fanOut(
    blockIds: readonly BlockId[],
    call: (member: string, ids: BlockId[]) => Promise<unknown>,
  ): Promise<Map<string, Answer<unknown>>> {
    const answers = new Map<string, Answer<unknown>>();
    for (let round = 0; round < fanOutRoundsMax; round++) {
      const members = this.placement.members();
      const byMember = new Map<string, BlockId[]>();
      for (const id of blockIds) {
        for (const member of this.clusterOf(id)) {
          if (round > 0 && answers.has(member)) continue;
          let list = byMember.get(member);
          if (list === undefined) byMember.set(member, (list = []));
          list.push(id);
        }
      }
      await Promise.all(
        [...byMember].map(async ([member, ids]) => {
          try {
            if (!this.placement.isLive(member))
              throw new EngineError('UNAVAILABLE', `member ${member} is not connected`);
            answers.set(member, { member, ok: true, value: await call(member, ids) });
          } catch (error) {
            answers.set(member, { member, ok: false, error: toEngineError(error) });
          }
        }),
      );
      if (this.placement.members() === members) break;
    }
    return answers;
  }
}

/**
 * Why this node's own part of a write failed, for the message of a write that found no majority: a
 * node whose store refuses writes (a full disk) is the cause its operator can fix, not the network.
 */
function ownFailure(result: unknown): string {
  return result instanceof EngineError ? ` (this node: ${result.message})` : '';
}

/** What a member answered about one block of a pend (undefined: it did not answer, or failed). */
function pendOutcomeAt(
  results: ReadonlyMap<string, PendAnswer | EngineError>,
  sent: ReadonlyMap<string, BlockId[]>,
  member: string,
  blockId: BlockId,
): PendOutcome | undefined {
  const result = results.get(member);
  if (result === undefined || result instanceof EngineError) return undefined;
  return result.outcomes[sent.get(member)!.indexOf(blockId)];
}

/** This node's collections for a hello's answer, when it has any (DatabaseMarks). */
async function answerMarks(parts: RepoServerParts): Promise<{ collections?: Marks }> {
  const marks = parts.marks === undefined ? {} : await parts.marks().catch((): Marks => ({}));
  return Object.keys(marks).length > 0 ? { collections: marks } : {};
}
