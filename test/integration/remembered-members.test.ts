import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultNodeConfig, type NodeConfig } from '../../src/engine/config/schema.js';
import { memberBook, type MemberBook } from '../../src/engine/node/cluster-wiring.js';
import { startNode, type RunningNode } from '../../src/engine/node/node.js';
import { LevelRawStore } from '../../src/engine/storage/level-store.js';
import { eventually } from './network-helpers.js';

/**
 * A node remembers the addresses its members announced and dials them when it starts, so a node
 * restarted without bootstrap addresses (every node of a network restarting, say) finds its
 * network again instead of sitting alone, knowing its members by id only.
 */
describe('members remembered with their addresses', function () {
  this.timeout(60_000);
  let root: string;
  const nodes: RunningNode[] = [];
  const config: NodeConfig = { ...defaultNodeConfig, listen: ['/ip4/127.0.0.1/tcp/0'] };

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'optimystic-remembered-'));
  });

  afterEach(async () => {
    for (const node of nodes.splice(0)) await node.close().catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  });

  it('finds its members again after a restart without bootstrap addresses', async () => {
    const a = await startNode({ dataDir: join(root, 'a'), config, version: 'test' });
    nodes.push(a);
    const bootstrap = (await a.status()).listenAddresses;
    let b = await startNode({ dataDir: join(root, 'b'), config: { ...config, bootstrap }, version: 'test' });
    nodes.push(b);
    await eventually('b knows a as a member', async () => (await b.status()).members?.known === 2);
    await a.database.createCollection('t', 'tree');
    // b remembered where a listens.
    const remembered = (node: RunningNode): string[] =>
      (node as unknown as { distributed: { members: MemberBook } }).distributed.members.addresses();
    await eventually('b remembers where a listens', () =>
      remembered(b).some((address) => bootstrap.includes(address)),
    );
    await b.close();
    nodes.splice(nodes.indexOf(b), 1);
    // Started again with no bootstrap address: it dials a, and the database works through it.
    b = await startNode({ dataDir: join(root, 'b'), config, version: 'test' });
    nodes.push(b);
    await eventually('b reaches a again', async () => (await b.status()).members?.reachable === 2);
    const outcome = await b.database.transact({
      actions: [{ collection: 't', op: 'put', key: 'k', value: 1 }],
    });
    expect(outcome.ok, JSON.stringify(outcome)).to.equal(true);
    expect((await a.database.get('t', 'k')).value).to.equal(1);
  });

  it('keeps members remembered before addresses were (value `1`), and their addresses once announced', async () => {
    const raw = new LevelRawStore(join(root, 'store'));
    await raw.open();
    await raw.batch([{ type: 'put', key: 'n/12D3KooWOldMember', value: '1' }]);
    const book = await memberBook(raw);
    expect(book.known).to.deep.equal(['12D3KooWOldMember']);
    expect(book.addresses()).to.deep.equal([]);
    await book.remember('12D3KooWOldMember', ['/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWOldMember']);
    await book.remember('12D3KooWOldMember');
    const again = await memberBook(raw);
    expect(again.addresses()).to.deep.equal(['/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWOldMember']);
    // A bare list of addresses (the format before last-seen times) is read too.
    await raw.batch([{ type: 'put', key: 'n/12D3KooWListed', value: '["/ip4/10.0.0.2/tcp/4001/p2p/x"]' }]);
    expect((await memberBook(raw)).addresses()).to.include('/ip4/10.0.0.2/tcp/4001/p2p/x');
    await raw.close();
  });

  it('remembers when each member was last seen, across reopening, and keeps it when addresses change', async () => {
    const raw = new LevelRawStore(join(root, 'store'));
    await raw.open();
    const book = await memberBook(raw);
    await book.remember('12D3KooWSeen', ['/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWSeen']);
    expect(book.lastSeen('12D3KooWSeen')).to.equal(undefined);
    await book.seen(['12D3KooWSeen', '12D3KooWNeverMet'], 1_700_000_000_000);
    expect(book.lastSeen('12D3KooWSeen')).to.equal(1_700_000_000_000);
    // Only members are recorded: a peer the book does not hold stays unknown.
    expect(book.lastSeen('12D3KooWNeverMet')).to.equal(undefined);
    await book.remember('12D3KooWSeen', ['/ip4/127.0.0.1/tcp/4002/p2p/12D3KooWSeen']);
    await raw.close();
    const again = new LevelRawStore(join(root, 'store'));
    await again.open();
    const reopened = await memberBook(again);
    expect(reopened.known).to.deep.equal(['12D3KooWSeen']);
    expect(reopened.lastSeen('12D3KooWSeen')).to.equal(1_700_000_000_000);
    expect(reopened.addresses()).to.deep.equal(['/ip4/127.0.0.1/tcp/4002/p2p/12D3KooWSeen']);
    await again.close();
  });

  it('says how long a member has been away after this node restarts, from when it last saw it', async () => {
    const a = await startNode({ dataDir: join(root, 'a'), config, version: 'test' });
    nodes.push(a);
    const bootstrap = (await a.status()).listenAddresses;
    const b = await startNode({
      dataDir: join(root, 'b'),
      config: { ...config, bootstrap },
      version: 'test',
    });
    nodes.push(b);
    await eventually('a knows b as a member', async () => (await a.status()).members?.reachable === 2);
    const bId = b.peerId;
    await b.close();
    nodes.splice(nodes.indexOf(b), 1);
    const goneAt = Date.now();
    await eventually('a sees b gone', async () => (await a.status()).members?.reachable === 1);
    await a.close();
    nodes.splice(nodes.indexOf(a), 1);
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    const again = await startNode({ dataDir: join(root, 'a'), config, version: 'test' });
    nodes.push(again);
    const [member] = (await again.status()).members!.unreachable!;
    expect(member!.peerId).to.equal(bId);
    expect(member!.lost).to.equal(false);
    // Seen when its connection closed, before the restart: away longer than this node has run.
    expect(member!.lastSeenAt).to.be.within(goneAt - 5_000, goneAt + 5_000);
    expect(member!.forMs).to.be.at.least(1_200);
  });
});
