// How node and peer results read on a terminal or in a pipe (JSON output is the engine's objects as they are).
import {
  clockOffsetReportedMs,
  describeClockOffset,
  inCommitOrder,
  reachesMajority,
  type ClosestResult,
  type MembersStatus,
  type NodeEvent,
  type NodeStatus,
  type PeerDetail,
  type PeerStatus,
  type PingResult,
  type TimingFigures,
  type TimingsStatus,
} from '../../engine/index.js';

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value >= 100 ? 0 : 1)} ${units[unit]}`;
}

export function formatDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  const parts: string[] = [];
  const days = Math.floor(seconds / 86_400);
  const hours = Math.floor((seconds % 86_400) / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  if (days > 0) parts.push(`${days}d`);
  if (hours > 0 || days > 0) parts.push(`${hours}h`);
  if (minutes > 0 || hours > 0 || days > 0) parts.push(`${minutes}m`);
  parts.push(`${seconds % 60}s`);
  return parts.join(' ');
}

export function formatLatency(ms: number | undefined): string {
  return ms === undefined ? '-' : `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
}

/** `node status` as labelled lines. */
export function statusFields(status: NodeStatus): [string, string][] {
  const { storage, rates } = status;
  const capacity = storage.capacityBytes === 0 ? 'unlimited' : formatBytes(storage.capacityBytes);
  const flags = [status.gateway ? 'gateway' : '', status.bootstrapNode ? 'bootstrap node' : '']
    .filter((flag) => flag !== '')
    .join(', ');
  return [
    ['Peer ID', status.peerId],
    ['Network', status.network],
    ['Role', flags === '' ? status.role : `${status.role} (${flags})`],
    ['Version', status.version],
    ['PID', String(status.pid)],
    ['Data', status.dataDir],
    ['Uptime', formatDuration(status.uptimeMs)],
    ['Addresses', status.listenAddresses.join('\n') || '(none yet)'],
    ...(status.announceAddresses.length > 0
      ? ([['Announced', status.announceAddresses.join('\n')]] as [string, string][])
      : []),
    ['Peers', `${status.peers.length} connected, ${status.dhtTableSize} in the DHT routing table`],
    ...(status.members === undefined
      ? []
      : [
          [
            'Members',
            [
              `${status.members.reachable} of ${status.members.known} reachable (this node included)${reachesMajority(status.members) ? '' : ': fewer than half, so reads and writes that need a majority answer NO_QUORUM'}`,
              ...unreachableLines(status.members),
            ].join('\n'),
          ] as [string, string],
        ]),
    ...clocksField(status.peers),
    ['Cluster size', String(status.clusterSize)],
    ...clientsField(status.clients),
    ['Collections', String(status.collections)],
    [
      'Storage',
      `${formatBytes(storage.bytes)} of ${capacity}, ${storage.blocks} blocks, ${storage.pending} pending transforms`,
    ],
    ...(storage.failure === undefined
      ? []
      : ([['Store', `writes refused: ${storage.failure} (it retries by itself)`]] as [string, string][])),
    [
      'Transactions',
      `${status.pendingTransactions} in flight, ${rates.txPerSec} tx/s, commit p50 ${rates.commitP50Ms} ms, p99 ${rates.commitP99Ms} ms`,
    ],
    ...timingFields(status.timings),
  ];
}

/** `Clocks`: connected peers whose clocks are a second or more from this node's, furthest first. */
function clocksField(peers: readonly PeerStatus[]): [string, string][] {
  const off = peers
    .filter((peer) => Math.abs(peer.clockOffsetMs ?? 0) >= clockOffsetReportedMs)
    .sort((a, b) => Math.abs(b.clockOffsetMs!) - Math.abs(a.clockOffsetMs!));
  if (off.length === 0) return [];
  return [
    [
      'Clocks',
      off.map((peer) => `${peer.id} is ${describeClockOffset(peer.clockOffsetMs!)} this node's`).join('\n'),
    ],
  ];
}

/** `Clients`: the light clients the node serves (older nodes do not say). */
function clientsField(clients: NodeStatus['clients']): [string, string][] {
  if (clients === undefined) return [];
  if (clients === 'any') return [['Clients', 'any peer (--clients any)']];
  if (clients.length === 0) return [['Clients', 'none (node start --clients PEERID serves a light client)']];
  return [['Clients', clients.join('\n')]];
}

/** Request names listed per direction, the most frequent first (the rest are one `--json` away). */
const requestRowsMax = 8;

function timingMs(ms: number): string {
  return ms < 10 ? String(Math.round(ms * 100) / 100) : String(Math.round(ms));
}

function p50p99(figures: TimingFigures): string {
  return `${timingMs(figures.p50Ms)}/${timingMs(figures.p99Ms)}`;
}

/** ` (57/s)` for a request made at least once a second on average (older nodes send no rate). */
function rateText(figures: TimingFigures): string {
  const perSec = (figures as { perSec?: unknown }).perSec;
  if (typeof perSec !== 'number' || !(perSec >= 1)) return '';
  return ` (${perSec < 10 ? Math.round(perSec * 10) / 10 : Math.round(perSec)}/s)`;
}

/** `Commit phases`, `Requests sent` and `Requests served`: where the node's time went lately. */
function timingFields(timings: TimingsStatus | undefined): [string, string][] {
  if (timings === undefined) return [];
  const minutes = timings.windowMs / 60_000;
  const window = minutes === 1 ? 'last minute' : `last ${minutes} min`;
  const phases = inCommitOrder(Object.keys(timings.phases));
  const requests = (figures: Readonly<Record<string, TimingFigures>>): string => {
    const names = Object.keys(figures).sort(
      (a, b) => figures[b]!.count - figures[a]!.count || a.localeCompare(b),
    );
    if (names.length === 0) return `(none in the ${window})`;
    const shown = names
      .slice(0, requestRowsMax)
      .map(
        (name) => `${name} ${figures[name]!.count}×${rateText(figures[name]!)} ${p50p99(figures[name]!)} ms`,
      );
    if (names.length > requestRowsMax) shown.push(`… ${names.length - requestRowsMax} more (--json)`);
    return shown.join('\n');
  };
  return [
    [
      'Commit phases',
      phases.length === 0
        ? `(no transactions in the ${window})`
        : `${phases.map((phase) => `${phase} ${p50p99(timings.phases[phase]!)}`).join(', ')} ms (p50/p99, ${window})`,
    ],
    ['Requests sent', requests(timings.sent)],
    ['Requests served', requests(timings.served)],
    ...(timings.loop === undefined
      ? []
      : ([
          [
            'Event loop',
            `${timings.loop.busyPct}% busy (busiest second ${timings.loop.busyMaxPct}%), timers up to ${timingMs(timings.loop.lateP99Ms)} ms late (p99), ${window}`,
          ],
        ] as [string, string][])),
  ];
}

export const peerColumns = ['PEER', 'DIRECTION', 'LATENCY', 'ADDRESS'] as const;

export function peerRow(peer: PeerStatus): string[] {
  const address = peer.addresses[0] ?? '-';
  return [
    peer.id,
    peer.direction ?? '-',
    formatLatency(peer.latencyMs),
    peer.lightClient === true ? `light client (${address})` : address,
  ];
}

export function peerDetailFields(peer: PeerDetail): [string, string][] {
  return [
    ['Peer ID', peer.id],
    ['This node', peer.self ? 'yes' : 'no'],
    ...(peer.network === undefined ? [] : ([['Network', peer.network]] as [string, string][])),
    ['Connected', peer.connected ? 'yes' : 'no'],
    ...(peer.direction === undefined ? [] : ([['Direction', peer.direction]] as [string, string][])),
    ...(peer.latencyMs === undefined
      ? []
      : ([['Latency', formatLatency(peer.latencyMs)]] as [string, string][])),
    ...(peer.clockOffsetMs === undefined
      ? []
      : ([['Clock', `${describeClockOffset(peer.clockOffsetMs)} this node's`]] as [string, string][])),
    ...(peer.connectedAt === undefined
      ? []
      : ([['Connected at', new Date(peer.connectedAt).toISOString()]] as [string, string][])),
    ['Addresses', peer.addresses.join('\n') || '(none known)'],
  ];
}

export function pingLines(result: PingResult): string[] {
  return [
    ...result.rttsMs.map((ms, i) => `ping ${i + 1} to ${result.peer}: ${formatLatency(ms)}`),
    `min ${formatLatency(result.minMs)}, avg ${formatLatency(result.avgMs)}, max ${formatLatency(result.maxMs)}`,
  ];
}

export function closestRows(result: ClosestResult): string[][] {
  return result.peers.map((peer, i) => [String(i + 1), peer.id, peer.self ? 'this node' : '']);
}

/** One NDJSON log line of a node. */
export function eventLine(event: NodeEvent, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ time: new Date(event.at).toISOString(), ...event, ...extra });
}

/** One line per member this node cannot reach, with how long it has been so; a count of the rest. */
function unreachableLines(members: MembersStatus): string[] {
  const listed = members.unreachable ?? [];
  const lines = listed.map((member) =>
    member.lost
      ? `unreachable: ${member.peerId} for ${formatDuration(member.forMs)}`
      : member.lastSeenAt !== undefined
        ? `unreachable: ${member.peerId} for ${formatDuration(member.forMs)} (last seen before this node restarted)`
        : `unreachable: ${member.peerId}, not reached since this node started ${formatDuration(member.forMs)} ago`,
  );
  const rest = members.known - members.reachable - listed.length;
  if (rest > 0 && listed.length > 0) lines.push(`and ${rest} more unreachable`);
  for (const peer of members.foreign ?? [])
    lines.push(`not a member: ${peer.peerId} holds another database (its collection ${peer.collection})`);
  return lines;
}
