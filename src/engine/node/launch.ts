/**
 * Entry points to the node that load libp2p on first use: a data command that never starts or
 * inspects a node should not pay a few hundred milliseconds to import it.
 */
import { join } from 'node:path';
import { LevelRawStore } from '../storage/level-store.js';
import type { IdentityInfo } from './node-api.js';
import type { RunningNode, StartNodeOptions } from './node.js';
import { SoloNode } from './solo-node.js';

/** Starts a node on a data directory (see node.ts). */
export async function startNode(options: StartNodeOptions): Promise<RunningNode> {
  const { startNode: start } = await import('./node.js');
  return start(options);
}

/**
 * The identity of the data directory, opened embedded; created (and saved) when it has none yet.
 * `created` says which.
 */
export async function dataDirIdentity(
  dataDir: string,
): Promise<IdentityInfo & { readonly created: boolean }> {
  const raw = new LevelRawStore(join(dataDir, 'store'));
  await raw.open();
  try {
    const created = (await raw.get(SoloNode.identityKey)) === undefined;
    const solo = await SoloNode.open({ raw });
    const { nodeKeys } = await import('./identity.js');
    const { info } = await nodeKeys(solo.identity);
    return { ...info, created };
  } finally {
    await raw.close();
  }
}
