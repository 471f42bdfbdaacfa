/**
 * The `consensus` protocol's wire messages. An item is `{ members, message, wake? }`: one consensus
 * message and the sorted membership of its group (so a member that does not run the group yet can
 * start it). A request carries one item (`{ type: 'msg', …item }`) or several, of any groups
 * (`{ type: 'batch', items }`): a node sends each peer one batch of everything it has for it at a
 * time. The answer to a batch may carry items back (`{ items }`, the receiver's direct answers such as
 * votes), else it is null.
 * Everything is bounded by the consensus limits; the core checks meaning (ballots, votes, certificates).
 */
import { EngineError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import type { ConsensusMessage, ConsensusValue } from '../consensus/types.js';
import { isConsensusValue, isMemberList, sortedMemberList } from '../consensus/values.js';
import { schema, type Validator } from '../network/index.js';

/** The protocol name (`/optimystic/<network>/consensus/1`). */
export const consensusProtocolName = 'consensus';

/** Consensus messages one wire request (or its answer) carries at most. */
export const consensusWireItemsMax = 64;

export interface ConsensusWireItem {
  /** The group's members, sorted and distinct. */
  readonly members: readonly string[];
  readonly message: ConsensusMessage;
  /**
   * Set while the sender's group has work (proposals waiting, Paxos traffic lately): a heartbeat with
   * it starts the group at a member that stopped running it; a plain heartbeat starts nothing.
   */
  readonly wake?: boolean;
}

export type ConsensusWireMessage =
  | ({ readonly type: 'msg' } & ConsensusWireItem)
  | { readonly type: 'batch'; readonly items: readonly ConsensusWireItem[] };

/** The answer to a batch: items the receiver sends back at once, or null. */
export interface ConsensusWireReply {
  readonly items: readonly ConsensusWireItem[];
}

function bad(what: string): EngineError {
  return new EngineError('BAD_INPUT', `consensus message: bad ${what}`, { path: what });
}

const id = schema.string({ charsMin: 1, charsMax: limits.consensusValueIdCharsMax });
/** Base64url signatures: an Ed25519 signature is 86 characters; the vote check refuses anything over 512. */
const signature = schema.string({ charsMax: 512 });
const slot = schema.integer({ min: 0, max: limits.consensusSlotsPerGroupMax - 1 });
const slotBound = schema.integer({ min: 0, max: limits.consensusSlotsPerGroupMax });

const value: Validator<ConsensusValue> = (input) => {
  if (!isConsensusValue(input)) throw bad('value');
  return input;
};

const memberList: Validator<readonly string[]> = (input) => {
  if (!isMemberList(input)) throw bad('members');
  // The shared array of this list: the group's membership hash is then memoised, not recomputed.
  return sortedMemberList(input);
};

const ballot = schema.object({ round: schema.integer({ min: 0 }), leader: id });

const header = {
  network: schema.string({ charsMin: 1, charsMax: limits.protocolNameCharsMax }),
  blockId: id,
  membership: id,
};

const accepted = schema.object({ slot, ballot, value, signature });

const signatures = schema.array(schema.object({ member: id, signature }), {
  itemsMax: limits.consensusMembersMax * 2,
});

const certificate = schema.object({ ...header, slot, ballot, value, signatures });

const consensusMessage = schema.messageUnion({
  Prepare: schema.object({ ...header, ballot, fromSlot: slot }),
  Promise: schema.object({
    ...header,
    ballot,
    fromSlot: slot,
    accepted: schema.array(accepted, { itemsMax: limits.consensusSlotsPerGroupMax }),
    decided: schema.array(certificate, { itemsMax: limits.consensusSlotsPerGroupMax }),
  }),
  Accept: schema.object({
    ...header,
    ballot,
    proposals: schema.array(schema.object({ slot, value }), { itemsMax: limits.consensusBatchSlotsMax }),
  }),
  Accepted: schema.object({
    ...header,
    ballot,
    votes: schema.array(schema.object({ slot, digest: id, signature }), {
      itemsMax: limits.consensusBatchSlotsMax,
    }),
  }),
  Nack: schema.object({ ...header, ballot, promised: ballot }),
  // A sealed member answers with every certificate up to the seal; the leader batches the rest.
  Decided: schema.object({
    ...header,
    certificates: schema.array(certificate, { itemsMax: limits.consensusSlotsPerGroupMax }),
  }),
  Heartbeat: schema.object({
    ...header,
    promised: (input: unknown) => (input === null ? null : ballot(input)),
    decidedBelow: slotBound,
  }),
  Learn: schema.object({ ...header, fromSlot: slot, toSlot: slotBound }),
});

const itemFields = {
  members: memberList,
  message: consensusMessage,
  wake: schema.optional(schema.boolean()),
};

const items = schema.array(schema.object(itemFields), { itemsMax: consensusWireItemsMax });

/** Validates a `consensus` request (unknown `type`s reset the stream, bad fields answer BAD_INPUT). */
export const consensusWire = schema.messageUnion({
  msg: schema.object(itemFields),
  batch: schema.object({ items }),
}) as schema.MessageValidator<ConsensusWireMessage>;

/** Validates the answer to a batch (null, or items sent back). */
export const consensusWireReply: Validator<ConsensusWireReply | null> = (input) => {
  if (input === null) return null;
  return schema.object({ items })(input);
};
