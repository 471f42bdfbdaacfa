import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { expect } from 'chai';
import type { Libp2p } from 'libp2p';
import { multiaddr } from '@multiformats/multiaddr';
import { isEngineError } from '../../src/engine/base/errors.js';
import { SeededRng } from '../../src/engine/base/rng.js';
import {
  decodeFramePayload,
  encodeFrame,
  protocolId,
  readFrames,
  schema,
  type NetworkInit,
  type NetworkNode,
} from '../../src/engine/network/index.js';
import { NodePool, eventually } from './network-helpers.js';

type RawStream = Awaited<ReturnType<Libp2p['dialProtocol']>>;

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

const protocol = protocolId('default', 'echo');
const validate = schema.messageUnion({ echo: schema.object({ text: schema.string() }) });
const frameBytesMax = 64 * 1024;
/** Long enough that no reset below can be the deadline's doing; tests that need the deadline set their own. */
const patientTimeoutMs = 30_000;

/** A varint length prefix announcing `length` bytes. */
function lengthPrefix(length: number): Uint8Array {
  const bytes: number[] = [];
  while (length >= 0x80) {
    bytes.push((length & 0x7f) | 0x80);
    length = Math.floor(length / 0x80);
  }
  bytes.push(length);
  return new Uint8Array(bytes);
}

/** Reads a raw stream to its end: whether it was reset, and the frames it carried. */
async function outcome(stream: RawStream, withinMs = 10_000): Promise<{ reset: boolean; frames: unknown[] }> {
  const frames: unknown[] = [];
  const read = (async () => {
    try {
      for await (const payload of readFrames(stream)) frames.push(decodeFramePayload(payload));
      return { reset: false, frames };
    } catch {
      return { reset: true, frames };
    }
  })();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`stream still open after ${withinMs} ms`)), withinMs);
  });
  try {
    return await Promise.race([read, late]);
  } finally {
    clearTimeout(timer);
  }
}

describe('network: hostile input', function () {
  this.timeout(60_000);
  const seed = 424_242;
  let pool: NodePool;
  let server: NetworkNode;

  async function startServer(init: NetworkInit = {}): Promise<NetworkNode> {
    const node = await pool.start({
      frameBytesMax,
      requestTimeoutMs: patientTimeoutMs,
      streamsPerPeerMax: 8,
      inboundBufferedBytesMax: 512 * 1024,
      ...init,
    });
    await node.handle('echo', (request) => Promise.resolve({ echoed: request.text }), { validate });
    await node.handle('echo2', (request) => Promise.resolve({ echoed: request.text }), { validate });
    return node;
  }

  /** A bare libp2p peer connected to the server (both sides done upgrading the connection). */
  async function rawPeer(): Promise<Libp2p> {
    const raw = await pool.raw();
    await raw.dial(multiaddr(server.addresses()[0]));
    await eventually('the server sees the raw peer', () =>
      server.peers().some((peer) => peer.id === raw.peerId.toString()),
    );
    return raw;
  }

  async function open(raw: Libp2p, on = protocol): Promise<RawStream> {
    return raw.dialProtocol(multiaddr(server.addresses()[0]), on, { maxOutboundStreams: 10_000 });
  }

  /** A well-behaved peer still gets answers. */
  async function stillServes(): Promise<void> {
    const client = await pool.start();
    const reply = await client.request(server.addresses()[0]!, 'echo', { type: 'echo', text: 'still here' });
    expect(reply).to.deep.equal({ echoed: 'still here' });
  }

  beforeEach(async () => {
    pool = new NodePool(seed);
    server = await startServer();
  });

  afterEach(async () => {
    await pool.stopAll();
  });

  it('resets streams of random bytes and keeps serving', async () => {
    const raw = await rawPeer();
    const rng = new SeededRng(seed);
    for (let i = 0; i < 30; i++) {
      const stream = await open(raw);
      stream.send(rng.bytes(1 + rng.int(8192)));
      await stream.close();
      const result = await outcome(stream);
      expect(result, `stream ${i}`).to.deep.equal({ reset: true, frames: [] });
    }
    expect(server.stats().served.reset).to.equal(30);
    await stillServes();
  });

  it('resets a stream whose length prefix is over the limit without waiting for its payload', async () => {
    const raw = await rawPeer();
    const stream = await open(raw);
    stream.send(lengthPrefix(frameBytesMax + 1));
    stream.send(new Uint8Array(1024));
    // The stream stays open on our side: only the prefix check can end it before the 30 s deadline.
    expect(await outcome(stream, 10_000)).to.deep.equal({ reset: true, frames: [] });
    const huge = await open(raw);
    huge.send(lengthPrefix(2 ** 40));
    expect((await outcome(huge, 10_000)).reset).to.equal(true);
    expect(server.stats().bufferedBytes).to.equal(0);
    await stillServes();
  });

  it('resets truncated frames and malformed length prefixes', async () => {
    const raw = await rawPeer();
    const whole = encodeFrame({ type: 'echo', text: 'x'.repeat(2000) });
    const payloads = [
      whole.subarray(0, 1),
      whole.subarray(0, whole.length - 1),
      new Uint8Array(11).fill(0xff),
      new Uint8Array(0),
    ];
    for (const bytes of payloads) {
      const stream = await open(raw);
      if (bytes.length > 0) stream.send(bytes);
      await stream.close();
      expect(await outcome(stream)).to.deep.equal({ reset: true, frames: [] });
    }
    await eventually('no bytes are held', () => server.stats().bufferedBytes === 0);
    await stillServes();
  });

  it('resets unknown message types and answers bad fields of a known type with BAD_INPUT', async () => {
    const raw = await rawPeer();
    for (const message of [
      { type: 'drop' },
      { type: 5 },
      { text: 'no type' },
      [],
      'echo',
      null,
      { type: 'constructor' },
    ]) {
      const stream = await open(raw);
      stream.send(encodeFrame(message));
      await stream.close();
      expect(await outcome(stream), JSON.stringify(message)).to.deep.equal({ reset: true, frames: [] });
    }
    const stream = await open(raw);
    stream.send(encodeFrame({ type: 'echo', text: ['not', 'a', 'string'] }));
    await stream.close();
    const answered = await outcome(stream);
    expect(answered.reset).to.equal(false);
    expect(answered.frames).to.have.length(1);
    expect(answered.frames[0]).to.include({ type: 'error', code: 'BAD_INPUT' });
    await stillServes();
  });

  it('holds at most its stream limit for a peer that floods streams, and serves others meanwhile', async () => {
    const raw = await rawPeer();
    const partial = encodeFrame({ type: 'echo', text: 'y'.repeat(100) }).subarray(0, 10);
    const opened = await Promise.allSettled(
      // Spread over two protocols: libp2p limits each per connection, the node limits the peer overall.
      Array.from({ length: 200 }, async (_, i) => {
        const stream = await open(raw, i % 2 === 0 ? protocol : protocolId('default', 'echo2'));
        stream.send(partial);
        return stream;
      }),
    );
    const streams = opened.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
    await eventually(
      'the flood is admitted up to the per-peer limit',
      () => server.stats().inboundStreams === 8,
    );
    await stillServes();
    expect(server.stats().inboundStreams).to.equal(8);
    await eventually(
      'the excess streams are reset',
      () => streams.filter((s) => s.status === 'open').length <= 8,
    );
    for (const stream of streams) stream.abort(new Error('done flooding'));
    await eventually('every flood stream is released', () => server.stats().inboundStreams === 0);
    expect(server.stats().bufferedBytes).to.equal(0);
  });

  it('survives a burst of streams on a connection that is still being set up', async () => {
    const raw = await pool.raw();
    const partial = encodeFrame({ type: 'echo', text: 'early' }).subarray(0, 4);
    await Promise.allSettled(
      Array.from({ length: 100 }, async () => {
        const stream = await open(raw);
        stream.send(partial);
        return stream;
      }),
    );
    await stillServes();
    await raw.stop();
    await eventually('every stream is released', () => server.stats().inboundStreams === 0);
  });

  it('rate-limits a peer that sends more requests than its burst', async () => {
    await pool.stopAll();
    pool = new NodePool(seed + 1);
    server = await startServer({ requestsPerPeerBurst: 20, requestsPerPeerPerSec: 0.001 });
    const client = await pool.start();
    await client.connect(server.addresses()[0]!);
    for (let i = 0; i < 20; i++) await client.request(server.peerId, 'echo', { type: 'echo', text: `${i}` });
    try {
      await client.request(server.peerId, 'echo', { type: 'echo', text: 'one too many' });
      expect.fail('the 21st request was served');
    } catch (error) {
      expect(isEngineError(error, 'UNAVAILABLE')).to.equal(true);
    }
    expect(server.stats().refused).to.equal(1);
  });

  it('resets a sender that never finishes its frame once the request deadline passes', async () => {
    await pool.stopAll();
    pool = new NodePool(seed + 2);
    server = await startServer({ requestTimeoutMs: 300 });
    const raw = await rawPeer();
    const stream = await open(raw);
    stream.send(encodeFrame({ type: 'echo', text: 'slow' }).subarray(0, 6));
    expect((await outcome(stream, 10_000)).reset).to.equal(true);
    expect(server.stats().inboundStreams).to.equal(0);
  });

  it('keeps memory bounded under rounds of streams holding large partial frames', async () => {
    const raws = [await rawPeer(), await rawPeer(), await rawPeer()];
    const almostWhole = new Uint8Array([
      ...lengthPrefix(frameBytesMax - 16),
      ...new Uint8Array(60 * 1024).fill(0x7b),
    ]);
    await stillServes();
    collectGarbage();
    const baseline = process.memoryUsage().heapUsed;
    let bufferedPeak = 0;
    let resets = 0;
    for (let round = 0; round < 6; round++) {
      const streams = (
        await Promise.allSettled(
          raws.flatMap((raw) =>
            Array.from({ length: 8 }, async () => {
              const stream = await open(raw);
              stream.send(almostWhole);
              return stream;
            }),
          ),
        )
      ).flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
      // 24 streams × 60 KiB is ~1.4 MiB against a 512 KiB budget: the excess must be reset, not held.
      await eventually('every stream is either wholly buffered or reset', () => {
        const { bufferedBytes, inboundStreams } = server.stats();
        bufferedPeak = Math.max(bufferedPeak, bufferedBytes);
        const reset = streams.filter((s) => s.status !== 'open').length;
        return (
          reset + inboundStreams === streams.length && bufferedBytes === inboundStreams * almostWhole.length
        );
      });
      bufferedPeak = Math.max(bufferedPeak, server.stats().bufferedBytes);
      resets += streams.filter((s) => s.status !== 'open').length;
      for (const stream of streams) stream.abort(new Error('next round'));
      await eventually(
        'the round is released',
        () => server.stats().inboundStreams === 0 && server.stats().bufferedBytes === 0,
      );
    }
    expect(bufferedPeak).to.be.at.most(512 * 1024);
    expect(resets).to.be.above(0);
    await stillServes();
    collectGarbage();
    const growthBytes = process.memoryUsage().heapUsed - baseline;
    expect(growthBytes, `heap grew by ${growthBytes} bytes`).to.be.below(32 * 1024 * 1024);
    expect(server.stats().trackedPeers).to.be.at.most(10);
  });
});
