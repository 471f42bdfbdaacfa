import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultNodeConfig, type NodeConfig } from '../../src/engine/config/schema.js';
import { openDatabase } from '../../src/engine/node/embedded.js';
import { startNode, type RunningNode } from '../../src/engine/node/node.js';
import {
  checkListAppend,
  listCollection,
  runListAppend,
  type ListAppendRun,
} from '../helpers/list-append.js';

/**
 * List-append histories (test/helpers/list-append.ts) from concurrent clients, checked for lost
 * writes and serializability anomalies: on an embedded data directory and across a network of three
 * nodes, every key a diary, transactions spanning several of them.
 */
describe('list-append histories are serializable and lose nothing', function () {
  this.timeout(180_000);
  let root: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'optimystic-list-append-'));
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  function verdict(run: ListAppendRun): void {
    for (const final of run.finalReads) expect(final).to.deep.equal(run.finalReads[0]);
    const result = checkListAppend(run.history, run.finalReads[0]!);
    expect(result.anomalies, JSON.stringify(result.anomalies.slice(0, 5))).to.deep.equal([]);
    // A history with no commits, or no contention, would prove little.
    expect(run.ok).to.be.greaterThan(run.history.length / 2);
    expect(result.edges).to.be.greaterThan(run.ok);
    const appended = [...run.finalReads[0]!.values()].reduce((n, list) => n + list.length, 0);
    expect(appended).to.be.greaterThan(0);
  }

  it('on an embedded data directory, 8 clients', async () => {
    const db = await openDatabase({ dataDir: join(root, 'solo') });
    try {
      for (let k = 0; k < 4; k++) await db.createCollection(listCollection(`k${k}`), 'diary');
      verdict(await runListAppend([db], { clients: 8, transactions: 400, keys: 4, seed: 11 }));
    } finally {
      await db.close();
    }
  });

  it('across three nodes, 6 clients through different nodes', async () => {
    const loopback: NodeConfig = { ...defaultNodeConfig, listen: ['/ip4/127.0.0.1/tcp/0'] };
    const nodes: RunningNode[] = [];
    try {
      nodes.push(await startNode({ dataDir: join(root, 'n0'), config: loopback, version: 'test' }));
      const bootstrap = (await nodes[0]!.status()).listenAddresses;
      for (let i = 1; i < 3; i++)
        nodes.push(
          await startNode({
            dataDir: join(root, `n${i}`),
            config: { ...loopback, bootstrap },
            version: 'test',
          }),
        );
      for (const a of nodes)
        for (const b of nodes)
          if (a !== b) await a.connect((await b.status()).listenAddresses[0]!).catch(() => undefined);
      const deadline = Date.now() + 30_000;
      while ((await Promise.all(nodes.map(async (node) => (await node.peers()).length))).some((n) => n < 2)) {
        if (Date.now() > deadline) expect.fail('the three nodes did not connect');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      for (let k = 0; k < 4; k++)
        await nodes[k % 3]!.database.createCollection(listCollection(`k${k}`), 'diary');
      verdict(
        await runListAppend(
          nodes.map((node) => node.database),
          { clients: 6, transactions: 150, keys: 4, seed: 12 },
        ),
      );
    } finally {
      for (const node of nodes) await node.close().catch(() => undefined);
    }
  });
});
