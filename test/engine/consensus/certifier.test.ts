import { expect } from 'chai';
import { ManualClock } from '../../../src/engine/base/clock.js';
import { isEngineError } from '../../../src/engine/base/errors.js';
import {
  ConsensusCertifier,
  type ConsensusLogCertificate,
} from '../../../src/engine/consensus/consensus-certifier.js';
import { GroupDriver, MemoryConsensusStore } from '../../../src/engine/consensus/driver.js';
import { MemoryConsensusNetwork } from '../../../src/engine/consensus/memory-network.js';
import type { ConsensusMessage, PersistRecord } from '../../../src/engine/consensus/types.js';
import { leadershipOrder } from '../../../src/engine/consensus/values.js';
import { verifyCertificate } from '../../../src/engine/transactions/certifier.js';
import { derivedBlockId, derivedMembers } from '../../sim/identities.js';
import { timing } from './harness.js';

describe('ConsensusCertifier over the in-memory network', () => {
  const identities = derivedMembers('certifier', 3);
  const members = identities.map((i) => i.id);
  const fields = {
    collection: 'accounts',
    blockId: derivedBlockId('certifier/tail'),
    lsn: 12,
    trxId: 'trx-12',
    decision: 'committed' as const,
  };

  function setup(hosted = identities): {
    clock: ManualClock;
    network: MemoryConsensusNetwork;
    certifier: ConsensusCertifier;
  } {
    const clock = new ManualClock(1_000);
    const network = new MemoryConsensusNetwork({ clock }, { timing });
    for (const identity of hosted) network.addMember(identity);
    return { clock, network, certifier: new ConsensusCertifier({ proposer: network }, { network: 'net' }) };
  }

  it('certifies a log decision by consensus of the tail group and verifies it offline', async () => {
    const { certifier } = setup();
    const certificate = await certifier.certify(fields, members);
    expect(certificate.signatures.length).to.be.at.least(2);
    const copy = JSON.parse(JSON.stringify(certificate)) as ConsensusLogCertificate;
    expect(certifier.verify(copy, members)).to.equal(true);
    expect(certifier.verify(copy, [...members].reverse())).to.equal(true);
    // Another LSN, transaction, decision, membership or network: no longer covered.
    expect(certifier.verify({ ...copy, lsn: 13 }, members)).to.equal(false);
    expect(certifier.verify({ ...copy, trxId: 'trx-13' }, members)).to.equal(false);
    expect(certifier.verify({ ...copy, decision: 'aborted' }, members)).to.equal(false);
    expect(certifier.verify(copy, members.slice(1))).to.equal(false);
    expect(
      new ConsensusCertifier({ proposer: setup().network }, { network: 'other' }).verify(copy, members),
    ).to.equal(false);
    // Votes are not decision signatures: the solo verifier does not take them, and vice versa.
    expect(verifyCertificate(copy, members)).to.equal(false);
    const { consensus: _omit, ...plain } = copy;
    expect(certifier.verify(plain, members)).to.equal(false);
  });

  it('answers a repeated request with the decision already taken, and orders new ones after it', async () => {
    const { certifier } = setup();
    const first = await certifier.certify(fields, members);
    const again = await certifier.certify(fields, members);
    const next = await certifier.certify({ ...fields, lsn: 13, trxId: 'trx-13' }, members);
    expect(again.consensus).to.deep.equal(first.consensus);
    expect(next.consensus.slot).to.equal(first.consensus.slot + 1);
  });

  it('certifies with one member of three down, and fails with NO_QUORUM with two down', async () => {
    const order = leadershipOrder(fields.blockId, members);
    const { certifier, network, clock } = setup(identities.filter((i) => i.id !== order[0]));
    // At first the nearest member is presumed alive, so proposals are redirected to it, in vain.
    const early = await certifier.certify(fields, members).then(
      () => null,
      (error: unknown) => error,
    );
    expect(isEngineError(early, 'UNAVAILABLE')).to.equal(true);
    // Once the others suspect it (ticks only; safety never waited on them), the next one leads.
    for (let i = 0; i < 20; i++) {
      clock.advance(50);
      await network.tick();
    }
    const certificate = await certifier.certify(fields, members);
    expect(certifier.verify(certificate, members)).to.equal(true);

    const lonely = setup(identities.filter((i) => i.id === order[0]));
    const pending = lonely.certifier.certify(fields, members).then(
      () => null,
      (error: unknown) => error,
    );
    // Only ticks reveal that the others are gone.
    for (let i = 0; i < 40; i++) {
      lonely.clock.advance(50);
      await lonely.network.tick();
    }
    const error = await pending;
    expect(isEngineError(error, 'NO_QUORUM')).to.equal(true);
  });

  it('keeps a decision across a member restart (the store survives)', async () => {
    const { certifier, network } = setup();
    const first = await certifier.certify(fields, members);
    const order = leadershipOrder(fields.blockId, members);
    await network.setOffline(order[0]!, true);
    await network.setOffline(order[0]!, false);
    const again = await certifier.certify(fields, members);
    expect(again.consensus).to.deep.equal(first.consensus);
  });
});

describe('GroupDriver', () => {
  it('lets nothing leave before the persist record ahead of it is durable', async () => {
    const [solo, other] = derivedMembers('driver', 2);
    const members = [solo!.id, other!.id].sort();
    // A block the solo member is nearest to, so its first tick starts a candidacy.
    let label = 0;
    while (leadershipOrder(derivedBlockId(`driver/${label}`), members)[0] !== solo!.id) label++;
    const blockId = derivedBlockId(`driver/${label}`);
    const log: string[] = [];
    let release: () => void = () => undefined;
    const store = new MemoryConsensusStore();
    const slowStore = {
      load: store.load.bind(store),
      persist: async (id: string, record: PersistRecord): Promise<void> => {
        log.push('persist:start');
        await new Promise<void>((resolve) => (release = resolve));
        await store.persist(id, record);
        log.push('persist:done');
      },
    };
    const driver = new GroupDriver(
      {
        store: slowStore,
        transport: {
          send: (_from: string, _to: string, m: ConsensusMessage) => void log.push(`send:${m.type}`),
        },
        clock: new ManualClock(0),
        signer: solo!,
      },
      { network: 'n', blockId, members },
      { timing },
    );
    await driver.start();
    const ticking = driver.tick();
    await new Promise((resolve) => setImmediate(resolve));
    // The promise to its own ballot is being written: nothing has been sent yet.
    expect(log).to.deep.equal(['persist:start']);
    release();
    await ticking;
    expect(log.slice(0, 2)).to.deep.equal(['persist:start', 'persist:done']);
    expect(log).to.include('send:Prepare');
    expect(driver.snapshot?.role.kind).to.equal('candidate');
  });
});

describe('GroupDriver with a member on the other end', () => {
  const [a, b] = derivedMembers('driver-pair', 2);
  const members = [a!.id, b!.id].sort();
  let label = 0;
  while (leadershipOrder(derivedBlockId(`driver-pair/${label}`), members)[0] !== a!.id) label++;
  const group = { network: 'n', blockId: derivedBlockId(`driver-pair/${label}`), members };
  const value = { kind: 'entry' as const, trxId: 'trx-1', decision: 'committed' as const, digest: 'd1' };

  /** Two drivers whose messages wait in a queue until `deliver`; A's persists can be held or failed. */
  async function pair(): Promise<{
    leader: GroupDriver;
    follower: GroupDriver;
    log: string[];
    hold: () => void;
    release: () => void;
    failNext: () => void;
    deliver: () => Promise<void>;
  }> {
    const log: string[] = [];
    const queue: { to: string; from: string; message: ConsensusMessage }[] = [];
    let gate: Promise<void> | undefined;
    let open: () => void = () => undefined;
    let fail = false;
    const leaderStore = new MemoryConsensusStore();
    const store = {
      load: leaderStore.load.bind(leaderStore),
      persist: async (id: string, record: PersistRecord): Promise<void> => {
        if (fail) {
          fail = false;
          throw new Error('disk full');
        }
        log.push('persist:start');
        await gate;
        await leaderStore.persist(id, record);
        log.push('persist:done');
      },
    };
    const clock = new ManualClock(0);
    const transport = (from: string) => ({
      send: (_from: string, to: string, message: ConsensusMessage) => {
        if (from === a!.id) log.push(`send:${message.type}`);
        queue.push({ to, from, message });
      },
    });
    const leader = new GroupDriver({ store, transport: transport(a!.id), clock, signer: a! }, group, {
      timing,
    });
    const follower = new GroupDriver(
      { store: new MemoryConsensusStore(), transport: transport(b!.id), clock, signer: b! },
      group,
      { timing },
    );
    await leader.start();
    await follower.start();
    const deliver = async (): Promise<void> => {
      for (const { to, from, message } of queue.splice(0))
        await (to === a!.id ? leader : follower).receive(from, message).catch(() => undefined);
    };
    // A becomes leader: its candidacy, B's promise, A's first (empty) round.
    await leader.tick();
    for (let i = 0; i < 4; i++) await deliver();
    expect(leader.snapshot?.role.kind).to.equal('leader');
    log.length = 0;
    return {
      leader,
      follower,
      log,
      hold: () => {
        gate = new Promise<void>((resolve) => (open = resolve));
      },
      release: () => open(),
      failNext: () => (fail = true),
      deliver,
    };
  }

  it("sends the leader's Accept while its own vote is persisted, and decides only once that vote is durable", async () => {
    const { leader, log, hold, release, deliver } = await pair();
    hold();
    let decided = false;
    const proposal = leader.propose(value).then((certificate) => {
      decided = true;
      return certificate;
    });
    await new Promise((resolve) => setImmediate(resolve));
    // The Accept left before the leader's own vote reached its disk.
    expect(log).to.deep.equal(['send:Accept', 'persist:start']);
    // B votes; A's step for that vote waits behind the persist in flight.
    const delivering = deliver();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(decided).to.equal(false);
    release();
    await delivering;
    await deliver();
    const certificate = await proposal;
    expect(certificate.slot).to.be.a('number');
    expect(certificate.signatures.map((s) => s.member).sort()).to.deep.equal(members);
    expect(log.indexOf('persist:done')).to.be.lessThan(log.lastIndexOf('persist:start'));
  });

  it('stops for good when a persist fails: the proposal fails in doubt and nothing later is acted on', async () => {
    const { leader, log, failNext, deliver } = await pair();
    failNext();
    const error = await leader.propose(value).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(Error);
    expect(leader.halted).to.equal(true);
    // B's vote comes back: the halted leader does not count its own unsaved vote with it.
    await deliver();
    await deliver();
    await leader.tick();
    expect(log.filter((line) => line === 'send:Decided')).to.deep.equal([]);
    expect(leader.snapshot?.decided.size ?? 0).to.equal(0);
    const later = await leader.propose({ ...value, trxId: 'trx-2', digest: 'd2' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isEngineError(later, 'UNAVAILABLE')).to.equal(true);
  });
});
