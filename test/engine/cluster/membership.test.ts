import { expect } from 'chai';
import { EngineError } from '../../../src/engine/base/errors.js';
import { systemClock } from '../../../src/engine/base/clock.js';
import { SeededRng } from '../../../src/engine/base/rng.js';
import { Cluster } from '../../../src/engine/cluster/cluster.js';
import { Placement } from '../../../src/engine/cluster/placement.js';
import {
  ClusterRepoClient,
  serveRepoRequest,
  validateRepoRequest,
  type RepoServerParts,
} from '../../../src/engine/cluster/repo.js';
import type { NetworkNode } from '../../../src/engine/network/index.js';
import type { DirectRevision } from '../../../src/engine/storage/block-store.js';
import { MemoryRawStore } from '../../../src/engine/storage/memory-store.js';
import { VersionedBlockStore } from '../../../src/engine/storage/versioned-block-store.js';
import type { Certifier } from '../../../src/engine/transactions/certifier.js';
import { LocalRepo } from '../../../src/engine/transactions/local-repo.js';
import { clientAt, servingNetwork, storeWith } from './repo-harness.js';

/**
 * Members are learned from hellos, so a node that has not met a joiner computes smaller clusters than
 * the members that did. A write it counted as a majority of its smaller cluster could be a minority
 * of the cluster readers use (sim seeds 550 and 2881: a tail leader that restarted after two members
 * joined counted a promotion at 2 holders a majority of the 3 members it knew). Members therefore
 * name the members they know: a hello lists them, and a repo answer does when the asker's member
 * digest differs, so the asker counts those members before it counts a majority.
 */
const blockId = 'data-block'.padEnd(43, 'x');
const everyone = ['p0', 'p1', 'p2', 'p3', 'p4'];

const revision = (rev: number): DirectRevision => ({
  blockId,
  trxId: `t${rev}`,
  lsn: rev,
  baseRev: rev - 1,
  transform:
    rev === 1
      ? { kind: 'insert', block: { header: { id: blockId, type: 'TL' as const, collection: 'c' }, n: 1 } }
      : { kind: 'update', ops: [{ op: 'set', field: 'n', value: rev }] },
});

/**
 * Holders that serve the repo protocol to p0 and know every member (they met p3 and p4); p0 knows
 * only p1 and p2. A holder in `down` fails with UNAVAILABLE.
 */
function world(holders: Record<string, VersionedBlockStore>): {
  client: ClusterRepoClient;
  placement: Placement;
  down: Set<string>;
  sent: string[];
} {
  const down = new Set<string>();
  const sent: string[] = [];
  const network = {
    request(peer: string, _protocol: string, message: { type: string }) {
      sent.push(`${peer}.${message.type}`);
      if (down.has(peer) || holders[peer] === undefined)
        return Promise.reject(new EngineError('UNAVAILABLE', `${peer} is down`));
      const blocks = holders[peer];
      const placement = new Placement(peer, 5);
      for (const member of everyone) placement.add(member);
      const parts = {
        placement,
        blocks,
        repo: new LocalRepo({ blocks, certifier: {} as Certifier }, { members: [peer] }),
      } as unknown as RepoServerParts;
      const answer = serveRepoRequest(parts, validateRepoRequest(JSON.parse(JSON.stringify(message))), 'p0');
      return answer.then((value) => JSON.parse(JSON.stringify(value)) as unknown);
    },
  } as unknown as NetworkNode;
  const placement = new Placement('p0', 5);
  placement.add('p1');
  placement.add('p2');
  const client = new ClusterRepoClient({
    local: new LocalRepo({ blocks: holders['p0']!, certifier: {} as Certifier }, { members: ['p0'] }),
    blocks: holders['p0']!,
    placement,
    network: () => network,
    // As the cluster does: count each named member, and greet it — here, a reachable one is met at once.
    learn: (members) => {
      for (const member of members)
        if (placement.introduce(member) && holders[member] !== undefined && !down.has(member))
          placement.add(member);
    },
  });
  return { client, placement, down, sent };
}

describe('members learned from other members', () => {
  it('counts an introduced member in its clusters, unreachable until met, then welcomes it', () => {
    const placement = new Placement('p0', 5);
    placement.add('p1');
    const before = placement.digest();
    expect(placement.introduce('p2')).to.equal(true);
    expect(placement.introduce('p2')).to.equal(false);
    expect(placement.introduce('p0')).to.equal(false);
    expect(placement.clusterOf(blockId)).to.include('p2');
    expect(placement.isLive('p2')).to.equal(false);
    expect(placement.digest()).to.not.equal(before);
    // Met at last: new to this node as a member it talked to (the caller hands it its blocks).
    expect(placement.add('p2')).to.equal(true);
    expect(placement.add('p2')).to.equal(false);
    expect(placement.isLive('p2')).to.equal(true);
    const same = new Placement('p2', 5);
    same.add('p0');
    same.add('p1');
    expect(same.digest()).to.equal(placement.digest());
  });

  it('counts a write a majority only of the cluster the holders see, members it never met included', async () => {
    const holders = { p0: await storeWith(revision(1)), p1: await storeWith(revision(1)) };
    const { client, placement, down } = world(holders);
    down.add('p2');
    // Stored at p0 and p1: 2 of the 3 members p0 knew, but 2 of the 5 the holders know.
    const error = await client.apply([revision(2)]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(EngineError).with.property('code', 'NO_QUORUM');
    expect(placement.members()).to.deep.equal(everyone);
  });

  it('sends a write to the members an answer named, and counts them', async () => {
    const holders = {
      p0: await storeWith(revision(1)),
      p1: await storeWith(revision(1)),
      p3: await storeWith(revision(1)),
    };
    const { client, down, sent } = world(holders);
    down.add('p2');
    // p0 learns of p3 and p4 from p1's answer; p3 is reachable (met at once), p4 is not. The write
    // goes to p3 in a second round, and p0, p1 and p3 are 3 of the 5.
    await client.apply([revision(2)]);
    expect(sent).to.include('p3.apply');
    expect(sent).to.not.include('p4.apply');
    expect((await holders.p3.latest(blockId))?.rev).to.equal(2);
  });

  it('reads again from the cluster the answers named, so a newer revision on members it never met wins', async () => {
    // p3 and p4 hold revision 2, written by a node that knew them; p0 and p1 hold revision 1.
    const holders = {
      p0: await storeWith(revision(1)),
      p1: await storeWith(revision(1)),
      p3: await storeWith(revision(1), revision(2)),
      p4: await storeWith(revision(1), revision(2)),
    };
    const { client, down } = world(holders);
    down.add('p2');
    const state = await client.get({ blockId });
    expect(state?.rev).to.equal(2);
  });
});

describe('hellos that name members', () => {
  it('learns the members a peer names, remembers and greets them; answers a hello with its own', async () => {
    const remembered: string[] = [];
    const greeted: string[] = [];
    const served: ((request: unknown, context: { peerId: string }) => Promise<unknown>)[] = [];
    const network = {
      trust: () => undefined,
      handle: (_protocol: string, handler: (typeof served)[number]) => {
        served.push(handler);
        return Promise.resolve();
      },
      unhandle: () => Promise.resolve(),
      on: () => () => undefined,
      peers: () => [{ id: 'p1' }],
      request: (peer: string, _protocol: string, message: { type: string; members?: string[] }) => {
        greeted.push(peer);
        // p1 met p3 and p4; the others answer with what they were told.
        return Promise.resolve({
          peerId: peer,
          members: peer === 'p1' ? ['p1', 'p3', 'p4'] : message.members,
        });
      },
    } as unknown as NetworkNode;
    const cluster = new Cluster(
      {
        self: 'p0',
        blocks: new VersionedBlockStore(new MemoryRawStore()),
        proposer: { propose: () => Promise.reject(new EngineError('UNAVAILABLE', 'none here')) },
        clock: systemClock,
        rng: new SeededRng(1),
        catalog: () => Promise.resolve([]),
        rememberMember: (peer) => {
          remembered.push(peer);
          return Promise.resolve();
        },
      },
      { network: 'test', k: 5 },
    );
    await cluster.attach(network);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(cluster.members()).to.deep.equal(['p0', 'p1', 'p3', 'p4']);
    expect(greeted).to.include.members(['p1', 'p3', 'p4']);
    expect(remembered).to.include.members(['p1', 'p3', 'p4']);
    // A hello from p2 naming p5 teaches p5 too; the answer lists every member known here.
    const repoHandler = served[0]!;
    const answer = (await repoHandler({ type: 'hello', members: ['p2', 'p5'] }, { peerId: 'p2' })) as {
      members: string[];
    };
    expect(answer.members).to.include.members(['p0', 'p1', 'p2', 'p3', 'p4', 'p5']);
    expect(cluster.members()).to.include('p5');
    await cluster.detach();
  });
});

describe('handing a block to a member that joined its cluster', () => {
  it('hands over the newest state the cluster holds, not this node’s copy that fell behind', async () => {
    // p0's copy is at revision 1; p1 holds revision 2; p2 joined and holds nothing.
    const local = await storeWith(revision(1));
    const holders = { p1: await storeWith(revision(1), revision(2)), p2: await storeWith() };
    const { network } = servingNetwork(holders);
    await clientAt(local, network).handOff(blockId, 'p2');
    expect((await holders.p2.latest(blockId))?.rev).to.equal(2);
  });

  it('hands over nothing when too few of the other holders answered to know the newest state', async () => {
    // Handed p0's revision 1, p2 would count as a holder of a block whose revision 2 is on p1 alone
    // of the holders that answered (sim seed 2290: an entry on 2 of the 4 that held the block).
    const local = await storeWith(revision(1));
    const holders = { p1: await storeWith(revision(1), revision(2)), p2: await storeWith() };
    const { network, down } = servingNetwork(holders);
    down.add('p1');
    await clientAt(local, network).handOff(blockId, 'p2');
    expect(await holders.p2.latest(blockId)).to.equal(undefined);
  });
});
