import { expect } from 'chai';
import { isEngineError } from '../../../src/engine/base/errors.js';
import { SeededRng } from '../../../src/engine/base/rng.js';
import type { RawOp, RawRange, RawStore } from '../../../src/engine/storage/raw-store.js';

export interface RawStoreFixture {
  /** An open, empty store. */
  readonly store: RawStore;
  /** Given that the test closed `store`, an open store on the same data (omit when data cannot outlive close). */
  readonly reopen?: () => Promise<RawStore>;
  /** Closes whatever is still open and removes the data. */
  readonly cleanup: () => Promise<void>;
}

/**
 * The behaviour every RawStore must have. Each implementation's test file calls this once with a
 * factory for fresh stores (the abstract-level habit: the interface ships with its suite).
 */
export function rawStoreCompliance(name: string, factory: () => Promise<RawStoreFixture>): void {
  describe(`${name}: RawStore compliance`, () => {
    let fixture: RawStoreFixture;
    let store: RawStore;

    beforeEach(async () => {
      fixture = await factory();
      store = fixture.store;
    });

    afterEach(async () => {
      await fixture.cleanup();
    });

    /** The test's store closed and opened again, or undefined if the fixture cannot reopen. */
    async function reopened(): Promise<RawStore | undefined> {
      if (fixture.reopen === undefined) return undefined;
      await store.close();
      store = await fixture.reopen();
      return store;
    }

    describe('get, getMany and batch', () => {
      it('returns undefined for a key never written', async () => {
        expect(await store.get('never')).to.equal(undefined);
      });

      it('reads back a put, sees an overwrite and forgets a deleted key', async () => {
        await store.batch([{ type: 'put', key: 'k', value: 'one' }]);
        expect(await store.get('k')).to.equal('one');
        await store.batch([{ type: 'put', key: 'k', value: 'two' }]);
        expect(await store.get('k')).to.equal('two');
        await store.batch([{ type: 'del', key: 'k' }]);
        expect(await store.get('k')).to.equal(undefined);
      });

      it('keeps the empty string as a value distinct from a missing key', async () => {
        await store.batch([{ type: 'put', key: 'empty', value: '' }]);
        expect(await store.get('empty')).to.equal('');
        expect(await store.getMany(['empty', 'missing'])).to.deep.equal(['', undefined]);
      });

      it('ignores a delete of a key that does not exist', async () => {
        await store.batch([{ type: 'del', key: 'ghost' }]);
        expect(await store.get('ghost')).to.equal(undefined);
        expect(await collect(store.iterate({}))).to.deep.equal([]);
      });

      it('returns getMany values in request order, undefined for missing and repeated keys answered each time', async () => {
        await store.batch([
          { type: 'put', key: 'a', value: '1' },
          { type: 'put', key: 'b', value: '2' },
        ]);
        await store.sync();
        await store.batch([
          { type: 'put', key: 'c', value: '3' },
          { type: 'del', key: 'a' },
        ]);
        expect(await store.getMany(['c', 'missing', 'b', 'a', 'b'])).to.deep.equal([
          '3',
          undefined,
          '2',
          undefined,
          '2',
        ]);
        expect(await store.getMany([])).to.deep.equal([]);
      });

      it('applies the ops of one batch in order, so the last op on a key wins', async () => {
        await store.batch([
          { type: 'put', key: 'x', value: 'first' },
          { type: 'del', key: 'x' },
          { type: 'del', key: 'y' },
          { type: 'put', key: 'y', value: 'back' },
          { type: 'put', key: 'z', value: 'one' },
          { type: 'put', key: 'z', value: 'two' },
        ]);
        expect(await store.getMany(['x', 'y', 'z'])).to.deep.equal([undefined, 'back', 'two']);
        await store.sync();
        expect(await store.getMany(['x', 'y', 'z'])).to.deep.equal([undefined, 'back', 'two']);
        expect(await collect(store.iterate({}))).to.deep.equal([
          ['y', 'back'],
          ['z', 'two'],
        ]);
      });

      it('makes a batch visible to get, getMany and iterate before any sync', async () => {
        await store.batch([
          { type: 'put', key: 'p/1', value: 'a' },
          { type: 'put', key: 'p/2', value: 'b' },
        ]);
        expect(await store.get('p/1')).to.equal('a');
        expect(await store.getMany(['p/2', 'p/1'])).to.deep.equal(['b', 'a']);
        expect(await collect(store.iterate({ gte: 'p/', lt: 'p0' }))).to.deep.equal([
          ['p/1', 'a'],
          ['p/2', 'b'],
        ]);
      });

      it('shows a reader running alongside a batch all of the batch or none of it', async () => {
        const keys = Array.from({ length: 200 }, (_, i) => `atomic/${String(i).padStart(3, '0')}`);
        await store.batch(keys.map((key) => ({ type: 'put', key, value: 'old' })));
        await store.sync();
        const writing = store.batch(keys.map((key) => ({ type: 'put', key, value: 'new' })));
        const [seenByGetMany, seenByIterate] = await Promise.all([
          store.getMany(keys),
          collect(store.iterate({ gte: 'atomic/', lt: 'atomic0' })),
        ]);
        await writing;
        expect(new Set(seenByGetMany).size).to.equal(1);
        expect(new Set(seenByIterate.map(([, value]) => value)).size).to.equal(1);
        expect(await store.getMany(keys)).to.deep.equal(keys.map(() => 'new'));
      });

      it('resolves sync when nothing was written', async () => {
        await store.sync();
        await store.sync();
      });

      it('rejects reads and writes once closed with code UNAVAILABLE', async () => {
        await store.close();
        const attempts: Array<() => Promise<unknown>> = [
          () => store.get('k'),
          () => store.getMany(['k']),
          () => store.batch([{ type: 'put', key: 'k', value: 'v' }]),
          () => store.sync(),
          async () => collect(store.iterate({})),
        ];
        for (const attempt of attempts) {
          const error = await attempt().then(
            () => undefined,
            (caught: unknown) => caught,
          );
          expect(isEngineError(error, 'UNAVAILABLE'), String(error)).to.equal(true);
        }
      });

      it('applies a batchNow at once, and throws UNAVAILABLE once closed', async function () {
        const now = store.batchNow?.bind(store);
        if (now === undefined) this.skip();
        const waiting = now([
          { type: 'put', key: 'a', value: '1' },
          { type: 'del', key: 'a' },
          { type: 'put', key: 'b', value: '2' },
        ]);
        expect(waiting).to.equal(undefined);
        const seen: Array<string | undefined> = [];
        const reading = store.getMany(['a', 'b']).then((values) => seen.push(...values));
        await reading;
        expect(seen).to.deep.equal([undefined, '2']);
        await store.sync();
        const reopenedStore = await reopened();
        if (reopenedStore !== undefined) expect(await reopenedStore.get('b')).to.equal('2');
        await store.close();
        let thrown: unknown;
        try {
          void store.batchNow!([{ type: 'put', key: 'c', value: '3' }]);
        } catch (error) {
          thrown = error;
        }
        expect(isEngineError(thrown, 'UNAVAILABLE'), String(thrown)).to.equal(true);
      });

      it('reports a size that grows as data is written', async () => {
        const before = await store.sizeBytes();
        expect(before).to.be.at.least(0);
        const value = 'v'.repeat(1000);
        for (let i = 0; i < 20; i++) {
          await store.batch(
            Array.from({ length: 10 }, (_, j) => ({ type: 'put' as const, key: `size/${i}/${j}`, value })),
          );
          await store.sync();
        }
        expect(await store.sizeBytes()).to.be.greaterThan(before);
      });
    });

    describe('iterate', () => {
      it('matches a sorted model for every bound combination, direction and limit, synced or not', async () => {
        const rng = new SeededRng(0x5eed_0001);
        const model = new Map<string, string>();
        for (let round = 0; round < 6; round++) {
          // Each round writes a few batches (mixing puts over old keys and deletes), syncing only some.
          for (let b = 0; b < 8; b++) {
            const ops: RawOp[] = [];
            const count = 1 + rng.int(12);
            for (let i = 0; i < count; i++) {
              const key = randomKey(rng);
              if (rng.float() < 0.25) {
                ops.push({ type: 'del', key });
                model.delete(key);
              } else {
                const value = `v${round}.${b}.${i}`;
                ops.push({ type: 'put', key, value });
                model.set(key, value);
              }
            }
            await store.batch(ops);
            if (rng.float() < 0.3) await store.sync();
          }
          for (let probe = 0; probe < 25; probe++) {
            for (const range of boundCombinations(rng)) {
              const got = await collect(store.iterate(range));
              expect(got, `round ${round} range ${JSON.stringify(range)}`).to.deep.equal(
                modelRange(model, range),
              );
            }
          }
        }
        expect(await collect(store.iterate({}))).to.deep.equal(modelRange(model, {}));
        if ((await reopened()) !== undefined) {
          expect(await collect(store.iterate({}))).to.deep.equal(modelRange(model, {}));
          expect(await collect(store.iterate({ reverse: true, limit: 7 }))).to.deep.equal(
            modelRange(model, { reverse: true, limit: 7 }),
          );
        }
      });

      it('orders keys by their UTF-8 bytes, so characters above U+FFFF sort after U+E000..U+FFFF', async () => {
        const keys = ['a', 'é', '\uE000', '\uFFFD', '😀', '\u{10FFFF}', 'z', '~'];
        await store.batch(keys.map((key) => ({ type: 'put', key, value: key })));
        const expected = [...keys].sort(utf8Order);
        expect((await collect(store.iterate({}))).map(([key]) => key)).to.deep.equal(expected);
        await store.sync();
        expect((await collect(store.iterate({ reverse: true }))).map(([key]) => key)).to.deep.equal(
          [...expected].reverse(),
        );
        expect((await collect(store.iterate({ gt: '\uFFFD' }))).map(([key]) => key)).to.deep.equal([
          '😀',
          '\u{10FFFF}',
        ]);
      });

      it('yields nothing for a limit of 0 or a range whose bounds cross', async () => {
        await store.batch([
          { type: 'put', key: 'a', value: '1' },
          { type: 'put', key: 'b', value: '2' },
        ]);
        expect(await collect(store.iterate({ limit: 0 }))).to.deep.equal([]);
        expect(await collect(store.iterate({ gte: 'b', lte: 'a' }))).to.deep.equal([]);
        expect(await collect(store.iterate({ gt: 'a', lt: 'b' }))).to.deep.equal([]);
      });

      it('lets a consumer stop early and keeps working afterwards', async () => {
        await store.batch(
          Array.from({ length: 50 }, (_, i) => ({
            type: 'put' as const,
            key: `e/${String(i).padStart(2, '0')}`,
            value: `${i}`,
          })),
        );
        await store.sync();
        await store.batch([{ type: 'put', key: 'e/99', value: 'late' }]);
        const seen: string[] = [];
        for await (const [key] of store.iterate({ gte: 'e/' })) {
          seen.push(key);
          if (seen.length === 3) break;
        }
        expect(seen).to.deep.equal(['e/00', 'e/01', 'e/02']);
        expect(await store.get('e/99')).to.equal('late');
        expect(
          (await collect(store.iterate({ gte: 'e/', reverse: true, limit: 2 }))).map(([key]) => key),
        ).to.deep.equal(['e/99', 'e/49']);
      });

      it('stays in key order without repeats while batches land during the iteration', async () => {
        await store.batch(
          Array.from({ length: 300 }, (_, i) => ({
            type: 'put' as const,
            key: `w/${String(i * 2).padStart(4, '0')}`,
            value: 'before',
          })),
        );
        await store.sync();
        const seen: string[] = [];
        let i = 0;
        for await (const [key] of store.iterate({ gte: 'w/', lt: 'w0' })) {
          seen.push(key);
          await store.batch([
            { type: 'put', key: `w/${String(i * 2 + 1).padStart(4, '0')}`, value: 'during' },
            { type: 'del', key: `w/${String(598 - i * 2).padStart(4, '0')}` },
          ]);
          if (i % 50 === 0) await store.sync();
          i++;
        }
        expect(seen.length).to.equal(new Set(seen).size);
        expect(seen).to.deep.equal([...seen].sort(utf8Order));
        expect(seen).to.include.members(['w/0000', 'w/0598']);
      });
    });

    describe('durability and concurrency', () => {
      it('keeps synced and unsynced batches, including deletes, across close and reopen', async function () {
        if (fixture.reopen === undefined) this.skip();
        await store.batch([
          { type: 'put', key: 'synced', value: '1' },
          { type: 'put', key: 'doomed', value: 'x' },
        ]);
        await store.sync();
        await store.batch([
          { type: 'put', key: 'unsynced', value: '2' },
          { type: 'del', key: 'doomed' },
        ]);
        const again = await reopened();
        expect(again).to.not.equal(undefined);
        expect(await store.getMany(['synced', 'unsynced', 'doomed'])).to.deep.equal(['1', '2', undefined]);
        expect(await collect(store.iterate({}))).to.deep.equal([
          ['synced', '1'],
          ['unsynced', '2'],
        ]);
      });

      it('loses no write when many batches and syncs run at once', async () => {
        const rng = new SeededRng(0x5eed_0002);
        const writers = 64;
        const perWriter = 6;
        const tasks = Array.from({ length: writers }, async (_, w) => {
          for (let i = 0; i < perWriter; i++) {
            await store.batch([
              { type: 'put', key: `c/${w}/${i}`, value: `${w}.${i}` },
              { type: 'put', key: `last/${w}`, value: `${i}` },
            ]);
            if (rng.float() < 0.7) await store.sync();
            else await Promise.resolve();
          }
        });
        await Promise.all(tasks);
        await store.sync();
        const check = async (): Promise<void> => {
          for (let w = 0; w < writers; w++) {
            const keys = Array.from({ length: perWriter }, (_, i) => `c/${w}/${i}`);
            expect(await store.getMany(keys)).to.deep.equal(keys.map((_, i) => `${w}.${i}`));
            expect(await store.get(`last/${w}`)).to.equal(`${perWriter - 1}`);
          }
          expect(await collect(store.iterate({ gte: 'c/', lt: 'c0' }))).to.have.length(writers * perWriter);
        };
        await check();
        if ((await reopened()) !== undefined) await check();
      });
    });
  });
}

export async function collect(entries: AsyncIterable<[string, string]>): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = [];
  for await (const entry of entries) out.push(entry);
  return out;
}

/** The order of keys as UTF-8 bytes, computed independently of the stores' own comparator. */
export function utf8Order(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

const keyAlphabet = ['a', 'b', 'c', 'm', 'z', '/', '0', 'é', '\uE000', '\uFFFD', '😀'];

export function randomKey(rng: SeededRng): string {
  let key = '';
  const length = 1 + rng.int(3);
  for (let i = 0; i < length; i++) key += keyAlphabet[rng.int(keyAlphabet.length)]!;
  return key;
}

/** One range for each of {no lower, gte, gt} × {no upper, lte, lt} × {forward, reverse}, with a random limit. */
export function boundCombinations(rng: SeededRng): RawRange[] {
  const ranges: RawRange[] = [];
  for (const lower of ['none', 'gte', 'gt'] as const) {
    for (const upper of ['none', 'lte', 'lt'] as const) {
      for (const reverse of [false, true]) {
        const a = randomKey(rng);
        const b = randomKey(rng);
        const [low, high] = utf8Order(a, b) <= 0 || rng.float() < 0.1 ? [a, b] : [b, a];
        const range: { -readonly [K in keyof RawRange]: RawRange[K] } = {};
        if (lower !== 'none') range[lower] = low;
        if (upper !== 'none') range[upper] = high;
        if (reverse) range.reverse = true;
        const pick = rng.int(4);
        if (pick === 1) range.limit = 1;
        else if (pick === 2) range.limit = 1 + rng.int(10);
        ranges.push(range);
      }
    }
  }
  return ranges;
}

export function modelRange(model: ReadonlyMap<string, string>, range: RawRange): Array<[string, string]> {
  let keys = [...model.keys()].sort(utf8Order);
  keys = keys.filter(
    (key) =>
      (range.gte === undefined || utf8Order(key, range.gte) >= 0) &&
      (range.gt === undefined || utf8Order(key, range.gt) > 0) &&
      (range.lte === undefined || utf8Order(key, range.lte) <= 0) &&
      (range.lt === undefined || utf8Order(key, range.lt) < 0),
  );
  if (range.reverse === true) keys.reverse();
  if (range.limit !== undefined) keys = keys.slice(0, range.limit);
  return keys.map((key) => [key, model.get(key)!]);
}
