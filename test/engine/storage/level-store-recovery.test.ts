import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { isEngineError, type EngineError } from '../../../src/engine/base/errors.js';
import { LevelRawStore, type LevelRawStoreInit } from '../../../src/engine/storage/level-store.js';
import { collect } from './raw-store-compliance.js';

/**
 * A store whose flush fails (a full disk) refuses writes, keeps what it holds, and recovers by itself
 * once it can write again: LevelDB takes no write after a failed one until it is opened again.
 */

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

/**
 * Makes the store's current LevelDB handle fail every write, as LevelDB does after a failed one (the
 * store writes through classic-level's `_batch`; a handle opened again writes normally).
 */
function breakWrites(store: LevelRawStore, message: string): void {
  const db = (store as unknown as { db: Record<string, unknown> }).db;
  db['_batch'] = db['batch'] = () => Promise.reject(new Error(message));
}

function until(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const poll = (): void => {
      if (check()) resolve();
      else if (Date.now() > deadline) reject(new Error('timed out'));
      else setTimeout(poll, 10);
    };
    poll();
  });
}

describe('LevelRawStore after a failed flush', () => {
  let dir: string;
  const stores: LevelRawStore[] = [];

  async function openStore(init: LevelRawStoreInit = {}, at = dir): Promise<LevelRawStore> {
    const store = new LevelRawStore(at, init);
    await store.open();
    stores.push(store);
    return store;
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'optimystic-level-recovery-'));
  });

  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses writes, still serves reads, and recovers with every batch it held on disk in order', async () => {
    const failures: EngineError[] = [];
    let recovered = 0;
    const store = await openStore({
      recoveryFirstMs: 60_000,
      recoveryFreeBytesMin: 0,
      onFailure: (error) => failures.push(error),
      onRecovered: () => recovered++,
    });
    await store.batch([{ type: 'put', key: 'a', value: '1' }]);
    await store.sync();
    breakWrites(store, 'IO error: 000005.log: No space left on device');
    await store.batch([
      { type: 'put', key: 'b', value: '2' },
      { type: 'del', key: 'a' },
    ]);
    const error = await rejection(store.sync());
    expect(isEngineError(error, 'UNAVAILABLE'), String(error)).to.equal(true);
    expect((error as Error).message)
      .to.contain('No space left on device')
      .and.to.contain(dir);
    expect(failures).to.have.length(1);
    expect(store.failed).to.equal(error);
    // Further writes are refused and change nothing; reads see what the store holds.
    expect(() => store.batchNow([{ type: 'put', key: 'c', value: '3' }])).to.throw('No space left');
    expect(await store.get('c')).to.equal(undefined);
    expect(await store.get('b')).to.equal('2');
    expect(await collect(store.iterate({}))).to.deep.equal([['b', '2']]);

    expect(await store.recover()).to.equal(true);
    expect(recovered).to.equal(1);
    expect(store.failed).to.equal(undefined);
    await store.batch([{ type: 'put', key: 'c', value: '3' }]);
    await store.sync();
    await store.close();
    const again = await openStore();
    expect(await collect(again.iterate({}))).to.deep.equal([
      ['b', '2'],
      ['c', '3'],
    ]);
  });

  it('tries again by itself, backing off, until the store takes writes', async () => {
    let recovered = 0;
    const store = await openStore({
      recoveryFirstMs: 20,
      recoveryFreeBytesMin: 0,
      onRecovered: () => recovered++,
    });
    breakWrites(store, 'IO error: disk on fire');
    await store.batch([{ type: 'put', key: 'k', value: 'v' }]);
    await rejection(store.sync());
    await until(() => recovered === 1);
    await store.batch([{ type: 'put', key: 'l', value: 'w' }]);
    await store.sync();
    expect(await store.get('k')).to.equal('v');
  });

  it('waits for room on the file system before it tries', async () => {
    const store = await openStore({ recoveryFirstMs: 60_000, recoveryFreeBytesMin: Number.MAX_SAFE_INTEGER });
    breakWrites(store, 'IO error: No space left on device');
    await store.batch([{ type: 'put', key: 'k', value: 'v' }]);
    await rejection(store.sync());
    expect(await store.recover()).to.equal(false);
    expect(store.failed).to.not.equal(undefined);
    expect(await store.get('k')).to.equal('v');
  });

  it('on a real full disk (a small tmpfs; needs root), recovers once the disk has room again', async function () {
    const mount = join(dir, 'small');
    await mkdir(mount);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mount], { stdio: 'ignore' });
    } catch {
      this.skip();
    }
    try {
      let recovered = 0;
      const store = await openStore(
        { recoveryFirstMs: 20, recoveryFreeBytesMin: 1024 * 1024, onRecovered: () => recovered++ },
        join(mount, 'store'),
      );
      const value = 'x'.repeat(50_000);
      let acknowledged = 0;
      let error: unknown;
      for (let i = 0; i < 100 && error === undefined; i++) {
        try {
          await store.batch([{ type: 'put', key: `k${String(i).padStart(3, '0')}`, value }]);
          await store.sync();
          acknowledged++;
        } catch (e) {
          error = e;
        }
      }
      expect(isEngineError(error, 'UNAVAILABLE'), String(error)).to.equal(true);
      expect(String(error)).to.contain('No space left on device');
      expect(recovered).to.equal(0);
      execFileSync('mount', ['-o', 'remount,size=16m', mount], { stdio: 'ignore' });
      await until(() => recovered === 1);
      await store.batch([{ type: 'put', key: 'later', value: '1' }]);
      await store.sync();
      await store.close();
      const again = await openStore({}, join(mount, 'store'));
      const keys = (await collect(again.iterate({}))).map(([key]) => key);
      // Every acknowledged write, the one whose flush failed, and the write after recovery.
      expect(keys).to.have.length(acknowledged + 2);
      expect(keys.at(-1)).to.equal('later');
      await again.close();
    } finally {
      for (const store of stores.splice(0)) await store.close().catch(() => undefined);
      execFileSync('umount', [mount], { stdio: 'ignore' });
    }
  });
});
