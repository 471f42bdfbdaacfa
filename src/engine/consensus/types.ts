import type { BlockId, TrxId } from '../base/ids.js';
import type { EntryStatus } from '../collections/log/log-block.js';

/**
 * Types of the consensus core: one Multi-Paxos instance per log tail block (SPEC §6). The core is a
 * pure function `step(state, input) -> { state, effects }`; everything here is plain data so states,
 * inputs and effects can be stored, sent, compared and replayed.
 */

/** A consensus group: one log tail block and its membership, fixed when the block was created. */
export interface ConsensusGroup {
  readonly network: string;
  readonly blockId: BlockId;
  /** Peer ids, sorted, distinct. */
  readonly members: readonly string[];
}

/** A Paxos ballot. Ordered by round, then by leader id; a leader only ever uses its own ballots. */
export interface Ballot {
  readonly round: number;
  readonly leader: string;
}

/** The content of a log entry carried in its consensus value (JSON, at most consensusEntryBodyBytesMax). */
export type EntryBody = Readonly<Record<string, unknown>>;

/** What a group decides in one slot. */
export type ConsensusValue =
  | {
      /** A log entry decision (commit, prepare or abort of a transaction). */
      readonly kind: 'entry';
      readonly trxId: TrxId;
      readonly decision: EntryStatus;
      /** Digest binding the decision to its log position and content (see consensus-certifier.ts). */
      readonly digest: string;
      /**
       * The log position the entry takes. With it the leader refuses a value that would contradict an
       * earlier slot of the group: another transaction at the same LSN, the same transaction at
       * another LSN, a final decision reversed (see `entryConflict`).
       */
      readonly lsn?: number;
      /**
       * The transaction the proposer believed holds `lsn - 1` (null: none in this group). A proposal
       * validated against a log that lacks an earlier decided entry is refused. Not signed.
       */
      readonly prev?: TrxId | null;
      /**
       * The entry's content without its certificate (write and read sets, participants…), so a member
       * that takes over can write a decided entry whose log write the old leader never finished.
       * Bound by `digest` (its hash is part of it); not itself part of what votes sign.
       */
      readonly body?: EntryBody;
    }
  | {
      /** The last decision of the group: the log continues in `successor`, held by `members`. */
      readonly kind: 'seal';
      readonly successor: BlockId;
      readonly members: readonly string[];
    }
  | {
      /** Fills a slot a previous leader left empty below values it got accepted. */
      readonly kind: 'noop';
    };

/** Fields every message carries, so a message for another group, network or membership is dropped. */
export interface GroupHeader {
  readonly network: string;
  readonly blockId: BlockId;
  /** membershipHash of the recorded members. */
  readonly membership: string;
}

/** An acceptor's record for one slot: the value it accepted last, at which ballot, and its signed vote. */
export interface AcceptedSlot {
  readonly slot: number;
  readonly ballot: Ballot;
  readonly value: ConsensusValue;
  /** The acceptor's vote signature over (group, slot, ballot, digest of value). */
  readonly signature: string;
}

/** A signed vote for a value in one slot at one ballot. */
export interface Vote {
  readonly slot: number;
  readonly digest: string;
  readonly signature: string;
}

/**
 * Proof that a value was decided: a quorum of members signed votes for it in one slot at one ballot.
 * Verifiable offline with the recorded membership (`verifyConsensusCertificate`).
 */
export interface ConsensusCertificate extends GroupHeader {
  readonly slot: number;
  readonly ballot: Ballot;
  readonly value: ConsensusValue;
  /** One signature per member, sorted by member. */
  readonly signatures: readonly { readonly member: string; readonly signature: string }[];
}

/** Two valid votes by one member for different values in the same slot and ballot. */
export interface EquivocationProof extends GroupHeader {
  readonly member: string;
  readonly slot: number;
  readonly ballot: Ballot;
  readonly votes: readonly [
    { readonly digest: string; readonly signature: string },
    { readonly digest: string; readonly signature: string },
  ];
}

// ---- messages ----

/** Phase 1a: a candidate asks for promises for every slot from `fromSlot` on. */
export interface PrepareMessage extends GroupHeader {
  readonly type: 'Prepare';
  readonly ballot: Ballot;
  readonly fromSlot: number;
}

/** Phase 1b: the acceptor promised `ballot`; here is what it accepted and knows decided from `fromSlot` on. */
export interface PromiseMessage extends GroupHeader {
  readonly type: 'Promise';
  readonly ballot: Ballot;
  readonly fromSlot: number;
  readonly accepted: readonly AcceptedSlot[];
  readonly decided: readonly ConsensusCertificate[];
}

/** Phase 2a: the leader of `ballot` asks to accept values, several slots at once. */
export interface AcceptMessage extends GroupHeader {
  readonly type: 'Accept';
  readonly ballot: Ballot;
  readonly proposals: readonly { readonly slot: number; readonly value: ConsensusValue }[];
}

/** Phase 2b: signed votes for the values of an Accept, several slots at once. */
export interface AcceptedMessage extends GroupHeader {
  readonly type: 'Accepted';
  readonly ballot: Ballot;
  readonly votes: readonly Vote[];
}

/** The acceptor has promised a higher ballot than the one it was asked about. */
export interface NackMessage extends GroupHeader {
  readonly type: 'Nack';
  readonly ballot: Ballot;
  readonly promised: Ballot;
}

/** Decisions with their certificates: the leader's broadcast, or an answer to Learn. */
export interface DecidedMessage extends GroupHeader {
  readonly type: 'Decided';
  readonly certificates: readonly ConsensusCertificate[];
}

/** Liveness and progress: sent by every member to every other member periodically. */
export interface HeartbeatMessage extends GroupHeader {
  readonly type: 'Heartbeat';
  readonly promised: Ballot | null;
  /** The sender has decided every slot below this one. */
  readonly decidedBelow: number;
}

/** Catch-up: asks for the certificates of slots in [fromSlot, toSlot). */
export interface LearnMessage extends GroupHeader {
  readonly type: 'Learn';
  readonly fromSlot: number;
  readonly toSlot: number;
}

export type ConsensusMessage =
  | PrepareMessage
  | PromiseMessage
  | AcceptMessage
  | AcceptedMessage
  | NackMessage
  | DecidedMessage
  | HeartbeatMessage
  | LearnMessage;

// ---- persistence ----

/** What a member keeps on disk for a group; a restart rebuilds the core from it alone. */
export interface PersistedGroupState {
  readonly promised: Ballot | null;
  /** At most one per slot: the latest accepted. */
  readonly accepted: readonly AcceptedSlot[];
  readonly decided: readonly ConsensusCertificate[];
  readonly equivocations: readonly EquivocationProof[];
}

/** A change to the persisted state. Applied as one atomic, synced batch (see `mergePersisted`). */
export interface PersistRecord {
  readonly promised?: Ballot;
  readonly accepted?: readonly AcceptedSlot[];
  readonly decided?: readonly ConsensusCertificate[];
  readonly equivocations?: readonly EquivocationProof[];
}

// ---- inputs and effects ----

export interface ClientProposal {
  /** Chosen by the proposer; echoed in the `decided` or `reject` effect that answers it. */
  readonly id: string;
  readonly value: ConsensusValue;
}

export type ConsensusInput =
  | {
      readonly type: 'message';
      readonly now: number;
      readonly from: string;
      readonly message: ConsensusMessage;
    }
  | { readonly type: 'tick'; readonly now: number }
  | { readonly type: 'propose'; readonly now: number; readonly proposals: readonly ClientProposal[] }
  | { readonly type: 'restart'; readonly now: number; readonly persisted: PersistedGroupState }
  /**
   * The edge has evidence a member is down (its connection closed at `since`): it is suspected once
   * downSuspectMs have passed since it was last heard (or since `since`, if earlier) rather than
   * suspectAfterMs. Only leadership depends on it; any message from it clears it.
   */
  | { readonly type: 'suspect'; readonly now: number; readonly member: string; readonly since: number };

/** Why a proposal was not (or may not have been) decided. */
export type RejectReason =
  /** Ask `leader` instead (null: no leader known yet). The value was not proposed. */
  | { readonly kind: 'not-leader'; readonly leader: string | null }
  /** Fewer than a majority of members are reachable. `inDoubt`: it may still be decided later. */
  | { readonly kind: 'no-quorum'; readonly inDoubt: boolean }
  /** This member lost leadership while the value was in flight: it may still be decided. */
  | { readonly kind: 'preempted'; readonly leader: string | null; readonly inDoubt: true }
  /** Undecided after consensusProposalTimeoutMs; it may still be decided. */
  | { readonly kind: 'timeout'; readonly inDoubt: true }
  /** The group is sealed: propose to the successor. The value was not and will not be decided here. */
  | { readonly kind: 'sealed'; readonly successor: BlockId; readonly members: readonly string[] }
  /** A seal is in flight; retry, and expect a redirect to the successor. */
  | { readonly kind: 'sealing' }
  /** The group has no slot left but the one reserved for its seal. */
  | { readonly kind: 'full' }
  /** Too many proposals waiting. */
  | { readonly kind: 'busy' }
  /**
   * The value contradicts decisions of earlier slots (`entryConflict`): it was not and will not be
   * decided. `decided` holds the group's decided entry certificates the proposer may lack (those at or
   * after the value's LSN - 1, and any of the same transaction); the proposer writes them to its log
   * and validates again.
   */
  | { readonly kind: 'conflict'; readonly decided: readonly ConsensusCertificate[] }
  /** Malformed value, or a seal naming a member proven to equivocate. */
  | { readonly kind: 'invalid'; readonly message: string };

export type ConsensusEffect =
  /** Must be durable (one atomic synced batch) before any later effect of the same list leaves the node. */
  | { readonly type: 'persist'; readonly record: PersistRecord }
  | { readonly type: 'send'; readonly to: string; readonly message: ConsensusMessage }
  /**
   * A slot's decision, reported in slot order, never past a seal. `proposals`: ids of this member's
   * client proposals it answers. A restart reports every persisted decision again (edges apply them
   * idempotently).
   */
  | {
      readonly type: 'decided';
      readonly slot: number;
      readonly value: ConsensusValue;
      readonly certificate: ConsensusCertificate;
      readonly proposals: readonly string[];
    }
  | { readonly type: 'reject'; readonly proposal: string; readonly reason: RejectReason }
  /** A member signed two values in one slot and ballot: exclude it at the next seal. */
  | { readonly type: 'equivocation'; readonly proof: EquivocationProof };

/** Why an incoming message (or part of one) was dropped; the core counts each. */
export const dropReasons = [
  'wrong-network',
  'wrong-group',
  'wrong-membership',
  'non-member',
  'malformed',
  'forged-ballot',
  'bad-signature',
  'bad-certificate',
  'stale',
  'conflicting-accept',
  'conflicting-certificate',
] as const;
export type DropReason = (typeof dropReasons)[number];

/** Timers of the core (defaults in limits). Safety never depends on them; only leader change does. */
export interface ConsensusTiming {
  readonly heartbeatMs: number;
  readonly suspectAfterMs: number;
  readonly retransmitMs: number;
  readonly proposalTimeoutMs: number;
  /**
   * How long after it was last heard a member reported down (`suspect`) is suspected; default
   * limits.consensusDownSuspectMs, at most suspectAfterMs. Not zero on a network: a leader that lost
   * its connections may answer tail views from its cached state for a while (the cluster's
   * tailViewFreshMs), so the others must not elect a successor, and commit past that state, sooner.
   */
  readonly downSuspectMs?: number;
  /**
   * When above 0, a slot's Accept goes first to the nearest members a quorum needs, and to the others
   * once it has waited this long without a quorum; 0: every member at once (default
   * limits.consensusAcceptWidenMs). Timing only.
   */
  readonly acceptWidenMs?: number;
}

/** Signs votes: the member's identity key (Ed25519Identity fits). */
export interface VoteSigner {
  readonly id: string;
  sign(message: Uint8Array): string;
}

/**
 * Checks a member's signature; defaults to Ed25519 (`verifyEd25519`), the member id being an Ed25519
 * libp2p peer id or a raw base64url public key.
 */
export type SignatureVerifier = (member: string, message: Uint8Array, signature: string) => boolean;
