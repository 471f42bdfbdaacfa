import { expect } from 'chai';
import { EngineError, isEngineError } from '../../../src/engine/base/errors.js';
import { collectionHeaderId } from '../../../src/engine/base/ids.js';
import { Placement } from '../../../src/engine/cluster/placement.js';
import type { ClusterRepoClient } from '../../../src/engine/cluster/repo.js';
import {
  RoutedTailClient,
  serveTailRequest,
  type RoutedTailParts,
} from '../../../src/engine/cluster/tail.js';
import { rejectionError } from '../../../src/engine/consensus/driver.js';
import type { LogTail } from '../../../src/engine/transactions/log-tail.js';
import type { MembershipCheck } from '../../../src/engine/cluster/certifier.js';
import type { NetworkNode } from '../../../src/engine/network/index.js';
import { blockTypes } from '../../../src/engine/storage/block.js';
import type { CommitRequest } from '../../../src/engine/transactions/protocol.js';

/**
 * The client side of tail requests, over fake members: what a commit's answer means after an
 * earlier try of the same request failed.
 */
describe('RoutedTailClient', () => {
  const tailId = 'tail'.padEnd(43, 't');
  const members = ['member-a', 'member-b'];
  const request: CommitRequest = {
    collection: 'accounts',
    trxId: 'trx-1',
    baseLsn: 3,
    reads: [],
    writes: [],
    actions: [],
  };

  /** A client on a node outside the group whose requests are answered by `answer`, in order. */
  function client(answer: (target: string, attempt: number) => unknown): {
    tails: RoutedTailClient;
    asked: string[];
  } {
    const placement = new Placement('outsider', 3, members);
    for (const member of members) placement.connected(member);
    const asked: string[] = [];
    const network = {
      request: (target: string) => {
        asked.push(target);
        return new Promise((resolve) => resolve(answer(target, asked.length)));
      },
    } as unknown as NetworkNode;
    const cluster = {
      get: ({ blockId }: { blockId: string }) =>
        Promise.resolve(
          blockId === collectionHeaderId('accounts')
            ? { block: { header: { id: blockId, type: blockTypes.collectionHeader }, logTail: tailId } }
            : { block: { header: { id: tailId, type: blockTypes.logBlock }, members, successor: null } },
        ),
    } as unknown as ClusterRepoClient;
    const parts = { placement, cluster, network: () => network } as unknown as RoutedTailParts;
    return { tails: new RoutedTailClient(parts), asked };
  }

  const lost = (): never => {
    throw new EngineError('UNAVAILABLE', 'the connection closed before the answer');
  };

  it('passes a conflict on as final when the first try answered it', async () => {
    const { tails, asked } = client(() => ({ status: 'conflict', winners: [4], message: 'stale' }));
    const outcome = await tails.commit(request);
    expect(outcome.status).to.equal('conflict');
    expect(asked).to.have.length(1);
  });

  it('makes a conflict after a failed try in doubt: the first leader may have proposed the transaction', async () => {
    const { tails, asked } = client((_target, attempt) =>
      attempt === 1 ? lost() : { status: 'conflict', winners: [4], message: 'stale' },
    );
    const error = await tails.commit(request).then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(asked).to.have.length(2);
    expect(asked[0]).to.not.equal(asked[1]);
    expect(isEngineError(error, 'UNAVAILABLE'), String(error)).to.equal(true);
    expect((error as EngineError).details?.['inDoubt']).to.equal(true);
  });

  it('makes a conflict after a redirect in doubt when the redirecting member had proposed the transaction', async () => {
    // Leadership moved while member-x's proposal was in flight (preempted): that proposal may still
    // be decided. Sim seed 1767 (on aec24e3): the retry met a turn conflict, the coordinator took it
    // for final and withdrew the pends of a transaction the group had decided committed.
    const { tails, asked } = client((target, attempt) =>
      attempt === 1
        ? { redirect: members.find((m) => m !== target)!, inDoubt: true }
        : { status: 'conflict', winners: [], message: 'gave way' },
    );
    const error = await tails.commit(request).then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(asked).to.have.length(2);
    expect(isEngineError(error, 'UNAVAILABLE'), String(error)).to.equal(true);
    expect((error as EngineError).details?.['inDoubt']).to.equal(true);
  });

  it('passes a conflict on as final after a plain redirect (the member only named the leader)', async () => {
    const { tails, asked } = client((target, attempt) =>
      attempt === 1
        ? { redirect: members.find((m) => m !== target)! }
        : { status: 'conflict', winners: [4], message: 'stale' },
    );
    const outcome = await tails.commit(request);
    expect(asked).to.have.length(2);
    expect(outcome.status).to.equal('conflict');
  });

  it('passes over a member that does not answer in time (a partition that drops packets)', async () => {
    const { tails, asked } = client((target) => {
      if (target === asked[0]) throw new EngineError('TIMEOUT', 'could not open the tail protocol in time');
      return { status: 'committed', lsn: 4, certificate: { trxId: 'trx-1' } };
    });
    const outcome = await tails.commit(request);
    expect(asked).to.have.length(2);
    expect(asked[1]).to.not.equal(asked[0]);
    expect(outcome).to.deep.include({ status: 'committed', lsn: 4 });
  });

  it('passes a decision on after a failed try (the tail answers a transaction it holds with its entry)', async () => {
    const certificate = { trxId: 'trx-1' };
    const { tails } = client((_target, attempt) =>
      attempt === 1 ? lost() : { status: 'committed', lsn: 4, certificate },
    );
    const outcome = await tails.commit(request);
    expect(outcome).to.deep.include({ status: 'committed', lsn: 4 });
  });

  it('answers a refusal after proposing as a redirect in doubt, a refusal before as a plain one', async () => {
    const placement = new Placement('member-a', 3, ['member-b', 'client']);
    placement.connected('member-b');
    placement.add('client');
    const answers: unknown[] = [];
    for (const reason of [
      { kind: 'preempted', leader: 'member-b', inDoubt: true },
      { kind: 'not-leader', leader: 'member-b' },
    ] as const) {
      const tail = { commit: () => Promise.reject(rejectionError(reason)) } as unknown as LogTail;
      answers.push(
        await serveTailRequest(
          tail,
          placement,
          {} as MembershipCheck,
          { type: 'commit', request } as never,
          'client',
        ),
      );
    }
    expect(answers).to.deep.equal([{ redirect: 'member-b', inDoubt: true }, { redirect: 'member-b' }]);
  });
});
