import { join } from 'node:path';
import { LevelRawStore } from '../storage/level-store.js';
import type { Database, OpenDatabaseOptions } from './database-api.js';
import { SoloNode } from './solo-node.js';

/** Opens a data directory as an embedded solo node (no network, cluster of one). */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  const raw = new LevelRawStore(join(options.dataDir, 'store'));
  await raw.open();
  try {
    return await SoloNode.open({ raw });
  } catch (error) {
    await raw.close();
    throw error;
  }
}
