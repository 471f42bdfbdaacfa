import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { tcp } from '@libp2p/tcp';
import { createLibp2p, type Libp2p } from 'libp2p';
import { SeededRng } from '../../src/engine/base/rng.js';
import {
  createNetworkNode,
  privateKeyFromSeed,
  type NetworkInit,
  type NetworkNode,
} from '../../src/engine/network/index.js';

/** Starts nodes with identities from a seed and stops every one of them in `stopAll`. */
export class NodePool {
  private readonly nodes: NetworkNode[] = [];
  private readonly raws: Libp2p[] = [];
  private readonly rng: SeededRng;

  constructor(seed: number) {
    this.rng = new SeededRng(seed);
  }

  async start(init: NetworkInit = {}): Promise<NetworkNode> {
    const privateKey = await privateKeyFromSeed(this.rng.bytes(32));
    const node = await createNetworkNode({ privateKey }, { maintenanceIntervalMs: 1000, ...init });
    this.nodes.push(node);
    return node;
  }

  /** Starts a node with a given 32-byte identity seed (the same seed again: the same peer id, e.g. a restart). */
  async startWithSeed(seed: Uint8Array, init: NetworkInit = {}): Promise<NetworkNode> {
    const privateKey = await privateKeyFromSeed(seed);
    const node = await createNetworkNode({ privateKey }, { maintenanceIntervalMs: 1000, ...init });
    this.nodes.push(node);
    return node;
  }

  /** The next identity seed this pool would use (for nodes that need the seed itself, e.g. to sign). */
  nextSeed(): Uint8Array {
    return this.rng.bytes(32);
  }

  /** A bare libp2p peer (TCP, Noise, Yamux; no services) for speaking raw bytes to a node. */
  async raw(): Promise<Libp2p> {
    const privateKey = await privateKeyFromSeed(this.rng.bytes(32));
    const node = await createLibp2p({
      privateKey,
      addresses: { listen: [] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
    });
    this.raws.push(node);
    return node;
  }

  async stopAll(): Promise<void> {
    await Promise.all([
      ...this.nodes.splice(0).map((node) => node.stop()),
      ...this.raws.splice(0).map((node) => node.stop()),
    ]);
  }
}

/** Polls `check` until it returns true; fails with `what` after `timeoutMs`. */
export async function eventually(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
