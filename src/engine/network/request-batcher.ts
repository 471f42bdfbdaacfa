/**
 * Request coalescing on the requester's side: requests to one peer on one protocol made in the same
 * event-loop turn leave together as one batch frame, and each caller gets its own reply or error (the
 * rules are at the top of request-response.ts). A request alone in its turn leaves exactly as an
 * unbatched request would, at the end of the turn; nothing ever waits on a timer.
 */
import { EngineError, toEngineError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import { encodeTextFrame, jsonText } from './framing.js';
import {
  type BatchItem,
  batchOverheadBytes,
  checkReply,
  type RequestOptions,
  sendBatch,
  sendEncodedRequest,
  type StreamSource,
} from './request-response.js';

interface Queued {
  readonly text: string;
  readonly options: RequestOptions<unknown>;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

/** Gathers the requests of one turn to one (peer, protocol) and sends them alone or as batches. */
export class RequestBatcher {
  private queue: Queued[] = [];

  constructor(
    private readonly source: StreamSource,
    private readonly frameBytesMax: number,
  ) {}

  /** Sends one request (alone or in a batch) and returns its single reply value. */
  request<T>(message: unknown, options: RequestOptions<T>): Promise<T> {
    let text: string;
    try {
      // Encoded now, as an unbatched request is: the caller may change the message once this returns.
      text = jsonText(message);
    } catch (error) {
      return Promise.reject(toEngineError(error));
    }
    if (options.frameBytesMax !== undefined && options.frameBytesMax !== this.frameBytesMax)
      return this.sendAlone(text, options);
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ text, options, resolve: resolve as (value: unknown) => void, reject });
      if (this.queue.length === 1) scheduleFlush(this.flush);
    });
  }

  private readonly flush = (): void => {
    const queue = this.queue;
    this.queue = [];
    let group: Queued[] = [];
    let groupBytes = batchOverheadBytes;
    for (const queued of queue) {
      if (queued.options.signal?.aborted === true) {
        queued.reject(new EngineError('INTERRUPTED', 'request cancelled'));
        continue;
      }
      const bytes = utf8BytesMax(queued.text) + 1;
      if (
        group.length > 0 &&
        (group.length >= limits.requestBatchItemsMax || groupBytes + bytes > this.frameBytesMax)
      ) {
        this.send(group);
        group = [];
        groupBytes = batchOverheadBytes;
      }
      group.push(queued);
      groupBytes += bytes;
    }
    if (group.length > 0) this.send(group);
  };

  private send(group: readonly Queued[]): void {
    if (group.length === 1) {
      const only = group[0]!;
      this.sendAlone(only.text, only.options).then(only.resolve, only.reject);
      return;
    }
    void sendBatch(this.source, group.map(batchItem), this.frameBytesMax);
  }

  private sendAlone<T>(text: string, options: RequestOptions<T>): Promise<T> {
    let frame: Uint8Array;
    try {
      frame = encodeTextFrame(text, options.frameBytesMax ?? this.frameBytesMax);
    } catch (error) {
      return Promise.reject(toEngineError(error));
    }
    return sendEncodedRequest(this.source, frame, options);
  }
}

/**
 * A queued request as an item of a batch: its own deadline and cancellation end its caller's wait
 * (the batch goes on for the others; the responder may still serve it).
 */
function batchItem(queued: Queued): BatchItem {
  const { options } = queued;
  const controller = new AbortController();
  const timeoutMs = options.timeoutMs ?? limits.requestTimeoutMs;
  let done = false;
  const finish = (): boolean => {
    if (done) return false;
    done = true;
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
    return true;
  };
  const give = (error: EngineError): void => {
    if (!finish()) return;
    queued.reject(error);
    controller.abort(error);
  };
  const timer = setTimeout(
    () => give(new EngineError('TIMEOUT', `no reply within ${timeoutMs} ms`)),
    timeoutMs,
  );
  const onAbort = (): void => give(new EngineError('INTERRUPTED', 'request cancelled'));
  options.signal?.addEventListener('abort', onAbort, { once: true });
  return {
    text: queued.text,
    signal: controller.signal,
    answer: (value) => {
      if (!finish()) return;
      try {
        queued.resolve(checkReply(options.validate, value));
      } catch (error) {
        queued.reject(error);
      }
    },
    fail: (error) => {
      if (finish()) queued.reject(error);
    },
  };
}

/** An upper bound of the UTF-8 bytes of a string (3 per UTF-16 unit), exact when it matters. */
function utf8BytesMax(text: string): number {
  return text.length * 3 <= 4096 ? text.length * 3 : Buffer.byteLength(text, 'utf8');
}

/**
 * Runs `flush` at the end of the current turn: a tick queued from a promise continuation runs once
 * every microtask queued so far has run, so the requests of every caller resumed in this turn are in.
 */
function scheduleFlush(flush: () => void): void {
  process.nextTick(flush);
}
