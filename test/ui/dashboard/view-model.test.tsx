import { expect } from 'chai';
import type { NodeEvent, NodeStatus } from '../../../src/engine/node/status.js';
import { formatClock } from '../../../src/ui/dashboard/format.js';
import { footerRows, toViewModel, type DashboardViewModel } from '../../../src/ui/dashboard/view-model.js';
import { emptyStatus, event, ownPeerId, peer, sampleEvents, sampleStatus, startedAt } from './fixtures.js';

const narrow = { columns: 80, rows: 24 };
const wide = { columns: 160, rows: 50 };

function manyPeers(n: number) {
  return Array.from({ length: n }, (_, i) =>
    peer(`12D3KooWPeerPeerPeerPeerPeerPeerPeerPeerPeer${String(i).padStart(4, '0')}`, { latencyMs: 100 + i }),
  );
}

function manyEvents(n: number): NodeEvent[] {
  return Array.from({ length: n }, (_, i) => event(i * 1000, 'info', `event number ${i}`));
}

/** Rows the drawn screen takes, counted the way the components lay the view model out. */
function rowsUsed(vm: DashboardViewModel): number {
  const header = 2 + vm.header.addresses.length;
  const peers =
    (vm.network.heading !== undefined ? 1 : 0) +
    vm.network.peers.length +
    (vm.network.morePeers > 0 ? 1 : 0) +
    (vm.network.empty !== undefined ? 1 : 0);
  const events = vm.events.rows.length + (vm.events.empty !== undefined ? 1 : 0);
  if (vm.layout.mode === 'narrow')
    return header + (1 + 4) + (1 + 2) + (1 + peers) + (1 + events) + footerRows;
  const left = 6 + 4 + 2 + 1 + Math.max(0, peers - (vm.network.heading !== undefined ? 1 : 0));
  const right = 2 + events;
  return header + Math.max(left, right) + footerRows;
}

function allStrings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(allStrings);
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(allStrings);
  return [];
}

describe('dashboard view model', () => {
  describe('layout', () => {
    it('stacks panels below 110 columns and sets them in two columns from there', () => {
      expect(toViewModel(sampleStatus(), [], narrow).layout.mode).to.equal('narrow');
      expect(toViewModel(sampleStatus(), [], { columns: 109, rows: 40 }).layout.mode).to.equal('narrow');
      expect(toViewModel(sampleStatus(), [], { columns: 110, rows: 40 }).layout.mode).to.equal('wide');
      const { layout } = toViewModel(sampleStatus(), [], wide);
      expect(layout.mode).to.equal('wide');
      expect(layout.leftWidth + 1 + layout.rightWidth).to.equal(160);
    });

    it('fills exactly the terminal height when there are more peers and events than rows', () => {
      const status = sampleStatus({ peers: manyPeers(80) });
      for (const size of [
        narrow,
        wide,
        { columns: 120, rows: 40 },
        { columns: 100, rows: 30 },
        { columns: 200, rows: 70 },
      ]) {
        expect(rowsUsed(toViewModel(status, manyEvents(200), size)), `${size.columns}x${size.rows}`).to.equal(
          size.rows,
        );
      }
    });

    it('never needs more rows than the terminal has, whatever the lists', () => {
      for (const peers of [0, 1, 3, 9, 40]) {
        for (const events of [0, 1, 5, 60]) {
          for (const size of [narrow, wide, { columns: 110, rows: 24 }, { columns: 90, rows: 30 }]) {
            const vm = toViewModel(sampleStatus({ peers: manyPeers(peers) }), manyEvents(events), size);
            expect(
              rowsUsed(vm),
              `${peers} peers, ${events} events at ${size.columns}x${size.rows}`,
            ).to.be.at.most(size.rows);
          }
        }
      }
    });

    it('shares the narrow rows between peers and events, each taking what the other leaves', () => {
      const fewPeers = toViewModel(sampleStatus(), manyEvents(100), narrow);
      expect(fewPeers.network.peers).to.have.length(3);
      expect(fewPeers.events.rows).to.have.length(24 - 14 - 3);
      const fewEvents = toViewModel(sampleStatus({ peers: manyPeers(100) }), sampleEvents(), narrow);
      expect(fewEvents.events.rows).to.have.length(4);
      expect(fewEvents.network.peers.length + 1).to.equal(24 - 14 - 4);
    });

    it('keeps every line within the terminal width', () => {
      const status = sampleStatus({ peers: manyPeers(5), dataDir: `/very/${'long/'.repeat(40)}data` });
      const events = [event(0, 'error', 'x'.repeat(500)), ...sampleEvents()];
      for (const size of [narrow, wide, { columns: 110, rows: 30 }]) {
        const vm = toViewModel(status, events, size);
        const width = vm.layout.mode === 'wide' ? vm.layout.leftWidth - 4 : size.columns - 2;
        const tags = vm.header.tags.map((t) => t.text).join(' · ');
        expect(tags.length, 'tags').to.be.at.most(size.columns - 2);
        for (const line of vm.header.addresses)
          expect(9 + line.text.length, line.label).to.be.at.most(size.columns - 2);
        for (const row of vm.network.peers) {
          expect([row.id, row.latency, row.direction, row.since, row.address].join('').length).to.be.at.most(
            width,
          );
        }
        const eventWidth = vm.layout.mode === 'wide' ? vm.layout.rightWidth - 4 : size.columns - 2;
        for (const row of vm.events.rows)
          expect(`${row.time} ${row.label} ${row.text}`.length).to.be.at.most(eventWidth);
      }
    });

    it('does not throw on tiny or zero terminal sizes', () => {
      for (const status of [sampleStatus(), emptyStatus()]) {
        for (const size of [
          { columns: 0, rows: 0 },
          { columns: 1, rows: 1 },
          { columns: 10, rows: 5 },
          { columns: 40, rows: 10 },
          { columns: 110, rows: 3 },
          { columns: Number.NaN, rows: -4 },
        ]) {
          expect(
            () => toViewModel(status, sampleEvents(), size),
            `${size.columns}x${size.rows}`,
          ).not.to.throw();
        }
      }
    });
  });

  describe('header', () => {
    it('shows the whole peer id when it fits and a short one when it does not', () => {
      expect(toViewModel(sampleStatus(), [], wide).header.peerId).to.equal(ownPeerId);
      expect(toViewModel(sampleStatus(), [], narrow).header.peerId).to.equal('12D3…dvxGJTKx');
    });

    it('shows version, network, role, cluster size and uptime', () => {
      const { header } = toViewModel(sampleStatus(), [], wide);
      expect(header.title).to.equal('Optimystic 0.1.0');
      expect(header.uptime).to.equal('up 2h 03m');
      expect(header.tags.map((t) => t.text)).to.include.members([
        'network testnet',
        'transaction node',
        'cluster size 3',
        'pid 4242',
        '/var/lib/optimystic',
      ]);
    });

    it('shows the gateway and bootstrap flags only when set', () => {
      const gatewayOnly = toViewModel(sampleStatus(), [], wide).header.tags.map((t) => t.text);
      expect(gatewayOnly).to.include('gateway').and.not.include('bootstrap node');
      const both = toViewModel(
        sampleStatus({ role: 'storage', bootstrapNode: true }),
        [],
        wide,
      ).header.tags.map((t) => t.text);
      expect(both).to.include.members(['storage node', 'gateway', 'bootstrap node']);
      const neither = toViewModel(sampleStatus({ gateway: false }), [], wide).header.tags.map((t) => t.text);
      expect(neither).not.to.include('gateway');
    });

    it('leaves out the tags that do not fit, the data dir first', () => {
      const tags = toViewModel(sampleStatus(), [], narrow).header.tags.map((t) => t.text);
      expect(tags).to.include('pid 4242').and.not.include('/var/lib/optimystic');
    });

    it('lists listen and announce addresses on their own lines when wide, without the own peer id', () => {
      const { addresses } = toViewModel(sampleStatus(), [], wide).header;
      expect(addresses).to.deep.equal([
        { label: 'listen', text: '/ip4/0.0.0.0/tcp/4001  /ip6/::/tcp/4001' },
        { label: 'announce', text: '/ip4/203.0.113.7/tcp/4001' },
      ]);
    });

    it('puts the first listen and announce address on one line when narrow, counting the others', () => {
      const { addresses } = toViewModel(sampleStatus(), [], narrow).header;
      expect(addresses).to.deep.equal([
        { label: 'listen', text: '/ip4/0.0.0.0/tcp/4001 +1 · announce /ip4/203.0.113.7/tcp/4001' },
      ]);
    });

    it('says so when the node listens nowhere yet', () => {
      expect(toViewModel(emptyStatus(), [], wide).header.addresses).to.deep.equal([
        { label: 'listen', text: '—' },
      ]);
    });
  });

  describe('transactions', () => {
    it('formats tx/s, p50 and p99 and counts pending transactions', () => {
      const { activity } = toViewModel(sampleStatus(), [], narrow);
      expect(activity).to.include({
        txPerSec: '12',
        p50: '8.4 ms',
        p99: '42 ms',
        p99Tone: 'good',
        pending: '3',
        pendingTone: 'accent',
        hasHistory: true,
      });
    });

    it('draws tx/s and p50 sparklines as wide as the row leaves, newest sample last', () => {
      const { activity } = toViewModel(sampleStatus(), [], narrow);
      // 78 columns inside the padding, less label 6, value 8, side 16 and two spaces.
      expect(activity.txSpark).to.have.length(46);
      expect(activity.txSpark).to.match(/^ +▁▂▃▅█▆$/);
      expect(activity.p50Spark).to.match(/^ +▅▆▆▇██$/);
      const wider = toViewModel(sampleStatus(), [], wide).activity;
      expect(wider.txSpark).to.have.length(79 - 4 - 32);
    });

    it('shows only the newest history that fits the sparkline', () => {
      const history = Array.from({ length: 500 }, (_, i) => i);
      const { activity } = toViewModel(
        sampleStatus({ rates: { ...sampleStatus().rates, txPerSecHistory: history } }),
        [],
        narrow,
      );
      expect(activity.txSpark).to.have.length(46);
      expect(activity.txSpark.endsWith('█')).to.equal(true);
      expect(activity.txSpark.trim()).to.have.length(46);
    });

    it('colours a slow p99 and dims zero pending transactions', () => {
      const slow = (p99: number) =>
        toViewModel(sampleStatus({ rates: { ...sampleStatus().rates, commitP99Ms: p99 } }), [], narrow)
          .activity.p99Tone;
      expect(slow(250)).to.equal('warn');
      expect(slow(1500)).to.equal('bad');
      expect(toViewModel(sampleStatus({ pendingTransactions: 0 }), [], narrow).activity.pendingTone).to.equal(
        'dim',
      );
    });

    it('leaves the sparklines blank before any history', () => {
      const { activity } = toViewModel(emptyStatus(), [], narrow);
      expect(activity.hasHistory).to.equal(false);
      expect(activity.txSpark.trim()).to.equal('');
      expect(activity.txPerSec).to.equal('0');
    });

    it('shows commit latency as not measured until a commit has been timed', () => {
      const { activity } = toViewModel(emptyStatus(), [], narrow);
      expect(activity).to.include({ p50: '—', p99: '—', p99Tone: 'dim' });
    });
  });

  describe('storage', () => {
    it('shows bytes used against capacity with a percentage and a gauge', () => {
      const { storage } = toViewModel(sampleStatus(), [], narrow);
      expect(storage.used).to.equal('256 MiB of 1.0 GiB');
      expect(storage.percent).to.equal('25%');
      expect(storage.gauge).to.deep.equal({ filled: '█'.repeat(10), empty: '░'.repeat(30), tone: 'good' });
    });

    it('colours the gauge as the store fills and past capacity', () => {
      const at = (bytes: number) =>
        toViewModel(
          sampleStatus({ storage: { ...sampleStatus().storage, bytes, capacityBytes: 1000 } }),
          [],
          narrow,
        ).storage;
      expect(at(800).gauge?.tone).to.equal('warn');
      expect(at(950).gauge?.tone).to.equal('bad');
      const over = at(1500);
      expect(over.percent).to.equal('150%');
      expect(over.gauge?.empty).to.equal('');
      expect(over.gauge?.tone).to.equal('bad');
    });

    it('says capacity is unlimited instead of drawing a gauge', () => {
      const { storage } = toViewModel(
        sampleStatus({ storage: { ...sampleStatus().storage, capacityBytes: 0 } }),
        [],
        narrow,
      );
      expect(storage.used).to.equal('256 MiB (no capacity limit)');
      expect(storage).not.to.have.property('gauge');
      expect(storage).not.to.have.property('percent');
    });

    it('counts collections, blocks and pends with singular and plural', () => {
      expect(toViewModel(sampleStatus(), [], narrow).storage.counts).to.equal(
        '5 collections · 1,234 blocks · 7 pends',
      );
      const one = sampleStatus({
        collections: 1,
        storage: { blocks: 1, pending: 1, bytes: 10, capacityBytes: 0 },
      });
      expect(toViewModel(one, [], narrow).storage.counts).to.equal('1 collection · 1 block · 1 pend');
    });
  });

  describe('peers', () => {
    it('summarises peers, connections and the DHT routing table size', () => {
      expect(toViewModel(sampleStatus(), [], narrow).network.summary).to.equal(
        '3 peers · 4 connections · DHT 17',
      );
    });

    it('says how many members it reaches of those it knows, and when that is no majority', () => {
      const summary = (reachable: number, known: number): string =>
        toViewModel(sampleStatus({ members: { known, reachable } }), [], narrow).network.summary;
      expect(summary(4, 5)).to.equal('3 peers · members 4/5 · 4 connections · DHT 17');
      expect(summary(3, 5)).to.equal('3 peers · members 3/5 · 4 connections · DHT 17');
      expect(summary(2, 5)).to.equal('3 peers · members 2/5 (no majority) · 4 connections · DHT 17');
      expect(summary(1, 2)).to.equal('3 peers · members 1/2 (no majority) · 4 connections · DHT 17');
    });

    it('lists the members it cannot reach after the connected peers, as down, with how long', () => {
      const members = {
        known: 5,
        reachable: 3,
        unreachable: [
          { peerId: '12D3KooWDownDownDownDownDownDownDownDownDownDown0005', forMs: 125_000, lost: true },
          { peerId: '12D3KooWGoneGoneGoneGoneGoneGoneGoneGoneGoneGone0006', forMs: 9_000, lost: false },
        ],
      };
      const rows = toViewModel(sampleStatus({ members }), [], wide).network.peers;
      expect(rows.map((r) => r.id.trim())).to.deep.equal([
        '12D3…Fast0001',
        '12D3…Midd0002',
        '12D3…Slow0003',
        '12D3…Down0005',
        '12D3…Gone0006',
      ]);
      expect(rows.slice(3).map((r) => [r.latency.trim(), r.latencyTone, r.since.trim()])).to.deep.equal([
        ['down', 'bad', '2m 05s'],
        ['down', 'bad', '9s'],
      ]);
      expect(rows[3]!.address).to.contain('unreachable');
      // With no peer connected at all, the members that are down still show, not "no peers".
      const alone = toViewModel(sampleStatus({ peers: [], members }), [], wide).network;
      expect(alone.peers.map((r) => r.latency.trim())).to.deep.equal(['down', 'down']);
      expect(alone).not.to.have.property('empty');
      // Short of rows, the last says how many more there are.
      const short = toViewModel(sampleStatus({ members }), [], { columns: 160, rows: 4 }).network;
      expect(short.peers.length + (short.morePeers > 0 ? 1 : 0)).to.be.at.most(5);
      expect(short.peers.length + short.morePeers).to.equal(5);
    });

    it('marks a connected peer that holds another database as no member', () => {
      const other = '12D3KooWMiddMiddMiddMiddMiddMiddMiddMiddMiddMidd0002';
      const members = {
        known: 1,
        reachable: 1,
        unreachable: [],
        foreign: [{ peerId: other, collection: 'accounts' }],
      };
      const rows = toViewModel(sampleStatus({ members }), [], wide).network.peers;
      const row = rows.find((r) => r.id.trim() === '12D3…Midd0002')!;
      expect(row.address).to.contain('another database');
      expect(row.latencyTone).to.equal('bad');
      expect(rows.filter((r) => r.address.includes('another database'))).to.have.length(1);
    });

    it('sorts peers by latency, fastest first, unknown latency last', () => {
      const status = sampleStatus({
        peers: [
          ...sampleStatus().peers,
          peer('12D3KooWQuietQuietQuietQuietQuietQuietQuietQuiet0004', { direction: 'inbound' }),
        ],
      });
      const rows = toViewModel(status, [], wide).network.peers;
      expect(rows.map((r) => r.id.trim())).to.deep.equal([
        '12D3…Fast0001',
        '12D3…Midd0002',
        '12D3…Slow0003',
        '12D3…uiet0004',
      ]);
      expect(rows.map((r) => r.latency.trim())).to.deep.equal(['4.2 ms', '37 ms', '240 ms', '—']);
      expect(rows.map((r) => r.latencyTone)).to.deep.equal(['good', 'good', 'warn', 'dim']);
    });

    it('shows direction, time connected and a compact address for each peer', () => {
      const [fastest] = toViewModel(sampleStatus(), [], wide).network.peers;
      expect(fastest?.direction.trim()).to.equal('out');
      expect(fastest?.address.trim()).to.equal('10.0.0.1:4001');
      // Connected a minute after start, 2h 03m 04s into the run.
      expect(fastest?.since.trim()).to.equal('2h 02m');
    });

    it('marks a light client in the address column', () => {
      const client = peer('12D3KooWClieClieClieClieClieClieClieClieClieClie0009', {
        latencyMs: 1,
        direction: 'inbound',
        lightClient: true,
      });
      const [first] = toViewModel(sampleStatus({ peers: [client] }), [], wide).network.peers;
      expect(first?.address.trim()).to.equal('light client');
    });

    it('puts column titles above the rows when wide', () => {
      expect(toViewModel(sampleStatus(), [], wide).network.heading).to.match(
        /^peer +latency +dir +since +address$/,
      );
      expect(toViewModel(sampleStatus(), [], narrow).network).not.to.have.property('heading');
    });

    it('cuts the list to the rows that fit, keeping the fastest and counting the rest', () => {
      const vm = toViewModel(sampleStatus({ peers: manyPeers(30) }), manyEvents(30), narrow);
      const shown = vm.network.peers.length;
      expect(shown).to.be.greaterThan(0).and.lessThan(30);
      expect(vm.network.morePeers).to.equal(30 - shown);
      expect(vm.network.peers[0]?.latency.trim()).to.equal('100 ms');
    });

    it('says no peers are connected', () => {
      const { network } = toViewModel(emptyStatus(), [], narrow);
      expect(network).to.include({
        summary: '0 peers · 0 connections · DHT 0',
        empty: 'no peers connected',
        morePeers: 0,
      });
      expect(network.peers).to.deep.equal([]);
    });
  });

  describe('events', () => {
    it('keeps the newest events that fit, oldest at the top', () => {
      const vm = toViewModel(sampleStatus(), manyEvents(100), narrow);
      const rows = vm.events.rows;
      expect(rows.length).to.be.greaterThan(3);
      expect(rows[rows.length - 1]?.text).to.equal('event number 99');
      expect(rows[0]?.text).to.equal(`event number ${100 - rows.length}`);
      expect(vm.events.summary).to.equal(`last ${rows.length} of 100`);
    });

    it('shows the time, a label and a tone for each kind', () => {
      const rows = toViewModel(
        sampleStatus(),
        [...sampleEvents(), event(4000, 'node:stop', 'stopping'), event(5000, 'info', 'hello')],
        wide,
      ).events.rows;
      expect(rows.map((r) => [r.label.trim(), r.tone])).to.deep.equal([
        ['start', 'accent'],
        ['join', 'good'],
        ['left', 'warn'],
        ['error', 'bad'],
        ['stop', 'accent'],
        ['info', 'plain'],
      ]);
      expect(rows[0]?.time).to.equal(formatClock(startedAt));
    });

    it('shortens full peer ids inside messages', () => {
      const rows = toViewModel(sampleStatus(), sampleEvents(), wide).events.rows;
      expect(rows[1]?.text).to.equal('peer 12D3…Fast0001 connected');
      expect(rows[2]?.text).to.equal('peer 12D3…Gone0009 disconnected');
    });

    it('cuts long messages to the panel width', () => {
      const [row] = toViewModel(sampleStatus(), [event(0, 'error', 'x'.repeat(500))], narrow).events.rows;
      expect(row?.text).to.have.length(78 - 8 - 5 - 2);
      expect(row?.text.endsWith('…')).to.equal(true);
    });

    it('says there are no events yet', () => {
      expect(toViewModel(sampleStatus(), [], narrow).events).to.deep.equal({
        summary: 'none yet',
        rows: [],
        empty: 'no events yet',
      });
    });
  });

  it('lets nothing from the network put control characters on the screen', () => {
    const hostile = '12D3KooW\u001b[2J\u001b]0;pwned\u0007EvilEvilEvilEvilEvilEvilEvilEvilEvil';
    const status: NodeStatus = sampleStatus({
      network: 'net\u001b[31m',
      peers: [peer(hostile, { addresses: ['/ip4/1.2.3.4/tcp/1\u001b[1A'], latencyMs: 1 })],
      announceAddresses: ['/dns4/x\u001bc/tcp/1'],
    });
    const vm = toViewModel(status, [event(0, 'error', 'bad \u001b[2J\r\nthing', hostile)], wide);
    for (const text of allStrings(vm)) expect(text).not.to.match(/[\u0000-\u001f\u007f-\u009f]/); // eslint-disable-line no-control-regex
    expect(vm.events.rows[0]?.text).to.equal('bad ?[2J thing');
  });

  it('shows a role or event kind from a newer node as sent', () => {
    const vm = toViewModel(
      sampleStatus({ role: 'archive' as NodeStatus['role'] }),
      [{ at: startedAt, kind: 'ring:move' as NodeEvent['kind'], message: 'moved' }],
      wide,
    );
    expect(vm.header.tags.map((t) => t.text)).to.include('archive node');
    expect(vm.events.rows[0]?.label).to.equal('ring…');
  });
});
