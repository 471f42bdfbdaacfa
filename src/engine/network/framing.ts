/**
 * Wire frames: a varint length prefix (it-length-prefixed) and a UTF-8 JSON payload. Every frame has a
 * hard size limit checked on the prefix, before any payload is buffered, and the bytes of partly
 * received frames across all streams count against one shared `ByteBudget`, so hostile senders cannot
 * pin more memory than the budget however many streams they open.
 */
import * as lp from 'it-length-prefixed';
import { EngineError } from '../base/errors.js';
import { limits } from '../base/limits.js';
import { parseJson } from '../base/codec.js';

/** A chunk as streams deliver it: a Uint8Array, or a list of them with `subarray()` to join. */
export interface ByteChunk {
  readonly byteLength: number;
  subarray(): Uint8Array;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });

/** Encodes a JSON value as one length-prefixed frame; TOO_LARGE when the payload is over `frameBytesMax`. */
export function encodeFrame(value: unknown, frameBytesMax: number = limits.frameBytesMax): Uint8Array {
  return encodeTextFrame(jsonText(value), frameBytesMax);
}

/** A value's JSON text; BAD_INPUT when it has none. */
export function jsonText(value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw new EngineError('BAD_INPUT', 'message cannot be encoded as JSON', undefined, { cause: error });
  }
  if (text === undefined) throw new EngineError('BAD_INPUT', 'message cannot be encoded as JSON');
  return text;
}

/** Encodes JSON text as one length-prefixed frame; TOO_LARGE when the payload is over `frameBytesMax`. */
export function encodeTextFrame(text: string, frameBytesMax: number = limits.frameBytesMax): Uint8Array {
  const payload = textEncoder.encode(text);
  if (payload.byteLength > frameBytesMax) {
    throw new EngineError(
      'TOO_LARGE',
      `message of ${payload.byteLength} bytes is over the ${frameBytesMax}-byte frame limit`,
      {
        bytes: payload.byteLength,
        frameBytesMax,
      },
    );
  }
  return lp.encode.single(payload, { maxDataLength: frameBytesMax }).subarray();
}

/** Parses one frame's payload: strict UTF-8, then JSON bounded in size and depth; BAD_INPUT otherwise. */
export function decodeFramePayload(
  payload: Uint8Array,
  frameBytesMax: number = limits.frameBytesMax,
  depthMax: number = limits.jsonDepthMax,
): unknown {
  if (payload.byteLength > frameBytesMax) {
    throw new EngineError('TOO_LARGE', `frame of ${payload.byteLength} bytes is over ${frameBytesMax}`);
  }
  let text: string;
  try {
    text = textDecoder.decode(payload);
  } catch {
    throw new EngineError('BAD_INPUT', 'frame is not valid UTF-8');
  }
  return parseJson(text, { bytesMax: frameBytesMax, depthMax, what: 'frame' });
}

/**
 * A shared allowance of bytes. Readers take bytes as they arrive and give them back once a frame is
 * complete; a reader that cannot take fails its stream instead of growing past the budget.
 */
export class ByteBudget {
  private heldBytes = 0;

  constructor(readonly bytesMax: number) {}

  get held(): number {
    return this.heldBytes;
  }

  /** Reserves `bytes`; false (nothing reserved) when that would exceed the budget. */
  take(bytes: number): boolean {
    if (this.heldBytes + bytes > this.bytesMax) return false;
    this.heldBytes += bytes;
    return true;
  }

  give(bytes: number): void {
    this.heldBytes = Math.max(0, this.heldBytes - bytes);
  }
}

export interface ReadFramesOptions {
  frameBytesMax?: number;
  /** Shared allowance for bytes of incomplete frames; unlimited when absent. */
  budget?: ByteBudget;
}

/**
 * Splits a byte stream into frame payloads. Throws EngineError: TOO_LARGE for a length prefix over
 * the limit (before its payload is read) or an exhausted budget, BAD_INPUT for a malformed prefix or
 * a stream that ends inside a frame. Bytes held are returned to the budget however the read ends.
 */
export async function* readFrames(
  source: AsyncIterable<ByteChunk | Uint8Array> | Iterable<ByteChunk | Uint8Array>,
  options: ReadFramesOptions = {},
): AsyncGenerator<Uint8Array, void, undefined> {
  const frameBytesMax = options.frameBytesMax ?? limits.frameBytesMax;
  const budget = options.budget;
  let held = 0;
  let pendingPrefixBytes = 0;
  const release = (bytes: number): void => {
    held -= bytes;
    budget?.give(bytes);
  };
  async function* accounted(): AsyncGenerator<Uint8Array, void, undefined> {
    for await (const chunk of source) {
      const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray();
      if (bytes.byteLength === 0) continue;
      if (budget !== undefined && !budget.take(bytes.byteLength)) {
        throw new EngineError('TOO_LARGE', 'inbound buffer budget exhausted');
      }
      held += bytes.byteLength;
      yield bytes;
    }
  }
  try {
    const frames = lp.decode(accounted(), {
      maxDataLength: frameBytesMax,
      onLength: (length) => {
        pendingPrefixBytes = varintBytes(length);
      },
    });
    for await (const frame of frames) {
      release(pendingPrefixBytes + frame.byteLength);
      pendingPrefixBytes = 0;
      yield frame.subarray();
    }
  } catch (error) {
    throw frameError(error, frameBytesMax);
  } finally {
    if (held > 0) release(held);
  }
}

/** Bytes of the unsigned LEB128 varint that encodes `value`. */
function varintBytes(value: number): number {
  let bytes = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 0x80);
    bytes++;
  }
  return bytes;
}

function frameError(error: unknown, frameBytesMax: number): EngineError {
  if (error instanceof EngineError) return error;
  const name = error instanceof Error ? error.name : '';
  switch (name) {
    case 'InvalidDataLengthError':
      return new EngineError('TOO_LARGE', `frame length prefix is over the ${frameBytesMax}-byte limit`);
    case 'InvalidDataLengthLengthError':
    case 'InvalidMessageLengthError':
      return new EngineError('BAD_INPUT', 'frame length prefix is malformed');
    case 'UnexpectedEOFError':
      return new EngineError('BAD_INPUT', 'stream ended inside a frame');
    default:
      return new EngineError(
        'UNAVAILABLE',
        `stream failed: ${error instanceof Error ? error.message : String(error)}`,
        undefined,
        {
          cause: error,
        },
      );
  }
}

/** What a FrameReader reads from: a stream's chunks, and a way to reset it when the peer misbehaves. */
export interface FrameSource extends AsyncIterable<ByteChunk | Uint8Array> {
  abort(error: Error): void;
}

/** Longest varint length prefix accepted (it-length-prefixed's default). */
const prefixBytesMax = 8;

/**
 * Reads length-prefixed frames from one stream for as long as the stream lives, across any number of
 * request/reply exchanges. Unlike `readFrames` it never loses read-ahead bytes between frames, and it
 * knows when frames are expected: bytes that arrive while nothing is expected (a requester talking
 * while its request is handled, a responder talking on an idle stream) reset the stream at once.
 *
 * Memory is bounded: it pulls from the stream only while fewer than `frameBytesMax` bytes are
 * buffered (a slow consumer of a streamed reply slows the sender), and every buffered byte counts
 * against the budget until its frame is taken or the reader is disposed. The length prefix is
 * checked as soon as it is complete, before its payload is waited for.
 */
export class FrameReader {
  private readonly frameBytesMax: number;
  private readonly budget: ByteBudget | undefined;
  private readonly iterator: AsyncIterator<ByteChunk | Uint8Array>;
  private chunks: Uint8Array[] = [];
  private bufferedBytes = 0;
  private expecting = true;
  private discarding = false;
  private disposed = false;
  private ended = false;
  private failure: EngineError | undefined;
  private waiter: (() => void) | undefined;
  private pumpWaiter: (() => void) | undefined;
  /** Called when bytes arrive while a frame is expected (a request's deadline starts at its first byte). */
  onBytes: (() => void) | undefined;
  /** Called once when the stream ends or fails outside an exchange (an idle pooled stream went away). */
  onIdleEnd: (() => void) | undefined;
  /** Set by the owner while an exchange is under way on the stream. */
  inExchange = false;

  constructor(
    private readonly source: FrameSource,
    options: ReadFramesOptions = {},
  ) {
    this.frameBytesMax = options.frameBytesMax ?? limits.frameBytesMax;
    this.budget = options.budget;
    this.iterator = source[Symbol.asyncIterator]();
    void this.pump();
  }

  /** Bytes received and not yet taken as frames. */
  get buffered(): number {
    return this.bufferedBytes;
  }

  /** True while the stream can still deliver frames (not ended, failed, discarding or disposed). */
  get live(): boolean {
    return !this.ended && this.failure === undefined && !this.discarding && !this.disposed;
  }

  /**
   * Says whether frames are expected from now on. Turning it off with bytes still buffered is a
   * violation (the peer sent more than one frame's worth): the stream is reset and this throws.
   */
  expect(on: boolean): void {
    this.expecting = on;
    if (!on && this.bufferedBytes > 0)
      throw this.fail(new EngineError('BAD_INPUT', 'unexpected bytes after a frame'));
  }

  /**
   * The next frame's payload, or undefined when the stream ended cleanly at a frame boundary (or the
   * reader is discarding; a disposed reader throws). Throws EngineError: TOO_LARGE for a length prefix over the limit or an
   * exhausted budget, BAD_INPUT for a malformed prefix or a stream that ends inside a frame,
   * UNAVAILABLE when the stream fails. After a throw the reader stays failed.
   */
  async next(): Promise<Uint8Array | undefined> {
    for (;;) {
      if (this.failure !== undefined) throw this.failure;
      if (this.discarding) return undefined;
      if (this.disposed) throw new EngineError('UNAVAILABLE', 'stream reader disposed');
      const frame = this.take();
      if (frame !== undefined) return frame;
      if (this.ended) {
        if (this.bufferedBytes === 0) return undefined;
        throw this.fail(new EngineError('BAD_INPUT', 'stream ended inside a frame'));
      }
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  /** Drops what is buffered and everything that still arrives (a stream we are closing); next() returns undefined. */
  discard(): void {
    this.discarding = true;
    this.dropBuffered();
    this.wakeAll();
  }

  /** Gives every held byte back to the budget and stops reading. Safe to call twice. */
  dispose(): void {
    this.disposed = true;
    this.dropBuffered();
    this.wakeAll();
  }

  private async pump(): Promise<void> {
    try {
      for (;;) {
        while (this.bufferedBytes > this.frameBytesMax && !this.disposed && this.failure === undefined)
          await new Promise<void>((resolve) => (this.pumpWaiter = resolve));
        if (this.disposed || this.failure !== undefined) return;
        const result = await this.iterator.next();
        if (result.done === true) break;
        const chunk = result.value;
        const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray();
        if (bytes.byteLength === 0 || this.disposed || this.discarding) continue;
        if (!this.expecting) throw new EngineError('BAD_INPUT', 'unexpected bytes on the stream');
        if (this.budget !== undefined && !this.budget.take(bytes.byteLength))
          throw new EngineError('TOO_LARGE', 'inbound buffer budget exhausted');
        this.chunks.push(bytes);
        this.bufferedBytes += bytes.byteLength;
        this.onBytes?.();
        this.wake();
      }
      this.ended = true;
      this.idleEnd();
      this.wake();
    } catch (error) {
      this.fail(frameError(error, this.frameBytesMax));
    }
  }

  /** Takes one whole frame off the buffer, if there is one; throws (and fails) on a bad prefix. */
  private take(): Uint8Array | undefined {
    if (this.bufferedBytes === 0) return undefined;
    let length = 0;
    let prefixBytes = 0;
    let complete = false;
    let scale = 1;
    scan: for (const chunk of this.chunks) {
      for (const byte of chunk) {
        length += (byte & 0x7f) * scale;
        scale *= 0x80;
        prefixBytes += 1;
        if (length > this.frameBytesMax)
          throw this.fail(
            new EngineError('TOO_LARGE', `frame length prefix is over the ${this.frameBytesMax}-byte limit`),
          );
        if ((byte & 0x80) === 0) {
          complete = true;
          break scan;
        }
        if (prefixBytes >= prefixBytesMax)
          throw this.fail(new EngineError('BAD_INPUT', 'frame length prefix is malformed'));
      }
    }
    if (!complete || this.bufferedBytes < prefixBytes + length) return undefined;
    const whole = prefixBytes + length;
    let frame: Uint8Array;
    const first = this.chunks[0]!;
    if (first.byteLength >= whole) {
      frame = first.subarray(prefixBytes, whole);
      if (first.byteLength === whole) this.chunks.shift();
      else this.chunks[0] = first.subarray(whole);
    } else {
      const joined = new Uint8Array(whole);
      let filled = 0;
      while (filled < whole) {
        const chunk = this.chunks[0]!;
        const part = Math.min(chunk.byteLength, whole - filled);
        joined.set(chunk.subarray(0, part), filled);
        filled += part;
        if (part === chunk.byteLength) this.chunks.shift();
        else this.chunks[0] = chunk.subarray(part);
      }
      frame = joined.subarray(prefixBytes);
    }
    this.bufferedBytes -= whole;
    this.budget?.give(whole);
    this.pumpWaiter?.();
    this.pumpWaiter = undefined;
    return frame;
  }

  /** Fails the reader (the first failure sticks), resets the stream, and returns the failure. */
  private fail(error: EngineError): EngineError {
    if (this.failure !== undefined) return this.failure;
    this.failure = error;
    this.dropBuffered();
    this.source.abort(error);
    this.idleEnd();
    this.wakeAll();
    return error;
  }

  private idleEnd(): void {
    if (this.inExchange) return;
    const onIdleEnd = this.onIdleEnd;
    this.onIdleEnd = undefined;
    onIdleEnd?.();
  }

  private dropBuffered(): void {
    if (this.bufferedBytes > 0) this.budget?.give(this.bufferedBytes);
    this.bufferedBytes = 0;
    this.chunks = [];
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }

  private wakeAll(): void {
    this.wake();
    this.pumpWaiter?.();
    this.pumpWaiter = undefined;
  }
}
