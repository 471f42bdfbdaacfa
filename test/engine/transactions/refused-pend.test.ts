import { expect } from 'chai';
import { systemClock } from '../../../src/engine/base/clock.js';
import { SeededRng } from '../../../src/engine/base/rng.js';
import { Coordinator, type CommitPhase } from '../../../src/engine/transactions/coordinator.js';
import type { RepoClient, TailClient } from '../../../src/engine/transactions/protocol.js';
import { memoryNode, ok, put, value } from '../../helpers/solo.js';

/**
 * A pend refused by some holders (a joiner not handed the block yet, say) while others took it: the
 * attempt fails before any tail sees it. Its pends must not stay behind at the holders that took them
 * until they expire, and the next attempt must wait even when a tail holds the transaction's blocks
 * for it (that hold is no help against a holder that lacks the block).
 */
describe('a pend some holders refuse', () => {
  it('is withdrawn where it was taken, and the transaction backs off before it runs again', async () => {
    const { node } = await memoryNode(11);
    await node.createCollection('c', 'tree');
    ok(await node.transact(put('c', 'k1', 1)));

    const local = node.repo;
    let refusals = 3;
    const cancelled: string[] = [];
    const repo: RepoClient = {
      get: (request) => local.get(request),
      // This holder takes every pend; the other one (not modelled) refuses the first three.
      pend: async (items) => {
        const taken = await local.pend(items);
        if (refusals === 0) return taken;
        refusals--;
        return { ...taken, ok: false };
      },
      cancel: (trxId, blockIds) => {
        cancelled.push(trxId);
        return local.cancel(trxId, blockIds);
      },
      promote: (request) => local.promote(request),
      sync: () => local.sync(),
    };
    // The tail claims a turn for the transaction after its first loss: it would retry at once.
    const view: TailClient['view'] = async (collection, claim) => {
      const seen = await node.tails.view(collection, claim);
      return claim !== undefined ? { ...seen, heldMs: 60_000 } : seen;
    };
    const tails = new Proxy(node.tails, {
      get: (target, name, receiver) => {
        if (name === 'view') return view;
        const member: unknown = Reflect.get(target, name, receiver);
        return typeof member === 'function' ? (member as (...a: unknown[]) => unknown).bind(target) : member;
      },
    });
    const waits: number[] = [];
    const coordinator = new Coordinator(
      { repo, tails, clock: systemClock, rng: new SeededRng(5) },
      { onPhase: (phase: CommitPhase, ms: number) => void (phase === 'wait' && waits.push(ms)) },
    );

    const outcome = ok(await coordinator.run(put('c', 'k2', 2)));
    expect(outcome.attempts).to.equal(4);
    expect(cancelled).to.have.length(3);
    expect(waits).to.have.length(3);
    // Backed off: the seeded pauses are not all zero (without it, a held turn retries at once).
    expect(waits.reduce((a, b) => a + b, 0)).to.be.greaterThan(1);
    // Nothing stays pending at the holder that took the refused pends.
    const root = (await node.collectionInfo('c')).root;
    expect(await node.blockPending(root)).to.deep.equal([]);
    expect(await value(node, 'c', 'k2')).to.equal(2);
    await node.close();
  });
});
