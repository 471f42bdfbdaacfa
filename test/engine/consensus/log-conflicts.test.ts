import { expect } from 'chai';
import { ManualClock } from '../../../src/engine/base/clock.js';
import { isEngineError } from '../../../src/engine/base/errors.js';
import {
  ConsensusCertifier,
  type ConsensusLogCertificate,
  entryBodyHash,
  entryValue,
} from '../../../src/engine/consensus/consensus-certifier.js';
import { rejectionError } from '../../../src/engine/consensus/driver.js';
import { MemoryConsensusNetwork } from '../../../src/engine/consensus/memory-network.js';
import type { ConsensusCertificate } from '../../../src/engine/consensus/types.js';
import { entryConflict, leadershipOrder, valueDigest } from '../../../src/engine/consensus/values.js';
import { derivedBlockId, derivedMembers } from '../../sim/identities.js';
import { timing } from './harness.js';

/**
 * A tail group's leader refuses an entry that contradicts an earlier slot, and hands back the
 * decided entries (with their content) the proposer's log lacks: the guard against a leader that
 * decided an entry and stopped before writing it, and a successor reusing its LSN.
 */
describe('log position conflicts in a tail group', () => {
  const identities = derivedMembers('log-conflicts', 3);
  const members = identities.map((i) => i.id);
  const blockId = derivedBlockId('log-conflicts/tail');
  const order = leadershipOrder(blockId, members);
  const at = (lsn: number, trxId: string, decision: 'committed' | 'prepared' | 'aborted' = 'committed') => ({
    collection: 'accounts',
    blockId,
    lsn,
    trxId,
    decision,
  });
  const body = (writes: string[]) => ({ writes, actions: [{ op: 'put' }], checkpoint: 0 });

  function setup(): { clock: ManualClock; network: MemoryConsensusNetwork; certifier: ConsensusCertifier } {
    const clock = new ManualClock(1_000);
    const network = new MemoryConsensusNetwork({ clock }, { timing });
    for (const identity of identities) network.addMember(identity);
    return { clock, network, certifier: new ConsensusCertifier({ proposer: network }, { network: 'net' }) };
  }

  async function refusal(promise: Promise<unknown>): Promise<unknown> {
    return promise.then(
      () => {
        throw new Error('expected a refusal');
      },
      (error: unknown) => error,
    );
  }

  it('refuses another transaction at a decided LSN, even from the next leader, and returns the lost entry', async () => {
    const { certifier, network, clock } = setup();
    await certifier.certify(at(11, 'trx-11'), members, { prev: null, body: body(['b1']) });
    const orphan = await certifier.certify(at(12, 'trx-12'), members, { prev: 'trx-11', body: body(['b2']) });
    // The leader stops before writing entry 12 anywhere; another member takes over.
    await network.setOffline(order[0]!, true);
    for (let i = 0; i < 20; i++) {
      clock.advance(50);
      await network.tick();
    }
    const error = await refusal(
      certifier.certify(at(12, 'trx-other'), members, { prev: 'trx-11', body: body(['b3']) }),
    );
    expect(isEngineError(error, 'CONFLICT')).to.equal(true);
    const recovered = certifier.decidedElsewhere(error, 'accounts', members)!;
    const lost = recovered.find((d) => d.lsn === 12)!;
    expect(lost.trxId).to.equal('trx-12');
    expect(lost.body).to.deep.equal(body(['b2']));
    expect(lost.certificate).to.deep.include({ lsn: 12, trxId: 'trx-12', decision: 'committed' });
    expect(lost.certificate.signatures).to.deep.equal(orphan.signatures);
    expect(certifier.verify(lost.certificate, members)).to.equal(true);
    // With entry 12 written, the next transaction takes 13.
    const next = await certifier.certify(at(13, 'trx-other'), members, {
      prev: 'trx-12',
      body: body(['b3']),
    });
    expect(certifier.verify(next, members)).to.equal(true);
  });

  it('refuses a proposal that assumed another transaction just below it', async () => {
    const { certifier } = setup();
    await certifier.certify(at(20, 'trx-20'), members, { prev: null, body: body([]) });
    const error = await refusal(
      certifier.certify(at(21, 'trx-21'), members, { prev: 'trx-19', body: body([]) }),
    );
    expect(isEngineError(error, 'CONFLICT')).to.equal(true);
    expect(certifier.decidedElsewhere(error, 'accounts', members)!.map((d) => d.trxId)).to.deep.equal([
      'trx-20',
    ]);
    expect(certifier.decidedElsewhere(new Error('other'), 'accounts', members)).to.equal(undefined);
  });

  it('lets a prepared entry be decided once, and refuses reversing it or moving a transaction', async () => {
    const { certifier } = setup();
    await certifier.certify(at(30, 'trx-30', 'prepared'), members, { prev: null, body: body([]) });
    const committed = await certifier.certify(at(30, 'trx-30', 'committed'), members);
    expect(certifier.verify(committed, members)).to.equal(true);
    const reversed = await refusal(certifier.certify(at(30, 'trx-30', 'aborted'), members));
    expect(isEngineError(reversed, 'CONFLICT')).to.equal(true);
    const moved = await refusal(
      certifier.certify(at(31, 'trx-30', 'committed'), members, { prev: 'trx-30', body: body([]) }),
    );
    expect(isEngineError(moved, 'CONFLICT')).to.equal(true);
  });

  it('drops a returned entry whose content does not match what was decided, or whose votes do not verify', async () => {
    const { certifier } = setup();
    await certifier.certify(at(40, 'trx-40'), members, { prev: null, body: body(['b40']) });
    const error = await refusal(certifier.certify(at(40, 'trx-41'), members, { prev: null, body: body([]) }));
    const decided = certifier.decidedElsewhere(error, 'accounts', members)!;
    expect(decided).to.have.length(1);
    // Rebuild the refusal with tampered copies of the decision.
    const original = decided[0]!;
    const consensusCert: ConsensusCertificate = {
      network: 'net',
      blockId,
      membership: original.certificate.membership,
      slot: (original.certificate as ConsensusLogCertificate).consensus.slot,
      ballot: (original.certificate as ConsensusLogCertificate).consensus.ballot,
      value: {
        ...entryValue({ ...at(40, 'trx-40'), network: 'net' }, entryBodyHash(body(['b40']))),
        body: body(['b40']),
      },
      signatures: original.certificate.signatures,
    };
    const tamperedBody: ConsensusCertificate = {
      ...consensusCert,
      value: { ...consensusCert.value, body: body(['elsewhere']) } as ConsensusCertificate['value'],
    };
    const forged: ConsensusCertificate = {
      ...consensusCert,
      signatures: consensusCert.signatures.map((s) => ({ ...s, signature: 'AAAA' })),
    };
    // Rebuilt faithfully, it is accepted; tampered, it is not.
    expect(
      certifier.decidedElsewhere(
        rejectionError({ kind: 'conflict', decided: [consensusCert] }),
        'accounts',
        members,
      ),
    ).to.deep.equal([original]);
    expect(
      certifier.decidedElsewhere(
        rejectionError({ kind: 'conflict', decided: [tamperedBody, forged] }),
        'accounts',
        members,
      ),
    ).to.deep.equal([]);
    // The same decision read for another collection does not match its digest either.
    expect(
      certifier.decidedElsewhere(
        rejectionError({ kind: 'conflict', decided: [consensusCert] }),
        'ledger',
        members,
      ),
    ).to.deep.equal([]);
  });

  it('orders the conflict rules as documented', () => {
    const v = (lsn: number, trxId: string, decision: 'committed' | 'prepared' | 'aborted', prev?: string) =>
      ({
        kind: 'entry',
        trxId,
        decision,
        digest: `d-${lsn}-${trxId}-${decision}`,
        lsn,
        ...(prev ? { prev } : {}),
      }) as const;
    expect(entryConflict(v(5, 'a', 'committed'), v(5, 'b', 'committed'))).to.equal(true);
    expect(entryConflict(v(5, 'a', 'committed'), v(5, 'a', 'committed'))).to.equal(false);
    expect(entryConflict(v(5, 'a', 'prepared'), v(5, 'a', 'aborted'))).to.equal(false);
    expect(entryConflict(v(5, 'a', 'committed'), v(5, 'a', 'aborted'))).to.equal(true);
    expect(entryConflict(v(5, 'a', 'committed'), v(5, 'a', 'prepared'))).to.equal(true);
    expect(entryConflict(v(5, 'a', 'committed'), v(6, 'a', 'committed'))).to.equal(true);
    expect(entryConflict(v(5, 'a', 'committed'), v(6, 'b', 'committed', 'a'))).to.equal(false);
    expect(entryConflict(v(5, 'a', 'committed'), v(6, 'b', 'committed', 'x'))).to.equal(true);
    expect(entryConflict(v(5, 'a', 'committed'), v(7, 'b', 'committed', 'x'))).to.equal(false);
    // A refusal (an abort of a transaction the log never held) contradicts every other value of
    // its transaction, at its own LSN too, whichever comes first; not itself, nor other transactions.
    const refusal = { ...v(5, 'a', 'aborted'), body: { writes: [], actions: { refused: true } } };
    expect(entryConflict(v(5, 'a', 'prepared'), refusal)).to.equal(true);
    expect(entryConflict(refusal, v(5, 'a', 'prepared'))).to.equal(true);
    expect(entryConflict(refusal, v(6, 'a', 'committed'))).to.equal(true);
    expect(entryConflict(refusal, { ...refusal })).to.equal(false);
    expect(entryConflict(refusal, v(6, 'b', 'committed', 'a'))).to.equal(false);
    // A prepared entry confirmed to an asker: its coordinator's abort no longer follows, the
    // resolution's abort and a commit still do.
    const confirmed = { ...v(5, 'a', 'prepared'), body: { confirmed: true } };
    expect(entryConflict(confirmed, v(5, 'a', 'aborted'))).to.equal(true);
    expect(entryConflict(confirmed, { ...v(5, 'a', 'aborted'), body: { resolved: true } })).to.equal(false);
    expect(entryConflict(confirmed, v(5, 'a', 'committed'))).to.equal(false);
    expect(entryConflict(v(5, 'a', 'prepared'), v(5, 'a', 'aborted'))).to.equal(false);
    // Body and prev are not what votes sign.
    const plain = v(9, 'z', 'committed');
    expect(valueDigest({ ...plain, prev: 'y', body: { writes: [] } })).to.equal(valueDigest(plain));
  });
});
