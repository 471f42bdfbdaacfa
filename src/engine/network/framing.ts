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
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw new EngineError('BAD_INPUT', 'message cannot be encoded as JSON', undefined, { cause: error });
  }
  if (text === undefined) throw new EngineError('BAD_INPUT', 'message cannot be encoded as JSON');
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
  return parseJson(text, { bytesMax: frameBytesMax, what: 'frame' });
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
