/**
 * A three-member cluster for repo tests, without libp2p: this node p0 and holders p1, p2, each with
 * its own in-memory block store. The network either serves the real repo protocol at the holders
 * (`servingNetwork`) or is a test's own `request` function.
 */
import { EngineError } from '../../../src/engine/base/errors.js';
import { Placement } from '../../../src/engine/cluster/placement.js';
import {
  ClusterRepoClient,
  serveRepoRequest,
  validateRepoRequest,
  type RepoServerParts,
} from '../../../src/engine/cluster/repo.js';
import type { NetworkNode } from '../../../src/engine/network/index.js';
import type { DirectRevision } from '../../../src/engine/storage/block-store.js';
import { MemoryRawStore } from '../../../src/engine/storage/memory-store.js';
import { VersionedBlockStore } from '../../../src/engine/storage/versioned-block-store.js';
import type { Certifier } from '../../../src/engine/transactions/certifier.js';
import { LocalRepo } from '../../../src/engine/transactions/local-repo.js';

/** A block store holding these revisions, applied in order. */
export async function storeWith(...revisions: DirectRevision[]): Promise<VersionedBlockStore> {
  const raw = new MemoryRawStore();
  await raw.open();
  const store = new VersionedBlockStore(raw);
  for (const revision of revisions) await store.apply([revision]);
  return store;
}

/**
 * Holders serving the repo protocol to p0 as a node would (the message goes through JSON and the
 * request validator). Every request is recorded in `sent` as `<peer>.<type>`; a peer in `down` fails
 * with UNAVAILABLE.
 */
export function servingNetwork(holders: Readonly<Record<string, VersionedBlockStore>>): {
  network: NetworkNode;
  sent: string[];
  down: Set<string>;
} {
  const sent: string[] = [];
  const down = new Set<string>();
  const network = {
    request(peer: string, _protocol: string, message: { type: string }) {
      sent.push(`${peer}.${message.type}`);
      if (down.has(peer)) return Promise.reject(new EngineError('UNAVAILABLE', `${peer} is down`));
      const blocks = holders[peer]!;
      const placement = new Placement(peer, 3);
      placement.add('p0');
      const parts = {
        placement,
        blocks,
        repo: new LocalRepo({ blocks, certifier: {} as Certifier }, { members: [peer] }),
      } as unknown as RepoServerParts;
      return serveRepoRequest(parts, validateRepoRequest(JSON.parse(JSON.stringify(message))), 'p0');
    },
  } as unknown as NetworkNode;
  return { network, sent, down };
}

/** p0's repo client over its own store and `network`, with p1 and p2 live members (k = 3). */
export function clientAt(local: VersionedBlockStore, network: NetworkNode): ClusterRepoClient {
  const placement = new Placement('p0', 3);
  placement.add('p1');
  placement.add('p2');
  return new ClusterRepoClient({
    local: new LocalRepo({ blocks: local, certifier: {} as Certifier }, { members: ['p0'] }),
    blocks: local,
    placement,
    network: () => network,
  });
}
