import { expect } from 'chai';
import { EngineError, isEngineError, type ErrorCode } from '../../../src/engine/base/errors.js';
import { encodeFrame, FrameReader } from '../../../src/engine/network/framing.js';
import {
  type Lease,
  type RequestHandler,
  type ServeOutcome,
  type StreamSource,
  sendRequest,
  sendStreamRequest,
  serveRequest,
  serveStream,
  streamReply,
} from '../../../src/engine/network/request-response.js';
import { integer, messageUnion, object, string } from '../../../src/engine/network/schema.js';
import { memoryStreamPair, type MemoryStream } from './memory-stream.js';

const validate = messageUnion({
  echo: object({ text: string() }),
  count: object({ to: integer({ min: 0, max: 1_000_000 }) }),
  fail: object({ code: string() }),
  hang: object({}),
});
type Request = ReturnType<typeof validate>;

const handler: RequestHandler<Request> = async (request, context) => {
  switch (request.type) {
    case 'echo':
      return { text: request.text, from: context.peerId };
    case 'count':
      return streamReply(
        (function* () {
          for (let i = 0; i < request.to; i++) yield i;
        })(),
      );
    case 'fail':
      if (request.code === 'boom') throw new Error('secret internal detail');
      throw new EngineError(request.code as ErrorCode, `failed with ${request.code}`);
    case 'hang':
      return new Promise(() => undefined);
  }
};

/** A server end serving one request and the opener a client uses to reach it. */
function harness(timeoutMs = 2000): {
  open: () => Promise<MemoryStream>;
  outcome: Promise<ServeOutcome>;
  server: MemoryStream;
} {
  const [client, server] = memoryStreamPair();
  const outcome = serveRequest(server, 'peer-a', handler, { validate, timeoutMs });
  return { open: () => Promise.resolve(client), outcome, server };
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

describe('request/response over one stream', () => {
  it('answers a request with a single reply', async () => {
    const { open, outcome } = harness();
    expect(await sendRequest(open, { type: 'echo', text: 'hi' })).to.deep.equal({
      text: 'hi',
      from: 'peer-a',
    });
    expect(await outcome).to.equal('replied');
  });

  it('streams a reply as items ending with an end marker', async () => {
    const { open, outcome } = harness();
    const items: unknown[] = [];
    for await (const item of sendStreamRequest(open, { type: 'count', to: 100 })) items.push(item);
    expect(items).to.deep.equal(Array.from({ length: 100 }, (_, i) => i));
    expect(await outcome).to.equal('replied');
  });

  it('carries an EngineError code back to the requester, hiding internal messages', async () => {
    let h = harness();
    const error = await expectCode(sendRequest(h.open, { type: 'fail', code: 'NOT_FOUND' }), 'NOT_FOUND');
    expect(error.message).to.equal('failed with NOT_FOUND');
    expect(await h.outcome).to.equal('errored');
    h = harness();
    const internal = await expectCode(sendRequest(h.open, { type: 'fail', code: 'boom' }), 'INTERNAL');
    expect(internal.message).to.not.include('secret');
  });

  it('answers a known type with bad fields with BAD_INPUT', async () => {
    const { open, outcome } = harness();
    await expectCode(sendRequest(open, { type: 'echo', text: 42 }), 'BAD_INPUT');
    expect(await outcome).to.equal('errored');
  });

  it('resets the stream on an unknown message type', async () => {
    const { open, outcome, server } = harness();
    const error = await expectCode(sendRequest(open, { type: 'drop-table' }), 'UNAVAILABLE');
    expect(await outcome).to.equal('reset');
    expect(server.status).to.equal('aborted');
    // Delivered, then lost: the requester cannot know whether it was carried out.
    expect(error.details?.['inFlight']).to.equal(true);
  });

  it('does not mark a request that never reached a stream as in flight', async () => {
    const refused = (): Promise<MemoryStream> => Promise.reject(new EngineError('UNAVAILABLE', 'no route'));
    const error = await expectCode(sendRequest(refused, { type: 'echo', text: 'hi' }), 'UNAVAILABLE');
    expect(error.details?.['inFlight']).to.equal(undefined);
  });

  it('resets the stream on bytes that are not a frame of JSON', async () => {
    for (const bytes of [
      new Uint8Array([3, 0xff, 0xfe, 0xfd]),
      new Uint8Array(12).fill(0xff),
      encodeFrame('x'.repeat(100)).subarray(0, 20),
    ]) {
      const [client, server] = memoryStreamPair();
      const outcome = serveRequest(server, 'peer-a', handler, { validate });
      client.send(bytes);
      await client.close();
      expect(await outcome).to.equal('reset');
      expect(server.status).to.equal('aborted');
    }
  });

  it('resets a stream whose length prefix is over the frame limit', async () => {
    const [client, server] = memoryStreamPair();
    const outcome = serveRequest(server, 'peer-a', handler, { validate, frameBytesMax: 1024 });
    client.send(encodeFrame({ type: 'echo', text: 'z'.repeat(5000) }).subarray(0, 3));
    expect(await outcome).to.equal('reset');
  });

  it('gives up on a request the handler does not answer in time, on both sides', async () => {
    const { open, outcome } = harness(100);
    await expectCode(sendRequest(open, { type: 'hang' }, { timeoutMs: 5000 }), 'UNAVAILABLE');
    expect(await outcome).to.equal('reset');
    const second = harness(5000);
    await expectCode(sendRequest(second.open, { type: 'hang' }, { timeoutMs: 100 }), 'TIMEOUT');
    expect(await second.outcome).to.equal('reset');
  });

  it('resets a requester that never finishes its frame (slow sender)', async () => {
    const [client, server] = memoryStreamPair();
    const outcome = serveRequest(server, 'peer-a', handler, { validate, timeoutMs: 100 });
    client.send(encodeFrame({ type: 'echo', text: 'slow' }).subarray(0, 5));
    expect(await outcome).to.equal('reset');
  });

  it('rejects a reply that does not match the requester’s schema', async () => {
    const { open } = harness();
    await expectCode(
      sendRequest(open, { type: 'echo', text: 'x' }, { validate: object({ count: integer() }) }),
      'BAD_INPUT',
    );
  });

  it("aborts the handler's signal when the request times out, whether it was read before or after", async () => {
    const [client, server] = memoryStreamPair();
    let resolveEarly: (reason: unknown) => void = () => undefined;
    const early = new Promise<unknown>((resolve) => (resolveEarly = resolve));
    let context: { signal: AbortSignal } | undefined;
    const watching: RequestHandler<Request> = (_request, requestContext) => {
      context = requestContext;
      requestContext.signal.addEventListener('abort', () => resolveEarly(requestContext.signal.reason), {
        once: true,
      });
      return new Promise(() => undefined);
    };
    const outcome = serveRequest(server, 'peer-a', watching, { validate, timeoutMs: 50 });
    await expectCode(
      sendRequest(() => Promise.resolve(client), { type: 'hang' }, { timeoutMs: 5000 }),
      'UNAVAILABLE',
    );
    expect(isEngineError(await early, 'TIMEOUT')).to.equal(true);
    expect(await outcome).to.equal('reset');
    // A signal first read once the request is over is aborted already.
    const late = memoryStreamPair();
    let lateContext: { signal: AbortSignal } | undefined;
    const lazy: RequestHandler<Request> = (_request, requestContext) => {
      lateContext = requestContext;
      return new Promise(() => undefined);
    };
    const lateOutcome = serveRequest(late[1], 'peer-a', lazy, { validate, timeoutMs: 50 });
    await expectCode(
      sendRequest(() => Promise.resolve(late[0]), { type: 'hang' }, { timeoutMs: 5000 }),
      'UNAVAILABLE',
    );
    expect(await lateOutcome).to.equal('reset');
    expect(lateContext!.signal.aborted).to.equal(true);
    expect(context!.signal.aborted).to.equal(true);
  });

  it('stops the producer when the requester stops reading a streamed reply', async () => {
    const [client, server] = memoryStreamPair();
    let produced = 0;
    const endless: RequestHandler<Request> = () =>
      Promise.resolve(
        streamReply(
          (function* () {
            for (;;) yield produced++;
          })(),
        ),
      );
    const outcome = serveRequest(server, 'peer-a', endless, { validate });
    for await (const item of sendStreamRequest(() => Promise.resolve(client), { type: 'count', to: 1 })) {
      if ((item as number) >= 10) break;
    }
    expect(await outcome).to.equal('reset');
    expect(produced).to.be.below(1000);
  });
});

describe('request/response on reused streams', () => {
  /** A lease on a fresh in-memory stream served by `serveStream`. */
  function served(timeoutMs = 2000): { lease: Lease; server: MemoryStream } {
    const [client, server] = memoryStreamPair();
    void serveStream(server, 'peer-a', handler, { validate, timeoutMs });
    return { lease: { stream: client, reader: new FrameReader(client), reused: false }, server };
  }

  /** A source handing out `first` (as a pooled stream) and fresh served streams after it. */
  function source(first: Lease): { source: StreamSource; fresh: number; released: boolean[] } {
    const state = { fresh: 0, released: [] as boolean[], source: undefined as unknown as StreamSource };
    let pooled: Lease | undefined = { ...first, reused: true };
    state.source = {
      acquire: (_signal, fresh) => {
        if (!fresh && pooled !== undefined) {
          const lease = pooled;
          pooled = undefined;
          return Promise.resolve(lease);
        }
        state.fresh += 1;
        return Promise.resolve(served().lease);
      },
      release: (lease, reusable) => {
        state.released.push(reusable);
        if (reusable) pooled = { ...lease, reused: true };
      },
    };
    return state;
  }

  it('serves request after request on one stream and gives it back after each clean exchange', async () => {
    const { lease } = served();
    const state = source(lease);
    for (let i = 0; i < 3; i++)
      expect(await sendRequest(state.source, { type: 'echo', text: `${i}` })).to.deep.equal({
        text: `${i}`,
        from: 'peer-a',
      });
    const items: unknown[] = [];
    for await (const item of sendStreamRequest(state.source, { type: 'count', to: 5 })) items.push(item);
    expect(items).to.deep.equal([0, 1, 2, 3, 4]);
    await expectCode(sendRequest(state.source, { type: 'fail', code: 'NOT_FOUND' }), 'NOT_FOUND');
    expect(await sendRequest(state.source, { type: 'echo', text: 'last' })).to.include({ text: 'last' });
    expect(state.fresh).to.equal(0);
    expect(state.released).to.deep.equal([true, true, true, true, true, true]);
  });

  it('sends a request again on a new stream when the pooled one was closed (not reset) before any reply', async () => {
    // The responder closed the idle stream as the request crossed: it never saw the request.
    const [client, server] = memoryStreamPair();
    const reader = new FrameReader(client);
    await server.close();
    const state = source({ stream: client, reader, reused: true });
    expect(await sendRequest(state.source, { type: 'echo', text: 'again' })).to.include({ text: 'again' });
    expect(state.fresh).to.equal(1);
    expect(state.released).to.deep.equal([false, true]);
  });

  it('does not send a request again when the pooled stream was reset after it (it may have been served)', async () => {
    const { lease } = served();
    const state = source(lease);
    expect(await sendRequest(state.source, { type: 'echo', text: 'one' })).to.include({ text: 'one' });
    // The responder resets the stream once it has the request (here: an unknown type).
    await expectCode(sendRequest(state.source, { type: 'drop' }), 'UNAVAILABLE');
    expect(state.fresh).to.equal(0);
    expect(state.released).to.deep.equal([true, false]);
  });

  it('sends a request on a new stream when the pooled one was reset before it could be written', async () => {
    const { lease, server } = served();
    const state = source(lease);
    server.abort(new Error('gone'));
    expect(await sendRequest(state.source, { type: 'echo', text: 'two' })).to.include({ text: 'two' });
    expect(state.fresh).to.equal(1);
  });

  it('resets a stream, never giving it back, when its request timed out', async () => {
    const { lease } = served(5000);
    const state = source(lease);
    await expectCode(sendRequest(state.source, { type: 'hang' }, { timeoutMs: 100 }), 'TIMEOUT');
    expect(state.released).to.deep.equal([false]);
    expect(lease.stream.status).to.equal('aborted');
  });

  it('closes a stream that idles past the responder’s idle timeout, with a clean end', async () => {
    const [client, server] = memoryStreamPair();
    const done = serveStream(server, 'peer-a', handler, { validate, idleTimeoutMs: 100 });
    const reader = new FrameReader(client);
    const state = source({ stream: client, reader, reused: false });
    expect(await sendRequest(state.source, { type: 'echo', text: 'x' })).to.include({ text: 'x' });
    expect(await reader.next()).to.equal(undefined);
    await client.close();
    await done;
    expect(server.status).to.equal('closed');
  });
});
