/**
 * Request and response on reused streams. A requester writes one frame (the request, a `{ type }`
 * message); the responder answers with one of
 *
 *   { type: 'reply', value }                      a single value
 *   { type: 'item', value } … { type: 'end' }     a streamed reply (scans), one frame per item
 *   { type: 'error', code, message }              an EngineError code and message
 *
 * and then waits for the next request on the same stream, until the requester closes its writing end
 * (the responder closes too) or the stream sits idle for `idleTimeoutMs` (the responder closes its
 * writing end and ignores whatever still arrives). A requester that closes its writing end right
 * after its request (one request per stream) is served exactly once.
 *
 * Why reuse, and why a pool rather than request ids multiplexed on one stream: opening a stream costs
 * a yamux stream plus a multistream-select negotiation, several times the cost of the exchange itself
 * on a fast link, and the cluster's commit path is a chain of sequential requests. A pool of idle
 * streams per (peer, protocol) removes that cost and keeps every per-stream guarantee as it was: one
 * request is in flight per stream, so a deadline, a cancellation, a malformed frame or a refusal still
 * resets exactly the one exchange it concerns (multiplexing would need cancel frames and per-request
 * flow control, and a reset would take every request on the stream down with it), and the per-peer
 * stream limits keep bounding concurrent work. The rules that make reuse safe:
 *
 * - A stream is reused only after an exchange that ended cleanly: the final frame (reply, end or a
 *   remote error) was read and nothing followed it. A stream whose exchange failed, timed out, was
 *   cancelled or abandoned is reset, never pooled.
 * - Strictly one exchange at a time, both ways: bytes from the requester while its request is handled,
 *   or from the responder on an idle stream, reset the stream.
 * - The responder never ends a stream cleanly without answering a request it read: it closes only
 *   while idle, and drops requests that cross its close. So a reused stream that ends cleanly before
 *   any reply byte did not serve the request, and the requester sends it again, once, on a new stream.
 *   A reset is not retried (the request may have been served).
 *
 * Every request has a deadline (for a streamed reply, a deadline per frame); on a reused stream the
 * responder's deadline starts at the request's first byte. A frame that is malformed, truncated or
 * oversized, a payload that is not JSON and a request of an unknown type reset the stream: the sender
 * is broken or hostile and gets no answer. A request of a known type whose fields fail validation is
 * answered with BAD_INPUT, so a well-meaning client learns why.
 *
 * Batches. Single requests to one peer on one protocol made in the same event-loop turn are sent
 * together (request-batcher.ts): one `{ type: '$batch', items: [request, …] }` frame on one stream,
 * at most `limits.requestBatchItemsMax` items and one frame's bytes; a request alone in its turn goes
 * exactly as above, at the end of the turn, and nothing waits on a timer. The responder validates
 * every item, then runs their handlers at once and answers with `{ type: 'replies', items: [{ i,
 * type: 'reply', value } | { i, type: 'error', code, message }, …] }` frames as handlers finish (what
 * finishes in the same turn shares a frame); the exchange ends cleanly when every item is answered.
 * Everything above holds for a batch as one exchange, with these differences for its items:
 *
 * - An item whose fields fail validation is answered with BAD_INPUT, and only that item; an item of
 *   an unknown type (or a batch frame that is not a list of 2 to requestBatchItemsMax requests)
 *   resets the stream before any handler runs, and every item fails.
 * - Every item takes a token from the per-peer request rate (the frame's first one, as any request;
 *   `admitNext` for each further item); a batch over the rate resets the stream, unserved.
 * - Streamed replies (`sendStreamRequest`, scans) are never batched; a handler that answers a batched
 *   item with a streamed reply answers it with BAD_INPUT.
 * - An item's deadline or cancellation ends its caller's wait only: the others go on, and the
 *   responder may still serve it (its work is not cancelled). Once no caller waits for the rest, the
 *   stream is reset. The responder's deadline is the batch's, from its first byte.
 * - A reset fails every item still waiting and is never retried; a reused stream that ends cleanly
 *   before any reply byte is sent again, once, on a new stream, as for a single request.
 * - An item's reply must fit a `replies` frame: one within a few dozen bytes of the frame limit is
 *   answered with TOO_LARGE in a batch where it would have fit alone.
 */
import { EngineError, isErrorCode, toEngineError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import {
  type ByteBudget,
  type ByteChunk,
  decodeFramePayload,
  encodeFrame,
  encodeTextFrame,
  FrameReader,
  jsonText,
} from './framing.js';
import {
  array,
  integer,
  isUnknownTypeError,
  json,
  messageUnion,
  object,
  string,
  type Validator,
} from './schema.js';

/** What the request layer needs from a stream; libp2p streams satisfy it. */

/**
 * Abort reasons for work that simply finished: shared, since nobody reads their stack and making an
 * Error per request costs more than the rest of serving a small one.
 */
const requestFinished = new EngineError('UNAVAILABLE', 'request finished');
const streamFinished = new EngineError('UNAVAILABLE', 'stream finished');

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

/** How long a responder keeps an idle stream open by default; longer than requesters pool one. */
export const serveIdleTimeoutMs = 30_000;

export interface ServeStreamOptions<Req> extends ServeOptions<Req> {
  /** How long the stream may sit idle between requests before the responder closes it. */
  idleTimeoutMs?: number;
  /** Asked before each request after the first on the stream (rate limits); false resets the stream. */
  admitNext?: () => boolean;
  /** Told how each request ended. */
  onOutcome?: (outcome: ServeOutcome) => void;
  /** Told when the stream starts carrying a request (true) and when it is idle or gone again (false). */
  onBusy?: (busy: boolean) => void;
  /**
   * Aborted when the handler is replaced or withdrawn: the stream is closed as if idle, at once when
   * it is idle, else once the request under way is answered (requesters go on on a new stream).
   */
  retire?: AbortSignal;
}

const replyFrame = messageUnion({
  reply: object({ value: json() }),
  item: object({ value: json() }),
  end: object({}),
  error: object({ code: string({ charsMax: 64 }), message: string({ charsMax: 4096 }) }),
});

type ReplyFrame = ReturnType<typeof replyFrame>;

/**
 * Serves one inbound stream: one request after another until the requester closes it, it idles out
 * or something resets it. Never throws.
 */
export async function serveStream<Req>(
  stream: WireStream,
  peerId: string,
  handler: RequestHandler<Req>,
  options: ServeStreamOptions<Req>,
): Promise<void> {
  const frameBytesMax = options.frameBytesMax ?? limits.frameBytesMax;
  const timeoutMs = options.timeoutMs ?? limits.requestTimeoutMs;
  const idleTimeoutMs = options.idleTimeoutMs ?? serveIdleTimeoutMs;
  stream.maxReadBufferLength = frameBytesMax;
  const reader = new FrameReader(
    stream,
    options.budget === undefined ? { frameBytesMax } : { frameBytesMax, budget: options.budget },
  );
  reader.inExchange = true;
  const deadline = new Deadline();
  let controller = new Cancellation();
  // A requester that resets the stream (or goes away) cancels the handler's work.
  const onClose = (): void => {
    if (!controller.aborted) controller.abort(new EngineError('UNAVAILABLE', 'requester closed the stream'));
  };
  stream.addEventListener('close', onClose, { once: true });
  const report = (outcome: ServeOutcome): void => options.onOutcome?.(outcome);
  let busy = false;
  const setBusy = (now: boolean): void => {
    if (busy === now) return;
    busy = now;
    options.onBusy?.(now);
  };
  let served = 0;
  let idleWait: (() => void) | undefined;
  const onRetire = (): void => idleWait?.();
  options.retire?.addEventListener('abort', onRetire, { once: true });
  try {
    for (;;) {
      if (options.retire?.aborted === true && served > 0) {
        setBusy(false);
        reader.discard();
        await closeQuietly(stream, timeoutMs);
        return;
      }
      const request = (controller = new Cancellation());
      const expire = (): void => {
        const error = new EngineError('TIMEOUT', `request not served within ${timeoutMs} ms`);
        request.abort(error);
        stream.abort(error);
      };
      let idled = false;
      let started = served === 0 || reader.buffered > 0;
      setBusy(started);
      if (started) deadline.set(timeoutMs, expire);
      else {
        idleWait = () => {
          idled = true;
          reader.discard();
        };
        deadline.set(idleTimeoutMs, idleWait);
        reader.onBytes = () => {
          reader.onBytes = undefined;
          idleWait = undefined;
          started = true;
          setBusy(true);
          deadline.set(timeoutMs, expire);
        };
      }
      let payload: Uint8Array | undefined;
      try {
        payload = await reader.next();
      } catch (error) {
        stream.abort(toEngineError(error));
        // A stream reset while idle is no request's outcome.
        if (started) report('reset');
        return;
      } finally {
        reader.onBytes = undefined;
        idleWait = undefined;
      }
      if (payload === undefined) {
        deadline.clear();
        if (idled) await closeQuietly(stream, timeoutMs);
        else if (served === 0) {
          stream.abort(new EngineError('BAD_INPUT', 'stream closed before a request frame'));
          report('reset');
        } else await closeQuietly(stream, timeoutMs);
        return;
      }
      try {
        // The requester has nothing more to say until it has its answer.
        reader.expect(false);
      } catch {
        report('reset');
        return;
      }
      if (served > 0 && options.admitNext?.() === false) {
        stream.abort(new EngineError('UNAVAILABLE', 'request refused (rate)'));
        return;
      }
      let outcomes: ServeOutcome | readonly ServeOutcome[];
      try {
        outcomes = await serveOne(stream, reader, payload, peerId, handler, options, {
          frameBytesMax,
          cancellation: request,
          deadline,
        });
      } catch (error) {
        stream.abort(toEngineError(error));
        outcomes = 'reset';
      }
      deadline.clear();
      if (!request.aborted) request.abort(requestFinished);
      if (typeof outcomes === 'string') outcomes = [outcomes];
      for (const outcome of outcomes) report(outcome);
      if (outcomes.includes('reset')) return;
      served += 1;
    }
  } catch (error) {
    stream.abort(toEngineError(error));
  } finally {
    deadline.clear();
    options.retire?.removeEventListener('abort', onRetire);
    stream.removeEventListener('close', onClose);
    if (!controller.aborted) controller.abort(streamFinished);
    reader.dispose();
    setBusy(false);
  }
}

interface ServeContext {
  frameBytesMax: number;
  /** The request's (or batch's): aborted when it times out or the stream goes away. */
  cancellation: Cancellation;
  deadline: Deadline;
}

/**
 * Serves one request's payload: validate, handle, answer; a batch's items each have their outcome.
 * Throws only when the stream failed.
 */
async function serveOne<Req>(
  stream: WireStream,
  reader: FrameReader,
  payload: Uint8Array,
  peerId: string,
  handler: RequestHandler<Req>,
  options: ServeStreamOptions<Req>,
  context: ServeContext,
): Promise<ServeOutcome | readonly ServeOutcome[]> {
  const { frameBytesMax, cancellation, deadline } = context;
  /** The last frame of an answer: from here on the next request may come. */
  const final = async (frame: unknown): Promise<void> => {
    const bytes = frameBytes(frame, frameBytesMax);
    reader.expect(true);
    await sendBytes(stream, bytes, cancellation);
  };
  let message: unknown;
  try {
    // A batch nests its items two levels down; they get the depth they would have alone.
    const depthMax = isBatchPayload(payload) ? limits.jsonDepthMax + 2 : limits.jsonDepthMax;
    message = decodeFramePayload(payload, frameBytesMax, depthMax);
  } catch (error) {
    stream.abort(toEngineError(error));
    return 'reset';
  }
  if (isBatch(message)) return serveBatch(stream, reader, message.items, peerId, handler, options, context);
  let request: Req;
  try {
    request = options.validate(message);
  } catch (error) {
    const engineError = toEngineError(error);
    if (isUnknownTypeError(engineError)) {
      stream.abort(engineError);
      return 'reset';
    }
    await final(errorFrame(engineError));
    return 'errored';
  }
  try {
    const result = await abortable(handler(request, cancellation.context(peerId)), cancellation);
    if (result instanceof StreamedReply) {
      for await (const item of result.items) {
        await sendBytes(stream, frameBytes({ type: 'item', value: item }, frameBytesMax), cancellation);
        deadline.restart();
      }
      await final({ type: 'end' });
    } else {
      await final({ type: 'reply', value: result ?? null });
    }
  } catch (error) {
    if (cancellation.aborted || stream.status !== 'open') {
      stream.abort(toEngineError(error));
      return 'reset';
    }
    await final(errorFrame(toEngineError(error)));
    return 'errored';
  }
  return 'replied';
}

/** The `type` of a batch request frame; never a plain name, so never one of a protocol's own types. */
const batchType = '$batch';
const batchPrefix = new TextEncoder().encode(`{"type":"${batchType}"`);

/** True when a payload starts as the batch frames requesters write do. */
function isBatchPayload(payload: Uint8Array): boolean {
  if (payload.byteLength < batchPrefix.byteLength) return false;
  for (let i = 0; i < batchPrefix.byteLength; i++) if (payload[i] !== batchPrefix[i]) return false;
  return true;
}

function isBatch(message: unknown): message is { type: typeof batchType; items: unknown } {
  return (
    typeof message === 'object' && message !== null && (message as { type?: unknown }).type === batchType
  );
}

/** The answer to one item of a batch, as it travels in a `replies` frame. */
type BatchAnswer = { type: 'reply'; value: unknown } | ReturnType<typeof errorFrame>;

/** Resolves at the end of the current event-loop turn (after every microtask and tick queued so far). */
function endOfTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Serves a batch: validates every item first (an unknown type resets the stream before any work
 * starts), runs the handlers at once, and answers in `replies` frames as handlers finish, one frame
 * for what finishes in the same turn. The deadline and signal are the batch's.
 */
async function serveBatch<Req>(
  stream: WireStream,
  reader: FrameReader,
  items: unknown,
  peerId: string,
  handler: RequestHandler<Req>,
  options: ServeStreamOptions<Req>,
  context: ServeContext,
): Promise<readonly ServeOutcome[]> {
  const { frameBytesMax, cancellation } = context;
  const itemsMax = limits.requestBatchItemsMax;
  if (!Array.isArray(items) || items.length < 2 || items.length > itemsMax) {
    stream.abort(new EngineError('BAD_INPUT', `a batch holds 2 to ${itemsMax} requests`));
    return ['reset'];
  }
  // The frame took one rate token like any request; every further item takes its own.
  for (let i = 1; i < items.length; i++) {
    if (options.admitNext?.() === false) {
      stream.abort(new EngineError('UNAVAILABLE', 'request refused (rate)'));
      return ['reset'];
    }
  }
  const outcomes: ServeOutcome[] = [];
  const ready: string[] = [];
  let failure: EngineError | undefined;
  let wake: (() => void) | undefined;
  const answer = (index: number, frame: BatchAnswer, outcome: ServeOutcome): void => {
    outcomes.push(outcome);
    ready.push(answerText(index, frame));
    wake?.();
  };
  const requests: { index: number; request: Req }[] = [];
  for (let index = 0; index < items.length; index++) {
    try {
      requests.push({ index, request: options.validate(items[index]) });
    } catch (error) {
      const engineError = toEngineError(error);
      if (isUnknownTypeError(engineError)) {
        stream.abort(engineError);
        return ['reset'];
      }
      answer(index, errorFrame(engineError), 'errored');
    }
  }
  // One listener for the whole batch: a deadline or a reset ends it, whatever the handlers do then.
  const onAbort = (): void => {
    failure ??= toEngineError(cancellation.reason);
    wake?.();
  };
  if (cancellation.aborted) onAbort();
  cancellation.onAbort(onAbort);
  const handlerContext = cancellation.context(peerId);
  try {
    for (const { index, request } of requests) {
      invoke(handler, request, handlerContext).then(
        (result) => {
          if (failure !== undefined) return;
          if (result instanceof StreamedReply)
            answer(
              index,
              errorFrame(new EngineError('BAD_INPUT', 'a batched request has a single reply')),
              'errored',
            );
          else answer(index, { type: 'reply', value: result ?? null }, 'replied');
        },
        (error: unknown) => {
          if (failure !== undefined) return;
          if (cancellation.aborted || stream.status !== 'open') {
            failure = toEngineError(error);
            wake?.();
          } else answer(index, errorFrame(toEngineError(error)), 'errored');
        },
      );
    }
    let answered = 0;
    while (answered < items.length) {
      if (ready.length === 0 && failure === undefined) await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
      // What else finishes in this turn goes in the same frame.
      if (failure === undefined && answered + ready.length < items.length) await endOfTurn();
      if (failure !== undefined) {
        stream.abort(failure);
        return [...outcomes, 'reset'];
      }
      const answers = ready.splice(0);
      answered += answers.length;
      const frames = repliesFrames(answers, frameBytesMax);
      for (let i = 0; i < frames.length; i++) {
        // The last frame of the batch: from here on the next request may come.
        if (answered === items.length && i === frames.length - 1) reader.expect(true);
        await sendBytes(stream, frames[i]!, cancellation);
      }
    }
    return outcomes;
  } finally {
    cancellation.offAbort(onAbort);
  }
}

function invoke<Req>(handler: RequestHandler<Req>, request: Req, context: RequestContext): Promise<unknown> {
  try {
    return handler(request, context);
  } catch (error) {
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }
}

/** One item's answer as JSON text; an answer that cannot be encoded becomes its error. */
function answerText(index: number, frame: BatchAnswer): string {
  try {
    return jsonText({ i: index, ...frame });
  } catch (error) {
    return jsonText({ i: index, ...errorFrame(toEngineError(error)) });
  }
}

const repliesOpen = '{"type":"replies","items":[';
const repliesClose = ']}';

/**
 * Packs answers into as few `replies` frames as fit `frameBytesMax`; an answer too large for a frame
 * of its own is replaced by its TOO_LARGE error.
 */
function repliesFrames(answers: readonly string[], frameBytesMax: number): Uint8Array[] {
  try {
    return [encodeTextFrame(repliesOpen + answers.join(',') + repliesClose, frameBytesMax)];
  } catch (error) {
    const engineError = toEngineError(error);
    if (engineError.code !== 'TOO_LARGE') throw engineError;
  }
  if (answers.length > 1) {
    const half = answers.length >> 1;
    return [
      ...repliesFrames(answers.slice(0, half), frameBytesMax),
      ...repliesFrames(answers.slice(half), frameBytesMax),
    ];
  }
  const index = (JSON.parse(answers[0]!) as { i: number }).i;
  const tooLarge = new EngineError('TOO_LARGE', `reply is over the ${frameBytesMax}-byte frame limit`);
  return [
    encodeTextFrame(repliesOpen + answerText(index, errorFrame(tooLarge)) + repliesClose, frameBytesMax),
  ];
}

/** Closes our writing end and waits (at most `lingerMs`) for the other side to close; resets it then. */
async function closeQuietly(stream: WireStream, lingerMs: number): Promise<void> {
  try {
    await stream.close();
  } catch (error) {
    stream.abort(toEngineError(error));
    return;
  }
  if (stream.status !== 'open' && stream.status !== 'closing') return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      stream.removeEventListener('close', done);
      stream.abort(new EngineError('TIMEOUT', 'peer did not close the stream'));
      resolve();
    }, lingerMs);
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    stream.addEventListener('close', done, { once: true });
  });
}

/**
 * Serves one inbound stream and returns how its (last) request ended: for a requester that sends one
 * request and closes, how that request ended. Never throws.
 */
export async function serveRequest<Req>(
  stream: WireStream,
  peerId: string,
  handler: RequestHandler<Req>,
  options: ServeStreamOptions<Req>,
): Promise<ServeOutcome> {
  let last: ServeOutcome = 'reset';
  await serveStream(stream, peerId, handler, {
    ...options,
    onOutcome: (outcome) => {
      last = outcome;
      options.onOutcome?.(outcome);
    },
  });
  return last;
}

function errorFrame(error: EngineError): { type: 'error'; code: string; message: string } {
  // An unexpected failure is reported by code only: its message may describe our internals.
  const message = error.code === 'INTERNAL' ? 'internal error' : error.message.slice(0, 4096);
  return { type: 'error', code: error.code, message };
}

/** Encodes one frame; a reply too large to send becomes an error frame with its code. */
function frameBytes(value: unknown, frameBytesMax: number): Uint8Array {
  try {
    return encodeFrame(value, frameBytesMax);
  } catch (error) {
    const engineError = toEngineError(error);
    // A reply too large to send is answered with its code instead, so the requester is not left waiting.
    if (typeof value === 'object' && value !== null && (value as { type?: unknown }).type !== 'error')
      return encodeFrame(errorFrame(engineError), frameBytesMax);
    throw engineError;
  }
}

async function sendBytes(
  stream: WireStream,
  bytes: Uint8Array,
  cancellation?: { readonly signal: AbortSignal },
): Promise<void> {
  if (!stream.send(bytes))
    await stream.onDrain(cancellation === undefined ? {} : { signal: cancellation.signal });
}

/** Writes one frame, waiting for the stream to drain when its buffer is full. */
export async function writeFrame(
  stream: WireStream,
  value: unknown,
  frameBytesMax: number,
  signal?: AbortSignal,
): Promise<void> {
  await sendBytes(stream, frameBytes(value, frameBytesMax), signal === undefined ? undefined : { signal });
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

/** A stream lent to one exchange, with the reader that lives as long as the stream. */
export interface Lease {
  readonly stream: WireStream;
  readonly reader: FrameReader;
  /** The stream carried an earlier exchange (it came from a pool). */
  readonly reused: boolean;
}

/** Where exchanges get their streams: a pool of idle ones, or a new stream per request. */
export interface StreamSource {
  /**
   * A stream for one exchange: an idle one when there is one (unless `fresh`), else a new one.
   * `requests` is how many requests the exchange carries (a batch's items), for statistics.
   */
  acquire(cancel: { readonly signal: AbortSignal }, fresh: boolean, requests?: number): Promise<Lease>;
  /**
   * Takes a stream back once its exchange is over: `reusable` when it ended cleanly (the final frame
   * read, nothing after it); otherwise the stream has been reset or must be.
   */
  release(lease: Lease, reusable: boolean): void;
  /** Close the writing end after the request (one request per stream). */
  readonly oneShot?: boolean;
}

/** A source that opens a new stream per request and closes its writing end after the request. */
export function oneShotSource(open: OpenStream, frameBytesMax: number = limits.frameBytesMax): StreamSource {
  return {
    oneShot: true,
    acquire: async (cancel) => {
      const stream = await open(cancel.signal);
      return { stream, reader: new FrameReader(stream, { frameBytesMax }), reused: false };
    },
    release: (lease, reusable) => {
      if (!reusable && lease.stream.status === 'open')
        lease.stream.abort(new EngineError('INTERRUPTED', 'request abandoned'));
      lease.reader.dispose();
    },
  };
}

function sourceOf(open: OpenStream | StreamSource, frameBytesMax: number | undefined): StreamSource {
  return typeof open === 'function' ? oneShotSource(open, frameBytesMax) : open;
}

/** Sends one request and returns the single reply value; a streamed reply is a protocol error. */
export async function sendRequest<T = unknown>(
  open: OpenStream | StreamSource,
  message: unknown,
  options: RequestOptions<T> = {},
): Promise<T> {
  return sendEncodedRequest(
    open,
    encodeFrame(message, options.frameBytesMax ?? limits.frameBytesMax),
    options,
  );
}

/** `sendRequest` of a request already encoded as a frame (`encodeFrame`). */
export async function sendEncodedRequest<T = unknown>(
  open: OpenStream | StreamSource,
  request: Uint8Array,
  options: RequestOptions<T> = {},
): Promise<T> {
  for await (const frame of exchange(sourceOf(open, options.frameBytesMax), request, options)) {
    if (frame.type !== 'reply')
      throw new EngineError('BAD_INPUT', `expected a single reply, got ${frame.type}`);
    return checkReply(options.validate, frame.value);
  }
  throw new EngineError('UNAVAILABLE', 'stream ended without a reply');
}

/** Sends one request and yields the items of its streamed reply (a single reply yields one item). */
export async function* sendStreamRequest<T = unknown>(
  open: OpenStream | StreamSource,
  message: unknown,
  options: RequestOptions<T> = {},
): AsyncGenerator<T, void, undefined> {
  const request = encodeFrame(message, options.frameBytesMax ?? limits.frameBytesMax);
  for await (const frame of exchange(sourceOf(open, options.frameBytesMax), request, options)) {
    if (frame.type === 'end') return;
    yield checkReply(options.validate, frame.value);
    if (frame.type === 'reply') return;
  }
  throw new EngineError('UNAVAILABLE', 'stream ended before the end of the reply');
}

/** Checks a reply value with the request's validator; BAD_INPUT (remote) when it does not match. */
export function checkReply<T>(validate: Validator<T> | undefined, value: unknown): T {
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

/**
 * One attempt of an exchange: takes a stream from `source` (a new one after the first attempt), hands
 * it to `hold` at once (so a cancellation can reset it) and writes `request` on it. Undefined when a
 * pooled stream had closed under us before anything was written: the caller tries again, once.
 */
async function sendAttempt(
  source: StreamSource,
  controller: Cancellation,
  request: Uint8Array,
  frameBytesMax: number,
  attempt: number,
  hold: (lease: Lease | undefined) => void,
  requests?: number,
): Promise<{ lease: Lease; mayRetry: boolean } | undefined> {
  controller.throwIfAborted();
  const lease = await source.acquire(controller, attempt > 0, requests);
  hold(lease);
  controller.throwIfAborted();
  const { stream, reader } = lease;
  // Sent again on a new stream only when this one provably did not serve it (see the top comment).
  const mayRetry = lease.reused && attempt === 0;
  reader.inExchange = true;
  reader.expect(true);
  stream.maxReadBufferLength = frameBytesMax;
  let accepted: boolean;
  try {
    accepted = stream.send(request);
  } catch (error) {
    // Nothing was written: a pooled stream that closed under us.
    if (!mayRetry) throw error;
    source.release(lease, false);
    hold(undefined);
    return undefined;
  }
  if (!accepted) await stream.onDrain({ signal: controller.signal });
  if (source.oneShot === true) await stream.close({ signal: controller.signal });
  return { lease, mayRetry };
}

/** Yields the reply frames of one request (errors thrown), ending after 'reply' or 'end'. */
async function* exchange(
  source: StreamSource,
  request: Uint8Array,
  options: RequestOptions<unknown>,
): AsyncGenerator<DataFrame, void, undefined> {
  const frameBytesMax = options.frameBytesMax ?? limits.frameBytesMax;
  const timeoutMs = options.timeoutMs ?? limits.requestTimeoutMs;
  const controller = new Cancellation();
  let lease: Lease | undefined;
  const deadline = new Deadline();
  deadline.set(timeoutMs, () => {
    // Made only when it fires: an Error captures a stack, and almost every request ends in time.
    const timeout = new EngineError('TIMEOUT', `no reply within ${timeoutMs} ms`);
    controller.abort(timeout);
    lease?.stream.abort(timeout);
  });
  const outer = options.signal;
  const onOuterAbort = (): void => {
    const error = new EngineError('INTERRUPTED', 'request cancelled');
    controller.abort(error);
    lease?.stream.abort(error);
  };
  outer?.addEventListener('abort', onOuterAbort, { once: true });
  /** The request reached a stream the responder may have read: a failure from now on leaves it in doubt. */
  let delivered = false;
  try {
    if (outer?.aborted === true) onOuterAbort();
    for (let attempt = 0; ; attempt++) {
      const sent = await sendAttempt(source, controller, request, frameBytesMax, attempt, (held) => {
        lease = held;
      });
      if (sent === undefined) continue;
      delivered = true;
      const { lease: current, mayRetry } = sent;
      const { reader } = current;
      let frames = 0;
      for (;;) {
        const payload = await reader.next();
        if (payload === undefined) {
          if (frames === 0 && mayRetry) break;
          throw new EngineError('UNAVAILABLE', 'stream closed before the reply ended');
        }
        frames += 1;
        const frame = replyFrame(decodeFramePayload(payload, frameBytesMax));
        if (frame.type === 'item') {
          yield frame;
          deadline.restart();
          continue;
        }
        // The exchange is over: the stream goes back for the next request before anything else.
        deadline.clear();
        reader.expect(false);
        reader.inExchange = false;
        lease = undefined;
        source.release(current, true);
        if (frame.type === 'error') {
          const code = isErrorCode(frame.code) ? frame.code : 'INTERNAL';
          throw new EngineError(code, frame.message, { remote: true });
        }
        yield frame;
        return;
      }
      // The responder closed the idle stream as we sent: not served; once more on a new stream.
      delivered = false;
      source.release(current, false);
      lease = undefined;
    }
  } catch (error) {
    if (controller.reason instanceof EngineError) throw controller.reason;
    const engineError = toEngineError(error);
    if (engineError.details?.['remote'] === true) throw engineError;
    // A stream the responder reset reaches us as a stream failure; say so without its internals.
    // Lost after it was delivered, the request may have been carried out (`inFlight`).
    const lost =
      engineError.code === 'INTERNAL' || (delivered && engineError.code === 'UNAVAILABLE')
        ? new EngineError(
            'UNAVAILABLE',
            engineError.message,
            delivered ? { ...engineError.details, inFlight: true } : undefined,
            { cause: error },
          )
        : engineError;
    throw lost;
  } finally {
    deadline.clear();
    outer?.removeEventListener('abort', onOuterAbort);
    // Stopped early (consumer broke off, error): reset so the responder stops producing.
    if (lease !== undefined) {
      if (lease.stream.status === 'open')
        lease.stream.abort(new EngineError('INTERRUPTED', 'request abandoned'));
      source.release(lease, false);
    }
  }
}

/** One request of a batch, as the requester's coalescing layer (request-batcher.ts) holds it. */
export interface BatchItem {
  /** The request's JSON text. */
  readonly text: string;
  /** Aborted once the caller stopped waiting (its deadline passed or it cancelled). */
  readonly signal: AbortSignal;
  /** Hands the caller its reply value; called at most once, and never after `fail`. */
  answer(value: unknown): void;
  /** Hands the caller its error; called at most once, and never after `answer`. */
  fail(error: EngineError): void;
}

/** JSON text of a batch request frame holding these items. */
export function batchText(items: readonly { readonly text: string }[]): string {
  let text = `{"type":"${batchType}","items":[`;
  for (let i = 0; i < items.length; i++) text += (i === 0 ? '' : ',') + items[i]!.text;
  return text + ']}';
}

/** Bytes a batch frame's payload spends beyond its items' texts (and a comma between items). */
export const batchOverheadBytes = batchText([]).length;

const batchAnswer = messageUnion({
  reply: object({ i: integer({ min: 0, max: limits.requestBatchItemsMax - 1 }), value: json() }),
  error: object({
    i: integer({ min: 0, max: limits.requestBatchItemsMax - 1 }),
    code: string({ charsMax: 64 }),
    message: string({ charsMax: 4096 }),
  }),
});

const repliesFrame = messageUnion({
  replies: object({ items: array(batchAnswer, { itemsMax: limits.requestBatchItemsMax }) }),
});

/**
 * Sends 2 to requestBatchItemsMax requests as one batch frame (`batchText`, at most `frameBytesMax`)
 * and hands every item its answer as the `replies` frames come. Never throws: a failure of the
 * exchange fails every item still waiting. Once every waiting item has been abandoned by its caller,
 * the stream is reset (the responder stops); until then it keeps serving the rest.
 */
export async function sendBatch(
  source: StreamSource,
  items: readonly BatchItem[],
  frameBytesMax: number = limits.frameBytesMax,
): Promise<void> {
  const answered: boolean[] = items.map(() => false);
  let waiting = items.length;
  const controller = new Cancellation();
  let lease: Lease | undefined;
  const onAbandon = (): void => {
    for (let i = 0; i < items.length; i++) if (!answered[i] && !items[i]!.signal.aborted) return;
    const error = new EngineError('INTERRUPTED', 'request cancelled');
    controller.abort(error);
    lease?.stream.abort(error);
  };
  for (const item of items) item.signal.addEventListener('abort', onAbandon, { once: true });
  try {
    onAbandon();
    const request = encodeTextFrame(batchText(items), frameBytesMax);
    for (let attempt = 0; ; attempt++) {
      const sent = await sendAttempt(
        source,
        controller,
        request,
        frameBytesMax,
        attempt,
        (held) => {
          lease = held;
        },
        items.length,
      );
      if (sent === undefined) continue;
      const { lease: current, mayRetry } = sent;
      const { reader } = current;
      let frames = 0;
      for (;;) {
        const payload = await reader.next();
        if (payload === undefined) {
          if (frames === 0 && mayRetry) break;
          throw new EngineError('UNAVAILABLE', 'stream closed before the reply ended');
        }
        frames += 1;
        const frame = repliesFrame(decodeFramePayload(payload, frameBytesMax));
        for (const entry of frame.items) {
          if (entry.i >= items.length || answered[entry.i] === true)
            throw new EngineError(
              'BAD_INPUT',
              'batch reply names a request it already answered or never had',
            );
        }
        const last = waiting === frame.items.length;
        if (last) {
          // The exchange is over: the stream goes back for the next request before anything else.
          reader.expect(false);
          reader.inExchange = false;
          lease = undefined;
          source.release(current, true);
        }
        for (const entry of frame.items) {
          answered[entry.i] = true;
          waiting -= 1;
          const item = items[entry.i]!;
          if (item.signal.aborted) continue;
          if (entry.type === 'reply') item.answer(entry.value);
          else {
            const code = isErrorCode(entry.code) ? entry.code : 'INTERNAL';
            item.fail(new EngineError(code, entry.message, { remote: true }));
          }
        }
        if (last) return;
      }
      // The responder closed the idle stream as we sent: not served; once more on a new stream.
      source.release(current, false);
      lease = undefined;
    }
  } catch (error) {
    let failure: EngineError;
    if (controller.reason instanceof EngineError) failure = controller.reason;
    else {
      failure = toEngineError(error);
      // A stream the responder reset reaches us as a stream failure; say so without its internals.
      if (failure.code === 'INTERNAL' && failure.details?.['remote'] !== true)
        failure = new EngineError('UNAVAILABLE', failure.message, undefined, { cause: error });
    }
    for (let i = 0; i < items.length; i++)
      if (!answered[i] && !items[i]!.signal.aborted) items[i]!.fail(failure);
  } finally {
    for (const item of items) item.signal.removeEventListener('abort', onAbandon);
    if (lease !== undefined) {
      if (lease.stream.status === 'open')
        lease.stream.abort(new EngineError('INTERRUPTED', 'request abandoned'));
      source.release(lease, false);
    }
  }
}

/** A restartable one-shot timer. */
class Deadline {
  private timer: NodeJS.Timeout | undefined;
  private ms = 0;
  private onExpiry: () => void = () => undefined;

  /** Arms the timer anew: `onExpiry` runs in `ms` unless cleared or set again. */
  set(ms: number, onExpiry: () => void): void {
    this.ms = ms;
    this.onExpiry = onExpiry;
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

/** Resolves like `promise`, or rejects with the cancellation's reason once it aborts. */
function abortable<T>(promise: Promise<T>, cancellation: Cancellation): Promise<T> {
  if (cancellation.aborted) return Promise.reject(cancellation.reason!);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(cancellation.reason!);
    cancellation.onAbort(onAbort);
    promise.then(
      (value) => {
        cancellation.offAbort(onAbort);
        resolve(value);
      },
      (error: unknown) => {
        cancellation.offAbort(onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/**
 * An abort controller that makes its AbortSignal only when something asks for one (a handler that
 * reads its context's signal, a stream being opened, a write waiting for a drain): most requests end
 * without anyone needing it, and an AbortController costs more than a small request's framing.
 */
class Cancellation {
  private controller: AbortController | undefined;
  private why: Error | undefined;
  private listeners: (() => void)[] = [];

  get aborted(): boolean {
    return this.why !== undefined;
  }

  get reason(): Error | undefined {
    return this.why;
  }

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.why !== undefined) this.controller.abort(this.why);
    }
    return this.controller.signal;
  }

  /** Aborts with `reason` (the first reason sticks) and tells every listener. */
  abort(reason: Error): void {
    if (this.why !== undefined) return;
    this.why = reason;
    this.controller?.abort(reason);
    const listeners = this.listeners;
    this.listeners = [];
    for (const listener of listeners) listener();
  }

  throwIfAborted(): void {
    if (this.why !== undefined) throw this.why;
  }

  onAbort(listener: () => void): void {
    this.listeners.push(listener);
  }

  offAbort(listener: () => void): void {
    const index = this.listeners.indexOf(listener);
    if (index >= 0) this.listeners.splice(index, 1);
  }

  /** The context a handler gets: its signal is made only if the handler reads it. */
  context(peerId: string): RequestContext {
    return new LazyContext(peerId, this);
  }
}

class LazyContext implements RequestContext {
  constructor(
    readonly peerId: string,
    private readonly cancellation: Cancellation,
  ) {}

  get signal(): AbortSignal {
    return this.cancellation.signal;
  }
}
