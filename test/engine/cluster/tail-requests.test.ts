import { expect } from 'chai';
import type { MembershipCheck } from '../../../src/engine/cluster/certifier.js';
import { Placement } from '../../../src/engine/cluster/placement.js';
import { serveTailRequest, validateTailRequest } from '../../../src/engine/cluster/tail.js';
import type { LogTail } from '../../../src/engine/transactions/log-tail.js';
import type { CommitRequest } from '../../../src/engine/transactions/protocol.js';

/**
 * The tail protocol's server side: a commit or prepare may name its coordinator (`<node>:<incarnation>`),
 * and a tail decides a node's earlier incarnations' prepared entries when that node names a new one
 * (LogTail.abandonedBy). So a request may name only the node that sent it.
 */
describe('tail requests naming their coordinator', () => {
  async function served(from: string, coordinator: unknown): Promise<unknown> {
    const placement = new Placement('self', 5);
    placement.add(from);
    let seen: CommitRequest | undefined;
    const tail = {
      commit: (request: CommitRequest) => {
        seen = request;
        return Promise.resolve({ status: 'conflict', winners: [], message: 'test' });
      },
    } as unknown as LogTail;
    const membership = { check: () => Promise.resolve() } as unknown as MembershipCheck;
    const request = validateTailRequest({
      type: 'commit',
      request: {
        collection: 'c',
        trxId: 't',
        baseLsn: 1,
        reads: [],
        writes: [],
        actions: [],
        ...(coordinator !== undefined ? { coordinator } : {}),
      },
    });
    await serveTailRequest(tail, placement, membership, request, from);
    return seen?.coordinator;
  }

  it('passes the sender’s own name on, and drops a name of another node or of no node', async () => {
    expect(await served('peerA', 'peerA:k3x.1f')).to.equal('peerA:k3x.1f');
    expect(await served('peerA', 'peerB:k3x.1f')).to.equal(undefined);
    expect(await served('peerA', 'peerAB:k3x.1f')).to.equal(undefined);
    expect(await served('peerA', 42)).to.equal(undefined);
    expect(await served('peerA', undefined)).to.equal(undefined);
  });
});

describe('tail requests that decide, from a peer not greeted yet', () => {
  const commit = validateTailRequest({
    type: 'commit',
    request: { collection: 'c', trxId: 't', baseLsn: 1, reads: [], writes: [], actions: [] },
  });
  const membership = { check: () => Promise.resolve() } as unknown as MembershipCheck;

  async function served(greetMakesLive: boolean): Promise<{ committed: boolean; greeted: string[] }> {
    const placement = new Placement('self', 5);
    let committed = false;
    const tail = {
      commit: () => {
        committed = true;
        return Promise.resolve({ status: 'conflict', winners: [], message: 'test' });
      },
    } as unknown as LogTail;
    const greeted: string[] = [];
    const greet = (peer: string): Promise<void> => {
      greeted.push(peer);
      if (greetMakesLive) placement.add(peer);
      return Promise.resolve();
    };
    await serveTailRequest(tail, placement, membership, commit, 'peerA', undefined, undefined, greet);
    return { committed, greeted };
  }

  it('greets a member whose hello has not come through yet, then serves it', async () => {
    expect(await served(true)).to.deep.equal({ committed: true, greeted: ['peerA'] });
  });

  it('still refuses a peer that the greeting does not make a member (BAD_INPUT)', async () => {
    let error: unknown;
    try {
      await served(false);
    } catch (caught) {
      error = caught;
    }
    expect((error as { code?: string } | undefined)?.code).to.equal('BAD_INPUT');
  });
});
