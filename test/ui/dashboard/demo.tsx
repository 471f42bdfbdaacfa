// Not a test: a dashboard over a made-up, changing node, to look at in a real terminal.
//   node --import tsx test/ui/dashboard/demo.tsx [--attached]
// q (then y) quits; with --attached, q detaches at once.
import '../../../src/shim.js';
import type { NodeEvent, NodeStatus, PeerStatus } from '../../../src/engine/node/status.js';
import { startDashboard } from '../../../src/ui/dashboard/index.js';
import { FakeSource, ownPeerId, sampleStatus } from './fixtures.js';

/** Deterministic so two runs look alike (mulberry32). */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = seeded(7);
const alphabet = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
const newPeerId = () =>
  `12D3KooW${Array.from({ length: 44 }, () => alphabet[Math.floor(random() * alphabet.length)]).join('')}`;

const historyLength = 120;
const startedAt = Date.now() - 3 * 3600_000;
let peers: PeerStatus[] = Array.from({ length: 6 }, (_, i) => ({
  id: newPeerId(),
  addresses: [`/ip4/192.168.1.${10 + i}/tcp/4001`],
  latencyMs: 2 + random() * 80,
  direction: random() < 0.5 ? 'inbound' : 'outbound',
  connectedAt: Date.now() - random() * 3600_000,
}));
const txHistory: number[] = [];
const p50History: number[] = [];
let bytes = 300 * 1024 * 1024;
let blocks = 4000;
let tick = 0;

function nextStatus(): { status: NodeStatus; events: NodeEvent[] } {
  tick++;
  const now = Date.now();
  const events: NodeEvent[] = [];
  const tx = Math.max(0, 40 + 30 * Math.sin(tick / 8) + random() * 20);
  const p50 = 6 + 4 * Math.cos(tick / 11) + random() * 3;
  // Status every 50 ms, history and membership changes once a second, as a node samples them.
  const second = tick % 20 === 0;
  if (second) {
    txHistory.push(tx);
    p50History.push(p50);
    if (txHistory.length > historyLength) txHistory.shift();
    if (p50History.length > historyLength) p50History.shift();
  }
  bytes += Math.round(tx * 100);
  blocks += tick % 4 === 0 ? 1 : 0;
  peers = peers.map((p) => ({ ...p, latencyMs: Math.max(0.5, (p.latencyMs ?? 20) + (random() - 0.5) * 2) }));
  if (!second) {
    // nothing else changes between samples
  } else if (random() < 0.4 && peers.length < 40) {
    const joined: PeerStatus = {
      id: newPeerId(),
      addresses: [`/ip4/10.1.${tick % 250}.${Math.floor(random() * 250)}/tcp/4001`],
      direction: 'inbound',
      connectedAt: now,
    };
    peers.push(joined);
    events.push({ at: now, kind: 'peer:connect', message: `peer ${joined.id} connected`, peerId: joined.id });
  } else if (random() < 0.25 && peers.length > 0) {
    const [left] = peers.splice(Math.floor(random() * peers.length), 1);
    if (left !== undefined)
      events.push({
        at: now,
        kind: 'peer:disconnect',
        message: `peer ${left.id} disconnected`,
        peerId: left.id,
      });
  }
  if (second && random() < 0.1)
    events.push({
      at: now,
      kind: 'error',
      message: 'commit to collection "orders" timed out waiting for 2 of 3 cluster votes',
    });
  if (second && random() < 0.15)
    events.push({ at: now, kind: 'info', message: `checkpointed collection "users" at rev ${tick * 17}` });
  const status = sampleStatus({
    peerId: ownPeerId,
    network: 'demo',
    startedAt,
    uptimeMs: now - startedAt,
    listenAddresses: ['/ip4/0.0.0.0/tcp/4001', '/ip6/::/tcp/4001'],
    announceAddresses: [`/ip4/203.0.113.7/tcp/4001/p2p/${ownPeerId}`, '/dns4/node.example.org/tcp/4001'],
    peers,
    connections: peers.length + 2,
    dhtTableSize: peers.length * 3 + 5,
    collections: 12,
    storage: { blocks, pending: Math.round(tx / 3), bytes, capacityBytes: 2 * 1024 * 1024 * 1024 },
    pendingTransactions: Math.round(random() * 9),
    rates: {
      txPerSec: tx,
      commitP50Ms: p50,
      commitP99Ms: p50 * 4 + random() * 30,
      txPerSecHistory: [...txHistory],
      commitP50History: [...p50History],
    },
  });
  return { status, events };
}

const attached = process.argv.includes('--attached');
const first = nextStatus();
const source = new FakeSource(first.status, [
  { at: Date.now(), kind: 'node:start', message: 'node started on demo' },
]);
// Far more often than the dashboard draws: it must keep to its own pace.
const timer = setInterval(() => {
  const next = nextStatus();
  source.emit(next.status, next.events);
}, 50);

const dashboard = startDashboard(source, {
  ownsNode: !attached,
  onQuit: async () => {
    source.emit(source.current()!, [{ at: Date.now(), kind: 'node:stop', message: 'stopping' }]);
    await new Promise((resolve) => setTimeout(resolve, attached ? 0 : 800));
    clearInterval(timer);
  },
});
try {
  await dashboard.waitUntilExit();
  console.log(attached ? 'detached' : 'node stopped');
} finally {
  clearInterval(timer);
}
