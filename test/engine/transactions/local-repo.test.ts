import { expect } from 'chai';
import { newBlockId, newTrxId } from '../../../src/engine/base/ids.js';
import { SeededRng } from '../../../src/engine/base/rng.js';
import { blockTypes, type Block } from '../../../src/engine/storage/block.js';
import { MemoryRawStore } from '../../../src/engine/storage/memory-store.js';
import { VersionedBlockStore } from '../../../src/engine/storage/versioned-block-store.js';
import { Ed25519Identity, SoloCertifier } from '../../../src/engine/transactions/certifier.js';
import { LocalRepo } from '../../../src/engine/transactions/local-repo.js';

describe('LocalRepo', () => {
  it('answers a read at once only when get would answer the same without a wait', async () => {
    const rng = new SeededRng(21);
    const raw = new MemoryRawStore();
    await raw.open();
    const blocks = new VersionedBlockStore(raw);
    const identity = Ed25519Identity.generate();
    const repo = new LocalRepo(
      { blocks, certifier: new SoloCertifier(identity, 'test') },
      { members: [identity.id] },
    );
    const id = newBlockId(rng);
    const block: Block = { header: { id, type: blockTypes.treeLeaf, collection: 'c' }, entries: [] };
    const trxId = newTrxId(rng);
    await blocks.apply([{ blockId: id, trxId, lsn: 5, baseRev: 0, transform: { kind: 'insert', block } }]);
    const latest = await repo.get({ blockId: id });
    expect(repo.getNow({ blockId: id })).to.equal(latest);
    expect(repo.getNow({ blockId: id, atLsn: 5 })).to.equal(latest);
    // An older snapshot is materialised by get; a commit still to apply is reinforced by get first.
    expect(repo.getNow({ blockId: id, atLsn: 4 })).to.equal(undefined);
    const pending = { trxId: newTrxId(rng), lsn: 6 };
    expect(repo.getNow({ blockId: id, reinforce: [pending] })).to.equal(undefined);
    expect(repo.getNow({ blockId: id, reinforce: [{ trxId, lsn: 5 }] })).to.equal(latest);
    // A block never read is not known at once; one read and found missing is.
    const missing = newBlockId(rng);
    expect(repo.getNow({ blockId: missing })).to.equal(undefined);
    expect(await repo.get({ blockId: missing })).to.equal(undefined);
    expect(repo.getNow({ blockId: missing })).to.equal(null);
    await raw.close();
  });
});
