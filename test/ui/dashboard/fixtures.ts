// Fixed statuses and a hand-driven StatusSource for the dashboard tests and the demo.
import type { NodeEvent, NodeStatus, PeerStatus, StatusSource } from '../../../src/engine/node/status.js';

export const ownPeerId = '12D3KooWRfYU5FaY9SmJcRqDyVKyzpXYXvZQhVFZHPdVdvxGJTKx';
export const startedAt = Date.UTC(2025, 0, 2, 3, 4, 5);

export function peer(id: string, overrides: Partial<PeerStatus> = {}): PeerStatus {
  return {
    id,
    addresses: [`/ip4/10.0.0.${Number.parseInt(id.slice(-2), 10) || 99}/tcp/4001/p2p/${id}`],
    direction: 'outbound',
    connectedAt: startedAt + 60_000,
    ...overrides,
  };
}

/** A node two hours up with three peers, some history and a quarter-full store. */
export function sampleStatus(overrides: Partial<NodeStatus> = {}): NodeStatus {
  return {
    version: '0.1.0',
    peerId: ownPeerId,
    network: 'testnet',
    role: 'transaction',
    gateway: true,
    bootstrapNode: false,
    clusterSize: 3,
    dataDir: '/var/lib/optimystic',
    pid: 4242,
    startedAt,
    uptimeMs: 2 * 3600_000 + 3 * 60_000 + 4_000,
    listenAddresses: ['/ip4/0.0.0.0/tcp/4001', '/ip6/::/tcp/4001'],
    announceAddresses: [`/ip4/203.0.113.7/tcp/4001/p2p/${ownPeerId}`],
    peers: [
      peer('12D3KooWSlowSlowSlowSlowSlowSlowSlowSlowSlowSlow0003', { latencyMs: 240, direction: 'inbound' }),
      peer('12D3KooWFastFastFastFastFastFastFastFastFastFast0001', { latencyMs: 4.2 }),
      peer('12D3KooWMiddMiddMiddMiddMiddMiddMiddMiddMiddMidd0002', { latencyMs: 37 }),
    ],
    connections: 4,
    dhtTableSize: 17,
    collections: 5,
    storage: { blocks: 1234, pending: 7, bytes: 256 * 1024 * 1024, capacityBytes: 1024 * 1024 * 1024 },
    pendingTransactions: 3,
    rates: {
      txPerSec: 12.4,
      commitP50Ms: 8.4,
      commitP99Ms: 42,
      txPerSecHistory: [0, 2, 4, 8, 16, 12.4],
      commitP50History: [5, 6, 7, 8, 9, 8.4],
    },
    ...overrides,
  };
}

/** A node that has just started: nobody connected, nothing measured, nothing stored. */
export function emptyStatus(): NodeStatus {
  return sampleStatus({
    uptimeMs: 0,
    listenAddresses: [],
    announceAddresses: [],
    peers: [],
    connections: 0,
    dhtTableSize: 0,
    collections: 0,
    storage: { blocks: 0, pending: 0, bytes: 0, capacityBytes: 0 },
    pendingTransactions: 0,
    rates: { txPerSec: 0, commitP50Ms: 0, commitP99Ms: 0, txPerSecHistory: [], commitP50History: [] },
  });
}

export function event(at: number, kind: NodeEvent['kind'], message: string, peerId?: string): NodeEvent {
  return { at: startedAt + at, kind, message, ...(peerId !== undefined ? { peerId } : {}) };
}

export function sampleEvents(): NodeEvent[] {
  return [
    event(0, 'node:start', 'node started on testnet'),
    event(
      1000,
      'peer:connect',
      'peer 12D3KooWFastFastFastFastFastFastFastFastFastFast0001 connected',
      '12D3KooWFastFastFastFastFastFastFastFastFastFast0001',
    ),
    event(
      2000,
      'peer:disconnect',
      'peer 12D3KooWGoneGoneGoneGoneGoneGoneGoneGoneGoneGone0009 disconnected',
      '12D3KooWGoneGoneGoneGoneGoneGoneGoneGoneGoneGone0009',
    ),
    event(3000, 'error', 'commit to collection "orders" timed out'),
  ];
}

/** A StatusSource the test drives by hand, counting its subscribers. */
export class FakeSource implements StatusSource {
  private readonly listeners = new Set<(status: NodeStatus, newEvents: readonly NodeEvent[]) => void>();
  private readonly events: NodeEvent[];

  constructor(
    private status: NodeStatus | undefined,
    events: readonly NodeEvent[] = [],
  ) {
    this.events = [...events];
  }

  get subscribers(): number {
    return this.listeners.size;
  }

  current(): NodeStatus | undefined {
    return this.status;
  }

  recentEvents(): readonly NodeEvent[] {
    return this.events;
  }

  subscribe(listener: (status: NodeStatus, newEvents: readonly NodeEvent[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(status: NodeStatus, newEvents: readonly NodeEvent[] = []): void {
    this.status = status;
    this.events.push(...newEvents);
    for (const listener of this.listeners) listener(status, newEvents);
  }
}
