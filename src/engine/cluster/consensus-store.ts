/**
 * Durable consensus state of a node, in its RawStore. One key per group, `k/<group id>`, holding the
 * whole merged PersistedGroupState as canonical JSON: a group decides a few dozen slots before it is
 * sealed, so its state stays small, and one put per step is one atomic batch. `persist` resolves only
 * after `sync()`, and concurrent persists of different groups share a sync (the RawStore group-commits).
 */
import { canonicalJson } from '../base/codec.js';
import { EngineError } from '../base/errors.js';
import type { ConsensusStore } from '../consensus/driver.js';
import { emptyPersisted, mergePersisted } from '../consensus/persisted.js';
import type { PersistedGroupState, PersistRecord } from '../consensus/types.js';
import { isBallot } from '../consensus/values.js';
import type { RawStore } from '../storage/raw-store.js';

/** The key prefix of consensus state (the block store owns b/ r/ m/ l/ p/ x/ s/, the node i/ c/). */
export const consensusKeyPrefix = 'k/';

/** States of recently persisted groups kept in memory, so a step reads nothing before it writes. */
const cachedGroupsMax = 1024;

export class RawConsensusStore implements ConsensusStore {
  /** Latest state per group, for groups persisted lately (least recently used first). */
  private readonly cache = new Map<string, PersistedGroupState>();
  /** Per group, the persist in progress: read-merge-write of one group never interleaves. */
  private readonly chains = new Map<string, Promise<void>>();

  constructor(private readonly raw: RawStore) {}

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

  persist(groupId: string, record: PersistRecord): Promise<void> {
    const previous = this.chains.get(groupId) ?? Promise.resolve();
    const next = previous.then(() => this.write(groupId, record));
    const tail = next.catch(() => undefined);
    this.chains.set(groupId, tail);
    void tail.then(() => {
      if (this.chains.get(groupId) === tail) this.chains.delete(groupId);
    });
    return next;
  }

  private async write(groupId: string, record: PersistRecord): Promise<void> {
    const base = this.cache.get(groupId) ?? (await this.read(groupId)) ?? emptyPersisted;
    const merged = mergePersisted(base, record);
    // Until this write is known durable, the next one reads the store again.
    this.cache.delete(groupId);
    if (changed(base, merged))
      await this.raw.batch([{ type: 'put', key: keyOf(groupId), value: canonicalJson(merged) }]);
    await this.raw.sync();
    this.cache.set(groupId, merged);
    if (this.cache.size > cachedGroupsMax) this.cache.delete(this.cache.keys().next().value!);
  }

  private async read(groupId: string): Promise<PersistedGroupState | undefined> {
    const text = await this.raw.get(keyOf(groupId));
    if (text === undefined) return undefined;
    return parseState(groupId, text);
  }
}

function changed(base: PersistedGroupState, merged: PersistedGroupState): boolean {
  return (
    base.promised !== merged.promised ||
    base.accepted !== merged.accepted ||
    base.decided !== merged.decided ||
    base.equivocations !== merged.equivocations
  );
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
