import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Clock } from '../../src/engine/base/clock.js';
import { PeerClocks } from '../../src/engine/cluster/peer-clocks.js';
import { startNode, type RunningNode } from '../../src/engine/node/node.js';
import { loopback } from '../helpers/mesh.js';

describe('peer clocks', () => {
  it('estimate a peer clock from below by its quickest message, and keep its deadlines in time left', () => {
    const reported: [string, number][] = [];
    const clocks = new PeerClocks((peer, offset) => reported.push([peer, offset]));
    const t = 1_700_000_000_000;
    // The peer's clock runs 45 s ahead; messages take 5 ms, then one is held up 3 s on its way.
    expect(clocks.observe('p', t + 45_000, t + 5)).to.equal(44_995);
    expect(clocks.observe('p', t + 46_000, t + 1_002)).to.equal(44_998);
    expect(clocks.observe('p', t + 47_000, t + 5_000)).to.equal(44_998);
    expect(clocks.offsetOf('p')).to.equal(44_998);
    expect(clocks.offsetOf('q')).to.equal(undefined);
    // A deadline 30 s off by the peer's clock, sent now: 30 s off here, whatever the message took.
    expect(clocks.localDeadline('p', t + 20_000 + 45_000 + 30_000, t + 20_000 + 45_000, t + 20_004)).to.equal(
      t + 20_000 + 30_000 + 2,
    );
    expect(clocks.localDeadline('p', t + 90_000, t + 60_000, t + 18_000)).to.equal(t + 90_000 - 44_998);
    // A clock behind; reported when first seen, then only when it moves by a second or more.
    expect(clocks.observe('q', t - 2_000, t + 1)).to.equal(-2_001);
    expect(clocks.observe('q', t + 1_000, t + 1_005)).to.equal(-5);
    expect(reported).to.deep.equal([
      ['p', 44_995],
      ['q', -2_001],
      ['q', -5],
    ]);
    // Not a time: left for validation to refuse.
    expect(clocks.localDeadline('p', -1, t, t)).to.equal(-1);
    expect(clocks.localDeadline('p', 1.5, t, t)).to.equal(1.5);
  });

  it('take a new estimate once the old one is a minute old (a clock that was set back)', () => {
    const clocks = new PeerClocks();
    const t = 1_700_000_000_000;
    expect(clocks.observe('p', t + 45_000, t)).to.equal(45_000);
    expect(clocks.observe('p', t + 59_999, t + 59_999)).to.equal(45_000);
    expect(clocks.observe('p', t + 60_000, t + 60_001)).to.equal(-1);
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
    const skews = [0, 45_000, -45_000];
    for (const [i, offset] of skews.entries()) {
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
    // Each node knows how far the others' clocks are from its own (within the time a message takes).
    const ids = nodes.map((node) => node.peerId);
    for (const [n, node] of nodes.entries()) {
      const peers = (await node.status()).peers;
      expect(peers).to.have.length(2);
      for (const peer of peers) {
        const expected = skews[ids.indexOf(peer.id)]! - skews[n]!;
        expect(Math.abs(peer.clockOffsetMs! - expected), `n${n} sees ${peer.id}`).to.be.below(1_000);
      }
    }
    // Every node reads what every node wrote.
    for (const node of nodes)
      for (const [left] of pairs)
        expect(await node.database.get(left, 'count')).to.deep.include({ value: 3 });
  });
});
