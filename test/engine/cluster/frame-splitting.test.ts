import { expect } from 'chai';
import { EngineError } from '../../../src/engine/base/errors.js';
import type { NetworkNode } from '../../../src/engine/network/index.js';
import type {
  BlockRevision,
  DirectRevision,
  PendingTransform,
} from '../../../src/engine/storage/block-store.js';
import { clientAt, servingNetwork, storeWith } from './repo-harness.js';

/**
 * A member's part of a pend, or a replication message, that is over the frame limit goes in halves
 * (the network refuses to send a frame over its bound with TOO_LARGE, before anything leaves).
 */
const frameMax = 3000;
const ids = Array.from({ length: 6 }, (_, i) => `block-${i}`.padEnd(43, 'b'));

const insert = (blockId: string): DirectRevision => ({
  blockId,
  trxId: `create-${blockId.slice(0, 7)}`,
  lsn: 1,
  baseRev: 0,
  transform: { kind: 'insert', block: { header: { id: blockId, type: 'TL', collection: 'c' }, n: 0 } },
});

/** The serving network, refusing (TOO_LARGE) any message whose JSON is over frameMax. */
function framed(holders: Parameters<typeof servingNetwork>[0]) {
  const { network, sent } = servingNetwork(holders);
  const sizes: number[] = [];
  const limited = {
    request(peer: string, protocol: string, message: unknown) {
      const bytes = JSON.stringify(message).length;
      if (bytes > frameMax)
        return Promise.reject(
          new EngineError('TOO_LARGE', `message of ${bytes} bytes is over the frame limit`),
        );
      sizes.push(bytes);
      return network.request(peer, protocol, message);
    },
  } as unknown as NetworkNode;
  return { network: limited, sent, sizes };
}

describe('messages over the frame limit go in halves', () => {
  it('pends a transaction whose writes are over one frame per holder, every block at every holder', async () => {
    const holders = { p1: await storeWith(...ids.map(insert)), p2: await storeWith(...ids.map(insert)) };
    const { network, sent, sizes } = framed(holders);
    const repo = clientAt(await storeWith(...ids.map(insert)), network);
    const pends: PendingTransform[] = ids.map((blockId) => ({
      trxId: 'big-transaction',
      blockId,
      collection: 'c',
      baseRev: 1,
      transform: { kind: 'update', ops: [{ op: 'set', field: 'n', value: 'x'.repeat(900) }] },
      expiresAt: Date.now() + 60_000,
    }));
    const result = await repo.pend(pends);
    expect(result.ok).to.equal(true);
    expect(result.outcomes).to.deep.equal(ids.map(() => ({ status: 'ok' })));
    // More than one request per holder, each within the bound.
    expect(sent.filter((s) => s === 'p1.pend').length).to.be.above(1);
    for (const bytes of sizes) expect(bytes).to.be.at.most(frameMax);
    for (const store of Object.values(holders))
      for (const blockId of ids)
        expect((await store.pendingOf(blockId)).map((p) => p.trxId)).to.deep.equal(['big-transaction']);
  });

  it('replicates a history over one frame in order, the base with the first part', async () => {
    const blockId = ids[0]!;
    const holder = await storeWith(insert(blockId));
    const { network, sent } = framed({ p1: holder, p2: await storeWith() });
    const repo = clientAt(await storeWith(insert(blockId)), network);
    const history: BlockRevision[] = Array.from({ length: 8 }, (_, i) => ({
      rev: i + 2,
      lsn: i + 2,
      trxId: `t${i + 2}`,
      transform: { kind: 'update', ops: [{ op: 'set', field: 'n', value: `${i}`.repeat(700) }] },
    })) as unknown as BlockRevision[];
    await repo.send('p1', blockId, history, { blockId, rev: 1, trxId: insert(blockId).trxId });
    expect(sent.filter((s) => s === 'p1.apply').length).to.be.above(1);
    const held = await holder.history(blockId);
    expect(held.map((r) => r.rev)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(held.at(-1)?.trxId).to.equal('t9');
  });

  it('still refuses a single item over the frame limit', async () => {
    const { network } = framed({ p1: await storeWith(insert(ids[0]!)), p2: await storeWith() });
    const repo = clientAt(await storeWith(insert(ids[0]!)), network);
    const history = [
      {
        rev: 2,
        lsn: 2,
        trxId: 't2',
        transform: { kind: 'update', ops: [{ op: 'set', field: 'n', value: 'y'.repeat(5000) }] },
      },
    ] as unknown as BlockRevision[];
    const error: unknown = await repo.send('p1', ids[0]!, history).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((error as EngineError).code).to.equal('TOO_LARGE');
  });
});
