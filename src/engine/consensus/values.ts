import { createHash } from 'node:crypto';
import { canonicalJson } from '../base/codec.js';
import { blockKey, isBlockId } from '../base/ids.js';
import { limits } from '../base/limits.js';
import type { Ballot, ConsensusValue } from './types.js';

/** Ballot order: round first, then leader id. `null` (nothing promised yet) is below every ballot. */
export function compareBallots(a: Ballot | null, b: Ballot | null): number {
  if (a === null) return b === null ? 0 : -1;
  if (b === null) return 1;
  if (a.round !== b.round) return a.round < b.round ? -1 : 1;
  return a.leader < b.leader ? -1 : a.leader > b.leader ? 1 : 0;
}

export function sameBallot(a: Ballot | null, b: Ballot | null): boolean {
  return compareBallots(a, b) === 0;
}

/** Digests of values seen recently; values are immutable, so an object's digest never changes. */
const digests = new WeakMap<object, string>();

/** Digest of a value: what votes sign and what identifies a proposal across retries. */
export function valueDigest(value: ConsensusValue): string {
  let digest = digests.get(value);
  if (digest === undefined) {
    digest = createHash('sha256').update(canonicalJson(value)).digest('base64url');
    if (Object.isFrozen(value)) digests.set(value, digest);
  }
  return digest;
}

/** Majority of a membership of `size`. */
export function quorumOf(size: number): number {
  return Math.floor(size / 2) + 1;
}

/**
 * Members in leadership order for a block: nearest first by XOR of sha256(member id) with the block's
 * key, sha256(block id bytes). Every member computes the same order.
 */
export function leadershipOrder(blockId: string, members: readonly string[]): string[] {
  const target = blockKey(blockId);
  const scored = members.map((member) => {
    const key = createHash('sha256').update(member, 'utf8').digest();
    const distance = Buffer.alloc(key.length);
    for (let i = 0; i < key.length; i++) distance[i] = key[i]! ^ (target[i] ?? 0);
    return { member, distance };
  });
  scored.sort((a, b) => Buffer.compare(a.distance, b.distance) || (a.member < b.member ? -1 : 1));
  return scored.map((s) => s.member);
}

function isId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= limits.consensusValueIdCharsMax;
}

export function isBallot(value: unknown): value is Ballot {
  if (typeof value !== 'object' || value === null) return false;
  const b = value as Record<string, unknown>;
  return (
    typeof b.round === 'number' &&
    Number.isSafeInteger(b.round) &&
    b.round >= 0 &&
    isId(b.leader) &&
    Object.keys(b).length === 2
  );
}

/** True when `members` is a valid membership list: sorted, distinct ids, within consensusMembersMax. */
export function isMemberList(members: unknown): members is readonly string[] {
  if (!Array.isArray(members) || members.length === 0 || members.length > limits.consensusMembersMax)
    return false;
  for (let i = 0; i < members.length; i++) {
    const member: unknown = members[i];
    if (!isId(member)) return false;
    if (i > 0 && !((members[i - 1] as string) < member)) return false;
  }
  return true;
}

const decisions: ReadonlySet<unknown> = new Set(['prepared', 'committed', 'aborted']);

/** Structural check of a value from outside (a client or the network); unknown fields are refused. */
export function isConsensusValue(value: unknown): value is ConsensusValue {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const v = value as Record<string, unknown>;
  const keys = Object.keys(v).length;
  switch (v.kind) {
    case 'entry':
      return keys === 4 && isId(v.trxId) && decisions.has(v.decision) && isId(v.digest);
    case 'seal':
      return keys === 3 && isBlockId(v.successor) && isMemberList(v.members);
    case 'noop':
      return keys === 1;
    default:
      return false;
  }
}

export function isSlot(value: unknown): value is number {
  return (
    typeof value === 'number' &&
    Number.isInteger(value) &&
    value >= 0 &&
    value < limits.consensusSlotsPerGroupMax
  );
}
