import { expect } from 'chai';
import { cleanup } from 'ink-testing-library';
import { Dashboard, Waiting, type FooterView } from '../../../src/ui/dashboard/components/dashboard.js';
import { toViewModel, type TerminalSize } from '../../../src/ui/dashboard/view-model.js';
import type { NodeEvent, NodeStatus } from '../../../src/engine/node/status.js';
import { emptyStatus, event, ownPeerId, peer, sampleEvents, sampleStatus } from './fixtures.js';
import { lines, plain, renderAt } from './ink-helpers.js';

const footer: FooterView = { text: 'q quit', tone: 'dim', prominent: false };

function draw(status: NodeStatus, events: readonly NodeEvent[], size: TerminalSize): string[] {
  const view = toViewModel(status, events, size);
  return lines(renderAt(<Dashboard view={view} footer={footer} />, size).lastFrame());
}

function lineWith(frame: readonly string[], text: string): string {
  const line = frame.find((l) => l.includes(text));
  expect(line, `a line with ${JSON.stringify(text)} in\n${frame.join('\n')}`).not.to.equal(undefined);
  return line!;
}

function rowOf(frame: readonly string[], text: string): number {
  return frame.findIndex((l) => l.includes(text));
}

describe('dashboard components', () => {
  afterEach(() => cleanup());

  for (const size of [
    { columns: 80, rows: 24 },
    { columns: 160, rows: 50 },
  ]) {
    describe(`at ${size.columns}x${size.rows}`, () => {
      it('shows identity, flags, uptime and addresses in the header', () => {
        const frame = draw(sampleStatus({ bootstrapNode: true }), [], size);
        const first = lineWith(frame, 'Optimystic 0.1.0');
        expect(first).to.include(size.columns >= 160 ? ownPeerId : '12D3…dvxGJTKx');
        expect(first).to.match(/up 2h 03m\s*$/);
        const tags = lineWith(frame, 'network testnet');
        for (const tag of ['transaction node', 'gateway', 'bootstrap node', 'cluster size 3'])
          expect(tags).to.include(tag);
        expect(lineWith(frame, 'listen')).to.include('/ip4/0.0.0.0/tcp/4001');
        expect(plain(frame.join('\n'))).to.include('announce /ip4/203.0.113.7/tcp/4001');
      });

      it('shows tx/s, commit latency p50 and p99 with sparklines, and pending transactions', () => {
        const frame = draw(sampleStatus(), [], size);
        expect(lineWith(frame, 'tx/s')).to.match(/tx\/s +12 +▁▂▃▅█▆ +pending 3/);
        expect(lineWith(frame, 'p50')).to.match(/p50 +8\.4 ms +▅▆▆▇██ +p99 42 ms/);
      });

      it("shows where a commit's time goes: each phase's p50, in commit order", () => {
        const phase = (p50Ms: number) => ({
          count: 9,
          perSec: 0.15,
          p50Ms,
          p99Ms: p50Ms * 2,
          maxMs: p50Ms * 3,
        });
        const timings = {
          windowMs: 60_000,
          phases: { decide: phase(7.43), pend: phase(2), execute: phase(0.66), finish: phase(12.6) },
          sent: {},
          served: {},
        };
        const frame = draw(sampleStatus({ timings }), [], size);
        expect(lineWith(frame, 'phases')).to.match(
          /phases +execute 0\.7 · pend 2 · decide 7\.4 · finish 13 ms/,
        );
        expect(lineWith(draw(sampleStatus(), [], size), 'phases')).to.match(/phases +—/);
      });

      it('shows the requests the node served for others per second, by protocol, busiest first', () => {
        const served = (perSec: number) => ({
          count: Math.round(perSec * 60),
          perSec,
          p50Ms: 1,
          p99Ms: 2,
          maxMs: 3,
        });
        const timings = {
          windowMs: 60_000,
          phases: {},
          sent: {},
          served: {
            'repo.pend': served(31.5),
            'repo.apply': served(33),
            'consensus.batch': served(33.2),
            'tail.view': served(0.4),
          },
        };
        const frame = draw(sampleStatus({ timings }), [], size);
        // A node that coordinates nothing still shows what it does: here it decides and holds blocks.
        expect(lineWith(frame, 'served')).to.match(/served +98\/s · repo 65 · consensus 33 · tail 0\.4/);
        expect(lineWith(draw(sampleStatus(), [], size), 'served')).to.match(/served +—/);
      });

      it('shows storage used against capacity and what the node holds', () => {
        const frame = draw(sampleStatus(), [], size);
        expect(lineWith(frame, 'used')).to.match(/used +█+░+ 256 MiB of 1\.0 GiB 25%/);
        expect(lineWith(frame, 'collections')).to.include('5 collections · 1,234 blocks · 7 pends');
      });

      it('says when the store refuses writes, and still fits the terminal', () => {
        const failure = 'data directory /var/lib/optimystic/store failed: IO error: No space left on device';
        const status = sampleStatus({ storage: { ...sampleStatus().storage, failure } });
        const frame = draw(status, sampleEvents(), size);
        expect(plain(lineWith(frame, 'writes refused'))).to.include('writes refused: No space left on de');
        expect(rowOf(frame, 'writes refused')).to.be.greaterThan(rowOf(frame, 'collections'));
        expect(frame).to.have.length(size.rows);
        expect(frame[frame.length - 1]).to.include('q quit');
        expect(plain(draw(sampleStatus(), [], size).join('\n'))).to.not.include('writes refused');
      });

      it('lists peers fastest first with latency, and the connection and DHT counts', () => {
        const frame = draw(sampleStatus(), [], size);
        expect(lineWith(frame, 'Peers')).to.include('3 peers · 4 connections · DHT 17');
        const fast = rowOf(frame, '12D3…Fast0001');
        const middle = rowOf(frame, '12D3…Midd0002');
        const slow = rowOf(frame, '12D3…Slow0003');
        expect(fast).to.be.greaterThan(-1);
        expect(fast).to.be.lessThan(middle);
        expect(middle).to.be.lessThan(slow);
        expect(frame[fast]).to.match(/12D3…Fast0001 +4\.2 ms +out +2h 02m +10\.0\.0\.1:4001/);
        expect(frame[slow]).to.match(/240 ms +in /);
      });

      it('shows the event log with peers joining and leaving and errors', () => {
        const frame = draw(sampleStatus(), sampleEvents(), size);
        expect(lineWith(frame, 'Events')).to.include('4 events');
        expect(lineWith(frame, 'join')).to.include('peer 12D3…Fast0001 connected');
        expect(lineWith(frame, 'left')).to.include('peer 12D3…Gone0009 disconnected');
        expect(lineWith(frame, 'error')).to.include('commit to collection "orders" timed out');
        expect(rowOf(frame, 'node started')).to.be.lessThan(rowOf(frame, 'timed out'));
      });

      it('fills the terminal without going past its edges', () => {
        const many = Array.from({ length: 60 }, (_, i) =>
          peer(`12D3KooWManyManyManyManyManyManyManyManyManyMany${String(i).padStart(4, '0')}`, {
            latencyMs: i,
          }),
        );
        const events = Array.from({ length: 100 }, (_, i) =>
          event(i, 'info', `message ${i} ${'x'.repeat(i * 3)}`),
        );
        const frame = draw(sampleStatus({ peers: many }), events, size);
        expect(frame).to.have.length(size.rows);
        for (const line of frame) expect([...line].length, line).to.be.at.most(size.columns);
        expect(frame[frame.length - 1]).to.include('q quit');
        expect(plain(frame.join('\n'))).to.include('message 99');
        expect(plain(frame.join('\n'))).to.match(/\+\d+ more/);
      });

      it('renders a node with no peers, no history and no events', () => {
        const frame = draw(emptyStatus(), [], size);
        expect(lineWith(frame, 'no peers connected')).to.be.a('string');
        expect(lineWith(frame, 'no events yet')).to.be.a('string');
        expect(lineWith(frame, 'used')).to.include('0 B (no capacity limit)');
        expect(lineWith(frame, 'tx/s')).to.match(/tx\/s +0 +pending 0/);
      });
    });
  }

  it('stacks the panels when narrow', () => {
    const frame = draw(sampleStatus(), sampleEvents(), { columns: 80, rows: 24 });
    const titles = ['Transactions', 'Storage', 'Peers', 'Events'].map((t) => rowOf(frame, `─ ${t}`));
    expect(titles.every((row) => row > 0)).to.equal(true);
    expect([...titles].sort((a, b) => a - b)).to.deep.equal(titles);
    expect(new Set(titles).size).to.equal(4);
    expect(frame.join('\n')).not.to.include('╭');
  });

  it('sets the panels in two columns when wide, with the event log on the right', () => {
    const frame = draw(sampleStatus(), sampleEvents(), { columns: 160, rows: 50 });
    const top = lineWith(frame, 'Transactions');
    expect(top).to.include('Events');
    expect(top.indexOf('Transactions')).to.be.lessThan(top.indexOf('Events'));
    expect(top.indexOf('Events')).to.be.greaterThan(80);
    const peers = lineWith(frame, '4.2 ms');
    expect(peers.indexOf('12D3…Fast0001')).to.be.within(0, 79);
    const joined = lineWith(frame, 'peer 12D3…Fast0001 connected');
    expect(joined.indexOf('connected')).to.be.greaterThan(80);
  });

  it('cuts panels off above the footer on a terminal too short for them', () => {
    for (const size of [
      { columns: 80, rows: 12 },
      { columns: 120, rows: 12 },
      { columns: 30, rows: 6 },
    ]) {
      const frame = draw(sampleStatus(), sampleEvents(), size);
      expect(frame, `${size.columns}x${size.rows}`).to.have.length(size.rows);
      expect(frame[frame.length - 1], `${size.columns}x${size.rows}`).to.match(/^ q quit *$/);
      for (const line of frame) expect([...line].length).to.be.at.most(size.columns);
    }
  });

  it('shows a waiting screen before the first status', () => {
    const frame = lines(
      renderAt(<Waiting size={{ columns: 80, rows: 23 }} footer={footer} />, {
        columns: 80,
        rows: 24,
      }).lastFrame(),
    );
    expect(frame[0]).to.include('waiting for the node');
    expect(frame).to.have.length(23);
    expect(frame[22]).to.include('q quit');
  });

  it('draws the footer it is given', () => {
    const view = toViewModel(sampleStatus(), [], { columns: 80, rows: 24 });
    const frame = lines(
      renderAt(
        <Dashboard view={view} footer={{ text: 'Stop the node? (y/n)', tone: 'warn', prominent: true }} />,
        { columns: 80, rows: 24 },
      ).lastFrame(),
    );
    expect(frame[frame.length - 1]).to.include('Stop the node? (y/n)');
  });
});
