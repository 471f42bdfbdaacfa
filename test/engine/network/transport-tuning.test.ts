import { expect } from 'chai';
import net from 'node:net';
import { YamuxStream } from '@chainsafe/libp2p-yamux/stream';
import { SeededRng } from '../../../src/engine/base/rng.js';
import {
  createNetworkNode,
  privateKeyFromSeed,
  schema,
  streamReply,
  type NetworkNode,
} from '../../../src/engine/network/index.js';
import { transportTuning } from '../../../src/engine/network/transport-tuning.js';

// Real libp2p over 127.0.0.1: what these tests check (socket writes and Yamux frames per request) only
// exists on the real transport stack.

const validate = schema.messageUnion({
  echo: schema.object({ text: schema.string({ charsMax: 4 * 1024 * 1024 }) }),
  big: schema.object({ bytes: schema.integer({ min: 0, max: 4 * 1024 * 1024 }) }),
  count: schema.object({
    to: schema.integer({ min: 0, max: 1000 }),
    bytes: schema.integer({ min: 0, max: 65536 }),
  }),
});

/** Counts calls of a prototype method while `run` runs. */
async function counting<T extends object>(
  proto: T,
  method: keyof T & string,
  run: () => Promise<void>,
): Promise<number> {
  const original = proto[method] as unknown as (...args: unknown[]) => unknown;
  let calls = 0;
  (proto as Record<string, unknown>)[method] = function (this: unknown, ...args: unknown[]): unknown {
    calls += 1;
    return original.apply(this, args);
  };
  try {
    await run();
  } finally {
    (proto as Record<string, unknown>)[method] = original;
  }
  return calls;
}

describe('transport tuning on two nodes over 127.0.0.1', function () {
  this.timeout(60_000);
  const rng = new SeededRng(7);
  let server: NetworkNode;
  let client: NetworkNode;

  beforeEach(async () => {
    server = await createNetworkNode({ privateKey: await privateKeyFromSeed(rng.bytes(32)) });
    await server.handle(
      'echo',
      (request) => {
        switch (request.type) {
          case 'echo':
            return Promise.resolve({ text: request.text });
          case 'big':
            return Promise.resolve({ text: 'y'.repeat(request.bytes) });
          case 'count':
            return Promise.resolve(
              streamReply(
                Array.from({ length: request.to }, (_, i) => ({ i, pad: 'z'.repeat(request.bytes) })),
              ),
            );
        }
      },
      { validate },
    );
    client = await createNetworkNode({ privateKey: await privateKeyFromSeed(rng.bytes(32)) });
    await client.connect(server.addresses()[0]!);
  });

  afterEach(async () => {
    await Promise.all([client.stop(), server.stop()]);
  });

  const echo = (text: string): Promise<unknown> =>
    client.request(server.peerId, 'echo', { type: 'echo', text });

  it('applies every adjustment to the connections it makes', async () => {
    await echo('warm');
    expect(transportTuning()).to.deep.equal({
      batchedWrites: true,
      quietDecoder: true,
      halfWindowUpdates: true,
    });
  });

  it('writes a small request and its reply with one socket write each', async () => {
    await echo('warm');
    const requests = 50;
    const sockets = net.Socket.prototype as unknown as Record<string, unknown>;
    const writes = await counting(sockets, '_writeGeneric', async () => {
      for (let i = 0; i < requests; i++) await echo(`request ${i}`);
    });
    // Before: a length prefix and a ciphertext per frame, and a window update each way: about 8.
    expect(writes / requests).to.be.at.most(2.2);
  });

  it('sends no window update per data frame on a reused stream', async () => {
    await echo('warm');
    const requests = 50;
    const proto = YamuxStream.prototype as unknown as Record<string, unknown>;
    const updates = await counting(proto, 'handleWindowUpdate', async () => {
      for (let i = 0; i < requests; i++) await echo(`request ${i}`);
    });
    // Before: one each way per request (100 here).
    expect(updates).to.be.at.most(10);
  });

  it('carries multi-megabyte requests and replies both ways', async () => {
    const text = 'x'.repeat(1_900_000);
    expect(await echo(text)).to.deep.equal({ text });
    const reply = await client.request<{ text: string }>(server.peerId, 'echo', {
      type: 'big',
      bytes: 1_900_000,
    });
    expect(reply.text.length).to.equal(1_900_000);
  });

  it('keeps data flowing on a reused stream far past its first window', async () => {
    // 40 replies of 200 kB on pooled streams: several times the 256 KiB initial window of each.
    for (let i = 0; i < 40; i++) {
      const reply = await client.request<{ text: string }>(server.peerId, 'echo', {
        type: 'big',
        bytes: 200_000,
      });
      expect(reply.text.length).to.equal(200_000);
    }
    let items = 0;
    for await (const _item of client.requestStream(server.peerId, 'echo', {
      type: 'count',
      to: 200,
      bytes: 60_000,
    }))
      items += 1;
    expect(items).to.equal(200);
  });

  it('serves many concurrent large requests without stalling flow control', async () => {
    const text = 'w'.repeat(300_000);
    const replies = await Promise.all(Array.from({ length: 48 }, () => echo(text)));
    expect(replies.every((reply) => (reply as { text: string }).text.length === 300_000)).to.equal(true);
  });

  it('coalesces requests of one turn but never streamed requests', async () => {
    // A requester that pools no stream opens one per exchange: streams opened count exchanges.
    const unpooled = await createNetworkNode(
      { privateKey: await privateKeyFromSeed(rng.bytes(32)) },
      { requestStreamsIdlePerPeerMax: 0 },
    );
    try {
      await unpooled.connect(server.addresses()[0]!);
      const echoed = (text: string): Promise<unknown> =>
        unpooled.request(server.peerId, 'echo', { type: 'echo', text });
      expect(await Promise.all([echoed('a'), echoed('b'), echoed('c')])).to.deep.equal([
        { text: 'a' },
        { text: 'b' },
        { text: 'c' },
      ]);
      expect(unpooled.stats().streamsOpened).to.equal(1);
      const streamed = async (): Promise<number> => {
        let items = 0;
        for await (const _item of unpooled.requestStream(server.peerId, 'echo', {
          type: 'count',
          to: 3,
          bytes: 1,
        }))
          items += 1;
        return items;
      };
      expect(await Promise.all([streamed(), streamed()])).to.deep.equal([3, 3]);
      expect(unpooled.stats().streamsOpened).to.equal(3);
    } finally {
      await unpooled.stop();
    }
  });
});
