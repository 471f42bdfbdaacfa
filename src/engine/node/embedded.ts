import { join } from 'node:path';
import { LevelRawStore } from '../storage/level-store.js';
import type { Database, OpenDatabaseOptions } from './database-api.js';
import { EngineError } from '../base/errors.js';
import type { RawStore } from '../storage/raw-store.js';
import { memberPrefix } from './store-keys.js';
import { SoloNode } from './solo-node.js';

/** True when the store recorded other members of a network (its node has met peers). */
async function hasNetworkMembers(raw: RawStore): Promise<boolean> {
  for await (const _entry of raw.iterate({ gte: memberPrefix, lt: memberPrefix + '\uffff', limit: 1 }))
    return true;
  return false;
}

/** Opens a data directory as an embedded solo node (no network, cluster of one). */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  const raw = new LevelRawStore(join(options.dataDir, 'store'));
  await raw.open();
  try {
    if (await hasNetworkMembers(raw)) {
      throw new EngineError(
        'UNAVAILABLE',
        `${options.dataDir} belongs to a node of a network, and that node is not running: changes made here alone would fork it from its cluster. Start it (optimystic node start --data ${options.dataDir}) and run the command again, or reach another node with --connect`,
      );
    }
    return await SoloNode.open({ raw });
  } catch (error) {
    await raw.close();
    throw error;
  }
}
