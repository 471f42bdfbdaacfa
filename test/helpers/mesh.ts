import { expect } from 'chai';
import { join } from 'node:path';
import { defaultNodeConfig, type NodeConfig } from '../../src/engine/config/schema.js';
import { startNode, type RunningNode, type StartNodeOptions } from '../../src/engine/node/node.js';

/** Listens on an ephemeral port of 127.0.0.1 only. */
export const loopback: NodeConfig = { ...defaultNodeConfig, listen: ['/ip4/127.0.0.1/tcp/0'] };

/** Starts a node alone on `dataDir`, listening on 127.0.0.1 only. */
export function startAlone(dataDir: string): Promise<RunningNode> {
  return startNode({ dataDir, config: loopback, version: 'test' });
}

/**
 * Starts `count` in-process nodes under `root` (data dirs n0, n1, …), each joining through n0, and
 * connects every pair, returning once each node sees all the others. Nodes are pushed onto `into` as
 * they start, so the caller closes what started even when a later step fails. `network(name)` adds
 * network options per node (request observers, connection gaters).
 */
export async function startMesh(
  into: RunningNode[],
  root: string,
  count: number,
  network?: (name: string) => StartNodeOptions['network'],
): Promise<RunningNode[]> {
  const start = (name: string, config: NodeConfig): Promise<RunningNode> => {
    const extra = network?.(name);
    return startNode({
      dataDir: join(root, name),
      config,
      version: 'test',
      ...(extra !== undefined ? { network: extra } : {}),
    });
  };
  const nodes: RunningNode[] = [];
  const add = (node: RunningNode): void => {
    nodes.push(node);
    into.push(node);
  };
  add(await start('n0', loopback));
  const bootstrap = (await nodes[0]!.status()).listenAddresses;
  for (let i = 1; i < count; i++) add(await start(`n${i}`, { ...loopback, bootstrap }));
  for (const a of nodes)
    for (const b of nodes)
      if (a !== b) await a.connect((await b.status()).listenAddresses[0]!).catch(() => undefined);
  const deadline = Date.now() + 30_000;
  while (
    (await Promise.all(nodes.map(async (node) => (await node.peers()).length))).some((n) => n < count - 1)
  ) {
    if (Date.now() > deadline) expect.fail(`the ${count} nodes did not connect`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return nodes;
}
