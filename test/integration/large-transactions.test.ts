import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { limits } from '../../src/engine/base/limits.js';
import { defaultNodeConfig, type NodeConfig } from '../../src/engine/config/schema.js';
import { openLightClient } from '../../src/engine/node/light-client.js';
import { startNode, type RunningNode } from '../../src/engine/node/node.js';
import type { TxRequest } from '../../src/engine/transactions/tx-types.js';
import { eventually } from './network-helpers.js';

/**
 * Transactions as large as a `tx` line may be (txLineBytesMax) commit across the network as they do
 * embedded: their writes, their actions and the request itself are each more than one message frame
 * (frameBytesMax) may carry, and were refused TOO_LARGE or NO_QUORUM before.
 */
describe('transactions larger than a message frame, across the network', function () {
  this.timeout(120_000);
  let root: string;
  const nodes: RunningNode[] = [];
  const config: NodeConfig = { ...defaultNodeConfig, listen: ['/ip4/127.0.0.1/tcp/0'], clients: 'any' };

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'optimystic-large-tx-'));
    const first = await startNode({ dataDir: join(root, 'n0'), config, version: 'test' });
    nodes.push(first);
    const bootstrap = (await first.status()).listenAddresses;
    for (let i = 1; i < 3; i++)
      nodes.push(
        await startNode({ dataDir: join(root, `n${i}`), config: { ...config, bootstrap }, version: 'test' }),
      );
    for (const a of nodes)
      for (const b of nodes)
        if (a !== b) await a.connect((await b.status()).listenAddresses[0]!).catch(() => undefined);
    await eventually('every node sees the other two', async () => {
      for (const node of nodes) if ((await node.peers()).length < 2) return false;
      return true;
    });
    await nodes[0]!.database.createCollection('users', 'tree');
    await nodes[0]!.database.createCollection('events', 'diary');
  });

  after(async () => {
    for (const node of nodes.splice(0)) await node.close().catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  });

  /** `count` puts of values of `bytes` characters: well over one frame in all, each value within its limit. */
  function bigPuts(prefix: string, count: number, bytes: number): TxRequest {
    const value = 'v'.repeat(bytes);
    return {
      actions: Array.from({ length: count }, (_, i) => ({
        collection: 'users',
        op: 'put' as const,
        key: `${prefix}${String(i).padStart(3, '0')}`,
        value,
      })),
    };
  }

  it('commits 60 values of 60 KB (3.6 MB of writes) through every node, visible at the others', async () => {
    const request = bigPuts('a', 60, 60_000);
    expect(JSON.stringify(request).length).to.be.above(limits.frameBytesMax);
    expect(JSON.stringify(request).length).to.be.below(limits.txLineBytesMax);
    // Through each node: one of them is the tail's leader, so the others reach it over the network.
    for (const [i, node] of nodes.entries()) {
      const outcome = await node.database.transact(bigPuts(`n${i}-`, 60, 60_000));
      expect(outcome.ok, JSON.stringify(outcome).slice(0, 300)).to.equal(true);
    }
    for (const node of nodes)
      for (let i = 0; i < 3; i++) {
        const got = await node.database.get('users', `n${i}-059`);
        expect(got.found, `n${i}-059`).to.equal(true);
        expect(got.value).to.have.length(60_000);
      }
  });

  it('appends 65 entries of 60 KB to a diary in one transaction', async () => {
    const value = 'e'.repeat(60_000);
    const outcome = await nodes[1]!.database.transact({
      actions: Array.from({ length: 65 }, () => ({ collection: 'events', op: 'append' as const, value })),
    });
    expect(outcome.ok, JSON.stringify(outcome).slice(0, 300)).to.equal(true);
    let count = 0;
    for await (const entry of nodes[2]!.database.read('events')) {
      expect(entry.value).to.have.length(60_000);
      count++;
    }
    expect(count).to.equal(65);
  });

  it('takes such a transaction from a light client (--connect)', async () => {
    const address = (await nodes[2]!.status()).listenAddresses[0]!;
    const client = await openLightClient({ address, network: config.network });
    try {
      const outcome = await client.transact(bigPuts('lc', 60, 60_000));
      expect(outcome.ok, JSON.stringify(outcome).slice(0, 300)).to.equal(true);
      expect((await client.get('users', 'lc059')).value).to.have.length(60_000);
    } finally {
      await client.close();
    }
  });
});
