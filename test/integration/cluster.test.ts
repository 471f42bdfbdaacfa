import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultNodeConfig, type NodeConfig } from '../../src/engine/config/schema.js';
import { startNode, type RunningNode } from '../../src/engine/node/node.js';

const loopback: NodeConfig = { ...defaultNodeConfig, listen: ['/ip4/127.0.0.1/tcp/0'] };

async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) expect.fail('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('a network of nodes is one database (in process, libp2p on 127.0.0.1)', function () {
  this.timeout(120_000);
  let root: string;
  const nodes: RunningNode[] = [];

  async function network(count: number): Promise<RunningNode[]> {
    const first = await startNode({ dataDir: join(root, 'n0'), config: loopback, version: 'test' });
    nodes.push(first);
    const bootstrap = first.status ? (await first.status()).listenAddresses : [];
    for (let i = 1; i < count; i++) {
      nodes.push(
        await startNode({
          dataDir: join(root, `n${i}`),
          config: { ...loopback, bootstrap },
          version: 'test',
        }),
      );
    }
    // Full mesh: everyone connects to everyone, then waits until each sees count-1 peers.
    for (const a of nodes)
      for (const b of nodes)
        if (a !== b) await a.connect((await b.status()).listenAddresses[0]!).catch(() => undefined);
    await eventually(async () => {
      for (const node of nodes) if ((await node.peers()).length < count - 1) return false;
      return true;
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    return nodes;
  }

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'optimystic-cluster-'));
  });

  afterEach(async () => {
    for (const node of nodes.splice(0)) await node.close().catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  });

  it('creates a collection on one node, writes through another and reads from a third', async () => {
    const [a, b, c] = await network(3);
    await a!.database.createCollection('accounts', 'tree');
    const put = await b!.database.transact({
      actions: [{ collection: 'accounts', op: 'put', key: 'alice', value: { balance: 10 } }],
    });
    expect(put.ok, JSON.stringify(put)).to.equal(true);
    const got = await c!.database.get('accounts', 'alice');
    expect(got.found).to.equal(true);
    expect(got.value).to.deep.equal({ balance: 10 });
    const listed = await c!.database.listCollections();
    expect(listed.map((info) => info.name)).to.deep.equal(['accounts']);
  });
});
