import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { consensusWire } from '../../../src/engine/cluster/consensus-wire.js';
import { canonicalJson } from '../../../src/engine/base/codec.js';
import type { ConsensusValue } from '../../../src/engine/consensus/types.js';
import { sortedMemberList, valueDigest } from '../../../src/engine/consensus/values.js';
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
    expect(sortedMemberList(shared)).to.equal(shared);
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

describe('consensus value digests', () => {
  const full = (value: object): string =>
    createHash('sha256').update(canonicalJson(value)).digest('base64url');
  const entry = (extra: object = {}): ConsensusValue => ({
    kind: 'entry',
    trxId: 'trx-d',
    decision: 'committed',
    digest: 'digest-d',
    ...extra,
  });

  it('digests fresh copies of an entry by its signed part only, whatever copy came first', () => {
    const signed = { kind: 'entry', trxId: 'trx-d', decision: 'committed', digest: 'digest-d', lsn: 7 };
    expect(valueDigest(entry({ lsn: 7, prev: 'trx-c', body: { writes: ['a'] } }))).to.equal(full(signed));
    expect(valueDigest(entry({ lsn: 7 }))).to.equal(full(signed));
    expect(valueDigest(entry({ lsn: 7, prev: null }))).to.equal(full(signed));
  });

  it('gives copies that differ in a signed field, or in having an LSN, their own digests', () => {
    const withLsn = valueDigest(entry({ lsn: 7 }));
    expect(valueDigest(entry())).to.equal(
      full({ kind: 'entry', trxId: 'trx-d', decision: 'committed', digest: 'digest-d' }),
    );
    expect(valueDigest(entry())).to.not.equal(withLsn);
    expect(valueDigest(entry({ lsn: 8 }))).to.not.equal(withLsn);
    expect(valueDigest(entry({ lsn: 7, decision: 'aborted' }))).to.not.equal(withLsn);
    // A shape the validator refuses is digested in full, never taken for the well-formed entry.
    const extra = entry({ lsn: 7, note: 'x' });
    expect(valueDigest(extra)).to.equal(full(extra));
    expect(valueDigest(extra)).to.not.equal(withLsn);
  });
});
