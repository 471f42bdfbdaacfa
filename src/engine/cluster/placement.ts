import { leadershipOrder, quorumOf } from '../consensus/values.js';

/**
 * Which peers hold a block. The members of the database are this node and the connected peers that
 * serve the repo protocol (light clients do not). A block's cluster is the `k` members nearest to
 * sha256(block id) — the same XOR order consensus uses to pick a group's leader, so a tail group's
 * leader is the first live member of the cluster recorded when its log block was created.
 */
export class Placement {
  private readonly live = new Set<string>();
  private sorted: string[] | undefined;

  constructor(
    readonly self: string,
    readonly k: number,
  ) {}

  /** A peer that answered the repo protocol's hello: it holds blocks and votes. */
  add(peer: string): void {
    if (peer === this.self || this.live.has(peer)) return;
    this.live.add(peer);
    this.sorted = undefined;
  }

  remove(peer: string): void {
    if (this.live.delete(peer)) this.sorted = undefined;
  }

  isLive(peer: string): boolean {
    return peer === this.self || this.live.has(peer);
  }

  /** This node and every live member, sorted. */
  members(): readonly string[] {
    this.sorted ??= [this.self, ...this.live].sort();
    return this.sorted;
  }

  /** The k members nearest the block (all of them when there are fewer), nearest first. */
  clusterOf(blockId: string): string[] {
    return leadershipOrder(blockId, this.members()).slice(0, this.k);
  }

  /** The live member of a recorded group nearest the block: where its log tail is served. */
  leaderOf(blockId: string, groupMembers: readonly string[]): string | undefined {
    return leadershipOrder(blockId, groupMembers).find((member) => this.isLive(member));
  }

  /** True when a majority of a recorded group is live in this node's view. */
  hasQuorum(groupMembers: readonly string[]): boolean {
    const live = groupMembers.filter((member) => this.isLive(member)).length;
    return live >= quorumOf(groupMembers.length);
  }
}
