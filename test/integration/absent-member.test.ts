import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isLogBlock } from '../../src/engine/collections/log/log-block.js';
import { defaultNodeConfig, type NodeConfig } from '../../src/engine/config/schema.js';
import { startNode, type RunningNode } from '../../src/engine/node/node.js';

const loopback: NodeConfig = { ...defaultNodeConfig, listen: ['/ip4/127.0.0.1/tcp/0'] };

async function eventually(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) expect.fail('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/**
 * SPEC 6: a tail group seals to a successor when a member has been unreachable too long, and grows
 * back when it returns. Four real nodes on 127.0.0.1, members away for 1.5 s count as absent.
 */
describe('a tail group without a member that is away too long (in process, libp2p on 127.0.0.1)', function () {
  this.timeout(120_000);
  let root: string;
  const nodes = new Map<string, RunningNode>();

  function start(name: string, bootstrap: string[] = []): Promise<RunningNode> {
    return startNode({
      dataDir: join(root, name),
      config: { ...loopback, bootstrap },
      version: 'test',
      cluster: { memberAbsentMs: 1_500 },
    });
  }

  async function tailMembers(node: RunningNode, collection: string): Promise<string[]> {
    const info = await node.database.collectionInfo(collection);
    const state = await node.database.block(info.tail);
    if (!isLogBlock(state.block)) throw new Error('the tail is not a log block');
    return [...state.block.members];
  }

  async function transfer(node: RunningNode, key: string, value: number): Promise<void> {
    const outcome = await node.database.transact({
      actions: [{ collection: 'accounts', op: 'put', key, value }],
    });
    expect(outcome.ok, JSON.stringify(outcome)).to.equal(true);
  }

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'optimystic-absent-'));
  });

  afterEach(async () => {
    for (const node of nodes.values()) await node.close().catch(() => undefined);
    nodes.clear();
    await rm(root, { recursive: true, force: true });
  });

  it('seals the group to the members still here, keeps committing, and takes the member back when it returns', async () => {
    const first = await start('n0');
    nodes.set('n0', first);
    const bootstrap = [...(await first.status()).listenAddresses];
    for (const name of ['n1', 'n2', 'n3']) nodes.set(name, await start(name, bootstrap));
    const all = [...nodes.values()];
    await eventually(async () => {
      for (const node of all) if ((await node.peers()).length < 3) return false;
      return true;
    }, 15_000);
    const ids = await Promise.all(all.map(async (node) => (await node.status()).peerId));
    const a = nodes.get('n0')!;
    await a.database.createCollection('accounts', 'tree');
    await transfer(a, 'k0', 0);
    expect((await tailMembers(a, 'accounts')).sort()).to.deep.equal([...ids].sort());

    // A member goes away (not the node asked): the group seals to the three left.
    const awayName = 'n3';
    const away = nodes.get(awayName)!;
    const awayId = (await away.status()).peerId;
    await away.close();
    nodes.delete(awayName);
    const b = nodes.get('n1')!;
    let i = 1;
    await eventually(async () => {
      await transfer(b, `k${i++}`, i);
      const members = await tailMembers(b, 'accounts');
      return members.length === 3 && !members.includes(awayId);
    }, 30_000);
    await transfer(b, 'during', 1);
    expect(await b.database.get('accounts', 'during')).to.deep.include({ found: true, value: 1 });

    // It comes back: the group grows to all four again, and the returning node reads the data.
    const back = await start(awayName, bootstrap);
    nodes.set(awayName, back);
    await eventually(async () => {
      await transfer(b, `k${i++}`, i);
      const members = await tailMembers(b, 'accounts');
      return members.length === 4 && members.includes(awayId);
    }, 30_000);
    expect(await back.database.get('accounts', 'during')).to.deep.include({ found: true, value: 1 });
  });
});
