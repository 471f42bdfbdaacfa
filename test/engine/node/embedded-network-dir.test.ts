import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isEngineError } from '../../../src/engine/base/errors.js';
import { openDatabase } from '../../../src/engine/node/embedded.js';
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
});
