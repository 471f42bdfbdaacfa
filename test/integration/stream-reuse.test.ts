import { expect } from 'chai';
import type { Libp2p } from 'libp2p';
import { multiaddr } from '@multiformats/multiaddr';
import { isEngineError, type ErrorCode } from '../../src/engine/base/errors.js';
import {
  decodeFramePayload,
  encodeFrame,
  protocolId,
  schema,
  streamReply,
  type NetworkInit,
  type NetworkNode,
} from '../../src/engine/network/index.js';
import { FrameReader } from '../../src/engine/network/framing.js';
import { NodePool, eventually } from './network-helpers.js';

const validate = schema.messageUnion({
  echo: schema.object({ text: schema.string() }),
  count: schema.object({ to: schema.integer({ min: 0, max: 1000 }) }),
  hang: schema.object({}),
  fail: schema.object({}),
});

async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  try {
    await promise;
  } catch (error) {
    expect(isEngineError(error, code), `expected ${code}, got ${String(error)}`).to.equal(true);
    return;
  }
  expect.fail(`expected ${code}, but it resolved`);
}

describe('network: request streams are reused', function () {
  this.timeout(60_000);
  let pool: NodePool;
  let server: NetworkNode;
  let client: NetworkNode;

  async function start(serverInit: NetworkInit = {}, clientInit: NetworkInit = {}): Promise<void> {
    server = await pool.start(serverInit);
    await server.handle(
      'echo',
      (request) => {
        switch (request.type) {
          case 'echo':
            return Promise.resolve({ echoed: request.text });
          case 'count':
            return Promise.resolve(streamReply(Array.from({ length: request.to }, (_, i) => i)));
          case 'hang':
            return new Promise(() => undefined);
          case 'fail':
            return Promise.reject(new Error('handler failed'));
        }
      },
      { validate },
    );
    client = await pool.start(clientInit);
    await client.connect(server.addresses()[0]!);
  }

  const echo = (text: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<unknown> =>
    client.request(server.peerId, 'echo', { type: 'echo', text }, options);

  beforeEach(() => {
    pool = new NodePool(77_001);
  });

  afterEach(async () => {
    await pool.stopAll();
  });

  it('sends later requests to a peer on the stream the first one opened', async () => {
    await start();
    for (let i = 0; i < 5; i++) expect(await echo(`${i}`)).to.deep.equal({ echoed: `${i}` });
    expect(client.stats()).to.include({ streamsOpened: 1, streamsReused: 4, idleStreams: 1 });
    expect(server.stats().served.replied).to.equal(5);
    expect(server.stats()).to.include({ inboundStreams: 0, idleInboundStreams: 1 });
    // A streamed reply read to its end leaves the stream reusable too, and so does a remote error.
    const items: unknown[] = [];
    for await (const item of client.requestStream(server.peerId, 'echo', { type: 'count', to: 50 }))
      items.push(item);
    expect(items).to.have.length(50);
    await expectCode(client.request(server.peerId, 'echo', { type: 'echo', text: 7 }), 'BAD_INPUT');
    await expectCode(client.request(server.peerId, 'echo', { type: 'fail' }), 'INTERNAL');
    expect(await echo('after')).to.deep.equal({ echoed: 'after' });
    expect(client.stats()).to.include({ streamsOpened: 1, streamsReused: 8 });
    expect(server.stats().served).to.deep.equal({ replied: 7, errored: 2, reset: 0 });
  });

  it('keeps one stream per concurrent requester', async () => {
    await start();
    for (let round = 0; round < 5; round++)
      await Promise.all(Array.from({ length: 4 }, (_, i) => echo(`${round}.${i}`)));
    expect(client.stats().streamsOpened).to.be.at.most(4);
    expect(client.stats().streamsReused).to.be.at.least(16);
  });

  it('never reuses a stream whose request timed out, was cancelled or was reset', async () => {
    await start();
    expect(await echo('first')).to.deep.equal({ echoed: 'first' });
    await expectCode(client.request(server.peerId, 'echo', { type: 'hang' }, { timeoutMs: 200 }), 'TIMEOUT');
    expect(client.stats()).to.include({ streamsOpened: 1, idleStreams: 0 });
    expect(await echo('second')).to.deep.equal({ echoed: 'second' });
    expect(client.stats().streamsOpened).to.equal(2);
    const controller = new AbortController();
    const cancelled = client.request(server.peerId, 'echo', { type: 'hang' }, { signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    await expectCode(cancelled, 'INTERRUPTED');
    expect(client.stats().idleStreams).to.equal(0);
    // An unknown type makes the server reset the stream.
    await expectCode(client.request(server.peerId, 'echo', { type: 'drop' }), 'UNAVAILABLE');
    expect(client.stats().idleStreams).to.equal(0);
    // A consumer that stops reading a streamed reply early abandons (resets) its stream.
    for await (const item of client.requestStream(server.peerId, 'echo', { type: 'count', to: 100 }))
      if ((item as number) >= 3) break;
    expect(client.stats().idleStreams).to.equal(0);
    const opened = client.stats().streamsOpened;
    expect(await echo('third')).to.deep.equal({ echoed: 'third' });
    expect(client.stats().streamsOpened).to.equal(opened + 1);
    await eventually('the server released every reset stream', () => server.stats().inboundStreams === 0);
    expect(server.stats().idleInboundStreams).to.equal(1);
  });

  it('closes idle pooled streams after the idle timeout, on both sides', async () => {
    await start({}, { requestStreamIdleMs: 200 });
    expect(await echo('x')).to.deep.equal({ echoed: 'x' });
    expect(client.stats().idleStreams).to.equal(1);
    await eventually('the requester closed its idle stream', () => client.stats().idleStreams === 0);
    await eventually('the server saw it close', () => server.stats().idleInboundStreams === 0);
    expect(await echo('y')).to.deep.equal({ echoed: 'y' });
    expect(client.stats().streamsOpened).to.equal(2);
  });

  it('opens a new stream when the peer closed a pooled one (its idle timeout) or the connection went', async () => {
    await start({ servedStreamIdleMs: 200 });
    expect(await echo('x')).to.deep.equal({ echoed: 'x' });
    await eventually('the server closed the idle stream', () => server.stats().idleInboundStreams === 0);
    await eventually('the requester dropped it', () => client.stats().idleStreams === 0);
    expect(await echo('y')).to.deep.equal({ echoed: 'y' });
    expect(client.stats().streamsOpened).to.equal(2);
    // The connection goes away under an idle pooled stream: the next request dials again.
    await server.disconnect(client.peerId);
    await eventually('the requester dropped the reset stream', () => client.stats().idleStreams === 0);
    expect(await client.request(server.addresses()[0]!, 'echo', { type: 'echo', text: 'z' })).to.deep.equal({
      echoed: 'z',
    });
    expect(await echo('w')).to.deep.equal({ echoed: 'w' });
  });

  it('stops reusing streams of a handler that was replaced', async () => {
    await start();
    expect(await echo('old')).to.deep.equal({ echoed: 'old' });
    await server.handle('echo', () => Promise.resolve('new handler'), { validate: schema.anyMessage });
    await eventually('the requester dropped the retired stream', () => client.stats().idleStreams === 0);
    expect(await echo('x')).to.equal('new handler');
    await server.unhandle('echo');
    await eventually('the requester dropped the retired stream', () => client.stats().idleStreams === 0);
    await expectCode(echo('gone'), 'UNAVAILABLE');
  });

  describe('a raw peer on one stream', () => {
    let raw: Libp2p;
    type RawStream = Awaited<ReturnType<Libp2p['dialProtocol']>>;

    async function rawStream(): Promise<{ stream: RawStream; reader: FrameReader }> {
      raw = await pool.raw();
      await raw.dial(multiaddr(server.addresses()[0]));
      const stream = await raw.dialProtocol(multiaddr(server.addresses()[0]), protocolId('default', 'echo'));
      return { stream, reader: new FrameReader(stream) };
    }

    async function ask(stream: RawStream, reader: FrameReader, text: string): Promise<unknown> {
      stream.send(encodeFrame({ type: 'echo', text }));
      const payload = await reader.next();
      reader.expect(false);
      reader.expect(true);
      return decodeFramePayload(payload!);
    }

    it('is served request after request, and reset on a malformed frame in the middle', async () => {
      await start();
      const { stream, reader } = await rawStream();
      for (let i = 0; i < 3; i++)
        expect(await ask(stream, reader, `${i}`)).to.deep.equal({ type: 'reply', value: { echoed: `${i}` } });
      stream.send(new Uint8Array(12).fill(0xff));
      await expectCode(reader.next(), 'UNAVAILABLE');
      await eventually('the server reset the stream', () => server.stats().served.reset === 1);
      expect(server.stats().served.replied).to.equal(3);
      expect(stream.status).to.not.equal('open');
    });

    it('is reset when it sends an unknown type, or a second request before the first is answered', async () => {
      await start();
      let { stream, reader } = await rawStream();
      expect(await ask(stream, reader, 'a')).to.deep.equal({ type: 'reply', value: { echoed: 'a' } });
      stream.send(encodeFrame({ type: 'drop' }));
      await expectCode(reader.next(), 'UNAVAILABLE');
      ({ stream, reader } = await rawStream());
      expect(await ask(stream, reader, 'b')).to.deep.equal({ type: 'reply', value: { echoed: 'b' } });
      stream.send(
        new Uint8Array([...encodeFrame({ type: 'hang' }), ...encodeFrame({ type: 'echo', text: 'c' })]),
      );
      await expectCode(reader.next(), 'UNAVAILABLE');
      await eventually('both streams were reset', () => server.stats().served.reset === 2);
    });

    it('ends cleanly when the requester closes between requests', async () => {
      await start();
      const { stream, reader } = await rawStream();
      expect(await ask(stream, reader, 'a')).to.deep.equal({ type: 'reply', value: { echoed: 'a' } });
      await stream.close();
      expect(await reader.next()).to.equal(undefined);
      await eventually('the server released the stream', () => server.stats().idleInboundStreams === 0);
      expect(server.stats().served).to.deep.equal({ replied: 1, errored: 0, reset: 0 });
    });
  });
});
