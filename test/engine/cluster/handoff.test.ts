import { expect } from 'chai';
import { EngineError } from '../../../src/engine/base/errors.js';
import { Placement } from '../../../src/engine/cluster/placement.js';
import { ClusterRepoClient } from '../../../src/engine/cluster/repo.js';
import { leadershipOrder } from '../../../src/engine/consensus/values.js';
import type { NetworkNode } from '../../../src/engine/network/index.js';
import { MemoryRawStore } from '../../../src/engine/storage/memory-store.js';
import { VersionedBlockStore } from '../../../src/engine/storage/versioned-block-store.js';
import type { Certifier } from '../../../src/engine/transactions/certifier.js';
import { LocalRepo } from '../../../src/engine/transactions/local-repo.js';

/**
 * Reads while a block's cluster grows (docs/cluster.md, "Members joining"): members that joined the
 * cluster and were not handed the block yet answer without it; they are no votes for its absence.
 */
const self = 'p0';
const others = ['p1', 'p2', 'p3', 'p4', 'p5', 'p6'];
const k = 3;

/** A block id whose cluster (k = 3 of 7) does not include this node, and the members by nearness. */
function blockAwayFromSelf(): { blockId: string; order: string[] } {
  for (let i = 0; ; i++) {
    const blockId = `block-${i}`.padEnd(43, 'x');
    const order = leadershipOrder(blockId, [self, ...others]);
    if (order.indexOf(self) >= k + 2) return { blockId, order: order.filter((m) => m !== self) };
  }
}

/** How a member answers a `get`: its revision (0: it does not hold the block), after `ms`; or never/down. */
type Behaviour = { rev: number; ms: number } | 'down' | 'silent';

function harness(behaviour: (member: string) => Behaviour) {
  const asked: string[] = [];
  const network = {
    request(peer: string, _protocol: string, request: { type: string; blockId: string }) {
      asked.push(peer);
      const how = behaviour(peer);
      if (how === 'down') return Promise.reject(new EngineError('UNAVAILABLE', `${peer} is down`));
      if (how === 'silent') return new Promise(() => undefined);
      const answer =
        how.rev === 0
          ? null
          : { id: request.blockId, rev: how.rev, lsn: how.rev, trxId: `t${how.rev}`, block: {} };
      return new Promise((resolve) => setTimeout(() => resolve(answer), how.ms));
    },
  } as unknown as NetworkNode;
  const blocks = new VersionedBlockStore(new MemoryRawStore());
  const placement = new Placement(self, k);
  for (const peer of others) placement.add(peer);
  const local = new LocalRepo({ blocks, certifier: {} as Certifier }, { members: [self] });
  const repo = new ClusterRepoClient({ local, blocks, placement, network: () => network });
  return { repo, asked };
}

describe('reads while members join a block cluster', () => {
  it('does not take two joiners that lack a block for a majority saying it is absent', async () => {
    const { blockId, order } = blockAwayFromSelf();
    const [joinerA, joinerB] = order;
    const { repo } = harness((member) =>
      member === joinerA || member === joinerB ? { rev: 0, ms: 1 } : { rev: 2, ms: 20 },
    );
    const state = await repo.get({ blockId });
    expect(state?.rev).to.equal(2);
  });

  it('asks the holders the joiners displaced when the cluster has too few holders to answer', async () => {
    const { blockId, order } = blockAwayFromSelf();
    const [joinerA, joinerB, holderDown, displacedA, displacedB] = order;
    const { repo, asked } = harness((member) => {
      if (member === joinerA || member === joinerB) return { rev: 0, ms: 1 };
      if (member === holderDown) return 'down';
      if (member === displacedA) return { rev: 3, ms: 5 };
      if (member === displacedB) return { rev: 2, ms: 5 };
      return { rev: 0, ms: 1 };
    });
    const state = await repo.get({ blockId });
    expect(state?.rev).to.equal(3);
    expect(asked).to.include.members([displacedA, displacedB]);
  });

  it('answers from the first majority of holders in steady state, asking nobody else', async () => {
    const { blockId, order } = blockAwayFromSelf();
    const cluster = order.slice(0, k);
    const { repo, asked } = harness((member) =>
      member === cluster[2] ? 'silent' : cluster.includes(member) ? { rev: 4, ms: 1 } : { rev: 4, ms: 1 },
    );
    const state = await repo.get({ blockId });
    expect(state?.rev).to.equal(4);
    expect(asked.filter((member) => !cluster.includes(member))).to.deep.equal([]);
  });

  it('still finds a block absent when no member holds it', async () => {
    const { blockId } = blockAwayFromSelf();
    const { repo } = harness(() => ({ rev: 0, ms: 1 }));
    expect(await repo.get({ blockId })).to.equal(undefined);
  });
});
