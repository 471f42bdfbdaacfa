/**
 * Admission of inbound streams: at most `streamsPerPeerMax` open per peer and `inboundStreamsMax`
 * overall, and a token bucket per peer (`requestsPerPeerPerSec`, bursts up to `requestsPerPeerBurst`)
 * that every request takes a token from: a stream's first with `admit`, later ones on the same
 * (reused) stream with `admitRequest`.
 * State is kept for at most `peersTrackedMax` peers (least recently seen dropped first), so a parade
 * of fresh peer ids cannot grow it. Time comes from the injected clock.
 */
import { assert } from '../base/assert.js';
import type { Clock } from '../base/clock.js';
import { limits } from '../base/limits.js';

export interface PeerGuardInit {
  streamsPerPeerMax?: number;
  inboundStreamsMax?: number;
  requestsPerPeerPerSec?: number;
  requestsPerPeerBurst?: number;
  peersTrackedMax?: number;
}

export interface PeerGuardComponents {
  clock: Clock;
}

/** Why a stream was refused. */
export type Refusal = 'peer-streams' | 'node-streams' | 'rate';

/** An admitted stream; `release` once when it is finished (further calls do nothing). */
export interface Admission {
  release(): void;
}

interface PeerState {
  open: number;
  tokens: number;
  refilledAt: number;
}

/** How many more streams than an ordinary peer a trusted peer may hold open. */
const trustedStreamsFactor = 4;

export class PeerGuard {
  private readonly streamsPerPeerMax: number;
  private readonly inboundStreamsMax: number;
  private readonly ratePerMs: number;
  private readonly burst: number;
  private readonly peersTrackedMax: number;
  private readonly clock: Clock;
  /** Insertion order doubles as recency: a peer is re-inserted whenever it is seen. */
  private readonly peers = new Map<string, PeerState>();
  private openTotal = 0;

  constructor(components: PeerGuardComponents, init: PeerGuardInit = {}) {
    this.clock = components.clock;
    this.streamsPerPeerMax = init.streamsPerPeerMax ?? limits.streamsPerPeerMax;
    this.inboundStreamsMax = init.inboundStreamsMax ?? limits.inboundStreamsMax;
    this.ratePerMs = (init.requestsPerPeerPerSec ?? limits.requestsPerPeerPerSec) / 1000;
    this.burst = init.requestsPerPeerBurst ?? limits.requestsPerPeerBurst;
    this.peersTrackedMax = init.peersTrackedMax ?? limits.peersTrackedMax;
    assert(this.streamsPerPeerMax > 0 && this.inboundStreamsMax > 0, 'stream limits must be positive');
    assert(this.burst >= 1 && this.ratePerMs > 0, 'rate limits must be positive');
    assert(this.peersTrackedMax > 0, 'peersTrackedMax must be positive');
  }

  /**
   * Admits one inbound stream from `peerId`, or says why not. A trusted peer (a member of the same
   * database, whose replication and votes are the node's own work) is not rate limited and may hold
   * more streams; the node-wide stream bound still applies.
   */
  admit(peerId: string, trusted = false): Admission | Refusal {
    const state = this.touch(peerId);
    if (this.openTotal >= this.inboundStreamsMax) return 'node-streams';
    if (state.open >= this.streamsPerPeerMax * (trusted ? trustedStreamsFactor : 1)) return 'peer-streams';
    if (!trusted && state.tokens < 1) return 'rate';
    if (!trusted) state.tokens -= 1;
    state.open += 1;
    this.openTotal += 1;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        state.open -= 1;
        this.openTotal -= 1;
      },
    };
  }

  /**
   * Admits one more request on a stream `peerId` already holds (streams are reused for many requests):
   * it takes a token like `admit` does for a stream's first request; false when the peer is over its
   * rate. Trusted peers are not rate limited.
   */
  admitRequest(peerId: string, trusted = false): boolean {
    if (trusted) return true;
    const state = this.touch(peerId);
    if (state.tokens < 1) return false;
    state.tokens -= 1;
    return true;
  }

  /** Streams open now, overall and for one peer. */
  openStreams(peerId?: string): number {
    return peerId === undefined ? this.openTotal : (this.peers.get(peerId)?.open ?? 0);
  }

  /** Peers whose state is remembered. */
  trackedPeers(): number {
    return this.peers.size;
  }

  private touch(peerId: string): PeerState {
    const now = this.clock.now();
    let state = this.peers.get(peerId);
    if (state === undefined) {
      state = { open: 0, tokens: this.burst, refilledAt: now };
    } else {
      this.peers.delete(peerId);
      const elapsedMs = Math.max(0, now - state.refilledAt);
      state.tokens = Math.min(this.burst, state.tokens + elapsedMs * this.ratePerMs);
      state.refilledAt = now;
    }
    this.peers.set(peerId, state);
    this.evict();
    return state;
  }

  /**
   * Drops the least recently seen peers over the bound. A peer with open streams is kept (its count
   * must stay right); there are at most inboundStreamsMax of those, so the map stays bounded.
   */
  private evict(): void {
    if (this.peers.size <= this.peersTrackedMax) return;
    for (const [peerId, state] of this.peers) {
      if (this.peers.size <= this.peersTrackedMax) break;
      if (state.open === 0) this.peers.delete(peerId);
    }
  }
}
