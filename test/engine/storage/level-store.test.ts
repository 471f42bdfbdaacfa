import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { isEngineError } from '../../../src/engine/base/errors.js';
import { LevelRawStore } from '../../../src/engine/storage/level-store.js';
import type { RawOp } from '../../../src/engine/storage/raw-store.js';
import { collect, rawStoreCompliance } from './raw-store-compliance.js';

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'optimystic-level-'));
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

rawStoreCompliance('LevelRawStore', async () => {
  const dir = await tempDir();
  const opened: LevelRawStore[] = [];
  const openAt = async (): Promise<LevelRawStore> => {
    const store = new LevelRawStore(dir);
    await store.open();
    opened.push(store);
    return store;
  };
  return {
    store: await openAt(),
    reopen: openAt,
    cleanup: async () => {
      for (const store of opened) await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe('LevelRawStore', () => {
  let dir: string;
  const stores: LevelRawStore[] = [];

  async function openStore(init: { queueOpsMax?: number } = {}, at = dir): Promise<LevelRawStore> {
    const store = new LevelRawStore(at, init);
    await store.open();
    stores.push(store);
    return store;
  }

  beforeEach(async () => {
    dir = await tempDir();
  });

  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('creates its data directory when it does not exist', async () => {
    const store = await openStore({}, join(dir, 'nested', 'data'));
    await store.batch([{ type: 'put', key: 'k', value: 'v' }]);
    await store.sync();
    expect(await store.get('k')).to.equal('v');
  });

  it('refuses a second open of the same directory with code DATA_DIR_BUSY', async () => {
    await openStore();
    const error = await rejection(new LevelRawStore(dir).open());
    expect(isEngineError(error, 'DATA_DIR_BUSY'), String(error)).to.equal(true);
    expect((error as Error).message).to.contain(dir);
  });

  it('reports a damaged database with code CORRUPT', async () => {
    const store = await openStore();
    await store.batch([{ type: 'put', key: 'k', value: 'v' }]);
    await store.close();
    await writeFile(join(dir, 'CURRENT'), 'not a manifest name');
    const error = await rejection(new LevelRawStore(dir).open());
    expect(isEngineError(error, 'CORRUPT'), String(error)).to.equal(true);
  });

  it('does not write to LevelDB until sync', async () => {
    const store = await openStore();
    for (let i = 0; i < 10; i++) await store.batch([{ type: 'put', key: `k${i}`, value: 'v' }]);
    expect(store.flushCount).to.equal(0);
    await store.sync();
    expect(store.flushCount).to.equal(1);
    await store.sync();
    expect(store.flushCount).to.equal(1);
  });

  it('writes nothing for a key put as absent and deleted again before its flush', async () => {
    const store = await openStore();
    const written: string[] = [];
    const db = (store as unknown as { db: { _batch: (ops: { type: string; key: string }[]) => unknown } }).db;
    const original = db._batch.bind(db);
    db._batch = (ops: { type: string; key: string }[], ...rest: unknown[]) => {
      written.push(...ops.map((op) => `${op.type} ${op.key}`));
      return (original as (...args: unknown[]) => unknown)(ops, ...rest);
    };
    await store.batch([
      { type: 'put', key: 'p/1', value: 'pend', absent: true },
      { type: 'put', key: 'kept', value: 'v', absent: true },
      { type: 'put', key: 'plain', value: 'v' },
    ]);
    await store.batch([
      { type: 'del', key: 'p/1' },
      { type: 'del', key: 'plain' },
    ]);
    await store.sync();
    expect(written).to.deep.equal(['put kept', 'del plain']);
    // Put in one flush and deleted in the next: the delete must reach the disk.
    written.length = 0;
    await store.batch([{ type: 'put', key: 'p/2', value: 'pend', absent: true }]);
    await store.sync();
    await store.batch([{ type: 'del', key: 'p/2' }]);
    await store.sync();
    expect(written).to.deep.equal(['put p/2', 'del p/2']);
    await store.close();
    const reopened = await openStore();
    expect(await collect(reopened.iterate({}))).to.deep.equal([['kept', 'v']]);
  });

  it("reads a put's value only when it needs it: on a read of the key or in the flush that carries it", async () => {
    const store = await openStore();
    const reads = new Map<string, number>();
    /** A put whose value is computed on first read, counting every read. */
    const lazyPut = (key: string, value: string, absent = false): RawOp => ({
      type: 'put',
      key,
      absent,
      get value(): string {
        reads.set(key, (reads.get(key) ?? 0) + 1);
        return value;
      },
    });
    await store.batch([lazyPut('p/1', 'pend', true), lazyPut('read', 'r'), lazyPut('flushed', 'f')]);
    expect(reads.size).to.equal(0);
    expect(await store.get('read')).to.equal('r');
    expect(reads.get('read')).to.equal(1);
    await store.batch([{ type: 'del', key: 'p/1' }]);
    await store.sync();
    expect(reads.has('p/1'), 'a put deleted before its flush is never read').to.equal(false);
    expect(reads.get('flushed')).to.equal(1);
    expect(await store.get('flushed')).to.equal('f');
  });

  it('commits many concurrent batch-and-sync pairs in far fewer LevelDB writes', async () => {
    const store = await openStore();
    const writers = 32;
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        await store.batch([{ type: 'put', key: `w/${w}`, value: `${w}` }]);
        await store.sync();
      }),
    );
    expect(store.flushCount).to.be.at.most(2);
    expect(await collect(store.iterate({ gte: 'w/', lt: 'w0' }))).to.have.length(writers);
  });

  it('carries everything queued during an in-flight flush in one following flush', async () => {
    const store = await openStore();
    await store.batch([{ type: 'put', key: 'first', value: '1' }]);
    const firstSync = store.sync();
    const later = Array.from({ length: 16 }, async (_, w) => {
      await store.batch([{ type: 'put', key: `later/${w}`, value: `${w}` }]);
      await store.sync();
    });
    await Promise.all([firstSync, ...later]);
    expect(store.flushCount).to.equal(2);
    await store.close();
    const reopened = await openStore();
    expect(await collect(reopened.iterate({}))).to.have.length(17);
  });

  it('lets batches written as a flush lands join the next flush with those that waited for it', async () => {
    const store = await openStore();
    await store.batch([{ type: 'put', key: 'first', value: '1' }]);
    const firstSync = store.sync();
    // Waits for the first flush, so its batch goes in the next one.
    await store.batch([{ type: 'put', key: 'waited', value: '2' }]);
    const waitedSync = store.sync();
    // Written once the first flush has landed (a writer its answer let run on): it joins the same
    // next flush instead of needing a third.
    const answered = firstSync.then(async () => {
      await store.batch([{ type: 'put', key: 'answered', value: '3' }]);
      await store.sync();
    });
    await Promise.all([firstSync, waitedSync, answered]);
    expect(store.flushCount).to.equal(2);
    await store.close();
    const reopened = await openStore();
    expect(await collect(reopened.iterate({}))).to.have.length(3);
  });

  it('keeps a newer unflushed write visible when an older flush of the same key lands', async () => {
    const store = await openStore();
    await store.batch([{ type: 'put', key: 'k', value: 'old' }]);
    const flushing = store.sync();
    await store.batch([{ type: 'put', key: 'k', value: 'new' }]);
    await store.batch([{ type: 'del', key: 'gone' }]);
    await flushing;
    expect(store.flushCount).to.equal(1);
    expect(await store.get('k')).to.equal('new');
    expect(await collect(store.iterate({}))).to.deep.equal([['k', 'new']]);
  });

  it('flushes on its own when the queue passes its bound, without splitting a batch', async () => {
    const store = await openStore({ queueOpsMax: 8 });
    await store.batch(
      Array.from({ length: 5 }, (_, i) => ({ type: 'put' as const, key: `a${i}`, value: 'v' })),
    );
    expect(store.flushCount).to.equal(0);
    await store.batch(
      Array.from({ length: 5 }, (_, i) => ({ type: 'put' as const, key: `b${i}`, value: 'v' })),
    );
    expect(store.flushCount).to.equal(1);
    expect(await store.getMany(['a0', 'b4'])).to.deep.equal(['v', 'v']);
  });

  it('iterates unflushed puts and deletes over flushed data without flushing', async () => {
    const store = await openStore();
    await store.batch(['a', 'b', 'c', 'd'].map((key) => ({ type: 'put' as const, key, value: 'disk' })));
    await store.sync();
    await store.batch([
      { type: 'del', key: 'b' },
      { type: 'put', key: 'c', value: 'memory' },
      { type: 'put', key: 'bb', value: 'memory' },
    ]);
    const flushes = store.flushCount;
    expect(await collect(store.iterate({ limit: 3 }))).to.deep.equal([
      ['a', 'disk'],
      ['bb', 'memory'],
      ['c', 'memory'],
    ]);
    expect(await collect(store.iterate({ reverse: true, gt: 'a' }))).to.deep.equal([
      ['d', 'disk'],
      ['c', 'memory'],
      ['bb', 'memory'],
    ]);
    expect(store.flushCount).to.equal(flushes);
  });

  it('waits for in-flight flushes when closed, then keeps everything after reopening', async () => {
    const store = await openStore();
    await store.batch([{ type: 'put', key: 'flying', value: '1' }]);
    let synced = false;
    const syncing = store.sync().then(() => {
      synced = true;
    });
    await store.batch([{ type: 'put', key: 'queued', value: '2' }]);
    await store.close();
    expect(synced).to.equal(true);
    await syncing;
    const reopened = await openStore();
    expect(await reopened.getMany(['flying', 'queued'])).to.deep.equal(['1', '2']);
  });

  it('keeps every acknowledged batch whole when the process is killed mid-stream', async function () {
    this.timeout(60_000);
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(new URL('./level-crash-writer.ts', import.meta.url)), dir],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let acked = -1;
    await new Promise<void>((resolve, reject) => {
      let buffered = '';
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (chunk: string) => {
        buffered += chunk;
        const lines = buffered.split('\n');
        buffered = lines.pop()!;
        for (const line of lines) if (line !== '') acked = Math.max(acked, Number(line));
        if (acked >= 150 && child.exitCode === null) child.kill('SIGKILL');
      });
      child.on('exit', () => resolve());
      child.on('error', reject);
    });
    expect(acked).to.be.at.least(150);
    const store = await openStore();
    const entries = await collect(store.iterate({ gte: 'crash/', lt: 'crash0' }));
    // Every writer round puts the round number under all ten keys in one batch: they must agree.
    expect(entries).to.have.length(10);
    const rounds = new Set(entries.map(([, value]) => value));
    expect(rounds.size, `torn batch: ${JSON.stringify(entries)}`).to.equal(1);
    expect(Number([...rounds][0])).to.be.at.least(acked);
  });
});
