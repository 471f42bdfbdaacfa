import { EngineError } from '../base/errors.js';
import { jsonEqual, type Json } from '../base/codec.js';
import type { BlockId, TrxId } from '../base/ids.js';
import { limits } from '../base/limits.js';
import type { Rng } from '../base/rng.js';
import { BTree } from '../collections/btree/btree.js';
import { Diary } from '../collections/diary.js';
import type { CollectionHeader } from '../collections/log/log-block.js';
import type { CommitRef, GetBlockRequest, RepoClient, TailClient, TailView, TurnClaim } from './protocol.js';
import { Tracker } from './tracker.js';
import { checkValue } from './tx-parse.js';
import type { Action, ActionResult, Expectation, TxRequest } from './tx-types.js';

export interface SessionComponents {
  readonly repo: RepoClient;
  readonly tails: TailClient;
  readonly rng: Rng;
}

/** One collection as a session sees it: a snapshot view, a tracker and the structure over it. */
export interface SessionCollection {
  readonly name: string;
  readonly view: TailView;
  readonly header: CollectionHeader;
  /** The snapshot LSN reads are served at. */
  readonly atLsn: number;
  readonly tracker: Tracker;
  readonly tree: BTree;
  /** Reads made with `verifyLater` (a repo with `verifyReads`), by block: the coordinator checks them. */
  readonly unverified: ReadonlyMap<BlockId, GetBlockRequest>;
}

/** How long a replay's view waits for the entry that beat the attempt before to be decided. */
const viewWaitMaxMs = 500;
const viewWaitFirstPauseMs = 1;
const viewWaitPauseMaxMs = 32;

/**
 * One attempt of a transaction: reads each involved collection at a snapshot (the tail's stable LSN,
 * or a past revision for time travel), executes the logical actions against copy-on-write trackers,
 * and exposes the read and write sets for the commit protocol. A fresh session is made per attempt.
 */
export class TransactionSession {
  private readonly collections = new Map<string, Promise<SessionCollection>>();
  /** Collections whose open has finished: actions on them start without a wait. */
  private readonly ready = new Map<string, SessionCollection>();

  constructor(
    private readonly components: SessionComponents,
    readonly trxId: TrxId,
    /** Time travel: collection → revision to read at. Read-only sessions only. */
    private readonly atRevisions: ReadonlyMap<string, number> = new Map(),
    /**
     * A replay's: collection → LSN of the newest entry that won against the attempt before. The
     * snapshot waits for it to be decided (it may be a prepared entry still waiting for its other
     * collections): read below it, the attempt would fail on the same entry again.
     */
    private readonly after: ReadonlyMap<string, number> = new Map(),
    /** A replay's: collection → its claim to a turn, sent with the view (TurnClaim). */
    private readonly claims: ReadonlyMap<string, TurnClaim> = new Map(),
  ) {}

  collection(name: string): Promise<SessionCollection> {
    let promise = this.collections.get(name);
    if (promise === undefined) {
      promise = this.open(name).then((collection) => {
        this.ready.set(name, collection);
        return collection;
      });
      this.collections.set(name, promise);
    }
    return promise;
  }

  async opened(): Promise<SessionCollection[]> {
    return Promise.all(this.collections.values());
  }

  /** Executes a request's expectations and actions in order; throws EngineError on a failed guard. */
  async execute(request: TxRequest): Promise<ActionResult[]> {
    // Open every collection first, so unknown collections fail before anything runs.
    const names = new Set([
      ...request.actions.map((a) => a.collection),
      ...(request.expect ?? []).map((e) => e.collection),
    ]);
    await Promise.all([...names].map((name) => this.collection(name)));
    for (const expectation of request.expect ?? []) await this.check(expectation);
    const results: ActionResult[] = [];
    for (const [index, action] of request.actions.entries()) {
      try {
        results.push(await this.run(action, index));
      } catch (error) {
        if (error instanceof EngineError && error.details?.['action'] === undefined) {
          throw new EngineError(
            error.code,
            error.message,
            { ...(error.details ?? {}), action: index },
            { cause: error },
          );
        }
        throw error;
      }
    }
    return results;
  }

  /**
   * The collection's view once every entry up to `after` is decided (and, when the tail holds the
   * replay's blocks for it, every entry there was then), asking again after growing pauses (at most
   * viewWaitMaxMs in all: then the view as it is, and the attempt may meet those entries again).
   */
  private async viewAfter(name: string, after: number | undefined): Promise<TailView> {
    const claim = this.claims.get(name);
    let view = await this.components.tails.view(name, claim);
    // Held for this replay: nothing new can be decided on its blocks, but what was prepared before
    // the hold still can be (a transaction of several collections), and would change them under it.
    let lsn = after;
    if ((view.heldMs ?? 0) > 0) lsn = Math.max(lsn ?? 0, view.lastLsn);
    if (lsn === undefined) return view;
    let pause = viewWaitFirstPauseMs;
    for (let waited = 0; view.stableLsn < lsn && waited < viewWaitMaxMs; waited += pause, pause *= 2) {
      pause = Math.min(pause, viewWaitPauseMaxMs);
      await new Promise((resolve) => setTimeout(resolve, pause));
      view = await this.components.tails.view(name, claim);
    }
    return view;
  }

  private async open(name: string): Promise<SessionCollection> {
    const view = await this.viewAfter(name, this.after.get(name));
    const header = view.header;
    const at = this.atRevisions.get(name);
    if (at !== undefined && (at < 1 || at > view.stableLsn)) {
      throw new EngineError(
        'NOT_FOUND',
        `collection ${name} has no revision ${at} (latest is ${view.stableLsn})`,
      );
    }
    const atLsn = at ?? view.stableLsn;
    const refs = new Map<BlockId, CommitRef[]>();
    for (const entry of view.uncheckpointed) {
      if (entry.lsn > atLsn) continue;
      for (const id of entry.writes) {
        const list = refs.get(id) ?? [];
        list.push({ trxId: entry.trxId, lsn: entry.lsn, certificate: entry.certificate });
        refs.set(id, list);
      }
    }
    const repo = this.components.repo;
    const verifyLater = repo.verifyReads !== undefined;
    const unverified = new Map<BlockId, GetBlockRequest>();
    const requestOf = (id: BlockId): GetBlockRequest => {
      const reinforce = refs.get(id);
      return { blockId: id, atLsn, ...(reinforce !== undefined ? { reinforce } : {}) };
    };
    // Reads to verify later go through get, which records them.
    const getNow = verifyLater ? undefined : repo.getNow?.bind(repo);
    const tracker = new Tracker(
      {
        read: async (id) => {
          const request = requestOf(id);
          if (verifyLater) unverified.set(id, request);
          const state = await repo.get(verifyLater ? { ...request, verifyLater } : request);
          return { block: state?.block, rev: state?.rev ?? 0, lsn: state?.lsn };
        },
        ...(getNow !== undefined
          ? {
              readNow: (id: BlockId) => {
                const state = getNow(requestOf(id));
                return state === undefined
                  ? undefined
                  : { block: state?.block, rev: state?.rev ?? 0, lsn: state?.lsn };
              },
            }
          : {}),
      },
      this.components.rng,
    );
    const tree = new BTree(tracker, header.root, name);
    return { name, view, header, atLsn, tracker, tree, unverified };
  }

  private tree(name: string, index: number): SessionCollection | Promise<SessionCollection> {
    const ready = this.ready.get(name);
    return ready !== undefined ? this.ofKindTree(ready, name, index) : this.openTree(name, index);
  }

  private async openTree(name: string, index: number): Promise<SessionCollection> {
    return this.ofKindTree(await this.collection(name), name, index);
  }

  private ofKindTree(collection: SessionCollection, name: string, index: number): SessionCollection {
    if (collection.header.kind !== 'tree') {
      throw new EngineError('WRONG_TYPE', `collection ${name} is a ${collection.header.kind}, not a tree`, {
        action: index,
      });
    }
    return collection;
  }

  private async diary(name: string, index: number): Promise<{ collection: SessionCollection; diary: Diary }> {
    const collection = await this.collection(name);
    if (collection.header.kind !== 'diary') {
      throw new EngineError('WRONG_TYPE', `collection ${name} is a ${collection.header.kind}, not a diary`, {
        action: index,
      });
    }
    return { collection, diary: new Diary(collection.tracker, collection.header.root, name) };
  }

  private async check(expectation: Expectation): Promise<void> {
    const { tree } = await this.tree(expectation.collection, -1);
    const current = await tree.get(expectation.key);
    const where = `${expectation.collection}/${expectation.key}`;
    if (expectation.exists !== undefined && (current !== undefined) !== expectation.exists) {
      throw new EngineError(
        'EXPECT_FAILED',
        `expected ${where} to ${expectation.exists ? 'exist' : 'not exist'}`,
        { action: -1 },
      );
    }
    if (
      expectation.value !== undefined &&
      (current === undefined || !jsonEqual(current, expectation.value))
    ) {
      throw new EngineError(
        'EXPECT_FAILED',
        `expected ${where} to equal ${JSON.stringify(expectation.value)}`,
        { action: -1 },
      );
    }
  }

  private async run(action: Action, index: number): Promise<ActionResult> {
    switch (action.op) {
      case 'get': {
        const { tree } = await this.tree(action.collection, index);
        const value = await tree.get(action.key);
        return { op: 'get', key: action.key, found: value !== undefined, value: value ?? null };
      }
      case 'put': {
        // The collection is open by now (execute opens them all first): no wait for it.
        const found = this.tree(action.collection, index);
        const { tree } = found instanceof Promise ? await found : found;
        await tree.put(action.key, action.value);
        return { op: 'put', key: action.key };
      }
      case 'del': {
        const { tree } = await this.tree(action.collection, index);
        return { op: 'del', key: action.key, deleted: await tree.delete(action.key) };
      }
      case 'incr': {
        const { tree } = await this.tree(action.collection, index);
        const current = await tree.get(action.key);
        const { next, value } = incremented(current, action.path, action.by, index);
        const where = `${action.collection}/${action.key}${action.path === undefined ? '' : `.${action.path}`}`;
        if (action.min !== undefined && value < action.min) {
          throw new EngineError(
            'EXPECT_FAILED',
            `${where} would become ${value}, below the minimum ${action.min}`,
            { action: index },
          );
        }
        if (action.max !== undefined && value > action.max) {
          throw new EngineError(
            'EXPECT_FAILED',
            `${where} would become ${value}, above the maximum ${action.max}`,
            { action: index },
          );
        }
        await tree.put(action.key, checkValue(next, index));
        return { op: 'incr', key: action.key, value };
      }
      case 'merge': {
        const { tree } = await this.tree(action.collection, index);
        const current = await tree.get(action.key);
        if (
          current !== undefined &&
          (current === null || typeof current !== 'object' || Array.isArray(current))
        ) {
          throw new EngineError(
            'BAD_INPUT',
            `cannot merge into ${action.collection}/${action.key}: its value is not an object`,
            { action: index },
          );
        }
        const merged = checkValue({ ...(current ?? {}), ...action.value }, index);
        await tree.put(action.key, merged);
        return { op: 'merge', key: action.key, value: merged };
      }
      case 'append': {
        const { diary } = await this.diary(action.collection, index);
        return { op: 'append', index: await diary.append(action.value) };
      }
      case 'read': {
        const { diary } = await this.diary(action.collection, index);
        const limit = Math.min(action.limit ?? limits.scanPageItemsMax, limits.scanPageItemsMax);
        const entries: { index: number; value: Json }[] = [];
        if (limit > 0) {
          for await (const entry of diary.read({
            ...(action.from !== undefined ? { from: action.from } : {}),
            ...(action.reverse !== undefined ? { reverse: action.reverse } : {}),
            limit,
          })) {
            entries.push(entry);
          }
        }
        return { op: 'read', entries };
      }
      case 'scan': {
        const { tree } = await this.tree(action.collection, index);
        const limit = Math.min(action.limit ?? limits.scanPageItemsMax, limits.scanPageItemsMax);
        const entries: { key: string; value: Json }[] = [];
        if (limit > 0) {
          const range = {
            ...(action.from !== undefined ? { gte: action.from } : {}),
            ...(action.to !== undefined ? { lte: action.to } : {}),
            ...(action.reverse !== undefined ? { reverse: action.reverse } : {}),
            limit,
          };
          for await (const [key, value] of tree.entries(range)) entries.push({ key: String(key), value });
        }
        return { op: 'scan', entries };
      }
    }
  }
}

function incremented(
  current: Json | undefined,
  path: string | undefined,
  by: number,
  index: number,
): { next: Json; value: number } {
  if (path === undefined) {
    // The value itself is the counter (absent counts as 0).
    const old = current ?? 0;
    if (typeof old !== 'number')
      fail(
        `cannot incr: the value is ${describeJson(old)}, not a number (name the numeric field with "path")`,
        index,
      );
    const value = addExactly(old, by, 'incr', index);
    return { next: value, value };
  }
  const parts = path.split('.');
  const root: Record<string, Json> =
    current === undefined
      ? {}
      : isRecord(current)
        ? structuredClone(current)
        : fail(
            `cannot incr "${path}": the value is ${describeJson(current)}, not an object` +
              (typeof current === 'number' ? ' (leave out "path" to add to the number itself)' : ''),
            index,
          );
  let node = root;
  for (const part of parts.slice(0, -1)) {
    const child = node[part];
    if (child === undefined) node[part] = {};
    else if (!isRecord(child)) fail(`cannot incr "${path}": "${part}" is not an object`, index);
    node = node[part] as Record<string, Json>;
  }
  const last = parts.at(-1)!;
  const old = node[last] ?? 0;
  if (typeof old !== 'number') fail(`cannot incr "${path}": it holds a ${typeof old}, not a number`, index);
  const value = addExactly(old, by, `incr "${path}"`, index);
  node[last] = value;
  return { next: root, value };
}

/** `old + by`, refused (TOO_LARGE) when it is not finite or, adding integers, no longer exact. */
function addExactly(old: number, by: number, what: string, index: number): number {
  const value = old + by;
  // Integers stay exact up to 2^53 - 1; past it, an increment of 1 can leave the number as it was.
  if (
    !Number.isFinite(value) ||
    (Number.isInteger(by) && Number.isInteger(old) && !Number.isSafeInteger(value))
  )
    throw new EngineError(
      'TOO_LARGE',
      `cannot ${what}: ${old} + ${by} is past ±${Number.MAX_SAFE_INTEGER}, beyond which numbers lose precision`,
      { action: index },
    );
  return value;
}

function describeJson(value: Json): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function isRecord(value: Json | undefined): value is Record<string, Json> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function fail(message: string, index: number): never {
  throw new EngineError('BAD_INPUT', message, { action: index });
}
