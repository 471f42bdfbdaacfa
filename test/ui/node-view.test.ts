import { expect } from 'chai';
import type { TimingFigures } from '../../src/engine/index.js';
import { peerDetailFields, peerRow, statusFields } from '../../src/ui/cli/node-view.js';
import { peer, sampleStatus } from './dashboard/fixtures.js';

function figures(count: number, p50Ms: number, p99Ms: number): TimingFigures {
  return { count, perSec: count / 60, p50Ms, p99Ms, maxMs: p99Ms };
}

function field(rows: [string, string][], label: string): string | undefined {
  return rows.find(([name]) => name === label)?.[1];
}

describe('node status as labelled lines', () => {
  it('shows the members reachable of those known, and what fewer than half means', () => {
    expect(field(statusFields(sampleStatus({ members: { known: 5, reachable: 3 } })), 'Members')).to.equal(
      '3 of 5 reachable (this node included)',
    );
    expect(field(statusFields(sampleStatus({ members: { known: 5, reachable: 2 } })), 'Members')).to.equal(
      '2 of 5 reachable (this node included): fewer than half, so reads and writes that need a majority answer NO_QUORUM',
    );
  });

  it('names the members it cannot reach, longest gone first, and counts those it does not list', () => {
    const members = {
      known: 20,
      reachable: 2,
      unreachable: [
        { peerId: '12D3KooWGoneLongAgo', forMs: 3_723_000, lost: true },
        { peerId: '12D3KooWGoneJustNow', forMs: 4_000, lost: false },
      ],
    };
    const before = {
      known: 2,
      reachable: 1,
      unreachable: [{ peerId: '12D3KooWBefore', forMs: 90_000, lost: false, lastSeenAt: 1_700_000_000_000 }],
    };
    expect(field(statusFields(sampleStatus({ members: before })), 'Members')).to.contain(
      'unreachable: 12D3KooWBefore for 1m 30s (last seen before this node restarted)',
    );
    expect(field(statusFields(sampleStatus({ members })), 'Members')).to.equal(
      [
        '2 of 20 reachable (this node included): fewer than half, so reads and writes that need a majority answer NO_QUORUM',
        'unreachable: 12D3KooWGoneLongAgo for 1h 2m 3s',
        'unreachable: 12D3KooWGoneJustNow, not reached since this node started 4s ago',
        'and 16 more unreachable',
      ].join('\n'),
    );
    // Everyone reachable: the line alone.
    expect(
      field(statusFields(sampleStatus({ members: { known: 3, reachable: 3, unreachable: [] } })), 'Members'),
    ).to.equal('3 of 3 reachable (this node included)');
  });

  it('names connected peers that hold another database', () => {
    const members = {
      known: 1,
      reachable: 1,
      unreachable: [],
      foreign: [{ peerId: '12D3KooWOther', collection: 'accounts' }],
    };
    expect(field(statusFields(sampleStatus({ members })), 'Members')).to.equal(
      [
        '1 of 1 reachable (this node included)',
        'not a member: 12D3KooWOther holds another database (its collection accounts)',
      ].join('\n'),
    );
  });

  it('says when the store refuses writes, and only then', () => {
    const failure = 'data directory /d/store failed: IO error: No space left on device';
    const failed = sampleStatus({ storage: { ...sampleStatus().storage, failure } });
    expect(field(statusFields(failed), 'Store')).to.equal(
      `writes refused: ${failure} (it retries by itself)`,
    );
    expect(field(statusFields(sampleStatus()), 'Store')).to.equal(undefined);
  });

  it('shows which light clients the node serves: none, any, or their peer ids', () => {
    const id = '12D3KooWQn3XGcNgeyCw4jaYAUG7uv8R2qadbbBSiwizw6ary3Sa';
    expect(field(statusFields(sampleStatus({ clients: [] })), 'Clients')).to.match(
      /^none \(.*--clients PEERID/,
    );
    expect(field(statusFields(sampleStatus({ clients: 'any' })), 'Clients')).to.match(/^any peer/);
    expect(field(statusFields(sampleStatus({ clients: [id, id.replace('Q', 'R')] })), 'Clients')).to.equal(
      `${id}\n${id.replace('Q', 'R')}`,
    );
    const { clients: _, ...older } = sampleStatus();
    expect(field(statusFields(older), 'Clients')).to.equal(undefined);
  });

  it("names peers whose clocks are a second or more from this node's, furthest first, and says how far", () => {
    const ahead = '12D3KooWAheadAheadAheadAheadAheadAheadAheadAhead0001';
    const behind = '12D3KooWBehindBehindBehindBehindBehindBehindBehind02';
    const close = '12D3KooWCloseCloseCloseCloseCloseCloseCloseClose0003';
    const peers = [
      peer(close, { clockOffsetMs: 40 }),
      peer(ahead, { clockOffsetMs: 3_040 }),
      peer(behind, { clockOffsetMs: -45_001 }),
    ];
    expect(field(statusFields(sampleStatus({ peers })), 'Clocks')).to.equal(
      `${behind} is 45.0 s behind this node's\n${ahead} is 3.0 s ahead of this node's`,
    );
    expect(field(statusFields(sampleStatus({ peers: [peers[0]!] })), 'Clocks')).to.equal(undefined);
    const detail = peerDetailFields({ ...peer(close, { clockOffsetMs: 40 }), self: false, connected: true });
    expect(field(detail, 'Clock')).to.equal("40 ms ahead of this node's");
  });

  it('lists a light client as one in peer list, with the address it came from', () => {
    const id = '12D3KooWClieClieClieClieClieClieClieClieClieClie0009';
    expect(peerRow(peer(id, { lightClient: true, latencyMs: 1 }))[3]).to.equal(
      `light client (/ip4/10.0.0.9/tcp/4001/p2p/${id})`,
    );
    expect(peerRow(peer(id))[3]).to.equal(`/ip4/10.0.0.9/tcp/4001/p2p/${id}`);
  });

  it('shows commit phases in the order a commit takes them, and requests by frequency', () => {
    const rows = statusFields(
      sampleStatus({
        timings: {
          windowMs: 60_000,
          phases: {
            wait: figures(2, 30, 40),
            decide: figures(10, 7.4, 18.2),
            execute: figures(12, 0.7, 4.361),
            finish: figures(10, 0.01, 0.14),
            pend: figures(10, 2, 7.94),
          },
          sent: Object.fromEntries(
            Array.from({ length: 10 }, (_, i) => [`repo.t${i}`, figures(i + 1, 1, 2)] as const),
          ),
          served: {
            'repo.pend': { count: 3412, perSec: 56.87, p50Ms: 0.6, p99Ms: 4, maxMs: 9 },
            'consensus.batch': { count: 120, perSec: 2.04, p50Ms: 1, p99Ms: 3, maxMs: 3 },
            'repo.get': { count: 3, perSec: 0.05, p50Ms: 0.1, p99Ms: 0.2, maxMs: 0.2 },
          },
          loop: { periods: 60, busyPct: 34, busyMaxPct: 61, lateP99Ms: 3.94 },
        },
      }),
    );
    expect(field(rows, 'Commit phases')).to.equal(
      'execute 0.7/4.36, pend 2/7.94, decide 7.4/18, finish 0.01/0.14, wait 30/40 ms (p50/p99, last minute)',
    );
    const sent = field(rows, 'Requests sent')!.split('\n');
    expect(sent).to.have.length(9);
    expect(sent[0]).to.equal('repo.t9 10× 1/2 ms');
    expect(sent[7]).to.equal('repo.t2 3× 1/2 ms');
    expect(sent[8]).to.equal('… 2 more (--json)');
    // A request made at least once a second on average shows its rate too.
    expect(field(rows, 'Requests served')!.split('\n')).to.deep.equal([
      'repo.pend 3412× (57/s) 0.6/4 ms',
      'consensus.batch 120× (2/s) 1/3 ms',
      'repo.get 3× 0.1/0.2 ms',
    ]);
    expect(field(rows, 'Event loop')).to.equal(
      '34% busy (busiest second 61%), timers up to 3.94 ms late (p99), last minute',
    );
  });

  it('says when nothing was timed, and leaves the lines out for a node that does not report timings', () => {
    const idle = statusFields(
      sampleStatus({ timings: { windowMs: 60_000, phases: {}, sent: {}, served: {} } }),
    );
    expect(field(idle, 'Commit phases')).to.equal('(no transactions in the last minute)');
    expect(field(idle, 'Requests served')).to.equal('(none in the last minute)');
    const older = statusFields(sampleStatus());
    expect(field(older, 'Commit phases')).to.equal(undefined);
    expect(field(older, 'Requests sent')).to.equal(undefined);
    expect(field(older, 'Members')).to.equal(undefined);
    expect(field(idle, 'Event loop')).to.equal(undefined);
  });
});
