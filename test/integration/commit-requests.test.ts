import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Cluster } from '../../src/engine/cluster/cluster.js';
import type { NetworkConsensus } from '../../src/engine/cluster/consensus-edge.js';
import { collectionHeaderId } from '../../src/engine/base/ids.js';
import { leadershipOrder } from '../../src/engine/consensus/values.js';
import type { RunningNode } from '../../src/engine/node/node.js';
import { startMesh } from '../helpers/mesh.js';

function clusterOf(node: RunningNode): Cluster {
  return (node as unknown as { distributed: { wiring: { cluster: Cluster } } }).distributed.wiring.cluster;
}

function consensusOf(node: RunningNode): NetworkConsensus | undefined {
  return (node as unknown as { consensus: NetworkConsensus | undefined }).consensus;
}

async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) expect.fail('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('the requests a networked commit makes (in process, libp2p on 127.0.0.1)', function () {
  this.timeout(60_000);
  let root: string;
  const nodes: RunningNode[] = [];
  /** Requests every node sends, by `<protocol>.<type>`, while `counting`. */
  const sent = new Map<string, number>();
  let counting = false;

  /** The `get` requests sent while `counting`, with the data dir name of the node that sent each. */
  const asked: { newerThan?: unknown; blockId?: unknown; from: string }[] = [];

  const observer =
    (from: string) =>
    (_peer: string, name: string, message: unknown): void => {
      if (!counting) return;
      const get = message as { type?: unknown; newerThan?: unknown; blockId?: unknown };
      if (name === 'repo' && get.type === 'get')
        asked.push({ newerThan: get.newerThan, blockId: get.blockId, from });
      const key = `${name}.${String((message as { type?: unknown }).type)}`;
      sent.set(key, (sent.get(key) ?? 0) + 1);
    };

  async function network(count: number): Promise<RunningNode[]> {
    await startMesh(nodes, root, count, (name) => ({ observeRequest: observer(name) }));
    await new Promise((resolve) => setTimeout(resolve, 300));
    return nodes;
  }

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'optimystic-requests-'));
    sent.clear();
    counting = false;
  });

  afterEach(async () => {
    for (const node of nodes.splice(0)) await node.close().catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  });

  it('promotes a commit with the tail’s log write: no promote or propagated request, every holder has it when the client is answered', async () => {
    const [a, b, c] = await network(3);
    await a!.database.createCollection('accounts', 'tree');
    // The first entry of a log block is written whole (its creation): commit once past it.
    const first = await b!.database.transact({
      actions: [{ collection: 'accounts', op: 'put', key: 'alice', value: { balance: 1 } }],
    });
    expect(first.ok, JSON.stringify(first)).to.equal(true);

    const carried = (): number =>
      nodes.reduce((sum, node) => sum + (consensusOf(node)?.stats().messagesCarried ?? 0), 0);
    const carriedBefore = carried();
    counting = true;
    const outcome = await b!.database.transact({
      actions: [{ collection: 'accounts', op: 'put', key: 'bob', value: { balance: 2 } }],
    });
    counting = false;
    expect(outcome.ok, JSON.stringify(outcome)).to.equal(true);
    expect(sent.get('repo.promote') ?? 0).to.equal(0);
    expect(sent.get('tail.propagated') ?? 0).to.equal(0);
    expect(sent.get('repo.apply') ?? 0).to.be.above(0);
    // The decision reached the other members with the log write, not in a request of its own.
    expect(carried() - carriedBefore).to.be.at.least(1);

    // Every holder of the tree's root (a leaf this small) has the commit already.
    const info = await c!.database.collectionInfo('accounts');
    const rev = outcome.ok ? outcome.commit['accounts']!.rev : -1;
    const holders = await clusterOf(c!).repo.holders(info.root);
    expect(holders).to.have.length(3);
    for (const holder of holders) expect(holder.rev, holder.peer).to.be.a('number');
    const revs = new Set(holders.map((holder) => holder.rev));
    expect(revs.size, JSON.stringify(holders)).to.equal(1);
    // And the tail moved its checkpoint past it by itself.
    await eventually(async () => {
      const view = await clusterOf(a!).tails.view('accounts');
      return view.lastLsn >= rev && view.uncheckpointed.length === 0;
    });
  });

  it('reads a block from its own copy first, asking the other holders only for something newer', async () => {
    const [a] = await network(3);
    await a!.database.createCollection('accounts', 'tree');
    const put = await a!.database.transact({
      actions: [{ collection: 'accounts', op: 'put', key: 'alice', value: { balance: 1 } }],
    });
    expect(put.ok, JSON.stringify(put)).to.equal(true);
    const info = await a!.database.collectionInfo('accounts');
    const own = await clusterOf(a!).holder.get({ blockId: info.root });
    asked.length = 0;
    counting = true;
    const state = await clusterOf(a!).repo.get({ blockId: info.root });
    counting = false;
    expect(state?.rev).to.equal(own?.rev);
    // Both other members asked, each for a revision newer than the one this node holds.
    expect(asked.map((m) => m.newerThan)).to.deep.equal([own!.rev, own!.rev]);
  });

  it('checks a read-only transaction over two collections without reading either log again whole', async () => {
    const all = await network(3);
    const [a] = all;
    for (const name of ['left', 'right']) await a!.database.createCollection(name, 'tree');
    for (let i = 0; i < 3; i++) {
      const outcome = await a!.database.transact({
        actions: [
          { collection: 'left', op: 'put', key: `k${i}`, value: i },
          { collection: 'right', op: 'put', key: `k${i}`, value: i },
        ],
      });
      expect(outcome.ok, JSON.stringify(outcome)).to.equal(true);
    }
    // Through a node that leads neither collection (two leaders at most among three nodes), so both
    // checks are requests to their tails.
    const members = all.map((node) => node.peerId);
    const leaders = await Promise.all(
      ['left', 'right'].map(async (name) => {
        const info = await a!.database.collectionInfo(name);
        return leadershipOrder(info.tail, members)[0];
      }),
    );
    const reader = all.find((node) => !leaders.includes(node.peerId))!;
    const read = {
      actions: ['left', 'right'].map((collection) => ({ collection, op: 'get' as const, key: 'k1' })),
    };
    expect((await reader.database.transact(read)).ok).to.equal(true);
    asked.length = 0;
    counting = true;
    const outcome = await reader.database.transact(read);
    counting = false;
    expect(outcome.ok, JSON.stringify(outcome)).to.equal(true);
    expect(sent.get('tail.check') ?? 0, 'the tails checked the cut').to.equal(2);
    // Each tail confirmed its cached log by its tail block: no header read, nothing promoted again.
    const headers = ['left', 'right'].map((name) => collectionHeaderId(name));
    expect(asked.filter((get) => headers.includes(get.blockId as string))).to.deep.equal([]);
    expect(sent.get('repo.promote') ?? 0).to.equal(0);
  });

  it('keeps serving the logs it leads from memory while another member leads a collection it follows', async () => {
    const all = await network(3);
    const members = all.map((node) => node.peerId);
    const leaderOf = async (collection: string): Promise<RunningNode> => {
      const info = await all[0]!.database.collectionInfo(collection);
      const first = leadershipOrder(info.tail, members)[0];
      return all.find((node) => node.peerId === first)!;
    };
    // Two collections whose tails different nodes lead (each collection's log block is drawn anew).
    await all[0]!.database.createCollection('mine', 'tree');
    const x = await leaderOf('mine');
    let theirs: string | undefined;
    for (let i = 0; i < 12 && theirs === undefined; i++) {
      await all[0]!.database.createCollection(`theirs${i}`, 'tree');
      if ((await leaderOf(`theirs${i}`)) !== x) theirs = `theirs${i}`;
    }
    expect(theirs, 'no collection led by another node in 12 tries').to.be.a('string');
    const y = await leaderOf(theirs!);
    const put = async (node: RunningNode, collection: string, key: string): Promise<void> => {
      const outcome = await node.database.transact({ actions: [{ collection, op: 'put', key, value: 1 }] });
      expect(outcome.ok, JSON.stringify(outcome)).to.equal(true);
    };
    // x serves 'mine' from its cached log; y decides entries of 'theirs', whose group x is in.
    for (let i = 0; i < 3; i++) await put(x, 'mine', `warm${i}`);
    for (let i = 0; i < 3; i++) await put(y, theirs!, `k${i}`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    asked.length = 0;
    counting = true;
    await put(x, 'mine', 'after');
    counting = false;
    // Reloading the log would have read its header (and log blocks) from the other holders again.
    const mine = await x.database.collectionInfo('mine');
    const reread = asked.filter(
      (get) => get.blockId === collectionHeaderId('mine') || get.blockId === mine.tail,
    );
    expect(reread, JSON.stringify(asked)).to.deep.equal([]);
  });
});
