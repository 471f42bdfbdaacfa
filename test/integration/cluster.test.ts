import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultNodeConfig, type NodeConfig } from '../../src/engine/config/schema.js';
import { openDatabase } from '../../src/engine/node/embedded.js';
import { startNode, type RunningNode } from '../../src/engine/node/node.js';
import { isEngineError } from '../../src/engine/base/errors.js';
import { checkCertificateAlone } from '../../src/engine/cluster/certifier.js';
import type { Cluster } from '../../src/engine/cluster/cluster.js';
import type { Certificate, LogBlock } from '../../src/engine/collections/log/log-block.js';
import type { NetworkNode } from '../../src/engine/network/index.js';
import { decisionMessage, Ed25519Identity, membershipHash } from '../../src/engine/transactions/certifier.js';
import type { PrepareRequest, PromoteRequest } from '../../src/engine/transactions/protocol.js';
import type { TxOutcome } from '../../src/engine/transactions/tx-types.js';

function clusterOf(node: RunningNode): Cluster {
  return (node as unknown as { distributed: { wiring: { cluster: Cluster } } }).distributed.wiring.cluster;
}

const loopback: NodeConfig = { ...defaultNodeConfig, listen: ['/ip4/127.0.0.1/tcp/0'] };

/** Prepares a transaction that reads and writes nothing at a collection's tail (it must prepare). */
async function prepareNothing(
  tails: Cluster['tails'],
  request: Pick<PrepareRequest, 'collection' | 'trxId' | 'participants' | 'expiresAt' | 'coordinator'>,
): Promise<void> {
  const view = await tails.view(request.collection);
  const outcome = await tails.prepare({
    ...request,
    baseLsn: view.stableLsn,
    reads: [],
    writes: [],
    actions: {},
  });
  expect(outcome.status).to.equal('prepared');
}

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

  /** Peers each node refuses (a partition), by data dir name. */
  const denied = new Map<string, Set<string>>();

  function start(name: string, config: NodeConfig = loopback): Promise<RunningNode> {
    const deny = denied.get(name) ?? new Set<string>();
    denied.set(name, deny);
    return startNode({
      dataDir: join(root, name),
      config,
      version: 'test',
      network: { connectionGater: { denyPeer: (peer) => deny.has(peer) } },
    });
  }

  async function network(count: number, clusterSize = loopback.clusterSize): Promise<RunningNode[]> {
    const first = await start('n0', { ...loopback, clusterSize });
    nodes.push(first);
    const bootstrap = (await first.status()).listenAddresses;
    for (let i = 1; i < count; i++) nodes.push(await start(`n${i}`, { ...loopback, clusterSize, bootstrap }));
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
    denied.clear();
    for (const node of nodes.splice(0)) await node.close().catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  });

  it('creates a collection on one node, writes through another and reads from a third', async () => {
    const [a, b, c] = await network(3);
    await a!.database.createCollection('accounts', 'tree');
    const put = await b!.database.transact(
      { actions: [{ collection: 'accounts', op: 'put', key: 'alice', value: { balance: 10 } }] },
      { certificates: true },
    );
    expect(put.ok, JSON.stringify(put)).to.equal(true);
    // The client gets the commit certificate, which verifies with nothing else at hand: a majority of
    // the tail group it names signed it.
    const certificate = put.ok ? put.commit['accounts']?.certificate : undefined;
    const check = checkCertificateAlone(JSON.parse(JSON.stringify(certificate)) as unknown);
    expect(check.status, check.detail).to.equal('verified');
    expect(check.members).to.have.members(nodes.map((node) => node.peerId));
    expect(check.signers!.length).to.be.at.least(2);
    const got = await c!.database.get('accounts', 'alice');
    expect(got.found).to.equal(true);
    expect(got.value).to.deep.equal({ balance: 10 });
    const listed = await c!.database.listCollections();
    expect(listed.map((info) => info.name)).to.deep.equal(['accounts']);
    // Each node's status counts what `collection list` shows, not only what was created through it
    // (the dashboard of b and c showed 0 collections).
    for (const node of [a!, b!, c!]) expect((await node.status()).collections).to.equal(1);
    // Every node holds the blocks (3 nodes < k), and the commit is certified by a majority of the tail group.
    const verification = await a!.database.verifyBlock(
      got.rev === 2 ? (await c!.database.collectionInfo('accounts')).root : '',
    );
    expect(verification.verified).to.equal(true);
    expect(verification.revisions.at(-1)!.signers!.length).to.be.at.least(2);
  });

  it('keeps the total of concurrent transfers through different nodes, every acknowledged one recorded', async () => {
    const all = await network(5);
    await all[0]!.database.createCollection('accounts', 'tree');
    await all[1]!.database.createCollection('ledger', 'diary');
    const accounts = ['a0', 'a1', 'a2', 'a3', 'a4', 'a5'];
    const seed = await all[2]!.database.transact({
      actions: accounts.map((key) => ({
        collection: 'accounts',
        op: 'put' as const,
        key,
        value: { balance: 100 },
      })),
    });
    expect(seed.ok, JSON.stringify(seed)).to.equal(true);
    let counter = 0;
    const acknowledged: number[] = [];
    const failed: string[] = [];
    await Promise.all(
      all.slice(0, 3).map(async (node, client) => {
        for (let i = 0; i < 4; i++) {
          const id = counter++;
          const from = accounts[(client + i) % accounts.length]!;
          const to = accounts[(client + i * 3 + 1) % accounts.length]!;
          if (from === to) continue;
          const amount = 1 + ((id * 7) % 40);
          const outcome = await node.database.transact({
            actions: [
              { collection: 'accounts', op: 'incr', key: from, path: 'balance', by: -amount, min: 0 },
              { collection: 'accounts', op: 'incr', key: to, path: 'balance', by: amount },
              { collection: 'ledger', op: 'append', value: { id, from, to, amount } },
            ],
          });
          if (outcome.ok) acknowledged.push(id);
          else failed.push(outcome.error.code);
        }
      }),
    );
    // Contention on one diary may exhaust a transaction's replays (CONFLICT); nothing else may fail.
    expect(acknowledged.length).to.be.greaterThan(5);
    expect(failed.filter((code) => code !== 'EXPECT_FAILED' && code !== 'CONFLICT')).to.deep.equal([]);
    const reader = all[4]!.database;
    const balances = new Map<string, number>();
    for await (const { key, value } of reader.scan('accounts'))
      balances.set(key, (value as { balance: number }).balance);
    const total = [...balances.values()].reduce((sum, b) => sum + b, 0);
    expect(total).to.equal(100 * accounts.length);
    for (const balance of balances.values()) expect(balance).to.be.at.least(0);
    const recorded: { id: number; from: string; to: string; amount: number }[] = [];
    for await (const { value } of reader.read('ledger')) recorded.push(value as (typeof recorded)[number]);
    expect(recorded.map((r) => r.id).sort((x, y) => x - y)).to.deep.equal(
      [...acknowledged].sort((x, y) => x - y),
    );
    const replayed = new Map(accounts.map((key) => [key, 100]));
    for (const r of recorded) {
      replayed.set(r.from, replayed.get(r.from)! - r.amount);
      replayed.set(r.to, replayed.get(r.to)! + r.amount);
    }
    expect(Object.fromEntries(balances)).to.deep.equal(Object.fromEntries(replayed));
  });

  it('leaves no trace in the first collection when the second fails its guard', async () => {
    const [a, b] = await network(3);
    await a!.database.createCollection('left', 'tree');
    await a!.database.createCollection('right', 'tree');
    await b!.database.transact({ actions: [{ collection: 'right', op: 'put', key: 'k', value: { n: 0 } }] });
    const outcome = await b!.database.transact({
      actions: [
        { collection: 'left', op: 'put', key: 'x', value: 1 },
        { collection: 'right', op: 'incr', key: 'k', path: 'n', by: -1, min: 0 },
      ],
    });
    expect(outcome.ok).to.equal(false);
    expect((await a!.database.get('left', 'x')).found).to.equal(false);
    const info = await a!.database.collectionInfo('left');
    expect(info.rev).to.equal(1);
  });

  it('lets the majority side of a partition go on, and the minority refuses with NO_QUORUM', async () => {
    const all = await network(5);
    await all[0]!.database.createCollection('p', 'tree');
    expect(
      (await all[1]!.database.transact({ actions: [{ collection: 'p', op: 'put', key: 'k', value: 1 }] })).ok,
    ).to.equal(true);
    const minority = all.slice(0, 2);
    const majority = all.slice(2);
    for (const i of all.keys()) {
      const other = i < 2 ? majority : minority;
      for (const peer of other) denied.get(`n${i}`)!.add(peer.peerId);
    }
    for (const node of minority)
      for (const peer of majority)
        await (node as unknown as { network: { disconnect(p: string): Promise<void> } }).network.disconnect(
          peer.peerId,
        );
    await eventually(
      async () => (await all[0]!.peers()).length === 1 && (await all[2]!.peers()).length === 2,
    );
    const refused = await minority[0]!.database.transact({
      actions: [{ collection: 'p', op: 'put', key: 'k', value: 2 }],
    });
    expect(refused.ok).to.equal(false);
    if (!refused.ok) expect(refused.error.code).to.equal('NO_QUORUM');
    // The majority elects a new leader if it lost it, then commits.
    let committed = false;
    const deadline = Date.now() + 30_000;
    while (!committed && Date.now() < deadline) {
      const outcome = await majority[0]!.database.transact({
        actions: [{ collection: 'p', op: 'put', key: 'k', value: 3 }],
      });
      committed = outcome.ok;
      if (!committed) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(committed).to.equal(true);
    expect((await majority[2]!.database.get('p', 'k')).value).to.equal(3);
    // Healed: the minority sees what the majority committed, never its own refused write.
    for (const deny of denied.values()) deny.clear();
    for (const node of minority)
      for (const peer of majority) await node.connect((await peer.status()).listenAddresses[0]!);
    await eventually(async () => (await all[0]!.peers()).length === 4);
    await eventually(async () => {
      const got = await minority[1]!.database.get('p', 'k').catch(() => undefined);
      return got?.value === 3;
    });
  });

  /**
   * Three nodes where the third (`c`) missed a commit: `acct/x` is n = 1, then n = 2 is committed while
   * c is cut off and checkpointed, and c rejoins with its own copy of the leaf still at n = 1.
   */
  async function nodeWithStaleCopy(): Promise<{ a: RunningNode; b: RunningNode; c: RunningNode }> {
    const all = await network(3);
    const [a, b, c] = all as [RunningNode, RunningNode, RunningNode];
    await a.database.createCollection('acct', 'tree');
    const put = (n: number) => ({
      actions: [{ collection: 'acct', op: 'put' as const, key: 'x', value: { n } }],
    });
    expect((await a.database.transact(put(1))).ok).to.equal(true);
    // c is cut off while the others commit n = 2.
    for (const other of [a, b]) {
      denied.get('n2')!.add(other.peerId);
      denied.get(all.indexOf(other) === 0 ? 'n0' : 'n1')!.add(c.peerId);
      await (c as unknown as { network: { disconnect(p: string): Promise<void> } }).network.disconnect(
        other.peerId,
      );
    }
    await eventually(async () => (await c.peers()).length === 0 && (await a.peers()).length === 1);
    let committed = false;
    for (const deadline = Date.now() + 30_000; !committed && Date.now() < deadline;) {
      committed = (await a.database.transact(put(2))).ok;
      if (!committed) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(committed).to.equal(true);
    // Checkpointed: a reader is no longer told to reinforce that commit.
    await eventually(async () => (await clusterOf(a).tails.view('acct')).uncheckpointed.length === 0);
    for (const deny of denied.values()) deny.clear();
    for (const peer of [a, b]) await c.connect((await peer.status()).listenAddresses[0]!);
    await eventually(async () => (await c.peers()).length === 2);
    // c's own copy is behind: it must not be what c answers from.
    const leaf = (await a.database.collectionInfo('acct')).root;
    const revAt = async (node: RunningNode): Promise<number> =>
      (
        await (
          node as unknown as {
            solo: { blocks: { latest(id: string): Promise<{ rev: number } | undefined> } };
          }
        ).solo.blocks.latest(leaf)
      )?.rev ?? 0;
    expect(await revAt(c)).to.be.lessThan(await revAt(a));
    return { a, b, c };
  }

  it('judges a guarded write through a node whose copy missed a commit on the data, not on that copy', async () => {
    const { b, c } = await nodeWithStaleCopy();
    // A guarded write through c: on c's stale copy (n = 1) the guard would fail; on the data (n = 2)
    // it holds. The guard also makes a repeat harmless (a second -2 would go below 0), so a write
    // whose outcome was in doubt while the group settles after healing may be sent again.
    const transient = ['NO_QUORUM', 'UNAVAILABLE', 'TIMEOUT'];
    let write: TxOutcome | undefined;
    for (const deadline = Date.now() + 30_000; ;) {
      write = await c.database.transact({
        actions: [{ collection: 'acct', op: 'incr', key: 'x', path: 'n', by: -2, min: 0 }],
      });
      if (write.ok || !transient.includes(write.error.code) || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    // Ok — or EXPECT_FAILED only because an earlier, in-doubt attempt already applied it.
    await eventually(async () => {
      const now = await b.database.get('acct', 'x').catch(() => undefined);
      return JSON.stringify(now?.value) === JSON.stringify({ n: 0 });
    }, 45_000);
    const outcome = write;
    if (!outcome.ok) expect(outcome.error.code, JSON.stringify(outcome)).to.equal('EXPECT_FAILED');
    // A read through c sees it too.
    const read = await c.database.transact({ actions: [{ collection: 'acct', op: 'get', key: 'x' }] });
    expect(read.ok, JSON.stringify(read)).to.equal(true);
    if (read.ok) expect(read.results[0]).to.deep.include({ value: { n: 0 } });
  });

  it('reads through a node whose copy missed a commit what the others hold', async () => {
    const { c } = await nodeWithStaleCopy();
    // Reads need no consensus: the first one through c already answers the data.
    const read = await c.database.transact({ actions: [{ collection: 'acct', op: 'get', key: 'x' }] });
    expect(read.ok, JSON.stringify(read)).to.equal(true);
    if (read.ok) expect(read.results[0]).to.deep.include({ value: { n: 2 } });
  });

  it('loses no acknowledged commit when the leader of a tail group stops mid-stream and comes back', async () => {
    const all = await network(3);
    await all[0]!.database.createCollection('s', 'diary');
    const info = await all[0]!.database.collectionInfo('s');
    const cluster = clusterOf(all[0]!);
    const tail = await cluster.reader.latest(info.tail);
    const members = (tail!.block as unknown as { members: string[] }).members;
    const leaderId = cluster.placement.leaderOf(info.tail, members)!;
    const leaderIndex = all.findIndex((node) => node.peerId === leaderId);
    const writer = all[(leaderIndex + 1) % 3]!;
    const acknowledged: number[] = [];
    let stop = false;
    const writing = (async () => {
      for (let i = 0; !stop && i < 400; i++) {
        const outcome = await writer.database.transact({
          actions: [{ collection: 's', op: 'append', value: i }],
        });
        if (outcome.ok) acknowledged.push(i);
        else await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    await eventually(() => acknowledged.length >= 5);
    const leader = all[leaderIndex]!;
    const leaderName = `n${leaderIndex}`;
    await leader.close();
    const before = acknowledged.length;
    await eventually(() => acknowledged.length >= before + 5, 30_000);
    const restarted = await start(leaderName);
    all[leaderIndex] = restarted;
    nodes.push(restarted);
    for (const node of all)
      if (node !== restarted) await restarted.connect((await node.status()).listenAddresses[0]!);
    const after = acknowledged.length;
    await eventually(() => acknowledged.length >= after + 5, 30_000);
    stop = true;
    await writing;
    const values: number[] = [];
    for await (const { value } of restarted.database.read('s')) values.push(value as number);
    for (const i of acknowledged) expect(values, `acknowledged append ${i}`).to.include(i);
    expect(new Set(values).size).to.equal(values.length);
  });

  it('rejects forged, replayed and wrong-membership certificates at block holders', async () => {
    const [a, b] = await network(3);
    await a!.database.createCollection('f', 'tree');
    expect(
      (await b!.database.transact({ actions: [{ collection: 'f', op: 'put', key: 'k', value: 1 }] })).ok,
    ).to.equal(true);
    const cluster = clusterOf(a!);
    const info = await a!.database.collectionInfo('f');
    const log = (await cluster.reader.latest(info.tail))!.block as LogBlock;
    const genuine = log.entries.at(-1)!.certificate;
    expect(cluster.certifier.verify(genuine, log.members)).to.equal(true);
    const root = (await cluster.reader.latest(info.root))!;
    const trxId = 'forged-transaction-0001';
    const pended = await cluster.repo.pend([
      {
        trxId,
        blockId: info.root,
        collection: 'f',
        baseRev: root.rev,
        transform: { kind: 'update', ops: [{ op: 'set', field: 'entries', value: [] }] },
        expiresAt: Date.now() + 60_000,
      },
    ]);
    expect(pended.ok).to.equal(true);
    const promote = (proof: Certificate[]): PromoteRequest => ({
      trxId,
      lsn: genuine.lsn + 1,
      blockIds: [info.root],
      proof,
    });
    // Replayed: a real certificate of another transaction.
    // Forged: the real certificate with this transaction's id (signatures no longer match).
    // Wrong membership: a quorum of made-up members who did sign this transaction's commit.
    const fakes = [Ed25519Identity.generate(), Ed25519Identity.generate(), Ed25519Identity.generate()];
    const fakeMembers = fakes.map((f) => f.peerId).sort();
    const fields = { ...genuine, trxId, lsn: genuine.lsn + 1, membership: membershipHash(fakeMembers) };
    const {
      signatures: _drop,
      members: _members,
      consensus: _consensus,
      ...plain
    } = fields as typeof fields & { members?: unknown; consensus?: unknown };
    const made = {
      ...plain,
      members: fakeMembers,
      signatures: fakes.map((f) => ({
        member: f.peerId,
        signature: f.sign(decisionMessage(plain)),
      })),
    } as Certificate;
    expect(cluster.certifier.verify(made, fakeMembers)).to.equal(true); // valid signatures, wrong group
    const holder = b!.peerId;
    const libp2p = (a as unknown as { network: NetworkNode }).network;
    for (const [what, proof] of [
      ['replayed', [genuine]],
      ['forged', [{ ...genuine, trxId }]],
      ['wrong membership', [made]],
    ] as const) {
      const viaClient = await cluster.repo.promote(promote([...proof])).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(
        isEngineError(viaClient, 'BAD_CERTIFICATE'),
        `${what} through the client: ${String(viaClient)}`,
      ).to.equal(true);
      const direct = await libp2p
        .request(holder, 'repo', { type: 'promote', request: promote([...proof]) })
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      expect(
        isEngineError(direct, 'BAD_CERTIFICATE'),
        `${what} sent to a holder: ${String(direct)}`,
      ).to.equal(true);
    }
    expect((await cluster.reader.latest(info.root))!.rev).to.equal(root.rev);
    expect((await b!.database.get('f', 'k')).value).to.equal(1);
  });

  it('hands blocks to peers that join their clusters later, so the data outlives its first node', async () => {
    const a = await start('n0');
    nodes.push(a);
    await a.database.createCollection('early', 'tree');
    const keys = Array.from({ length: 20 }, (_, i) => `k${String(i).padStart(2, '0')}`);
    for (const key of keys)
      expect(
        (await a.database.transact({ actions: [{ collection: 'early', op: 'put', key, value: key }] })).ok,
      ).to.equal(true);
    const b = await start('n1');
    const c = await start('n2');
    nodes.push(b, c);
    for (const [x, y] of [
      [a, b],
      [a, c],
      [b, c],
    ] as const)
      await x.connect((await y.status()).listenAddresses[0]!);
    // The collection's tail group grows to the three members (seals), and the blocks reach them.
    await eventually(async () => {
      const info = await a.database.collectionInfo('early');
      const tail = (await clusterOf(a).reader.latest(info.tail))?.block as LogBlock | undefined;
      return tail?.members.length === 3;
    });
    const held = (await a.status()).storage.blocks;
    await eventually(
      async () => (await b.status()).storage.blocks >= held && (await c.status()).storage.blocks >= held,
    );
    await a.close();
    const scanned: string[] = [];
    for await (const { key } of c.database.scan('early')) scanned.push(key);
    expect(scanned).to.deep.equal(keys);
    // Two of the three members of the grown group are a majority: the collection takes writes.
    const late = await b.database.transact({
      actions: [{ collection: 'early', op: 'put', key: 'late', value: 1 }],
    });
    expect(late.ok, JSON.stringify(late)).to.equal(true);
    expect((await c.database.get('early', 'late')).value).to.equal(1);
  });

  it('does not merge two databases whose nodes meet: each refuses the other, and both keep their own data', async () => {
    // Each directory became a database of its own (as `npm start` makes one in ~/.optimystic), both
    // with a collection named accounts.
    for (const [name, keys] of [
      ['n0', ['alice', 'bob']],
      ['n1', ['alice', 'carol']],
    ] as const) {
      const db = await openDatabase({ dataDir: join(root, name) });
      await db.createCollection('accounts', 'tree');
      await db.createCollection(`only-${name}`, 'diary');
      for (const key of keys)
        expect(
          (await db.transact({ actions: [{ collection: 'accounts', op: 'put', key, value: name }] })).ok,
        ).to.equal(true);
      await db.close();
    }
    const a = await start('n0');
    nodes.push(a);
    const b = await start('n1', { ...loopback, bootstrap: (await a.status()).listenAddresses });
    nodes.push(b);
    await eventually(
      () => clusterOf(a).foreignPeers().has(b.peerId) && clusterOf(b).foreignPeers().has(a.peerId),
    );
    const refusals = (node: RunningNode, peer: string) =>
      node.hub
        .recentEvents()
        .filter((e) => e.kind === 'error' && e.peerId === peer && e.message.includes('another database'));
    expect(refusals(a, b.peerId)).to.have.length(1);
    expect(refusals(b, a.peerId)).to.have.length(1);
    expect(clusterOf(a).foreignPeers().get(b.peerId)?.collection).to.equal('accounts');
    expect((await a.status()).members?.foreign).to.deep.equal([{ peerId: b.peerId, collection: 'accounts' }]);
    // An empty node joins a's database; once it holds a's blocks, it meets b, and they refuse each
    // other too (b checks this node's copies of its collections: the `marks` request).
    denied.set('n2', new Set([b.peerId]));
    const c = await start('n2', { ...loopback, bootstrap: (await a.status()).listenAddresses });
    nodes.push(c);
    await eventually(
      () => clusterOf(a).placement.isLive(c.peerId) && clusterOf(c).placement.isLive(a.peerId),
    );
    await eventually(async () => (await c.status()).storage.blocks >= (await a.status()).storage.blocks);
    denied.get('n2')!.delete(b.peerId);
    await c.connect((await b.status()).listenAddresses[0]!);
    await eventually(
      () => clusterOf(c).foreignPeers().has(b.peerId) && clusterOf(b).foreignPeers().has(c.peerId),
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(clusterOf(a).placement.isMember(b.peerId)).to.equal(false);
    expect(clusterOf(c).placement.isMember(b.peerId)).to.equal(false);
    expect(clusterOf(b).placement.members()).to.deep.equal([b.peerId]);
    const keys = async (node: RunningNode) => {
      const found: string[] = [];
      for await (const { key, value } of node.database.scan('accounts'))
        found.push(`${key}=${value as string}`);
      return found;
    };
    expect(await keys(a)).to.deep.equal(['alice=n0', 'bob=n0']);
    expect(await keys(c)).to.deep.equal(['alice=n0', 'bob=n0']);
    expect(await keys(b)).to.deep.equal(['alice=n1', 'carol=n1']);
    // Each still takes writes of its own, and neither sees the other's.
    for (const [node, key] of [
      [a, 'dave'],
      [b, 'erin'],
    ] as const)
      expect(
        (
          await node.database.transact({
            actions: [{ collection: 'accounts', op: 'put', key, value: 'late' }],
          })
        ).ok,
      ).to.equal(true);
    expect(await keys(c)).to.deep.equal(['alice=n0', 'bob=n0', 'dave=late']);
    expect(await keys(b)).to.deep.equal(['alice=n1', 'carol=n1', 'erin=late']);
    expect((await c.database.listCollections()).map((x) => x.name)).to.not.include('only-n1');
  });

  it('finishes a multi-collection transaction whose coordinator vanished after preparing (the tails decide)', async () => {
    const all = await network(3);
    await all[0]!.database.createCollection('x', 'tree');
    await all[0]!.database.createCollection('y', 'tree');
    const tails = clusterOf(all[1]!).tails;
    const prepare = (trxId: string, collection: string, participants: string[]): Promise<void> =>
      prepareNothing(tails, { collection, trxId, participants, expiresAt: Date.now() + 300 });
    // Both prepared, then the coordinator is gone: both commit. Only x prepared: x aborts.
    await prepare('both-prepared-000000001', 'x', ['x', 'y']);
    await prepare('both-prepared-000000001', 'y', ['x', 'y']);
    await prepare('half-prepared-000000001', 'x', ['x', 'y']);
    await new Promise((resolve) => setTimeout(resolve, 400));
    await eventually(async () => {
      for (const node of all) await clusterOf(node).tailHost.resolveExpired(Date.now());
      const outcomes = await Promise.all([
        tails.outcomeOf('x', 'both-prepared-000000001'),
        tails.outcomeOf('y', 'both-prepared-000000001'),
        tails.outcomeOf('x', 'half-prepared-000000001'),
      ]);
      return outcomes.join() === 'committed,committed,aborted';
    }, 40_000);
    // The collections are usable again (no prepared entry holds their snapshot back).
    const after = await all[2]!.database.transact({
      actions: [{ collection: 'x', op: 'put', key: 'k', value: 1 }],
    });
    expect(after.ok).to.equal(true);
  });

  it('decides at once what a restarted node\u2019s previous process left prepared, long before it expires', async () => {
    const all = await network(3);
    await all[0]!.database.createCollection('x', 'tree');
    await all[0]!.database.createCollection('y', 'tree');
    // Node 1's previous process (an incarnation it no longer has) prepared two transactions and
    // died: one prepared in both collections, one in x only. Neither expires for a minute.
    const oldSelf = `${all[1]!.peerId}:old.1`;
    const tails = clusterOf(all[1]!).tails;
    const prepare = (trxId: string, collection: string): Promise<void> =>
      prepareNothing(tails, {
        collection,
        trxId,
        participants: ['x', 'y'],
        expiresAt: Date.now() + 60_000,
        coordinator: oldSelf,
      });
    await prepare('both-prepared-000000002', 'x');
    await prepare('both-prepared-000000002', 'y');
    await prepare('half-prepared-000000002', 'x');
    // Node 1 restarts: its hello names its new incarnation, and the tails decide the old one's entries.
    await all[1]!.close();
    const restarted = await start('n1');
    all[1] = restarted;
    nodes.push(restarted);
    for (const node of all)
      if (node !== restarted) await restarted.connect((await node.status()).listenAddresses[0]!);
    const started = Date.now();
    await eventually(async () => {
      const outcomes = await Promise.all([
        clusterOf(all[2]!).tails.outcomeOf('x', 'both-prepared-000000002'),
        clusterOf(all[2]!).tails.outcomeOf('y', 'both-prepared-000000002'),
        clusterOf(all[2]!).tails.outcomeOf('x', 'half-prepared-000000002'),
      ]);
      return outcomes.join() === 'committed,committed,aborted';
    }, 20_000);
    expect(Date.now() - started).to.be.below(20_000);
  });

  it('keeps each block on its k nearest members only, and a peer outside a cluster redirects', async () => {
    const all = await network(4, 2);
    await all[0]!.database.createCollection('spread', 'tree');
    const keys = Array.from({ length: 30 }, (_, i) => `key-${i}`);
    for (const key of keys) {
      const outcome = await all[1]!.database.transact({
        actions: [{ collection: 'spread', op: 'put', key, value: key }],
      });
      expect(outcome.ok, JSON.stringify(outcome)).to.equal(true);
    }
    const info = await all[3]!.database.collectionInfo('spread');
    const holders = await all[2]!.database.blockHolders(info.root);
    expect(holders).to.have.length(2);
    for (const holder of holders) expect(holder.rev, holder.peer).to.be.a('number');
    const outsider = all.find((node) => !holders.some((holder) => holder.peer === node.peerId))!;
    expect(await clusterOf(outsider).holder.get({ blockId: info.root })).to.equal(undefined);
    const asker = all.find((node) => node !== outsider)!;
    const answer = await (asker as unknown as { network: NetworkNode }).network.request(
      outsider.peerId,
      'repo',
      {
        type: 'get',
        blockId: info.root,
      },
    );
    expect(answer).to.deep.equal({ redirect: holders.map((holder) => holder.peer) });
    const scanned: string[] = [];
    for await (const { key } of outsider.database.scan('spread')) scanned.push(key);
    expect(scanned).to.deep.equal([...keys].sort());
  });
});
