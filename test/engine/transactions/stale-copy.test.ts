import { expect } from 'chai';
import { systemClock } from '../../../src/engine/base/clock.js';
import type { BlockId } from '../../../src/engine/base/ids.js';
import { SeededRng } from '../../../src/engine/base/rng.js';
import { Coordinator } from '../../../src/engine/transactions/coordinator.js';
import type { RepoClient } from '../../../src/engine/transactions/protocol.js';
import { memoryNode, ok, put, value } from '../../helpers/solo.js';

/**
 * A holder that missed a commit serves a copy older than the snapshot a transaction reads at. On a
 * network the pend can still be taken, when the holders behind are a majority of a block's grown
 * cluster (commit simulation seed 2399 on c989b9d); the tail must refuse the commit then, or the
 * transaction's write overwrites the commit the copy missed.
 */
describe('a copy read behind its snapshot', () => {
  it('is refused by the tail, distrusted, and the transaction runs again on a fresh copy', async () => {
    const { node } = await memoryNode(7);
    await node.createCollection('c', 'tree');
    ok(await node.transact(put('c', 'k1', 1))); // LSN 2
    ok(await node.transact(put('c', 'k2', 2))); // LSN 3: the stale copy misses it

    const local = node.repo;
    const distrusted: BlockId[] = [];
    let lying = true;
    const repo: RepoClient = {
      // Every block as of LSN 2, while the tail's snapshot is LSN 3 (until distrusted).
      get: (request) => local.get(lying ? { ...request, atLsn: 2 } : request),
      // Holders behind take a pend at their own revision: here, at whatever the store holds.
      pend: async (items) =>
        local.pend(
          await Promise.all(
            items.map(async (item) => ({
              ...item,
              baseRev: (await local.get({ blockId: item.blockId }))?.rev ?? item.baseRev,
            })),
          ),
        ),
      cancel: (trxId, blockIds) => local.cancel(trxId, blockIds),
      promote: (request) => local.promote(request),
      sync: () => local.sync(),
      distrust: (blockIds) => {
        distrusted.push(...blockIds);
        lying = false;
      },
    };
    const coordinator = new Coordinator({
      repo,
      tails: node.tails,
      clock: systemClock,
      rng: new SeededRng(5),
    });

    const outcome = ok(await coordinator.run(put('c', 'k3', 3)));
    expect(outcome.attempts).to.equal(2);
    expect(distrusted).to.have.length.greaterThan(0);
    // Nothing the stale copy missed was lost.
    expect(await value(node, 'c', 'k1')).to.equal(1);
    expect(await value(node, 'c', 'k2')).to.equal(2);
    expect(await value(node, 'c', 'k3')).to.equal(3);
    await node.close();
  });
});
