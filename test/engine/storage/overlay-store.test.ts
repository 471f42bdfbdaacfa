import { expect } from 'chai';
import { SeededRng } from '../../../src/engine/base/rng.js';
import { MemoryRawStore } from '../../../src/engine/storage/memory-store.js';
import { OverlayRawStore } from '../../../src/engine/storage/overlay-store.js';
import type { RawOp } from '../../../src/engine/storage/raw-store.js';
import {
  boundCombinations,
  collect,
  modelRange,
  randomKey,
  rawStoreCompliance,
} from './raw-store-compliance.js';

// Over an empty base, the overlay alone must behave as any store (its data does not outlive close).
rawStoreCompliance('OverlayRawStore', async () => {
  const base = new MemoryRawStore();
  await base.open();
  const store = new OverlayRawStore(base);
  await store.open();
  return {
    store,
    cleanup: async () => {
      await store.close().catch(() => undefined);
    },
  };
});

describe('OverlayRawStore over a store with data', () => {
  it('reads the base with its own writes on top, in both directions and with limits, and never writes the base', async () => {
    const rng = new SeededRng(0x0e7e_0001);
    const base = new MemoryRawStore();
    await base.open();
    const model = new Map<string, string>();
    const seed: RawOp[] = [];
    for (let i = 0; i < 60; i++) {
      const key = randomKey(rng);
      seed.push({ type: 'put', key, value: `base${i}` });
      model.set(key, `base${i}`);
    }
    await base.batch(seed);
    await base.sync();
    const before = await collect(base.iterate({}));

    const store = new OverlayRawStore(base);
    await store.open();
    for (let round = 0; round < 5; round++) {
      for (let b = 0; b < 6; b++) {
        const ops: RawOp[] = [];
        for (let i = 0, count = 1 + rng.int(10); i < count; i++) {
          // Half the keys are ones the base holds: overwrites and deletes that must hide the base's.
          const known = [...model.keys()];
          const key = rng.float() < 0.5 && known.length > 0 ? known[rng.int(known.length)]! : randomKey(rng);
          if (rng.float() < 0.35) {
            ops.push({ type: 'del', key });
            model.delete(key);
          } else {
            ops.push({ type: 'put', key, value: `o${round}.${b}.${i}` });
            model.set(key, `o${round}.${b}.${i}`);
          }
        }
        await store.batch(ops);
        if (rng.float() < 0.3) await store.sync();
      }
      for (let probe = 0; probe < 10; probe++) {
        for (const range of boundCombinations(rng)) {
          expect(await collect(store.iterate(range)), JSON.stringify(range)).to.deep.equal(
            modelRange(model, range),
          );
        }
      }
      const keys = Array.from({ length: 20 }, () => randomKey(rng));
      expect(await store.getMany(keys)).to.deep.equal(keys.map((key) => model.get(key)));
    }
    // The base holds exactly what it held before, and the overlay's writes go with it.
    expect(await collect(base.iterate({}))).to.deep.equal(before);
    await store.close();
    await base.open();
    expect(await collect(base.iterate({}))).to.deep.equal(before);
  });
});
