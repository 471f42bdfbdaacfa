import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Clock } from '../../src/engine/base/clock.js';
import { inLocalTime } from '../../src/engine/cluster/repo.js';
import { startNode, type RunningNode } from '../../src/engine/node/node.js';
import { loopback } from '../helpers/mesh.js';

describe('deadlines sent between nodes', () => {
  it('keep the time they had left and drop the difference between the two clocks', () => {
    // Sent 30 s before its deadline by a clock 45 s behind this one: 30 s left here too.
    expect(inLocalTime(1_000_030_000, 1_000_000_000, 1_000_045_000)).to.equal(1_000_075_000);
    // By a clock ahead of this one.
    expect(inLocalTime(1_000_030_000, 1_000_000_000, 999_955_000)).to.equal(999_985_000);
    // Already past when sent: still past here.
    expect(inLocalTime(5_000, 10_000, 1_000_000)).to.equal(995_000);
    expect(inLocalTime(5_000, 10_000, 1_000)).to.equal(0);
    // Not a time: left for validation to refuse.
    expect(inLocalTime(-1, 10, 20)).to.equal(-1);
    expect(inLocalTime(1.5, 10, 20)).to.equal(1.5);
  });
});

/**
 * Three real nodes whose clocks disagree by 45 s each way, more than a transaction's expiry (30 s).
 * A tail compares the expiry a coordinator set by its own clock with the tail's: before the deadlines
 * were carried as time left, a tail ahead of the coordinator took every prepare for expired, and every
 * transaction over two collections coordinated behind it gave up with CONFLICT after 32 attempts.
 */
describe('nodes whose clocks disagree (in process, libp2p on 127.0.0.1)', function () {
  this.timeout(180_000);
  let root: string;
  const nodes: RunningNode[] = [];

  const skewed = (offsetMs: number): Clock => ({ now: () => Date.now() + offsetMs });

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'optimystic-skew-'));
  });

  afterEach(async () => {
    for (const node of nodes) await node.close().catch(() => undefined);
    nodes.length = 0;
    await rm(root, { recursive: true, force: true });
  });

  it('commits transactions over two collections through every node', async () => {
    const offsets = [0, 45_000, -45_000];
    for (const [i, offset] of offsets.entries()) {
      const bootstrap = i === 0 ? [] : (await nodes[0]!.status()).listenAddresses;
      nodes.push(
        await startNode({
          dataDir: join(root, `n${i}`),
          config: { ...loopback, bootstrap },
          version: 'test',
          clock: skewed(offset),
        }),
      );
    }
    const deadline = Date.now() + 30_000;
    while ((await Promise.all(nodes.map(async (node) => (await node.peers()).length))).some((n) => n < 2)) {
      if (Date.now() > deadline) expect.fail('the nodes did not connect');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // Several pairs of collections: their tails are led by members drawn from their block ids, so
    // some tail is led by a node whose clock runs ahead of some coordinator's.
    const pairs = [0, 1, 2, 3].map((p) => [`left${p}`, `right${p}`] as const);
    for (const [left, right] of pairs) {
      await nodes[0]!.database.createCollection(left, 'tree');
      await nodes[0]!.database.createCollection(right, 'diary');
    }
    const failures: string[] = [];
    for (const [n, node] of nodes.entries())
      for (const [left, right] of pairs) {
        const outcome = await node.database.transact({
          actions: [
            { collection: left, op: 'incr', key: 'count', by: 1 },
            { collection: right, op: 'append', value: { by: n } },
          ],
        });
        if (!outcome.ok)
          failures.push(`n${n} ${left}+${right}: ${outcome.error.code} ${outcome.error.message}`);
      }
    expect(failures).to.deep.equal([]);
    // Every node reads what every node wrote.
    for (const node of nodes)
      for (const [left] of pairs)
        expect(await node.database.get(left, 'count')).to.deep.include({ value: 3 });
  });
});
