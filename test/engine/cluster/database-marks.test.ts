import { expect } from 'chai';
import { collectionHeaderId } from '../../../src/engine/base/ids.js';
import { DatabaseMarks, marksListedMax } from '../../../src/engine/cluster/database-marks.js';
import { Placement } from '../../../src/engine/cluster/placement.js';
import { memberBook } from '../../../src/engine/node/cluster-wiring.js';
import { memberPrefix } from '../../../src/engine/node/store-keys.js';
import type { BlockState } from '../../../src/engine/storage/block-store.js';
import { MemoryRawStore } from '../../../src/engine/storage/memory-store.js';

/** Header copies held, by collection name → the transaction of their first revision. */
function heldHeaders(created: Record<string, string>) {
  const byId = new Map(Object.entries(created).map(([name, trx]) => [collectionHeaderId(name), trx]));
  let reads = 0;
  return {
    get reads() {
      return reads;
    },
    at(id: string, point: { readonly rev: number }): Promise<BlockState | undefined> {
      reads += 1;
      const trxId = byId.get(id);
      if (trxId === undefined || point.rev !== 1) return Promise.resolve(undefined);
      return Promise.resolve({
        id,
        rev: 1,
        lsn: 1,
        trxId,
        block: { header: { id, type: 'header' } },
      } as never);
    },
  };
}

describe('database marks: telling a peer of another database from a member', () => {
  it('lists the catalog collections whose header this node holds, by the transaction that created each', async () => {
    const blocks = heldHeaders({ accounts: 'trx-a', transfers: 'trx-t' });
    const marks = new DatabaseMarks(() => Promise.resolve(['transfers', 'accounts', 'gone']), blocks);
    expect(await marks.marks()).to.deep.equal({ accounts: 'trx-a', transfers: 'trx-t' });
    const reads = blocks.reads;
    await marks.marks();
    expect(blocks.reads - reads, 'creations are read once, a header not held each time').to.equal(1);
  });

  it('finds a collection the peer created otherwise, and nothing in collections only one side has', async () => {
    const marks = new DatabaseMarks(
      () => Promise.resolve([]),
      heldHeaders({ accounts: 'trx-a', orders: 'trx-o' }),
    );
    expect(await marks.clash({ accounts: 'trx-a', orders: 'trx-o', other: 'trx-x' })).to.equal(undefined);
    expect(await marks.clash({ other: 'trx-x', orders: 'trx-elsewhere' })).to.deep.equal({
      collection: 'orders',
      here: 'trx-o',
      there: 'trx-elsewhere',
    });
    for (const malformed of [undefined, null, 'accounts', ['accounts'], { accounts: 7 }])
      expect(await marks.clash(malformed), JSON.stringify(malformed)).to.equal(undefined);
  });

  it('bounds what a hello lists and what a check reads', async () => {
    const names = Array.from({ length: marksListedMax + 10 }, (_, i) => `c${String(i).padStart(4, '0')}`);
    const blocks = heldHeaders(Object.fromEntries(names.map((n) => [n, `t-${n}`])));
    const marks = new DatabaseMarks(() => Promise.resolve(names), blocks);
    expect(Object.keys(await marks.marks())).to.have.length(marksListedMax);
    const fresh = heldHeaders({});
    await new DatabaseMarks(() => Promise.resolve([]), fresh).clash(
      Object.fromEntries(names.map((n) => [n, 'x'])),
    );
    expect(fresh.reads).to.equal(marksListedMax);
  });

  it('forgets a peer known only by introduction, in placement and in the member book', async () => {
    const placement = new Placement('p1', 5);
    placement.add('p2');
    placement.introduce('p3');
    expect(placement.forgetIntroduced('p2'), 'a member met is kept').to.equal(false);
    expect(placement.forgetIntroduced('p3')).to.equal(true);
    expect(placement.members()).to.deep.equal(['p1', 'p2']);
    const raw = new MemoryRawStore();
    await raw.open();
    const book = await memberBook(raw);
    await book.remember('p2', ['/ip4/127.0.0.1/tcp/1/p2p/p2']);
    await book.remember('p3', ['/ip4/127.0.0.1/tcp/2/p2p/p3']);
    await book.forget('p3');
    expect((await memberBook(raw)).known).to.deep.equal(['p2']);
    expect(await raw.get(memberPrefix + 'p3')).to.equal(undefined);
  });
});
