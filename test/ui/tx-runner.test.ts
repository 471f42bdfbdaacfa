import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import type { TxOutcome, TxRequest } from '../../src/engine/index.js';
import type { InputLine } from '../../src/ui/cli/tx-lines.js';
import { parseInputLine, runTxLines, type TxResultLine } from '../../src/ui/cli/tx-runner.js';

function line(number: number, text: string | Buffer): InputLine {
  return { number, kind: 'text', bytes: typeof text === 'string' ? Buffer.from(text) : text };
}

function lines(items: readonly InputLine[]): AsyncIterable<InputLine> {
  return Readable.from(items, { objectMode: true }) as AsyncIterable<InputLine>;
}

/** An emit callback that records what it is given. */
function recorder(): {
  readonly emitted: TxResultLine[];
  readonly emit: (line: TxResultLine) => Promise<void>;
} {
  const emitted: TxResultLine[] = [];
  return { emitted, emit: (line) => (emitted.push(line), Promise.resolve()) };
}

function putLine(number: number, key: string): InputLine {
  return line(number, JSON.stringify({ actions: [{ collection: 'c', op: 'put', key, value: number }] }));
}

const ok = (request: TxRequest): TxOutcome => ({
  ok: true,
  trx: `trx-${(request.actions[0] as { key: string }).key}`,
  commit: { c: { rev: 1 } },
  results: [],
  attempts: 1,
});

describe('tx runner', () => {
  it('emits results in input order even when later transactions finish first', async () => {
    const input = Array.from({ length: 40 }, (_, i) => putLine(i + 1, `k${i}`));
    let inFlight = 0;
    let inFlightMax = 0;
    const { emitted, emit } = recorder();
    const summary = await runTxLines(
      lines(input),
      async (request) => {
        inFlight++;
        inFlightMax = Math.max(inFlightMax, inFlight);
        await sleep(Math.floor(Math.random() * 8));
        inFlight--;
        return ok(request);
      },
      { concurrency: 8, emit },
    );
    expect(emitted.map((r) => (r.ok ? r.trx : 'failed'))).to.deep.equal(input.map((_, i) => `trx-k${i}`));
    expect(inFlightMax).to.be.at.most(8).and.at.least(2);
    expect(summary).to.deep.equal({ lines: 40, firstFailure: undefined, interrupted: false });
  });

  it('keeps starting lines while an earlier one is still running, and emits them after it', async () => {
    // Line 1 takes long (a replayed transaction, say); with 2 at once the other slot keeps working.
    const input = Array.from({ length: 12 }, (_, i) => putLine(i + 1, `k${i}`));
    let release!: () => void;
    const slow = new Promise<void>((resolve) => (release = resolve));
    const finishedWhileFirstRan: string[] = [];
    let firstDone = false;
    const { emitted, emit } = recorder();
    const running = runTxLines(
      lines(input),
      async (request) => {
        const key = (request.actions[0] as { key: string }).key;
        if (key === 'k0') await slow;
        else {
          await sleep(1);
          if (!firstDone) finishedWhileFirstRan.push(key);
        }
        return ok(request);
      },
      { concurrency: 2, emit },
    );
    while (finishedWhileFirstRan.length < 11) await sleep(2);
    expect(emitted).to.deep.equal([]);
    firstDone = true;
    release();
    const summary = await running;
    expect(finishedWhileFirstRan).to.have.length(11);
    expect(emitted.map((r) => (r.ok ? r.trx : 'failed'))).to.deep.equal(input.map((_, i) => `trx-k${i}`));
    expect(summary.lines).to.equal(12);
  });

  it('holds at most heldResultsMax lines behind one still running', async () => {
    const input = Array.from({ length: 30 }, (_, i) => putLine(i + 1, `k${i}`));
    let release!: () => void;
    const slow = new Promise<void>((resolve) => (release = resolve));
    const started: string[] = [];
    const { emitted, emit } = recorder();
    const running = runTxLines(
      lines(input),
      async (request) => {
        const key = (request.actions[0] as { key: string }).key;
        started.push(key);
        if (key === 'k0') await slow;
        return ok(request);
      },
      { concurrency: 2, heldResultsMax: 5, emit },
    );
    await sleep(30);
    // k0 and four finished lines behind it fill the five places; nothing more starts until k0 ends.
    expect(started).to.deep.equal(['k0', 'k1', 'k2', 'k3', 'k4']);
    release();
    await running;
    expect(started).to.have.length(30);
    expect(emitted).to.have.length(30);
  });

  it('never passes a bad line to the database, and reports each with its own error line', async () => {
    const seen: TxRequest[] = [];
    const { emitted, emit } = recorder();
    const input = [
      putLine(1, 'a'),
      line(2, '{"actions":['),
      line(3, Buffer.from([0xc3, 0x28])),
      line(4, '   '),
      { number: 5, kind: 'too-large', bytes: undefined } as const,
      putLine(6, 'b'),
    ];
    const summary = await runTxLines(
      lines(input),
      (request) => (seen.push(request), Promise.resolve(ok(request))),
      {
        concurrency: 3,
        emit,
      },
    );
    expect(seen).to.have.length(2);
    expect(emitted.map((r) => (r.ok ? 'ok' : r.error.code))).to.deep.equal([
      'ok',
      'BAD_INPUT',
      'BAD_INPUT',
      'BAD_INPUT',
      'TOO_LARGE',
      'ok',
    ]);
    expect(summary.firstFailure).to.equal('BAD_INPUT');
  });

  it('names the first failure in input order, not the first to finish', async () => {
    const summary = await runTxLines(
      lines([putLine(1, 'slow'), putLine(2, 'fast')]),
      async (request): Promise<TxOutcome> => {
        const key = (request.actions[0] as { key: string }).key;
        if (key === 'slow') {
          await sleep(20);
          return { ok: false, error: { code: 'EXPECT_FAILED', message: 'guard', action: 0 } };
        }
        return { ok: false, error: { code: 'CONFLICT', message: 'lost' } };
      },
      { concurrency: 2, emit: () => Promise.resolve() },
    );
    expect(summary.firstFailure).to.equal('EXPECT_FAILED');
  });

  it('keeps the action index of an engine failure, and turns a thrown error into an INTERNAL line', async () => {
    const { emitted, emit } = recorder();
    await runTxLines(
      lines([putLine(1, 'a'), putLine(2, 'b')]),
      async (request): Promise<TxOutcome> => {
        await sleep(1);
        if ((request.actions[0] as { key: string }).key === 'a') {
          return { ok: false, error: { code: 'EXPECT_FAILED', message: 'balance\nbelow min', action: 0 } };
        }
        throw new Error('boom');
      },
      { concurrency: 1, emit },
    );
    expect(emitted).to.deep.equal([
      { ok: false, error: { code: 'EXPECT_FAILED', message: 'balance; below min', action: 0 } },
      { ok: false, error: { code: 'INTERNAL', message: 'boom' } },
    ]);
  });

  it('starts no new line once interrupted, but reports the ones already running', async () => {
    const controller = new AbortController();
    const { emitted, emit } = recorder();
    const summary = await runTxLines(
      lines([putLine(1, 'a'), putLine(2, 'b'), putLine(3, 'c'), putLine(4, 'd')]),
      async (request) => {
        controller.abort();
        await sleep(5);
        return ok(request);
      },
      { concurrency: 2, signal: controller.signal, emit },
    );
    expect(summary.interrupted).to.equal(true);
    expect(summary.lines).to.equal(emitted.length);
    expect(emitted.length).to.be.within(1, 2);
  });

  it('lets running transactions finish before giving up when results cannot be emitted', async () => {
    let finished = 0;
    let thrown: unknown;
    await runTxLines(
      lines([putLine(1, 'a'), putLine(2, 'b'), putLine(3, 'c')]),
      async (request) => {
        await sleep(10);
        finished++;
        return ok(request);
      },
      {
        concurrency: 3,
        emit: () => Promise.reject(new Error('stdout closed')),
      },
    ).catch((error: unknown) => (thrown = error));
    expect((thrown as Error).message).to.equal('stdout closed');
    expect(finished).to.equal(3);
  });

  it('strips a UTF-8 byte-order mark from the first line', () => {
    const parsed = parseInputLine(
      line(1, `\uFEFF${JSON.stringify({ actions: [{ collection: 'c', op: 'get', key: 'k' }] })}`),
    );
    expect(parsed).to.have.property('actions');
  });
});
