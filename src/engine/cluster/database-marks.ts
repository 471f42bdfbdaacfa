/**
 * Whether a peer met for the first time holds the same database as this node. Two data directories
 * that each became a database on their own (each ran `collection create accounts`, as the quick start
 * does) must not merge when their nodes meet: a collection's header block has the same id in both
 * (it is derived from the name), so each node would take the other's copy for its own and serve its
 * own history of the collection, and the two would never agree again.
 *
 * What marks a database is how its collections came to be: a collection is its header block, and
 * the header's first revision names the transaction that created it. A hello carries the
 * collections this node recorded creating or seeing created (its catalog), each with that
 * transaction; the peer looks each one up in the header copies it holds. The same name created by
 * different transactions is two databases. Collections only one side knows say nothing (a node that
 * joins a network holds none of them yet). Only peers that are not members yet are checked: a member
 * once admitted stays one (a header revision that lost a race can stay on a minority of its holders,
 * which must not split a database that is one).
 */
import { collectionHeaderId } from '../base/ids.js';
import type { BlockState } from '../storage/block-store.js';

/** Collections one hello lists at most (names up to 128 characters and a 22-character id: ≤ 80 KiB). */
export const marksListedMax = 512;

/** Collection name → id of the transaction that created it. */
export type Marks = Readonly<Record<string, string>>;

/** A collection both databases have, created by different transactions. */
export interface Clash {
  readonly collection: string;
  /** The creating transaction of this node's copy. */
  readonly here: string;
  /** The creating transaction of the peer's. */
  readonly there: string;
}

export class DatabaseMarks {
  /** Creating transactions found so far (they never change). */
  private readonly creations = new Map<string, string>();

  constructor(
    private readonly catalog: () => Promise<string[]>,
    private readonly blocks: {
      at(id: string, point: { readonly rev: number }): Promise<BlockState | undefined>;
    },
  ) {}

  /** This node's marks: the first marksListedMax names of its catalog whose header it holds. */
  async marks(): Promise<Marks> {
    const names = (await this.catalog()).sort().slice(0, marksListedMax);
    const marks: Record<string, string> = {};
    for (const name of names) {
      const trx = await this.creation(name);
      if (trx !== undefined) marks[name] = trx;
    }
    return marks;
  }

  /** The first collection of `theirs` (a peer's marks, unchecked) that this node holds created otherwise. */
  async clash(theirs: unknown): Promise<Clash | undefined> {
    if (theirs === null || typeof theirs !== 'object' || Array.isArray(theirs)) return undefined;
    for (const [collection, there] of Object.entries(theirs as Record<string, unknown>).slice(
      0,
      marksListedMax,
    )) {
      if (typeof there !== 'string') continue;
      const here = await this.creation(collection);
      if (here !== undefined && here !== there) return { collection, here, there };
    }
    return undefined;
  }

  /** The transaction that created this node's copy of a collection's header, if it holds one. */
  private async creation(name: string): Promise<string | undefined> {
    const known = this.creations.get(name);
    if (known !== undefined) return known;
    const first = await this.blocks.at(collectionHeaderId(name), { rev: 1 }).catch(() => undefined);
    if (first === undefined) return undefined;
    this.creations.set(name, first.trxId);
    return first.trxId;
  }
}
