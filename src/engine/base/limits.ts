/**
 * Every bound in the engine, in one place, each with its reason. Names end in their unit.
 */
export const limits = {
  /** A value must fit comfortably in a leaf so a leaf of a few entries stays under blockBytesMax. */
  valueBytesMax: 64 * 1024,
  /** Keys are compared and stored in every branch on the path; long keys bloat every level. */
  keyBytesMax: 1024,
  /** Blocks travel whole in one network frame and are cached whole in memory. */
  blockBytesMax: 1024 * 1024,
  /** One input line of `tx`: the whole transaction with its values. */
  txLineBytesMax: 4 * 1024 * 1024,
  /** One transaction's logical actions are stored in its log entry and replayed on conflict. */
  actionsPerTransactionMax: 10_000,
  /** Deeply nested JSON costs stack depth in parse, compare and encode; real data is shallow. */
  jsonDepthMax: 64,
  /** A log block is an ordering group's working set; sealing keeps each block (and its history) small. */
  logEntriesPerBlockMax: 8,
  /** Actions are kept inline in a log entry up to this size (else as a digest) so log blocks stay small. */
  inlineActionsBytesMax: 16 * 1024,
  /** Leaf fan-out: enough entries per leaf that a 10k-key tree is three levels deep. */
  treeLeafEntriesMax: 32,
  /** Branch fan-out: children per branch block. */
  treeBranchChildrenMax: 64,
  /** Leaves split early by size so large values never push a leaf over blockBytesMax. */
  treeLeafBytesMax: 256 * 1024,
  /** Replays of a transaction after CONFLICT before giving up and reporting CONFLICT. */
  transactionAttemptsMax: 32,
  /**
   * The longest pause between two attempts of a transaction. Pauses grow with the attempt and with
   * how long the conflicted attempt took (Coordinator.backoff); a second keeps the last of 32
   * attempts within about half a minute.
   */
  transactionBackoffMaxMs: 1_000,
  /**
   * Times a transaction waits for another's turn on a block it writes (Turns): a wait is not a
   * failed attempt, but a transaction must not wait forever behind a stream of others.
   */
  transactionTurnWaitsMax: 128,
  /**
   * A transaction a running node coordinates that takes at least this long is logged as an event
   * with where its time went (`slow transaction …`): rare enough on a healthy node not to flood its
   * log, and long enough to be worth a look.
   */
  slowTransactionMs: 1_000,
  /** A pending transform that never commits is cancelled after this long. */
  pendingExpiryMs: 30_000,
  /** Pending transforms one block may hold at once; more is a flood, not a workload. */
  pendingPerBlockMax: 256,
  /** Backward validation looks at most this many recent log entries; a staler base is a CONFLICT. */
  validationWindowEntriesMax: 1024,
  /** Every Nth revision of a block is stored whole, so materialising any revision applies < N transforms. */
  materialiseEveryRevs: 16,
  /** Latest materialised blocks kept in memory per store. */
  blockCacheEntriesMax: 20_000,
  /** A scan or read returns at most this many items per request; streaming pages through the rest. */
  scanPageItemsMax: 1000,
  /** Expired pends examined when a store opens; the rest wait for the next open or sweep. */
  sweepPendsMax: 10_000,
  /** Concurrent transactions one `tx` run keeps in flight. */
  txConcurrencyMax: 256,
  /** Largest control or wire message. */
  messageBytesMax: 8 * 1024 * 1024,
  /**
   * Raw ops a store holds written but not yet flushed before it flushes on its own and makes writers
   * wait: bounds the memory of the unsynced overlay when callers batch without syncing.
   */
  storeQueueOpsMax: 8192,
  /** A store whose flush failed (a full disk) tries to recover after this long, then twice as long each time (LevelDB takes writes again only once reopened). */
  storeRecoveryFirstMs: 1_000,
  /** The longest wait between two recovery attempts of a failed store. */
  storeRecoveryMaxMs: 30_000,
  /** Free bytes the file system must have before a failed store tries to recover: room for LevelDB's new log and a compaction's first table. */
  storeRecoveryFreeBytesMin: 16 * 1024 * 1024,
  /** Threshold key holders in one ceremony: every deal carries a share per holder and every response echoes every deal (n² data). */
  ceremonyParticipantsMax: 64,
  /** A ceremony's human label is shown in prompts and listings; a paragraph is plenty. */
  ceremonyLabelCharsMax: 200,
  /** Authenticated ceremony messages for a restart attempt that has not begun yet, held until it begins. */
  ceremonyBufferedMessagesMax: 4096,
  /** Threshold encryption protects keys and small secrets; bulk data goes under a key that is itself threshold-encrypted. */
  thresholdPlaintextBytesMax: 1024 * 1024,
  /** A message for threshold signing travels in files and frames; FROST hashes it, so bigger gains nothing. */
  thresholdMessageBytesMax: 1024 * 1024,
  /** Key material sealed at rest (identity, shares, ceremony state) stays far below this. */
  sealedPlaintextBytesMax: 16 * 1024 * 1024,
  /** scrypt cost N = 2^17 (128 MiB with r = 8): about 0.4 s per unlock (native scrypt), costly per guess. */
  sealScryptCostLog2: 17,
  /** Lowest scrypt cost an envelope may declare (tests seal with it; nothing weaker is ever opened). */
  sealScryptCostLog2Min: 10,
  /** Highest scrypt cost an envelope may declare (2^20 = 1 GiB), so a hostile file cannot exhaust memory. */
  sealScryptCostLog2Max: 20,
  /** Decoded curve points remembered per suite: a 64-holder ceremony decodes about 64·64 commitments, each check a scalar multiplication. */
  cryptoDecodedPointsCacheEntriesMax: 8192,
  /** Checked threshold public keys remembered (by canonical text): signing and decrypting re-check the same few keys. */
  cryptoCheckedKeysCacheEntriesMax: 64,
  /** Checked ceremony proposals and per-attempt FROST instances remembered: a node runs a handful of ceremonies at once. */
  ceremonyCacheEntriesMax: 64,
  // Network edge (src/engine/network): every inbound byte, stream and request is bounded here.
  /** One wire frame carries at most a whole block (blockBytesMax) plus its envelope (revision, certificate). */
  frameBytesMax: 2 * 1024 * 1024,
  /** A light client's frames (the client protocol): a request carries a whole `tx` line (txLineBytesMax) with its envelope. */
  clientFrameBytesMax: 8 * 1024 * 1024,
  /** Bytes of partly received frames held across all inbound streams: the memory a crowd of slow senders can pin. */
  inboundBufferedBytesMax: 64 * 1024 * 1024,
  /** Inbound request streams one peer may hold open at once across our protocols; more is a flood. */
  streamsPerPeerMax: 32,
  /** Muxed streams one connection may have open in any state (ours, the DHT's, ones still negotiating). */
  muxedStreamsPerConnectionMax: 256,
  /** Inbound streams across all peers at once, so many peers together cannot exhaust the node either. */
  inboundStreamsMax: 1024,
  /** Sustained inbound requests per peer per second (token bucket refill); a cluster member's votes and reads fit easily. */
  requestsPerPeerPerSec: 200,
  /** Burst of inbound requests one peer may send before the sustained rate applies. */
  requestsPerPeerBurst: 400,
  /** Peers whose rate-limit state is remembered; the least recently seen is dropped first. */
  peersTrackedMax: 4096,
  /** Deadline of one request (send, handle, reply), and of each frame of a streamed reply. */
  requestTimeoutMs: 10_000,
  /** Requests to one peer on one protocol sent together in one frame (a batch): a responder serves a batch's items at once, so this bounds the work one frame starts. */
  requestBatchItemsMax: 32,
  /** A dial (connect, bootstrap) that has not completed by then is given up. */
  dialTimeoutMs: 10_000,
  /** How often a node re-dials missing bootstrap peers and refreshes its DHT routing table. */
  networkMaintenanceMs: 10_000,
  /**
   * How often each connection is pinged (libp2p's connection monitor, 10 s by default); one that does
   * not answer within its adaptive timeout (at least 5 s) is closed, and its peer counts as down. A
   * peer cut off without a reset (a pulled cable, a partition: packets dropped) is noticed by nothing
   * else, and until then it still leads its groups for the routers and holds its blocks for the
   * writers: on 5 processes in network namespaces, a partition that isolated a tail's leader stalled
   * the majority's commits for about 20 s with the default, 3–5 s with this (test/fault/partition.test.ts).
   */
  connectionPingIntervalMs: 2_000,
  /** A stable routing table is refreshed by a self-lookup at least every this many maintenance ticks. */
  networkLookupBackoffTicksMax: 32,
  /** Peers one `closest` query may return: the DHT's bucket size, beyond which its answer is not exhaustive. */
  closestPeersMax: 20,
  /** Remembered peers (members met before) a node dials at start and keeps dialling while they are away: enough to find the network again, not a scan of it. */
  rememberedPeersDialledMax: 32,
  /** Listen addresses remembered per member. */
  memberAddressesMax: 8,
  /** Protocol and network names appear in every protocol id; short and plain. */
  protocolNameCharsMax: 64,
  // Consensus groups (src/engine/consensus): one log tail block's Multi-Paxos instance.
  /** Members of one consensus group: a cluster is k = 5 by default; votes and promises grow with it. */
  consensusMembersMax: 64,
  /** Slots one group may decide: it seals after logEntriesPerBlockMax entries (each at most two decisions), so this is ample and bounds promise messages. */
  consensusSlotsPerGroupMax: 256,
  /** Slots carried by one Accept, Accepted, Decided or Learn message; a bigger batch is split. */
  consensusBatchSlotsMax: 64,
  /** Slots a leader has proposed and not yet decided; more proposals wait in its queue. */
  consensusInflightSlotsMax: 64,
  /** Client proposals one group member holds while it leads; more is a flood, answered busy. */
  consensusPendingProposalsMax: 1024,
  /** Ids and digests inside a consensus value (trxId, entry digest, successor, member ids). */
  consensusValueIdCharsMax: 256,
  /**
   * The entry content a consensus value carries (write/read sets, participants): about 2,500 block
   * ids. An Accept batch of such values still fits a frame because the core sizes batches by bytes.
   */
  consensusEntryBodyBytesMax: 64 * 1024,
  /**
   * A member unreachable this long is left out of new tail groups, and the groups holding it seal to
   * successors without it (SPEC 6): long enough that a restart or a brief partition changes nothing.
   */
  memberAbsentMs: 60_000,
  /** Bytes of values in one Accept or Promise message (well under frameBytesMax). */
  consensusBatchBytesMax: 1024 * 1024,
  /** How often the edge ticks a consensus core; every timer below is a multiple of it. */
  consensusTickMs: 50,
  /** Each member tells every other it is alive this often, so one lost heartbeat raises no suspicion. */
  consensusHeartbeatMs: 500,
  /** A member not heard from for this long is suspected; only leader change depends on it, never safety. */
  consensusSuspectAfterMs: 4000,
  /**
   * A member whose connection closed is suspected this long after it was last heard instead: twice
   * the time a tail answers views from cached state (tailViewFreshMs, 1 s) after its last decision,
   * so a leader that lost its connections stops answering from that state before anyone can have
   * taken over (docs/consensus.md, "Suspicion").
   */
  consensusDownSuspectMs: 2000,
  /**
   * Thrifty accepts (docs/consensus.md): when above 0, a slot's Accept goes to the nearest members a
   * quorum needs and to the others once it has waited this long without a quorum (50: one tick, so a
   * chosen member that is down, slow or cut off costs a tick or two, not a retransmission). 0 asks every
   * member at once. 0 until a cluster read stops repairing members that lack a block while fewer than a
   * majority of its holders answered: with 50, commit simulation seed 1729 reaches that (repo.ts).
   */
  consensusAcceptWidenMs: 0,
  /** Unanswered Prepare and Accept messages are sent again after this long (messages may be lost). */
  consensusRetransmitMs: 500,
  /** A client proposal still undecided after this long is answered TIMEOUT (in doubt) so the client can retry. */
  consensusProposalTimeoutMs: 10_000,
  /** Redirects a proposer follows (not-leader hints) before giving up with UNAVAILABLE. */
  consensusRedirectsMax: 8,
  /** Valid votes remembered (by member, signature and message) so a certificate's votes are checked once per process, not once per hop. */
  consensusVerifiedVotesCachedMax: 16_384,
  // Consensus over libp2p (src/engine/cluster/consensus-edge.ts).
  /** Consensus groups one node runs at once; an idle one is stopped (its state stays on disk) and reloaded when needed. */
  consensusGroupsHostedMax: 1024,
  /** A group with no proposal, decision or Paxos traffic (heartbeats aside) for this long is stopped here. */
  consensusGroupIdleMs: 15_000,
  /** Consensus messages on their way to one peer; beyond this they are dropped (the core resends), so a dead peer pins nothing. Below streamsPerPeerMax so votes never crowd a member's other protocols out at the receiver. */
  consensusSendsPerPeerMax: 16,
  /** A consensus message not delivered by then is given up: a few retransmit periods on, the core has resent it anyway. */
  consensusSendTimeoutMs: 2_000,
  /** Equivocation proofs kept in memory for status (every proof is also persisted with its group). */
  consensusEquivocationsKeptMax: 64,
} as const;

export type Limits = typeof limits;
