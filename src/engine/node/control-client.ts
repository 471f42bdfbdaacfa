/**
 * The client side of the control socket: one connection, many requests in flight, streams with
 * flow control (the socket is paused while a stream's consumer lags, so memory stays bounded).
 */
import { connect, type Socket } from 'node:net';
import { EngineError, isErrorCode } from '../base/errors.js';
import { LineSplitter, type RequestId } from './control-protocol.js';

/** How a RemoteNode talks to a node: the control socket, or a libp2p light-client session. */
export interface ApiTransport {
  call(method: string, params: unknown): Promise<unknown>;
  stream(method: string, params: unknown): AsyncGenerator<unknown, void, undefined>;
  close(): Promise<void>;
}

/** Items a stream buffers before the socket is paused; it resumes when the consumer has taken half. */
const streamBufferedItemsMax = 256;
/** A node that accepts the connection but never answers the first request is broken; say so. */
export const controlConnectTimeoutMs = 5_000;

type Pending = { resolve: (value: unknown) => void; reject: (error: Error) => void };

interface StreamState {
  readonly items: unknown[];
  done: boolean;
  error: Error | undefined;
  wake: (() => void) | undefined;
}

export class ControlClient implements ApiTransport {
  private readonly calls = new Map<RequestId, Pending>();
  private readonly streams = new Map<RequestId, StreamState>();
  private readonly splitter = new LineSplitter();
  private nextId = 1;
  private failure: Error | undefined;
  private paused = false;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error) => this.fail(unavailable(error)));
    socket.on('close', () =>
      this.fail(new EngineError('UNAVAILABLE', 'the node closed the control connection (did it stop?)')),
    );
  }

  /** Connects to a control socket; ENOENT / ECONNREFUSED come back as UNAVAILABLE with `details.refused`. */
  static connect(path: string, timeoutMs: number = controlConnectTimeoutMs): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(path);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(
          new EngineError(
            'TIMEOUT',
            `the node's control socket ${path} did not accept within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new ControlClient(socket));
      });
      socket.once('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const refused = error.code === 'ENOENT' || error.code === 'ECONNREFUSED';
        reject(
          new EngineError(
            'UNAVAILABLE',
            `cannot reach the node's control socket ${path} (${error.code ?? error.message})`,
            {
              refused,
            },
          ),
        );
      });
    });
  }

  call(method: string, params: unknown): Promise<unknown> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      this.send({ id, method, params });
    });
  }

  async *stream(method: string, params: unknown): AsyncGenerator<unknown, void, undefined> {
    if (this.failure !== undefined) throw this.failure;
    const id = this.nextId++;
    const state: StreamState = { items: [], done: false, error: undefined, wake: undefined };
    this.streams.set(id, state);
    this.send({ id, method, params });
    let finished = false;
    try {
      for (;;) {
        if (state.items.length > 0) {
          const item = state.items.shift();
          if (this.paused && state.items.length <= streamBufferedItemsMax / 2) this.resume();
          yield item;
          continue;
        }
        if (state.error !== undefined) throw state.error;
        if (state.done) {
          finished = true;
          return;
        }
        await new Promise<void>((resolve) => (state.wake = resolve));
        state.wake = undefined;
      }
    } finally {
      this.streams.delete(id);
      if (this.paused) this.resume();
      // The consumer stopped early: tell the node to stop producing.
      if (!finished && state.error === undefined && this.failure === undefined)
        this.send({ id: this.nextId++, method: 'cancel', params: { id } });
    }
  }

  async close(): Promise<void> {
    if (this.socket.destroyed) return;
    await new Promise<void>((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 1000).unref();
    });
  }

  private send(request: { id: RequestId; method: string; params: unknown }): void {
    this.socket.write(`${JSON.stringify(request)}\n`);
  }

  private onData(chunk: Buffer): void {
    for (const piece of this.splitter.push(chunk)) {
      if ('tooLarge' in piece) {
        this.fail(new EngineError('TOO_LARGE', 'the node sent a control reply over the size limit'));
        this.socket.destroy();
        return;
      }
      let frame: Record<string, unknown>;
      try {
        frame = JSON.parse(piece.line) as Record<string, unknown>;
      } catch {
        this.fail(new EngineError('CORRUPT', 'the node sent a control reply that is not JSON'));
        this.socket.destroy();
        return;
      }
      this.onFrame(frame);
    }
  }

  private onFrame(frame: Record<string, unknown>): void {
    const id = frame['id'] as RequestId | null;
    const error = frame['error'] as { code?: unknown; message?: unknown } | undefined;
    const failure =
      error === undefined
        ? undefined
        : new EngineError(
            isErrorCode(error.code) ? error.code : 'INTERNAL',
            typeof error.message === 'string' ? error.message : 'the node reported an error',
            { remote: true },
          );
    if (id === null || id === undefined) {
      // A failure about a line the node could not read: nothing to match it to but everything.
      if (failure !== undefined) this.fail(failure);
      return;
    }
    const call = this.calls.get(id);
    if (call !== undefined) {
      this.calls.delete(id);
      if (failure !== undefined) call.reject(failure);
      else call.resolve(frame['result']);
      return;
    }
    const stream = this.streams.get(id);
    if (stream === undefined) return;
    if (failure !== undefined) stream.error = failure;
    else if (frame['end'] === true) stream.done = true;
    else if ('item' in frame) stream.items.push(frame['item']);
    else if ('result' in frame) {
      stream.items.push(frame['result']);
      stream.done = true;
    }
    if (stream.items.length >= streamBufferedItemsMax && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
    stream.wake?.();
  }

  private resume(): void {
    this.paused = false;
    this.socket.resume();
  }

  private fail(error: Error): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    // A call in flight was sent: the node may have done it (`details.inFlight`; a transaction's
    // outcome is then unknown). One refused because the connection had failed already was not.
    const inFlight =
      error instanceof EngineError
        ? new EngineError(error.code, error.message, { ...error.details, inFlight: true }, { cause: error })
        : error;
    for (const call of this.calls.values()) call.reject(inFlight);
    this.calls.clear();
    for (const stream of this.streams.values()) {
      if (!stream.done) stream.error ??= error;
      stream.wake?.();
    }
  }
}

function unavailable(error: Error): EngineError {
  return new EngineError('UNAVAILABLE', `control connection failed: ${error.message}`, undefined, {
    cause: error,
  });
}
