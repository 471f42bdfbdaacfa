import { expect } from 'chai';
import { MemoryRawStore } from '../../../src/engine/storage/memory-store.js';
import { collect, rawStoreCompliance } from './raw-store-compliance.js';

rawStoreCompliance('MemoryRawStore', async () => {
  const store = new MemoryRawStore();
  await store.open();
  return {
    store,
    // Data outlives close(), like a disk: reopening the same instance is a restart.
    reopen: async () => {
      await store.open();
      return store;
    },
    cleanup: async () => {
      await store.close();
    },
  };
});

describe('MemoryRawStore', () => {
  it('loses exactly the batches written since the last sync when a crash is simulated', async () => {
    const store = new MemoryRawStore();
    await store.open();
    await store.batch([
      { type: 'put', key: 'kept', value: '1' },
      { type: 'put', key: 'changed', value: 'old' },
      { type: 'put', key: 'removed', value: 'here' },
    ]);
    await store.sync();
    await store.batch([
      { type: 'put', key: 'changed', value: 'new' },
      { type: 'del', key: 'removed' },
      { type: 'put', key: 'lost', value: 'x' },
    ]);
    await store.batch([{ type: 'put', key: 'changed', value: 'newer' }]);
    store.dropUnsynced();
    expect(await collect(store.iterate({}))).to.deep.equal([
      ['changed', 'old'],
      ['kept', '1'],
      ['removed', 'here'],
    ]);
    await store.close();
  });

  it('counts its queue as flushed once it passes the bound, never splitting a batch', async () => {
    const store = new MemoryRawStore({ queueOpsMax: 4 });
    await store.open();
    await store.batch([
      { type: 'put', key: 'a', value: '1' },
      { type: 'put', key: 'b', value: '1' },
      { type: 'put', key: 'c', value: '1' },
    ]);
    await store.batch([
      { type: 'put', key: 'd', value: '1' },
      { type: 'put', key: 'e', value: '1' },
    ]);
    await store.batch([{ type: 'put', key: 'f', value: '1' }]);
    store.dropUnsynced();
    expect((await collect(store.iterate({}))).map(([key]) => key)).to.deep.equal(['a', 'b', 'c', 'd', 'e']);
    await store.close();
  });
});
