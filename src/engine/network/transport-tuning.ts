/**
 * Runtime adjustments of the libp2p transport stack (Noise over TCP, Yamux on top) that cut the
 * main-thread CPU a small request costs. Every adjustment of library behaviour lives here and nowhere
 * else, each with what it changes, why, what it measured and the library version it was checked
 * against (versions are pinned by package-lock.json). Each one checks the shape it relies on first and
 * leaves a library that differs as it is; `transportTuning()` says which ones took effect, and
 * test/engine/network/transport-tuning.test.ts fails when one stops applying.
 *
 * What a small request cost before (measured on two nodes over 127.0.0.1): every Yamux frame was
 * encrypted as its own Noise message and written as two socket writes (the 2-byte length, then the
 * ciphertext), and the receiver of every data frame answered with a window-update frame of its own:
 * a request and its reply made about 8 socket writes and 4 Noise messages; now 2 and 2.
 *
 * Measured gains are main-thread CPU per request of an echo between two nodes in one process (median
 * of 5 interleaved runs on a shared 2-core machine, sequential / 8 concurrent requesters, request
 * batching off). All three together: 259 / 134 µs before, 169 / 57 µs after. They overlap (fewer
 * chunks also means fewer decoder throws, and an update gathered into a write costs less), so each
 * one's figure below is what removing it from the other two costs, with batching on (207 / 42 µs).
 */
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream';

/** Which adjustments took effect (each flips to true the first time it is applied). */
export interface TransportTuning {
  /** Noise: messages of one event-loop turn encrypted and written together. */
  batchedWrites: boolean;
  /** Noise: the length-prefix decoder no longer throws at the end of every chunk. */
  quietDecoder: boolean;
  /** Yamux: a window update only once half the receive window is used. */
  halfWindowUpdates: boolean;
}

const applied: TransportTuning = { batchedWrites: false, quietDecoder: false, halfWindowUpdates: false };

/** Which adjustments have taken effect in this process so far. */
export function transportTuning(): Readonly<TransportTuning> {
  return { ...applied };
}

/**
 * Bytes queued for one Noise connection beyond which it writes at once instead of at the end of the
 * turn: bulk transfers keep the library's own backpressure, small frames are gathered.
 */
const batchFlushBytes = 64 * 1024;

/** `noise()` with the Noise adjustments below applied to every connection it secures. */
export function tunedNoise(...args: Parameters<typeof noise>): ReturnType<typeof noise> {
  const factory = noise(...args);
  return (components) => {
    const encrypter = factory(components);
    const secureInbound = encrypter.secureInbound.bind(encrypter);
    const secureOutbound = encrypter.secureOutbound.bind(encrypter);
    encrypter.secureInbound = async (connection, options) => {
      const result = await secureInbound(connection, options);
      tuneEncryptedStream(result.connection);
      return result;
    };
    encrypter.secureOutbound = async (connection, options) => {
      const result = await secureOutbound(connection, options);
      tuneEncryptedStream(result.connection);
      return result;
    };
    return encrypter;
  };
}

/** `yamux()`, with the Yamux adjustment below applied (once, to the stream class). */
export function tunedYamux(...args: Parameters<typeof yamux>): ReturnType<typeof yamux> {
  tuneYamuxWindowUpdates();
  return yamux(...args);
}

/** The parts of @chainsafe/libp2p-noise 17.0.0's EncryptedMessageStream (dist/src/utils.js) we touch. */
interface EncryptedStreamShape {
  decoder: {
    lengthDecoder: (data: unknown) => number;
    encodingLength: (length: number) => number;
    maxDataLength: number;
  };
  writeBuffer: { byteLength: number };
  writableNeedsDrain: boolean;
  processSendQueue: () => boolean;
  encrypt: (chunk: unknown) => ByteListShape | Uint8Array;
  close: (options?: unknown) => Promise<void>;
}

/** The parts of uint8arraylist's Uint8ArrayList we use. */
interface ByteListShape {
  bufs: Uint8Array[];
  byteLength: number;
  subarray(): Uint8Array;
}

function tuneEncryptedStream(stream: unknown): void {
  if (typeof stream !== 'object' || stream === null) return;
  const candidate = stream as Partial<EncryptedStreamShape>;
  if (
    typeof candidate.processSendQueue === 'function' &&
    typeof candidate.encrypt === 'function' &&
    typeof candidate.close === 'function' &&
    typeof candidate.writableNeedsDrain === 'boolean' &&
    typeof candidate.writeBuffer?.byteLength === 'number'
  )
    batchWrites(candidate as EncryptedStreamShape);
  const decoder = candidate.decoder;
  if (
    typeof decoder?.lengthDecoder === 'function' &&
    typeof decoder.encodingLength === 'function' &&
    decoder.encodingLength(0) === 2 &&
    typeof decoder.maxDataLength === 'number' &&
    decoder.maxDataLength > 2
  )
    quietDecoder(decoder);
}

/**
 * Noise write batching (checked against @chainsafe/libp2p-noise 17.0.0 over @libp2p/tcp 11.0.28 and
 * @libp2p/utils 7.4.1).
 *
 * What: the encrypted stream's send queue is processed once at the end of the event-loop turn (a
 * `setImmediate`) instead of on every `send`, so the Yamux frames a turn produces for one connection
 * (a request, another stream's reply, window updates) become one Noise message; and that message's
 * length prefix and ciphertext are handed to the socket as one buffer instead of two.
 *
 * Why: Noise encrypts each `send` as its own message and emits [length, ciphertext] as two chunks,
 * which @libp2p/tcp writes with one `socket.write` each; every Yamux frame cost an encryption and two
 * write syscalls (86% of them under 100 bytes). Bytes over `batchFlushBytes` are sent at once, and a
 * connection that needs a drain keeps the library's own handling, so backpressure is unchanged; a
 * close sends what is queued first.
 *
 * Measured: without it, 217 / 42 µs (socket writes per committed transaction in the cluster
 * benchmark: 52 instead of 24).
 */
function batchWrites(stream: EncryptedStreamShape): void {
  const processNow = stream.processSendQueue;
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    try {
      processNow();
    } catch {
      // The library has reset the connection already (a write after the socket closed): the
      // sender it would have thrown to is gone, and so is everything queued.
    }
  };
  stream.processSendQueue = () => {
    if (stream.writableNeedsDrain || stream.writeBuffer.byteLength >= batchFlushBytes) return processNow();
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
    return true;
  };
  const close = stream.close.bind(stream);
  stream.close = (options) => {
    flush();
    return close(options);
  };
  const encrypt = stream.encrypt.bind(stream);
  stream.encrypt = (chunk) => {
    const list = encrypt(chunk);
    if (list instanceof Uint8Array) return list;
    // One buffer, one socket write: the copy costs less than a second write.
    if (!Array.isArray(list.bufs) || list.bufs.length < 2) return list;
    return list.subarray();
  };
  applied.batchedWrites = true;
}

/**
 * Quiet Noise decoder (checked against @chainsafe/libp2p-noise 17.0.0 and @libp2p/utils 7.4.1).
 *
 * What: while fewer than 2 bytes are buffered, the length decoder answers "a message of
 * `maxDataLength` bytes" instead of throwing; LengthPrefixedDecoder then waits for more bytes, exactly
 * as it does for a message not yet complete. Why: it learned that a chunk was used up by catching a
 * RangeError from the length decoder (thrown by uint8arraylist's getUint16), so every received chunk
 * built an Error and captured a stack: about 7% of busy time. Measured: 272 / 50 µs with the
 * library's decoder, 227 / 46 µs throwing one shared RangeError instead, 207 / 42 µs not throwing.
 */
function quietDecoder(decoder: EncryptedStreamShape['decoder']): void {
  const decode = decoder.lengthDecoder;
  const waitForMore = decoder.maxDataLength;
  decoder.lengthDecoder = (data) => {
    if ((data as { byteLength: number }).byteLength < 2) return waitForMore;
    return decode(data);
  };
  applied.quietDecoder = true;
}

/** The parts of @chainsafe/libp2p-yamux 8.0.1's YamuxStream (dist/src/stream.js) we rely on. */
interface YamuxStreamShape {
  state: StreamState;
  recvWindow: number;
  recvWindowCapacity: number;
  sendWindowUpdate(): void;
}

/**
 * Half-window updates (checked against @chainsafe/libp2p-yamux 8.0.1).
 *
 * What: a stream sends a window update only once less than half of its receive window is left (as
 * go-yamux does), instead of after every data frame it receives. Updates that carry a flag still go
 * at once: the first frame of a stream (SYN) and the first answer on an inbound stream (ACK); a paused
 * stream still sends none, and resuming one sends an update only when less than half is left.
 *
 * Why: every data frame cost the receiver an extra frame back (and the sender a frame to read),
 * doubling the frames of a request. The sender may use the whole window it was granted, so skipping
 * an update while half the window is left never stalls it; the update goes as soon as the window is
 * half used, long before the sender runs dry (a sender with an empty window makes the receiver's
 * capacity zero, which is below half). Skipping every update (not only while half the window is left)
 * stalls a reused stream once 256 KiB have crossed it, until the request times out: the likely reason
 * an earlier attempt made things slower (the flow-control tests time out with it).
 * Measured: without it, 214 / 43 µs, and twice the Yamux frames (47 instead of 24 per committed
 * transaction in the cluster benchmark).
 */
function tuneYamuxWindowUpdates(): void {
  if (applied.halfWindowUpdates) return;
  const proto = (YamuxStream as unknown as { prototype?: Partial<YamuxStreamShape> }).prototype;
  if (
    proto === undefined ||
    typeof proto.sendWindowUpdate !== 'function' ||
    typeof StreamState?.Established !== 'number' ||
    typeof StreamState.SYNSent !== 'number'
  )
    return;
  const sendWindowUpdate = proto.sendWindowUpdate;
  proto.sendWindowUpdate = function (this: YamuxStreamShape): void {
    if (
      (this.state === StreamState.Established || this.state === StreamState.SYNSent) &&
      typeof this.recvWindowCapacity === 'number' &&
      typeof this.recvWindow === 'number' &&
      this.recvWindowCapacity * 2 >= this.recvWindow
    )
      return;
    sendWindowUpdate.call(this);
  };
  applied.halfWindowUpdates = true;
}
