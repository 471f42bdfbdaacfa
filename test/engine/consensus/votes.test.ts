import { expect } from 'chai';
import { mergePersisted, emptyPersisted } from '../../../src/engine/consensus/persisted.js';
import type { ConsensusCertificate } from '../../../src/engine/consensus/types.js';
import { isConsensusValue, valueDigest } from '../../../src/engine/consensus/values.js';
import {
  certificateProblem,
  verifyConsensusCertificate,
  voteCanonical,
  voteMessage,
  voteText,
} from '../../../src/engine/consensus/votes.js';
import { membershipHash } from '../../../src/engine/transactions/certifier.js';
import { derivedBlockId, derivedIdentity, derivedMembers } from '../../sim/identities.js';
import { entry } from './harness.js';

describe('consensus votes and certificates', () => {
  const identities = derivedMembers('votes', 5);
  const members = identities.map((i) => i.id);
  const header = { network: 'net', blockId: derivedBlockId('votes'), membership: membershipHash(members) };
  const ballot = { round: 3, leader: members[2]! };
  const value = entry('a');

  function certificate(signers = identities.slice(0, 3), v = value): ConsensusCertificate {
    const digest = valueDigest(v);
    return {
      ...header,
      slot: 4,
      ballot,
      value: v,
      signatures: signers
        .map((i) => ({
          member: i.id,
          signature: i.sign(voteMessage({ ...header, slot: 4, ballot, digest })),
        }))
        .sort((a, b) => (a.member < b.member ? -1 : 1)),
    };
  }

  it('signs exactly the canonical JSON of the vote fields', () => {
    const samples = [
      { ...header, slot: 0, ballot: { round: 1, leader: 'a"b\\c' }, digest: 'd' },
      { ...header, slot: 255, ballot, digest: valueDigest(value), network: 'ünïcode ✓' },
    ];
    for (const fields of samples) expect(voteText(fields)).to.equal(voteCanonical(fields));
  });

  it('verifies a certificate offline with the recorded membership', () => {
    const cert = JSON.parse(JSON.stringify(certificate())) as ConsensusCertificate;
    expect(verifyConsensusCertificate(cert, members, 'net')).to.equal(true);
  });

  it('rejects a certificate short of a quorum, with a repeated signer, or a non-member signer', () => {
    const cert = certificate();
    expect(certificateProblem(certificate(identities.slice(0, 2)), members, 'net')).to.match(
      /2 valid signatures of 3/,
    );
    const repeated = { ...cert, signatures: [cert.signatures[0]!, cert.signatures[0]!, cert.signatures[0]!] };
    expect(verifyConsensusCertificate(repeated, members, 'net')).to.equal(false);
    const outsider = derivedIdentity('votes-outsider');
    const withOutsider = certificate([identities[0]!, identities[1]!, outsider]);
    expect(verifyConsensusCertificate(withOutsider, members, 'net')).to.equal(false);
  });

  it('rejects a certificate moved to another slot, ballot, value, group, membership or network', () => {
    const cert = certificate();
    const altered: ConsensusCertificate[] = [
      { ...cert, slot: 5 },
      { ...cert, ballot: { ...ballot, round: 4 } },
      { ...cert, ballot: { ...ballot, leader: members[0]! } },
      { ...cert, value: entry('b') },
      { ...cert, blockId: derivedBlockId('other') },
      { ...cert, membership: membershipHash(members.slice(1)) },
    ];
    for (const c of altered)
      expect(verifyConsensusCertificate(c, members, 'net'), JSON.stringify(c).slice(0, 80)).to.equal(false);
    expect(verifyConsensusCertificate(cert, members, 'other-net')).to.equal(false);
    expect(verifyConsensusCertificate(cert, members.slice(1), 'net')).to.equal(false);
  });

  it('digests what a value holds now: a value changed after its first digest gets a new one', () => {
    type Entry = {
      kind: 'entry';
      trxId: string;
      decision: 'committed' | 'aborted';
      digest: string;
      prev?: string;
    };
    const fresh = (): Entry => ({ kind: 'entry', trxId: 'trx-a', decision: 'committed', digest: 'digest-a' });
    const changed = fresh();
    const before = valueDigest(changed);
    expect(valueDigest(changed)).to.equal(before);
    changed.decision = 'aborted';
    const after = valueDigest(changed);
    expect(after).to.not.equal(before);
    expect(after).to.equal(valueDigest({ ...changed }));
    // What a digest leaves out (prev, the body) does not change it.
    const other = fresh();
    valueDigest(other);
    other.prev = 'trx-other';
    expect(valueDigest(other)).to.equal(before);
    const seal = { kind: 'seal' as const, successor: derivedBlockId('next'), members: [...members] };
    const sealed = valueDigest(seal);
    seal.members.pop();
    expect(valueDigest(seal)).to.not.equal(sealed);
  });

  it('accepts only well-formed values', () => {
    expect(isConsensusValue(value)).to.equal(true);
    expect(isConsensusValue({ kind: 'noop' })).to.equal(true);
    expect(isConsensusValue({ kind: 'seal', successor: derivedBlockId('s'), members: ['a', 'b'] })).to.equal(
      true,
    );
    expect(isConsensusValue({ kind: 'seal', successor: derivedBlockId('s'), members: ['b', 'a'] })).to.equal(
      false,
    );
    expect(isConsensusValue({ kind: 'seal', successor: 'short', members: ['a'] })).to.equal(false);
    expect(isConsensusValue({ ...value, extra: 1 })).to.equal(false);
    expect(isConsensusValue({ ...value, decision: 'maybe' })).to.equal(false);
    expect(isConsensusValue({ ...value, trxId: 'x'.repeat(1000) })).to.equal(false);
  });

  it('merges persist records: promises never go down, a slot keeps its latest ballot, decisions stay', () => {
    const high = { round: 5, leader: 'b' };
    const low = { round: 4, leader: 'z' };
    const a = { slot: 0, ballot: low, value, signature: 's1' };
    const b = { slot: 0, ballot: high, value: entry('b'), signature: 's2' };
    let disk = mergePersisted(emptyPersisted, { promised: high, accepted: [a] });
    disk = mergePersisted(disk, { promised: low, accepted: [b] });
    disk = mergePersisted(disk, { accepted: [a] });
    expect(disk.promised).to.deep.equal(high);
    expect(disk.accepted).to.deep.equal([b]);
    const cert = certificate();
    disk = mergePersisted(disk, { decided: [cert] });
    disk = mergePersisted(disk, { decided: [certificate(identities.slice(0, 3), entry('c'))] });
    expect(disk.decided).to.deep.equal([cert]);
  });
});
