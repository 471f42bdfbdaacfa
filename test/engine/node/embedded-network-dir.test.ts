import { expect } from 'chai';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isEngineError } from '../../../src/engine/base/errors.js';
import { openDatabase } from '../../../src/engine/node/embedded.js';
import { SoloNode } from '../../../src/engine/node/solo-node.js';
import { memberPrefix } from '../../../src/engine/node/store-keys.js';
import { LevelRawStore } from '../../../src/engine/storage/level-store.js';
import { collect } from '../storage/raw-store-compliance.js';

describe('opening a data directory embedded', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'optimystic-embedded-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('without createIfMissing, leaves a directory holding no database as it was and opens an empty one', async () => {
    for (const dataDir of [join(dir, 'absent'), join(dir, 'empty')]) {
      if (dataDir.endsWith('empty')) await mkdir(dataDir);
      let missing = 0;
      const db = await openDatabase({ dataDir, createIfMissing: false, onMissing: () => (missing += 1) });
      expect(missing, dataDir).to.equal(1);
      expect(await db.listCollections()).to.deep.equal([]);
      const refused = await db.createCollection('users', 'tree').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isEngineError(refused, 'NOT_FOUND'), String(refused)).to.equal(true);
      expect(String((refused as Error).message)).to.contain('collection create');
      const tx = await db.transact({ actions: [{ collection: 'users', op: 'put', key: 'a', value: 1 }] });
      expect(tx.ok ? undefined : tx.error.code).to.equal('NOT_FOUND');
      await db.close();
    }
    expect(await readdir(dir)).to.deep.equal(['empty']);
    expect(await readdir(join(dir, 'empty'))).to.deep.equal([]);
    // An existing database opens as usual, and so does a new one by default.
    const created = await openDatabase({ dataDir: join(dir, 'empty') });
    await created.createCollection('users', 'tree');
    await created.close();
    let missing = 0;
    const reopened = await openDatabase({
      dataDir: join(dir, 'empty'),
      createIfMissing: false,
      onMissing: () => (missing += 1),
    });
    expect((await reopened.listCollections()).map((c) => c.name)).to.deep.equal(['users']);
    await reopened.close();
    expect(missing).to.equal(0);
  });

  it('works on a directory of its own, and refuses one whose node belongs to a network (it would fork)', async () => {
    const db = await openDatabase({ dataDir: dir });
    await db.createCollection('solo', 'tree');
    await db.close();
    const raw = new LevelRawStore(join(dir, 'store'));
    await raw.open();
    await raw.batch([{ type: 'put', key: `${memberPrefix}12D3KooWSomePeer`, value: '1' }]);
    await raw.sync();
    await raw.close();
    const error = await openDatabase({ dataDir: dir }).then(
      async (opened) => {
        await opened.close();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(isEngineError(error, 'UNAVAILABLE'), String(error)).to.equal(true);
    expect(String((error as Error).message)).to.match(/node start --data/);
    expect(String((error as Error).message)).to.contain('--offline');
    // Nothing was left open: the store opens again.
    const again = new LevelRawStore(join(dir, 'store'));
    await again.open();
    await again.close();
  });

  it('opens such a directory read-only when asked: reads see its copies, changes are refused, the store is untouched', async () => {
    const db = await openDatabase({ dataDir: dir });
    await db.createCollection('t', 'tree');
    await db.createCollection('d', 'diary');
    const wrote = await db.transact({
      actions: [
        { collection: 't', op: 'put', key: 'a', value: { n: 1 } },
        { collection: 't', op: 'put', key: 'b', value: { n: 2 } },
        { collection: 'd', op: 'append', value: 'first' },
      ],
    });
    expect(wrote.ok).to.equal(true);
    const info = await db.collectionInfo('t');
    await db.close();
    const raw = new LevelRawStore(join(dir, 'store'));
    await raw.open();
    await raw.batch([{ type: 'put', key: `${memberPrefix}12D3KooWSomePeer`, value: '1' }]);
    await raw.sync();
    const before = await collect(raw.iterate({}));
    await raw.close();

    let told = 0;
    const ro = await openDatabase({ dataDir: dir, readOnlyIfNetworked: true, onReadOnly: () => (told += 1) });
    try {
      expect(told).to.equal(1);
      expect((await ro.get('t', 'a')).value).to.deep.equal({ n: 1 });
      const scanned: unknown[] = [];
      for await (const entry of ro.scan('t')) scanned.push(entry.key);
      expect(scanned).to.deep.equal(['a', 'b']);
      const read: unknown[] = [];
      for await (const entry of ro.read('d')) read.push(entry.value);
      expect(read).to.deep.equal(['first']);
      expect((await ro.listCollections()).map((c) => c.name).sort()).to.deep.equal(['d', 't']);
      expect((await ro.collectionInfo('t')).rev).to.equal(info.rev);
      expect((await ro.verifyBlock(info.tail)).verified).to.equal(true);
      const reading = await ro.transact({ actions: [{ collection: 't', op: 'get', key: 'b' }] });
      expect(reading.ok).to.equal(true);
      for (const op of [
        { collection: 't', op: 'put', key: 'c', value: 3 },
        { collection: 't', op: 'del', key: 'a' },
        { collection: 't', op: 'incr', key: 'a', path: 'n', by: 1 },
        { collection: 't', op: 'merge', key: 'a', value: { m: 1 } },
        { collection: 'd', op: 'append', value: 'second' },
      ] as const) {
        const refused = await ro.transact({ actions: [{ collection: 't', op: 'get', key: 'a' }, op] });
        expect(refused.ok, op.op).to.equal(false);
        if (!refused.ok) {
          expect(refused.error).to.include({ code: 'UNAVAILABLE', action: 1 });
          expect(refused.error.message).to.contain('read-only').and.contain('node start --data');
        }
      }
      // Bad input is still bad input there, not a refusal to write.
      const bogus = await ro.transact({
        actions: [{ collection: 't', op: 'bogus', key: 'a' } as never],
      });
      expect(bogus.ok).to.equal(false);
      if (!bogus.ok) expect(bogus.error.code).to.equal('BAD_INPUT');
      const created = await ro.createCollection('new', 'tree').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isEngineError(created, 'UNAVAILABLE'), String(created)).to.equal(true);
    } finally {
      await ro.close();
    }
    const after = new LevelRawStore(join(dir, 'store'));
    await after.open();
    expect(await collect(after.iterate({}))).to.deep.equal(before);
    await after.close();
  });

  it('keeps the network it was first opened for: another is refused, embedded use signs for it', async () => {
    const raw = new LevelRawStore(join(dir, 'store'));
    await raw.open();
    const alpha = await SoloNode.open({ raw }, { network: 'alpha', dataDir: dir });
    await alpha.createCollection('t', 'tree');
    await alpha.close();
    const again = new LevelRawStore(join(dir, 'store'));
    await again.open();
    const error = await SoloNode.open({ raw: again }, { network: 'beta', dataDir: dir }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isEngineError(error, 'CONFIG_INVALID'), String(error)).to.equal(true);
    expect((error as Error).message)
      .to.contain(dir)
      .and.to.contain('"alpha"')
      .and.to.contain('--network alpha');
    await again.close();
    // Embedded commands name no network: they take the recorded one, so certificates stay alpha's.
    const db = await openDatabase({ dataDir: dir });
    const outcome = await db.transact(
      { actions: [{ collection: 't', op: 'put', key: 'k', value: 1 }] },
      { certificates: true },
    );
    await db.close();
    expect(outcome.ok).to.equal(true);
    if (outcome.ok) expect(outcome.commit['t']?.certificate?.network).to.equal('alpha');
  });

  it('records the default network for a new directory opened embedded', async () => {
    const db = await openDatabase({ dataDir: dir });
    await db.close();
    const raw = new LevelRawStore(join(dir, 'store'));
    await raw.open();
    const error = await SoloNode.open({ raw }, { network: 'other', dataDir: dir }).then(
      () => undefined,
      (e: unknown) => e,
    );
    await raw.close();
    expect(isEngineError(error, 'CONFIG_INVALID'), String(error)).to.equal(true);
    expect((error as Error).message).to.contain('"default"');
  });
});
