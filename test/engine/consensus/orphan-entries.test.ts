import { expect } from 'chai';
import { ManualClock } from '../../../src/engine/base/clock.js';
import { EngineError } from '../../../src/engine/base/errors.js';
import { SeededRng } from '../../../src/engine/base/rng.js';
import { NetworkCertifier } from '../../../src/engine/cluster/certifier.js';
import { MemoryConsensusNetwork } from '../../../src/engine/consensus/memory-network.js';
import { isLogBlock, type LogEntry } from '../../../src/engine/collections/log/log-block.js';
import { SoloNode, type NodeWiring, type WiringParts } from '../../../src/engine/node/solo-node.js';
import type { Block } from '../../../src/engine/storage/block.js';
import { MemoryRawStore } from '../../../src/engine/storage/memory-store.js';
import type { BlockStore } from '../../../src/engine/storage/block-store.js';
import { LocalRepo } from '../../../src/engine/transactions/local-repo.js';
import { LogTail } from '../../../src/engine/transactions/log-tail.js';
import type { TailClient } from '../../../src/engine/transactions/protocol.js';
import { derivedMembers } from '../../sim/identities.js';
import { timing } from './harness.js';

/**
 * A tail that got an entry decided by its group but failed to write it (the leader stopped, its log
 * holders were unreachable) leaves an "orphan" decision. The next tail to decide in that log must
 * write the orphan at its LSN first (never reuse the LSN), and the orphan's pends — left in place by
 * the coordinator, since the outcome was in doubt — are promoted.
 */
describe('decisions a tail took but never wrote', () => {
  interface Setup {
    node: SoloNode;
    members: string[];
    certifier: NetworkCertifier;
    clock: ManualClock;
    /** Moves time on in ticks, so the group's members keep hearing each other. */
    passTime: (ms: number) => Promise<void>;
    failLogWrites: (fail: boolean) => void;
    /** Replaces the tail with a fresh one (another member takes over; nothing cached). */
    takeOver: () => LogTail;
    logEntries: (collection: string) => Promise<LogEntry[]>;
  }

  async function setup(): Promise<Setup> {
    const clock = new ManualClock(1_700_000_000_000);
    const identities = derivedMembers('orphans', 3);
    const members = identities.map((i) => i.id).sort();
    const network = new MemoryConsensusNetwork({ clock }, { timing });
    for (const identity of identities) network.addMember(identity);
    const certifier = new NetworkCertifier(network, 'net');
    let fail = false;
    let tail!: LogTail;
    let makeTail!: () => LogTail;
    let blocksOf!: WiringParts['blocks'];
    const wiring = (parts: WiringParts): NodeWiring => {
      blocksOf = parts.blocks;
      const repo = new LocalRepo({ blocks: parts.blocks, certifier }, { members });
      // The tail's own block writes (log and header blocks) fail while `fail` is set.
      const logBlocks = new Proxy(parts.blocks, {
        get(target, prop) {
          if (prop === 'apply')
            return (revisions: Parameters<BlockStore['apply']>[0]) =>
              fail
                ? Promise.reject(new EngineError('UNAVAILABLE', 'the log holders are unreachable'))
                : target.apply(revisions);
          const value: unknown = Reflect.get(target, prop, target);
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
      makeTail = () =>
        new LogTail({ blocks: logBlocks, repo, certifier, clock: parts.clock, rng: parts.rng }, { members });
      tail = makeTail();
      const tails: TailClient = {
        view: (c, claim) => tail.view(c, claim),
        create: (r) => tail.create(r),
        commit: (r) => tail.commit(r),
        prepare: (r) => tail.prepare(r),
        decide: (r) => tail.decide(r),
        propagated: (c, lsn) => tail.propagated(c, lsn),
        outcomeOf: (c, t) => tail.outcomeOf(c, t),
        check: (r) => tail.check(r),
      };
      return {
        repo,
        tails,
        certifier,
        membersFor: () => members,
        reader: parts.blocks,
        catalog: parts.catalog,
        holders: () => Promise.resolve([]),
      };
    };
    const raw = new MemoryRawStore();
    await raw.open();
    const node = await SoloNode.open({ raw, rng: new SeededRng(3), clock }, { wiring });
    return {
      node,
      members,
      certifier,
      clock,
      passTime: async (ms) => {
        for (let t = 0; t < ms; t += 50) {
          clock.advance(50);
          await network.tick();
        }
      },
      failLogWrites: (value) => (fail = value),
      takeOver: () => (tail = makeTail()),
      logEntries: async (collection) => {
        const info = await node.collectionInfo(collection);
        const entries: LogEntry[] = [];
        let id: string | null = info.tail;
        // Walk back from the tail to the first log block.
        while (id !== null) {
          const block: Block | undefined = (await blocksOf.latest(id))?.block;
          if (!isLogBlock(block)) break;
          entries.unshift(...block.entries);
          id = block.prior;
        }
        return entries;
      },
    };
  }

  const put = (key: string, value: number) => ({
    actions: [{ collection: 'accounts', op: 'put' as const, key, value }],
  });

  it('writes the lost entry at its LSN before the next decision, and its pends are promoted', async () => {
    const s = await setup();
    await s.node.createCollection('accounts', 'tree');
    expect((await s.node.transact(put('a', 1))).ok).to.equal(true);
    s.failLogWrites(true);
    const lost = await s.node.transact(put('b', 2));
    expect(lost.ok).to.equal(false);
    if (!lost.ok) expect(lost.error.code).to.equal('UNAVAILABLE');
    s.failLogWrites(false);
    s.takeOver();
    const next = await s.node.transact(put('c', 3));
    expect(next.ok, JSON.stringify(next)).to.equal(true);

    const entries = await s.logEntries('accounts');
    const lsns = entries.map((e) => e.lsn);
    expect(lsns).to.deep.equal(lsns.map((_, i) => lsns[0]! + i)); // contiguous, each once
    expect(new Set(entries.map((e) => e.trxId)).size).to.equal(entries.length);
    const orphan = entries.find((e) => Array.isArray(e.actions) && JSON.stringify(e.actions).includes('"b"'));
    expect(orphan, 'the decided entry is in the log').to.not.equal(undefined);
    expect(orphan!.status).to.equal('committed');
    expect(s.certifier.verify(orphan!.certificate, s.members)).to.equal(true);
    const c = entries.at(-1)!;
    expect(c.lsn).to.equal(orphan!.lsn + 1);
    // The coordinator left b's pends (the outcome was in doubt); the tail promoted them.
    expect(await s.node.get('accounts', 'b')).to.deep.include({ found: true, value: 2 });
    expect(await s.node.get('accounts', 'c')).to.deep.include({ found: true, value: 3 });
    await s.node.close();
  });

  it('settles an expired transaction: the lost decision when there is one, a binding refusal otherwise', async () => {
    const s = await setup();
    await s.node.createCollection('accounts', 'tree');
    expect((await s.node.transact(put('a', 1))).ok).to.equal(true);
    s.failLogWrites(true);
    expect((await s.node.transact(put('b', 2))).ok).to.equal(false);
    s.failLogWrites(false);
    const tail = s.takeOver();
    const before = await s.logEntries('accounts');
    // The pends of b expire; their holder asks the tail, which finds the decision.
    await s.passTime(60_000);
    await s.node.sweepExpired();
    expect(await s.node.get('accounts', 'b')).to.deep.include({ found: true, value: 2 });
    const after = await s.logEntries('accounts');
    expect(after.length).to.equal(before.length + 1);
    expect(after.at(-1)!.status).to.equal('committed');

    // A transaction no one decided: the tail fences the log (writing any decision it lacked), then
    // its group refuses the transaction for good, and the answer is final.
    expect(await tail.outcomeOf('accounts', 'trx-never-seen')).to.equal('aborted');
    const fenced = await s.logEntries('accounts');
    expect(fenced.length).to.equal(after.length + 2);
    expect(fenced.at(-2)!.actions).to.deep.equal({ fence: true });
    expect(fenced.at(-1)).to.deep.include({ trxId: 'trx-never-seen', status: 'aborted', writes: [] });
    expect(fenced.at(-1)!.actions).to.deep.equal({ refused: true });
    // One fence serves the questions of the next moment; each transaction gets its own refusal.
    expect(await tail.outcomeOf('accounts', 'trx-other')).to.equal('aborted');
    expect((await s.logEntries('accounts')).length).to.equal(fenced.length + 1);
    // Known transactions (refused ones included) are answered from the log, writing nothing.
    expect(await tail.outcomeOf('accounts', after.at(-1)!.trxId)).to.equal('committed');
    expect(await tail.outcomeOf('accounts', 'trx-never-seen')).to.equal('aborted');
    expect((await s.logEntries('accounts')).length).to.equal(fenced.length + 1);
    // A prepare or commit of a refused transaction that arrives late is refused: the answer the
    // asker acted on stays true.
    const view = await tail.view('accounts');
    const late = {
      collection: 'accounts',
      trxId: 'trx-never-seen',
      baseLsn: view.stableLsn,
      reads: [],
      writes: [],
      actions: [],
    };
    const prepared = await tail.prepare({
      ...late,
      participants: ['accounts', 'ledger'],
      expiresAt: s.clock.now() + 60_000,
    });
    expect(prepared).to.deep.include({ status: 'conflict' });
    expect(await tail.commit(late)).to.deep.include({ status: 'conflict' });
    expect((await s.logEntries('accounts')).length).to.equal(fenced.length + 1);
    await s.node.close();
  });

  it('answers a prepared entry with the final decision its group took but never wrote, not "prepared"', async () => {
    const s = await setup();
    await s.node.createCollection('accounts', 'tree');
    expect((await s.node.transact(put('a', 1))).ok).to.equal(true);
    const first = s.takeOver();
    const view = await first.view('accounts');
    const prepare = (trxId: string) =>
      first.prepare({
        collection: 'accounts',
        trxId,
        baseLsn: view.stableLsn,
        reads: [],
        writes: [],
        actions: [],
        participants: ['accounts', 'ledger'],
        expiresAt: s.clock.now() + 60_000,
      });
    expect((await prepare('trx-aborted')).status).to.equal('prepared');
    expect((await prepare('trx-open')).status).to.equal('prepared');
    // Its coordinator aborts it in time; the group decides so, the log write is lost.
    s.failLogWrites(true);
    const aborted = await first
      .decide({ collection: 'accounts', trxId: 'trx-aborted', outcome: 'aborted', proof: [] })
      .then(
        () => 'written',
        (error: unknown) => (error as EngineError).code,
      );
    expect(aborted).to.not.equal('written');
    s.failLogWrites(false);
    const entries = await s.logEntries('accounts');
    expect(entries.find((e) => e.trxId === 'trx-aborted')?.status).to.equal('prepared');

    // Another member's tail, asked by the other participant: the abort, now also in the log.
    const next = s.takeOver();
    expect(await next.outcomeOf('accounts', 'trx-aborted')).to.equal('aborted');
    const after = await s.logEntries('accounts');
    expect(after.find((e) => e.trxId === 'trx-aborted')?.status).to.equal('aborted');
    // An entry its group decided nothing more about stays prepared (and is not decided by the asking).
    expect(await next.outcomeOf('accounts', 'trx-open')).to.equal('prepared');
    expect((await s.logEntries('accounts')).find((e) => e.trxId === 'trx-open')?.status).to.equal('prepared');
    // The asker may commit on that answer: its coordinator can no longer abort it (in doubt: the tails
    // decide), though the tails' resolution still can.
    const late = await next
      .decide({ collection: 'accounts', trxId: 'trx-open', outcome: 'aborted', proof: [] })
      .then(
        () => 'aborted',
        (error: unknown) => [(error as EngineError).code, (error as EngineError).details?.['inDoubt']],
      );
    expect(late).to.deep.equal(['UNAVAILABLE', true]);
    expect((await s.logEntries('accounts')).find((e) => e.trxId === 'trx-open')?.status).to.equal('prepared');
    await s.node.close();
  });
});
