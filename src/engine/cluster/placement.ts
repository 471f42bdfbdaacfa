import { createHash } from 'node:crypto';
import { leadershipOrder, quorumOf } from '../consensus/values.js';

/**
 * Which peers hold a block. The members of the database are the peers that answered the repo
 * protocol's hello (light clients do not serve it), remembered across restarts and disconnections: a
 * block's cluster is the `k` members nearest to sha256(block id) — the XOR order consensus uses to
 * pick a group's leader — whether or not they are reachable right now. So a partition never shrinks
 * a cluster: the side without a majority of it cannot write, and a majority of it always overlaps
 * every earlier majority. Liveness (connected now) only decides where requests go first.
 *
 * Members also learn of each other through members they met (`introduce`: a hello carries the member
 * list both ways, and a repo answer carries it when the asker's `digest` differs), so a node that has
 * not met a joiner yet still counts it in the clusters it computes — a write then needs a majority of
 * the cluster the other members see, not of a smaller one (docs/cluster.md, "Members joining").
 */
export class Placement {
  private readonly known = new Set<string>();
  /** Members known only because another member named them: not met (no hello answered) yet. */
  private readonly introduced = new Set<string>();
  private readonly live = new Set<string>();
  /** When each unreachable member was last seen going away (or this node started without it). */
  private readonly downSince = new Map<string, number>();
  /**
   * Members whose connection closed while this node ran, with no connection to them since: known to
   * be down or cut off, unlike members merely not connected yet (which a request dials and waits for).
   */
  private readonly lost = new Set<string>();
  private sorted: string[] | undefined;
  /** digest() of the member list it was computed for. */
  private digested: { readonly of: readonly string[]; readonly digest: string } | undefined;

  constructor(
    readonly self: string,
    readonly k: number,
    known: Iterable<string> = [],
    private readonly now: () => number = Date.now,
  ) {
    const start = now();
    for (const peer of known)
      if (peer !== self) {
        this.known.add(peer);
        this.downSince.set(peer, start);
      }
  }

  /**
   * A peer that answered (or sent) the repo protocol's hello. True when it was not met before (not
   * known, or known only by introduction): the caller welcomes it (rebalance, regroup).
   */
  add(peer: string): boolean {
    if (peer === this.self) return false;
    this.live.add(peer);
    this.lost.delete(peer);
    this.downSince.delete(peer);
    if (this.known.has(peer)) return this.introduced.delete(peer);
    this.known.add(peer);
    this.sorted = undefined;
    return true;
  }

  /**
   * A member another member named (its hello or a repo answer listed it): counted in every cluster
   * from now on, unreachable until it connects or answers hello. True when it was not known before.
   */
  introduce(peer: string): boolean {
    if (peer === this.self || this.known.has(peer)) return false;
    this.known.add(peer);
    this.introduced.add(peer);
    this.downSince.set(peer, this.now());
    this.sorted = undefined;
    return true;
  }

  /**
   * A connection to the peer came up: a member met before (it answered hello once, maybe in an earlier
   * run of this node) is reachable again at once, before its hello is answered on this connection —
   * a restarted node must not refuse its members' requests meanwhile (sim seed 861 with
   * introductions: a decision refused BAD_INPUT was taken for final). Unknown peers still need hello.
   */
  connected(peer: string): void {
    if (peer === this.self || !this.known.has(peer)) return;
    this.live.add(peer);
    this.lost.delete(peer);
    this.downSince.delete(peer);
  }

  /** The peer disconnected: still a member, no longer reachable. */
  remove(peer: string): void {
    this.live.delete(peer);
    if (this.known.has(peer)) this.lost.add(peer);
    if (this.known.has(peer) && !this.downSince.has(peer)) this.downSince.set(peer, this.now());
  }

  /** Forgets a member altogether (it left the database): its clusters move to others. */
  evict(peer: string): void {
    this.live.delete(peer);
    this.lost.delete(peer);
    this.downSince.delete(peer);
    this.introduced.delete(peer);
    if (this.known.delete(peer)) this.sorted = undefined;
  }

  /**
   * Forgets a peer known only because another member named it (never met): it turned out not to be
   * a member after all (it holds another database). True when it was forgotten.
   */
  forgetIntroduced(peer: string): boolean {
    if (!this.introduced.has(peer)) return false;
    this.evict(peer);
    return true;
  }

  isLive(peer: string): boolean {
    return peer === this.self || this.live.has(peer);
  }

  /** How long a member has been unreachable: 0 while it is live (and for this node). */
  unreachableFor(peer: string): number {
    if (this.isLive(peer)) return 0;
    const since = this.downSince.get(peer);
    return since === undefined ? 0 : Math.max(0, this.now() - since);
  }

  /**
   * True for a member whose connection closed while this node ran and that has not connected since
   * (see `lost`): a request to it dials it again, but a read need not wait for that to fail.
   */
  isCutOff(peer: string): boolean {
    return peer !== this.self && !this.live.has(peer) && this.lost.has(peer);
  }

  isMember(peer: string): boolean {
    return peer === this.self || this.known.has(peer);
  }

  /** This node and every known member, sorted. */
  members(): readonly string[] {
    this.sorted ??= [this.self, ...this.known].sort();
    return this.sorted;
  }

  /**
   * A short digest of the member list (members()): two nodes whose digests differ know different
   * members, and exchange their lists (a repo request carries the asker's digest).
   */
  digest(): string {
    const members = this.members();
    if (this.digested?.of !== members)
      this.digested = {
        of: members,
        digest: createHash('sha256').update(members.join('\n')).digest('base64url').slice(0, 16),
      };
    return this.digested.digest;
  }

  /** Members connected now, this node included. */
  liveMembers(): string[] {
    return this.members().filter((member) => this.isLive(member));
  }

  /** The k members nearest the block (all of them when there are fewer), nearest first. */
  clusterOf(blockId: string): string[] {
    return leadershipOrder(blockId, this.members()).slice(0, this.k);
  }

  /**
   * The `count` members nearest the block after its cluster: when that many members of the cluster
   * joined it recently, these are the holders they displaced, which keep the block until the
   * joiners are handed it (docs/cluster.md, "Members joining").
   */
  displacedFrom(blockId: string, count: number): string[] {
    return leadershipOrder(blockId, this.members()).slice(this.k, this.k + Math.max(0, count));
  }

  /** The live member of a recorded group nearest the block: where its log tail is served. */
  leaderOf(blockId: string, groupMembers: readonly string[]): string | undefined {
    return leadershipOrder(blockId, groupMembers).find((member) => this.isLive(member));
  }

  /** True when a majority of a group (recorded, or a block's cluster) is live in this node's view. */
  hasQuorum(groupMembers: readonly string[]): boolean {
    const live = groupMembers.filter((member) => this.isLive(member)).length;
    return live >= quorumOf(groupMembers.length);
  }
}
