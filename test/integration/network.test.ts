import { createHash } from 'node:crypto';
import { peerIdFromString } from '@libp2p/peer-id';
import { expect } from 'chai';
import { isEngineError } from '../../src/engine/base/errors.js';
import { SeededRng } from '../../src/engine/base/rng.js';
import {
  openClientSession,
  peerIdOf,
  privateKeyFromSeed,
  schema,
  serveClient,
  streamReply,
  type NetworkNode,
} from '../../src/engine/network/index.js';
import { NodePool, eventually } from './network-helpers.js';

/** Reference ordering, written out independently: XOR of sha256(key) and sha256(peer id multihash), as a big integer. */
function nearestReference(key: Uint8Array, ids: readonly string[], k: number): string[] {
  const hash = (bytes: Uint8Array): bigint => BigInt(`0x${createHash('sha256').update(bytes).digest('hex')}`);
  const target = hash(key);
  const distance = (id: string): bigint => target ^ hash(peerIdFromString(id).toMultihash().bytes);
  return [...ids].sort((a, b) => (distance(a) < distance(b) ? -1 : 1)).slice(0, k);
}

describe('network: real libp2p nodes on 127.0.0.1', function () {
  this.timeout(60_000);
  const seed = 20_240_601;
  let pool: NodePool;

  beforeEach(() => {
    pool = new NodePool(seed);
  });

  afterEach(async () => {
    await pool.stopAll();
  });

  async function fiveNodes(): Promise<NetworkNode[]> {
    const first = await pool.start();
    const rest: NetworkNode[] = [];
    for (let i = 0; i < 4; i++) {
      const node = await pool.start({ bootstrap: first.addresses() });
      // Only the first node is anyone's bootstrap peer; the others can meet only through DHT queries.
      if (i === 0) expect(node.peers().map((peer) => peer.id)).to.deep.equal([first.peerId]);
      rest.push(node);
    }
    return [first, ...rest];
  }

  /** Every node knows every other through the DHT: routing tables full and peers connected. */
  async function converged(nodes: readonly NetworkNode[]): Promise<void> {
    await eventually('every node has every other in its routing table and peer list', () =>
      nodes.every((node) => {
        const connected = new Set(node.peers().map((peer) => peer.id));
        return (
          node.routingTableSize() === nodes.length - 1 &&
          nodes.every((other) => other === node || connected.has(other.peerId))
        );
      }),
    );
  }

  it('five nodes bootstrapping from one all discover each other through the DHT', async () => {
    const nodes = await fiveNodes();
    await converged(nodes);
    for (const node of nodes) {
      for (const other of nodes) {
        if (other === node) continue;
        const found = await node.findPeer(other.peerId);
        expect(found.id).to.equal(other.peerId);
        expect(found.addresses.some((address) => other.addresses().includes(address))).to.equal(true);
      }
      expect(node.addresses().every((address) => address.endsWith(`/p2p/${node.peerId}`))).to.equal(true);
    }
    const stranger = peerIdOf(await privateKeyFromSeed(new Uint8Array(32).fill(7)));
    try {
      await nodes[2]!.findPeer(stranger);
      expect.fail('found a peer that does not exist');
    } catch (error) {
      expect(isEngineError(error, 'NOT_FOUND'), String(error)).to.equal(true);
    }
  });

  it('agrees across nodes on the k peers closest to a key, itself included', async () => {
    const nodes = await fiveNodes();
    await converged(nodes);
    const ids = nodes.map((node) => node.peerId);
    const rng = new SeededRng(seed);
    const selfIncluded = new Set<string>();
    for (let trial = 0; trial < 5; trial++) {
      const key = rng.bytes(32);
      const expected = nearestReference(key, ids, 3);
      for (const node of nodes) {
        const cluster = await node.closest(key, 3);
        expect(cluster, `node ${node.peerId}, trial ${trial}`).to.deep.equal(expected);
        if (cluster.includes(node.peerId)) selfIncluded.add(node.peerId);
      }
      expect(await nodes[trial % 5]!.closest(key, 10)).to.have.members(ids);
    }
    expect(selfIncluded.size).to.be.above(0);
  });

  it('drops a stopped node from every peer list and from closest-peer answers', async () => {
    const nodes = await fiveNodes();
    await converged(nodes);
    const leaving = nodes[3]!;
    const live = nodes.filter((node) => node !== leaving);
    const disconnected = new Set<string>();
    for (const node of live) {
      node.on('peer:disconnect', (peerId) => {
        if (peerId === leaving.peerId) disconnected.add(node.peerId);
      });
    }
    await leaving.stop();
    await eventually('no live node lists the stopped one', () =>
      live.every((node) => !node.peers().some((peer) => peer.id === leaving.peerId)),
    );
    expect(disconnected.size).to.equal(live.length);
    const key = new TextEncoder().encode('block:after-stop');
    for (const node of live) {
      expect(await node.closest(key, 5)).to.have.members(live.map((other) => other.peerId));
    }
  });

  it('never joins the DHTs of two networks, even when one bootstraps from the other', async () => {
    const alpha1 = await pool.start({ network: 'alpha' });
    const alpha2 = await pool.start({ network: 'alpha', bootstrap: alpha1.addresses() });
    const beta = await pool.start({ network: 'beta', bootstrap: alpha1.addresses() });
    await eventually(
      'the alpha nodes know each other',
      () => alpha1.routingTableSize() === 1 && alpha2.routingTableSize() === 1,
    );
    await eventually(
      'alpha and beta are not connected',
      () => !alpha1.peers().some((peer) => peer.id === beta.peerId) && beta.peers().length === 0,
    );
    // Give upkeep a few rounds to (wrongly) re-dial the foreign bootstrap peer.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(beta.routingTableSize()).to.equal(0);
    expect(beta.peers()).to.deep.equal([]);
    expect(alpha1.routingTableSize()).to.equal(1);
    const key = new TextEncoder().encode('shared key');
    expect(await beta.closest(key, 5)).to.deep.equal([beta.peerId]);
    expect(await alpha2.closest(key, 5)).to.have.members([alpha1.peerId, alpha2.peerId]);
    await alpha1.handle('echo', (request) => Promise.resolve(request), { validate: schema.anyMessage });
    try {
      await beta.request(alpha1.addresses()[0]!, 'echo', { type: 'hello' }, { timeoutMs: 2000 });
      expect.fail('a beta node reached an alpha protocol');
    } catch (error) {
      expect(isEngineError(error)).to.equal(true);
    }
  });

  it('serves a light client over the client protocol, with single and streamed replies', async () => {
    const server = await pool.start();
    await serveClient(server, (request) => {
      if (request.type === 'scan') return Promise.resolve(streamReply([1, 2, 3].map((n) => ({ n }))));
      if (request.type === 'whoami') return Promise.resolve({ you: 'client' });
      return Promise.reject(new Error('unexpected'));
    });
    const session = await openClientSession({ address: server.addresses()[0]! });
    try {
      expect(session.remotePeerId).to.equal(server.peerId);
      expect(await session.request({ type: 'whoami' })).to.deep.equal({ you: 'client' });
      const items: unknown[] = [];
      for await (const item of session.requestStream({ type: 'scan' })) items.push(item);
      expect(items).to.deep.equal([{ n: 1 }, { n: 2 }, { n: 3 }]);
      // A light client neither listens nor enters the server's routing table.
      expect(server.routingTableSize()).to.equal(0);
    } finally {
      await session.close();
    }
  });

  it('partitions peers with a connection gate and heals when the gate opens', async () => {
    const blocked = new Set<string>();
    const gate = { denyPeer: (peerId: string) => blocked.has(peerId) };
    const a = await pool.start({ connectionGater: gate });
    const b = await pool.start({ bootstrap: a.addresses() });
    await a.handle('echo', (request) => Promise.resolve(request), { validate: schema.anyMessage });
    expect(await b.request(a.peerId, 'echo', { type: 'hello' })).to.deep.equal({ type: 'hello' });
    blocked.add(b.peerId);
    await a.disconnect(b.peerId);
    await eventually('the partition cuts the connection', () => b.peers().length === 0);
    try {
      await b.request(a.addresses()[0]!, 'echo', { type: 'hello' }, { timeoutMs: 2000 });
      expect.fail('a request crossed the partition');
    } catch (error) {
      expect(isEngineError(error)).to.equal(true);
    }
    blocked.delete(b.peerId);
    expect(await b.request(a.addresses()[0]!, 'echo', { type: 'again' })).to.deep.equal({ type: 'again' });
  });

  it('measures round trips and reports them on the peer list', async () => {
    const [a, b] = [await pool.start(), await pool.start()];
    const viaAddress = await a.ping(b.addresses()[0]!);
    expect(viaAddress).to.be.at.least(0);
    const viaId = await a.ping(b.peerId);
    expect(viaId).to.be.at.least(0);
    const listed = a.peers().find((peer) => peer.id === b.peerId);
    expect(listed?.latencyMs).to.be.a('number');
    expect(listed?.direction).to.equal('outbound');
  });

  it('announces a gateway’s public address', async () => {
    const gateway = await pool.start({ gateway: true, announce: ['/ip4/203.0.113.7/tcp/4001'] });
    expect(gateway.addresses()).to.deep.equal([`/ip4/203.0.113.7/tcp/4001/p2p/${gateway.peerId}`]);
  });
});
