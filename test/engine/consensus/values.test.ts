import { expect } from 'chai';
import { consensusWire } from '../../../src/engine/cluster/consensus-wire.js';
import { sortedMemberList } from '../../../src/engine/consensus/values.js';
import { membershipHash } from '../../../src/engine/transactions/certifier.js';
import { derivedBlockId, derivedMembers } from '../../sim/identities.js';

describe('consensus member lists', () => {
  const members = derivedMembers('member-lists', 3).map((i) => i.id);
  const sorted = [...members].sort();

  it('gives equal lists one shared array, sorted, without repeats and frozen', () => {
    const shared = sortedMemberList([...sorted]);
    expect(shared).to.deep.equal(sorted);
    expect(Object.isFrozen(shared)).to.equal(true);
    expect(sortedMemberList([...sorted])).to.equal(shared);
    expect(sortedMemberList([sorted[2]!, sorted[0]!, sorted[1]!, sorted[0]!])).to.equal(shared);
    expect(sortedMemberList(sorted.slice(0, 2))).to.not.equal(shared);
  });

  it('hands wire items the shared array of their members, so the membership hash is memoised', () => {
    const item = (): unknown => ({
      members: [...sorted],
      message: {
        type: 'Heartbeat',
        network: 'net',
        blockId: derivedBlockId('member-lists/block'),
        membership: membershipHash(sorted),
        promised: null,
        decidedBelow: 0,
      },
    });
    const first = consensusWire({ type: 'batch', items: [item()] });
    const second = consensusWire({ type: 'batch', items: [item(), item()] });
    if (first.type !== 'batch' || second.type !== 'batch') throw new Error('not a batch');
    expect(first.items[0]!.members).to.equal(sortedMemberList(sorted));
    expect(second.items[0]!.members).to.equal(first.items[0]!.members);
    expect(second.items[1]!.members).to.equal(first.items[0]!.members);
  });
});
