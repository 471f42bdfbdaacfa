import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { isEngineError } from '../../../src/engine/base/errors.js';
import { RawConsensusStore, consensusKeyPrefix } from '../../../src/engine/cluster/consensus-store.js';
import { emptyPersisted, mergePersisted } from '../../../src/engine/consensus/persisted.js';
import type {
  AcceptedSlot,
  ConsensusCertificate,
  EquivocationProof,
  PersistRecord,
} from '../../../src/engine/consensus/types.js';
import { LevelRawStore } from '../../../src/engine/storage/level-store.js';
import { MemoryRawStore } from '../../../src/engine/storage/memory-store.js';
import type { RawStore } from '../../../src/engine/storage/raw-store.js';

const leader = '12D3KooWLeader';
const ballot = (round: number) => ({ round, leader });
const entry = (n: number) => ({
  kind: 'entry' as const,
  trxId: `t${n}`,
  decision: 'committed' as const,
  digest: `d${n}`,
});
const header = { network: 'net', blockId: 'block', membership: 'm' };

function accepted(slot: number, round: number, n = slot): AcceptedSlot {
  return { slot, ballot: ballot(round), value: entry(n), signature: `sig-${slot}-${round}` };
}

function certificate(slot: number, n = slot): ConsensusCertificate {
  return {
    ...header,
    slot,
    ballot: ballot(1),
    value: entry(n),
    signatures: [{ member: leader, signature: 's' }],
  };
}

function proof(member: string): EquivocationProof {
  return {
    ...header,
    member,
    slot: 0,
    ballot: ballot(1),
    votes: [
      { digest: 'a', signature: 'x' },
      { digest: 'b', signature: 'y' },
    ],
  };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

interface Fixture {
  readonly raw: RawStore;
  /** Closes the raw store and opens it again (a restart); undefined when data cannot outlive close. */
  readonly reopen: () => Promise<RawStore>;
  readonly cleanup: () => Promise<void>;
}

function compliance(name: string, factory: () => Promise<Fixture>): void {
  describe(`RawConsensusStore over ${name}`, () => {
    let fixture: Fixture;
    beforeEach(async () => {
      fixture = await factory();
    });
    afterEach(async () => {
      await fixture.cleanup();
    });

    it('loads nothing for a group never persisted', async () => {
      expect(await new RawConsensusStore(fixture.raw).load('g')).to.equal(undefined);
    });

    it('merges records as mergePersisted does, and keeps them across a restart', async () => {
      const store = new RawConsensusStore(fixture.raw);
      const records: PersistRecord[] = [
        { promised: ballot(2) },
        { accepted: [accepted(0, 2), accepted(1, 2)] },
        { promised: ballot(1) },
        { accepted: [accepted(0, 3, 7)], promised: ballot(3) },
        { decided: [certificate(0, 7)] },
        { decided: [certificate(0, 9), certificate(1)], equivocations: [proof('x')] },
        { equivocations: [proof('x'), proof('y')] },
      ];
      let expected = emptyPersisted;
      for (const record of records) {
        await store.persist('g', record);
        expected = mergePersisted(expected, record);
        expect(await store.load('g')).to.deep.equal(expected);
      }
      expect(expected.promised).to.deep.equal(ballot(3));
      expect(expected.decided.map((c) => c.value)).to.deep.equal([entry(7), entry(1)]);
      const raw = await fixture.reopen();
      expect(await new RawConsensusStore(raw).load('g')).to.deep.equal(expected);
      expect(await new RawConsensusStore(raw).load('other')).to.equal(undefined);
    });

    it('serialises concurrent persists of one group: none is lost', async () => {
      const store = new RawConsensusStore(fixture.raw);
      await Promise.all(
        Array.from({ length: 20 }, (_, slot) => store.persist('g', { accepted: [accepted(slot, 1)] })),
      );
      const raw = await fixture.reopen();
      const state = await new RawConsensusStore(raw).load('g');
      expect(state?.accepted.map((a) => a.slot)).to.deep.equal(Array.from({ length: 20 }, (_, i) => i));
    });

    it('keeps groups apart, under k/ only', async () => {
      const store = new RawConsensusStore(fixture.raw);
      await store.persist('g1', { promised: ballot(1) });
      await store.persist('g2', { promised: ballot(2) });
      expect((await store.load('g1'))?.promised).to.deep.equal(ballot(1));
      expect((await store.load('g2'))?.promised).to.deep.equal(ballot(2));
      const keys: string[] = [];
      for await (const [key] of fixture.raw.iterate({})) keys.push(key);
      expect(keys).to.deep.equal([`${consensusKeyPrefix}g1/p`, `${consensusKeyPrefix}g2/p`]);
      expect(
        isEngineError(await rejection(store.persist('a/b', { promised: ballot(1) })), 'BAD_INPUT'),
      ).to.equal(true);
    });

    it('writes only what a step changed, not the group again', async () => {
      const store = new RawConsensusStore(fixture.raw);
      for (let slot = 0; slot < 40; slot++)
        await store.persist('g', { accepted: [accepted(slot, 1)], decided: [certificate(slot)] });
      const snapshot = async (): Promise<Map<string, string>> => {
        const all = new Map<string, string>();
        for await (const [key, value] of fixture.raw.iterate({})) all.set(key, value);
        return all;
      };
      const before = await snapshot();
      await store.persist('g', { accepted: [accepted(40, 1)] });
      const after = await snapshot();
      const written = [...after].filter(([key, value]) => before.get(key) !== value).map(([key]) => key);
      expect(written).to.deep.equal([`${consensusKeyPrefix}g/a/000040`]);
      // A restart reads every record back.
      const reloaded = await new RawConsensusStore(fixture.raw).load('g');
      expect(reloaded?.accepted.map((a) => a.slot)).to.deep.equal([...Array(41).keys()]);
      expect(reloaded?.decided).to.have.length(40);
    });

    it('still reads a group stored whole by an earlier version, and adds to it', async () => {
      const whole = mergePersisted(emptyPersisted, {
        promised: ballot(3),
        accepted: [accepted(0, 3)],
        decided: [certificate(0)],
      });
      await fixture.raw.batch([
        { type: 'put', key: `${consensusKeyPrefix}old`, value: JSON.stringify(whole) },
      ]);
      const store = new RawConsensusStore(fixture.raw);
      await store.persist('old', { accepted: [accepted(1, 3)] });
      const state = await new RawConsensusStore(fixture.raw).load('old');
      expect(state?.promised).to.deep.equal(ballot(3));
      expect(state?.accepted.map((a) => a.slot)).to.deep.equal([0, 1]);
      expect(state?.decided.map((c) => c.slot)).to.deep.equal([0]);
    });

    it('reports a damaged stored state as CORRUPT', async () => {
      await fixture.raw.batch([{ type: 'put', key: `${consensusKeyPrefix}g`, value: '{"promised":7}' }]);
      expect(
        isEngineError(await rejection(new RawConsensusStore(fixture.raw).load('g')), 'CORRUPT'),
      ).to.equal(true);
      await fixture.raw.batch([{ type: 'put', key: `${consensusKeyPrefix}h`, value: 'not json' }]);
      expect(
        isEngineError(await rejection(new RawConsensusStore(fixture.raw).load('h')), 'CORRUPT'),
      ).to.equal(true);
    });
  });
}

compliance('MemoryRawStore', async () => {
  const raw = new MemoryRawStore();
  await raw.open();
  return {
    get raw() {
      return raw;
    },
    reopen: async () => {
      await raw.close();
      await raw.open();
      return raw;
    },
    cleanup: () => raw.close(),
  };
});

compliance('LevelRawStore', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'optimystic-consensus-'));
  let raw = new LevelRawStore(dir);
  await raw.open();
  return {
    get raw() {
      return raw;
    },
    reopen: async () => {
      await raw.close();
      raw = new LevelRawStore(dir);
      await raw.open();
      return raw;
    },
    cleanup: async () => {
      await raw.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe('RawConsensusStore durability', () => {
  it('resolves a persist only once it is synced (a crash right after loses nothing)', async () => {
    const raw = new MemoryRawStore();
    await raw.open();
    const store = new RawConsensusStore(raw);
    await store.persist('g', { promised: ballot(4), accepted: [accepted(0, 4)] });
    raw.dropUnsynced();
    const state = await new RawConsensusStore(raw).load('g');
    expect(state?.promised).to.deep.equal(ballot(4));
    expect(state?.accepted).to.have.length(1);
  });

  it('does not wait for a sync to record decisions alone: they go to disk with the next synced write', async () => {
    const raw = new MemoryRawStore();
    await raw.open();
    const store = new RawConsensusStore(raw);
    await store.persist('g', { promised: ballot(4), accepted: [accepted(0, 4), accepted(1, 4)] });
    await store.persist('g', { decided: [certificate(0)] });
    // Visible at once, to this store and to a reader of the raw store.
    expect((await store.load('g'))?.decided.map((c) => c.slot)).to.deep.equal([0]);
    expect((await new RawConsensusStore(raw).load('g'))?.decided.map((c) => c.slot)).to.deep.equal([0]);
    // A crash now loses the decision, never the vote it can be learned again from.
    raw.dropUnsynced();
    let state = await new RawConsensusStore(raw).load('g');
    expect(state?.decided).to.deep.equal([]);
    expect(state?.accepted).to.have.length(2);
    // The next persist that carries a vote syncs, and the decision recorded before it goes with it.
    const again = new RawConsensusStore(raw);
    await again.persist('g', { decided: [certificate(0)] });
    await again.persist('g', { accepted: [accepted(2, 4)] });
    raw.dropUnsynced();
    state = await new RawConsensusStore(raw).load('g');
    expect(state?.decided.map((c) => c.slot)).to.deep.equal([0]);
    expect(state?.accepted).to.have.length(3);
  });

  it('lets concurrent persists of different groups share one synced write', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'optimystic-consensus-'));
    const raw = new LevelRawStore(dir);
    await raw.open();
    try {
      const store = new RawConsensusStore(raw);
      const before = raw.flushCount;
      await Promise.all(
        Array.from({ length: 32 }, (_, i) => store.persist(`g${i}`, { promised: ballot(i + 1) })),
      );
      const flushes = raw.flushCount - before;
      expect(flushes).to.be.at.least(1);
      expect(flushes).to.be.at.most(4);
      for (let i = 0; i < 32; i++) expect((await store.load(`g${i}`))?.promised).to.deep.equal(ballot(i + 1));
    } finally {
      await raw.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
