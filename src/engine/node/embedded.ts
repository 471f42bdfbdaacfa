import { join } from 'node:path';
import { LevelRawStore } from '../storage/level-store.js';
import { MemoryRawStore } from '../storage/memory-store.js';
import { OverlayRawStore } from '../storage/overlay-store.js';
import type { Database, OpenDatabaseOptions } from './database-api.js';
import { EngineError } from '../base/errors.js';
import type { RawStore } from '../storage/raw-store.js';
import { writingOps } from '../transactions/tx-parse.js';
import type { TransactOptions, TxOutcome, TxRequest } from '../transactions/tx-types.js';
import { fileExists } from './keystore.js';
import { memberPrefix } from './store-keys.js';
import { SoloNode } from './solo-node.js';

/** True when the store recorded other members of a network (its node has met peers). */
async function hasNetworkMembers(raw: RawStore): Promise<boolean> {
  for await (const _entry of raw.iterate({ gte: memberPrefix, lt: memberPrefix + '\uffff', limit: 1 }))
    return true;
  return false;
}

/**
 * Opens a data directory as an embedded solo node (no network, cluster of one). The directory of a
 * node of a network, while that node is stopped, opens only with `readOnlyIfNetworked`, and then
 * read-only: reads see the node's own copies, and nothing is written to it.
 */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  const storeDir = join(options.dataDir, 'store');
  // Anything but "not there" counts as there: opening it then says what is wrong.
  if (options.createIfMissing === false && !(await fileExists(storeDir).catch(() => true))) {
    options.onMissing?.();
    const empty = new MemoryRawStore();
    await empty.open();
    return new ReadOnlyDatabase(await SoloNode.open({ raw: empty }), () => missingRefusal(options.dataDir));
  }
  const raw = new LevelRawStore(storeDir);
  await raw.open();
  try {
    if (await hasNetworkMembers(raw)) {
      if (options.readOnlyIfNetworked !== true)
        throw new EngineError(
          'UNAVAILABLE',
          `${options.dataDir} belongs to a node of a network, and that node is not running: changes made here alone would fork it from its cluster. Start it (optimystic node start --data ${options.dataDir}) and run the command again, or reach another node with --connect (--offline reads this node's own copies, which may be behind)`,
          { dir: options.dataDir, networked: true },
        );
      const overlay = new OverlayRawStore(raw);
      await overlay.open();
      options.onReadOnly?.();
      return new ReadOnlyDatabase(
        await SoloNode.open({ raw: overlay }),
        () => readOnlyRefusal(options.dataDir),
        { screenWrites: true },
      );
    }
    return await SoloNode.open({ raw });
  } catch (error) {
    await raw.close();
    throw error;
  }
}

/** The refusal of creating a collection in a database opened empty because the directory holds none. */
function missingRefusal(dataDir: string): EngineError {
  return new EngineError(
    'NOT_FOUND',
    `there is no database in ${dataDir}, and this command does not create one: optimystic collection create NAME --type tree|diary --data ${dataDir} does`,
    { dir: dataDir },
  );
}

/** The refusal of a change to a data directory opened read-only. */
function readOnlyRefusal(dataDir: string): EngineError {
  return new EngineError(
    'UNAVAILABLE',
    `${dataDir} belongs to a stopped node of a network and is open read-only (--offline): nothing can be changed here. Start the node (optimystic node start --data ${dataDir}) or reach another one with --connect`,
    { dir: dataDir, readOnly: true },
  );
}

/**
 * A database that must not change: a stopped network node's, read from its own copies (which may be
 * behind its cluster's), or the empty one standing in for a directory that holds none. Creating a
 * collection is refused with `refusal`; with `screenWrites`, so is a transaction that would write,
 * before anything runs (in the empty one, such a transaction fails on its unknown collection anyway).
 * What reading does to the store (an expired pend resolved, a commit applied) stays in memory
 * (OverlayRawStore, MemoryRawStore).
 */
class ReadOnlyDatabase implements Database {
  constructor(
    private readonly inner: Database,
    private readonly refusal: () => EngineError,
    private readonly options: { readonly screenWrites?: boolean } = {},
  ) {}

  createCollection(): Promise<never> {
    return Promise.reject(this.refusal());
  }

  listCollections: Database['listCollections'] = () => this.inner.listCollections();
  collectionInfo: Database['collectionInfo'] = (name) => this.inner.collectionInfo(name);
  get: Database['get'] = (name, key, options) => this.inner.get(name, key, options);
  scan: Database['scan'] = (name, options) => this.inner.scan(name, options);
  read: Database['read'] = (name, options) => this.inner.read(name, options);
  block: Database['block'] = (id, options) => this.inner.block(id, options);
  blockHistory: Database['blockHistory'] = (id) => this.inner.blockHistory(id);
  blockHolders: Database['blockHolders'] = (id) => this.inner.blockHolders(id);
  blockPending: Database['blockPending'] = (id) => this.inner.blockPending(id);
  verifyBlock: Database['verifyBlock'] = (id) => this.inner.verifyBlock(id);
  close: Database['close'] = () => this.inner.close();

  transact(request: TxRequest, options?: TransactOptions): Promise<TxOutcome> {
    if (this.options.screenWrites !== true) return this.inner.transact(request, options);
    const index = Array.isArray(request?.actions)
      ? request.actions.findIndex((action) => writingOps.has((action as { op?: unknown })?.op as string))
      : -1;
    if (index < 0) return this.inner.transact(request, options);
    const { code, message } = this.refusal();
    return Promise.resolve({ ok: false, error: { code, message, action: index } });
  }
}
