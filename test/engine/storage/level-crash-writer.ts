// Child process for level-store.test.ts: writes rounds of ten keys (one batch each, several writers at
// once) to a LevelRawStore and prints each round number once its sync resolved, until it is killed.
import { LevelRawStore } from '../../../src/engine/storage/level-store.js';

const dir = process.argv[2];
if (dir === undefined) throw new Error('usage: level-crash-writer <dir>');
const store = new LevelRawStore(dir);
await store.open();
let round = 0;
const writer = async (): Promise<void> => {
  for (;;) {
    const mine = round++;
    await store.batch(
      Array.from({ length: 10 }, (_, i) => ({
        type: 'put' as const,
        key: `crash/${i}`,
        value: String(mine),
      })),
    );
    await store.sync();
    process.stdout.write(`${mine}\n`);
  }
};
await Promise.all([writer(), writer(), writer(), writer()]);
