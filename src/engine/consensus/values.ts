import { createHash } from 'node:crypto';
import { canonicalJson } from '../base/codec.js';
import { blockKey, isBlockId } from '../base/ids.js';
import { limits } from '../base/limits.js';
import { isConfirmedBody, isRefusalActions, isResolvedBody } from '../collections/log/log-block.js';
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

/**
 * Digests of values seen lately, with the signed fields they were computed from: a value met again
 * (the same object passes through proposal, accept, vote, certificate and log write several times a
 * step) costs a comparison of those fields instead of canonical JSON and a hash. Values are typed
 * readonly but not frozen, so a hit is taken only while the fields still match.
 */
const digests = new WeakMap<object, { readonly digest: string; readonly fields: readonly unknown[] }>();

/** The fields `valueDigest` covers, flat (shapes are exact: isConsensusValue admits no other keys). */
function signedFields(value: ConsensusValue): unknown[] {
  switch (value.kind) {
    case 'entry':
      return [value.trxId, value.decision, value.digest, value.lsn, Object.keys(value).length];
    case 'seal':
      return [value.successor, Object.keys(value).length, ...value.members];
    default:
      return [value.kind, Object.keys(value).length];
  }
}

function sameFields(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Digest of a value: what votes sign and what identifies a proposal across retries. An entry's body
 * and `prev` are left out: the body is bound through `digest` (it holds the body's hash), `prev` is
 * the proposer's assumption, checked by the leader, not part of the decision.
 */
export function valueDigest(value: ConsensusValue): string {
  const fields = signedFields(value);
  const known = digests.get(value);
  if (known !== undefined && sameFields(known.fields, fields)) return known.digest;
  const key = entryKey(value);
  let digest = key === undefined ? undefined : entryDigests.get(key);
  if (digest === undefined) {
    digest = createHash('sha256')
      .update(canonicalJson(signedPart(value)))
      .digest('base64url');
    if (key !== undefined) {
      entryDigests.set(key, digest);
      if (entryDigests.size > entryDigestsMax) entryDigests.delete(entryDigests.keys().next().value!);
    }
  }
  digests.set(value, { digest, fields });
  return digest;
}

/**
 * Digests of entry values by content: an entry arrives as a fresh object in every Accept, vote
 * check, certificate and log write of each member, and its signed part is exactly the fields keyed
 * here, so a copy met again costs a lookup instead of canonical JSON and a hash.
 */
const entryDigests = new Map<string, string>();

/** Entry digests kept by content (a few per transaction in flight). */
const entryDigestsMax = 4096;

/**
 * The content key of an entry value whose signed part holds exactly kind, trxId, decision, digest
 * and (if present) lsn, all well typed; undefined for anything else, which is digested in full.
 */
function entryKey(value: ConsensusValue): string | undefined {
  if (value.kind !== 'entry') return undefined;
  const { trxId, decision, digest, lsn } = value;
  const signedKeys =
    Object.keys(value).length - (value.body === undefined ? 0 : 1) - (value.prev === undefined ? 0 : 1);
  if (signedKeys !== (lsn === undefined ? 4 : 5)) return undefined;
  if (typeof trxId !== 'string' || typeof decision !== 'string' || typeof digest !== 'string')
    return undefined;
  if (lsn !== undefined && !(Number.isSafeInteger(lsn) && lsn >= 0)) return undefined;
  return JSON.stringify([trxId, decision, digest, lsn ?? -1]);
}

function signedPart(value: ConsensusValue): ConsensusValue {
  if (value.kind !== 'entry' || (value.body === undefined && value.prev === undefined)) return value;
  const { body: _body, prev: _prev, ...signed } = value;
  return signed;
}

const sizes = new WeakMap<object, number>();

/** Approximate encoded size of a value (for sizing batches); cached per value object. */
export function valueBytes(value: ConsensusValue): number {
  let size = sizes.get(value);
  if (size === undefined) {
    size = JSON.stringify(value).length;
    sizes.set(value, size);
  }
  return size;
}

type EntryValue = Extract<ConsensusValue, { kind: 'entry' }>;

/** Whether an entry value is a refusal (log-block.ts, refusalActions). */
function isRefusal(value: EntryValue): boolean {
  return value.decision === 'aborted' && isRefusalActions(value.body?.['actions']);
}

/**
 * True when entry value `later` may not be decided in a slot after `earlier`: both name log positions
 * and they are another transaction at the same LSN, the same transaction at another LSN, a decision
 * other than prepared → committed/aborted for one entry, or `later` assumed another transaction at
 * the LSN just below it. A refusal contradicts every other value of its transaction, either way
 * round: it claims the transaction was never decided here, so a prepare of it the leader knows of
 * (even one still in flight) must win or be written first. And once a prepared entry was confirmed
 * to an asker, only an abort its tails' resolution decided may follow. Values without an LSN never
 * conflict.
 */
export function entryConflict(earlier: EntryValue, later: EntryValue): boolean {
  if (earlier.lsn === undefined || later.lsn === undefined) return false;
  if (
    earlier.trxId === later.trxId &&
    earlier.digest !== later.digest &&
    (isRefusal(earlier) || isRefusal(later))
  )
    return true;
  // A prepared entry confirmed to an asker (who may commit on it) is aborted only by the tails'
  // resolution, never by its coordinator any more.
  if (
    earlier.trxId === later.trxId &&
    earlier.lsn === later.lsn &&
    earlier.decision === 'prepared' &&
    isConfirmedBody(earlier.body) &&
    later.decision === 'aborted' &&
    !isResolvedBody(later.body)
  )
    return true;
  if (earlier.lsn === later.lsn) {
    if (earlier.trxId !== later.trxId) return true;
    return earlier.decision !== later.decision && earlier.decision !== 'prepared';
  }
  if (earlier.trxId === later.trxId) return true;
  return (
    later.prev !== undefined &&
    later.prev !== null &&
    earlier.lsn === later.lsn - 1 &&
    earlier.trxId !== later.prev
  );
}

/**
 * sha256 of member ids met lately. Every routed request, placement and seal orders a block's members
 * (`leadershipOrder`), hashing each member again each time: about 1% of a node's CPU under load on 3
 * in-process nodes. Cleared when full; the same few ids come back all the time.
 */
const memberKeys = new Map<string, Buffer>();
const memberKeysMax = 4096;

function memberKey(member: string): Buffer {
  let key = memberKeys.get(member);
  if (key === undefined) {
    if (memberKeys.size >= memberKeysMax) memberKeys.clear();
    key = createHash('sha256').update(member, 'utf8').digest();
    memberKeys.set(member, key);
  }
  return key;
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
    const key = memberKey(member);
    const distance = Buffer.alloc(key.length);
    for (let i = 0; i < key.length; i++) distance[i] = key[i]! ^ (target[i] ?? 0);
    return { member, distance };
  });
  scored.sort((a, b) => Buffer.compare(a.distance, b.distance) || (a.member < b.member ? -1 : 1));
  return scored.map((s) => s.member);
}

/**
 * Member lists met lately, one frozen array per distinct list (keyed by the list as given, sorted or
 * not). A group's members arrive as a fresh array with every wire item, certificate and proposal, and
 * what is derived from a list — its membership hash (`membershipHash` memoises per array), the set of
 * it — is memoised per array: handing out one array per list makes those a lookup instead of a sort,
 * canonical JSON and a hash each time. JSON keys (not a join) so that no two lists share a key.
 */
const memberLists = new Map<string, readonly string[]>();
/** The arrays `sortedMemberList` handed out: one passed back in is returned as it is. */
const sharedMemberLists = new WeakSet<readonly string[]>();

/** Distinct member lists kept by `sortedMemberList` (a node is in few groups' memberships at once). */
const memberListsMax = 1024;

function rememberMemberList(key: string, list: readonly string[]): void {
  memberLists.set(key, list);
  if (memberLists.size > memberListsMax) memberLists.delete(memberLists.keys().next().value!);
}

/**
 * `members` sorted and without repeats, as the one shared (frozen) array of that list: equal lists
 * give the same array, so per-array memos hit.
 */
export function sortedMemberList(members: readonly string[]): readonly string[] {
  if (sharedMemberLists.has(members)) return members;
  const key = JSON.stringify(members);
  let list = memberLists.get(key);
  if (list === undefined) {
    const sorted = [...new Set(members)].sort();
    const sortedKey = JSON.stringify(sorted);
    list = memberLists.get(sortedKey) ?? Object.freeze(sorted);
    sharedMemberLists.add(list);
    rememberMemberList(sortedKey, list);
    if (sortedKey !== key) rememberMemberList(key, list);
  }
  return list;
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
    case 'entry': {
      let optional = 0;
      if (v.lsn !== undefined) {
        if (!(typeof v.lsn === 'number' && Number.isSafeInteger(v.lsn) && v.lsn >= 0)) return false;
        optional++;
      }
      if (v.prev !== undefined) {
        if (v.prev !== null && !isId(v.prev)) return false;
        optional++;
      }
      if (v.body !== undefined) {
        if (!isEntryBody(v.body)) return false;
        optional++;
      }
      return keys === 4 + optional && isId(v.trxId) && decisions.has(v.decision) && isId(v.digest);
    }
    case 'seal':
      return keys === 3 && isBlockId(v.successor) && isMemberList(v.members);
    case 'noop':
      return keys === 1;
    default:
      return false;
  }
}

function isEntryBody(body: unknown): boolean {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return false;
  return JSON.stringify(body).length <= limits.consensusEntryBodyBytesMax;
}

export function isSlot(value: unknown): value is number {
  return (
    typeof value === 'number' &&
    Number.isInteger(value) &&
    value >= 0 &&
    value < limits.consensusSlotsPerGroupMax
  );
}
