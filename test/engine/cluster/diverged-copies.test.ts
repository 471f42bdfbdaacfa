import { expect } from 'chai';
import { EngineError } from '../../../src/engine/base/errors.js';
import { applyIfNewer, contentDigest, type RevisionBase } from '../../../src/engine/cluster/repo.js';
import type { NetworkNode } from '../../../src/engine/network/index.js';
import type { DirectRevision } from '../../../src/engine/storage/block-store.js';
import type { VersionedBlockStore } from '../../../src/engine/storage/versioned-block-store.js';
import { clientAt, servingNetwork, storeWith } from './repo-harness.js';

/**
 * Two tails that both wrote revision n of a log block (one of them lost the compare-and-set at the
 * majority) leave holders whose revision n differs. Revisions are numbered per holder, so a later
 * revision n+1 built on the majority's copy fits a diverged holder by number only: it must be
 * refused there, not applied on top of the other content (sim seed 1120 with introductions: a splice
 * past the end of the diverged log asserted at three holders).
 */
const blockId = 'log-block'.padEnd(43, 'x');
const header = { id: blockId, type: 'LB' as const, collection: 'c' };

const created: DirectRevision = {
  blockId,
  trxId: 'create',
  lsn: 0,
  baseRev: 0,
  transform: { kind: 'insert', block: { header, entries: [] } },
};
const append = (trxId: string, rev: number, entries: number): DirectRevision => ({
  blockId,
  trxId,
  lsn: rev,
  baseRev: rev - 1,
  transform: {
    kind: 'update',
    ops: [{ op: 'splice', field: 'entries', index: entries, remove: 0, items: [trxId] }],
  },
});

describe('holders whose copies diverged at one revision number', () => {
  it('refuses a revision built on another transaction’s revision at its base', async () => {
    const store = await storeWith(created, append('loser', 2, 0));
    const base: RevisionBase = { blockId, rev: 2, trxId: 'winner' };
    const error = await applyIfNewer(store, [append('next', 3, 1)], [base]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(EngineError).with.property('code', 'CONFLICT');
    expect((await store.latest(blockId))?.rev).to.equal(2);
  });

  it('digests the content a state holds: equal content alike, other content apart, a state once per revision', async () => {
    const winner = (await (await storeWith(created, append('winner', 2, 0))).latest(blockId))!;
    const loser = (await (await storeWith(created, append('loser', 2, 0))).latest(blockId))!;
    const again = (await (await storeWith(created, append('winner', 2, 0))).latest(blockId))!;
    expect(contentDigest(winner)).to.equal(contentDigest(again));
    expect(contentDigest(winner)).to.not.equal(contentDigest(loser));
    expect(contentDigest(winner)).to.equal(contentDigest({ ...winner }));
    // A state object given other content (a caller's copy reused) is hashed again, not taken from memory.
    const reused = { ...winner };
    const first = contentDigest(reused);
    Object.assign(reused, { block: loser.block });
    expect(contentDigest(reused)).to.not.equal(first);
    expect(contentDigest(reused)).to.equal(contentDigest(loser));
  });

  it('takes a revision whose base is the one it holds', async () => {
    const store = await storeWith(created, append('winner', 2, 0));
    await applyIfNewer(store, [append('next', 3, 1)], [{ blockId, rev: 2, trxId: 'winner' }]);
    expect((await store.latest(blockId))?.block).to.deep.include({ entries: ['winner', 'next'] });
  });

  it('refuses a revision with the tag of one it holds but other content (a seal naming another successor)', async () => {
    // Two tails wrote one decided reconfigure entry, each sealing the block to a successor it drew:
    // holders of the first seal took the second for a copy they held, and the log forked (sim seed 457
    // with introductions).
    const seal = (successor: string): DirectRevision => ({
      blockId,
      trxId: 'reconfigure:seal',
      lsn: 2,
      baseRev: 1,
      transform: { kind: 'update', ops: [{ op: 'set', field: 'successor', value: successor }] },
    });
    const store = await storeWith(created, seal('successor-a'));
    const error = await applyIfNewer(store, [seal('successor-b')]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(EngineError).with.property('code', 'CONFLICT');
    // The same revision again is a copy it holds (a retried replication).
    expect(await applyIfNewer(store, [seal('successor-a')])).to.deep.equal([]);
    expect((await store.latest(blockId))?.block).to.deep.include({ successor: 'successor-a' });
  });

  it('a log write names the revision it was built on, and a diverged holder does not take it', async () => {
    // p0 writes on its copy (revision 2: winner); p1 holds the same, p2 the loser's revision 2.
    const local = await storeWith(created, append('winner', 2, 0));
    const holders = new Map([
      ['p1', await storeWith(created, append('winner', 2, 0))],
      ['p2', await storeWith(created, append('loser', 2, 0))],
    ]);
    const network = {
      async request(
        peer: string,
        _protocol: string,
        request: { revisions: DirectRevision[]; bases?: RevisionBase[] },
      ) {
        const behind = await applyIfNewer(holders.get(peer)!, request.revisions, request.bases ?? []);
        return { behind };
      },
    } as unknown as NetworkNode;
    const repo = clientAt(local, network);
    await repo.apply([append('next', 3, 1)]);
    expect((await holders.get('p1')!.latest(blockId))?.block).to.deep.include({
      entries: ['winner', 'next'],
    });
    const diverged = await holders.get('p2')!.latest(blockId);
    expect(diverged?.rev).to.equal(2);
    expect(diverged?.block).to.deep.include({ entries: ['loser'] });
  });

  it('a read takes the copy most holders have when this node’s differs at the same revision', async () => {
    // p0's own copy is the loser's revision 2 (its write reached no one else); p1 and p2 hold the
    // winner's. Asked with newerThan 2, they must not answer "nothing newer".
    const local = await storeWith(created, append('loser', 2, 0));
    const { network } = servingNetwork({
      p1: await storeWith(created, append('winner', 2, 0)),
      p2: await storeWith(created, append('winner', 2, 0)),
    });
    const repo = clientAt(local, network);
    const read = await repo.getCounted({ blockId });
    expect(read.state?.block).to.deep.include({ entries: ['winner'] });
    expect(read.holding).to.equal(2);
    expect(read.source).to.not.equal('p0');
  });

  it('asks every holder before choosing when the first majority is a tie between two copies', async () => {
    // p0's copy is the loser's revision 2, p1 holds the winner's, p2 (slow to answer) the winner's too.
    // The first majority to answer is p0 and p1, one of each: taking this node's copy on that tie hid
    // the rest of a log whose seal named another successor here (sim seed 13557).
    const local = await storeWith(created, append('loser', 2, 0));
    const { network: serving } = servingNetwork({
      p1: await storeWith(created, append('winner', 2, 0)),
      p2: await storeWith(created, append('winner', 2, 0)),
    });
    const slowP2 = {
      request: async (peer: string, ...rest: unknown[]): Promise<unknown> => {
        if (peer === 'p2') await new Promise((resolve) => setTimeout(resolve, 30));
        return (serving.request as (...args: unknown[]) => Promise<unknown>)(peer, ...rest);
      },
    } as unknown as NetworkNode;
    const read = await clientAt(local, slowP2).getCounted({ blockId });
    expect(read.state?.block).to.deep.include({ entries: ['winner'] });
    expect(read.holding).to.equal(2);
    expect(read.source).to.not.equal('p0');
  });

  it('a write that must reach this node last leaves its copy as it was when the other holders refuse', async () => {
    // p0's copy lost revision 2 in a crash; p1 and p2 hold the winner's revision 2. A tail at p0 that
    // seals from its stale copy writes a revision 2 of its own: refused by both holders, and with
    // `localLast` not kept here either (sim seed 957: kept, it sent this node's tail to a successor
    // the log never named).
    const stale = (): Promise<VersionedBlockStore> => storeWith(created);
    const holders = async (): Promise<Record<string, VersionedBlockStore>> => ({
      p1: await storeWith(created, append('winner', 2, 0)),
      p2: await storeWith(created, append('winner', 2, 0)),
    });
    const local = await stale();
    const repo = clientAt(local, servingNetwork(await holders()).network);
    const error = await repo.apply([append('seal', 2, 0)], [], { localLast: true }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(EngineError).with.property('code', 'CONFLICT');
    expect((await local.latest(blockId))?.rev).to.equal(1);
    // Written everywhere at once, the same write diverges this node's copy.
    const eager = await stale();
    await clientAt(eager, servingNetwork(await holders()).network)
      .apply([append('seal', 2, 0)])
      .catch(() => undefined);
    expect((await eager.latest(blockId))?.block).to.deep.include({ entries: ['seal'] });
  });

  it('a write that must reach this node last is stored here once a majority of the others took it', async () => {
    const local = await storeWith(created);
    const { network, down } = servingNetwork({ p1: await storeWith(created), p2: await storeWith(created) });
    down.add('p2');
    await clientAt(local, network).apply([append('next', 2, 0)], [], { localLast: true });
    expect((await local.latest(blockId))?.block).to.deep.include({ entries: ['next'] });
  });
});
