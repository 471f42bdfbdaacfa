import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { AssertionFailure } from '../../../src/engine/base/assert.js';
import { isEngineError, type EngineError } from '../../../src/engine/base/errors.js';
import { newBlockId, newTrxId, type BlockId, type TrxId } from '../../../src/engine/base/ids.js';
import { limits } from '../../../src/engine/base/limits.js';
import { SeededRng } from '../../../src/engine/base/rng.js';
import {
  applyOps,
  applyTransform,
  blockTypes,
  type Block,
  type BlockOp,
  type BlockTransform,
} from '../../../src/engine/storage/block.js';
import type { BlockState, PendingTransform } from '../../../src/engine/storage/block-store.js';
import { LevelRawStore } from '../../../src/engine/storage/level-store.js';
import { MemoryRawStore } from '../../../src/engine/storage/memory-store.js';
import type { RawOp, RawRange, RawStore } from '../../../src/engine/storage/raw-store.js';
import { VersionedBlockStore } from '../../../src/engine/storage/versioned-block-store.js';

/** Passes everything through to a real store, counting what the block store asks of it. */
class CountingRawStore implements RawStore {
  batches = 0;
  syncs = 0;
  /** Puts written, by key prefix (the part before the first '/'). */
  readonly puts = new Map<string, number>();
  gets = 0;
  iterates = 0;
  /** Keys yielded by iterate, by their prefix (the part before the first '/'). */
  readonly iterated = new Map<string, number>();
  /** Present when the inner store has it and `writesAtOnce` (the store then writes without waiting). */
  readonly batchNow?: (ops: readonly RawOp[]) => Promise<void> | undefined;
  constructor(
    readonly inner: RawStore,
    writesAtOnce = true,
  ) {
    const now = inner.batchNow?.bind(inner);
    if (writesAtOnce && now !== undefined)
      this.batchNow = (ops) => {
        this.batches++;
        return now(this.counted(ops));
      };
  }
  reset(): void {
    this.batches = this.syncs = this.gets = this.iterates = 0;
    this.iterated.clear();
    this.puts.clear();
  }
  open(): Promise<void> {
    return this.inner.open();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  /** While set, a get() of this key reads at the call but answers only once `until` resolves. */
  holdGet: { readonly key: string; readonly until: Promise<void> } | undefined;
  /** While set, every getMany() reads at the call but answers only once it resolves. */
  holdGetMany: Promise<void> | undefined;
  async get(key: string): Promise<string | undefined> {
    this.gets++;
    const hold = this.holdGet?.key === key ? this.holdGet.until : undefined;
    const value = this.inner.get(key);
    if (hold !== undefined) await hold;
    return value;
  }
  async getMany(keys: readonly string[]): Promise<Array<string | undefined>> {
    this.gets += keys.length;
    const hold = this.holdGetMany;
    const values = this.inner.getMany(keys);
    if (hold !== undefined) await hold;
    return values;
  }
  /** Keys of puts whose value the inner store read (a value may be encoded on first read). */
  readonly valuesRead = new Set<string>();
  batch(ops: readonly RawOp[]): Promise<void> {
    this.batches++;
    return this.inner.batch(this.counted(ops));
  }
  /** The ops with their puts counted, and each put's value read through a getter that records it. */
  private counted(ops: readonly RawOp[]): RawOp[] {
    const read = this.valuesRead;
    return ops.map((op): RawOp => {
      if (op.type !== 'put') return op;
      const prefix = op.key.split('/')[0]!;
      this.puts.set(prefix, (this.puts.get(prefix) ?? 0) + 1);
      return {
        type: 'put',
        key: op.key,
        ...(op.absent !== undefined ? { absent: op.absent } : {}),
        get value(): string {
          read.add(op.key);
          return op.value;
        },
      };
    });
  }
  sync(): Promise<void> {
    this.syncs++;
    return this.inner.sync();
  }
  iterate(range: RawRange): AsyncIterable<[string, string]> {
    this.iterates++;
    const entries = this.inner.iterate(range);
    const counts = this.iterated;
    return (async function* () {
      for await (const entry of entries) {
        const prefix = entry[0].split('/')[0]!;
        counts.set(prefix, (counts.get(prefix) ?? 0) + 1);
        yield entry;
      }
    })();
  }
  sizeBytes(): Promise<number> {
    return this.inner.sizeBytes();
  }
}

interface RawFixture {
  readonly raw: RawStore;
  /** Given that the raw store was closed, an open one on the same data. */
  readonly reopen: () => Promise<RawStore>;
  /** Simulates a crash that loses unsynced batches (memory only). */
  readonly crash?: () => void;
  readonly cleanup: () => Promise<void>;
}

function leafBlock(id: BlockId, fields: Record<string, unknown> = {}): Block {
  return { header: { id, type: blockTypes.treeLeaf, collection: 'c' }, ...fields };
}

/**
 * `writesAtOnce` false hides the raw store's batchNow, so every mutation takes its blocks' locks and
 * awaits its batch (the path of raw stores that cannot write at once).
 */
function blockStoreSuite(name: string, makeRaw: () => Promise<RawFixture>, writesAtOnce = true): void {
  describe(`VersionedBlockStore on ${name}`, () => {
    let fixture: RawFixture;
    let raw: CountingRawStore;
    let store: VersionedBlockStore;
    let rng: SeededRng;

    beforeEach(async () => {
      fixture = await makeRaw();
      raw = new CountingRawStore(fixture.raw, writesAtOnce);
      store = new VersionedBlockStore(raw);
      rng = new SeededRng(0xb10c);
    });

    afterEach(async () => {
      await fixture.cleanup();
    });

    /** Closes the raw store (close flushes) and opens a fresh block store on the same data. */
    async function restart(init: { cacheEntriesMax?: number } = {}): Promise<void> {
      await raw.close();
      raw = new CountingRawStore(await fixture.reopen(), writesAtOnce);
      store = new VersionedBlockStore(raw, init);
    }

    function pendOf(
      trxId: TrxId,
      blockId: BlockId,
      baseRev: number,
      transform: BlockTransform,
      expiresAt = 1_000,
    ): PendingTransform {
      return { trxId, blockId, collection: 'c', baseRev, transform, expiresAt };
    }

    /** Pends and promotes one transform, as a committing transaction would. */
    async function commit(
      blockId: BlockId,
      transform: BlockTransform,
      lsn: number,
      trxId = newTrxId(rng),
    ): Promise<TrxId> {
      const baseRev = (await store.latest(blockId))?.rev ?? 0;
      const result = await store.pend([pendOf(trxId, blockId, baseRev, transform)]);
      expect(result.ok, JSON.stringify(result.outcomes)).to.equal(true);
      await store.promote({ trxId, lsn, blockIds: [blockId] });
      return trxId;
    }

    async function rejection(promise: Promise<unknown>): Promise<unknown> {
      return promise.then(
        () => undefined,
        (error: unknown) => error,
      );
    }

    describe('revisions', () => {
      it('knows nothing about a block that was never written', async () => {
        const id = newBlockId(rng);
        expect(await store.latest(id)).to.equal(undefined);
        expect(await store.at(id, { rev: 1 })).to.equal(undefined);
        expect(await store.at(id, { lsn: 10 })).to.equal(undefined);
        expect(await store.history(id)).to.deep.equal([]);
        expect(await store.pendingOf(id)).to.deep.equal([]);
      });

      it('numbers revisions from 1 through insert, update and delete, and keeps history readable after the delete', async () => {
        const id = newBlockId(rng);
        const t1 = await commit(id, { kind: 'insert', block: leafBlock(id, { n: 1 }) }, 10);
        const t2 = await commit(id, { kind: 'update', ops: [{ op: 'set', field: 'n', value: 2 }] }, 11);
        const t3 = await commit(id, { kind: 'delete' }, 12);
        expect(await store.latest(id)).to.deep.equal({ id, rev: 3, lsn: 12, trxId: t3, block: undefined });
        expect(await store.at(id, { rev: 1 })).to.deep.equal({
          id,
          rev: 1,
          lsn: 10,
          trxId: t1,
          block: leafBlock(id, { n: 1 }),
        });
        expect(await store.at(id, { rev: 2 })).to.deep.equal({
          id,
          rev: 2,
          lsn: 11,
          trxId: t2,
          block: leafBlock(id, { n: 2 }),
        });
        expect(await store.at(id, { rev: 4 })).to.equal(undefined);
        expect(await store.at(id, { rev: 0 })).to.equal(undefined);
        expect(
          (await store.history(id)).map((revision) => [
            revision.rev,
            revision.lsn,
            revision.trxId,
            revision.transform.kind,
          ]),
        ).to.deep.equal([
          [1, 10, t1, 'insert'],
          [2, 11, t2, 'update'],
          [3, 12, t3, 'delete'],
        ]);
      });

      it('continues the revision numbering when a deleted block is inserted again', async () => {
        const id = newBlockId(rng);
        await commit(id, { kind: 'insert', block: leafBlock(id, { v: 'first' }) }, 1);
        await commit(id, { kind: 'delete' }, 2);
        await commit(id, { kind: 'insert', block: leafBlock(id, { v: 'second' }) }, 3);
        const latest = await store.latest(id);
        expect(latest?.rev).to.equal(3);
        expect(latest?.block).to.deep.equal(leafBlock(id, { v: 'second' }));
        expect((await store.at(id, { rev: 2 }))?.block).to.equal(undefined);
        expect((await store.at(id, { rev: 1 }))?.block).to.deep.equal(leafBlock(id, { v: 'first' }));
      });

      it('answers at({ lsn }) with the newest revision whose lsn is at or below it', async () => {
        const id = newBlockId(rng);
        await commit(id, { kind: 'insert', block: leafBlock(id, { n: 0 }) }, 100);
        await commit(id, { kind: 'update', ops: [{ op: 'set', field: 'n', value: 1 }] }, 105);
        await commit(id, { kind: 'update', ops: [{ op: 'set', field: 'n', value: 2 }] }, 230);
        expect(await store.at(id, { lsn: 99 })).to.equal(undefined);
        expect((await store.at(id, { lsn: 100 }))?.rev).to.equal(1);
        expect((await store.at(id, { lsn: 104 }))?.rev).to.equal(1);
        expect((await store.at(id, { lsn: 105 }))?.block).to.deep.equal(leafBlock(id, { n: 1 }));
        expect((await store.at(id, { lsn: 229 }))?.rev).to.equal(2);
        expect((await store.at(id, { lsn: 230 }))?.rev).to.equal(3);
        expect((await store.at(id, { lsn: 1e9 }))?.rev).to.equal(3);
      });

      it('returns history ranges by fromRev, toRev, direction and limit', async () => {
        const id = newBlockId(rng);
        await commit(id, { kind: 'insert', block: leafBlock(id, { n: 0 }) }, 1);
        for (let n = 1; n < 20; n++)
          await commit(id, { kind: 'update', ops: [{ op: 'set', field: 'n', value: n }] }, n + 1);
        const revs = async (range: Parameters<VersionedBlockStore['history']>[1]): Promise<number[]> =>
          (await store.history(id, range)).map((revision) => revision.rev);
        expect(await revs({})).to.deep.equal(Array.from({ length: 20 }, (_, i) => i + 1));
        expect(await revs({ fromRev: 5, toRev: 8 })).to.deep.equal([5, 6, 7, 8]);
        expect(await revs({ fromRev: 18 })).to.deep.equal([18, 19, 20]);
        expect(await revs({ toRev: 3, reverse: true })).to.deep.equal([3, 2, 1]);
        expect(await revs({ reverse: true, limit: 2 })).to.deep.equal([20, 19]);
        expect(await revs({ fromRev: 10, limit: 3 })).to.deep.equal([10, 11, 12]);
        expect(await revs({ fromRev: 9, toRev: 8 })).to.deep.equal([]);
        expect(await revs({ limit: 0 })).to.deep.equal([]);
      });

      it('writes apply() revisions directly, checks baseRev with CONFLICT and writes nothing on a mismatch', async () => {
        const a = newBlockId(rng);
        const b = newBlockId(rng);
        const trx = newTrxId(rng);
        await store.apply([
          { blockId: a, trxId: trx, lsn: 1, baseRev: 0, transform: { kind: 'insert', block: leafBlock(a) } },
          { blockId: b, trxId: trx, lsn: 1, baseRev: 0, transform: { kind: 'insert', block: leafBlock(b) } },
        ]);
        raw.reset();
        const error = await rejection(
          store.apply([
            {
              blockId: a,
              trxId: newTrxId(rng),
              lsn: 2,
              baseRev: 1,
              transform: { kind: 'update', ops: [{ op: 'set', field: 'x', value: 1 }] },
            },
            {
              blockId: b,
              trxId: newTrxId(rng),
              lsn: 2,
              baseRev: 5,
              transform: { kind: 'update', ops: [{ op: 'set', field: 'x', value: 1 }] },
            },
          ]),
        );
        expect(isEngineError(error, 'CONFLICT'), String(error)).to.equal(true);
        expect(raw.batches).to.equal(0);
        expect((await store.latest(a))?.rev).to.equal(1);
        expect((await store.stats()).blocks).to.equal(2);
      });

      it('applies several revisions of one block in one apply() call, and skips them when replayed', async () => {
        const id = newBlockId(rng);
        const revisions = [
          {
            blockId: id,
            trxId: newTrxId(rng),
            lsn: 1,
            baseRev: 0,
            transform: { kind: 'insert', block: leafBlock(id, { list: [] }) } as const,
          },
          {
            blockId: id,
            trxId: newTrxId(rng),
            lsn: 2,
            baseRev: 1,
            transform: {
              kind: 'update',
              ops: [{ op: 'splice', field: 'list', index: 0, remove: 0, items: ['a'] }],
            } as const,
          },
          {
            blockId: id,
            trxId: newTrxId(rng),
            lsn: 3,
            baseRev: 2,
            transform: {
              kind: 'update',
              ops: [{ op: 'splice', field: 'list', index: 1, remove: 0, items: ['b'] }],
            } as const,
          },
        ];
        await store.apply(revisions);
        await store.apply(revisions);
        await Promise.all([store.apply(revisions.slice(1)), store.apply(revisions)]);
        const latest = await store.latest(id);
        expect(latest?.rev).to.equal(3);
        expect(latest?.block).to.deep.equal(leafBlock(id, { list: ['a', 'b'] }));
        expect(await store.history(id)).to.have.length(3);
      });

      it('materialises any revision of long random histories exactly as replaying every transform does', async function () {
        this.timeout(60_000);
        const model = new Map<BlockId, Array<BlockState>>();
        const ids = [newBlockId(rng), newBlockId(rng), newBlockId(rng)];
        for (const id of ids) model.set(id, []);
        // A small cache, so most reads miss it and go to b/.
        store = new VersionedBlockStore(raw, { cacheEntriesMax: 2 });
        let lsn = 0;
        for (let step = 0; step < 3 * 130; step++) {
          const id = ids[rng.int(ids.length)]!;
          const states = model.get(id)!;
          const previous = states[states.length - 1];
          const transform = randomTransform(rng, id, previous?.block);
          lsn += 1 + rng.int(3);
          const trxId = newTrxId(rng);
          const baseRev = previous?.rev ?? 0;
          if (rng.float() < 0.5) {
            await store.apply([{ blockId: id, trxId, lsn, baseRev, transform }]);
          } else {
            const result = await store.pend([pendOf(trxId, id, baseRev, transform, lsn)]);
            expect(result.ok, JSON.stringify(result.outcomes)).to.equal(true);
            await store.promote({ trxId, lsn, blockIds: [id] });
          }
          states.push({
            id,
            rev: baseRev + 1,
            lsn,
            trxId,
            block: applyTransform(previous?.block, transform),
          });
          if (step % 97 === 0) await store.sync();
        }
        const check = async (): Promise<void> => {
          for (const id of ids) {
            const states = model.get(id)!;
            expect(states.length).to.be.greaterThan(100);
            for (const state of states)
              expect(await store.at(id, { rev: state.rev }), `rev ${state.rev}`).to.deep.equal(state);
            expect(await store.latest(id)).to.deep.equal(states[states.length - 1]);
            for (let probe = 0; probe < 60; probe++) {
              const wanted = rng.int(lsn + 2);
              const expected = states.filter((state) => state.lsn <= wanted).pop();
              expect(await store.at(id, { lsn: wanted }), `lsn ${wanted}`).to.deep.equal(expected);
            }
            const history = await store.history(id);
            expect(history.map((revision) => [revision.rev, revision.lsn, revision.trxId])).to.deep.equal(
              states.map((state) => [state.rev, state.lsn, state.trxId]),
            );
          }
        };
        await check();
        await restart({ cacheEntriesMax: 2 });
        await check();
      });

      it('materialises a past revision from the nearest snapshot, reading fewer than materialiseEveryRevs revisions', async () => {
        const every = limits.materialiseEveryRevs;
        const id = newBlockId(rng);
        await commit(id, { kind: 'insert', block: leafBlock(id, { n: 0 }) }, 1);
        const total = every * 4 + 3;
        for (let n = 1; n < total; n++)
          await commit(id, { kind: 'update', ops: [{ op: 'set', field: 'n', value: n }] }, n + 1);
        for (let rev = 1; rev <= total; rev++) {
          raw.reset();
          const state = await store.at(id, { rev });
          expect(state?.block).to.deep.equal(leafBlock(id, { n: rev - 1 }));
          expect(raw.iterated.get('r') ?? 0, `revisions read for rev ${rev}`).to.be.below(every);
          expect(raw.iterated.get('m') ?? 0).to.equal(0);
          expect(raw.gets, `gets for rev ${rev}`).to.be.at.most(1);
        }
      });

      it('reads the latest state from memory, or after a restart from fewer than materialiseEveryRevs revisions', async () => {
        const every = limits.materialiseEveryRevs;
        const id = newBlockId(rng);
        await commit(id, { kind: 'insert', block: leafBlock(id, { n: 0 }) }, 1);
        for (let n = 1; n < 40; n++)
          await commit(id, { kind: 'update', ops: [{ op: 'set', field: 'n', value: n }] }, n + 1);
        raw.reset();
        expect((await store.latest(id))?.rev).to.equal(40);
        expect(raw.gets + raw.iterates).to.equal(0);
        // Each revision count from the one on a snapshot to the one just before the next snapshot.
        for (const total of [2 * every, 2 * every + 1, 3 * every - 1]) {
          const other = newBlockId(rng);
          await commit(other, { kind: 'insert', block: leafBlock(other, { n: 0 }) }, 1);
          for (let n = 1; n < total; n++)
            await commit(other, { kind: 'update', ops: [{ op: 'set', field: 'n', value: n }] }, n + 1);
          await restart();
          raw.reset();
          const [first, second] = await Promise.all([store.latest(other), store.latest(other)]);
          expect(first?.rev).to.equal(total);
          expect(first?.block).to.deep.equal(leafBlock(other, { n: total - 1 }));
          expect(second).to.equal(first);
          // b/, then the snapshot the revisions build on, and the revisions after it in one range.
          expect(raw.gets).to.be.at.most(2);
          expect(raw.iterates).to.be.at.most(1);
          expect(raw.iterated.get('r') ?? 0).to.be.below(every);
          raw.reset();
          expect(await store.latest(other)).to.equal(first);
          expect(raw.gets + raw.iterates).to.equal(0);
        }
      });

      it('writes b/ when a block is created, deleted or created again, not at every revision', async () => {
        const id = newBlockId(rng);
        const puts = (): number => raw.puts.get('b') ?? 0;
        raw.reset();
        await commit(id, { kind: 'insert', block: leafBlock(id, { n: 0 }) }, 1);
        expect(puts()).to.equal(1);
        for (let n = 1; n < 5; n++)
          await commit(id, { kind: 'update', ops: [{ op: 'set', field: 'n', value: n }] }, n + 1);
        // A sealing revision (`whole`) is stored like any other.
        await store.apply([
          {
            blockId: id,
            trxId: newTrxId(rng),
            lsn: 6,
            baseRev: 5,
            transform: { kind: 'update', ops: [{ op: 'set', field: 'n', value: 5 }] },
            whole: true,
          },
        ]);
        expect(puts()).to.equal(1);
        await restart();
        raw.reset();
        const state = await store.latest(id);
        expect(state?.rev).to.equal(6);
        expect(state?.block).to.deep.equal(leafBlock(id, { n: 5 }));
        expect(raw.gets).to.equal(1);
        expect(raw.iterates).to.equal(1);
        await commit(id, { kind: 'update', ops: [{ op: 'set', field: 'n', value: 6 }] }, 7);
        expect(puts()).to.equal(0);
        await commit(id, { kind: 'delete' }, 8);
        await commit(id, { kind: 'insert', block: leafBlock(id, { n: 9 }) }, 9);
        expect(puts()).to.equal(2);
        await restart();
        expect(await store.latest(id)).to.deep.include({ rev: 9, lsn: 9, block: leafBlock(id, { n: 9 }) });
        expect((await store.at(id, { rev: 8 }))?.block).to.equal(undefined);
      });

      it('does not look up the ids an apply names fresh, and still applies their revisions', async () => {
        const fresh = newBlockId(rng);
        const old = newBlockId(rng);
        await commit(old, { kind: 'insert', block: leafBlock(old, { n: 0 }) }, 1);
        await restart();
        await store.stats(); // the counters
        await store.latest(old);
        raw.reset();
        const trxId = newTrxId(rng);
        await store.apply(
          [
            {
              blockId: old,
              trxId,
              lsn: 2,
              baseRev: 1,
              transform: { kind: 'update', ops: [{ op: 'set', field: 'n', value: 1 }] },
            },
            {
              blockId: fresh,
              trxId,
              lsn: 2,
              baseRev: 0,
              transform: { kind: 'insert', block: leafBlock(fresh) },
            },
          ],
          { fresh: [fresh] },
        );
        expect(raw.gets).to.equal(0);
        raw.reset();
        expect(await store.latest(fresh)).to.deep.equal({
          id: fresh,
          rev: 1,
          lsn: 2,
          trxId,
          block: leafBlock(fresh),
        });
        expect(raw.gets + raw.iterates).to.equal(0);
        await restart();
        expect((await store.latest(old))?.block).to.deep.equal(leafBlock(old, { n: 1 }));
        expect((await store.latest(fresh))?.rev).to.equal(1);
        expect(await store.stats()).to.deep.include({ blocks: 2 });
      });

      it('reads b/ records of older stores (whole, or naming the latest revision) and rewrites them at the next revision', async () => {
        const every = limits.materialiseEveryRevs;
        const ids = [newBlockId(rng), newBlockId(rng)];
        const states: BlockState[] = [];
        for (const id of ids) {
          await commit(id, { kind: 'insert', block: leafBlock(id, { n: 0 }) }, 1);
          for (let n = 1; n < every + 3; n++)
            await commit(id, { kind: 'update', ops: [{ op: 'set', field: 'n', value: n }] }, n + 1);
          states.push((await store.latest(id))!);
        }
        const [whole, named] = states as [BlockState, BlockState];
        await raw.batch([
          {
            type: 'put',
            key: `b/${whole.id}`,
            value: JSON.stringify({
              rev: whole.rev,
              lsn: whole.lsn,
              trxId: whole.trxId,
              deleted: false,
              block: whole.block,
            }),
          },
          {
            type: 'put',
            key: `b/${named.id}`,
            value: JSON.stringify({
              rev: named.rev,
              lsn: named.lsn,
              trxId: named.trxId,
              deleted: false,
              lazy: true,
            }),
          },
        ]);
        await restart();
        raw.reset();
        expect(await store.latest(whole.id)).to.deep.equal(whole);
        expect(await store.latest(named.id)).to.deep.equal(named);
        for (const state of states)
          await commit(state.id, { kind: 'update', ops: [{ op: 'set', field: 'n', value: -1 }] }, 100);
        expect(raw.puts.get('b')).to.equal(2);
        await restart();
        for (const state of states) {
          const latest = await store.latest(state.id);
          expect(latest?.rev).to.equal(state.rev + 1);
          expect(latest?.block).to.deep.equal(leafBlock(state.id, { n: -1 }));
        }
      });

      it('never caches a read of the latest state that a concurrent write overtook', async () => {
        store = new VersionedBlockStore(raw, { cacheEntriesMax: 1 });
        const x = newBlockId(rng);
        const trx = newTrxId(rng);
        await commit(x, { kind: 'insert', block: leafBlock(x, { n: 1 }) }, 1);
        await store.pend([pendOf(trx, x, 1, { kind: 'update', ops: [{ op: 'set', field: 'n', value: 2 }] })]);
        // A store opened afresh reads the pend back from p/ (it keeps only the pends it took itself).
        await restart({ cacheEntriesMax: 1 });
        await store.stats(); // loads the pend index, so the promote goes straight to its lookups
        expect((await store.latest(x))?.rev).to.equal(1);
        // The promote finds x in the cache, then waits on its pend lookup.
        let releasePromote!: () => void;
        raw.holdGetMany = new Promise((resolve) => {
          releasePromote = resolve;
        });
        const promoting = store.promote({ trxId: trx, lsn: 2, blockIds: [x] });
        await new Promise((resolve) => setImmediate(resolve));
        raw.holdGetMany = undefined;
        // Another block pushes x out of the cache, and a reader starts loading x's (still old) state.
        await store.latest(newBlockId(rng));
        let releaseRead!: () => void;
        raw.holdGet = {
          key: `b/${x}`,
          until: new Promise((resolve) => {
            releaseRead = resolve;
          }),
        };
        const reading = store.latest(x);
        raw.holdGet = undefined;
        releasePromote();
        await promoting;
        releaseRead();
        // The read found x's b/ before the promote and its revisions after it: either state is a
        // latest one it may answer, but not one to keep.
        expect([1, 2]).to.include((await reading)?.rev);
        expect((await store.latest(x))?.rev).to.equal(2);
      });
    });

    describe('pending transforms', () => {
      it('promotes a pend it took without reading it back, and one found on open from p/', async () => {
        const x = newBlockId(rng);
        const y = newBlockId(rng);
        await commit(x, { kind: 'insert', block: leafBlock(x, { n: 1 }) }, 1);
        await commit(y, { kind: 'insert', block: leafBlock(y, { n: 1 }) }, 2);
        const kept = newTrxId(rng);
        await store.pend([
          pendOf(kept, x, 1, { kind: 'update', ops: [{ op: 'set', field: 'n', value: 2 }] }),
        ]);
        raw.reset();
        await store.promote({ trxId: kept, lsn: 3, blockIds: [x] });
        expect(raw.gets).to.equal(0);
        expect((await store.latest(x))?.block).to.deep.equal(leafBlock(x, { n: 2 }));
        const found = newTrxId(rng);
        await store.pend([
          pendOf(found, y, 1, { kind: 'update', ops: [{ op: 'set', field: 'n', value: 3 }] }),
        ]);
        await restart();
        await store.latest(y);
        await store.stats(); // the pend index, rebuilt from x/
        raw.reset();
        await store.promote({ trxId: found, lsn: 4, blockIds: [y] });
        expect(raw.gets).to.equal(1);
        expect((await store.latest(y))?.block).to.deep.equal(leafBlock(y, { n: 3 }));
        expect((await store.stats()).pending).to.equal(0);
      });

      it('promotes an update with the block its pend check made, unless the block was read again since', async () => {
        // One latest state in memory: reading another block evicts the one read before.
        store = new VersionedBlockStore(raw, { cacheEntriesMax: 1 });
        const x = newBlockId(rng);
        const z = newBlockId(rng);
        await commit(x, { kind: 'insert', block: leafBlock(x, { list: [1] }) }, 1);
        await commit(z, { kind: 'insert', block: leafBlock(z) }, 2);
        let applications = 0;
        /** Ops that count how often they are applied (iterated); encoding them reads them by index. */
        const counted = (index: number): BlockOp[] =>
          new Proxy([{ op: 'splice', field: 'list', index, remove: 0, items: [index + 1] }] as BlockOp[], {
            get(target, key, receiver) {
              if (key === Symbol.iterator) applications++;
              return Reflect.get(target, key, receiver) as unknown;
            },
          });
        const first = newTrxId(rng);
        await store.pend([pendOf(first, x, 1, { kind: 'update', ops: counted(1) })]);
        expect(applications).to.equal(1);
        await store.promote({ trxId: first, lsn: 3, blockIds: [x] });
        expect(applications).to.equal(1);
        expect((await store.latest(x))?.block).to.deep.equal(leafBlock(x, { list: [1, 2] }));
        const second = newTrxId(rng);
        await store.pend([pendOf(second, x, 2, { kind: 'update', ops: counted(2) })]);
        expect(applications).to.equal(2);
        await store.latest(z);
        await store.promote({ trxId: second, lsn: 4, blockIds: [x] });
        expect(applications).to.equal(3);
        expect((await store.latest(x))?.block).to.deep.equal(leafBlock(x, { list: [1, 2, 3] }));
      });

      it('never encodes a pend that is promoted before the next sync, and encodes one that is synced first', async function () {
        // A store that reads values as they are written (the memory store) encodes every pend.
        if (name !== 'LevelRawStore') this.skip();
        const x = newBlockId(rng);
        await commit(x, { kind: 'insert', block: leafBlock(x, { n: 1 }) }, 1);
        await store.sync();
        const quick = newTrxId(rng);
        await store.pend([
          pendOf(quick, x, 1, { kind: 'update', ops: [{ op: 'set', field: 'n', value: 2 }] }),
        ]);
        await store.promote({ trxId: quick, lsn: 2, blockIds: [x] });
        await store.sync();
        expect(raw.valuesRead.has(`p/${x}/${quick}`)).to.equal(false);
        const slow = newTrxId(rng);
        const item = pendOf(slow, x, 2, { kind: 'update', ops: [{ op: 'set', field: 'n', value: 3 }] });
        await store.pend([item]);
        await store.sync();
        expect(raw.valuesRead.has(`p/${x}/${slow}`)).to.equal(true);
        await restart();
        expect(await store.pendingOf(x)).to.deep.equal([item]);
        await store.promote({ trxId: slow, lsn: 3, blockIds: [x] });
        expect((await store.latest(x))?.block).to.deep.equal(leafBlock(x, { n: 3 }));
      });

      it('stores an ok pend, lists it for its block and counts it', async () => {
        const id = newBlockId(rng);
        const trx = newTrxId(rng);
        const item = pendOf(trx, id, 0, { kind: 'insert', block: leafBlock(id) }, 500);
        expect(await store.pend([item])).to.deep.equal({ ok: true, outcomes: [{ status: 'ok' }] });
        expect(await store.pendingOf(id)).to.deep.equal([item]);
        expect((await store.stats()).pending).to.equal(1);
        expect(await store.latest(id)).to.equal(undefined);
      });

      it('reports a stale pend with the revisions it is missing and stores none of the transaction', async () => {
        const a = newBlockId(rng);
        const b = newBlockId(rng);
        const t1 = await commit(a, { kind: 'insert', block: leafBlock(a, { n: 0 }) }, 1);
        const t2 = await commit(a, { kind: 'update', ops: [{ op: 'set', field: 'n', value: 1 }] }, 2);
        const trx = newTrxId(rng);
        const result = await store.pend([
          pendOf(trx, b, 0, { kind: 'insert', block: leafBlock(b) }),
          pendOf(trx, a, 0, { kind: 'update', ops: [{ op: 'set', field: 'n', value: 9 }] }),
        ]);
        expect(result).to.deep.equal({
          ok: false,
          outcomes: [
            { status: 'ok' },
            {
              status: 'stale',
              currentRev: 2,
              missing: [
                { rev: 1, trxId: t1 },
                { rev: 2, trxId: t2 },
              ],
            },
          ],
        });
        expect(await store.pendingOf(b)).to.deep.equal([]);
        expect((await store.stats()).pending).to.equal(0);
      });

      it('reports busy when another transaction already pends an insert of a block that does not exist yet', async () => {
        const id = newBlockId(rng);
        const first = newTrxId(rng);
        const second = newTrxId(rng);
        expect(
          (await store.pend([pendOf(first, id, 0, { kind: 'insert', block: leafBlock(id, { who: 1 }) })])).ok,
        ).to.equal(true);
        expect(
          await store.pend([pendOf(second, id, 0, { kind: 'insert', block: leafBlock(id, { who: 2 }) })]),
        ).to.deep.equal({
          ok: false,
          outcomes: [{ status: 'busy', trxId: first }],
        });
        await store.cancel(first, [id]);
        expect(
          (await store.pend([pendOf(second, id, 0, { kind: 'insert', block: leafBlock(id, { who: 2 }) })]))
            .ok,
        ).to.equal(true);
      });

      it('lets only one of many concurrent inserts of a new block pend', async () => {
        const id = newBlockId(rng);
        const trxs = Array.from({ length: 20 }, () => newTrxId(rng));
        const results = await Promise.all(
          trxs.map((trx) => store.pend([pendOf(trx, id, 0, { kind: 'insert', block: leafBlock(id) })])),
        );
        expect(results.filter((result) => result.ok)).to.have.length(1);
        expect(await store.pendingOf(id)).to.have.length(1);
      });

      it('reports full once a block holds pendingPerBlockMax pends of other transactions', async function () {
        this.timeout(30_000);
        const id = newBlockId(rng);
        await commit(id, { kind: 'insert', block: leafBlock(id, { n: 0 }) }, 1);
        const update: BlockTransform = { kind: 'update', ops: [{ op: 'set', field: 'n', value: 1 }] };
        const first = newTrxId(rng);
        expect((await store.pend([pendOf(first, id, 1, update)])).ok).to.equal(true);
        for (let i = 1; i < limits.pendingPerBlockMax; i++) {
          expect((await store.pend([pendOf(newTrxId(rng), id, 1, update)])).ok).to.equal(true);
        }
        expect(await store.pend([pendOf(newTrxId(rng), id, 1, update)])).to.deep.equal({
          ok: false,
          outcomes: [{ status: 'full' }],
        });
        // A transaction already holding one of the places may still replace its own pend.
        expect((await store.pend([pendOf(first, id, 1, update, 2_000)])).ok).to.equal(true);
        expect(await store.pendingOf(id)).to.have.length(limits.pendingPerBlockMax);
        expect((await store.stats()).pending).to.equal(limits.pendingPerBlockMax);
      });

      it('replaces a pend when the same transaction pends the block again', async () => {
        const id = newBlockId(rng);
        const trx = newTrxId(rng);
        await store.pend([pendOf(trx, id, 0, { kind: 'insert', block: leafBlock(id, { v: 1 }) }, 100)]);
        const again = pendOf(trx, id, 0, { kind: 'insert', block: leafBlock(id, { v: 2 }) }, 300);
        expect((await store.pend([again])).ok).to.equal(true);
        expect(await store.pendingOf(id)).to.deep.equal([again]);
        expect((await store.stats()).pending).to.equal(1);
        expect(await store.expired(200, 10)).to.deep.equal([]);
        expect(await store.expired(300, 10)).to.deep.equal([again]);
      });

      it('refuses pends whose transform cannot apply with BAD_INPUT, storing nothing', async () => {
        const id = newBlockId(rng);
        const missing = newBlockId(rng);
        await commit(id, { kind: 'insert', block: leafBlock(id, { n: 0 }) }, 1);
        const attempts: PendingTransform[][] = [
          [pendOf(newTrxId(rng), missing, 0, { kind: 'update', ops: [{ op: 'set', field: 'n', value: 1 }] })],
          [pendOf(newTrxId(rng), id, 1, { kind: 'insert', block: leafBlock(id) })],
          [
            pendOf(newTrxId(rng), id, 1, {
              kind: 'update',
              ops: [{ op: 'splice', field: 'n', index: 0, remove: 0, items: [] }],
            }),
          ],
          [pendOf(newTrxId(rng), missing, 0, { kind: 'insert', block: leafBlock(id) })],
          [pendOf('bad/trx', id, 1, { kind: 'delete' })],
        ];
        for (const items of attempts) {
          const error = await rejection(store.pend(items));
          expect(isEngineError(error, 'BAD_INPUT'), String(error)).to.equal(true);
        }
        expect(await store.pendingOf(id)).to.deep.equal([]);
        expect(await store.pendingOf(missing)).to.deep.equal([]);
      });

      it('cancels a transaction’s pends, ignoring blocks it never pended', async () => {
        const a = newBlockId(rng);
        const b = newBlockId(rng);
        const trx = newTrxId(rng);
        const other = newTrxId(rng);
        await store.pend([
          pendOf(trx, a, 0, { kind: 'insert', block: leafBlock(a) }, 10),
          pendOf(trx, b, 0, { kind: 'insert', block: leafBlock(b) }, 10),
        ]);
        const c = newBlockId(rng);
        const otherInsert = pendOf(other, c, 0, { kind: 'insert', block: leafBlock(c) }, 10);
        await store.pend([otherInsert]);
        raw.reset();
        await store.cancel(trx, [a, b, c, newBlockId(rng)]);
        expect(raw.batches).to.equal(1);
        expect(await store.pendingOf(a)).to.deep.equal([]);
        expect(await store.pendingOf(b)).to.deep.equal([]);
        expect(await store.expired(10, 10)).to.deep.equal([otherInsert]);
        expect((await store.stats()).pending).to.equal(1);
        raw.reset();
        await store.cancel(trx, [a]);
        expect(raw.batches).to.equal(0);
      });

      it('lists expired pends oldest first, at most limit, up to and including now', async () => {
        const items = [500, 100, 300, 300, 900].map((expiresAt) => {
          const id = newBlockId(rng);
          return pendOf(newTrxId(rng), id, 0, { kind: 'insert', block: leafBlock(id) }, expiresAt);
        });
        for (const item of items) await store.pend([item]);
        const expiries = async (now: number, limit: number): Promise<number[]> =>
          (await store.expired(now, limit)).map((item) => item.expiresAt);
        expect(await expiries(99, 10)).to.deep.equal([]);
        expect(await expiries(300, 10)).to.deep.equal([100, 300, 300]);
        expect(await expiries(1000, 2)).to.deep.equal([100, 300]);
        expect(await expiries(1000, 10)).to.deep.equal([100, 300, 300, 500, 900]);
        expect(await expiries(1000, 0)).to.deep.equal([]);
        expect((await store.expired(100, 1))[0]).to.deep.equal(items[1]);
      });
    });

    describe('promote', () => {
      it('turns a pend into the next revision tagged with the lsn and drops the pend', async () => {
        const id = newBlockId(rng);
        const trx = newTrxId(rng);
        await store.pend([pendOf(trx, id, 0, { kind: 'insert', block: leafBlock(id, { n: 1 }) }, 50)]);
        await store.promote({ trxId: trx, lsn: 7, blockIds: [id] });
        expect(await store.latest(id)).to.deep.equal({
          id,
          rev: 1,
          lsn: 7,
          trxId: trx,
          block: leafBlock(id, { n: 1 }),
        });
        expect(await store.pendingOf(id)).to.deep.equal([]);
        expect(await store.expired(100, 10)).to.deep.equal([]);
        expect(await store.stats()).to.include({ blocks: 1, pending: 0 });
      });

      it('is idempotent: promoting again, even after later revisions, changes nothing', async () => {
        const id = newBlockId(rng);
        const t1 = newTrxId(rng);
        await store.pend([pendOf(t1, id, 0, { kind: 'insert', block: leafBlock(id, { n: 1 }) })]);
        await store.promote({ trxId: t1, lsn: 1, blockIds: [id] });
        raw.reset();
        await store.promote({ trxId: t1, lsn: 1, blockIds: [id] });
        expect(raw.batches).to.equal(0);
        await commit(id, { kind: 'update', ops: [{ op: 'set', field: 'n', value: 2 }] }, 2);
        await store.promote({ trxId: t1, lsn: 1, blockIds: [id] });
        expect((await store.latest(id))?.rev).to.equal(2);
        expect(await store.history(id)).to.have.length(2);
      });

      it('promotes transactions in order, each on the revision the previous one made', async () => {
        const a = newBlockId(rng);
        const b = newBlockId(rng);
        const t1 = newTrxId(rng);
        await store.pend([
          pendOf(t1, a, 0, { kind: 'insert', block: leafBlock(a, { n: 0 }) }),
          pendOf(t1, b, 0, { kind: 'insert', block: leafBlock(b, { n: 0 }) }),
        ]);
        raw.reset();
        await store.promote({ trxId: t1, lsn: 1, blockIds: [b, a] });
        expect(raw.batches).to.equal(1);
        const t2 = newTrxId(rng);
        await store.pend([pendOf(t2, a, 1, { kind: 'update', ops: [{ op: 'set', field: 'n', value: 1 }] })]);
        await store.promote({ trxId: t2, lsn: 2, blockIds: [a] });
        const t3 = newTrxId(rng);
        await store.pend([
          pendOf(t3, a, 2, { kind: 'delete' }),
          pendOf(t3, b, 1, { kind: 'update', ops: [{ op: 'set', field: 'n', value: 3 }] }),
        ]);
        await store.promote({ trxId: t3, lsn: 3, blockIds: [a, b] });
        expect((await store.history(a)).map((revision) => revision.trxId)).to.deep.equal([t1, t2, t3]);
        expect((await store.latest(b))?.block).to.deep.equal(leafBlock(b, { n: 3 }));
        expect(await store.stats()).to.include({ blocks: 1, pending: 0 });
      });

      it('refuses a promote without its pend (UNAVAILABLE: the holder must be sent the revision), and asserts on a pend based on an older revision', async () => {
        const id = newBlockId(rng);
        await commit(id, { kind: 'insert', block: leafBlock(id, { n: 0 }) }, 1);
        const missing = await rejection(store.promote({ trxId: newTrxId(rng), lsn: 2, blockIds: [id] }));
        expect(isEngineError(missing, 'UNAVAILABLE')).to.equal(true);
        expect((missing as EngineError).details?.['missingPend']).to.equal(true);
        expect((await store.latest(id))?.rev).to.equal(1);
        const winner = newTrxId(rng);
        const loser = newTrxId(rng);
        const update: BlockTransform = { kind: 'update', ops: [{ op: 'set', field: 'n', value: 1 }] };
        await store.pend([pendOf(winner, id, 1, update)]);
        await store.pend([pendOf(loser, id, 1, update)]);
        await store.promote({ trxId: winner, lsn: 2, blockIds: [id] });
        expect(await rejection(store.promote({ trxId: loser, lsn: 3, blockIds: [id] }))).to.be.instanceOf(
          AssertionFailure,
        );
        expect((await store.latest(id))?.rev).to.equal(2);
      });

      it('drops the pend of a transaction whose revision arrives through apply()', async () => {
        const id = newBlockId(rng);
        const trx = newTrxId(rng);
        await store.pend([pendOf(trx, id, 0, { kind: 'insert', block: leafBlock(id) })]);
        await store.apply([
          {
            blockId: id,
            trxId: trx,
            lsn: 4,
            baseRev: 0,
            transform: { kind: 'insert', block: leafBlock(id) },
          },
        ]);
        expect(await store.pendingOf(id)).to.deep.equal([]);
        expect(await store.stats()).to.include({ blocks: 1, pending: 0 });
      });
    });

    describe('batches, locking and durability', () => {
      it('writes exactly one batch per mutating call and never syncs on its own', async () => {
        const a = newBlockId(rng);
        const b = newBlockId(rng);
        const trx = newTrxId(rng);
        const calls: Array<() => Promise<unknown>> = [
          () =>
            store.pend([
              pendOf(trx, a, 0, { kind: 'insert', block: leafBlock(a) }),
              pendOf(trx, b, 0, { kind: 'insert', block: leafBlock(b) }),
            ]),
          () => store.promote({ trxId: trx, lsn: 1, blockIds: [a, b] }),
          () =>
            store.apply([
              { blockId: a, trxId: newTrxId(rng), lsn: 2, baseRev: 1, transform: { kind: 'delete' } },
            ]),
          () => store.pend([pendOf(trx, b, 1, { kind: 'delete' })]),
          () => store.cancel(trx, [b]),
        ];
        for (const call of calls) {
          raw.reset();
          await call();
          expect(raw.batches).to.equal(1);
          expect(raw.syncs).to.equal(0);
        }
        raw.reset();
        await store.sync();
        expect(raw.syncs).to.equal(1);
      });

      it('writes a mutation of free blocks it holds in memory within the call, and keeps the others in order', async function () {
        if (raw.batchNow === undefined) this.skip();
        const a = newBlockId(rng);
        await commit(a, { kind: 'insert', block: leafBlock(a, { n: 0 }) }, 1);
        const trx = newTrxId(rng);
        raw.reset();
        const pending = store.pend([
          pendOf(trx, a, 1, { kind: 'update', ops: [{ op: 'set', field: 'n', value: 1 }] }),
        ]);
        // Written, and published, before the call returned.
        expect(raw.batches).to.equal(1);
        expect(await store.holdsPend(a, trx)).to.equal(true);
        expect((await pending).ok).to.equal(true);
        const promoting = store.promote({ trxId: trx, lsn: 2, blockIds: [a] });
        expect(raw.batches).to.equal(2);
        await promoting;
        // A block whose state is not in memory is read under its lock first: a mutation of a block
        // held in memory that the first one also locked waits for it instead of overtaking it.
        await restart();
        const b = newBlockId(rng);
        const first = newTrxId(rng);
        await store.apply([
          {
            blockId: b,
            trxId: first,
            lsn: 3,
            baseRev: 0,
            transform: { kind: 'insert', block: leafBlock(b) },
          },
        ]);
        const second = newTrxId(rng);
        const both = store.apply([
          { blockId: a, trxId: second, lsn: 4, baseRev: 2, transform: { kind: 'delete' } },
          { blockId: b, trxId: second, lsn: 4, baseRev: 1, transform: { kind: 'delete' } },
        ]);
        const third = store.apply([
          {
            blockId: b,
            trxId: newTrxId(rng),
            lsn: 5,
            baseRev: 2,
            transform: { kind: 'insert', block: leafBlock(b, { again: true }) },
          },
        ]);
        await Promise.all([both, third]);
        expect((await store.latest(a))?.block).to.equal(undefined);
        expect((await store.latest(b))?.block).to.deep.equal(leafBlock(b, { again: true }));
      });

      it('serialises concurrent writers of the same blocks, whatever order they list them in', async () => {
        const ids = [newBlockId(rng), newBlockId(rng), newBlockId(rng)];
        for (const [i, id] of ids.entries())
          await commit(id, { kind: 'insert', block: leafBlock(id, { n: 0 }) }, i + 1);
        const trxs = Array.from({ length: 40 }, () => newTrxId(rng));
        await Promise.all(
          trxs.map((trx, t) => {
            const order = t % 2 === 0 ? ids : [...ids].reverse();
            return store.pend(
              order.map((id) =>
                pendOf(trx, id, 1, { kind: 'update', ops: [{ op: 'set', field: 'n', value: t }] }, t),
              ),
            );
          }),
        );
        for (const id of ids) expect(await store.pendingOf(id)).to.have.length(trxs.length);
        expect((await store.stats()).pending).to.equal(trxs.length * ids.length);
        // Concurrent direct writers: each reads the latest revision under the lock, so none is lost.
        const id = ids[0]!;
        await store.apply([
          {
            blockId: id,
            trxId: newTrxId(rng),
            lsn: 99,
            baseRev: 1,
            transform: { kind: 'update', ops: [{ op: 'set', field: 'list', value: [] }] },
          },
        ]);
        let lsn = 100;
        const appliers = Array.from({ length: 30 }, async () => {
          for (;;) {
            const latest = (await store.latest(id))!;
            const error = await rejection(
              store.apply([
                {
                  blockId: id,
                  trxId: newTrxId(rng),
                  lsn: ++lsn,
                  baseRev: latest.rev,
                  transform: {
                    kind: 'update',
                    ops: [{ op: 'splice', field: 'list', index: 0, remove: 0, items: [1] }],
                  },
                },
              ]),
            );
            if (error === undefined) return;
            expect(isEngineError(error, 'CONFLICT')).to.equal(true);
          }
        });
        await Promise.all(appliers);
        const latest = await store.latest(id);
        expect(latest?.rev).to.equal(32);
        expect(latest?.block?.['list']).to.have.length(30);
      });

      it('keeps revisions, pends, expiry and counts across a restart', async () => {
        const a = newBlockId(rng);
        const b = newBlockId(rng);
        await commit(a, { kind: 'insert', block: leafBlock(a, { n: 0 }) }, 1);
        for (let n = 1; n < 37; n++)
          await commit(a, { kind: 'update', ops: [{ op: 'set', field: 'n', value: n }] }, n + 1);
        await commit(b, { kind: 'insert', block: leafBlock(b) }, 50);
        await commit(b, { kind: 'delete' }, 51);
        const trx = newTrxId(rng);
        await store.pend([pendOf(trx, a, 37, { kind: 'delete' }, 777)]);
        await store.sync();
        const before = {
          latest: await store.latest(a),
          at: await store.at(a, { rev: 20 }),
          history: await store.history(a),
          pends: await store.pendingOf(a),
        };
        const statsBefore = await store.stats();
        await restart();
        expect(await store.latest(a)).to.deep.equal(before.latest);
        expect(await store.at(a, { rev: 20 })).to.deep.equal(before.at);
        expect((await store.at(a, { lsn: 20 }))?.rev).to.equal(20);
        expect(await store.history(a)).to.deep.equal(before.history);
        expect(await store.pendingOf(a)).to.deep.equal(before.pends);
        expect(await store.expired(777, 5)).to.deep.equal(before.pends);
        expect((await store.at(b, { rev: 1 }))?.block).to.deep.equal(leafBlock(b));
        expect(await store.stats()).to.include({ blocks: statsBefore.blocks, pending: statsBefore.pending });
        expect(statsBefore).to.include({ blocks: 1, pending: 1 });
        await store.promote({ trxId: trx, lsn: 60, blockIds: [a] });
        expect(await store.stats()).to.include({ blocks: 0, pending: 0 });
      });

      it('after a crash keeps exactly what was synced, with counts that match it', async function () {
        if (fixture.crash === undefined) this.skip();
        const a = newBlockId(rng);
        const b = newBlockId(rng);
        await commit(a, { kind: 'insert', block: leafBlock(a) }, 1);
        await store.sync();
        await commit(b, { kind: 'insert', block: leafBlock(b) }, 2);
        await store.pend([pendOf(newTrxId(rng), a, 1, { kind: 'delete' })]);
        fixture.crash();
        store = new VersionedBlockStore(raw);
        expect((await store.latest(a))?.rev).to.equal(1);
        expect(await store.latest(b)).to.equal(undefined);
        expect(await store.pendingOf(a)).to.deep.equal([]);
        expect(await store.stats()).to.include({ blocks: 1, pending: 0 });
      });
    });

    describe('replaceAfter: a copy a majority contradicts', () => {
      /** A block with `count` revisions, each setting n (and the first inserting it). */
      async function withRevisions(id: BlockId, count: number, tag: string): Promise<void> {
        for (let rev = 1; rev <= count; rev++)
          await store.apply([
            {
              blockId: id,
              trxId: `${tag}${rev}`,
              lsn: rev,
              baseRev: rev - 1,
              transform:
                rev === 1
                  ? { kind: 'insert', block: leafBlock(id, { n: 1, by: tag }) }
                  : { kind: 'update', ops: [{ op: 'set', field: 'n', value: rev }] },
            },
          ]);
      }
      const theirs = (id: BlockId, from: number, to: number) =>
        Array.from({ length: to - from + 1 }, (_, i) => ({
          blockId: id,
          trxId: `theirs${from + i}`,
          lsn: from + i,
          baseRev: from + i - 1,
          transform: {
            kind: 'update' as const,
            ops: [{ op: 'set' as const, field: 'n', value: -(from + i) }],
          },
        }));

      it('replaces the revisions after a point, snapshots and LSN index included, and keeps the rest', async () => {
        const id = newBlockId(rng);
        const every = limits.materialiseEveryRevs;
        await withRevisions(id, 2 * every + 3, 'mine');
        const keep = every - 2;
        await store.replaceAfter(id, keep, theirs(id, keep + 1, keep + 4));
        const check = async (): Promise<void> => {
          const latest = await store.latest(id);
          expect(latest?.rev).to.equal(keep + 4);
          expect(latest?.trxId).to.equal(`theirs${keep + 4}`);
          expect(latest?.block).to.deep.include({ n: -(keep + 4), by: 'mine' });
          expect((await store.at(id, { rev: keep }))?.block).to.deep.include({ n: keep });
          expect((await store.at(id, { rev: keep + 1 }))?.trxId).to.equal(`theirs${keep + 1}`);
          expect(await store.at(id, { rev: keep + 5 })).to.equal(undefined);
          // As of an LSN past the replaced ones: the newest revision there is the last of theirs.
          expect((await store.at(id, { lsn: 2 * every }))?.trxId).to.equal(`theirs${keep + 4}`);
          const history = await store.history(id);
          expect(history.map((revision) => revision.trxId)).to.deep.equal([
            ...Array.from({ length: keep }, (_, i) => `mine${i + 1}`),
            ...Array.from({ length: 4 }, (_, i) => `theirs${keep + 1 + i}`),
          ]);
          expect((await store.stats()).blocks).to.equal(1);
        };
        await check();
        // The next revision builds on the replaced copy.
        await store.apply(theirs(id, keep + 5, keep + 5));
        expect((await store.latest(id))?.rev).to.equal(keep + 5);
        await store.replaceAfter(id, keep + 4, []);
        await restart();
        await check();
      });

      it('takes a copy back to nothing when nothing of it is kept', async () => {
        const id = newBlockId(rng);
        await withRevisions(id, 3, 'mine');
        await store.replaceAfter(id, 0, []);
        expect(await store.latest(id)).to.equal(undefined);
        expect(await store.history(id)).to.deep.equal([]);
        expect((await store.stats()).blocks).to.equal(0);
        await restart();
        expect(await store.latest(id)).to.equal(undefined);
        expect((await store.stats()).blocks).to.equal(0);
      });

      it('refuses revisions that do not follow the point they replace from', async () => {
        const id = newBlockId(rng);
        await withRevisions(id, 3, 'mine');
        const error = await rejection(store.replaceAfter(id, 1, theirs(id, 3, 3)));
        expect(error).to.be.instanceOf(AssertionFailure);
        expect((await store.latest(id))?.trxId).to.equal('mine3');
      });
    });
  });
}

/** A random next transform for a block: insert when absent, else mostly updates, sometimes a delete. */
function randomTransform(rng: SeededRng, id: BlockId, current: Block | undefined): BlockTransform {
  if (current === undefined) return { kind: 'insert', block: leafBlock(id, { n: rng.int(100), list: [] }) };
  if (rng.float() < 0.04) return { kind: 'delete' };
  const ops: BlockOp[] = [];
  let working = current;
  const count = 1 + rng.int(3);
  for (let i = 0; i < count; i++) {
    let op: BlockOp;
    const list = working['list'] as unknown[];
    const pick = rng.int(4);
    if (pick === 0) op = { op: 'set', field: 'n', value: rng.int(1000) };
    else if (pick === 1)
      op = { op: 'set', field: 's', value: rng.float() < 0.3 ? undefined : `s${rng.int(50)}` };
    else {
      const index = rng.int(list.length + 1);
      const remove = rng.int(Math.min(2, list.length - index) + 1);
      op = {
        op: 'splice',
        field: 'list',
        index,
        remove,
        items: Array.from({ length: rng.int(3) }, () => rng.int(10)),
      };
    }
    ops.push(op);
    working = applyOps(working, [op]);
  }
  return { kind: 'update', ops };
}

/** A memory raw store that a reopen finds as it was, and a crash leaves with what was synced. */
async function memoryFixture(): Promise<RawFixture> {
  const raw = new MemoryRawStore();
  await raw.open();
  return {
    raw,
    reopen: async () => {
      await raw.open();
      return raw;
    },
    crash: () => raw.dropUnsynced(),
    cleanup: () => raw.close(),
  };
}

blockStoreSuite('MemoryRawStore', memoryFixture);

blockStoreSuite('MemoryRawStore, through batch()', memoryFixture, false);

blockStoreSuite('LevelRawStore', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'optimystic-blocks-'));
  const opened: LevelRawStore[] = [];
  const openAt = async (): Promise<LevelRawStore> => {
    const raw = new LevelRawStore(dir);
    await raw.open();
    opened.push(raw);
    return raw;
  };
  return {
    raw: await openAt(),
    reopen: openAt,
    cleanup: async () => {
      for (const raw of opened) await raw.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe('applyOps', () => {
  function frozen<T>(value: T): T {
    if (value !== null && typeof value === 'object') {
      for (const child of Object.values(value)) frozen(child);
      Object.freeze(value);
    }
    return value;
  }

  it('gives the same block for many ops at once as for the ops one at a time, changing neither block nor ops', () => {
    const rng = new SeededRng(0xa991);
    for (let round = 0; round < 300; round++) {
      const id = newBlockId(rng);
      let block: Block = frozen(leafBlock(id, { n: 0, list: [1, 2, 3] }));
      const ops: BlockOp[] = [];
      let stepwise = block;
      for (let i = 0; i < 1 + rng.int(12); i++) {
        const list = stepwise['list'] as unknown[] | undefined;
        const pick = rng.int(5);
        let op: BlockOp;
        if (pick === 0 || list === undefined) op = { op: 'set', field: 'list', value: [rng.int(9)] };
        else if (pick === 1) op = { op: 'set', field: 'n', value: rng.int(1000) };
        else {
          const index = rng.int(list.length + 1);
          const remove = rng.int(list.length - index + 1);
          op = {
            op: 'splice',
            field: 'list',
            index,
            remove,
            items: Array.from({ length: rng.int(3) }, () => rng.int(9)),
          };
        }
        op = frozen(op);
        ops.push(op);
        stepwise = frozen(applyOps(stepwise, [op]));
      }
      const before = structuredClone(block);
      const together = applyOps(block, ops);
      expect(together, `round ${round}`).to.deep.equal(stepwise);
      expect(block).to.deep.equal(before);
      block = together;
    }
  });
});
