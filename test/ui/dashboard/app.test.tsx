import { expect } from 'chai';
import { EventEmitter } from 'node:events';
import { Text } from 'ink';
import { cleanup, render } from 'ink-testing-library';
import { DashboardApp } from '../../../src/ui/dashboard/app.js';
import { startDashboard } from '../../../src/ui/dashboard/start.js';
import { useNodeStatus } from '../../../src/ui/dashboard/use-node-status.js';
import type { StatusSource } from '../../../src/engine/node/status.js';
import { event, FakeSource, sampleEvents, sampleStatus } from './fixtures.js';
import { frameWhere, lines, plain, resize, settle, type Rendered } from './ink-helpers.js';

const fast = { intervalMs: 10 };

/** A promise with its resolve and reject, for an onQuit the test finishes by hand. */
function deferred() {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function quitSpy(result: () => Promise<void> = () => Promise.resolve()) {
  const spy = Object.assign(
    () => {
      spy.calls++;
      return result();
    },
    { calls: 0 },
  );
  return spy;
}

function renderApp(source: StatusSource, ownsNode: boolean, onQuit: () => Promise<void>): Rendered {
  const rendered = render(
    <DashboardApp source={source} ownsNode={ownsNode} onQuit={onQuit} statusInit={fast} />,
  );
  resize(rendered, { columns: 80, rows: 24 });
  return rendered;
}

/** Types keys one at a time, letting Ink handle each, as a person would. */
async function press(rendered: Rendered, ...keys: string[]): Promise<void> {
  for (const key of keys) {
    rendered.stdin.write(key);
    await settle(5);
  }
}

const lastLine = (rendered: Rendered) => lines(rendered.lastFrame()).at(-1) ?? '';

describe('dashboard app', () => {
  afterEach(() => cleanup());

  describe('live status', () => {
    it('waits for the first status, then shows it', async () => {
      const source = new FakeSource(undefined);
      const rendered = renderApp(source, true, quitSpy());
      await frameWhere(rendered, (f) => f.includes('waiting for the node'));
      source.emit(sampleStatus());
      await frameWhere(rendered, (f) => f.includes('Optimystic 0.1.0') && f.includes('3 peers'));
    });

    it('shows status updates and new events from the source', async () => {
      const source = new FakeSource(sampleStatus(), sampleEvents());
      const rendered = renderApp(source, true, quitSpy());
      await frameWhere(rendered, (f) => f.includes('tx/s') && f.includes('timed out'));
      source.emit(
        sampleStatus({ rates: { ...sampleStatus().rates, txPerSec: 987 }, pendingTransactions: 55 }),
        [event(9000, 'peer:connect', 'peer newcomer connected')],
      );
      const frame = await frameWhere(rendered, (f) => /tx\/s +987/.test(f));
      expect(frame).to.match(/pending 55/);
      expect(frame).to.include('peer newcomer connected');
      expect(frame).to.include('5 events');
    });

    it('never draws inside the source call, and at most once an interval however often it emits', async () => {
      const source = new FakeSource(sampleStatus());
      const rendered = render(
        <DashboardApp source={source} ownsNode onQuit={quitSpy()} statusInit={{ intervalMs: 100 }} />,
      );
      await settle(150);
      const before = rendered.frames.length;
      for (let i = 1; i <= 200; i++) source.emit(sampleStatus({ pendingTransactions: i }));
      expect(rendered.frames.length, 'frames drawn during the emits').to.equal(before);
      await settle(150);
      expect(rendered.frames.length - before).to.equal(1);
      expect(plain(rendered.lastFrame())).to.match(/pending 200/);
      // A steady stream every few ms draws one frame per 100 ms, not one per update.
      const start = rendered.frames.length;
      const startedMs = performance.now();
      for (let i = 0; i < 100; i++) {
        source.emit(sampleStatus({ pendingTransactions: i }));
        await settle(5);
      }
      const elapsedMs = performance.now() - startedMs;
      expect(rendered.frames.length - start).to.be.at.most(Math.ceil(elapsedMs / 100) + 1);
    });

    it('keeps only the newest events, however many arrive', async () => {
      const source = new FakeSource(sampleStatus());
      function Probe() {
        const { events } = useNodeStatus(source, { intervalMs: 5, eventsMax: 3 });
        return <Text>{events.map((e) => e.message).join(',') || 'none'}</Text>;
      }
      const rendered = render(<Probe />);
      for (let i = 0; i < 10; i++) source.emit(sampleStatus(), [event(i, 'info', `e${i}`)]);
      source.emit(
        sampleStatus(),
        Array.from({ length: 2500 }, (_, i) => event(i, 'info', `burst${i}`)),
      );
      await frameWhere(rendered, (f) => f === 'burst2497,burst2498,burst2499');
    });

    it('starts from the events the source already has', async () => {
      const source = new FakeSource(sampleStatus(), sampleEvents());
      function Probe() {
        const { events } = useNodeStatus(source, fast);
        return <Text>{events.length}</Text>;
      }
      const rendered = render(<Probe />);
      expect(plain(rendered.lastFrame())).to.equal('4');
      source.emit(sampleStatus(), [event(5, 'info', 'more')]);
      await frameWhere(rendered, (f) => f === '5');
    });

    it('unsubscribes from the source when unmounted', async () => {
      const source = new FakeSource(sampleStatus());
      const rendered = renderApp(source, true, quitSpy());
      await settle(20);
      expect(source.subscribers).to.equal(1);
      rendered.unmount();
      expect(source.subscribers).to.equal(0);
    });

    it('re-lays itself out when the terminal is resized', async () => {
      const source = new FakeSource(sampleStatus(), sampleEvents());
      const rendered = renderApp(source, true, quitSpy());
      let frame = await frameWhere(rendered, (f) => f.includes('Transactions'));
      expect(lines(frame).find((l) => l.includes('Transactions'))).not.to.include('Events');
      resize(rendered, { columns: 160, rows: 50 });
      frame = await frameWhere(rendered, (f) =>
        lines(f).some((l) => l.includes('Transactions') && l.includes('Events')),
      );
      // One row stays free below the dashboard for the cursor.
      expect(lines(frame)).to.have.length(49);
      resize(rendered, { columns: 80, rows: 24 });
      frame = await frameWhere(rendered, (f) => lines(f).length === 23);
      expect(lines(frame).find((l) => l.includes('Transactions'))).not.to.include('Events');
    });
  });

  describe('quitting the dashboard of node start', () => {
    it('asks before stopping the node, and n returns to the dashboard', async () => {
      const onQuit = quitSpy();
      const rendered = renderApp(new FakeSource(sampleStatus()), true, onQuit);
      await frameWhere(rendered, (f) => f.includes('q quit (stops the node)'));
      await press(rendered, 'q');
      await until(() => lastLine(rendered).includes('Stop the node? (y/n)'), 'Stop the node? (y/n)');
      expect(plain(rendered.lastFrame())).to.include('3 peers');
      await press(rendered, 'n');
      await until(() => lastLine(rendered).includes('q quit (stops the node)'), 'q quit (stops the node)');
      expect(onQuit.calls).to.equal(0);
    });

    it('stops the node on y, once, and says so while it stops', async () => {
      const stopping = deferred();
      const onQuit = quitSpy(() => stopping.promise);
      const rendered = renderApp(new FakeSource(sampleStatus()), true, onQuit);
      await press(rendered, 'q', 'y');
      await until(() => onQuit.calls >= 1, 'onQuit');
      expect(onQuit.calls).to.equal(1);
      await until(() => lastLine(rendered).includes('Stopping the node…'), 'Stopping the node…');
      await press(rendered, 'q', 'y', '\u0003');
      await until(() => onQuit.calls >= 1, 'onQuit');
      expect(onQuit.calls).to.equal(1);
      stopping.resolve();
    });

    it('asks on Ctrl-C too, and a second Ctrl-C confirms', async () => {
      const onQuit = quitSpy();
      const rendered = renderApp(new FakeSource(sampleStatus()), true, onQuit);
      await press(rendered, '\u0003');
      await until(() => lastLine(rendered).includes('Stop the node? (y/n)'), 'Stop the node? (y/n)');
      expect(onQuit.calls).to.equal(0);
      await press(rendered, '\u0003');
      await until(() => onQuit.calls >= 1, 'onQuit');
      expect(onQuit.calls).to.equal(1);
    });

    it('returns from the question on Escape', async () => {
      const onQuit = quitSpy();
      const rendered = renderApp(new FakeSource(sampleStatus()), true, onQuit);
      await press(rendered, 'q', '\u001b');
      await frameWhere(rendered, (f) => (lines(f).at(-1) ?? '').includes('q quit'));
      expect(onQuit.calls).to.equal(0);
    });

    it('ignores y and n when nothing was asked, and other keys while asking', async () => {
      const onQuit = quitSpy();
      const rendered = renderApp(new FakeSource(sampleStatus()), true, onQuit);
      await press(rendered, 'y', 'n', 'x');
      await until(() => lastLine(rendered).includes('q quit'), 'q quit');
      await press(rendered, 'q', 'x', 'q');
      await until(() => lastLine(rendered).includes('Stop the node? (y/n)'), 'Stop the node? (y/n)');
      expect(onQuit.calls).to.equal(0);
    });
  });

  describe('quitting a dashboard attached to a running node', () => {
    it('detaches on q without asking', async () => {
      const onQuit = quitSpy(() => new Promise(() => undefined));
      const rendered = renderApp(new FakeSource(sampleStatus()), false, onQuit);
      await frameWhere(rendered, (f) => f.includes('q detach (the node keeps running)'));
      await press(rendered, 'q');
      await until(() => onQuit.calls >= 1, 'onQuit');
      expect(onQuit.calls).to.equal(1);
      expect(plain(rendered.lastFrame())).not.to.include('Stop the node?');
      await until(() => lastLine(rendered).includes('Detaching…'), 'Detaching…');
    });

    it('detaches on Ctrl-C without asking', async () => {
      const onQuit = quitSpy();
      const rendered = renderApp(new FakeSource(sampleStatus()), false, onQuit);
      await press(rendered, '\u0003');
      await until(() => onQuit.calls >= 1, 'onQuit');
      expect(onQuit.calls).to.equal(1);
    });
  });
});

class FakeStdout extends EventEmitter {
  columns = 100;
  rows = 30;
  readonly output: string[] = [];
  constructor(readonly isTTY: boolean) {
    super();
  }
  write = (chunk: string, callback?: () => void): boolean => {
    this.output.push(chunk);
    callback?.();
    return true;
  };
  get text(): string {
    return this.output.join('');
  }
}

class FakeStdin extends EventEmitter {
  private pending: string | null = null;
  constructor(readonly isTTY: boolean) {
    super();
  }
  type(data: string): void {
    this.pending = data;
    this.emit('readable');
  }
  read = (): string | null => {
    const data = this.pending;
    this.pending = null;
    return data;
  };
  setEncoding(): void {}
  setRawMode(): void {}
  resume(): void {}
  pause(): void {}
  ref(): void {}
  unref(): void {}
}

function streams(tty: boolean, stdinTty = true) {
  const stdout = new FakeStdout(tty);
  const stdin = new FakeStdin(stdinTty);
  return {
    stdout,
    stdin,
    options: {
      stdout: stdout as unknown as NodeJS.WriteStream,
      stdin: stdin as unknown as NodeJS.ReadStream,
    },
  };
}

async function until(predicate: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await settle(5);
  }
}

describe('startDashboard', () => {
  it('exits once the node has stopped after the operator says y', async () => {
    const { stdout, stdin, options } = streams(false);
    const stopping = deferred();
    const onQuit = quitSpy(() => stopping.promise);
    const dashboard = startDashboard(new FakeSource(sampleStatus()), { ownsNode: true, onQuit, ...options });
    let exited = false;
    const waiting = dashboard.waitUntilExit().then(() => (exited = true));
    await until(() => stdout.text.includes('3 peers'), 'the first frame');
    stdin.type('q');
    await until(() => stdout.text.includes('Stop the node? (y/n)'), 'the question');
    stdin.type('y');
    await until(() => onQuit.calls === 1, 'onQuit');
    await settle(30);
    expect(exited, 'exited before the node stopped').to.equal(false);
    stopping.resolve();
    await waiting;
    expect(exited).to.equal(true);
  });

  it('rejects waitUntilExit with the error stopping the node failed with', async () => {
    const { stdin, options } = streams(false);
    const dashboard = startDashboard(new FakeSource(sampleStatus()), {
      ownsNode: false,
      onQuit: () => Promise.reject(new Error('socket closed')),
      ...options,
    });
    await settle(20);
    stdin.type('q');
    let failure: unknown;
    await dashboard.waitUntilExit().catch((error: unknown) => (failure = error));
    expect(failure).to.be.instanceOf(Error).with.property('message', 'socket closed');
  });

  it('closes without asking or calling onQuit when told to', async () => {
    const { options } = streams(false);
    const onQuit = quitSpy();
    const source = new FakeSource(sampleStatus());
    const dashboard = startDashboard(source, { ownsNode: true, onQuit, ...options });
    await settle(20);
    dashboard.close();
    await dashboard.waitUntilExit();
    expect(onQuit.calls).to.equal(0);
    expect(source.subscribers).to.equal(0);
  });

  it('takes the alternate screen on a terminal and gives it back on exit', async () => {
    const { stdout, options } = streams(true);
    const dashboard = startDashboard(new FakeSource(sampleStatus()), {
      ownsNode: true,
      onQuit: quitSpy(),
      ...options,
    });
    expect(stdout.output[0]).to.include('\u001b[?1049h');
    await until(() => stdout.text.includes('3 peers'), 'the first frame');
    expect(stdout.text).not.to.include('\u001b[?1049l');
    dashboard.close();
    await dashboard.waitUntilExit();
    expect(stdout.output.at(-1)).to.include('\u001b[?1049l');
    expect(stdout.listenerCount('resize')).to.equal(0);
  });

  it('leaves the screen alone when the output is not a terminal', async () => {
    const { stdout, options } = streams(false);
    const dashboard = startDashboard(new FakeSource(sampleStatus()), {
      ownsNode: true,
      onQuit: quitSpy(),
      ...options,
    });
    await until(() => stdout.text.includes('3 peers'), 'the first frame');
    dashboard.close();
    await dashboard.waitUntilExit();
    expect(stdout.text).not.to.include('\u001b[?1049');
  });

  it('reads no keys without a terminal on stdin, and says how to stop instead', async () => {
    const { stdout, stdin, options } = streams(false, false);
    const dashboard = startDashboard(new FakeSource(sampleStatus()), {
      ownsNode: true,
      onQuit: quitSpy(),
      ...options,
    });
    await until(() => stdout.text.includes('Ctrl-C stops the node'), 'the footer');
    expect(stdin.listenerCount('readable')).to.equal(0);
    dashboard.close();
    await dashboard.waitUntilExit();
  });
});
