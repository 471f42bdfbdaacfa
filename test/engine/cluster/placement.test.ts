import { expect } from 'chai';
import { systemClock } from '../../../src/engine/base/clock.js';
import { EngineError } from '../../../src/engine/base/errors.js';
import { SeededRng } from '../../../src/engine/base/rng.js';
import { Cluster } from '../../../src/engine/cluster/cluster.js';
import { Placement } from '../../../src/engine/cluster/placement.js';
import { leadershipOrder } from '../../../src/engine/consensus/values.js';
import type { NetworkNode } from '../../../src/engine/network/index.js';
import { MemoryRawStore } from '../../../src/engine/storage/memory-store.js';
import { VersionedBlockStore } from '../../../src/engine/storage/versioned-block-store.js';

const peers = ['p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7'];

describe('placement', () => {
  it('puts a block on the k members nearest it, the same order consensus leads in', () => {
    const placement = new Placement('p1', 5);
    for (const peer of peers.slice(1)) placement.add(peer);
    const block = 'A'.repeat(43);
    expect(placement.clusterOf(block)).to.deep.equal(leadershipOrder(block, peers).slice(0, 5));
  });

  it('keeps a disconnected member in its clusters, so a partition never shrinks a quorum', () => {
    const placement = new Placement('p1', 5);
    for (const peer of peers.slice(1, 5)) placement.add(peer);
    const block = 'B'.repeat(43);
    const before = placement.clusterOf(block);
    placement.remove('p2');
    placement.remove('p3');
    expect(placement.clusterOf(block)).to.deep.equal(before);
    expect(placement.hasQuorum(before)).to.equal(true);
    placement.remove('p4');
    expect(placement.hasQuorum(before)).to.equal(false);
    expect(placement.leaderOf(block, before)).to.be.oneOf(['p1', 'p5']);
  });

  it('tells members cut off (their connection closed, none since) from members not met yet', () => {
    const placement = new Placement('p1', 5, ['p2', 'p3']);
    // Known from before a restart but not connected yet: dialled and waited for, not cut off.
    expect(placement.isCutOff('p2')).to.equal(false);
    placement.connected('p2');
    placement.add('p4');
    placement.remove('p2');
    placement.remove('p4');
    expect(placement.isCutOff('p2')).to.equal(true);
    expect(placement.isCutOff('p4')).to.equal(true);
    expect(placement.isCutOff('p3')).to.equal(false);
    expect(placement.isCutOff('p1')).to.equal(false);
    // Back through a connection, or through a hello: no longer cut off.
    placement.connected('p2');
    placement.add('p4');
    expect(placement.isCutOff('p2')).to.equal(false);
    expect(placement.isCutOff('p4')).to.equal(false);
    // A peer that was never a member is never cut off; an evicted one no longer.
    placement.remove('p9');
    expect(placement.isCutOff('p9')).to.equal(false);
    placement.remove('p4');
    placement.evict('p4');
    expect(placement.isCutOff('p4')).to.equal(false);
  });

  it('remembers members it knew before a restart, live or not', () => {
    const placement = new Placement('p1', 3, ['p2', 'p3']);
    expect(placement.members()).to.deep.equal(['p1', 'p2', 'p3']);
    expect(placement.isLive('p2')).to.equal(false);
    expect(placement.add('p2')).to.equal(false);
    expect(placement.isLive('p2')).to.equal(true);
    expect(placement.add('p4')).to.equal(true);
  });
});

describe('cluster membership of new groups', () => {
  function cluster(): Cluster {
    return new Cluster(
      {
        self: 'p1',
        blocks: new VersionedBlockStore(new MemoryRawStore()),
        proposer: {
          propose: () => Promise.reject(new EngineError('UNAVAILABLE', 'no consensus in this test')),
        },
        clock: systemClock,
        rng: new SeededRng(1),
        catalog: () => Promise.resolve([]),
        knownMembers: peers.slice(1, 5),
      },
      { network: 'test', k: 5 },
    );
  }

  it('records a new log block with its cluster, leaving out members proven to equivocate', () => {
    const c = cluster();
    const block = 'C'.repeat(43);
    expect(c.membersFor(block)).to.deep.equal(c.placement.clusterOf(block));
    c.exclude('p3');
    expect(c.membersFor(block)).to.not.include('p3');
    expect(c.membersFor(block)).to.have.length(4);
  });

  it('counts a member it knew before a restart as live once connected, before its hello is answered', async () => {
    // A restarted node refused its members' requests ("only members …", BAD_INPUT) until its own
    // hello came back, and a coordinator took that answer for final (sim seed 861 with introductions).
    const listeners = new Map<string, (peer: string) => void>();
    const network = {
      trust: () => undefined,
      handle: () => Promise.resolve(),
      unhandle: () => Promise.resolve(),
      on(event: string, listener: (peer: string) => void) {
        listeners.set(event, listener);
        return () => listeners.delete(event);
      },
      peers: () => [],
      // Hellos are not answered yet.
      request: () => new Promise(() => undefined),
    } as unknown as NetworkNode;
    const c = cluster();
    await c.attach(network);
    expect(c.placement.isLive('p2')).to.equal(false);
    listeners.get('peer:connect')!('p2');
    listeners.get('peer:connect')!('x9');
    expect(c.placement.isLive('p2')).to.equal(true);
    expect(c.placement.isLive('x9')).to.equal(false);
    expect(c.placement.isMember('x9')).to.equal(false);
    await c.detach();
  });

  it('runs a consensus group only for its block cluster or the group recorded in its log block', async () => {
    const c = cluster();
    const block = 'D'.repeat(43);
    const members = [...c.placement.clusterOf(block)].sort();
    expect(await c.admitGroup({ blockId: block, members })).to.equal(true);
    expect(await c.admitGroup({ blockId: block, members: ['p1', 'x1', 'x2'] })).to.equal(false);
  });
});
