/**
 * Request and response on one stream. The requester writes one frame (the request, a `{ type }`
 * message) and closes its writing end; the responder answers with one of
 *
 *   { type: 'reply', value }                      a single value
 *   { type: 'item', value } … { type: 'end' }     a streamed reply (scans), one frame per item
 *   { type: 'error', code, message }              an EngineError code and message
 *
 * and closes. Every request has a deadline (for a streamed reply, a deadline per frame). A frame that
 * is malformed, truncated or oversized, a payload that is not JSON and a request of an unknown type
 * reset the stream: the sender is broken or hostile and gets no answer. A request of a known type
 * whose fields fail validation is answered with BAD_INPUT, so a well-meaning client learns why.
 */
import { EngineError, isErrorCode, toEngineError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import { type ByteBudget, type ByteChunk, decodeFramePayload, encodeFrame, readFrames } from './framing.js';
import { isUnknownTypeError, json, messageUnion, object, string, type Validator } from './schema.js';

/** What the request layer needs from a stream; libp2p streams satisfy it. */
export interface WireStream extends AsyncIterable<ByteChunk | Uint8Array> {
  readonly status: string;
  /** Unread bytes a stream may hold before it resets itself. */
  maxReadBufferLength: number;
  send(data: Uint8Array): boolean;
  onDrain(options?: { signal?: AbortSignal }): Promise<void>;
  /** Closes the writing end once queued data is sent. */
  close(options?: { signal?: AbortSignal }): Promise<void>;
  /** Resets the stream at once. */
  abort(error: Error): void;
  /** 'close' fires once the stream is closed both ways, or reset by either side. */
  addEventListener(type: 'close', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'close', listener: () => void): void;
}

/** A handler's answer that is a sequence of values (sent as item frames, then an end marker). */
export class StreamedReply {
  constructor(readonly items: AsyncIterable<unknown> | Iterable<unknown>) {}
}

/** Wraps a sequence so the handler's answer is streamed: one frame per item, then an end marker. */
export function streamReply(items: AsyncIterable<unknown> | Iterable<unknown>): StreamedReply {
  return new StreamedReply(items);
}

export interface RequestContext {
  /** The peer that sent the request. */
  readonly peerId: string;
  /** Aborted when the request times out or the stream goes away. */
  readonly signal: AbortSignal;
}

/** Answers one validated request: a JSON value, or `streamReply(…)`. Throw EngineError to answer with its code. */
export type RequestHandler<Req> = (request: Req, context: RequestContext) => Promise<unknown>;

export interface ServeOptions<Req> {
  validate: Validator<Req>;
  frameBytesMax?: number;
  timeoutMs?: number;
  /** Shared allowance for bytes of partly received requests. */
  budget?: ByteBudget;
}

/** How a served request ended, for counters and logs. */
export type ServeOutcome = 'replied' | 'errored' | 'reset';

const replyFrame = messageUnion({
  reply: object({ value: json() }),
  item: object({ value: json() }),
  end: object({}),
  error: object({ code: string({ charsMax: 64 }), message: string({ charsMax: 4096 }) }),
});

type ReplyFrame = ReturnType<typeof replyFrame>;

/** Serves one inbound stream: reads the request, runs the handler, writes the reply. Never throws. */
export async function serveRequest<Req>(
  stream: WireStream,
  peerId: string,
  handler: RequestHandler<Req>,
  options: ServeOptions<Req>,
): Promise<ServeOutcome> {
  const frameBytesMax = options.frameBytesMax ?? limits.frameBytesMax;
  const timeoutMs = options.timeoutMs ?? limits.requestTimeoutMs;
  const controller = new AbortController();
  const deadline = new Deadline(timeoutMs, () => {
    const error = new EngineError('TIMEOUT', `request not served within ${timeoutMs} ms`);
    controller.abort(error);
    stream.abort(error);
  });
  const signal = controller.signal;
  // A requester that resets the stream (or goes away) cancels the handler's work.
  const onClose = (): void => {
    if (!signal.aborted) controller.abort(new EngineError('UNAVAILABLE', 'requester closed the stream'));
  };
  stream.addEventListener('close', onClose, { once: true });
  stream.maxReadBufferLength = frameBytesMax;
  try {
    let message: unknown;
    try {
      const payload = await readOneFrame(stream, frameBytesMax, options.budget);
      // The requester has nothing more to say; anything it still sends is a violation.
      stream.maxReadBufferLength = 0;
      message = decodeFramePayload(payload, frameBytesMax);
    } catch (error) {
      stream.abort(toEngineError(error));
      return 'reset';
    }
    let request: Req;
    try {
      request = options.validate(message);
    } catch (error) {
      const engineError = toEngineError(error);
      if (isUnknownTypeError(engineError)) {
        stream.abort(engineError);
        return 'reset';
      }
      await writeFrame(stream, errorFrame(engineError), frameBytesMax, signal);
      await stream.close({ signal });
      return 'errored';
    }
    let result: unknown;
    try {
      result = await abortable(handler(request, { peerId, signal }), signal);
      if (result instanceof StreamedReply) {
        for await (const item of result.items) {
          await writeFrame(stream, { type: 'item', value: item }, frameBytesMax, signal);
          deadline.restart();
        }
        await writeFrame(stream, { type: 'end' }, frameBytesMax, signal);
      } else {
        await writeFrame(stream, { type: 'reply', value: result ?? null }, frameBytesMax, signal);
      }
    } catch (error) {
      if (signal.aborted || stream.status !== 'open') {
        stream.abort(toEngineError(error));
        return 'reset';
      }
      await writeFrame(stream, errorFrame(toEngineError(error)), frameBytesMax, signal);
      await stream.close({ signal });
      return 'errored';
    }
    await stream.close({ signal });
    return 'replied';
  } catch (error) {
    stream.abort(toEngineError(error));
    return 'reset';
  } finally {
    deadline.clear();
    stream.removeEventListener('close', onClose);
    if (!signal.aborted) controller.abort(new EngineError('UNAVAILABLE', 'request finished'));
  }
}

function errorFrame(error: EngineError): { type: 'error'; code: string; message: string } {
  // An unexpected failure is reported by code only: its message may describe our internals.
  const message = error.code === 'INTERNAL' ? 'internal error' : error.message.slice(0, 4096);
  return { type: 'error', code: error.code, message };
}

async function readOneFrame(
  stream: WireStream,
  frameBytesMax: number,
  budget: ByteBudget | undefined,
): Promise<Uint8Array> {
  const frames = readFrames(stream, budget === undefined ? { frameBytesMax } : { frameBytesMax, budget });
  try {
    const first = await frames.next();
    if (first.done === true) throw new EngineError('BAD_INPUT', 'stream closed before a request frame');
    return first.value;
  } finally {
    await frames.return(undefined);
  }
}

/** Writes one frame, waiting for the stream to drain when its buffer is full. */
export async function writeFrame(
  stream: WireStream,
  value: unknown,
  frameBytesMax: number,
  signal?: AbortSignal,
): Promise<void> {
  let bytes: Uint8Array;
  try {
    bytes = encodeFrame(value, frameBytesMax);
  } catch (error) {
    const engineError = toEngineError(error);
    // A reply too large to send is answered with its code instead, so the requester is not left waiting.
    if (typeof value === 'object' && value !== null && (value as { type?: unknown }).type !== 'error') {
      bytes = encodeFrame(errorFrame(engineError), frameBytesMax);
    } else throw engineError;
  }
  if (!stream.send(bytes)) await stream.onDrain(signal === undefined ? {} : { signal });
}

export interface RequestOptions<T> {
  /** Deadline of the whole request, or of each frame of a streamed reply (default limits.requestTimeoutMs). */
  timeoutMs?: number;
  frameBytesMax?: number;
  /** Checks the reply value (or each streamed item); BAD_INPUT when it does not match. */
  validate?: Validator<T>;
  signal?: AbortSignal;
}

/** Opens a stream to the peer; errors should already be EngineErrors (UNAVAILABLE, TIMEOUT, …). */
export type OpenStream = (signal: AbortSignal) => Promise<WireStream>;

/** Sends one request and returns the single reply value; a streamed reply is a protocol error. */
export async function sendRequest<T = unknown>(
  open: OpenStream,
  message: unknown,
  options: RequestOptions<T> = {},
): Promise<T> {
  for await (const frame of exchange(open, message, options)) {
    if (frame.type !== 'reply')
      throw new EngineError('BAD_INPUT', `expected a single reply, got ${frame.type}`);
    return check(options.validate, frame.value);
  }
  throw new EngineError('UNAVAILABLE', 'stream ended without a reply');
}

/** Sends one request and yields the items of its streamed reply (a single reply yields one item). */
export async function* sendStreamRequest<T = unknown>(
  open: OpenStream,
  message: unknown,
  options: RequestOptions<T> = {},
): AsyncGenerator<T, void, undefined> {
  for await (const frame of exchange(open, message, options)) {
    if (frame.type === 'end') return;
    yield check(options.validate, frame.value);
    if (frame.type === 'reply') return;
  }
  throw new EngineError('UNAVAILABLE', 'stream ended before the end of the reply');
}

function check<T>(validate: Validator<T> | undefined, value: unknown): T {
  if (validate === undefined) return value as T;
  try {
    return validate(value);
  } catch (error) {
    const engineError = toEngineError(error);
    throw new EngineError('BAD_INPUT', `reply does not match its schema: ${engineError.message}`, {
      remote: true,
    });
  }
}

type DataFrame = Exclude<ReplyFrame, { type: 'error' }>;

/** Yields the reply frames of one request (errors thrown), ending after 'reply' or 'end'. */
async function* exchange(
  open: OpenStream,
  message: unknown,
  options: RequestOptions<unknown>,
): AsyncGenerator<DataFrame, void, undefined> {
  const frameBytesMax = options.frameBytesMax ?? limits.frameBytesMax;
  const timeoutMs = options.timeoutMs ?? limits.requestTimeoutMs;
  const request = encodeFrame(message, frameBytesMax);
  const controller = new AbortController();
  let stream: WireStream | undefined;
  const timeout = new EngineError('TIMEOUT', `no reply within ${timeoutMs} ms`);
  const deadline = new Deadline(timeoutMs, () => {
    controller.abort(timeout);
    stream?.abort(timeout);
  });
  const outer = options.signal;
  const onOuterAbort = (): void => {
    const error = new EngineError('INTERRUPTED', 'request cancelled');
    controller.abort(error);
    stream?.abort(error);
  };
  outer?.addEventListener('abort', onOuterAbort, { once: true });
  let finished = false;
  try {
    if (outer?.aborted === true) onOuterAbort();
    controller.signal.throwIfAborted();
    stream = await open(controller.signal);
    controller.signal.throwIfAborted();
    stream.maxReadBufferLength = frameBytesMax;
    if (!stream.send(request)) await stream.onDrain({ signal: controller.signal });
    await stream.close({ signal: controller.signal });
    for await (const payload of readFrames(stream, { frameBytesMax })) {
      const frame = replyFrame(decodeFramePayload(payload, frameBytesMax));
      if (frame.type === 'error') {
        const code = isErrorCode(frame.code) ? frame.code : 'INTERNAL';
        throw new EngineError(code, frame.message, { remote: true });
      }
      if (frame.type === 'reply' || frame.type === 'end') finished = true;
      yield frame;
      if (finished) return;
      deadline.restart();
    }
    throw new EngineError('UNAVAILABLE', 'stream closed before the reply ended');
  } catch (error) {
    if (controller.signal.aborted && controller.signal.reason instanceof EngineError)
      throw controller.signal.reason;
    const engineError = toEngineError(error);
    // A stream the responder reset reaches us as a stream failure; say so without its internals.
    if (engineError.code === 'INTERNAL' && engineError.details?.['remote'] !== true)
      throw new EngineError('UNAVAILABLE', engineError.message, undefined, { cause: error });
    throw engineError;
  } finally {
    deadline.clear();
    outer?.removeEventListener('abort', onOuterAbort);
    // Stopped early (consumer broke off, error): reset so the responder stops producing.
    if (!finished && stream !== undefined && stream.status === 'open')
      stream.abort(new EngineError('INTERRUPTED', 'request abandoned'));
  }
}

/** A restartable one-shot timer. */
class Deadline {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ms: number,
    private readonly onExpiry: () => void,
  ) {
    this.restart();
  }

  restart(): void {
    this.clear();
    this.timer = setTimeout(this.onExpiry, this.ms);
  }

  clear(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** Resolves like `promise`, or rejects with the signal's reason once it aborts. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
