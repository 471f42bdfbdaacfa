import { expect } from 'chai';
import type { CommitRequest } from '../../../src/engine/transactions/protocol.js';
import { memoryNode } from '../../helpers/solo.js';

/**
 * A commit request that reaches a tail twice at once (a retry that overtook its original, a
 * duplicated message) must get the original's answer: answering it `conflict` would make its
 * coordinator replay a transaction that still commits, and apply it twice.
 */
describe('a log tail given the same request twice at once', () => {
  it('answers both with the one decision', async () => {
    const { node } = await memoryNode(11);
    await node.createCollection('accounts', 'tree');
    const view = await node.tails.view('accounts');
    const request: CommitRequest = {
      collection: 'accounts',
      trxId: 'trx-twice',
      baseLsn: view.stableLsn,
      reads: [],
      writes: [],
      actions: [{ op: 'note' }],
    };
    const [first, second] = await Promise.all([node.tails.commit(request), node.tails.commit(request)]);
    expect(first.status).to.equal('committed');
    expect(second).to.deep.equal(first);
    const after = await node.tails.view('accounts');
    expect(after.lastLsn).to.equal(view.lastLsn + 1);
    await node.close();
  });
});
