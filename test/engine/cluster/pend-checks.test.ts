import { expect } from 'chai';
import { Placement } from '../../../src/engine/cluster/placement.js';
import { ClusterRepoClient } from '../../../src/engine/cluster/repo.js';
import type { DirectRevision, PendingTransform } from '../../../src/engine/storage/block-store.js';
import type { VersionedBlockStore } from '../../../src/engine/storage/versioned-block-store.js';
import type { Certifier } from '../../../src/engine/transactions/certifier.js';
import { LocalRepo } from '../../../src/engine/transactions/local-repo.js';
import type { ReadToVerify } from '../../../src/engine/transactions/protocol.js';
import { clientAt, servingNetwork, storeWith } from './repo-harness.js';

/**
 * A writing transaction's reads of blocks it does not write are checked against their holders with
 * its pends: each holder the pend goes to answers its revision of the blocks named in `check`, so a
 * copy read here that a majority has moved past is found without a read of its own.
 */
const readId = 'read-block'.padEnd(43, 'r');
const writeId = 'write-block'.padEnd(43, 'w');

const insert = (blockId: string): DirectRevision => ({
  blockId,
  trxId: `create-${blockId.slice(0, 4)}`,
  lsn: 1,
  baseRev: 0,
  transform: { kind: 'insert', block: { header: { id: blockId, type: 'LB', collection: 'c' }, n: 1 } },
});
const update = (blockId: string, rev: number): DirectRevision => ({
  blockId,
  trxId: `update-${rev}`,
  lsn: rev,
  baseRev: rev - 1,
  transform: { kind: 'update', ops: [{ op: 'set', field: 'n', value: rev }] },
});
const pendOf = (trxId: string): PendingTransform => ({
  trxId,
  blockId: writeId,
  collection: 'c',
  baseRev: 1,
  transform: { kind: 'update', ops: [{ op: 'set', field: 'n', value: 9 }] },
  expiresAt: Date.now() + 60_000,
});

/** p0 (this node) and holders p1, p2 serving the real repo protocol; requests are recorded by type. */
function cluster(holders: Record<string, VersionedBlockStore>, local: VersionedBlockStore) {
  const { network, sent, down } = servingNetwork(holders);
  return { repo: clientAt(local, network), sent, down };
}

const readAt = (rev: number): ReadToVerify => ({ request: { blockId: readId, verifyLater: true }, rev });

describe('reads checked with the pends', () => {
  it('finds a read copy the other holders moved past without a read request of its own', async () => {
    const local = await storeWith(insert(readId), insert(writeId));
    const ahead = (): Promise<VersionedBlockStore> =>
      storeWith(insert(readId), update(readId, 2), insert(writeId));
    const { repo, sent } = cluster({ p1: await ahead(), p2: await ahead() }, local);
    const result = await repo.pend([pendOf('t1')], { verify: [readAt(1)] });
    expect(result.ok).to.equal(true);
    expect(result.stale).to.deep.equal([readId]);
    expect(sent.sort()).to.deep.equal(['p1.pend', 'p2.pend']);
    // The copy here is suspect now: a read that may use it reads the cluster instead.
    sent.length = 0;
    expect((await repo.get({ blockId: readId, verifyLater: true }))?.rev).to.equal(2);
    expect(sent.filter((request) => request.endsWith('.get'))).to.not.be.empty;
  });

  it('passes a read every holder holds at the revision read, still without a read request', async () => {
    const local = await storeWith(insert(readId), insert(writeId));
    const same = (): Promise<VersionedBlockStore> => storeWith(insert(readId), insert(writeId));
    const { repo, sent } = cluster({ p1: await same(), p2: await same() }, local);
    const result = await repo.pend([pendOf('t2')], { verify: [readAt(1)] });
    expect(result).to.deep.equal({ ok: true, outcomes: [{ status: 'ok' }] });
    expect(sent.sort()).to.deep.equal(['p1.pend', 'p2.pend']);
  });

  it('counts a holder that does not answer as no answer: one newer copy among the rest is enough', async () => {
    const local = await storeWith(insert(readId), insert(writeId));
    const { repo, down } = cluster(
      {
        p1: await storeWith(insert(readId), update(readId, 2), insert(writeId)),
        p2: await storeWith(insert(readId), insert(writeId)),
      },
      local,
    );
    down.add('p2');
    const result = await repo.pend([pendOf('t3')], { verify: [readAt(1)] });
    expect(result.ok).to.equal(true);
    expect(result.stale).to.deep.equal([readId]);
  });

  it('reads the cluster when too few holders that answered hold the block', async () => {
    // Neither other holder has the read block (it was never handed to them): this node's copy alone
    // is no majority, so the read is checked by a read of the cluster, which asks further.
    const local = await storeWith(insert(readId), insert(writeId));
    const { repo, sent } = cluster(
      { p1: await storeWith(insert(writeId)), p2: await storeWith(insert(writeId)) },
      local,
    );
    const result = await repo.pend([pendOf('t4')], { verify: [readAt(1)] });
    expect(result.ok).to.equal(true);
    expect(sent.filter((request) => request.endsWith('.get'))).to.not.be.empty;
  });

  it('passes a routing read whose next revision was committed after the snapshot, not one before it', async () => {
    // A branch a split elsewhere changed after the transaction's snapshot still routes where the
    // snapshot did (the tail validates the leaves); one changed at or before it was a stale copy here.
    const ahead = (): Promise<VersionedBlockStore> =>
      storeWith(insert(readId), update(readId, 2), insert(writeId));
    const routing = (snapshotLsn: number): ReadToVerify => ({ ...readAt(1), snapshotLsn });
    for (const [snapshotLsn, stale] of [
      [1, undefined],
      [2, [readId]],
    ] as const) {
      const local = await storeWith(insert(readId), insert(writeId));
      const { repo } = cluster({ p1: await ahead(), p2: await ahead() }, local);
      const result = await repo.pend([pendOf(`t5-${snapshotLsn}`)], { verify: [routing(snapshotLsn)] });
      expect(result.stale, `snapshot at LSN ${snapshotLsn}`).to.deep.equal(stale);
    }
    // Two revisions past the one read: the first of them may predate the snapshot.
    const local = await storeWith(insert(readId), insert(writeId));
    const further = await storeWith(insert(readId), update(readId, 2), update(readId, 3), insert(writeId));
    const { repo } = cluster({ p1: further, p2: await ahead() }, local);
    const result = await repo.pend([pendOf('t6')], { verify: [routing(1)] });
    expect(result.stale).to.deep.equal([readId]);
  });
});

describe('a pend refused by a member that lacks the block', () => {
  it('hands the block to that member, so the next attempt is taken by both (a cluster of two)', async () => {
    const local = await storeWith(insert(writeId), update(writeId, 2));
    const joiner = await storeWith();
    const { network, sent } = servingNetwork({ p1: joiner });
    // p0 and one other member: both must take a pend.
    const placement = new Placement('p0', 3);
    placement.add('p1');
    const repo = new ClusterRepoClient({
      local: new LocalRepo({ blocks: local, certifier: {} as Certifier }, { members: ['p0'] }),
      blocks: local,
      placement,
      network: () => network,
    });
    const at2 = (trxId: string): PendingTransform => ({ ...pendOf(trxId), baseRev: 2 });

    const refused = await repo.pend([at2('t1')]);
    expect(refused.ok).to.equal(false);
    // In the background: a majority read of the block, then its revisions sent to the joiner.
    for (let i = 0; i < 100 && (await joiner.latest(writeId))?.rev !== 2; i++)
      await new Promise((resolve) => setTimeout(resolve, 5));
    expect((await joiner.latest(writeId))?.rev).to.equal(2);
    expect(sent).to.include('p1.pend');
    await repo.cancel('t1', [writeId]);
    const taken = await repo.pend([at2('t2')]);
    expect(taken.ok).to.equal(true);
  });
});
