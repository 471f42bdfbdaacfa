import { expect } from 'chai';
import { systemClock } from '../../../src/engine/base/clock.js';
import { EngineError } from '../../../src/engine/base/errors.js';
import { SoloCertifier } from '../../../src/engine/transactions/certifier.js';
import { LogTail } from '../../../src/engine/transactions/log-tail.js';
import type { RepoClient, TailClient } from '../../../src/engine/transactions/protocol.js';
import type { Certificate } from '../../../src/engine/collections/log/log-block.js';
import { SeededRng } from '../../../src/engine/base/rng.js';
import { newTrxId } from '../../../src/engine/base/ids.js';
import { Coordinator, pendsOf, validationOf } from '../../../src/engine/transactions/coordinator.js';
import { TransactionSession, type SessionCollection } from '../../../src/engine/transactions/session.js';
import type { TxRequest } from '../../../src/engine/transactions/tx-types.js';
import type { SoloNode } from '../../../src/engine/node/solo-node.js';
import { memoryNode, ok, put, tailOver, value } from '../../helpers/solo.js';

/**
 * Runs a one-collection request as a coordinator would, up to its pends (expiring at `expiresAt`):
 * the transaction and its collection, for a test to take it on from there.
 */
async function executeAndPend(
  node: SoloNode,
  request: TxRequest,
  seed: number,
  expiresAt: number = Date.now() + 60_000,
): Promise<{ trxId: string; collection: SessionCollection }> {
  const rng = new SeededRng(seed);
  const trxId = newTrxId(rng);
  const session = new TransactionSession({ repo: node.repo, tails: node.tails, rng }, trxId);
  await session.execute(request);
  const [collection] = await session.opened();
  await node.repo.pend(pendsOf(trxId, collection!, expiresAt));
  return { trxId, collection: collection! };
}

/** Runs a transaction up to "prepared at these tails" and then stops, as a coordinator that died. */
/**
 * A coordinator of `node` whose tail requests go to the node's tails, except those `overrides`
 * answers (a tail that fails in a chosen way).
 */
function coordinatorWith(node: SoloNode, overrides: Partial<TailClient>): Coordinator {
  const own = node.tails;
  const tails: TailClient = {
    view: (c, claim) => own.view(c, claim),
    create: (r) => own.create(r),
    commit: (r) => own.commit(r),
    prepare: (r) => own.prepare(r),
    decide: (r) => own.decide(r),
    propagated: (c, lsn) => own.propagated(c, lsn),
    outcomeOf: (c, t) => own.outcomeOf(c, t),
    check: (r) => own.check(r),
    ...overrides,
  };
  return new Coordinator({ repo: node.repo, tails, clock: systemClock, rng: new SeededRng(3) });
}

async function prepareAndDie(
  node: SoloNode,
  request: TxRequest,
  prepareAt: readonly string[],
): Promise<string> {
  return (await preparedAt(node, request, prepareAt)).trxId;
}

/** `prepareAndDie`, with the transaction's collections, by a coordinator that may name itself. */
async function preparedAt(
  node: SoloNode,
  request: TxRequest,
  prepareAt: readonly string[],
  options: { readonly seed?: number; readonly coordinator?: string } = {},
): Promise<{ trxId: string; collections: SessionCollection[]; proof: Certificate[] }> {
  const rng = new SeededRng(options.seed ?? 99);
  const trxId = newTrxId(rng);
  const session = new TransactionSession({ repo: node.repo, tails: node.tails, rng }, trxId);
  await session.execute(request);
  const collections = await session.opened();
  const expiresAt = Date.now() + 60_000;
  const pended = await node.repo.pend(collections.flatMap((c) => pendsOf(trxId, c, expiresAt)));
  expect(pended.ok).to.equal(true);
  const participants = collections.map((c) => c.name).sort();
  const proof: Certificate[] = [];
  for (const collection of collections.filter((c) => prepareAt.includes(c.name))) {
    const outcome = await node.tails.prepare({
      ...validationOf(trxId, collection, request, options.coordinator),
      participants,
      expiresAt,
    });
    expect(outcome.status).to.equal('prepared');
    if (outcome.status === 'prepared') proof.push(outcome.certificate);
  }
  await node.repo.sync();
  return { trxId, collections, proof };
}

describe('recovery of transactions whose coordinator died', () => {
  const nodes: SoloNode[] = [];
  afterEach(async () => {
    for (const node of nodes.splice(0)) await node.close().catch(() => undefined);
  });

  const transfer: TxRequest = {
    actions: [
      { collection: 'a', op: 'put', key: 'x', value: 1 },
      { collection: 'b', op: 'put', key: 'y', value: 1 },
    ],
  };

  async function setup(): Promise<{ node: SoloNode; raw: Awaited<ReturnType<typeof memoryNode>>['raw'] }> {
    const { node, raw } = await memoryNode(11);
    await node.createCollection('a', 'tree');
    await node.createCollection('b', 'tree');
    ok(await node.transact(put('a', 'x', 0)));
    ok(await node.transact(put('b', 'y', 0)));
    return { node, raw };
  }

  it('commits on restart when every participant had prepared', async () => {
    const { node, raw } = await setup();
    const trxId = await prepareAndDie(node, transfer, ['a', 'b']);
    const restarted = (await memoryNode(12, {}, raw)).node;
    nodes.push(restarted);
    expect(await value(restarted, 'a', 'x')).to.equal(1);
    expect(await value(restarted, 'b', 'y')).to.equal(1);
    expect(await restarted.tails.outcomeOf('a', trxId)).to.equal('committed');
    expect(await restarted.tails.outcomeOf('b', trxId)).to.equal('committed');
  });

  it('aborts on restart when a participant never prepared, and drops the pends', async () => {
    const { node, raw } = await setup();
    const trxId = await prepareAndDie(node, transfer, ['a']);
    const restarted = (await memoryNode(13, {}, raw)).node;
    nodes.push(restarted);
    expect(await value(restarted, 'a', 'x')).to.equal(0);
    expect(await value(restarted, 'b', 'y')).to.equal(0);
    expect(await restarted.tails.outcomeOf('a', trxId)).to.equal('aborted');
    const rootA = (await restarted.collectionInfo('a')).root;
    expect((await restarted.blockPending(rootA)).map((p) => p.trxId)).to.not.include(trxId);
    // Later writers are not held up by the dead transaction.
    ok(await restarted.transact(put('a', 'x', 2)));
    expect(await value(restarted, 'a', 'x')).to.equal(2);
  });

  it('promotes committed entries that never reached their blocks', async () => {
    const { node, raw } = await setup();
    const request = put('a', 'x', 7);
    const { trxId, collection } = await executeAndPend(node, request, 5);
    const outcome = await node.tails.commit(validationOf(trxId, collection, request));
    expect(outcome.status).to.equal('committed');
    await node.repo.sync();
    // The coordinator dies before propagating: the block still holds only the pend.
    const root = (await node.collectionInfo('a')).root;
    expect((await node.blockPending(root)).map((p) => p.trxId)).to.deep.equal([trxId]);
    const restarted = (await memoryNode(14, {}, raw)).node;
    nodes.push(restarted);
    expect(await value(restarted, 'a', 'x')).to.equal(7);
    expect(await restarted.blockPending(root)).to.deep.equal([]);
  });
});

describe('the checkpoint a tail finds on load', () => {
  it('passes a commit only once it is applied at its blocks’ holders, not because this node holds no pend of it', async () => {
    const { node } = await memoryNode(21);
    await node.createCollection('a', 'tree');
    ok(await node.transact(put('a', 'x', 0)));
    // A commit the coordinator promoted here but never reported as propagated (it died).
    const request = put('a', 'x', 5);
    const { trxId, collection } = await executeAndPend(node, request, 8);
    const outcome = await node.tails.commit(validationOf(trxId, collection, request));
    expect(outcome.status).to.equal('committed');
    if (outcome.status !== 'committed') return;
    const blockIds = collection.tracker.writes();
    await node.repo.promote({ trxId, lsn: outcome.lsn, blockIds, proof: [outcome.certificate] });
    await node.repo.sync();
    const root = (await node.collectionInfo('a')).root;
    expect(await node.blockPending(root)).to.deep.equal([]);

    // A tail loading this log whose repo cannot apply the commit at the holders (a minority has it).
    const tailWith = (repo: RepoClient): LogTail => tailOver(node, 9, {}, { repo });
    const failing: RepoClient = {
      get: (r) => node.repo.get(r),
      pend: (items) => node.repo.pend(items),
      cancel: (t, ids) => node.repo.cancel(t, ids),
      promote: () => Promise.reject(new EngineError('NO_QUORUM', 'too few holders applied it')),
      sync: () => node.repo.sync(),
    };
    const stuck = await tailWith(failing).view('a');
    expect(stuck.uncheckpointed.map((e) => e.trxId)).to.include(trxId);
    // Once the holders have it, a load moves the checkpoint past it.
    const moved = await tailWith(node.repo).view('a');
    expect(moved.uncheckpointed.map((e) => e.trxId)).to.not.include(trxId);
    await node.close();
  });
});

describe('a networked tail and the coordinator incarnations that named themselves to it', () => {
  it('decides what an earlier incarnation of a node left prepared, before that node reads or writes again', async () => {
    const { node } = await memoryNode(51);
    await node.createCollection('a', 'tree');
    await node.createCollection('b', 'tree');
    ok(await node.transact(put('a', 'x', 0)));
    ok(await node.transact(put('b', 'y', 0)));
    // Prepared at both tails by coordinator n1:old, which then died.
    const request: TxRequest = {
      actions: [
        { collection: 'a', op: 'put', key: 'x', value: 1 },
        { collection: 'b', op: 'put', key: 'y', value: 1 },
      ],
    };
    const { trxId, collections } = await preparedAt(node, request, ['a', 'b'], {
      seed: 52,
      coordinator: 'n1:old',
    });

    // Networked tails (nothing resolved on load) of this store, as different coordinators see them.
    const tailOf = (coordinatorId: string): LogTail => tailOver(node, 53, { coordinatorId });
    // The same incarnation, or another node: the coordinator may be alive; the entry stays prepared.
    for (const alive of ['n1:old', 'n2:any']) {
      const tail = tailOf(alive);
      const view = await tail.view('a');
      expect(await tail.outcomeOf('a', trxId), alive).to.equal('prepared');
      const conflict = await tail.commit({
        collection: 'a',
        trxId: `probe-${alive}`,
        baseLsn: view.stableLsn,
        reads: [],
        writes: collections[0]!.tracker.writes(),
        actions: [],
        coordinator: alive,
      });
      expect(conflict.status, alive).to.equal('conflict');
    }
    // n1 restarted: its tail decides the entry before it answers n1's view (every participant
    // prepared: commit), and before it decides n1's next request in the other collection.
    const restarted = tailOf('n1:new');
    const view = await restarted.view('a');
    expect(await restarted.outcomeOf('a', trxId)).to.equal('committed');
    // Nothing prepared holds its snapshot back (the entry was the newest: undecided, the stable
    // LSN would be below it).
    expect(view.stableLsn).to.equal(view.lastLsn);
    const next = await tailOf('n9:z').commit({
      collection: 'b',
      trxId: 'next',
      baseLsn: (await node.tails.view('b')).lastLsn,
      reads: [],
      writes: collections[1]!.tracker.writes(),
      actions: [],
      coordinator: 'n1:new',
    });
    expect(next.status).to.equal('committed');
    await node.close();
  });
});

describe('a multi-collection commit a tail does not confirm', () => {
  it('keeps every pend once all prepared (the outcome is in doubt, not failed), and the tails finish it', async () => {
    const { node, raw } = await memoryNode(31);
    await node.createCollection('a', 'tree');
    await node.createCollection('b', 'tree');
    ok(await node.transact(put('a', 'x', 0)));
    ok(await node.transact(put('b', 'y', 0)));
    // b's tail answers the commit decision with an error (a stale tail that lacks the prepared entry).
    const coordinator = coordinatorWith(node, {
      decide: (r) =>
        r.collection === 'b' && r.outcome === 'committed'
          ? Promise.reject(new EngineError('NOT_FOUND', `no entry for transaction ${r.trxId} in b`))
          : node.tails.decide(r),
    });
    const outcome = await coordinator.run({
      actions: [
        { collection: 'a', op: 'put', key: 'x', value: 1 },
        { collection: 'b', op: 'put', key: 'y', value: 1 },
      ],
    });
    expect(outcome.ok).to.equal(false);
    if (outcome.ok) return;
    expect(outcome.error.code).to.equal('UNAVAILABLE');
    expect(outcome.error.message).to.match(/in doubt/);
    // b's pend is still there: withdrawing it would leave a's half of the transaction alone.
    const rootB = (await node.collectionInfo('b')).root;
    expect((await node.blockPending(rootB)).length).to.equal(1);
    // b's tail settles it on load (a restart): every participant prepared, so it commits.
    const restarted = (await memoryNode(32, {}, raw)).node;
    expect(await value(restarted, 'a', 'x')).to.equal(1);
    expect(await value(restarted, 'b', 'y')).to.equal(1);
    await restarted.close();
  });
});

describe('a multi-collection prepare whose answer is lost', () => {
  it('aborts the transaction wherever it may be prepared and runs it again, instead of leaving it in doubt', async () => {
    const { node } = await memoryNode(33);
    await node.createCollection('a', 'tree');
    await node.createCollection('b', 'tree');
    ok(await node.transact(put('a', 'x', 0)));
    ok(await node.transact(put('b', 'y', 0)));
    // b's tail prepares the first attempt, but its answer is lost (its leader went down replying).
    const lostAt: string[] = [];
    const coordinator = coordinatorWith(node, {
      prepare: async (r) => {
        const outcome = await node.tails.prepare(r);
        if (r.collection !== 'b' || lostAt.length > 0) return outcome;
        lostAt.push(r.trxId);
        throw new EngineError('UNAVAILABLE', 'the tail leader went down before it answered');
      },
    });
    const outcome = await coordinator.run({
      actions: [
        { collection: 'a', op: 'put', key: 'x', value: 1 },
        { collection: 'b', op: 'put', key: 'y', value: 1 },
      ],
    });
    // Before, the client heard UNAVAILABLE (in doubt) and a's prepared entry held its blocks until it
    // expired.
    expect(outcome.ok, JSON.stringify(outcome)).to.equal(true);
    if (!outcome.ok) return;
    expect(outcome.attempts).to.equal(2);
    expect(lostAt).to.have.length(1);
    expect(await node.tails.outcomeOf('a', lostAt[0]!)).to.equal('aborted');
    expect(await node.tails.outcomeOf('b', lostAt[0]!)).to.equal('aborted');
    expect(await value(node, 'a', 'x')).to.equal(1);
    expect(await value(node, 'b', 'y')).to.equal(1);
    await node.close();
  });
});

describe('a tail asked about a transaction its cached log lacks', () => {
  it('reads the log again before answering NOT_FOUND (another member may have written the entry)', async () => {
    const { node } = await memoryNode(41);
    await node.createCollection('a', 'tree');
    await node.createCollection('b', 'tree');
    ok(await node.transact(put('a', 'x', 0)));
    const other = tailOver(node, 4);
    await other.view('a'); // cached now, before the entry below exists
    const request = put('a', 'x', 3);
    const expiresAt = Date.now() + 60_000;
    const { trxId, collection } = await executeAndPend(node, request, 6, expiresAt);
    const prepared = await node.tails.prepare({
      ...validationOf(trxId, collection, request),
      participants: ['a'],
      expiresAt,
    });
    expect(prepared.status).to.equal('prepared');
    if (prepared.status !== 'prepared') return;
    const decided = await other.decide({
      collection: 'a',
      trxId,
      outcome: 'committed',
      proof: [prepared.certificate],
    });
    expect(decided.lsn).to.equal(prepared.lsn);
    expect(await other.outcomeOf('a', trxId)).to.equal('committed');
    await node.close();
  });
});

describe('a networked tail busy appending', () => {
  for (const confirming of [false, true])
    it(`reads the older log blocks again after viewFreshMs while an entry there is prepared${confirming ? ' (confirming its cache block by block)' : ''}: its group may have decided it`, async () => {
      await busyTailMissesOlderDecision(confirming);
    });
});

/**
 * A networked tail that keeps appending to a log whose older block holds an entry still prepared,
 * which that block's group then commits: after viewFreshMs its view must pass the entry.
 */
async function busyTailMissesOlderDecision(confirming: boolean): Promise<void> {
  const { node } = await memoryNode(91);
  try {
    await node.createCollection('a', 'tree');
    await node.createCollection('b', 'tree');
    // Enough keys for several leaves: P reads the first, the tail's transactions write the last.
    ok(
      await node.transact({
        actions: Array.from({ length: 300 }, (_, i) => ({
          collection: 'a',
          op: 'put' as const,
          key: `k${String(i).padStart(3, '0')}`,
          value: 'v'.repeat(100),
        })),
      }),
    );
    // P reads a.k000 and writes b.y: prepared in a's log (LSN 3) and b's by the node's own tails.
    const { trxId: p, proof } = await preparedAt(
      node,
      {
        actions: [
          { collection: 'a', op: 'get', key: 'k000' },
          { collection: 'b', op: 'put', key: 'y', value: 1 },
        ],
      },
      ['a', 'b'],
      { seed: 92 },
    );
    // A networked tail takes over a's log: its first append seals the block holding P (three
    // entries), so P sits in an older block from then on.
    const first = (await node.tails.view('a')).tailId;
    const refreshed: string[] = [];
    let now = Date.now();
    const clock = { now: () => now };
    const tail = new LogTail(
      {
        blocks: node.blocks,
        repo: node.repo,
        certifier: new SoloCertifier(node.identity, 'default'),
        clock,
        rng: new SeededRng(93),
      },
      {
        members: [node.identity.peerId],
        viewFreshMs: 1000,
        entriesPerBlockMax: 3,
        ...(confirming ? { refreshBlock: (id: string) => refreshed.push(id) } : {}),
      },
    );
    const coordinator = new Coordinator({ repo: node.repo, tails: tail, clock, rng: new SeededRng(94) });
    ok(await coordinator.run(put('a', 'z', 1)));
    const before = await tail.view('a');
    expect(before.stableLsn, 'P is prepared').to.equal(2);
    expect(before.tailId, 'the block holding P is sealed').to.not.equal(first);
    // P's own group decides it, writing the older block; this tail is not told.
    await node.tails.decide({ collection: 'a', trxId: p, outcome: 'committed', proof });
    // The tail goes on appending past viewFreshMs: its own writes keep its state young.
    now += 600;
    // (A block no entry above P wrote: a view stuck below P reads every other block as it was then.)
    ok(await coordinator.run(put('a', 'k150', 2)));
    now += 600;
    const after = await tail.view('a');
    expect(after.stableLsn, 'the view passes the entry its group committed').to.equal(after.lastLsn);
    if (confirming) expect(refreshed, 'the older block was read again').to.include(first);
  } finally {
    await node.close();
  }
}

describe('a networked tail asked to check a read-only transaction', () => {
  for (const confirming of [false, true])
    it(`reads the log again first${confirming ? ' (confirming its cache block by block)' : ''}: a deposed leader's fresh cache lacks what its successor prepared`, async () => {
      await deposedLeaderCheck(confirming);
    });

  it('confirms its cache by the tail block alone when no one else wrote: nothing else is read', async () => {
    const { node } = await memoryNode(75);
    try {
      await node.createCollection('a', 'tree');
      ok(await node.transact(put('a', 'x', 0)));
      ok(await node.transact(put('a', 'x', 1)));
      const read: string[] = [];
      const blocks = Object.create(node.blocks) as typeof node.blocks;
      blocks.latest = (id) => {
        read.push(id);
        return node.blocks.latest(id);
      };
      const refreshed: string[] = [];
      const tail = tailOver(
        node,
        76,
        { viewFreshMs: 60_000, refreshBlock: (id) => refreshed.push(id) },
        { blocks },
      );
      const view = await tail.view('a');
      read.length = 0;
      const check = await tail.check({
        collection: 'a',
        trxId: 'reader',
        baseLsn: view.stableLsn,
        reads: [],
      });
      expect(check.ok).to.equal(true);
      expect(refreshed).to.deep.equal([view.tailId]);
      expect(read, 'blocks read to confirm the cache').to.deep.equal([view.tailId]);
    } finally {
      await node.close();
    }
  });
});

async function deposedLeaderCheck(confirming: boolean): Promise<void> {
  const { node } = await memoryNode(71);
  try {
    await node.createCollection('a', 'tree');
    await node.createCollection('b', 'tree');
    ok(await node.transact(put('a', 'x', 0)));
    ok(await node.transact(put('b', 'y', 0)));
    // The deposed leader: a networked tail of the same log whose cached state counts as fresh for
    // a minute, so no age makes it read the log again.
    const refreshed: string[] = [];
    const deposed = tailOver(node, 72, {
      viewFreshMs: 60_000,
      ...(confirming ? { refreshBlock: (id: string) => refreshed.push(id) } : {}),
    });
    const view = await deposed.view('a');
    // A read-only transaction read a.x at that view...
    const rng = new SeededRng(73);
    const reader = new TransactionSession({ repo: node.repo, tails: node.tails, rng }, newTrxId(rng));
    await reader.execute({ actions: [{ collection: 'a', op: 'get', key: 'x' }] });
    const [read] = await reader.opened();
    const reads = [...read!.tracker.reads().keys()];
    expect(reads).to.not.have.length(0);
    // ...and then the group's new leader prepared a transaction writing a.x and b.y.
    await preparedAt(
      node,
      {
        actions: [
          { collection: 'a', op: 'put', key: 'x', value: 1 },
          { collection: 'b', op: 'put', key: 'y', value: 1 },
        ],
      },
      ['a', 'b'],
      { seed: 74 },
    );
    const check = await deposed.check({ collection: 'a', trxId: 'reader', baseLsn: view.stableLsn, reads });
    expect(check.ok, 'the check saw the prepared write after the snapshot').to.equal(false);
    if (confirming) expect(refreshed, 'the tail block was read again').to.include(view.tailId);
    // A solo tail's cache is the log itself: it refuses the same cut without reading again.
    expect(
      (await node.tails.check({ collection: 'a', trxId: 'reader', baseLsn: view.stableLsn, reads })).ok,
    ).to.equal(false);
  } finally {
    await node.close();
  }
}

describe('a tail told that a commit was propagated', () => {
  it('loads no log for it: only a state it holds takes the mark (a load promotes what is above the checkpoint anyway)', async () => {
    const { node } = await memoryNode(81);
    try {
      await node.createCollection('a', 'tree');
      ok(await node.transact(put('a', 'x', 0)));
      let reads = 0;
      const blocks = Object.create(node.blocks) as typeof node.blocks;
      blocks.latest = (id) => {
        reads++;
        return node.blocks.latest(id);
      };
      const tail = tailOver(node, 82, { viewFreshMs: 1_000 }, { blocks });
      // A follower's tail: it holds no state of the collection (dropped at each decision of its leader).
      await tail.propagated('a', 2);
      expect(reads, 'blocks read for a mark').to.equal(0);
      // Once it holds the state, the mark goes in (and reads nothing more).
      const view = await tail.view('a');
      const loaded = reads;
      expect(loaded).to.be.above(0);
      await tail.propagated('a', view.lastLsn);
      expect(reads).to.equal(loaded);
    } finally {
      await node.close();
    }
  });
});
