// Request latency between nodes, for `npm run bench` (`--only rtt`): NDJSON like bench/run.ts.
//
// - rtt.request.sequential / rtt.request.concurrent8: a trivial echo request between two in-process
//   network nodes on 127.0.0.1, one requester at a time and eight at once (latency of each request).
// - rtt.request.sequential.new-stream-each: the same, opening a new stream per request (no pooling).
// - rtt.ping: libp2p's ping on the same connection (a new ping stream each time).
// - rtt.cluster.tx.sequential: single-key transactions through one node of a three-node in-process
//   cluster (startNode, as test/integration/cluster.test.ts does), one at a time.
// Nothing here asserts. BENCH_RTT_N (requests per figure) and BENCH_RTT_TX (transactions) size it.
import '../src/shim.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { defaultNodeConfig, type NodeConfig } from '../src/engine/config/schema.js';
import { createNetworkNode, schema, type NetworkNode } from '../src/engine/network/index.js';
import { startNode, type RunningNode } from '../src/engine/node/node.js';

const requests = Number(process.env['BENCH_RTT_N'] ?? 2000);
const transactions = Number(process.env['BENCH_RTT_TX'] ?? 200);

function emit(record: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(record) + '\n');
}

function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function summary(name: string, samples: number[], wallMs: number, extra: Record<string, unknown> = {}): void {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  emit({
    bench: name,
    n: samples.length,
    p50Ms: round(at(0.5)),
    p99Ms: round(at(0.99)),
    minMs: round(sorted[0]!),
    meanMs: round(samples.reduce((a, b) => a + b, 0) / samples.length),
    opsPerSec: round((samples.length / wallMs) * 1000, 1),
    ...extra,
  });
}

async function timedEach(count: number, concurrency: number, work: () => Promise<unknown>): Promise<void> {
  const samples: number[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next++ < count) {
      const start = performance.now();
      await work();
      samples.push(performance.now() - start);
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  lastSamples = { samples, wallMs: performance.now() - start };
}
let lastSamples = { samples: [] as number[], wallMs: 0 };

async function requestRtt(): Promise<void> {
  const server = await createNetworkNode({ privateKey: await generateKeyPair('Ed25519') });
  const client = await createNetworkNode({ privateKey: await generateKeyPair('Ed25519') });
  try {
    // The requester is a member here (as cluster peers are), so the per-peer request rate does not apply.
    server.trust(() => true);
    await server.handle('echo', (request) => Promise.resolve(request), { validate: schema.anyMessage });
    await client.connect(server.addresses()[0]!);
    const echo = (): Promise<unknown> => client.request(server.peerId, 'echo', { type: 'echo', n: 1 });
    for (let i = 0; i < 200; i++) await echo();
    await timedEach(Math.min(requests, 500), 1, () => client.ping(server.peerId));
    summary('rtt.ping', lastSamples.samples, lastSamples.wallMs);
    await timedEach(requests, 1, echo);
    summary('rtt.request.sequential', lastSamples.samples, lastSamples.wallMs, streamsOf(client));
    await timedEach(requests, 8, echo);
    summary('rtt.request.concurrent8', lastSamples.samples, lastSamples.wallMs, streamsOf(client));
    // The same request on a new stream each time (no idle stream is kept): what reuse saves.
    const fresh = await createNetworkNode(
      { privateKey: await generateKeyPair('Ed25519') },
      { requestStreamsIdlePerPeerMax: 0 },
    );
    try {
      await fresh.connect(server.addresses()[0]!);
      const echoFresh = (): Promise<unknown> => fresh.request(server.peerId, 'echo', { type: 'echo', n: 1 });
      for (let i = 0; i < 100; i++) await echoFresh();
      await timedEach(Math.min(requests, 1000), 1, echoFresh);
      summary(
        'rtt.request.sequential.new-stream-each',
        lastSamples.samples,
        lastSamples.wallMs,
        streamsOf(fresh),
      );
    } finally {
      await fresh.stop();
    }
  } finally {
    await client.stop();
    await server.stop();
  }
}

/** Outbound streams opened so far, where the node counts them. */
function streamsOf(node: NetworkNode): Record<string, unknown> {
  const stats = node.stats() as unknown as Record<string, unknown>;
  return 'streamsOpened' in stats ? { streamsOpened: stats['streamsOpened'] } : {};
}

async function clusterTx(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'optimystic-bench-rtt-'));
  const nodes: RunningNode[] = [];
  const loopback: NodeConfig = { ...defaultNodeConfig, listen: ['/ip4/127.0.0.1/tcp/0'] };
  try {
    nodes.push(await startNode({ dataDir: join(root, 'n0'), config: loopback, version: 'bench' }));
    const bootstrap = (await nodes[0]!.status()).listenAddresses;
    for (let i = 1; i < 3; i++)
      nodes.push(
        await startNode({
          dataDir: join(root, `n${i}`),
          config: { ...loopback, bootstrap },
          version: 'bench',
        }),
      );
    for (const a of nodes)
      for (const b of nodes)
        if (a !== b) await a.connect((await b.status()).listenAddresses[0]!).catch(() => undefined);
    for (;;) {
      let ready = true;
      for (const node of nodes) if ((await node.peers()).length < 2) ready = false;
      if (ready) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    await nodes[0]!.database.createCollection('bench', 'tree');
    let i = 0;
    const failures = new Map<string, number>();
    const put = async (through: RunningNode): Promise<void> => {
      const key = `k${i++ % 1000}`;
      const outcome = await through.database.transact({
        actions: [{ collection: 'bench', op: 'put', key, value: { i } }],
      });
      // A failed transaction is counted (and its time kept): the figure is latency, not correctness.
      if (!outcome.ok) failures.set(outcome.error.code, (failures.get(outcome.error.code) ?? 0) + 1);
    };
    for (let w = 0; w < 20; w++) await put(nodes[1]!);
    for (const [index, node] of nodes.entries()) {
      failures.clear();
      await timedEach(transactions, 1, () => put(node));
      summary(`rtt.cluster.tx.sequential`, lastSamples.samples, lastSamples.wallMs, {
        through: `n${index}`,
        ...(failures.size === 0 ? {} : { failed: Object.fromEntries(failures) }),
      });
    }
  } finally {
    for (const node of nodes.reverse()) await node.close().catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  }
}

emit({ bench: 'rtt.env', node: process.version, cpus: (await import('node:os')).cpus().length });
await requestRtt();
await clusterTx();
