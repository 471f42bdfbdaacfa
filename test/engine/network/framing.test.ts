import { expect } from 'chai';
import { SeededRng } from '../../../src/engine/base/rng.js';
import { isEngineError, type ErrorCode } from '../../../src/engine/base/errors.js';
import {
  ByteBudget,
  decodeFramePayload,
  encodeFrame,
  FrameReader,
  readFrames,
} from '../../../src/engine/network/framing.js';
import { memoryStreamPair } from './memory-stream.js';

function* chunks(...parts: Uint8Array[]): Generator<Uint8Array> {
  for (const part of parts) yield part;
}

async function collect(source: AsyncIterable<Uint8Array>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const frame of source) out.push(decodeFramePayload(frame));
  return out;
}

async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  try {
    await promise;
  } catch (error) {
    expect(isEngineError(error, code), `expected ${code}, got ${String(error)}`).to.equal(true);
    return;
  }
  expect.fail(`expected ${code}, but it resolved`);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

describe('network framing', () => {
  it('round-trips frames however the bytes are split into chunks', async () => {
    const rng = new SeededRng(7);
    const messages = [{ type: 'a' }, { type: 'b', text: 'é'.repeat(300) }, [1, 2, 3], 'x'.repeat(5000), null];
    const wire = concat(messages.map((m) => encodeFrame(m)));
    for (let trial = 0; trial < 50; trial++) {
      const parts: Uint8Array[] = [];
      for (let offset = 0; offset < wire.length;) {
        const size = 1 + rng.int(700);
        parts.push(wire.subarray(offset, offset + size));
        offset += size;
      }
      expect(await collect(readFrames(chunks(...parts)))).to.deep.equal(messages);
    }
  });

  it('refuses to encode a message over the frame limit', () => {
    expect(() => encodeFrame({ text: 'x'.repeat(100) }, 64))
      .to.throw()
      .that.satisfies((e: unknown) => isEngineError(e, 'TOO_LARGE'));
  });

  it('rejects a length prefix over the limit before reading its payload', async () => {
    const prefix = encodeFrame('y'.repeat(1000)).subarray(0, 2);
    function* source(): Generator<Uint8Array> {
      yield prefix;
      throw new Error('read past the length prefix');
    }
    await expectCode(collect(readFrames(source(), { frameBytesMax: 100 })), 'TOO_LARGE');
  });

  it('rejects a stream that ends inside a frame', async () => {
    const frame = encodeFrame({ type: 'x', body: 'z'.repeat(50) });
    await expectCode(collect(readFrames(chunks(frame.subarray(0, frame.length - 3)))), 'BAD_INPUT');
  });

  it('rejects a length prefix that never ends', async () => {
    await expectCode(collect(readFrames(chunks(new Uint8Array(12).fill(0xff)))), 'BAD_INPUT');
  });

  it('rejects payloads that are not UTF-8 JSON, and JSON nested too deeply', () => {
    expect(() => decodeFramePayload(new Uint8Array([0xc3, 0x28])))
      .to.throw()
      .that.satisfies((e: unknown) => isEngineError(e, 'BAD_INPUT'));
    expect(() => decodeFramePayload(new TextEncoder().encode('{"type":')))
      .to.throw()
      .that.satisfies((e: unknown) => isEngineError(e, 'BAD_INPUT'));
    const deep = new TextEncoder().encode('['.repeat(500) + ']'.repeat(500));
    expect(() => decodeFramePayload(deep))
      .to.throw()
      .that.satisfies((e: unknown) => isEngineError(e, 'TOO_LARGE'));
  });

  it('holds incomplete frames against the shared budget and gives the bytes back', async () => {
    const budget = new ByteBudget(1000);
    const frame = encodeFrame('q'.repeat(600));
    const frames = readFrames(chunks(frame.subarray(0, 300), frame.subarray(300)), { budget });
    const first = await frames.next();
    expect(first.done).to.equal(false);
    expect(budget.held).to.equal(0);
    expect((await frames.next()).done).to.equal(true);

    // Two streams each half way through a 600-byte frame exceed a 1000-byte budget.
    const partial = frame.subarray(0, 550);
    const holder = readFrames(
      (async function* () {
        yield partial;
        await new Promise(() => undefined);
      })(),
      { budget },
    );
    const pending = holder.next();
    await new Promise((resolve) => setImmediate(resolve));
    expect(budget.held).to.equal(550);
    await expectCode(collect(readFrames(chunks(partial), { budget })), 'TOO_LARGE');
    expect(budget.held).to.equal(550);
    void pending.catch(() => undefined);
  });

  it('returns held bytes to the budget when a stream fails mid-frame', async () => {
    const budget = new ByteBudget(10_000);
    const frame = encodeFrame('w'.repeat(2000));
    await expectCode(collect(readFrames(chunks(frame.subarray(0, 1500)), { budget })), 'BAD_INPUT');
    expect(budget.held).to.equal(0);
  });
});

describe('frame reader (one per stream, across exchanges)', () => {
  it('keeps bytes read ahead for the next frame and ends cleanly at a frame boundary', async () => {
    const [a, b] = memoryStreamPair();
    const reader = new FrameReader(b);
    a.send(new Uint8Array([...encodeFrame({ n: 1 }), ...encodeFrame({ n: 2 })]));
    await a.close();
    expect(decodeFramePayload((await reader.next())!)).to.deep.equal({ n: 1 });
    expect(decodeFramePayload((await reader.next())!)).to.deep.equal({ n: 2 });
    expect(await reader.next()).to.equal(undefined);
  });

  it('resets the stream on bytes that arrive while no frame is expected', async () => {
    const [a, b] = memoryStreamPair();
    const reader = new FrameReader(b);
    a.send(encodeFrame({ n: 1 }));
    await reader.next();
    reader.expect(false);
    a.send(encodeFrame({ n: 2 }));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(b.status).to.equal('aborted');
    expect(reader.live).to.equal(false);
  });

  it('checks a length prefix before its payload and gives held bytes back to the budget', async () => {
    const budget = new ByteBudget(1024);
    const [a, b] = memoryStreamPair();
    const reader = new FrameReader(b, { frameBytesMax: 100, budget });
    a.send(encodeFrame({ text: 'x'.repeat(200) }).subarray(0, 3));
    try {
      await reader.next();
      expect.fail('read an oversized frame');
    } catch (error) {
      expect(isEngineError(error, 'TOO_LARGE')).to.equal(true);
    }
    expect(b.status).to.equal('aborted');
    expect(budget.held).to.equal(0);
  });
});
