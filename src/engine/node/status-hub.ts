/**
 * Where a node's status and events meet their watchers: the in-process dashboard (StatusSource),
 * NDJSON logging, and remote watchers through `node.watch`. A RemoteStatusSource fills a hub from a
 * remote node's watch stream, so `node dashboard` draws exactly what `node start` draws.
 */
import type { NodeControl, StatusUpdate } from './node-api.js';
import type { NodeEvent, NodeStatus, StatusSource } from './status.js';

/** Events kept for late subscribers and `node.watch`: a screenful and then some. */
export const recentEventsMax = 200;
/** Updates a slow remote watcher may have queued before older status updates are dropped (events are kept). */
const watchQueueMax = 64;

type Listener = (status: NodeStatus, newEvents: readonly NodeEvent[]) => void;

export class StatusHub implements StatusSource {
  private status: NodeStatus | undefined;
  private readonly events: NodeEvent[] = [];
  private readonly listeners = new Set<Listener>();

  current(): NodeStatus | undefined {
    return this.status;
  }

  recentEvents(): readonly NodeEvent[] {
    return this.events.slice();
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** A new status (with the events that came with it, if any). */
  publish(status: NodeStatus, newEvents: readonly NodeEvent[] = []): void {
    this.status = status;
    for (const event of newEvents) this.remember(event);
    this.notify(status, newEvents);
  }

  /** An event; watchers get it at once with the last status. */
  event(event: NodeEvent): void {
    this.remember(event);
    if (this.status !== undefined) this.notify(this.status, [event]);
  }

  private remember(event: NodeEvent): void {
    this.events.push(event);
    if (this.events.length > recentEventsMax) this.events.splice(0, this.events.length - recentEventsMax);
  }

  private notify(status: NodeStatus, newEvents: readonly NodeEvent[]): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(status, newEvents);
      } catch {
        // A watcher's failure is its own; the node keeps going.
      }
    }
  }

  /**
   * The current status and recent events, then every update, until the consumer stops or `signal`
   * aborts. A consumer that lags loses intermediate statuses, never events.
   */
  async *watch(signal?: AbortSignal): AsyncGenerator<StatusUpdate, void, undefined> {
    const queue: StatusUpdate[] = [];
    let wake: (() => void) | undefined;
    const unsubscribe = this.subscribe((status, newEvents) => {
      queue.push({ status, events: newEvents.slice() });
      if (queue.length > watchQueueMax) {
        const [first, second] = queue.splice(0, 2);
        queue.unshift({ status: second!.status, events: [...first!.events, ...second!.events] });
      }
      wake?.();
    });
    const onAbort = (): void => wake?.();
    signal?.addEventListener('abort', onAbort);
    try {
      if (this.status !== undefined) yield { status: this.status, events: this.recentEvents() };
      while (signal?.aborted !== true) {
        const next = queue.shift();
        if (next !== undefined) {
          yield next;
          continue;
        }
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    } finally {
      unsubscribe();
      signal?.removeEventListener('abort', onAbort);
    }
  }
}

/**
 * A StatusSource fed by a remote node's watch stream (`node dashboard`). `closed` settles when the
 * stream ends: the node stopped, or the connection broke (rejects with the reason).
 */
export class RemoteStatusSource implements StatusSource {
  private readonly hub = new StatusHub();
  readonly closed: Promise<void>;
  private iterator: AsyncIterator<StatusUpdate> | undefined;

  constructor(node: Pick<NodeControl, 'watch'>) {
    this.closed = this.pump(node);
  }

  private async pump(node: Pick<NodeControl, 'watch'>): Promise<void> {
    this.iterator = node.watch()[Symbol.asyncIterator]();
    for (;;) {
      const next = await this.iterator.next();
      if (next.done === true) return;
      this.hub.publish(next.value.status, next.value.events);
    }
  }

  /** The first status, once it arrives (rejects if the stream ends first). */
  async ready(): Promise<NodeStatus> {
    const current = this.hub.current();
    if (current !== undefined) return current;
    return new Promise<NodeStatus>((resolve, reject) => {
      const unsubscribe = this.hub.subscribe((status) => {
        unsubscribe();
        resolve(status);
      });
      this.closed.then(
        () => reject(new Error('the node stopped before sending its status')),
        (error: unknown) => reject(error instanceof Error ? error : new Error(String(error))),
      );
    });
  }

  current(): NodeStatus | undefined {
    return this.hub.current();
  }

  recentEvents(): readonly NodeEvent[] {
    return this.hub.recentEvents();
  }

  subscribe(listener: Listener): () => void {
    return this.hub.subscribe(listener);
  }

  /** Stops watching. */
  async stop(): Promise<void> {
    await this.iterator?.return?.();
  }
}
