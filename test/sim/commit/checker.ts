import type { ConsensusCertificate, ConsensusValue } from '../../../src/engine/consensus/types.js';
import { valueDigest } from '../../../src/engine/consensus/values.js';
import { entryValue } from '../../../src/engine/consensus/consensus-certifier.js';
import type { DecisionFields } from '../../../src/engine/transactions/certifier.js';

type Fields = Omit<DecisionFields, 'network' | 'membership'>;

/**
 * The safety invariants of the commit protocol that can be checked as decisions happen (after every
 * step of the simulation):
 *
 * - consensus: at most one value is decided per slot of every group (block id and membership), as
 *   reported by every member of every incarnation;
 * - certificates: every decided log entry names a decision some tail asked for (its value digest binds
 *   collection, log block, LSN, transaction and decision); for each collection and LSN every
 *   certificate names the same transaction; no transaction is certified both committed and aborted
 *   (in any of its collections);
 * - no honest member is ever proven to equivocate.
 *
 * The same rules are applied again at the end to what every node's disk holds (log entries and the
 * persisted consensus decisions), see `observeLogEntry` and `observeDecided`.
 */
export class CommitChecker {
  /** group → slot → digest (and who reported it first). */
  private readonly slots = new Map<string, Map<number, { digest: string; by: string }>>();
  /** Decision fields by the digest of the consensus value they are proposed as (values without `lsn`). */
  private readonly proposed = new Map<string, Fields>();
  /** The collection of every log block a tail proposed decisions in. */
  private readonly collectionOf = new Map<string, string>();
  /** collection#lsn#trx → the log block its decisions were proposed in. */
  private readonly blocks = new Map<string, string>();
  /** block|trx|decision → LSNs proposed (a digest may bind content the checker does not see). */
  private readonly proposedAt = new Map<string, Set<number>>();
  /** collection#lsn → the transaction certified there, and where it was seen. */
  private readonly owners = new Map<string, { trxId: string; by: string }>();
  /** trxId → decisions certified for it (any collection). */
  private readonly decisions = new Map<string, Set<string>>();
  /** collection#trxId → LSNs it was certified at. */
  private readonly positions = new Map<string, Set<number>>();
  readonly violations: string[] = [];
  decidedSlots = 0;

  constructor(private readonly network: string) {}

  /** A tail is about to propose a log decision. */
  certifying(fields: Fields): void {
    this.collectionOf.set(fields.blockId, fields.collection);
    this.blocks.set(`${fields.collection}#${fields.lsn}#${fields.trxId}`, fields.blockId);
    const key = `${fields.blockId}|${fields.trxId}|${fields.decision}`;
    let lsns = this.proposedAt.get(key);
    if (lsns === undefined) this.proposedAt.set(key, (lsns = new Set()));
    lsns.add(fields.lsn);
    const value = entryValue({ ...fields, network: this.network });
    this.proposed.set(value.digest, fields);
  }

  /** A consensus decision reported by a node (or found on its disk). */
  observeDecided(
    by: string,
    blockId: string,
    slot: number,
    value: ConsensusValue,
    certificate: ConsensusCertificate,
  ): void {
    const group = `${blockId}.${certificate.membership}`;
    let slots = this.slots.get(group);
    if (slots === undefined)
      this.slots.set(group, (slots = new Map<number, { digest: string; by: string }>()));
    const digest = valueDigest(value);
    const seen = slots.get(slot);
    if (seen === undefined) {
      slots.set(slot, { digest, by });
      this.decidedSlots++;
    } else if (seen.digest !== digest) {
      this.violate(
        `two values decided in slot ${slot} of group ${short(group)}: ${seen.digest} (${seen.by}) and ${digest} (${by})`,
      );
    }
    if (value.kind !== 'entry') return;
    // An entry value names its LSN; one whose digest binds only the decision fields is looked up.
    const lsn = (value as { lsn?: unknown }).lsn;
    const collection = this.collectionOf.get(blockId);
    const fields: Fields | undefined =
      typeof lsn === 'number' && collection !== undefined
        ? { collection, blockId, lsn, trxId: value.trxId, decision: value.decision }
        : (this.proposed.get(value.digest) ?? this.proposedOnce(blockId, value.trxId, value.decision));
    if (fields === undefined) {
      this.violate(
        `decided entry ${value.trxId} (${value.decision}) in slot ${slot} was never proposed by a tail`,
      );
      return;
    }
    if (fields.blockId !== blockId)
      this.violate(
        `decided entry ${value.trxId} names log block ${short(fields.blockId)}, decided in ${short(blockId)}`,
      );
    this.certified(fields.collection, fields.lsn, fields.trxId, fields.decision, `${by} slot ${slot}`);
  }

  /** The fields of the one proposal of a decision for a transaction in a block, if there was one. */
  private proposedOnce(blockId: string, trxId: string, decision: string): Fields | undefined {
    const lsns = this.proposedAt.get(`${blockId}|${trxId}|${decision}`);
    const collection = this.collectionOf.get(blockId);
    if (lsns?.size !== 1 || collection === undefined) return undefined;
    return { collection, blockId, lsn: [...lsns][0]!, trxId, decision: decision as Fields['decision'] };
  }

  /** A log entry (with its certificate) held in some node's log block. */
  observeLogEntry(
    by: string,
    entry: { collection: string; lsn: number; trxId: string; status: string },
    certificate: { collection: string; lsn: number; trxId: string; decision: string },
  ): void {
    if (
      certificate.collection !== entry.collection ||
      certificate.lsn !== entry.lsn ||
      certificate.trxId !== entry.trxId ||
      certificate.decision !== entry.status
    )
      this.violate(
        `log entry ${entry.collection}#${entry.lsn} (${entry.trxId} ${entry.status}) on ${by} carries the certificate of ${certificate.collection}#${certificate.lsn} (${certificate.trxId} ${certificate.decision})`,
      );
    this.certified(entry.collection, entry.lsn, entry.trxId, entry.status, `${by} log`);
  }

  private certified(collection: string, lsn: number, trxId: string, decision: string, by: string): void {
    const key = `${collection}#${lsn}`;
    const owner = this.owners.get(key);
    if (owner === undefined) this.owners.set(key, { trxId, by });
    else if (owner.trxId !== trxId)
      this.violate(
        `two certificates for LSN ${lsn} of ${collection}: transaction ${owner.trxId} (${owner.by}) and ${trxId} (${by})`,
      );
    let decisions = this.decisions.get(trxId);
    if (decisions === undefined) this.decisions.set(trxId, (decisions = new Set()));
    decisions.add(decision);
    if (decisions.has('committed') && decisions.has('aborted'))
      this.violate(
        `transaction ${trxId} certified both committed and aborted (last: ${collection}#${lsn}, ${by})`,
      );
    let positions = this.positions.get(`${collection}#${trxId}`);
    if (positions === undefined) this.positions.set(`${collection}#${trxId}`, (positions = new Set()));
    positions.add(lsn);
  }

  /** The log block a transaction's decision at an LSN was proposed in (its entry is there or in its successor). */
  blockOf(collection: string, lsn: number, trxId: string): string | undefined {
    return this.blocks.get(`${collection}#${lsn}#${trxId}`);
  }

  /** The transaction certified at an LSN, if any. */
  ownerOf(collection: string, lsn: number): string | undefined {
    return this.owners.get(`${collection}#${lsn}`)?.trxId;
  }

  /** Transactions certified at more than one LSN of a collection (a symptom worth reporting). */
  movedTransactions(): string[] {
    return [...this.positions]
      .filter(([, lsns]) => lsns.size > 1)
      .map(([key, lsns]) => `${key} at ${[...lsns].join(', ')}`);
  }

  violate(message: string): void {
    if (this.violations.length < 20) this.violations.push(message);
  }
}

function short(id: string): string {
  return id.length > 16 ? `${id.slice(0, 12)}…` : id;
}
