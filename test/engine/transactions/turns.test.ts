import { expect } from 'chai';
import type { Clock } from '../../../src/engine/base/clock.js';
import type { SoloNode } from '../../../src/engine/node/solo-node.js';
import type { CommitRequest, TailOutcome } from '../../../src/engine/transactions/protocol.js';
import { SeededRng } from '../../../src/engine/base/rng.js';
import { TransactionSession } from '../../../src/engine/transactions/session.js';
import { Turns } from '../../../src/engine/transactions/turns.js';
import type { TxRequest } from '../../../src/engine/transactions/tx-types.js';
import { memoryNode, ok, value } from '../../helpers/solo.js';

class ManualClock implements Clock {
  constructor(public ms = 1_000) {}
  now(): number {
    return this.ms;
  }
}

describe('turns for transactions that keep losing', () => {
  it('holds the blocks of a replay from its first loss, for others only, until it is accepted', () => {
    const clock = new ManualClock();
    const turns = new Turns(clock);
    expect(turns.heldFor('b', ['x'])).to.equal(undefined);
    // Three attempts of 50 ms: the hold lasts 150 ms.
    expect(turns.claim('a', ['x', 'y'], ['x', 'y'], 1, 50)).to.equal(150);
    expect(turns.heldFor('a', ['x'])).to.equal(undefined);
    // Another writer waits one attempt of the holder's, or what is left of the hold if less.
    expect(turns.heldFor('b', ['z', 'y'])).to.deep.equal({ count: 1, forMs: 50 });
    clock.ms += 120;
    expect(turns.heldFor('b', ['x'])).to.deep.equal({ count: 1, forMs: 30 });
    expect(turns.heldNow('b', 10).map((h) => h.blockId)).to.have.members(['x', 'y']);
    expect(turns.heldNow('a', 10)).to.deep.equal([]);
    turns.accepted('a');
    expect(turns.heldFor('b', ['x', 'y'])).to.equal(undefined);
    expect(turns.size.holds).to.equal(0);
  });

  it('lets a hold lapse, bounds it, and lets the transaction that lost more often keep a block', () => {
    const clock = new ManualClock();
    const turns = new Turns(clock);
    expect(turns.claim('a', ['x'], ['x'], 2, 1)).to.equal(20); // at least 20 ms
    clock.ms += 20;
    expect(turns.heldFor('b', ['x'])).to.equal(undefined);
    expect(turns.claim('a', ['x'], ['x'], 3, 60_000)).to.equal(1_000); // at most a second
    // Fewer losses than the holder: not held for it.
    expect(turns.claim('b', ['x', 'w'], ['x', 'w'], 1, 10)).to.equal(0);
    expect(turns.heldFor('c', ['w'])?.count).to.equal(1);
    expect(turns.heldFor('c', ['x'])?.count).to.equal(3);
    // More losses: the block passes to it, once its holder had two of its attempts to use it.
    expect(turns.claim('b', ['x'], ['x'], 4, 10)).to.equal(0);
    clock.ms += 2 * 60_000;
    expect(turns.claim('a', ['x'], ['x'], 3, 10)).to.equal(30); // renewed: still its own
    clock.ms += 19;
    expect(turns.claim('b', ['x'], ['x'], 4, 10)).to.equal(0);
    clock.ms += 1;
    expect(turns.claim('b', ['x'], ['x'], 4, 10)).to.equal(30);
    expect(turns.heldFor('a', ['x'])?.count).to.equal(4);
  });

  it('counts on the usual attempt for a replay none of whose attempts ran its course', () => {
    const clock = new ManualClock();
    const turns = new Turns(clock);
    // Replays here report attempts of 100 ms.
    for (let i = 0; i < 40; i++) turns.claim(`r${i}`, [], [`q${i}`], 1, 100);
    // One whose only attempt gave way at once reports 0: its hold lasts three usual attempts, and the
    // others wait one of them (not the 2 ms its attempt took, which had them take the block back
    // before it could commit).
    expect(turns.claim('a', ['x'], ['x'], 1, 0)).to.be.within(280, 300);
    expect(turns.heldFor('c', ['x'])?.forMs).to.be.within(93, 100);
    // The block is its own for two usual attempts, then one that lost more often may take it.
    clock.ms += 150;
    expect(turns.claim('c', ['x'], ['x'], 5, 100)).to.equal(0);
    clock.ms += 60;
    expect(turns.claim('c', ['x'], ['x'], 5, 100)).to.equal(300);
    expect(turns.heldFor('a', ['x'])?.count).to.equal(5);
  });

  it('lets a transaction that paused (gave way at another tail) lose its block to one ranked above it', () => {
    const clock = new ManualClock();
    const turns = new Turns(clock);
    // 'b' holds x here.
    expect(turns.claim('b', ['x'], ['x'], 2, 100)).to.equal(300);
    expect(turns.claim('c', ['x'], ['x'], 3, 100)).to.equal(0); // protected for two of its attempts
    // 'b' gave way at another tail: its block here is no longer protected.
    turns.paused('b');
    expect(turns.claim('c', ['x'], ['x'], 3, 100)).to.equal(300);
    expect(turns.heldFor('b', ['x'])?.count).to.equal(3);
    // A paused holder's next claim protects its blocks again.
    turns.paused('c');
    expect(turns.claim('c', ['x'], ['x'], 4, 100)).to.equal(300);
    expect(turns.claim('d', ['x'], ['x'], 9, 100)).to.equal(0);
  });

  it('breaks a tie in losses the same way at every tail: the smaller lineage ranks above', () => {
    for (const [first, second] of [
      ['m', 'n'],
      ['n', 'm'],
    ] as const) {
      const clock = new ManualClock();
      const turns = new Turns(clock);
      expect(turns.claim(first, ['x'], ['x'], 2, 10)).to.equal(30);
      clock.ms += 20; // past the holder's protection, within its hold
      const took = turns.claim(second, ['x'], ['x'], 2, 10);
      // 'm' takes the block from 'n', never 'n' from 'm'.
      expect(took > 0, `${second} after ${first}`).to.equal(second === 'm');
    }
  });

  it('forgets transactions past its bound', () => {
    const clock = new ManualClock();
    const turns = new Turns(clock);
    for (let i = 0; i < 5_000; i++) turns.claim(`t${i}`, [], [], 0, 1);
    expect(turns.size.lineages).to.be.at.most(4_096);
  });
});

describe('a log tail that holds blocks for a replay', () => {
  let node: SoloNode;
  afterEach(async () => node?.close());

  const request = (trxId: string, baseLsn: number, lineage?: string): CommitRequest => ({
    collection: 'accounts',
    trxId,
    baseLsn,
    reads: ['leaf'],
    writes: ['leaf'],
    actions: [{ op: 'note', trxId }],
    ...(lineage !== undefined ? { lineage } : {}),
  });

  it('refuses other writers of them while the replay runs, then accepts them again', async () => {
    ({ node } = await memoryNode(21));
    await node.createCollection('accounts', 'tree');
    const base = (await node.tails.view('accounts')).stableLsn;
    expect((await node.tails.commit(request('fast-1', base))).status).to.equal('committed');
    const lost = await node.tails.commit(request('slow-1', base));
    expect(lost.status).to.equal('conflict');
    // The replay starts from a view that claims its turn.
    const claim = { lineage: 'slow-1', losses: 1, reads: ['leaf'], writes: ['leaf'], tookMs: 200 };
    const view = await node.tails.view('accounts', claim);
    expect(view.heldMs).to.equal(600);
    expect(view.holds).to.equal(undefined);
    // Another writer sees the hold in its view, and the tail refuses it if it commits anyway.
    const other = await node.tails.view('accounts');
    expect(other.holds).to.deep.equal([{ blockId: 'leaf', forMs: 200 }]);
    const refused = await node.tails.commit(request('fast-2', view.stableLsn));
    expect(refused.status).to.equal('conflict');
    expect((refused as Extract<TailOutcome, { status: 'conflict' }>).busyMs).to.equal(200);
    expect((await node.tails.commit(request('slow-2', view.stableLsn, 'slow-1'))).status).to.equal(
      'committed',
    );
    const after = await node.tails.view('accounts');
    expect(after.holds).to.equal(undefined);
    expect((await node.tails.commit(request('fast-3', after.stableLsn))).status).to.equal('committed');
  });

  it("lets a paused holder's block pass to a transaction ranked above it", async () => {
    ({ node } = await memoryNode(23));
    await node.createCollection('accounts', 'tree');
    const claim = (lineage: string, losses: number) => ({
      lineage,
      losses,
      reads: ['leaf'],
      writes: ['leaf'],
      tookMs: 200,
    });
    expect((await node.tails.view('accounts', claim('first', 1))).heldMs).to.equal(600);
    // Within the holder's protection, one that lost more often does not get the block...
    expect((await node.tails.view('accounts', claim('second', 2))).heldMs).to.equal(undefined);
    // ...until the holder says it gave way at another tail.
    const paused = await node.tails.view('accounts', { ...claim('first', 1), paused: true });
    expect(paused.heldMs).to.equal(undefined);
    expect((await node.tails.view('accounts', claim('second', 2))).heldMs).to.equal(600);
  });

  it('ignores a malformed claim', async () => {
    ({ node } = await memoryNode(22));
    await node.createCollection('accounts', 'tree');
    const bad = { lineage: 7, losses: 'many', reads: 'leaf', writes: [], tookMs: Number.NaN } as never;
    const view = await node.tails.view('accounts', bad);
    expect(view.heldMs).to.equal(undefined);
    expect((await node.tails.view('accounts')).holds).to.equal(undefined);
  });
});

describe('a transaction that a faster writer keeps beating', () => {
  let node: SoloNode;
  afterEach(async () => node?.close());

  /**
   * Every attempt of the slow transfer lets a competing increment of the same account run between
   * its reads and its commit, as a writer with fewer round trips to the tail would. Without turns it
   * loses every attempt and gives up; with them, its replay holds the account's leaf, the competitor
   * gives way (and claims a turn of its own with its next view), and the transfer commits.
   */
  it('commits on its replay, and the competitor after it', async () => {
    let slowRunning = false;
    let competitor: Promise<unknown> | undefined;
    let competitorGaveWay: () => void = () => undefined;
    const competitors: Promise<unknown>[] = [];
    const hook = async (_trxId: string, attempt: number): Promise<void> => {
      if (!slowRunning || competitor !== undefined) return;
      const gaveWay = new Promise<void>((resolve) => (competitorGaveWay = resolve));
      competitor = node.transact(bump).finally(() => (competitor = undefined));
      competitors.push(competitor);
      if (attempt === 1) {
        await competitor;
        // An attempt of ~30 ms: the replay's hold lasts about three.
        await new Promise((resolve) => setTimeout(resolve, 30));
      } else await Promise.race([competitor, gaveWay]);
    };
    ({ node } = await memoryNode(23, {
      coordinator: { afterExecute: hook, attemptsMax: 4 },
    }));
    // A view that claims a turn while the competitor runs is the competitor's, after it gave way.
    const tail = node.tails;
    const view = tail.view.bind(tail);
    tail.view = (collection, claim) => {
      if (claim !== undefined && competitor !== undefined) competitorGaveWay();
      return view(collection, claim);
    };
    await node.createCollection('accounts', 'tree');
    ok(await node.transact({ actions: [{ collection: 'accounts', op: 'put', key: 'a', value: { n: 0 } }] }));
    const bump: TxRequest = {
      actions: [{ collection: 'accounts', op: 'incr', key: 'a', path: 'n', by: 1 }],
    };
    slowRunning = true;
    const slow = await node.transact({
      actions: [{ collection: 'accounts', op: 'incr', key: 'a', path: 'n', by: 100 }],
    });
    slowRunning = false;
    expect(ok(slow).attempts).to.equal(2);
    // The second competitor gave way while the slow transfer held the leaf: a wait, not an attempt.
    const outcomes = (await Promise.all(competitors)).map((outcome) => ok(outcome as never));
    expect(outcomes.map((outcome) => outcome.attempts)).to.deep.equal([1, 1]);
    expect(await value(node, 'accounts', 'a')).to.deep.equal({ n: 102 });
  });
});

describe('a transaction whose turn ends in a failed guard', () => {
  let node: SoloNode;
  afterEach(async () => node?.close());

  it('gives its turn back at once instead of holding the block until the hold lapses', async () => {
    let armed = false;
    const hook = async (_trxId: string, attempt: number): Promise<void> => {
      if (!armed || attempt !== 1) return;
      armed = false;
      // Between its reads and its commit, another withdrawal leaves too little for it.
      ok(await node.transact(take(1)));
      // A slow attempt: the replay's hold lasts about three of them (well beyond this test).
      await new Promise((resolve) => setTimeout(resolve, 200));
    };
    ({ node } = await memoryNode(24, { coordinator: { afterExecute: hook } }));
    await node.createCollection('accounts', 'tree');
    ok(await node.transact({ actions: [{ collection: 'accounts', op: 'put', key: 'a', value: { n: 5 } }] }));
    const take = (by: number): TxRequest => ({
      actions: [{ collection: 'accounts', op: 'incr', key: 'a', path: 'n', by: -by, min: 0 }],
    });
    armed = true;
    const outcome = await node.transact(take(5));
    expect(outcome.ok ? 'ok' : outcome.error.code).to.equal('EXPECT_FAILED');
    // The replay held the leaf; its coordinator gives it back in the background.
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await node.tails.view('accounts')).holds).to.equal(undefined);
    expect(await value(node, 'accounts', 'a')).to.deep.equal({ n: 4 });
  });
});

describe('a replay whose attempt lost to an entry still being decided', () => {
  let node: SoloNode;
  afterEach(async () => node?.close());

  it('reads once that entry is decided, not below it', async () => {
    ({ node } = await memoryNode(25));
    await node.createCollection('accounts', 'tree');
    const base = (await node.tails.view('accounts')).stableLsn;
    // A transaction of two collections is prepared here and waits for its other collection.
    const prepared = await node.tails.prepare({
      collection: 'accounts',
      trxId: 'other-collections',
      baseLsn: base,
      reads: ['leaf'],
      writes: ['leaf'],
      actions: [{ op: 'note' }],
      participants: ['accounts', 'ledger'],
      expiresAt: Date.now() + 60_000,
    });
    expect(prepared.status).to.equal('prepared');
    const lsn = (prepared as { lsn: number }).lsn;
    expect((await node.tails.view('accounts')).stableLsn).to.be.below(lsn);
    setTimeout(() => {
      void node.tails.decide({
        collection: 'accounts',
        trxId: 'other-collections',
        outcome: 'aborted',
        proof: [],
      });
    }, 30);
    const session = new TransactionSession(
      { repo: node.repo, tails: node.tails, rng: new SeededRng(5) },
      'replay',
      new Map(),
      new Map([['accounts', lsn]]),
    );
    const collection = await session.collection('accounts');
    expect(collection.atLsn).to.be.at.least(lsn);
  });
});
