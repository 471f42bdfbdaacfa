/**
 * The server side of the control socket (see control-protocol.ts). It owns the socket file (mode
 * 0600), bounds connections, in-flight requests and line sizes, answers every bad line with a
 * failure frame, writes streams with back-pressure, and on close cancels streams, lets in-flight
 * requests finish for a bounded time and drops the connections.
 */
import { chmod, unlink } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { EngineError } from '../base/errors.js';
import type { ApiAnswer } from './api.js';
import {
  errorFrame,
  frameLine,
  LineSplitter,
  parseRequestLine,
  RequestLineError,
  type ControlFrame,
  type ControlRequest,
  type RequestId,
} from './control-protocol.js';

/** Answers one request; throws EngineError to answer with its code. */
export type ControlHandler = (method: string, params: unknown) => Promise<ApiAnswer>;

export interface ControlServerInit {
  /** Connections held at once: a few CLI commands and dashboards; more is a runaway script. */
  readonly connectionsMax?: number;
  /** Requests in flight on one connection (`tx --concurrency` tops out at 256). */
  readonly inFlightPerConnectionMax?: number;
  /** How long close() lets in-flight requests finish before dropping them. */
  readonly drainMs?: number;
  readonly lineBytesMax?: number;
}

const defaults = {
  connectionsMax: 64,
  inFlightPerConnectionMax: 512,
  drainMs: 10_000,
} as const;

export class ControlServer {
  private readonly connections = new Set<Connection>();
  private closing = false;

  private constructor(
    private readonly server: Server,
    readonly path: string,
    private readonly init: ControlServerInit,
  ) {}

  /** Listens on `path` (replacing a stale socket file) with mode 0600. */
  static async listen(
    path: string,
    handler: ControlHandler,
    init: ControlServerInit = {},
  ): Promise<ControlServer> {
    await unlink(path).catch(() => undefined);
    const server = createServer({ allowHalfOpen: false });
    const control = new ControlServer(server, path, init);
    server.on('connection', (socket) => control.accept(socket, handler));
    // The socket file is created by bind, inside listen(): with this umask nobody else can ever open it.
    const previousMask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(path, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      throw new EngineError(
        'UNAVAILABLE',
        `cannot listen on control socket ${path}: ${(error as Error).message}`,
        undefined,
        { cause: error },
      );
    } finally {
      process.umask(previousMask);
    }
    await chmod(path, 0o600);
    server.on('error', () => undefined);
    return control;
  }

  private accept(socket: Socket, handler: ControlHandler): void {
    const connectionsMax = this.init.connectionsMax ?? defaults.connectionsMax;
    if (this.closing || this.connections.size >= connectionsMax) {
      const reason = this.closing
        ? 'the node is stopping'
        : `the node already serves ${connectionsMax} control connections`;
      socket.end(frameLine(errorFrame(null, new EngineError('UNAVAILABLE', reason))));
      return;
    }
    const connection = new Connection(socket, handler, this.init);
    this.connections.add(connection);
    socket.once('close', () => this.connections.delete(connection));
  }

  /** Connections open now (tests, status). */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** Stops accepting, cancels streams, lets requests finish (bounded), closes every connection. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const drainMs = this.init.drainMs ?? defaults.drainMs;
    await Promise.all([...this.connections].map((connection) => connection.drain(drainMs)));
    await closed;
    await unlink(this.path).catch(() => undefined);
  }
}

/** A request being served: cancelled by a cancel request, a disconnect or a stop; `done` when finished. */
class InFlight {
  cancelled = false;
  readonly done: Promise<void>;
  readonly whenCancelled: Promise<undefined>;
  finish!: () => void;
  private onCancel!: (value: undefined) => void;

  constructor() {
    this.done = new Promise<void>((resolve) => (this.finish = resolve));
    this.whenCancelled = new Promise<undefined>((resolve) => (this.onCancel = resolve));
  }

  cancel(): void {
    this.cancelled = true;
    this.onCancel(undefined);
  }
}

class Connection {
  private readonly splitter: LineSplitter;
  private readonly inFlight = new Map<RequestId, InFlight>();
  private stopping = false;

  constructor(
    private readonly socket: Socket,
    private readonly handler: ControlHandler,
    private readonly init: ControlServerInit,
  ) {
    this.splitter = new LineSplitter(init.lineBytesMax);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => undefined);
    // The peer went away: stop producing for it.
    socket.once('close', () => {
      for (const request of this.inFlight.values()) request.cancel();
    });
  }

  private onData(chunk: Buffer): void {
    for (const piece of this.splitter.push(chunk)) {
      if ('tooLarge' in piece) {
        this.send(
          errorFrame(null, new EngineError('TOO_LARGE', 'control request line is over the size limit')),
        );
        continue;
      }
      let request: ControlRequest;
      try {
        request = parseRequestLine(piece.line);
      } catch (error) {
        const failure =
          error instanceof RequestLineError ? error : new RequestLineError(null, error as EngineError);
        this.send(errorFrame(failure.id, failure.error));
        continue;
      }
      this.start(request);
    }
  }

  private start(request: ControlRequest): void {
    const { id } = request;
    if (request.method === 'cancel') {
      const target = (request.params as { id?: unknown } | null)?.id;
      const running =
        typeof target === 'number' || typeof target === 'string' ? this.inFlight.get(target) : undefined;
      running?.cancel();
      this.send({ id, result: running !== undefined });
      return;
    }
    if (this.stopping) {
      this.send(errorFrame(id, new EngineError('UNAVAILABLE', 'the node is stopping')));
      return;
    }
    if (this.inFlight.has(id)) {
      this.send(
        errorFrame(id, new EngineError('BAD_INPUT', `request id ${JSON.stringify(id)} is already in flight`)),
      );
      return;
    }
    const inFlightMax = this.init.inFlightPerConnectionMax ?? defaults.inFlightPerConnectionMax;
    if (this.inFlight.size >= inFlightMax) {
      this.send(
        errorFrame(
          id,
          new EngineError('UNAVAILABLE', `more than ${inFlightMax} requests in flight on one connection`),
        ),
      );
      return;
    }
    // Registered before serving starts: a handler may begin a stop that drains this very connection.
    const state = new InFlight();
    this.inFlight.set(id, state);
    void this.serve(request, state).finally(() => {
      this.inFlight.delete(id);
      state.finish();
    });
  }

  private async serve(request: ControlRequest, state: InFlight): Promise<void> {
    const { id } = request;
    try {
      const answer = await this.handler(request.method, request.params);
      if (answer.kind === 'value') {
        await this.write({ id, result: answer.value ?? null });
        return;
      }
      const iterator = answer.items[Symbol.asyncIterator]();
      try {
        while (!state.cancelled && !this.socket.destroyed) {
          // A stream waiting for its next item (a quiet watch) still ends at once on cancel.
          const next = await Promise.race([iterator.next(), state.whenCancelled]);
          if (next === undefined || next.done === true || state.cancelled) break;
          await this.write({ id, item: next.value });
        }
      } finally {
        // Stops a generator that was cut short (cancel, disconnect, stop). Not awaited: one still
        // waiting for an item finishes its cleanup when that wait ends.
        void iterator.return?.()?.catch(() => undefined);
      }
      await this.write({ id, end: true });
    } catch (error) {
      await this.write(errorFrame(id, error));
    }
  }

  private send(frame: ControlFrame): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(frameLine(frame));
  }

  /** Writes a frame, waiting while the socket's buffer is full (a slow reader slows its own stream). */
  private async write(frame: ControlFrame): Promise<void> {
    if (this.socket.destroyed || !this.socket.writable) return;
    let line: string;
    try {
      line = frameLine(frame);
    } catch (error) {
      line = frameLine(errorFrame('id' in frame ? frame.id : null, error));
    }
    if (this.socket.write(line)) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  /** Cancels streams, waits up to `ms` for in-flight requests, then closes. */
  async drain(ms: number): Promise<void> {
    this.stopping = true;
    for (const request of this.inFlight.values()) request.cancel();
    const all = Promise.all([...this.inFlight.values()].map((request) => request.done));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
    clearTimeout(timer);
    await new Promise<void>((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.once('close', () => resolve());
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 1000).unref();
    });
  }
}
