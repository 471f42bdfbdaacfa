/**
 * Idle request streams kept open for the next request to the same peer on the same protocol (see the
 * top comment of request-response.ts for why and for the rules of reuse). The most recently used idle
 * stream is taken first, so streams beyond what the traffic needs idle out. Bounds: at most
 * `idlePerPeerMax` idle streams per peer across protocols (each holds one of the peer's inbound stream
 * slots at the other end), and each is closed after `idleMs` without a request, or at once when the
 * other side closes or resets it.
 */
import { EngineError } from '../base/errors.js';
import { FrameReader } from './framing.js';
import type { Lease, OpenStream, StreamSource, WireStream } from './request-response.js';

export interface StreamPoolOptions {
  /** An idle stream is closed after this long without a request. */
  idleMs: number;
  /** Idle streams kept per peer, across protocols. */
  idlePerPeerMax: number;
  /** How long a stream we closed may wait for the other side to close before it is reset. */
  lingerMs: number;
  frameBytesMax: number;
}

interface Idle {
  readonly lease: Lease;
  readonly protocol: string;
  readonly timer: NodeJS.Timeout;
}

export class StreamPool {
  /** Idle streams by peer; each list in order of return (the last is the most recently used). */
  private readonly idle = new Map<string, Idle[]>();
  private idleCount = 0;
  private closed = false;
  /** Streams opened for requests, and requests (a batch's items each) sent on a reused stream, since start. */
  opened = 0;
  reused = 0;

  constructor(private readonly options: StreamPoolOptions) {}

  /** Idle streams held now. */
  get idleStreams(): number {
    return this.idleCount;
  }

  /** Where requests to `peer` on `protocol` get their streams; `open` opens a new one. */
  source(peer: string, protocol: string, open: OpenStream): StreamSource {
    return {
      acquire: async (cancel, fresh, requests = 1) => {
        if (!fresh) {
          const lease = this.take(peer, protocol);
          if (lease !== undefined) {
            this.reused += requests;
            return lease;
          }
        }
        const stream = await open(cancel.signal);
        this.opened += 1;
        const reader = new FrameReader(stream, { frameBytesMax: this.options.frameBytesMax });
        return { stream, reader, reused: false };
      },
      release: (lease, reusable) => {
        if (reusable) this.put(peer, protocol, lease);
        else discard(lease);
      },
    };
  }

  /** Closes every idle stream; later returns are closed too. */
  close(): void {
    this.closed = true;
    for (const list of this.idle.values())
      for (const entry of list) {
        clearTimeout(entry.timer);
        discard(entry.lease);
      }
    this.idle.clear();
    this.idleCount = 0;
  }

  private take(peer: string, protocol: string): Lease | undefined {
    const list = this.idle.get(peer);
    if (list === undefined) return undefined;
    for (let i = list.length - 1; i >= 0; i--) {
      const entry = list[i]!;
      if (entry.protocol !== protocol) continue;
      this.remove(peer, entry);
      const { stream, reader } = entry.lease;
      if (stream.status !== 'open' || !reader.live) {
        discard(entry.lease);
        continue;
      }
      return { stream, reader, reused: true };
    }
    return undefined;
  }

  private put(peer: string, protocol: string, lease: Lease): void {
    const { stream, reader } = lease;
    if (this.closed || stream.status !== 'open' || !reader.live) return discard(lease);
    const list = this.idle.get(peer) ?? [];
    if (list.length >= this.options.idlePerPeerMax) return this.retire(lease);
    const entry: Idle = {
      lease,
      protocol,
      timer: setTimeout(() => {
        this.remove(peer, entry);
        this.retire(lease);
      }, this.options.idleMs),
    };
    entry.timer.unref?.();
    // The other side closed or reset the idle stream: forget it (and finish closing it).
    reader.onIdleEnd = () => {
      if (!this.remove(peer, entry)) return;
      this.retire(lease);
    };
    list.push(entry);
    this.idle.set(peer, list);
    this.idleCount += 1;
  }

  /** Takes an entry out of the pool; false when it was no longer there. */
  private remove(peer: string, entry: Idle): boolean {
    const list = this.idle.get(peer);
    const index = list?.indexOf(entry) ?? -1;
    if (list === undefined || index < 0) return false;
    list.splice(index, 1);
    if (list.length === 0) this.idle.delete(peer);
    this.idleCount -= 1;
    clearTimeout(entry.timer);
    entry.lease.reader.onIdleEnd = undefined;
    return true;
  }

  /** Closes a healthy stream we no longer want: our writing end first, a reset if the peer lingers. */
  private retire(lease: Lease): void {
    const { stream, reader } = lease;
    reader.discard();
    if (stream.status !== 'open') return;
    const linger = setTimeout(
      () => stream.abort(new EngineError('TIMEOUT', 'peer did not close an idle stream')),
      this.options.lingerMs,
    );
    linger.unref?.();
    stream.addEventListener('close', () => clearTimeout(linger), { once: true });
    stream.close().catch((error: unknown) => {
      clearTimeout(linger);
      stream.abort(error instanceof Error ? error : new Error(String(error)));
    });
  }
}

function discard(lease: Lease): void {
  const stream: WireStream = lease.stream;
  if (stream.status === 'open') stream.abort(new EngineError('INTERRUPTED', 'request stream discarded'));
  lease.reader.dispose();
}
