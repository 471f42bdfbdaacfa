/**
 * Wires a running node's SoloNode to the network: its coordinator commits through the blocks'
 * clusters and the tail groups' consensus instead of in-process. Consensus starts with the network,
 * after the store is open, so the proposer is bound late.
 */
import { EngineError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import { Cluster } from '../cluster/cluster.js';
import type { ConsensusProposer } from '../consensus/memory-network.js';
import type { ConsensusCertificate, ConsensusGroup, ConsensusValue } from '../consensus/types.js';
import type { RawStore } from '../storage/raw-store.js';
import type { NodeWiring, WiringParts } from './solo-node.js';
import { memberPrefix } from './store-keys.js';
import type { DeferredSyncs } from '../cluster/deferred-syncs.js';

/** A proposer that forwards to the consensus edge once the network is up. */
export class LateProposer implements ConsensusProposer {
  target: ConsensusProposer | undefined;

  propose(group: ConsensusGroup, value: ConsensusValue): Promise<ConsensusCertificate> {
    if (this.target === undefined)
      return Promise.reject(
        new EngineError('UNAVAILABLE', 'the node is still joining its network; try again'),
      );
    return this.target.propose(group, value);
  }

  votedBeyond(group: Pick<ConsensusGroup, 'blockId' | 'members'>, lsn: number): Promise<boolean> {
    return this.target?.votedBeyond?.(group, lsn) ?? Promise.resolve(false);
  }
}

export interface ClusterWiring {
  readonly proposer: LateProposer;
  /** Set once SoloNode has called `wire`. */
  cluster: Cluster | undefined;
  readonly wire: (parts: WiringParts) => NodeWiring;
}

export interface MemberBook {
  /** The members met, as the store held them at start. */
  readonly known: readonly string[];
  /** The listen addresses remembered of every member (each ending in /p2p/<peer id>). */
  addresses(): string[];
  /**
   * Remembers a member, with its listen addresses when given or known to `addressesOf` (they replace
   * those remembered; without any, a member already remembered is left as it is).
   */
  remember(peer: string, addresses?: readonly string[]): Promise<void>;
  /** Where `remember` looks up a member's addresses when it is given none (set once the network is up). */
  addressesOf: ((peer: string) => readonly string[] | undefined) | undefined;
  /** Forgets a member (it holds another database: Cluster.refuse). */
  forget(peer: string): Promise<void>;
  /** When this node last saw a member connected (its connection closed, or this node stopped), if ever. */
  lastSeen(peer: string): number | undefined;
  /**
   * Records that these members were connected until `at` (a connection closed, or this node is
   * stopping). Written without a sync of its own: durable with the store's next one, or its close.
   */
  seen(peers: readonly string[], at: number): Promise<void>;
}

export function clusterWiring(
  network: string,
  clusterSize: number,
  members?: MemberBook,
  options: { readonly memberAbsentMs?: number; readonly deferred?: DeferredSyncs } = {},
): ClusterWiring {
  const proposer = new LateProposer();
  const wiring: ClusterWiring = {
    proposer,
    cluster: undefined,
    wire: (parts) => {
      const cluster = new Cluster(
        {
          self: parts.identity.peerId,
          blocks: parts.blocks,
          proposer,
          clock: parts.clock,
          rng: parts.rng,
          catalog: parts.catalog,
          coordinatorId: parts.coordinatorId,
          ...(options.deferred !== undefined ? { deferred: options.deferred } : {}),
          ...(members === undefined
            ? {}
            : {
                knownMembers: members.known,
                rememberMember: (peer: string) => members.remember(peer),
                forgetMember: (peer: string) => members.forget(peer),
              }),
        },
        {
          network,
          k: clusterSize,
          ...(options.memberAbsentMs !== undefined ? { memberAbsentMs: options.memberAbsentMs } : {}),
        },
      );
      wiring.cluster = cluster;
      return {
        repo: cluster.repo,
        tails: cluster.tails,
        certifier: cluster.certifier,
        membersFor: (id) => cluster.membersFor(id),
        reader: cluster.reader,
        catalog: () => cluster.repo.catalog(parts.catalog),
        holders: (id) => cluster.repo.holders(id),
      };
    },
  };
  return wiring;
}

/** What a node keeps of a member: the listen addresses it last announced, and when it was last seen. */
interface MemberRecord {
  readonly addresses: readonly string[];
  readonly lastSeenAt?: number;
}

/**
 * The members a node has met, kept in its store under n/<peer id>, each with the listen addresses it
 * last announced and when it was last seen connected (`{"addresses":[…],"lastSeenAt":…}`; a bare JSON
 * list of addresses, or `1`, from before those were kept), so that a node restarted without bootstrap
 * addresses dials its members again, and can say how long one has been away.
 */
export async function memberBook(raw: RawStore): Promise<MemberBook> {
  const book = new Map<string, MemberRecord>();
  for await (const [key, value] of raw.iterate({ gte: memberPrefix, lt: memberPrefix + '\uffff' }))
    book.set(key.slice(memberPrefix.length), memberRecord(value));
  /** Records members as given, in one batch. */
  const write = (records: readonly (readonly [string, MemberRecord])[]): Promise<void> => {
    for (const [peer, record] of records) book.set(peer, record);
    return raw.batch(
      records.map(([peer, record]) => ({
        type: 'put' as const,
        key: memberPrefix + peer,
        value: JSON.stringify(record),
      })),
    );
  };
  const members: MemberBook = {
    known: [...book.keys()],
    addresses: () => [...book.values()].flatMap((record) => record.addresses),
    addressesOf: undefined,
    remember: async (peer, given) => {
      const before = book.get(peer);
      const addresses = given ?? members.addressesOf?.(peer);
      const after =
        addresses === undefined || addresses.length === 0
          ? (before?.addresses ?? [])
          : addresses.slice(0, limits.memberAddressesMax);
      const kept = before?.addresses;
      if (kept !== undefined && kept.length === after.length && kept.every((a, i) => a === after[i])) return;
      await write([[peer, { ...before, addresses: after }]]);
      await raw.sync();
    },
    forget: async (peer) => {
      if (!book.delete(peer)) return;
      await raw.batch([{ type: 'del', key: memberPrefix + peer }]);
      await raw.sync();
    },
    lastSeen: (peer) => book.get(peer)?.lastSeenAt,
    seen: async (peers, at) => {
      const records = peers.flatMap((peer): [string, MemberRecord][] => {
        const before = book.get(peer);
        return before === undefined ? [] : [[peer, { ...before, lastSeenAt: at }]];
      });
      if (records.length > 0) await write(records);
    },
  };
  return members;
}

function memberRecord(value: string): MemberRecord {
  const addressesIn = (list: unknown): readonly string[] =>
    Array.isArray(list) ? list.filter((a): a is string => typeof a === 'string') : [];
  try {
    const parsed: unknown = JSON.parse(value);
    if (Array.isArray(parsed)) return { addresses: addressesIn(parsed) };
    if (typeof parsed === 'object' && parsed !== null) {
      const { addresses, lastSeenAt } = parsed as { addresses?: unknown; lastSeenAt?: unknown };
      return {
        addresses: addressesIn(addresses),
        ...(typeof lastSeenAt === 'number' && Number.isFinite(lastSeenAt) ? { lastSeenAt } : {}),
      };
    }
  } catch {
    // A record this version cannot read: the member is known, nothing else.
  }
  return { addresses: [] };
}
