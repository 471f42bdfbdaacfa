import { expect } from 'chai';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromString } from '@libp2p/peer-id';
import { isEngineError } from '../../../src/engine/base/errors.js';
import { defaultNodeConfig, type NodeConfig } from '../../../src/engine/config/schema.js';
import { peerIdOf } from '../../../src/engine/network/index.js';
import { dataDirIdentity } from '../../../src/engine/node/launch.js';
import { openLightClient } from '../../../src/engine/node/light-client.js';
import { startNode, type RunningNode } from '../../../src/engine/node/node.js';
import { apiPath, lockPath, readApi } from '../../../src/engine/node/process-files.js';
import { reachDatabase, reachNode } from '../../../src/engine/node/reach.js';
import type { RemoteNode } from '../../../src/engine/node/remote.js';
import { RemoteStatusSource } from '../../../src/engine/node/status-hub.js';

const loopback: NodeConfig = { ...defaultNodeConfig, listen: ['/ip4/127.0.0.1/tcp/0'] };

async function rejection(work: Promise<unknown>): Promise<unknown> {
  try {
    await work;
  } catch (error) {
    return error;
  }
  expect.fail('expected a rejection');
}

async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) expect.fail('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('a running node (in process, libp2p on 127.0.0.1)', function () {
  this.timeout(30_000);
  let root: string;
  const nodes: RunningNode[] = [];
  const remotes: RemoteNode[] = [];

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'optimystic-node-'));
  });

  afterEach(async () => {
    for (const remote of remotes.splice(0)) await remote.close().catch(() => undefined);
    for (const node of nodes.splice(0)) await node.close().catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  });

  async function start(name: string, config: Partial<NodeConfig> = {}): Promise<RunningNode> {
    const node = await startNode({
      dataDir: join(root, name),
      config: { ...loopback, ...config },
      version: 'test',
    });
    nodes.push(node);
    return node;
  }

  it('writes its api file and lock, serves a 0600 socket, and removes them all when it stops', async () => {
    const node = await start('a');
    const dir = join(root, 'a');
    const api = await readApi(dir);
    expect(api).to.include({ pid: process.pid, peerId: node.peerId });
    expect(statSync(api!.socket).mode & 0o777).to.equal(0o600);
    expect(existsSync(lockPath(dir))).to.equal(true);
    await node.close();
    await node.stopped;
    expect(existsSync(apiPath(dir))).to.equal(false);
    expect(existsSync(lockPath(dir))).to.equal(false);
    expect(existsSync(api!.socket)).to.equal(false);
  });

  it('alone, makes one synced write per transaction (its pends and votes ride on the log write)', async () => {
    const node = await start('a');
    await node.database.createCollection('c', 'tree');
    const before = node.storeSyncs;
    const count = 20;
    for (let i = 0; i < count; i++) {
      const outcome = await node.database.transact({
        actions: [{ collection: 'c', op: 'put', key: `k${i}`, value: i }],
      });
      expect(outcome.ok, JSON.stringify(outcome)).to.equal(true);
    }
    const syncs = node.storeSyncs - before;
    // Three per transaction before (the pend, the tail group's vote, the log write).
    expect(syncs).to.be.within(count, count + 3);
    await node.close();
    const again = await start('a');
    for (let i = 0; i < count; i++)
      expect(await again.database.get('c', `k${i}`)).to.deep.include({ found: true, value: i });
  });

  it('refuses a second node on the same data directory with DATA_DIR_BUSY', async () => {
    await start('a');
    const error = await rejection(start('a'));
    expect(isEngineError(error, 'DATA_DIR_BUSY')).to.equal(true);
  });

  it('uses the identity stored in the data directory as its libp2p identity, across restarts', async () => {
    const dir = join(root, 'a');
    const before = await dataDirIdentity(dir);
    expect(before.created).to.equal(true);
    const first = await start('a');
    expect(first.peerId).to.equal(before.peerId);
    expect((await first.identity()).publicKey).to.equal(before.publicKey);
    // The peer id embeds the public key: it must be the store's Ed25519 key, not another one.
    const embedded = peerIdFromString(first.peerId).publicKey?.raw;
    expect(Buffer.from(embedded!).toString('base64url')).to.equal(before.publicKey);
    await first.close();
    const second = await start('a');
    expect(second.peerId).to.equal(before.peerId);
    await second.close();
    const after = await dataDirIdentity(dir);
    expect(after).to.deep.equal({ ...before, created: false });
  });

  it('serves data commands through its control socket, and measures the transactions it serves', async () => {
    const node = await start('a');
    const db = await reachDatabase({ dataDir: join(root, 'a') });
    try {
      await db.createCollection('accounts', 'tree');
      for (let i = 0; i < 5; i++) {
        const outcome = await db.transact({
          actions: [{ collection: 'accounts', op: 'put', key: `k${i}`, value: i }],
        });
        expect(outcome.ok).to.equal(true);
      }
      expect((await db.get('accounts', 'k3')).value).to.equal(3);
    } finally {
      await db.close();
    }
    const status = await node.status();
    expect(status.collections).to.equal(1);
    expect(status.storage.blocks).to.be.greaterThan(0);
    expect(status.rates.commitP50Ms).to.be.greaterThan(0);
    expect(status.rates.commitP99Ms).to.be.at.least(status.rates.commitP50Ms);
  });

  it('reports where its time goes: the phases of the commits it coordinates, the requests it sends and serves', async () => {
    const a = await start('a');
    const b = await start('b', { bootstrap: [a.hub.current()!.listenAddresses[0]!] });
    await eventually(async () => (await a.peers()).length === 1 && (await b.peers()).length === 1);
    // Both nodes hold every block (a cluster of two): each write pends at the other node too.
    await eventually(async () => {
      await a.database.createCollection('timed', 'tree').catch(() => undefined);
      return (await a.database.collectionInfo('timed').catch(() => undefined)) !== undefined;
    });
    const before = (await a.status()).timings!;
    const writes = 6;
    for (let i = 0; i < writes; i++) {
      const outcome = await a.database.transact({
        actions: [{ collection: 'timed', op: 'put', key: `k${i}`, value: i }],
      });
      expect(outcome.ok).to.equal(true);
    }
    const read = await a.database.transact({ actions: [{ collection: 'timed', op: 'get', key: 'k1' }] });
    expect(read.ok).to.equal(true);

    const { phases, sent } = (await a.status()).timings!;
    const added = (name: string): number => (phases[name]?.count ?? 0) - (before.phases[name]?.count ?? 0);
    expect(added('execute')).to.be.at.least(writes + 1);
    for (const phase of ['pend', 'decide', 'finish']) expect(added(phase), phase).to.be.at.least(writes);
    expect(added('check')).to.be.at.least(1);
    for (const phase of Object.values(phases)) {
      expect(phase.p50Ms).to.be.at.least(0);
      expect(phase.p99Ms).to.be.at.least(phase.p50Ms);
      expect(phase.maxMs).to.be.at.least(phase.p99Ms);
    }
    // A pend reaches every holder: the other node's is a request a sent and b served.
    expect(sent['repo.pend']?.count ?? 0).to.be.at.least(writes);
    // Each status period measures the event loop too (the first one after a second).
    await eventually(async () => (await a.status()).timings?.loop !== undefined, 5000);
    const loop = (await a.status()).timings!.loop!;
    expect(loop.periods).to.be.at.least(1);
    expect(loop.busyPct).to.be.within(0, 100);
    expect(loop.busyMaxPct).to.be.within(loop.busyPct, 100);
    expect(loop.lateP99Ms).to.be.at.least(0);
    const served = (await b.status()).timings!.served;
    expect(served['repo.pend']?.count ?? 0).to.be.at.least(writes);
    expect(
      Object.keys(served).every((name) => /^[a-z-]+\.[A-Za-z.-]+$/.test(name)),
      Object.keys(served).join(),
    ).to.equal(true);
  });

  it('logs a transaction slower than its threshold with where its time went, and no faster one', async () => {
    const slow = await startNode({
      dataDir: join(root, 'slow'),
      config: loopback,
      version: 'test',
      slowTransactionMs: 0,
    });
    nodes.push(slow);
    await slow.database.createCollection('c', 'tree');
    const outcome = await slow.database.transact({
      actions: [{ collection: 'c', op: 'put', key: 'k', value: 1 }],
    });
    expect(outcome.ok).to.equal(true);
    const logged = slow.hub.recentEvents().filter((event) => event.message.startsWith('slow transaction'));
    const line = logged.find((event) => outcome.ok && event.message.includes(outcome.trx));
    expect(line?.kind).to.equal('info');
    // The same figures as data, for whatever reads the node's NDJSON log.
    expect(line?.transaction).to.include({ ok: true, attempts: 1, trx: outcome.ok ? outcome.trx : '' });
    expect(Object.keys(line?.transaction?.phases ?? {}).sort()).to.deep.equal([
      'decide',
      'execute',
      'finish',
      'pend',
    ]);
    expect(line?.transaction?.ms).to.be.at.least(0);
    expect(line?.message).to.match(
      /: committed in [\d.]+ ms, 1 attempt \(execute [\d.]+, pend [\d.]+, decide [\d.]+, finish [\d.]+ ms\)$/,
    );

    const fast = await startNode({
      dataDir: join(root, 'fast'),
      config: loopback,
      version: 'test',
      slowTransactionMs: 60_000,
    });
    nodes.push(fast);
    await fast.database.createCollection('c', 'tree');
    expect(
      (await fast.database.transact({ actions: [{ collection: 'c', op: 'put', key: 'k', value: 1 }] })).ok,
    ).to.equal(true);
    expect(fast.hub.recentEvents().some((event) => event.message.startsWith('slow transaction'))).to.equal(
      false,
    );
  });

  it('finds its peers, agrees with them on the closest peers to a key, and sees one leave', async () => {
    const a = await start('a');
    const bootstrap = [a.hub.current()!.listenAddresses[0]!];
    const b = await start('b', { bootstrap });
    const c = await start('c', { bootstrap });
    await eventually(async () => (await c.peers()).length === 2 && (await b.peers()).length === 2);
    const closest = await Promise.all([a, b, c].map((node) => node.closest('accounts', 3)));
    const ids = closest.map((result) => result.peers.map((peer) => peer.id));
    expect(ids[1]).to.deep.equal(ids[0]);
    expect(ids[2]).to.deep.equal(ids[0]);
    expect(new Set(ids[0])).to.deep.equal(new Set([a.peerId, b.peerId, c.peerId]));
    expect(closest[0]!.keyKind).to.equal('text');
    const ping = await a.ping(b.peerId, 2);
    expect(ping.rttsMs).to.have.length(2);
    await c.close();
    await eventually(async () => !(await a.peers()).some((peer) => peer.id === c.peerId));
    const events = a.hub.recentEvents().map((event) => [event.kind, event.peerId]);
    expect(events).to.deep.include(['peer:connect', c.peerId]);
    expect(events).to.deep.include(['peer:disconnect', c.peerId]);
  });

  it('reports members reachable of known, and logs losing and regaining a majority of them', async () => {
    const a = await start('a');
    const bootstrap = [a.hub.current()!.listenAddresses[0]!];
    const b = await start('b', { bootstrap });
    const c = await start('c', { bootstrap });
    await eventually(async () => (await a.status()).members?.reachable === 3);
    expect((await a.status()).members).to.deep.equal({ known: 3, reachable: 3, unreachable: [] });
    // One of three away: still a majority, nothing logged; the status names it.
    const cId = c.peerId;
    await c.close();
    await eventually(async () => (await a.status()).members?.reachable === 2);
    const oneAway = (await a.status()).members!;
    expect(oneAway).to.include({ known: 3, reachable: 2 });
    expect(oneAway.unreachable!.map((member) => member.peerId)).to.deep.equal([cId]);
    expect(oneAway.unreachable![0]!.forMs).to.be.at.least(0).and.below(60_000);
    expect(oneAway.unreachable![0]!.lost).to.equal(true);
    const alarms = (): string[] =>
      a.hub
        .recentEvents()
        .filter(
          (event) => event.message.includes('majority') || event.message.includes('members are reachable'),
        )
        .map((event) => `${event.kind}: ${event.message}`);
    expect(alarms()).to.deep.equal([]);
    // Two of three away: no majority; said once, as an error.
    await b.close();
    await eventually(() => alarms().length === 1);
    expect(alarms()[0]).to.equal(
      'error: only 1 of the 3 members are reachable: reads and writes that need a majority answer NO_QUORUM until more of them are back',
    );
    const twoAway = (await a.status()).members!;
    expect(twoAway).to.include({ known: 3, reachable: 1 });
    // Longest gone first: c went before b.
    expect(twoAway.unreachable!.map((member) => member.peerId)).to.deep.equal([cId, b.peerId]);
    // One comes back: a majority again.
    const back = await start('b', { bootstrap });
    await back.connect(a.hub.current()!.listenAddresses[0]!).catch(() => undefined);
    await eventually(() => alarms().length === 2);
    expect(alarms()[1]).to.equal('info: a majority of the members is reachable again (2 of 3)');
  });

  it('answers light clients over libp2p, but keeps stop and dialling to its own control socket', async () => {
    const node = await start('a', { clients: 'any' });
    const local = await reachDatabase({ dataDir: join(root, 'a') });
    await local.createCollection('notes', 'diary');
    await local.transact({ actions: [{ collection: 'notes', op: 'append', value: 'hello' }] });
    await local.close();
    const clientKey = await generateKeyPair('Ed25519');
    const remote = await openLightClient({
      address: node.hub.current()!.listenAddresses[0]!,
      network: 'default',
      privateKey: clientKey,
    });
    remotes.push(remote);
    const entries = [];
    for await (const entry of remote.read('notes')) entries.push(entry);
    expect(entries).to.deep.equal([{ index: 0, value: 'hello' }]);
    expect((await remote.status()).peerId).to.equal(node.peerId);
    expect(isEngineError(await rejection(remote.stop()), 'BAD_INPUT')).to.equal(true);
    expect(isEngineError(await rejection(remote.connect('/ip4/127.0.0.1/tcp/1')), 'BAD_INPUT')).to.equal(
      true,
    );
    expect((await node.status()).uptimeMs).to.be.at.least(0);
    // Listed as a light client once it has identified itself (identify runs beside the requests).
    await eventually(async () =>
      (await node.peers()).some((peer) => peer.id === peerIdOf(clientKey) && peer.lightClient === true),
    );
    expect((await node.peers()).filter((peer) => peer.lightClient === true)).to.have.length(1);
    // A light client comes and goes with each command: it is not announced as a peer joining or leaving.
    await remote.close();
    await eventually(async () => !(await node.peers()).some((peer) => peer.id === peerIdOf(clientKey)));
    const aboutClient = node.hub.recentEvents().filter((event) => event.peerId === peerIdOf(clientKey));
    expect(aboutClient).to.deep.equal([]);
  });

  it('refuses a light client of another network', async () => {
    const node = await start('a', { network: 'alpha' });
    const error = await rejection(
      openLightClient({ address: node.hub.current()!.listenAddresses[0]!, network: 'beta' }).then(
        async (remote) => {
          remotes.push(remote);
          return remote.listCollections();
        },
      ),
    );
    expect(isEngineError(error)).to.equal(true);
  });

  it('feeds a remote dashboard from its status updates, and stops on request', async () => {
    const node = await start('a');
    const remote = await reachNode({ dataDir: join(root, 'a') });
    remotes.push(remote);
    const source = new RemoteStatusSource(remote);
    const first = await source.ready();
    expect(first.peerId).to.equal(node.peerId);
    expect(source.recentEvents().map((event) => event.kind)).to.include('node:start');
    await remote.stop();
    await node.stopped;
    await source.closed.catch(() => undefined);
    expect(existsSync(lockPath(join(root, 'a')))).to.equal(false);
  });
});
