/**
 * Durable consensus state of a node, in its RawStore, one record per fact under the group's prefix
 * `k/<group id>/`: `p` (the promise), `a/<slot>` (the latest accepted value of a slot), `d/<slot>`
 * (a decision), `e/<member>` (an equivocation proof). A persist writes only what changed, in one
 * atomic batch, and resolves only after `sync()`; concurrent persists of different groups share a
 * sync (the RawStore group-commits). So a step costs the size of its own record, not of the group's
 * whole history (a group decides up to consensusSlotsPerGroupMax slots). State written by earlier
 * versions as one canonical-JSON value under `k/<group id>` is still read.
 */
import { EngineError } from '../base/errors.js';
import type { ConsensusStore, PersistOptions } from '../consensus/driver.js';
import { emptyPersisted, mergePersisted } from '../consensus/persisted.js';
import type {
  AcceptedSlot,
  Ballot,
  ConsensusCertificate,
  EquivocationProof,
  PersistedGroupState,
  PersistRecord,
} from '../consensus/types.js';
import { isBallot } from '../consensus/values.js';
import type { RawOp, RawStore } from '../storage/raw-store.js';
import type { DeferredSyncs } from './deferred-syncs.js';

/** The key prefix of consensus state (the block store owns b/ r/ m/ l/ p/ x/ s/, the node i/ c/). */
export const consensusKeyPrefix = 'k/';

/** States of recently persisted groups kept in memory, so a step reads nothing before it writes. */
const cachedGroupsMax = 1024;

export class RawConsensusStore implements ConsensusStore {
  /** Latest state per group, for groups persisted lately (least recently used first). */
  private readonly cache = new Map<string, PersistedGroupState>();
  /** Per group, the persist in progress: read-merge-write of one group never interleaves. */
  private readonly chains = new Map<string, Promise<void>>();

  /**
   * `deferred`: where persists asked to defer their sync (PersistOptions.deferSync) are counted, so
   * that the node settles them before it sends a write to another member. Without it every persist
   * is synced.
   */
  constructor(
    private readonly raw: RawStore,
    private readonly deferred?: DeferredSyncs,
  ) {}

  /**
   * What was persisted for a group. Group ids are block ids, or anything else without '/' the caller
   * chooses (the network edge scopes them by membership).
   */
  async load(groupId: string): Promise<PersistedGroupState | undefined> {
    await this.chains.get(groupId);
    const cached = this.cache.get(groupId);
    if (cached !== undefined) return cached;
    return this.read(groupId);
  }

  persist(groupId: string, record: PersistRecord, options: PersistOptions = {}): Promise<void> {
    const previous = this.chains.get(groupId) ?? Promise.resolve();
    const deferred = options.deferSync === true ? this.deferred : undefined;
    const next = previous.then(() => this.write(groupId, record, deferred));
    const tail = next.catch(() => undefined);
    this.chains.set(groupId, tail);
    void tail.then(() => {
      if (this.chains.get(groupId) === tail) this.chains.delete(groupId);
    });
    return next;
  }

  /** `deferred`: leave the sync to a later write, counted there (PersistOptions.deferSync). */
  private async write(groupId: string, record: PersistRecord, deferred?: DeferredSyncs): Promise<void> {
    const base = this.cache.get(groupId) ?? (await this.read(groupId)) ?? emptyPersisted;
    const merged = mergePersisted(base, record);
    // Until this write is known durable, the next one reads the store again.
    this.cache.delete(groupId);
    const ops = changedRecords(groupId, base, merged);
    if (ops.length > 0) await this.raw.batch(ops);
    // Promises, votes and equivocation proofs are durable before the core acts on them. Decisions
    // alone are not waited for: they go to disk with the store's next synced write, and one a crash
    // loses is learned again from the votes the members keep (the certificate is also in the log).
    if (deferred !== undefined) deferred.defer();
    else if (!decisionsOnly(record)) await this.raw.sync();
    this.cache.set(groupId, merged);
    if (this.cache.size > cachedGroupsMax) this.cache.delete(this.cache.keys().next().value!);
  }

  private async read(groupId: string): Promise<PersistedGroupState | undefined> {
    const prefix = `${keyOf(groupId)}/`;
    const legacy = await this.raw.get(keyOf(groupId));
    let state: PersistedGroupState | undefined =
      legacy === undefined ? undefined : parseState(groupId, legacy);
    const record: {
      promised?: Ballot;
      accepted: AcceptedSlot[];
      decided: ConsensusCertificate[];
      equivocations: EquivocationProof[];
    } = { accepted: [], decided: [], equivocations: [] };
    let found = false;
    // '0' follows '/' in code order: the range holds exactly the group's records.
    for await (const [key, text] of this.raw.iterate({ gte: prefix, lt: `${keyOf(groupId)}0` })) {
      found = true;
      const kind = key.slice(prefix.length, prefix.length + 1);
      const value = parseRecord(groupId, text);
      if (kind === 'p' && isBallot(value)) record.promised = value;
      else if (kind === 'a') record.accepted.push(value as AcceptedSlot);
      else if (kind === 'd') record.decided.push(value as ConsensusCertificate);
      else if (kind === 'e') record.equivocations.push(value as EquivocationProof);
      else throw new EngineError('CORRUPT', `the stored consensus state of group ${groupId} is unreadable`);
    }
    if (!found) return state;
    state = mergePersisted(state ?? emptyPersisted, record);
    return state;
  }
}

/** The records that differ between two states of a group (states only grow; see mergePersisted). */
/** A record of decisions only: nothing in it is a promise or a vote the member made. */
function decisionsOnly(record: PersistRecord): boolean {
  return (
    record.promised === undefined &&
    (record.accepted?.length ?? 0) === 0 &&
    (record.equivocations?.length ?? 0) === 0
  );
}

function changedRecords(groupId: string, base: PersistedGroupState, merged: PersistedGroupState): RawOp[] {
  const prefix = `${keyOf(groupId)}/`;
  const ops: RawOp[] = [];
  if (merged.promised !== base.promised && merged.promised !== null)
    ops.push({ type: 'put', key: `${prefix}p`, value: JSON.stringify(merged.promised) });
  if (merged.accepted !== base.accepted) {
    const before = new Map(base.accepted.map((a) => [a.slot, a]));
    for (const a of merged.accepted)
      if (before.get(a.slot) !== a)
        ops.push({ type: 'put', key: `${prefix}a/${slotKey(a.slot)}`, value: JSON.stringify(a) });
  }
  if (merged.decided !== base.decided) {
    const before = new Set(base.decided.map((c) => c.slot));
    for (const c of merged.decided)
      if (!before.has(c.slot))
        ops.push({ type: 'put', key: `${prefix}d/${slotKey(c.slot)}`, value: JSON.stringify(c) });
  }
  if (merged.equivocations !== base.equivocations) {
    const before = new Set(base.equivocations.map((p) => p.member));
    for (const p of merged.equivocations)
      if (!before.has(p.member))
        ops.push({ type: 'put', key: `${prefix}e/${p.member}`, value: JSON.stringify(p) });
  }
  return ops;
}

/** Slots as fixed-width keys (they sort as numbers). */
function slotKey(slot: number): string {
  return slot.toString().padStart(6, '0');
}

function parseRecord(groupId: string, text: string): unknown {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null) return value;
  } catch {
    // fall through
  }
  throw new EngineError('CORRUPT', `the stored consensus state of group ${groupId} is unreadable`);
}

function keyOf(groupId: string): string {
  if (groupId.length === 0 || groupId.includes('/'))
    throw new EngineError(
      'BAD_INPUT',
      `consensus group id ${JSON.stringify(groupId)} must be non-empty, without '/'`,
    );
  return `${consensusKeyPrefix}${groupId}`;
}

/** The stored state, checked for shape (the contents were checked when they were persisted). */
function parseState(groupId: string, text: string): PersistedGroupState {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  const state = value as Partial<PersistedGroupState> | undefined;
  if (
    typeof state !== 'object' ||
    state === null ||
    !(state.promised === null || isBallot(state.promised)) ||
    !Array.isArray(state.accepted) ||
    !Array.isArray(state.decided) ||
    !Array.isArray(state.equivocations)
  )
    throw new EngineError('CORRUPT', `the stored consensus state of group ${groupId} is unreadable`);
  return {
    promised: state.promised,
    accepted: state.accepted,
    decided: state.decided,
    equivocations: state.equivocations,
  };
}
