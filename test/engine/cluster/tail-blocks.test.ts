import { expect } from 'chai';
import { EngineError } from '../../../src/engine/base/errors.js';
import { Placement } from '../../../src/engine/cluster/placement.js';
import type { ClusterRepoClient } from '../../../src/engine/cluster/repo.js';
import { TailBlocks } from '../../../src/engine/cluster/tail.js';
import { storeWith } from './repo-harness.js';
import type { DirectRevision } from '../../../src/engine/storage/block-store.js';
import { MemoryRawStore } from '../../../src/engine/storage/memory-store.js';
import { VersionedBlockStore } from '../../../src/engine/storage/versioned-block-store.js';
import { newLogBlock } from '../../../src/engine/collections/log/log-block.js';

describe('tail blocks: sealing a log block', () => {
  const seal = {
    blockId: 'old-log',
    trxId: 't9',
    lsn: 9,
    baseRev: 2,
    transform: { kind: 'update', ops: [{ op: 'set', field: 'successor', value: 'new-log' }] },
    whole: true,
  } as unknown as DirectRevision;
  const successor = {
    blockId: 'new-log',
    trxId: 't9',
    lsn: 9,
    baseRev: 0,
    transform: { kind: 'insert', block: { header: { id: 'new-log', type: 'log' } } },
  } as unknown as DirectRevision;
  const header = {
    blockId: 'header',
    trxId: 't9',
    lsn: 9,
    baseRev: 4,
    transform: { kind: 'update', ops: [{ op: 'set', field: 'logTail', value: 'new-log' }] },
  } as unknown as DirectRevision;

  function tailBlocks(refuseSeal: boolean): { blocks: TailBlocks; writes: string[][] } {
    const writes: string[][] = [];
    const cluster = {
      apply(revisions: readonly DirectRevision[]) {
        writes.push(revisions.map((revision) => revision.blockId));
        if (refuseSeal && revisions.some((revision) => revision.whole === true))
          return Promise.reject(new EngineError('CONFLICT', 'old-log already has revision 3'));
        return Promise.resolve(new Set<string>());
      },
    } as unknown as ClusterRepoClient;
    const local = new VersionedBlockStore(new MemoryRawStore());
    return { blocks: new TailBlocks(local, cluster, new Placement('p0', 3)), writes };
  }

  it('never points the header past an old block whose holders refused the seal', async () => {
    const { blocks, writes } = tailBlocks(true);
    const error = await blocks.apply([seal, successor, header]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(EngineError).with.property('code', 'CONFLICT');
    expect(writes).to.deep.equal([['new-log'], ['old-log']]);
  });

  it('stores the successor, then the link to it, then the header', async () => {
    const { blocks, writes } = tailBlocks(false);
    await blocks.apply([seal, successor, header]);
    expect(writes).to.deep.equal([['new-log'], ['old-log'], ['header']]);
  });

  it("keeps each block's revisions in order when a batch appends before and after the seal", async () => {
    // One decision batch: an entry appended to the old block, the seal, the successor with the next
    // entry appended to it, and the header. Holders refuse a revision whose base they lack.
    const { whole: _whole, ...plain } = seal;
    const appendOld: DirectRevision = { ...plain, baseRev: 1, trxId: 't8', lsn: 8 };
    const appendNew = {
      ...successor,
      baseRev: 1,
      transform: seal.transform,
      trxId: 't10',
      lsn: 10,
    } as DirectRevision;
    const held = new Map<string, number>([
      ['old-log', 1],
      ['header', 4],
    ]);
    const writes: string[][] = [];
    const cluster = {
      apply(revisions: readonly DirectRevision[]) {
        writes.push(revisions.map((revision) => revision.blockId));
        for (const revision of revisions) {
          if ((held.get(revision.blockId) ?? 0) !== revision.baseRev)
            return Promise.reject(new EngineError('UNAVAILABLE', `${revision.blockId} is behind`));
          held.set(revision.blockId, revision.baseRev + 1);
        }
        return Promise.resolve(new Set<string>());
      },
    } as unknown as ClusterRepoClient;
    const blocks = new TailBlocks(
      new VersionedBlockStore(new MemoryRawStore()),
      cluster,
      new Placement('p0', 3),
    );
    await blocks.apply([appendOld, seal, successor, appendNew, header]);
    expect(writes).to.deep.equal([['new-log'], ['old-log', 'old-log'], ['new-log', 'header']]);
    expect(held.get('old-log')).to.equal(3);
    expect(held.get('new-log')).to.equal(2);
  });

  it('takes back revisions of its own copy that a majority of the cluster holds otherwise', async () => {
    // This node appended LSN 2 to its copy and crashed before anyone else had it; the cluster went on
    // with a seal at revision 2 instead (sim seed 3139: the tail served LSN 2 as prepared forever).
    const id = 'log-block';
    const insert = {
      blockId: id,
      trxId: 't1',
      lsn: 1,
      baseRev: 0,
      transform: { kind: 'insert', block: { header: { id, type: 'LB' }, entries: ['e1'] } },
    } as unknown as DirectRevision;
    const mine = {
      blockId: id,
      trxId: 't2',
      lsn: 2,
      baseRev: 1,
      transform: { kind: 'update', ops: [{ op: 'set', field: 'entries', value: ['e1', 'e2'] }] },
    } as unknown as DirectRevision;
    const sealed = {
      ...mine,
      trxId: 't2:seal',
      transform: { kind: 'update', ops: [{ op: 'set', field: 'successor', value: 'next' }] },
    } as unknown as DirectRevision;
    const local = await storeWith(insert, mine);
    const majority = await storeWith(insert, sealed);
    const state = (await majority.latest(id))!;
    const cluster = {
      getCounted: () => Promise.resolve({ state, holding: 2, holders: 3, source: 'p1' }),
      historyAt: () => majority.history(id),
    } as unknown as ClusterRepoClient;
    const placement = new Placement('p0', 3);
    placement.add('p1');
    placement.add('p2');
    const read = await new TailBlocks(local, cluster, placement).latest(id);
    expect(read?.trxId).to.equal('t2:seal');
    expect(read?.block).to.deep.include({ successor: 'next', entries: ['e1'] });
    expect((await local.history(id)).map((revision) => revision.trxId)).to.deep.equal(['t1', 't2:seal']);
  });
});

describe('tail blocks: naming the collection of a log block', () => {
  it("names it from this node's own copy when the tail never read the block, and remembers it", async () => {
    const raw = new MemoryRawStore();
    await raw.open();
    const local = new VersionedBlockStore(raw);
    const blocks = new TailBlocks(local, {} as ClusterRepoClient, new Placement('p0', 3));
    await local.apply([
      {
        blockId: 'their-log',
        trxId: 't1',
        lsn: 1,
        baseRev: 0,
        transform: { kind: 'insert', block: newLogBlock('their-log', 'theirs', null, 1, ['p0', 'p1']) },
      },
      {
        blockId: 'a-leaf',
        trxId: 't1',
        lsn: 1,
        baseRev: 0,
        transform: {
          kind: 'insert',
          block: { header: { id: 'a-leaf', type: 'leaf', collection: 'theirs' } },
        },
      },
    ] as DirectRevision[]);
    expect(blocks.collectionOfLog('their-log')).to.equal(undefined);
    expect(await blocks.collectionOfLogHeld('their-log')).to.equal('theirs');
    expect(blocks.collectionOfLog('their-log')).to.equal('theirs');
    expect(blocks.blocksOf('theirs')).to.include('their-log');
    // Not a log block, or not held here: nothing to name (the caller then forgets every collection).
    expect(await blocks.collectionOfLogHeld('a-leaf')).to.equal(undefined);
    expect(await blocks.collectionOfLogHeld('nowhere')).to.equal(undefined);
  });
});

describe('tail blocks: loading a log window', () => {
  const entry = (lsn: number): unknown => ({ lsn, trxId: `t${lsn}`, status: 'committed', writes: [] });
  /** Log blocks a ← b ← c of 2 entries each, held here; the cluster answers each read when told to. */
  async function chain(): Promise<{
    blocks: TailBlocks;
    asked: string[];
    answer: () => void;
  }> {
    const insert = (id: string, prior: string | null, firstLsn: number): DirectRevision =>
      ({
        blockId: id,
        trxId: `t${firstLsn}`,
        lsn: firstLsn,
        baseRev: 0,
        transform: {
          kind: 'insert',
          block: {
            ...newLogBlock(id, 'c', prior, firstLsn, ['p0']),
            entries: [entry(firstLsn), entry(firstLsn + 1)],
          },
        },
      }) as unknown as DirectRevision;
    const local = await storeWith(insert('a', null, 1), insert('b', 'a', 3), insert('c', 'b', 5));
    const asked: string[] = [];
    const waiting: (() => void)[] = [];
    const cluster = {
      getCounted: async ({ blockId }: { blockId: string }) => {
        asked.push(blockId);
        await new Promise<void>((resolve) => waiting.push(resolve));
        return { state: await local.latest(blockId), holding: 1, holders: 1 };
      },
    } as unknown as ClusterRepoClient;
    const answer = (): void => {
      for (const resolve of waiting.splice(0)) resolve();
    };
    return { blocks: new TailBlocks(local, cluster, new Placement('p0', 3)), asked, answer };
  }

  it('reads the blocks before the tail from the cluster all at once, and each only once', async () => {
    const { blocks, asked, answer } = await chain();
    await blocks.prefetchLog('b', 10);
    // Both reads are under way before either is answered (one after another, b's answer came first).
    expect(asked).to.deep.equal(['b', 'a']);
    const reads = Promise.all([blocks.latest('b'), blocks.latest('a')]);
    answer();
    const [b, a] = await reads;
    expect(
      [b?.block, a?.block].map((block) => (block as unknown as { prior: string | null }).prior),
    ).to.deep.equal(['a', null]);
    expect(asked).to.deep.equal(['b', 'a']);
  });

  it('stops at the window: blocks holding the entries asked for, no more', async () => {
    const { blocks, asked, answer } = await chain();
    await blocks.prefetchLog('c', 3);
    expect(asked).to.deep.equal(['c', 'b']);
    answer();
  });

  it('reads a block again when it was forgotten while its read was under way', async () => {
    const { blocks, asked, answer } = await chain();
    await blocks.prefetchLog('b', 2);
    blocks.forget(['b']);
    const read = blocks.latest('b');
    answer();
    await Promise.resolve();
    answer();
    await read;
    expect(asked).to.deep.equal(['b', 'b']);
  });
});
