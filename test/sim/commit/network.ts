import { EngineError, isErrorCode, toEngineError } from '../../../src/engine/base/errors.js';
import { limits } from '../../../src/engine/base/limits.js';
import type { SeededRng } from '../../../src/engine/base/rng.js';
import type {
  FoundPeer,
  HandleOptions,
  NetworkEvent,
  NetworkNode,
  NetworkStats,
  PeerInfo,
  RequestHandler,
  RequestOptions,
} from '../../../src/engine/network/index.js';

/**
 * The network of the commit simulation: the subset of NetworkNode the cluster and consensus edges use,
 * over a seeded schedule of deliveries instead of libp2p. Every delivery, timeout and connection event
 * is a (fake) timer, so virtual time decides everything and a run replays from its seed.
 *
 * It behaves like the real request path where the cluster code can tell the difference:
 * - a request to a peer that cannot be reached fails UNAVAILABLE (a refused dial: a gated partition,
 *   a stopped node, a protocol not served), or times out (TIMEOUT, the request's own deadline) when
 *   messages are lost on the way (a silent partition, loss, a peer that died without a reset);
 * - a handler's EngineError reaches the requester with its code (INTERNAL as "internal error");
 * - a reachable peer that is not connected is dialled on demand (both sides see peer:connect);
 * - links go down with peer:disconnect on both sides when a gated partition cuts them or a peer
 *   dies (promptly, or seconds later: a connection monitor noticing), and come back after a re-dial
 *   delay once healed.
 * Faults on top: loss, duplicated requests (a handler runs twice; the second answer is ignored),
 * and reordering (extra delay).
 */

export interface LinkFaults {
  /** One-way delay, uniform in [min, max] ms. */
  delayMs: readonly [number, number];
  loss: number;
  duplication: number;
  reorder: number;
  reorderMs: number;
}

export const quietLinks = (delayMs: readonly [number, number]): LinkFaults => ({
  delayMs,
  loss: 0,
  duplication: 0,
  reorder: 0,
  reorderMs: 0,
});

/** How the network is split: a side per node index; `silent` cuts lose messages without a reset. */
export interface Split {
  readonly groups: readonly (readonly number[])[];
  readonly silent: boolean;
}

interface Pending {
  readonly id: number;
  readonly from: SimPort;
  readonly to: number;
  /** The incarnation the request was sent to (a restarted node never sees its predecessor's requests). */
  readonly target: SimPort | undefined;
  readonly settle: (error: EngineError | undefined, value?: unknown) => void;
  /** The port serving it (once delivered). */
  servedBy: SimPort | undefined;
}

const linkKey = (a: number, b: number): string => (a < b ? `${a}-${b}` : `${b}-${a}`);

export class SimNetwork {
  /** The port of each node's current incarnation (undefined while it is down). */
  private readonly ports: (SimPort | undefined)[];
  /** Links whose connection is up, as both ends see it. */
  private readonly up = new Set<string>();
  /** Links that were cut silently and whose ends have not noticed yet. */
  private readonly unnoticed = new Set<string>();
  private side: number[];
  private silent = false;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  faults: LinkFaults;
  /** Requests served with an INTERNAL error (an assertion or unexpected failure in a handler). */
  readonly internalErrors: string[] = [];
  delivered = 0;

  constructor(
    readonly name: string,
    readonly peerIds: readonly string[],
    private readonly rng: SeededRng,
    faults: LinkFaults,
    private readonly log: (line: string) => void,
  ) {
    this.ports = peerIds.map(() => undefined);
    this.side = peerIds.map(() => 0);
    this.faults = faults;
  }

  indexOf(peerId: string): number {
    const index = this.peerIds.indexOf(peerId);
    if (index < 0) throw new EngineError('BAD_INPUT', `unknown peer ${peerId}`);
    return index;
  }

  /** Messages flow between a and b: both up, same side of any split. */
  reachable(a: number, b: number): boolean {
    return this.ports[a] !== undefined && this.ports[b] !== undefined && this.side[a] === this.side[b];
  }

  isUp(a: number, b: number): boolean {
    return this.up.has(linkKey(a, b));
  }

  connectedPeers(index: number): number[] {
    const out: number[] = [];
    for (let j = 0; j < this.peerIds.length; j++)
      if (j !== index && this.up.has(linkKey(index, j))) out.push(j);
    return out;
  }

  /** A new incarnation of a node: its links come up after a dial delay each. */
  attach(index: number, port: SimPort): void {
    // Connections to the previous incarnation that nobody noticed dying are replaced.
    for (let j = 0; j < this.peerIds.length; j++) if (j !== index) this.linkDown(index, j);
    this.ports[index] = port;
    for (let j = 0; j < this.peerIds.length; j++) {
      if (j === index || !this.reachable(index, j)) continue;
      this.after(this.between(5, 300), () => {
        if (this.ports[index] === port && this.reachable(index, j)) this.linkUp(index, j);
      });
    }
  }

  /** The node died: nothing more leaves or reaches it; peers notice now or after a while. */
  detach(index: number, noticeMs: number): void {
    const port = this.ports[index];
    if (port === undefined) return;
    this.ports[index] = undefined;
    for (const pending of [...this.pending.values()]) {
      if (pending.from === port) this.pending.delete(pending.id);
      // The server's connection reset: the requester learns it (with the disconnect).
      else if (pending.servedBy === port) this.failLater(pending, noticeMs, 'connection reset by peer');
    }
    for (let j = 0; j < this.peerIds.length; j++) {
      if (j === index || !this.up.has(linkKey(index, j))) continue;
      this.after(noticeMs, () => {
        if (this.ports[index] !== undefined) return; // back already: the restart re-linked it
        this.linkDown(index, j);
      });
    }
  }

  /** Splits the network (or heals it with one group); cut links go down at once or once noticed. */
  split(split: Split): void {
    const side = this.peerIds.map(() => -1);
    split.groups.forEach((group, g) => group.forEach((i) => (side[i] = g)));
    // Nodes not named form a side of their own each.
    for (let i = 0; i < side.length; i++) if (side[i] === -1) side[i] = split.groups.length + i;
    this.side = side;
    this.silent = split.silent;
    for (let a = 0; a < this.peerIds.length; a++) {
      for (let b = a + 1; b < this.peerIds.length; b++) {
        const key = linkKey(a, b);
        const reachable = this.reachable(a, b);
        if (!reachable && this.up.has(key)) {
          if (split.silent) {
            if (this.unnoticed.has(key)) continue;
            this.unnoticed.add(key);
            this.after(this.between(1000, 5000), () => {
              this.unnoticed.delete(key);
              if (!this.reachable(a, b)) this.linkDown(a, b);
            });
          } else {
            this.linkDown(a, b);
          }
        } else if (reachable && !this.up.has(key)) {
          this.unnoticed.delete(key);
          this.after(this.between(100, 3000), () => {
            if (this.reachable(a, b)) this.linkUp(a, b);
          });
        }
      }
    }
  }

  request(
    from: SimPort,
    to: number,
    protocol: string,
    message: unknown,
    timeoutMs: number,
  ): Promise<unknown> {
    const a = from.index;
    return new Promise<unknown>((resolve, reject) => {
      const id = this.nextId++;
      const timer: { id?: ReturnType<typeof setTimeout> } = {};
      const pending: Pending = {
        id,
        from,
        to,
        target: this.ports[to],
        servedBy: undefined,
        settle: (error, value) => {
          if (!this.pending.delete(id)) return;
          clearTimeout(timer.id);
          if (error !== undefined) reject(error);
          else resolve(value);
        },
      };
      this.pending.set(id, pending);
      timer.id = setTimeout(
        () => pending.settle(new EngineError('TIMEOUT', `no reply within ${timeoutMs} ms`)),
        timeoutMs,
      );
      let payload: unknown;
      try {
        payload = roundTrip(message);
      } catch (error) {
        pending.settle(toEngineError(error));
        return;
      }
      if (!this.reachable(a, to)) {
        // On a connection that is still up (its end has not noticed the cut or the death) the request
        // is lost; a new dial is refused at once (gated partition, stopped peer) or hangs (silent cut).
        const refused = !this.up.has(linkKey(a, to)) && (this.ports[to] === undefined || !this.silent);
        if (refused)
          this.after(1, () =>
            pending.settle(new EngineError('UNAVAILABLE', `could not open ${protocol} to peer ${to}`)),
          );
        return;
      }
      if (!this.up.has(linkKey(a, to))) this.linkUp(a, to);
      const copies = this.rng.float() < this.faults.duplication ? 2 : 1;
      for (let copy = 0; copy < copies; copy++) {
        if (this.rng.float() < this.faults.loss) {
          if (verbose && protocol !== 'consensus')
            this.log(`${a}->${to} ${protocol} ${describe(payload)} lost`);
          continue;
        }
        this.after(this.delay(), () => this.deliver(pending, protocol, payload));
      }
    });
  }

  private deliver(pending: Pending, protocol: string, payload: unknown): void {
    const from = pending.from.index;
    const target = this.ports[pending.to];
    if (!this.pending.has(pending.id) || target === undefined || target !== pending.target) return;
    if (!this.reachable(from, pending.to)) return;
    const served = target.served(protocol);
    if (served === undefined) {
      this.reply(pending, new EngineError('UNAVAILABLE', `peer does not serve ${protocol}`));
      return;
    }
    this.delivered += 1;
    pending.servedBy = target;
    if (verbose && protocol !== 'consensus')
      this.log(`${from}->${pending.to} ${protocol} ${describe(payload)}`);
    let request: unknown;
    try {
      request = served.options.validate(payload);
    } catch (error) {
      this.reply(pending, toEngineError(error));
      return;
    }
    const controller = new AbortController();
    let answer: Promise<unknown>;
    try {
      answer = served.handler(request, { peerId: this.peerIds[from]!, signal: controller.signal });
    } catch (error) {
      answer = Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    answer.then(
      (value) => {
        if (this.ports[pending.to] !== target) return; // died while serving: the reset was sent
        let reply: unknown;
        try {
          reply = roundTrip(value ?? null);
        } catch (error) {
          this.reply(pending, toEngineError(error));
          return;
        }
        if (verbose && protocol !== 'consensus')
          this.log(`${pending.to}->${from} answers ${describeReply(reply)}`);
        this.reply(pending, undefined, reply);
      },
      (error: unknown) => {
        if (this.ports[pending.to] !== target) return;
        const failed = toEngineError(error);
        if (verbose && protocol !== 'consensus')
          this.log(`${pending.to}->${from} fails ${failed.code}: ${failed.message}`);
        this.reply(pending, failed);
      },
    );
  }

  /** Sends an answer back over the link (lost if the link is cut or the message is dropped). */
  private reply(pending: Pending, error: EngineError | undefined, value?: unknown): void {
    let remote: EngineError | undefined;
    if (error !== undefined) {
      if (error.code === 'INTERNAL') {
        // Where it was thrown: the original error when toEngineError wrapped one.
        const origin = error.cause instanceof Error ? error.cause : error;
        const where = (origin.stack ?? '').split('\n').slice(1, 4).join(' ');
        this.internalErrors.push(`${error.message} ${where}`);
        this.log(`INTERNAL answer from node ${pending.to}: ${error.message} ${where}`);
      }
      const code = isErrorCode(error.code) ? error.code : 'INTERNAL';
      remote = new EngineError(code, code === 'INTERNAL' ? 'internal error' : error.message, {
        remote: true,
      });
    }
    if (this.rng.float() < this.faults.loss) {
      if (verbose && pending.from && error === undefined)
        this.log(`${pending.to}->${pending.from.index} answer lost`);
      return;
    }
    this.after(this.delay(), () => {
      if (this.ports[pending.from.index] !== pending.from) return;
      if (!this.reachable(pending.from.index, pending.to)) return;
      pending.settle(remote, value);
    });
  }

  private failLater(pending: Pending, ms: number, why: string): void {
    this.after(ms, () => pending.settle(new EngineError('UNAVAILABLE', why)));
  }

  private linkUp(a: number, b: number): void {
    const key = linkKey(a, b);
    if (this.up.has(key)) return;
    this.up.add(key);
    this.log(`link ${a}-${b} up`);
    this.ports[a]?.emit('peer:connect', this.peerIds[b]!);
    this.ports[b]?.emit('peer:connect', this.peerIds[a]!);
  }

  private linkDown(a: number, b: number): void {
    const key = linkKey(a, b);
    if (!this.up.delete(key)) return;
    this.log(`link ${a}-${b} down`);
    // Requests on the closed connection fail.
    for (const pending of [...this.pending.values()]) {
      const ends = [pending.from.index, pending.to];
      if (ends.includes(a) && ends.includes(b))
        pending.settle(new EngineError('UNAVAILABLE', 'connection closed'));
    }
    this.ports[a]?.emit('peer:disconnect', this.peerIds[b]!);
    this.ports[b]?.emit('peer:disconnect', this.peerIds[a]!);
  }

  private delay(): number {
    const [min, max] = this.faults.delayMs;
    let ms = this.between(min, max);
    if (this.rng.float() < this.faults.reorder) ms += this.rng.int(Math.max(1, this.faults.reorderMs));
    return ms;
  }

  between(lo: number, hi: number): number {
    return lo + this.rng.int(Math.max(1, hi - lo + 1));
  }

  private after(ms: number, work: () => void): void {
    setTimeout(work, ms);
  }
}

/** OPTIMYSTIC_SIM_VERBOSE=1 traces every repo and tail request (for replaying a failing seed). */
const verbose = process.env.OPTIMYSTIC_SIM_VERBOSE === '1';

function describe(payload: unknown): string {
  const message = payload as {
    type?: string;
    trxId?: string;
    blockId?: string;
    atLsn?: number;
    collection?: string;
    reinforce?: { lsn: number }[];
    request?: { trxId?: string; outcome?: string };
  };
  const parts = [message.type ?? '?'];
  const trx = message.trxId ?? message.request?.trxId;
  if (trx !== undefined) parts.push(trx);
  if (message.request?.outcome !== undefined) parts.push(message.request.outcome);
  if (message.collection !== undefined) parts.push(message.collection);
  if (message.blockId !== undefined) parts.push(message.blockId.slice(0, 8));
  if (message.atLsn !== undefined) parts.push(`at ${message.atLsn}`);
  if (message.reinforce !== undefined)
    parts.push(`reinforce ${message.reinforce.map((ref) => ref.lsn).join(',')}`);
  // A log write or a repair: which revisions of which blocks, and from which transactions.
  const revisions = (payload as { revisions?: unknown }).revisions;
  if (Array.isArray(revisions))
    parts.push(
      revisions
        .map(
          (r: { blockId?: string; baseRev?: number; trxId?: string }) =>
            `${r.blockId?.slice(0, 8)}@${(r.baseRev ?? 0) + 1}:${r.trxId}`,
        )
        .join(','),
    );
  // A pend: which blocks, on which base revisions, for which transaction.
  const items = (payload as { items?: unknown }).items;
  if (Array.isArray(items))
    parts.push(
      items
        .map(
          (i: { blockId?: string; baseRev?: number; trxId?: string }) =>
            `${i.blockId?.slice(0, 8)}/base ${i.baseRev}:${i.trxId}`,
        )
        .join(','),
    );
  return parts.join(' ');
}

/** A short account of an answer (revision and LSN of a block, a view's LSNs). */
function describeReply(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'undefined';
  const v = value as {
    rev?: number;
    lsn?: number;
    stableLsn?: number;
    lastLsn?: number;
    uncheckpointed?: { lsn: number }[];
  };
  if (v.stableLsn !== undefined)
    return `view last ${v.lastLsn} stable ${v.stableLsn} uncheckpointed ${(v.uncheckpointed ?? []).map((u) => u.lsn).join(',')}`;
  if (v.rev !== undefined) return `rev ${v.rev} lsn ${v.lsn}`;
  // A tail's outcome (with a conflict's reason), a `get` answered with a revision number only.
  const status = value as { status?: unknown; message?: unknown; notNewer?: unknown };
  if (typeof status.status === 'string')
    return `${status.status}${typeof status.message === 'string' ? ` (${status.message})` : ''}${v.lsn !== undefined ? ` lsn ${v.lsn}` : ''}`;
  if (typeof status.notNewer === 'number') return `not newer than ${status.notNewer}`;
  const pend = value as { outcomes?: { status?: string; currentRev?: number }[] };
  if (Array.isArray(pend.outcomes))
    return `pend ${pend.outcomes.map((o) => `${o.status}${o.currentRev === undefined ? '' : `@${o.currentRev}`}`).join(',')}`;
  return Array.isArray(value) ? `[${value.length}]` : 'object';
}

/** What travels is JSON: the receiver gets a copy, never the sender's objects. */
function roundTrip(value: unknown): unknown {
  const text = JSON.stringify(value);
  if (text === undefined) throw new EngineError('BAD_INPUT', 'message cannot be encoded as JSON');
  if (text.length > limits.frameBytesMax)
    throw new EngineError('TOO_LARGE', `message of ${text.length} bytes is over the frame limit`);
  return JSON.parse(text) as unknown;
}

interface Served {
  readonly handler: RequestHandler<unknown>;
  readonly options: HandleOptions<unknown>;
}

/** One incarnation of a node on the simulated network. Once killed it sends and hears nothing. */
export class SimPort implements NetworkNode {
  readonly peerId: string;
  readonly network: string;
  private readonly handlers = new Map<string, Served>();
  private readonly listeners = new Map<NetworkEvent, Set<(peerId: string) => void>>();
  private dead = false;

  constructor(
    private readonly net: SimNetwork,
    readonly index: number,
  ) {
    this.peerId = net.peerIds[index]!;
    this.network = net.name;
  }

  kill(): void {
    this.dead = true;
    this.handlers.clear();
    this.listeners.clear();
  }

  served(protocol: string): Served | undefined {
    return this.dead ? undefined : this.handlers.get(protocol);
  }

  emit(event: NetworkEvent, peerId: string): void {
    if (this.dead) return;
    for (const listener of [...(this.listeners.get(event) ?? [])]) listener(peerId);
  }

  addresses(): string[] {
    return [];
  }

  /** The simulation has no addresses: nodes reach each other by index. */
  listenAddressesOf(): string[] | undefined {
    return undefined;
  }

  isNetworkNode(): boolean | undefined {
    return true; // the simulation has nodes only
  }

  peers(): PeerInfo[] {
    if (this.dead) return [];
    return this.net
      .connectedPeers(this.index)
      .map((j) => ({ id: this.net.peerIds[j]!, addresses: [], direction: 'outbound' as const }));
  }

  on(event: NetworkEvent, listener: (peerId: string) => void): () => void {
    let set = this.listeners.get(event);
    if (set === undefined) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  handle<Req>(name: string, handler: RequestHandler<Req>, options: HandleOptions<Req>): Promise<void> {
    if (!this.dead)
      this.handlers.set(name, {
        handler: handler as RequestHandler<unknown>,
        options: options,
      });
    return Promise.resolve();
  }

  unhandle(name: string): Promise<void> {
    this.handlers.delete(name);
    return Promise.resolve();
  }

  trust(): void {
    // Nothing is rate-limited in the simulation.
  }

  request<T = unknown>(
    peer: string,
    name: string,
    message: unknown,
    options: RequestOptions<T> = {},
  ): Promise<T> {
    // A dead process sends nothing and hears nothing back: its requests never settle.
    if (this.dead) return new Promise<T>(() => undefined);
    const to = this.net.indexOf(peer);
    return this.net
      .request(this, to, name, message, options.timeoutMs ?? limits.requestTimeoutMs)
      .then((value) => (options.validate === undefined ? (value as T) : options.validate(value)));
  }

  requestStream<T = unknown>(): AsyncGenerator<T, void, undefined> {
    throw new EngineError('INTERNAL', 'streamed requests are not simulated');
  }

  connect(): Promise<FoundPeer> {
    return Promise.reject(new EngineError('INTERNAL', 'dialling addresses is not simulated'));
  }

  disconnect(): Promise<void> {
    return Promise.resolve();
  }

  ping(): Promise<number> {
    return Promise.reject(new EngineError('INTERNAL', 'ping is not simulated'));
  }

  findPeer(): Promise<FoundPeer> {
    return Promise.reject(new EngineError('INTERNAL', 'peer routing is not simulated'));
  }

  closest(): Promise<string[]> {
    return Promise.reject(new EngineError('INTERNAL', 'the DHT is not simulated'));
  }

  routingTableSize(): number {
    return 0;
  }

  stats(): NetworkStats {
    return {
      inboundStreams: 0,
      idleInboundStreams: 0,
      bufferedBytes: 0,
      trackedPeers: 0,
      refused: 0,
      served: { replied: 0, errored: 0, reset: 0 },
      streamsOpened: 0,
      streamsReused: 0,
      idleStreams: 0,
    };
  }

  stop(): Promise<void> {
    this.kill();
    return Promise.resolve();
  }
}
