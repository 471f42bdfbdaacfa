import type { Clock } from '../base/clock.js';
import { EngineError, isEngineError, toEngineError, type ErrorCode } from '../base/errors.js';
import { newTrxId, type BlockId, type TrxId } from '../base/ids.js';
import { limits } from '../base/limits.js';
import { actionsRecord } from '../collections/log/actions-digest.js';
import type { Rng } from '../base/rng.js';
import type { Certificate } from '../collections/log/log-block.js';
import type { PendingTransform } from '../storage/block-store.js';
import type {
  PromoteRequest,
  ReadCheck,
  ReadToVerify,
  RepoClient,
  TailClient,
  TailOutcome,
  TurnClaim,
} from './protocol.js';
import { TransactionSession, type SessionCollection } from './session.js';
import { validateTxRequest } from './tx-parse.js';
import type { ActionResult, CommitPoint, TransactOptions, TxOutcome, TxRequest } from './tx-types.js';

/** Background propagation (see `RepoClient.promotesInBackground`): tries per commit, and the pause between. */
const propagationAttemptsMax = 3;
const propagationRetryMs = 500;

/** A collection's decision: its LSN, the commit proof, and whether its tail already propagated it. */
interface Decided {
  readonly lsn: number;
  readonly proof: Certificate[];
  readonly propagated: boolean;
}

export interface CoordinatorComponents {
  readonly repo: RepoClient;
  readonly tails: TailClient;
  readonly clock: Clock;
  readonly rng: Rng;
}

export interface CoordinatorInit {
  readonly attemptsMax?: number;
  readonly expiryMs?: number;
  /**
   * Test seam: awaited after an attempt has executed its actions and before it commits, so tests can
   * interleave concurrent transactions deterministically. Never set in production wiring.
   */
  readonly afterExecute?: (trxId: TrxId, attempt: number) => Promise<void>;
  /**
   * `<node id>:<incarnation>`, sent with every commit and prepare (ValidationRequest.coordinator): a
   * networked node's, so that its tails resolve what a previous incarnation left prepared.
   */
  readonly coordinatorId?: string;
  /**
   * Told how long each phase of each attempt took, in ms (the node's `timings`): `execute` (the
   * actions, with the views and reads they need), `pend`, `decide` (commit, or prepare and decide, at
   * the tails), `finish` (promotion, checkpoint, local sync), `check` (a read-only attempt's freshness
   * and cut checks), `wait` (the pause before the next attempt). Must not throw.
   */
  readonly onPhase?: (phase: CommitPhase, ms: number) => void;
  /**
   * Told, when a transaction ends (committed or failed), how long it took and where the time went.
   * Neither hook can change an outcome: what they throw is dropped.
   */
  readonly onFinished?: (timing: TransactionTiming) => void;
}

/** The phases of an attempt, in the order a commit goes through them (`wait` comes before a replay). */
export const commitPhases = ['execute', 'pend', 'decide', 'finish', 'check', 'wait'] as const;
export type CommitPhase = (typeof commitPhases)[number];

/** Phase names in commit order; names that are not phases (from a newer node) after them, by name. */
export function inCommitOrder(names: Iterable<string>): string[] {
  const rank = (name: string): number => {
    const index = (commitPhases as readonly string[]).indexOf(name);
    return index === -1 ? commitPhases.length : index;
  };
  return [...names].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

/** One transaction's time, attempts and phases summed over them (CoordinatorInit.onFinished). */
export interface TransactionTiming {
  /** The id of its last attempt (what the outcome names), empty when it failed before one began. */
  readonly trx: TrxId;
  readonly ok: boolean;
  /** The error code when it failed. */
  readonly code?: string;
  /** Attempts that ran, waits for other transactions' turns included. */
  readonly attempts: number;
  readonly ms: number;
  readonly phases: Readonly<Partial<Record<CommitPhase, number>>>;
}

/** One transaction's attempts and phase times while it runs (undefined: nobody listens). */
interface Tally {
  attempts: number;
  readonly phases: Partial<Record<CommitPhase, number>>;
}

/** Options of Coordinator.run. */
export interface RunOptions extends TransactOptions {
  /** Per collection, a past revision to read at (read-only transactions). */
  readonly at?: ReadonlyMap<string, number>;
  /**
   * Told, when a read-only transaction succeeds, the revision (LSN) of the snapshot it read in each
   * collection: the revision its results are at, with no further round trip to the tails.
   */
  readonly onRead?: (snapshots: ReadonlyMap<string, number>) => void;
}

type Attempt =
  | {
      readonly kind: 'done';
      readonly commit: Record<string, Required<CommitPoint>>;
      readonly results: ActionResult[];
      /** A read-only transaction's: per collection read, the revision (LSN) of the snapshot read. */
      readonly read?: ReadonlyMap<string, number>;
    }
  | {
      readonly kind: 'conflict';
      readonly message: string;
      /** A tail holds a block it writes for another transaction this much longer (TailOutcome.busyMs). */
      readonly busyMs?: number;
      /** Per collection, the newest entry that won against it. */
      readonly winners?: ReadonlyMap<string, number>;
      /**
       * Holders refused the pend (a block moved on, or a holder lacks it yet): no tail is holding
       * anything for this, so the next attempt backs off even while a tail holds its blocks.
       */
      readonly pendRefused?: true;
    };

/** What a refused commit or prepare said beyond `conflict` (filled in by commitOne / commitMany). */
interface Refusal {
  busyMs: number;
  /** Per collection, the newest entry that won (TailOutcome.winners): the replay reads after it. */
  readonly winners: Map<string, number>;
}

/**
 * Runs transactions (SPEC §5): execute the logical actions on a snapshot, pend every changed block,
 * commit at the single tail or prepare at every involved tail and then decide, propagate to the
 * blocks, report the checkpoint, and make it all durable before answering. On a conflict the logical
 * actions are replayed on fresh state, up to attemptsMax; a failed guard or expectation is final.
 */
export class Coordinator {
  private readonly attemptsMax: number;
  private readonly expiryMs: number;
  private readonly afterExecute: CoordinatorInit['afterExecute'];
  private readonly coordinatorId: string | undefined;
  private readonly onPhase: CoordinatorInit['onPhase'];
  private readonly onFinished: CoordinatorInit['onFinished'];

  constructor(
    private readonly components: CoordinatorComponents,
    init: CoordinatorInit = {},
  ) {
    this.attemptsMax = init.attemptsMax ?? limits.transactionAttemptsMax;
    this.expiryMs = init.expiryMs ?? limits.pendingExpiryMs;
    this.afterExecute = init.afterExecute;
    this.coordinatorId = init.coordinatorId;
    this.onPhase = init.onPhase;
    this.onFinished = init.onFinished;
  }

  /** The time now for phase timing (monotonic), or 0 when nobody listens. */
  private phaseStart(): number {
    return this.onPhase === undefined && this.onFinished === undefined ? 0 : performance.now();
  }

  /** Reports a phase that began at `startedAt` (phaseStart) and ends now, and adds it to the tally. */
  private phaseEnd(phase: CommitPhase, startedAt: number, tally: Tally | undefined): void {
    if (this.onPhase === undefined && tally === undefined) return;
    const ms = performance.now() - startedAt;
    if (tally !== undefined) tally.phases[phase] = (tally.phases[phase] ?? 0) + ms;
    try {
      this.onPhase?.(phase, ms);
    } catch {
      // An observer's failure is not the transaction's.
    }
  }

  async run(request: TxRequest, options: RunOptions = {}): Promise<TxOutcome> {
    if (this.onFinished === undefined) return this.runTimed(request, options, undefined);
    const startedAt = performance.now();
    const tally: Tally = { attempts: 0, phases: {} };
    const outcome = await this.runTimed(request, options, tally);
    try {
      this.onFinished({
        trx: outcome.ok ? outcome.trx : '',
        ok: outcome.ok,
        ...(outcome.ok ? {} : { code: outcome.error.code }),
        attempts: tally.attempts,
        ms: performance.now() - startedAt,
        phases: tally.phases,
      });
    } catch {
      // An observer's failure is not the transaction's.
    }
    return outcome;
  }

  private async runTimed(
    request: TxRequest,
    options: RunOptions,
    tally: Tally | undefined,
  ): Promise<TxOutcome> {
    let trx: TrxId = '';
    let lineage = '';
    // The last attempt's session: if it held a turn and the transaction fails, the turn is given back.
    let session: TransactionSession | undefined;
    try {
      const checked = validateTxRequest(request);
      let lastConflict = '';
      // A replay waits for the entries that beat the attempt before to be decided, and claims its
      // turn at each tail (TurnClaim): while they hold its blocks for it, it runs again at once.
      const after = new Map<string, number>();
      let claims = new Map<string, TurnClaim>();
      // Attempts that gave way to another transaction's turn are waits, not attempts: they count
      // against transactionTurnWaitsMax instead (and towards the transaction's own claim).
      let attempt = 1;
      let waits = 0;
      let attemptMs = 0;
      while (attempt <= this.attemptsMax && waits <= limits.transactionTurnWaitsMax) {
        trx = newTrxId(this.components.rng);
        if (lineage === '') lineage = trx;
        const startedAt = this.components.clock.now();
        session = new TransactionSession(this.components, trx, options.at, after, claims);
        if (tally !== undefined) tally.attempts = attempt + waits;
        const outcome = await this.attempt(session, attempt + waits, checked, options.at, lineage, tally);
        if (outcome.kind === 'done') {
          if (outcome.read !== undefined) options.onRead?.(outcome.read);
          const commit = options.certificates === true ? outcome.commit : withoutCertificates(outcome.commit);
          return { ok: true, trx, commit, results: outcome.results, attempts: attempt };
        }
        lastConflict = outcome.message;
        const now = this.components.clock.now();
        const gaveWay = outcome.busyMs !== undefined;
        // A hold lasts a few attempts: of one that ran its course, not of one that gave way early (0
        // until one did: the tail counts on its usual attempt).
        if (!gaveWay) attemptMs = now - startedAt;
        const opened = await session.opened().catch(() => []);
        const heldMs = Math.max(0, ...opened.map((c) => c.view.heldMs ?? 0));
        for (const [collection, lsn] of outcome.winners ?? [])
          after.set(collection, Math.max(lsn, after.get(collection) ?? 0));
        if (gaveWay) waits++;
        // Only a transaction that writes claims a turn (a read-only one would hold writers off).
        const writes = opened.some((c) => c.tracker.hasWrites());
        claims = new Map(
          (writes ? opened : []).map((c) => [
            c.name,
            {
              lineage,
              losses: attempt + waits,
              reads: c.tracker.validationReads(),
              writes: c.tracker.writes(),
              tookMs: attemptMs,
            },
          ]),
        );
        const waitStarted = this.phaseStart();
        if (gaveWay) {
          this.tellTails(opened, lineage, 'paused');
          await this.pause(outcome.busyMs + this.components.rng.int(busyJitterMs + 1));
          this.phaseEnd('wait', waitStarted, tally);
          continue;
        }
        if (outcome.pendRefused === true || now >= startedAt + heldMs)
          await this.backoff(attempt, now - startedAt);
        this.phaseEnd('wait', waitStarted, tally);
        attempt++;
      }
      this.giveBackTurns(session, lineage);
      return failure(
        new EngineError(
          'CONFLICT',
          attempt > this.attemptsMax
            ? `gave up after ${this.attemptsMax} attempts: ${lastConflict}; retry later`
            : `gave up after waiting ${limits.transactionTurnWaitsMax} times for other transactions' turns on the blocks it writes; retry later`,
        ),
      );
    } catch (error) {
      this.giveBackTurns(session, lineage);
      return failure(toEngineError(error));
    }
  }

  /**
   * A transaction that fails for good (a guard, an expectation, given up) while a tail holds its
   * blocks for it tells that tail, in the background, so the others need not wait for the hold to
   * lapse. (One that commits ends its turn with its entry.)
   */
  private giveBackTurns(session: TransactionSession | undefined, lineage: string): void {
    if (session === undefined || lineage === '') return;
    void session
      .opened()
      .then((opened) => this.tellTails(opened, lineage, 'done'))
      .catch(() => undefined);
  }

  /**
   * Tells each tail that holds blocks for the transaction, in the background, that it is done (its
   * turn ends) or has paused (it gave way elsewhere: what the tail holds for it may pass on).
   */
  private tellTails(opened: readonly SessionCollection[], lineage: string, what: 'done' | 'paused'): void {
    for (const collection of opened) {
      if ((collection.view.heldMs ?? 0) <= 0) continue;
      void this.components.tails
        .view(collection.name, { lineage, losses: 1, reads: [], writes: [], tookMs: 0, [what]: true })
        .catch(() => undefined);
    }
  }

  private async attempt(
    session: TransactionSession,
    attempt: number,
    request: TxRequest,
    at: ReadonlyMap<string, number> | undefined,
    lineage: TrxId,
    tally: Tally | undefined,
  ): Promise<Attempt> {
    const { repo } = this.components;
    const trxId = session.trxId;
    let results: ActionResult[];
    const executeStarted = this.phaseStart();
    try {
      results = await session.execute(request);
      this.phaseEnd('execute', executeStarted, tally);
    } catch (error) {
      // A failed guard or expectation is final — unless it was judged on a copy a majority of the
      // block's holders had moved past: then the transaction runs again on fresh state.
      const opened = await session.opened().catch(() => undefined);
      if (opened !== undefined && !(await this.readsFresh(opened, { written: true }))) return staleReads;
      throw error;
    }
    if (this.afterExecute !== undefined) await this.afterExecute(trxId, attempt);
    const opened = await session.opened();
    // A tail holds a block this writes for a transaction that kept losing: it would refuse the commit.
    const busyMs = heldForOthers(opened);
    if (busyMs > 0)
      return { kind: 'conflict', message: 'gave way to a transaction that kept losing', busyMs };
    if (!opened.some((c) => c.tracker.hasWrites())) {
      const checkStarted = this.phaseStart();
      // Read-only: every block it read must be as fresh as a majority of its holders know.
      if (!(await this.readsFresh(opened))) return staleReads;
      // A past revision is what it is; the present must be one cut across the collections read.
      if (at === undefined || at.size === 0) {
        const conflict = await this.checkReadOnly(trxId, opened);
        if (conflict !== undefined) return { kind: 'conflict', message: conflict };
      }
      // What we read may have been written by a transaction still waiting for its sync; answer only
      // once that is durable too.
      await repo.sync();
      this.phaseEnd('check', checkStarted, tally);
      return { kind: 'done', commit: {}, results, read: new Map(opened.map((c) => [c.name, c.atLsn])) };
    }
    if (at !== undefined && at.size > 0)
      throw new EngineError('BAD_INPUT', 'a transaction that writes cannot read at a past revision');

    // Every collection the transaction read or wrote takes part: reads of a collection it does not
    // write must hold until the decision too, or write skew across collections would slip through.
    const writing = opened.filter((c) => c.tracker.hasWrites() || c.tracker.reads().size > 0);
    const expiresAt = this.components.clock.now() + this.expiryMs;
    const pends = writing.flatMap((collection) => pendsOf(trxId, collection, expiresAt));
    // Blocks it only read are checked with the pends (which check the blocks it writes against their
    // base revision at every holder): the repo asks the holders it pends at about them too.
    const verify = repo.verifyReads === undefined ? [] : this.readsToVerify(writing, { routing: true });
    const pendStarted = this.phaseStart();
    const pended = await repo.pend(pends, verify.length > 0 ? { verify } : undefined);
    this.phaseEnd('pend', pendStarted, tally);
    const fresh = (pended.stale ?? []).length === 0;
    const cancel = (): Promise<void> =>
      repo.cancel(
        trxId,
        pends.map((p) => p.blockId),
      );
    if (!pended.ok) {
      // The holders that took it drop it now: this transaction id never reaches a tail, and each
      // refused attempt would otherwise leave its pends for pendingExpiryMs (a joiner still being
      // handed blocks refused 32 attempts in a row, leaving 64 behind).
      await cancel().catch(() => undefined);
      return { kind: 'conflict', message: 'a block changed while the transaction ran', pendRefused: true };
    }
    if (!fresh) {
      await cancel();
      return staleReads;
    }

    let decided: Map<string, Decided>;
    const refusal: Refusal = { busyMs: 0, winners: new Map() };
    const turn = lineage === trxId ? undefined : lineage;
    const decideStarted = this.phaseStart();
    try {
      decided =
        writing.length === 1
          ? await this.commitOne(trxId, writing[0]!, request, turn, refusal)
          : await this.commitMany(trxId, writing, expiresAt, request, turn, refusal);
    } catch (error) {
      // A tail that may have decided (a timeout, an unreachable leader, a decision whose log write
      // failed) must not have its pends withdrawn: they stay until they expire, and their holders
      // then ask the tail, which settles the outcome (LogTail.outcomeOf).
      if (!outcomeInDoubt(error)) await cancel();
      throw error;
    }
    this.phaseEnd('decide', decideStarted, tally);
    const finishStarted = this.phaseStart();
    if (decided.size === 0) {
      await cancel();
      return {
        kind: 'conflict',
        message: 'a concurrent transaction wrote what this one read or wrote',
        ...(refusal.busyMs > 0 ? { busyMs: refusal.busyMs } : {}),
        ...(refusal.winners.size > 0 ? { winners: refusal.winners } : {}),
      };
    }

    // Propagate to every written block, then report the checkpoint to each tail.
    const commit: Record<string, Required<CommitPoint>> = {};
    const propagations: { collection: string; lsn: number; promote: PromoteRequest | undefined }[] = [];
    for (const collection of writing) {
      const { lsn, proof, propagated } = decided.get(collection.name)!;
      const blockIds = collection.tracker.writes();
      if (blockIds.length > 0) commit[collection.name] = { rev: lsn, certificate: proof[0]! };
      // The tail promoted it with its log write and moves the checkpoint itself.
      if (propagated) continue;
      propagations.push({
        collection: collection.name,
        lsn,
        promote: blockIds.length > 0 ? { trxId, lsn, blockIds, proof } : undefined,
      });
    }
    if (repo.promotesInBackground === true) {
      // The commit is decided and its log entry stored by a majority: answer now, promote after.
      void this.propagate(propagations, propagationAttemptsMax);
    } else {
      for (const propagation of propagations) {
        if (propagation.promote !== undefined) await repo.promote(propagation.promote);
        await this.components.tails.propagated(propagation.collection, propagation.lsn);
      }
    }
    await repo.sync();
    this.phaseEnd('finish', finishStarted, tally);
    return { kind: 'done', commit, results };
  }

  /**
   * Whether the blocks these collections only read (read with `verifyLater`) are still what a
   * majority of their holders hold; true at once when the repo reads fresh anyway. Blocks the
   * transaction writes are left to its pends, which hold them to their base revision (`written`:
   * check those too, when there will be no pend).
   */
  private async readsFresh(
    collections: readonly SessionCollection[],
    options: { readonly written?: boolean } = {},
  ): Promise<boolean> {
    const verify = this.components.repo.verifyReads?.bind(this.components.repo);
    if (verify === undefined) return true;
    const reads = this.readsToVerify(collections, options);
    if (reads.length === 0) return true;
    return (await verify(reads)).length === 0;
  }

  /**
   * The reads of these collections made with `verifyLater`, less the blocks they write (unless
   * `written`). `routing`: a writing transaction's, whose commit the tail validates: blocks read only
   * to route carry the snapshot's LSN (ReadToVerify.snapshotLsn).
   */
  private readsToVerify(
    collections: readonly SessionCollection[],
    options: { readonly written?: boolean; readonly routing?: boolean } = {},
  ): ReadToVerify[] {
    return collections.flatMap((collection) => {
      const written = new Set(options.written === true ? [] : collection.tracker.writes());
      const validated = options.routing === true ? new Set(collection.tracker.validationReads()) : undefined;
      return [...collection.unverified].flatMap(([blockId, request]) => {
        if (written.has(blockId)) return [];
        const rev = collection.tracker.reads().get(blockId) ?? 0;
        return validated === undefined || validated.has(blockId)
          ? [{ request, rev }]
          : [{ request, rev, snapshotLsn: collection.atLsn }];
      });
    });
  }

  /**
   * Promotes a committed transaction at its blocks and reports each collection's checkpoint, after
   * the client was answered. A failure is tried again a little later; one that persists is left to
   * the tail (readers reinforce the commit meanwhile, and a tail that reloads propagates it).
   */
  private async propagate(
    propagations: readonly { collection: string; lsn: number; promote: PromoteRequest | undefined }[],
    attemptsLeft: number,
  ): Promise<void> {
    const failed: (typeof propagations)[number][] = [];
    for (const propagation of propagations) {
      try {
        if (propagation.promote !== undefined) await this.components.repo.promote(propagation.promote);
        await this.components.tails.propagated(propagation.collection, propagation.lsn);
      } catch {
        failed.push(propagation);
      }
    }
    if (failed.length === 0 || attemptsLeft <= 1) return;
    await new Promise((resolve) => setTimeout(resolve, propagationRetryMs).unref());
    await this.propagate(failed, attemptsLeft - 1);
  }

  /** One collection: the tail validates and commits in one decision. Empty map = conflict. */
  private async commitOne(
    trxId: TrxId,
    collection: SessionCollection,
    request: TxRequest,
    lineage: TrxId | undefined,
    refusal: Refusal,
  ): Promise<Map<string, Decided>> {
    const outcome = await this.components.tails.commit(
      validationOf(trxId, collection, request, this.coordinatorId, lineage),
    );
    if (outcome.status !== 'committed') {
      this.distrustStale([outcome]);
      noteRefusal(refusal, [[collection.name, outcome]]);
      return new Map();
    }
    return new Map([
      [
        collection.name,
        {
          lsn: outcome.lsn,
          proof: [outcome.certificate],
          propagated: outcome.propagated === true,
        },
      ],
    ]);
  }

  /**
   * Several collections (Paxos Commit shape): prepare at every tail; all prepared → the set of
   * prepared certificates is the commit proof and each tail is told to commit; any rejection → every
   * prepared tail is told to abort. Empty map = conflict.
   */
  private async commitMany(
    trxId: TrxId,
    writing: readonly SessionCollection[],
    expiresAt: number,
    request: TxRequest,
    lineage: TrxId | undefined,
    refusal: Refusal,
  ): Promise<Map<string, Decided>> {
    const tails = this.components.tails;
    const participants = writing.map((c) => c.name).sort();
    const settled = await Promise.allSettled(
      writing.map((collection) =>
        tails.prepare({
          ...validationOf(trxId, collection, request, this.coordinatorId, lineage),
          participants,
          expiresAt,
        }),
      ),
    );
    const outcomes = settled.map((s) => (s.status === 'fulfilled' ? s.value : undefined));
    const prepared = outcomes.flatMap((o) => (o?.status === 'prepared' ? [o.certificate] : []));
    if (prepared.length !== writing.length) {
      this.distrustStale(outcomes.filter((o): o is TailOutcome => o !== undefined));
      noteRefusal(
        refusal,
        writing.flatMap((collection, i) => {
          const outcome = outcomes[i];
          return outcome === undefined ? [] : [[collection.name, outcome] as const];
        }),
      );
      // Aborted wherever it may be prepared: at every tail that prepared it, and at any whose answer
      // was lost (a prepare that timed out or whose leader went down may have landed there).
      const aborts = await Promise.allSettled(
        writing.map((collection, i) =>
          outcomes[i] !== undefined && outcomes[i].status !== 'prepared'
            ? Promise.resolve(false)
            : tails
                .decide({ collection: collection.name, trxId, outcome: 'aborted', proof: [] })
                .then(() => true),
        ),
      );
      const lost = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (lost === undefined) {
        const abortFailed = aborts.find((a): a is PromiseRejectedResult => a.status === 'rejected');
        if (abortFailed !== undefined) throw abortFailed.reason;
        return new Map();
      }
      // A lost answer leaves the outcome in doubt — unless a tail now holds the abort: a commit needs
      // every participant prepared, so the transaction can no longer commit anywhere and runs again.
      // Before, its prepared entries held their blocks until they expired (30 s): in the fault test a
      // bank of ten accounts stood still behind them while every coordinator was alive.
      const abortedSomewhere = aborts.some((a) => a.status === 'fulfilled' && a.value);
      if (abortedSomewhere && outcomeInDoubt(lost.reason)) return new Map();
      throw lost.reason;
    }
    // Every tail is told at once: the prepared certificates are the proof, in whatever order they land.
    // From here the transaction is committed (every participant prepared it), whatever a tail answers:
    // an error only means that tail has not recorded it yet, so its pends must stay (the tails finish
    // it: LogTail resolves prepared entries), and the client hears that the outcome is in doubt.
    const answers = await Promise.all(
      writing.map((collection) =>
        tails.decide({ collection: collection.name, trxId, outcome: 'committed', proof: prepared }),
      ),
    ).catch((error: unknown) => {
      const cause = toEngineError(error);
      const code: ErrorCode =
        cause.code === 'TIMEOUT' || cause.code === 'NO_QUORUM' ? cause.code : 'UNAVAILABLE';
      throw new EngineError(
        code,
        `every collection prepared the transaction, so it commits, but a tail did not confirm it yet (${cause.code}: ${cause.message}); its outcome is in doubt until the tails record it`,
        { ...(cause.details ?? {}), inDoubt: true },
        { cause: error },
      );
    });
    const decided = new Map<string, Decided>();
    writing.forEach((collection, i) => {
      const { lsn, certificate, propagated } = answers[i]!;
      decided.set(collection.name, { lsn, proof: [certificate], propagated: propagated === true });
    });
    return decided;
  }

  /**
   * A read-only transaction that read several collections: each one's snapshot is consistent (its
   * view's stable LSN), but a multi-collection commit can be decided in one collection before the
   * other, so one snapshot may hold it and the other not yet. Each tail checks that nothing committed
   * or prepared after the snapshot wrote what was read there (as it validates a writer's reads,
   * prepared entries included): every transaction the snapshots show was decided before they were
   * taken, so its entry is by then in every log it writes, seen by the check where it came too late.
   * The reason of a conflict, or undefined when the reads are one consistent cut.
   */
  private async checkReadOnly(
    trxId: TrxId,
    opened: readonly SessionCollection[],
  ): Promise<string | undefined> {
    const reading = opened.filter((collection) => collection.tracker.reads().size > 0);
    if (reading.length < 2) return undefined;
    const checks = await Promise.all(
      reading.map((collection) => {
        const readAt = collection.tracker.readAt(collection.atLsn);
        return this.components.tails.check({
          collection: collection.name,
          trxId,
          baseLsn: collection.atLsn,
          reads: collection.tracker.validationReads(),
          ...(readAt !== undefined ? { readAt } : {}),
        });
      }),
    );
    this.distrust(checks.flatMap((check) => (check.ok ? [] : (check.stale ?? []))));
    const failed = checks.find((check): check is Extract<ReadCheck, { ok: false }> => !check.ok);
    return failed === undefined
      ? undefined
      : `a transaction wrote what it read in one collection while it read another (${failed.message})`;
  }

  /**
   * Copies a tail found behind the snapshot they were read at (a holder that missed a commit): the
   * next attempt reads them from their clusters, or it would read the same stale copies again.
   */
  private distrustStale(outcomes: readonly TailOutcome[]): void {
    this.distrust(outcomes.flatMap((o) => (o.status === 'conflict' ? (o.stale ?? []) : [])));
  }

  private distrust(stale: readonly BlockId[]): void {
    if (stale.length > 0) this.components.repo.distrust?.(stale);
  }

  /**
   * The pause before attempt `attempt + 1`: random up to the time the conflicted attempt took, times
   * √2 per attempt since (at most transactionBackoffMaxMs). Transactions that collide on a block take
   * turns about as long as one attempt lasts, so the spread has to scale with it: a fixed few
   * milliseconds let attempts that take tens (a network commit) collide again and again. (Doubling
   * instead gave the same throughput with longer waits for the unluckiest; growing linearly, a few
   * transactions gave up after 32 attempts.)
   */
  private async backoff(attempt: number, tookMs: number): Promise<void> {
    const ceiling = backoffCeilingMs(attempt, tookMs);
    await this.pause(this.components.rng.int(ceiling + 1));
  }

  private async pause(ms: number): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, ms));
  }
}

/** The most `Coordinator.backoff` waits after an attempt that took `tookMs`, before attempt `attempt + 1`. */
export function backoffCeilingMs(attempt: number, tookMs: number): number {
  const base = Math.max(backoffBaseMinMs, tookMs);
  return Math.min(limits.transactionBackoffMaxMs, base * Math.SQRT2 ** Math.min(attempt - 1, 40));
}

/** An attempt's duration counts as at least this much (an embedded commit takes well under 1 ms). */
const backoffBaseMinMs = 2;

export function validationOf(
  trxId: TrxId,
  collection: SessionCollection,
  request: TxRequest,
  coordinator?: string,
  lineage?: TrxId,
): {
  collection: string;
  trxId: TrxId;
  baseLsn: number;
  reads: string[];
  writes: string[];
  actions?: unknown;
  actionsDigest?: string;
  readAt?: Record<string, number>;
  coordinator?: string;
  lineage?: TrxId;
} {
  const readAt = collection.tracker.readAt(collection.atLsn);
  return {
    collection: collection.name,
    trxId,
    baseLsn: collection.atLsn,
    reads: collection.tracker.validationReads(),
    writes: collection.tracker.writes(),
    // What the log entry keeps of them (the actions, or their digest when too large to keep inline),
    // made here: a transaction's actions can be megabytes, more than one message to a remote tail
    // may carry (60 values of 60 KB were refused TOO_LARGE), and the tail keeps only the digest then.
    ...actionsRecord(
      request.actions.filter((action) => action.collection === collection.name),
      limits.inlineActionsBytesMax,
    ),
    ...(readAt !== undefined ? { readAt } : {}),
    ...(coordinator !== undefined ? { coordinator } : {}),
    ...(lineage !== undefined ? { lineage } : {}),
  };
}

/**
 * The longest the refusing tails hold a block the transaction writes for another one, and the newest
 * entry that won at each (a tail's answer is not trusted to be well formed).
 */
function noteRefusal(
  refusal: Refusal,
  outcomes: readonly (readonly [collection: string, outcome: TailOutcome])[],
): void {
  for (const [collection, outcome] of outcomes) {
    if (outcome.status !== 'conflict') continue;
    refusal.busyMs = Math.max(refusal.busyMs, turnWaitMs(outcome.busyMs));
    const winners: unknown = outcome.winners;
    if (!Array.isArray(winners)) continue;
    for (const lsn of winners)
      if (Number.isSafeInteger(lsn) && (lsn as number) > (refusal.winners.get(collection) ?? 0))
        refusal.winners.set(collection, lsn as number);
  }
}

/** How long to wait for the holds of other transactions on blocks these collections write (0: none). */
function heldForOthers(opened: readonly SessionCollection[]): number {
  let ms = 0;
  for (const collection of opened) {
    // From the network: checked.
    const holds: unknown = collection.view.holds;
    if (!Array.isArray(holds) || holds.length === 0) continue;
    const writes = new Set(collection.tracker.writes());
    for (const hold of holds as unknown[]) {
      const { blockId, forMs } = (hold ?? {}) as { blockId?: unknown; forMs?: unknown };
      if (typeof blockId === 'string' && writes.has(blockId)) ms = Math.max(ms, turnWaitMs(forMs));
    }
  }
  return ms;
}

/** A wait a tail asked for (from the network: checked), at most transactionBackoffMaxMs; 0 if none. */
function turnWaitMs(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0
    ? Math.min(value, limits.transactionBackoffMaxMs)
    : 0;
}

/** Spread of the pauses of transactions that wait for a hold to end, so they do not all come at once. */
const busyJitterMs = 5;

export function pendsOf(trxId: TrxId, collection: SessionCollection, expiresAt: number): PendingTransform[] {
  return collection.tracker.writes().map((blockId) => ({
    trxId,
    blockId,
    collection: collection.name,
    baseRev: collection.tracker.baseRevOf(blockId),
    transform: collection.tracker.transformOf(blockId)!,
    expiresAt,
  }));
}

const staleReads: Attempt = {
  kind: 'conflict',
  message: 'a block it read had changed at the majority of its holders',
};

function failure(error: EngineError): TxOutcome {
  const action = error.details?.['action'];
  return {
    ok: false,
    error: { code: error.code, message: error.message, ...(typeof action === 'number' ? { action } : {}) },
  };
}

/** Errors after which a tail may still have decided the transaction (or may decide it later). */
const inDoubtCodes: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'UNAVAILABLE',
  'TIMEOUT',
  'NO_QUORUM',
  'INTERNAL',
  'INTERRUPTED',
]);

function outcomeInDoubt(error: unknown): boolean {
  if (!isEngineError(error)) return true;
  return inDoubtCodes.has(error.code) || error.details?.['inDoubt'] === true;
}

function withoutCertificates(
  commit: Readonly<Record<string, CommitPoint>>,
): Record<string, { readonly rev: number }> {
  const out: Record<string, { readonly rev: number }> = {};
  for (const [collection, { rev }] of Object.entries(commit)) out[collection] = { rev };
  return out;
}
