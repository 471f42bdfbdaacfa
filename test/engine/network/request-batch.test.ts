import { expect } from 'chai';
import { EngineError, isEngineError, type ErrorCode } from '../../../src/engine/base/errors.js';
import { limits } from '../../../src/engine/base/limits.js';
import { decodeFramePayload, encodeTextFrame, FrameReader } from '../../../src/engine/network/framing.js';
import { RequestBatcher } from '../../../src/engine/network/request-batcher.js';
import {
  batchText,
  type Lease,
  type RequestHandler,
  type ServeOutcome,
  type StreamSource,
  serveStream,
  streamReply,
} from '../../../src/engine/network/request-response.js';
import { integer, messageUnion, object, string } from '../../../src/engine/network/schema.js';
import { memoryStreamPair, type MemoryStream } from './memory-stream.js';

const validate = messageUnion({
  echo: object({ text: string() }),
  count: object({ to: integer({ min: 0, max: 1000 }) }),
  fail: object({ code: string() }),
  gate: object({ name: string() }),
  hang: object({}),
});
type Request = ReturnType<typeof validate>;

/** Gates that `gate` requests wait on, opened by the test. */
interface Gate {
  readonly promise: Promise<void>;
  resolve(): void;
}
const gates = new Map<string, Gate>();
function gate(name: string): Gate {
  let entry = gates.get(name);
  if (entry === undefined) {
    let resolve = (): void => undefined;
    const promise = new Promise<void>((done) => (resolve = done));
    gates.set(name, (entry = { promise, resolve: () => resolve() }));
  }
  return entry;
}

const handler: RequestHandler<Request> = async (request) => {
  switch (request.type) {
    case 'echo':
      return { text: request.text };
    case 'count':
      return streamReply([1, 2, 3]);
    case 'fail':
      throw new EngineError(request.code as ErrorCode, `failed with ${request.code}`);
    case 'gate':
      await gate(request.name).promise;
      return { opened: request.name };
    case 'hang':
      return new Promise(() => undefined);
  }
};

interface Harness {
  source: StreamSource;
  /** Frames the requester wrote, decoded. */
  sent: unknown[];
  /** Streams handed out. */
  opened: number;
  released: boolean[];
  outcomes: ServeOutcome[];
  admitted: number;
  clients: MemoryStream[];
}

/**
 * A source of in-memory streams served by `serveStream`, pooling the stream given back cleanly, and
 * recording every frame the requester writes.
 */
function harness(options: { admitNext?: () => boolean; timeoutMs?: number } = {}): Harness {
  const state: Harness = {
    source: undefined as unknown as StreamSource,
    sent: [],
    opened: 0,
    released: [],
    outcomes: [],
    admitted: 0,
    clients: [],
  };
  let pooled: Lease | undefined;
  state.source = {
    acquire: (_signal, fresh) => {
      if (!fresh && pooled !== undefined) {
        const lease = pooled;
        pooled = undefined;
        return Promise.resolve(lease);
      }
      const [client, server] = memoryStreamPair();
      state.opened += 1;
      state.clients.push(client);
      const send = client.send.bind(client);
      client.send = (data) => {
        state.sent.push(decodeFramePayload(data.subarray(varintBytes(data))));
        return send(data);
      };
      void serveStream(server, 'peer-a', handler, {
        validate,
        timeoutMs: options.timeoutMs ?? 2000,
        onOutcome: (outcome) => state.outcomes.push(outcome),
        admitNext: () => {
          state.admitted += 1;
          return options.admitNext?.() ?? true;
        },
      });
      return Promise.resolve({ stream: client, reader: new FrameReader(client), reused: false });
    },
    release: (lease, reusable) => {
      state.released.push(reusable);
      if (reusable) pooled = { ...lease, reused: true };
    },
  };
  return state;
}

/** Length of the varint prefix at the start of a frame. */
function varintBytes(frame: Uint8Array): number {
  let i = 0;
  while ((frame[i]! & 0x80) !== 0) i++;
  return i + 1;
}

async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<EngineError> {
  try {
    await promise;
  } catch (error) {
    expect(isEngineError(error, code), `expected ${code}, got ${String(error)}`).to.equal(true);
    return error as EngineError;
  }
  return expect.fail(`expected ${code}, but it resolved`);
}

function typeOf(frame: unknown): unknown {
  return (frame as { type?: unknown }).type;
}

describe('request coalescing', () => {
  afterEach(() => {
    for (const entry of gates.values()) entry.resolve();
    gates.clear();
  });

  it('sends a request alone in its turn as a plain request frame', async () => {
    const h = harness();
    const batcher = new RequestBatcher(h.source, limits.frameBytesMax);
    expect(await batcher.request({ type: 'echo', text: 'one' }, {})).to.deep.equal({ text: 'one' });
    expect(h.sent).to.deep.equal([{ type: 'echo', text: 'one' }]);
    expect(h.outcomes).to.deep.equal(['replied']);
  });

  it('sends requests made in one turn as one batch frame and hands each caller its own reply', async () => {
    const h = harness();
    const batcher = new RequestBatcher(h.source, limits.frameBytesMax);
    const replies = await Promise.all(
      ['a', 'b', 'c'].map((text) => batcher.request({ type: 'echo', text }, {})),
    );
    expect(replies).to.deep.equal([{ text: 'a' }, { text: 'b' }, { text: 'c' }]);
    expect(h.sent.map(typeOf)).to.deep.equal(['$batch']);
    expect(h.opened).to.equal(1);
    expect(h.released).to.deep.equal([true]);
    expect(h.outcomes).to.deep.equal(['replied', 'replied', 'replied']);
    // The stream carries plain requests and batches after it.
    expect(await batcher.request({ type: 'echo', text: 'd' }, {})).to.deep.equal({ text: 'd' });
    expect(h.opened).to.equal(1);
  });

  it('answers an item whose fields fail validation with BAD_INPUT, and only that item', async () => {
    const h = harness();
    const batcher = new RequestBatcher(h.source, limits.frameBytesMax);
    const good = batcher.request({ type: 'echo', text: 'fine' }, {});
    const bad = batcher.request({ type: 'echo', text: 42 }, {});
    const failed = batcher.request({ type: 'fail', code: 'NOT_FOUND' }, {});
    expect(await good).to.deep.equal({ text: 'fine' });
    await expectCode(bad, 'BAD_INPUT');
    const error = await expectCode(failed, 'NOT_FOUND');
    expect(error.details?.['remote']).to.equal(true);
    expect(h.released).to.deep.equal([true]);
  });

  it('resets the stream for an unknown type in a batch: every item fails and none is sent again', async () => {
    const h = harness();
    const batcher = new RequestBatcher(h.source, limits.frameBytesMax);
    const good = batcher.request({ type: 'echo', text: 'fine' }, {});
    const unknown = batcher.request({ type: 'drop' }, {});
    await expectCode(good, 'UNAVAILABLE');
    await expectCode(unknown, 'UNAVAILABLE');
    expect(h.opened).to.equal(1);
    expect(h.released).to.deep.equal([false]);
    expect(h.outcomes).to.deep.equal(['reset']);
  });

  it('answers each item as its handler finishes: a slow item does not hold a fast one back', async () => {
    const h = harness();
    const batcher = new RequestBatcher(h.source, limits.frameBytesMax);
    const slow = batcher.request({ type: 'gate', name: 'slow' }, {});
    const fast = batcher.request({ type: 'echo', text: 'fast' }, {});
    expect(await fast).to.deep.equal({ text: 'fast' });
    expect(h.released).to.deep.equal([]);
    gate('slow').resolve();
    expect(await slow).to.deep.equal({ opened: 'slow' });
    expect(h.released).to.deep.equal([true]);
  });

  it("ends only that caller's wait when an item times out; the stream is reset once nobody waits", async () => {
    const h = harness({ timeoutMs: 5000 });
    const batcher = new RequestBatcher(h.source, limits.frameBytesMax);
    const hung = batcher.request({ type: 'hang' }, { timeoutMs: 50 });
    const fine = batcher.request({ type: 'echo', text: 'fine' }, {});
    expect(await fine).to.deep.equal({ text: 'fine' });
    await expectCode(hung, 'TIMEOUT');
    await new Promise((resolve) => setImmediate(resolve));
    expect(h.released).to.deep.equal([false]);
    expect(h.clients[0]!.status).to.equal('aborted');
  });

  it("ends only that caller's wait when its signal aborts, while the others are served", async () => {
    const h = harness();
    const batcher = new RequestBatcher(h.source, limits.frameBytesMax);
    const controller = new AbortController();
    const cancelled = batcher.request({ type: 'gate', name: 'cancelled' }, { signal: controller.signal });
    const other = batcher.request({ type: 'gate', name: 'other' }, {});
    await new Promise((resolve) => setImmediate(resolve));
    controller.abort();
    await expectCode(cancelled, 'INTERRUPTED');
    gate('other').resolve();
    expect(await other).to.deep.equal({ opened: 'other' });
    // The responder still served the cancelled item: the stream ends cleanly once both are answered.
    gate('cancelled').resolve();
    while (h.outcomes.length < 2) await new Promise((resolve) => setImmediate(resolve));
    expect(h.outcomes).to.have.members(['replied', 'replied']);
  });

  it('takes a rate token for every item, and resets the batch when the peer is over its rate', async () => {
    let tokens = 2;
    const h = harness({ admitNext: () => tokens-- > 0 });
    const batcher = new RequestBatcher(h.source, limits.frameBytesMax);
    const three = ['a', 'b', 'c'].map((text) => batcher.request({ type: 'echo', text }, {}));
    expect(await Promise.all(three)).to.have.length(3);
    expect(h.admitted).to.equal(2);
    const more = ['d', 'e', 'f'].map((text) => batcher.request({ type: 'echo', text }, {}));
    for (const request of more) await expectCode(request, 'UNAVAILABLE');
    expect(h.outcomes).to.deep.equal(['replied', 'replied', 'replied']);
  });

  it('answers a batched item whose handler streams its reply with BAD_INPUT', async () => {
    const h = harness();
    const batcher = new RequestBatcher(h.source, limits.frameBytesMax);
    const streamed = batcher.request({ type: 'count', to: 3 }, {});
    const plain = batcher.request({ type: 'echo', text: 'x' }, {});
    await expectCode(streamed, 'BAD_INPUT');
    expect(await plain).to.deep.equal({ text: 'x' });
  });

  it('splits a turn of more than requestBatchItemsMax requests into bounded batches', async () => {
    const h = harness();
    const batcher = new RequestBatcher(h.source, limits.frameBytesMax);
    const count = limits.requestBatchItemsMax + 5;
    const replies = await Promise.all(
      Array.from({ length: count }, (_, i) => batcher.request({ type: 'echo', text: `${i}` }, {})),
    );
    expect(replies.map((reply) => (reply as { text: string }).text)).to.deep.equal(
      Array.from({ length: count }, (_, i) => `${i}`),
    );
    const sizes = h.sent.map((frame) => (frame as { items: unknown[] }).items.length);
    expect(sizes).to.deep.equal([limits.requestBatchItemsMax, 5]);
  });

  it('splits a turn whose requests together would not fit one frame', async () => {
    const h = harness();
    const frameBytesMax = 2500;
    const batcher = new RequestBatcher(h.source, frameBytesMax);
    const text = 'x'.repeat(1000);
    const replies = await Promise.all(
      Array.from({ length: 3 }, () => batcher.request({ type: 'echo', text }, { frameBytesMax })),
    );
    expect(replies).to.have.length(3);
    expect(h.sent.length).to.be.above(1);
  });

  it('resets a stream whose batch frame holds more than requestBatchItemsMax requests', async () => {
    const [client, server] = memoryStreamPair();
    const outcomes: ServeOutcome[] = [];
    const done = serveStream(server, 'peer-a', handler, {
      validate,
      onOutcome: (outcome) => outcomes.push(outcome),
    });
    const items = Array.from({ length: limits.requestBatchItemsMax + 1 }, () => ({
      text: JSON.stringify({ type: 'echo', text: 'x' }),
    }));
    client.send(encodeTextFrame(batchText(items)));
    await done;
    expect(outcomes).to.deep.equal(['reset']);
    expect(client.status).to.not.equal('open');
  });
});
