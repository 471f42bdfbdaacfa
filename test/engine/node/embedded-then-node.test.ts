import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectionHeaderId, newBlockId, newTrxId, type BlockId } from '../../../src/engine/base/ids.js';
import { SeededRng } from '../../../src/engine/base/rng.js';
import type { BlockAccess } from '../../../src/engine/collections/block-access.js';
import { BTree } from '../../../src/engine/collections/btree/btree.js';
import { newLogBlock, type CollectionHeader } from '../../../src/engine/collections/log/log-block.js';
import { defaultNodeConfig, type NodeConfig } from '../../../src/engine/config/schema.js';
import { openDatabase } from '../../../src/engine/node/embedded.js';
import { startNode } from '../../../src/engine/node/node.js';
import { SoloNode } from '../../../src/engine/node/solo-node.js';
import { blockTypes, type Block } from '../../../src/engine/storage/block.js';
import { LevelRawStore } from '../../../src/engine/storage/level-store.js';
import type { Database } from '../../../src/engine/node/database-api.js';

const loopback: NodeConfig = { ...defaultNodeConfig, listen: ['/ip4/127.0.0.1/tcp/0'] };

/** Every log block of a collection, oldest first, with the group each records. */
async function logChain(db: Database, name: string): Promise<{ id: BlockId; members: string[] }[]> {
  const info = await db.collectionInfo(name);
  const header = (await db.block(info.id)).block as unknown as { logHead: BlockId };
  const chain: { id: BlockId; members: string[] }[] = [];
  for (let id: BlockId | null | undefined = header.logHead; id;) {
    const log = (await db.block(id)).block as unknown as { members: string[]; successor?: BlockId | null };
    chain.push({ id, members: log.members });
    id = log.successor;
  }
  return chain;
}

describe('a data directory used embedded, then served by a node', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'optimystic-embedded-node-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is served by a node started on it: reads, writes and time travel across the change', async () => {
    const db = await openDatabase({ dataDir: dir });
    await db.createCollection('accounts', 'tree');
    await db.createCollection('events', 'diary');
    const first = await db.transact({
      actions: [
        { collection: 'accounts', op: 'put', key: 'alice', value: { balance: 100 } },
        { collection: 'events', op: 'append', value: 'opened' },
      ],
    });
    expect(first.ok, JSON.stringify(first)).to.equal(true);
    const embeddedRev = (await db.collectionInfo('accounts')).rev;
    await db.close();

    const node = await startNode({ dataDir: dir, config: loopback, version: 'test' });
    try {
      expect(node.notices.join('\n')).to.not.contain('earlier version');
      const served = node.database;
      const next = await served.transact({
        actions: [
          { collection: 'accounts', op: 'incr', key: 'alice', path: 'balance', by: -30, min: 0 },
          { collection: 'events', op: 'append', value: 'paid 30' },
        ],
      });
      expect(next.ok, JSON.stringify(next)).to.equal(true);
      expect((await served.get('accounts', 'alice')).value).to.deep.equal({ balance: 70 });
      expect((await served.get('accounts', 'alice', { at: embeddedRev })).value).to.deep.equal({
        balance: 100,
      });
      const entries: unknown[] = [];
      for await (const { value } of served.read('events')) entries.push(value);
      expect(entries).to.deep.equal(['opened', 'paid 30']);
      // The collection's log names the node as the network knows it.
      const chain = await logChain(served, 'accounts');
      expect(chain.at(-1)!.members).to.deep.equal([node.peerId]);
      for (const { id } of chain) expect((await served.verifyBlock(id)).verified, id).to.equal(true);
    } finally {
      await node.close();
    }
  });

  it('hands logs that name the node by its bare key (stores made before) to its peer id, history intact', async () => {
    // What createCollection recorded before solo nodes named themselves by peer id: a log block whose
    // group is the node's bare public key (base64url).
    const raw = new LevelRawStore(join(dir, 'store'));
    await raw.open();
    const solo = await SoloNode.open({ raw });
    const bareKey = solo.identity.id;
    const rng = new SeededRng(4242);
    const inserted: Block[] = [];
    const capture: BlockAccess = {
      get: (id) => Promise.reject(new Error(`no block ${id}`)),
      tryGet: () => Promise.resolve(undefined),
      insert: (block) => void inserted.push(block),
      update: () => {
        throw new Error('a new tree updates nothing');
      },
      delete: () => {
        throw new Error('a new tree deletes nothing');
      },
      newId: () => newBlockId(rng),
    };
    const rootId = BTree.create(capture, 'legacy');
    const logId = newBlockId(rng);
    const header: CollectionHeader = {
      header: { id: collectionHeaderId('legacy'), type: blockTypes.collectionHeader, collection: 'legacy' },
      name: 'legacy',
      kind: 'tree',
      root: rootId,
      logHead: logId,
      logTail: logId,
      createdAt: Date.now(),
    };
    await solo.tails.create({
      trxId: newTrxId(rng),
      header,
      root: inserted[0]!,
      log: newLogBlock(logId, 'legacy', null, 1, [bareKey]),
    });
    await raw.batch([{ type: 'put', key: 'c/legacy', value: 'tree' }]);
    await raw.sync();
    // A transaction embedded: decided by the old group (certified under the bare key), and the log
    // moves on to a block naming the peer id.
    const put = await solo.transact({ actions: [{ collection: 'legacy', op: 'put', key: 'a', value: 1 }] });
    expect(put.ok, JSON.stringify(put)).to.equal(true);
    const afterPut = await logChain(solo, 'legacy');
    expect(afterPut.map((b) => b.members)).to.deep.equal([[bareKey], [solo.identity.peerId]]);
    await solo.close();

    // A second collection left as the old version made it, until a node starts on the directory.
    const again = new LevelRawStore(join(dir, 'store'));
    await again.open();
    const reopened = await SoloNode.open({ raw: again });
    const untouchedLog = newBlockId(rng);
    const untouchedRoot: Block[] = [];
    const rootOf = BTree.create({ ...capture, insert: (b) => void untouchedRoot.push(b) }, 'untouched');
    await reopened.tails.create({
      trxId: newTrxId(rng),
      header: {
        ...header,
        header: { ...header.header, id: collectionHeaderId('untouched'), collection: 'untouched' },
        name: 'untouched',
        root: rootOf,
        logHead: untouchedLog,
        logTail: untouchedLog,
      },
      root: untouchedRoot[0]!,
      log: newLogBlock(untouchedLog, 'untouched', null, 1, [bareKey]),
    });
    // A store an older version made carries no mark that its logs name the peer id.
    await again.batch([
      { type: 'put', key: 'c/untouched', value: 'tree' },
      { type: 'del', key: 'i/groups-by-peer-id' },
    ]);
    await again.sync();
    await reopened.close();

    const node = await startNode({ dataDir: dir, config: loopback, version: 'test' });
    try {
      // Only the collection still in the old form was moved, and the node says so.
      expect(node.notices.filter((n) => n.includes('made embedded by an earlier version'))).to.have.length(1);
      expect(node.notices.join('\n'))
        .to.contain('moved the logs of 1 collection(s)')
        .and.to.contain('(untouched)');
      const served = node.database;
      for (const name of ['legacy', 'untouched']) {
        const outcome = await served.transact({
          actions: [{ collection: name, op: 'put', key: 'b', value: 2 }],
        });
        expect(outcome.ok, `${name}: ${JSON.stringify(outcome)}`).to.equal(true);
        expect((await served.get(name, 'b')).value).to.equal(2);
        const chain = await logChain(served, name);
        expect(chain[0]!.members, name).to.deep.equal([bareKey]);
        expect(chain.at(-1)!.members, name).to.deep.equal([node.peerId]);
        for (const { id } of chain) {
          const verified = await served.verifyBlock(id);
          expect(verified.verified, `${name} ${id}: ${JSON.stringify(verified)}`).to.equal(true);
        }
      }
      expect((await served.get('legacy', 'a')).value).to.equal(1);
    } finally {
      await node.close();
    }
  });
});
