import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isEngineError } from '../../../src/engine/base/errors.js';
import { openDatabase } from '../../../src/engine/node/embedded.js';
import { SoloNode } from '../../../src/engine/node/solo-node.js';
import { memberPrefix } from '../../../src/engine/node/store-keys.js';
import { LevelRawStore } from '../../../src/engine/storage/level-store.js';

describe('opening a data directory embedded', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'optimystic-embedded-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
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
    // Nothing was left open: the store opens again.
    const again = new LevelRawStore(join(dir, 'store'));
    await again.open();
    await again.close();
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
