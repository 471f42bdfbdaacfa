import type { AcceptedSlot, ConsensusCertificate, PersistedGroupState, PersistRecord } from './types.js';
import { compareBallots } from './values.js';

/** What a member that never took part in the group has on disk. */
export const emptyPersisted: PersistedGroupState = Object.freeze({
  promised: null,
  accepted: Object.freeze([]),
  decided: Object.freeze([]),
  equivocations: Object.freeze([]),
});

/**
 * Applies a persist record to the persisted state (pure). Edges that store records as a log replay
 * them through this; edges that store the whole state write its result. A promise never goes down, a
 * slot keeps its latest accepted value, a decision is never replaced.
 */
export function mergePersisted(base: PersistedGroupState, record: PersistRecord): PersistedGroupState {
  const promised =
    record.promised !== undefined && compareBallots(record.promised, base.promised) > 0
      ? record.promised
      : base.promised;
  let accepted = base.accepted;
  if (record.accepted !== undefined && record.accepted.length > 0) {
    const bySlot = new Map<number, AcceptedSlot>(base.accepted.map((a) => [a.slot, a]));
    for (const a of record.accepted) {
      const old = bySlot.get(a.slot);
      if (old === undefined || compareBallots(a.ballot, old.ballot) >= 0) bySlot.set(a.slot, a);
    }
    accepted = [...bySlot.values()].sort((x, y) => x.slot - y.slot);
  }
  let decided = base.decided;
  if (record.decided !== undefined && record.decided.length > 0) {
    const bySlot = new Map<number, ConsensusCertificate>(base.decided.map((c) => [c.slot, c]));
    for (const c of record.decided) if (!bySlot.has(c.slot)) bySlot.set(c.slot, c);
    decided = [...bySlot.values()].sort((x, y) => x.slot - y.slot);
  }
  let equivocations = base.equivocations;
  if (record.equivocations !== undefined && record.equivocations.length > 0) {
    const known = new Set(base.equivocations.map((p) => p.member));
    const added = record.equivocations.filter((p) => !known.has(p.member) && (known.add(p.member), true));
    if (added.length > 0) equivocations = [...base.equivocations, ...added];
  }
  return { promised, accepted, decided, equivocations };
}
