// Everything the dashboard shows, computed from one node status, the recent events and the terminal
// size: numbers formatted, lists sorted and cut to the rows that fit. Pure; components only draw it.

import type { NodeEvent, NodeEventKind, NodeRole, NodeStatus, PeerStatus } from '../../engine/node/status.js';
import { inCommitOrder, reachesMajority, shortMs, storeFailureGist } from '../../engine/index.js';
import {
  compactAddress,
  counted,
  ellipsizeMiddle,
  ellipsizeEnd,
  fitList,
  formatBytes,
  formatClock,
  formatCount,
  formatDuration,
  formatLatency,
  formatRate,
  gauge,
  padEnd,
  padStart,
  printable,
  shortAddress,
  shortPeerId,
  shortPeerIdWidth,
  sparkline,
} from './format.js';

/** How a piece of text is coloured; components map tones to colours. */
export type Tone = 'plain' | 'dim' | 'accent' | 'good' | 'warn' | 'bad';

/** Narrow stacks the panels under each other; wide sets them in two columns. */
export type LayoutMode = 'narrow' | 'wide';

/** Below this many columns the two-column layout would cut peer addresses and event messages too short. */
export const wideColumnsMin = 110;
/** The key-hint line under the panels (drawn by the app, counted here). */
export const footerRows = 1;
/** Narrow panels are indented by one column on each side. */
const narrowPaddingColumns = 1;
/** A wide panel spends two columns on its border and two on padding. */
const boxChromeColumns = 4;
/** A wide panel spends two rows on its border. */
const boxChromeRows = 2;
/** Space between the two columns of the wide layout. */
const columnGap = 1;
/**
 * Columns of the activity and storage rows: label (`tx/s`, `p50`, `used`), value (`12.4`, `1.2 s`),
 * and the item on the right (`pending 12`, `p99 1.2 s`); the sparkline or gauge takes the rest, with
 * one space either side.
 */
export const metricColumns = { label: 6, value: 8, side: 16 } as const;
/** The widest gauge worth drawing; beyond it the bar reads no better. */
const gaugeWidthMax = 40;
/** Peer table columns: latency, direction, connected-for. */
const latencyWidth = 7;
const directionWidth = 3;
const sinceWidth = 7;
/** Narrower than this and a peer row leaves its address out rather than show a useless stub. */
const addressWidthMin = 12;
/** Address labels (`listen`, `announce`) and the space after them, so the addresses line up. */
export const addressLabelWidth = 9;
/** Event rows: clock time and kind label. */
const clockWidth = 8;
const kindWidth = 5;
/** Round trips above these read as slow / very slow. */
const latencyWarnMs = 200;
const latencyBadMs = 1000;
/** Storage use above these fractions of capacity reads as filling / nearly full. */
const storageWarnFraction = 0.75;
const storageBadFraction = 0.9;

export interface TerminalSize {
  readonly columns: number;
  readonly rows: number;
}

export interface DashboardLayout {
  readonly mode: LayoutMode;
  readonly columns: number;
  readonly rows: number;
  /** Outer widths of the two columns in the wide layout; in the narrow one both are `columns`. */
  readonly leftWidth: number;
  readonly rightWidth: number;
}

export interface Tag {
  readonly text: string;
  readonly tone: Tone;
}

export interface AddressLine {
  readonly label: string;
  readonly text: string;
}

export interface HeaderView {
  /** `Optimystic 0.1.0` */
  readonly title: string;
  /** The whole peer id when it fits, else shortened. */
  readonly peerId: string;
  /** `up 2h 03m` */
  readonly uptime: string;
  /** Network, role, gateway and bootstrap flags, cluster size, pid and data dir: as many as fit on one line. */
  readonly tags: readonly Tag[];
  readonly addresses: readonly AddressLine[];
}

export interface ActivityView {
  readonly txPerSec: string;
  readonly txSpark: string;
  readonly p50: string;
  readonly p50Spark: string;
  readonly p99: string;
  readonly p99Tone: Tone;
  readonly pending: string;
  readonly pendingTone: Tone;
  /** Commit phases at p50 over the last minute (`execute 0.7 · pend 2 · decide 7.4 ms`), or `—`. */
  readonly phases: string;
  /**
   * Requests other nodes made of this one, per second over the last minute, in all and by protocol
   * (`131/s · repo 65 · consensus 33 · tail 33`), or `—`: a node that coordinates nothing (0 tx/s)
   * may still decide every commit of a collection as its tail, or hold its blocks.
   */
  readonly served: string;
  /** Whether any history came with the status (otherwise the sparklines are blank). */
  readonly hasHistory: boolean;
}

export interface StorageView {
  /** `1.2 GiB of 10 GiB`, or `1.2 GiB (no capacity limit)`. */
  readonly used: string;
  /** `12%`; absent when capacity is unlimited. */
  readonly percent?: string;
  /** Absent when capacity is unlimited. */
  readonly gauge?: { readonly filled: string; readonly empty: string; readonly tone: Tone };
  /** `4 collections · 1,234 blocks · 12 pends` */
  readonly counts: string;
  /** Why the store refuses writes (a full disk, say), while it does. */
  readonly failure?: string;
}

/** One peer: each cell padded to its column and starting with the space that separates it from the one before. */
export interface PeerRow {
  readonly id: string;
  readonly latency: string;
  readonly latencyTone: Tone;
  readonly direction: string;
  readonly since: string;
  /** Empty when the panel is too narrow for addresses. */
  readonly address: string;
}

export interface NetworkView {
  /** `5 peers · 7 connections · DHT 12` */
  readonly summary: string;
  /** Column titles aligned with the rows; absent when there is no room for them. */
  readonly heading?: string;
  /**
   * Connected peers sorted by latency (unknown last), then the members this node cannot reach (latency
   * `down`, since: how long), cut to the rows that fit.
   */
  readonly peers: readonly PeerRow[];
  /** Rows not shown for lack of room. */
  readonly morePeers: number;
  /** Shown instead of rows when there are no peers, when there is room for it. */
  readonly empty?: string;
}

export interface EventRow {
  readonly time: string;
  readonly label: string;
  readonly tone: Tone;
  readonly text: string;
}

export interface EventLogView {
  /** `42 events` or `last 10 of 42`. */
  readonly summary: string;
  /** Newest last, cut to the rows that fit. */
  readonly rows: readonly EventRow[];
  readonly empty?: string;
}

export interface DashboardViewModel {
  readonly layout: DashboardLayout;
  readonly header: HeaderView;
  readonly activity: ActivityView;
  readonly storage: StorageView;
  readonly network: NetworkView;
  readonly events: EventLogView;
}

/** Row counts of the fixed parts of each layout (panel content plus chrome). */
const activityRows = 4;
/** The storage panel's rows: use and counts, and while the store refuses writes, why. */
function storageRowsOf(status: NodeStatus): number {
  return status.storage.failure === undefined ? 2 : 3;
}

/**
 * The screen for one status: `size` is the area the dashboard may fill, footer row included. Lists
 * are cut to the rows left over, so the result always fits (down to very small terminals, where
 * panels are cut off at the bottom instead).
 */
export function toViewModel(
  status: NodeStatus,
  events: readonly NodeEvent[],
  size: TerminalSize,
): DashboardViewModel {
  const columns = wholeCells(size.columns);
  const rows = wholeCells(size.rows);
  const mode: LayoutMode = columns >= wideColumnsMin ? 'wide' : 'narrow';
  return mode === 'wide'
    ? wideView(status, events, columns, rows)
    : narrowView(status, events, columns, rows);
}

function wholeCells(n: number): number {
  return Number.isFinite(n) ? Math.max(0, Math.floor(n)) : 0;
}

function narrowView(
  status: NodeStatus,
  events: readonly NodeEvent[],
  columns: number,
  rows: number,
): DashboardViewModel {
  const inner = Math.max(0, columns - 2 * narrowPaddingColumns);
  const header = headerView(status, inner, 'narrow');
  const headerRows = 2 + header.addresses.length;
  // Each narrow panel has a one-row title rule.
  const fixed = headerRows + (1 + activityRows) + (1 + storageRowsOf(status)) + 1 + 1 + footerRows;
  const shared = Math.max(0, rows - fixed);
  const peersWanted = Math.max(1, status.peers.length);
  const eventsWanted = Math.max(1, events.length);
  // Both lists fit, or the short one takes what it needs and the long one the rest, or they halve it.
  const peerRows = Math.min(peersWanted, Math.max(Math.floor(shared / 2), shared - eventsWanted));
  const eventRows = Math.max(0, shared - peerRows);
  return {
    layout: { mode: 'narrow', columns, rows, leftWidth: columns, rightWidth: columns },
    header,
    activity: activityView(status, inner),
    storage: storageView(status, inner),
    network: networkView(status, inner, peerRows, false),
    events: eventLogView(events, status.peerId, inner, eventRows),
  };
}

function wideView(
  status: NodeStatus,
  events: readonly NodeEvent[],
  columns: number,
  rows: number,
): DashboardViewModel {
  const leftWidth = Math.floor((columns - columnGap) / 2);
  const rightWidth = columns - columnGap - leftWidth;
  const leftInner = Math.max(0, leftWidth - boxChromeColumns);
  const rightInner = Math.max(0, rightWidth - boxChromeColumns);
  const header = headerView(status, Math.max(0, columns - 2 * narrowPaddingColumns), 'wide');
  const body = Math.max(0, rows - (2 + header.addresses.length) - footerRows);
  // Left column: activity, storage, then the peer table (with its heading row) takes the rest.
  const peerRows = Math.max(
    0,
    body - (activityRows + boxChromeRows) - (storageRowsOf(status) + boxChromeRows) - boxChromeRows - 1,
  );
  // Right column: the event log, full height.
  const eventRows = Math.max(0, body - boxChromeRows);
  return {
    layout: { mode: 'wide', columns, rows, leftWidth, rightWidth },
    header,
    activity: activityView(status, leftInner),
    storage: storageView(status, leftInner),
    network: networkView(status, leftInner, peerRows, true),
    events: eventLogView(events, status.peerId, rightInner, eventRows),
  };
}

function roleLabel(role: NodeRole): string {
  switch (role) {
    case 'transaction':
      return 'transaction node';
    case 'storage':
      return 'storage node';
    default: {
      // A newer node may report a role this dashboard does not know yet: show it as sent.
      const unknown: never = role;
      return `${printable(String(unknown))} node`;
    }
  }
}

function headerView(status: NodeStatus, width: number, mode: LayoutMode): HeaderView {
  const title = `Optimystic ${printable(status.version)}`;
  const uptime = `up ${formatDuration(status.uptimeMs)}`;
  // Title, id and uptime share the first line, two spaces apart.
  const idRoom = width - title.length - uptime.length - 4;
  const fullId = printable(status.peerId);
  const peerId = fullId.length <= idRoom ? fullId : shortPeerId(status.peerId);

  const tags: Tag[] = [
    { text: `network ${printable(status.network)}`, tone: 'accent' },
    { text: roleLabel(status.role), tone: 'accent' },
  ];
  if (status.gateway) tags.push({ text: 'gateway', tone: 'good' });
  if (status.bootstrapNode) tags.push({ text: 'bootstrap node', tone: 'good' });
  tags.push({ text: `cluster size ${formatCount(status.clusterSize)}`, tone: 'plain' });
  tags.push({ text: `pid ${status.pid}`, tone: 'dim' });
  tags.push({ text: printable(status.dataDir), tone: 'dim' });
  return { title, peerId, uptime, tags: fitTags(tags, width), addresses: addressLines(status, width, mode) };
}

/** The leading tags that fit on one line, three columns apart. */
function fitTags(tags: readonly Tag[], width: number): Tag[] {
  const fitted: Tag[] = [];
  let used = 0;
  for (const tag of tags) {
    const gap = fitted.length === 0 ? 0 : 3;
    if (used + gap + tag.text.length > width) {
      // A long data dir path still shows its end, which is the part that differs between nodes.
      const room = width - used - gap;
      if (room >= 12 && tag.tone === 'dim')
        fitted.push({ text: `…${tag.text.slice(tag.text.length - room + 1)}`, tone: tag.tone });
      break;
    }
    fitted.push(tag);
    used += gap + tag.text.length;
  }
  return fitted;
}

function addressLines(status: NodeStatus, width: number, mode: LayoutMode): AddressLine[] {
  const own = status.peerId;
  const listen = status.listenAddresses.map((a) => shortAddress(a, width, own));
  const announce = status.announceAddresses.map((a) => shortAddress(a, width, own));
  if (mode === 'wide') {
    const labelled = (label: string, items: string[]): AddressLine => ({
      label,
      text: fitList(items, width - addressLabelWidth) || '—',
    });
    const lines = [labelled('listen', listen)];
    if (announce.length > 0) lines.push(labelled('announce', announce));
    return lines;
  }
  // Narrow: one line; the first listen and first announce address share it.
  if (announce.length === 0)
    return [{ label: 'listen', text: fitList(listen, width - 'listen '.length) || '—' }];
  const listenRoom = Math.floor((width - 'listen '.length - ' · announce '.length) / 2);
  const listenText = fitList(listen, listenRoom) || '—';
  const announceRoom = width - 'listen '.length - listenText.length - ' · announce '.length;
  return [{ label: 'listen', text: `${listenText} · announce ${fitList(announce, announceRoom)}` }];
}

function activityView(status: NodeStatus, width: number): ActivityView {
  const rates = status.rates;
  const sparkWidth = Math.max(0, width - metricColumns.label - metricColumns.value - metricColumns.side - 2);
  const hasHistory = rates.txPerSecHistory.length > 0 || rates.commitP50History.length > 0;
  return {
    txPerSec: formatRate(rates.txPerSec),
    txSpark: sparkline(rates.txPerSecHistory, sparkWidth),
    p50: commitLatency(rates.commitP50Ms),
    p50Spark: sparkline(rates.commitP50History, sparkWidth),
    p99: commitLatency(rates.commitP99Ms),
    p99Tone: rates.commitP99Ms > 0 ? latencyTone(rates.commitP99Ms) : 'dim',
    pending: formatCount(status.pendingTransactions),
    pendingTone: status.pendingTransactions > 0 ? 'accent' : 'dim',
    phases: phasesText(status, width - metricColumns.label - 1),
    served: servedText(status, width - metricColumns.label - 1),
    hasHistory,
  };
}

/** The p50 of each commit phase the node timed lately, in commit order, cut to `width`. */
function phasesText(status: NodeStatus, width: number): string {
  const phases = status.timings?.phases ?? {};
  const names = inCommitOrder(Object.keys(phases));
  if (names.length === 0) return '—';
  const items = names.map((name, i) => {
    const text = `${name} ${shortMs(phases[name]!.p50Ms)}`;
    return i === names.length - 1 ? `${text} ms` : text;
  });
  return fitList(items, width, ' · ') || '—';
}

/** Requests served per second, in all then by protocol (the part of the name before its dot), busiest first. */
function servedText(status: NodeStatus, width: number): string {
  const served = status.timings?.served ?? {};
  const byProtocol = new Map<string, number>();
  for (const [name, figures] of Object.entries(served)) {
    // Older nodes report no rate: their count over the window stands in for it.
    const perSec =
      typeof (figures as { perSec?: unknown }).perSec === 'number'
        ? figures.perSec
        : figures.count / Math.max(1, (status.timings?.windowMs ?? 60_000) / 1000);
    if (!(perSec > 0)) continue;
    const protocol = name.split('.')[0] ?? name;
    byProtocol.set(protocol, (byProtocol.get(protocol) ?? 0) + perSec);
  }
  if (byProtocol.size === 0) return '—';
  const total = [...byProtocol.values()].reduce((sum, perSec) => sum + perSec, 0);
  const parts = [...byProtocol]
    .sort(([a, x], [b, y]) => y - x || a.localeCompare(b))
    .map(([protocol, perSec]) => `${protocol} ${formatRate(perSec)}`);
  return fitList([`${formatRate(total)}/s`, ...parts], width, ' · ') || '—';
}

/** A node reports 0 ms until it has timed a commit: show that as "not measured", not as instant. */
function commitLatency(ms: number): string {
  return ms > 0 ? formatLatency(ms) : '—';
}

function storageView(status: NodeStatus, width: number): StorageView {
  const { blocks, pending, bytes, capacityBytes } = status.storage;
  const counts = [
    counted(status.collections, 'collection'),
    counted(blocks, 'block'),
    counted(pending, 'pend'),
  ];
  const countsText = fitList(counts, width, ' · ');
  const { failure } = status.storage;
  const failed =
    failure === undefined ? {} : { failure: `writes refused: ${storeFailureGist(failure)} (${failure})` };
  if (!(capacityBytes > 0))
    return { used: `${formatBytes(bytes)} (no capacity limit)`, counts: countsText, ...failed };
  const fraction = bytes / capacityBytes;
  const used = `${formatBytes(bytes)} of ${formatBytes(capacityBytes)}`;
  const percent = `${Math.floor(fraction * 100)}%`;
  const gaugeWidth = Math.min(
    gaugeWidthMax,
    Math.max(0, width - metricColumns.label - used.length - percent.length - 2),
  );
  const tone: Tone =
    fraction >= storageBadFraction ? 'bad' : fraction >= storageWarnFraction ? 'warn' : 'good';
  return { used, percent, gauge: { ...gauge(fraction, gaugeWidth), tone }, counts: countsText, ...failed };
}

function latencyTone(ms: number | undefined): Tone {
  if (ms === undefined || !Number.isFinite(ms)) return 'dim';
  if (ms >= latencyBadMs) return 'bad';
  if (ms >= latencyWarnMs) return 'warn';
  return 'good';
}

/** Known latencies first, fastest first; unknown last; ties in id order so rows do not jump about. */
export function sortPeers(peers: readonly PeerStatus[]): PeerStatus[] {
  return [...peers].sort((a, b) => {
    const la = a.latencyMs ?? Number.POSITIVE_INFINITY;
    const lb = b.latencyMs ?? Number.POSITIVE_INFINITY;
    if (la !== lb) return la < lb ? -1 : 1;
    return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  });
}

function networkView(status: NodeStatus, width: number, rows: number, withHeading: boolean): NetworkView {
  // Members reachable of those known (this node included), from nodes that report it: fewer than
  // half means what needs a majority answers NO_QUORUM here.
  const members =
    status.members === undefined
      ? ''
      : ` · members ${formatCount(status.members.reachable)}/${formatCount(status.members.known)}${reachesMajority(status.members) ? '' : ' (no majority)'}`;
  const summary = `${counted(status.peers.length, 'peer')}${members} · ${counted(status.connections, 'connection')} · DHT ${formatCount(status.dhtTableSize)}`;
  // Members this node cannot reach follow the connected peers: an operator looks for who is down.
  const down = status.members?.unreachable ?? [];
  if (status.peers.length === 0 && down.length === 0) {
    return { summary, peers: [], morePeers: 0, ...(rows > 0 ? { empty: 'no peers connected' } : {}) };
  }
  const room = width - peerFixedWidth - peerGaps.address.length;
  const addressWidth = room >= addressWidthMin ? room : 0;
  const now = status.startedAt + status.uptimeMs;
  const total = status.peers.length + down.length;
  // When they do not all fit, the last row says how many more there are.
  const shown = total <= rows ? total : Math.max(0, rows - 1);
  const foreign = new Set((status.members?.foreign ?? []).map((peer) => peer.peerId));
  const connected = sortPeers(status.peers)
    .slice(0, shown)
    .map((peer): PeerRow => {
      const address = peer.addresses[0];
      const direction = peer.direction === 'inbound' ? 'in' : peer.direction === 'outbound' ? 'out' : '';
      return {
        ...peerRowCells(
          shortPeerId(peer.id),
          peer.latencyMs === undefined ? '—' : formatLatency(peer.latencyMs),
          direction,
          peer.connectedAt === undefined ? '' : formatDuration(now - peer.connectedAt),
          addressWidth === 0
            ? ''
            : peer.lightClient === true
              ? ellipsizeMiddle('light client', addressWidth)
              : foreign.has(peer.id)
                ? ellipsizeMiddle('another database: not a member', addressWidth)
                : address !== undefined
                  ? ellipsizeMiddle(compactAddress(address, peer.id), addressWidth)
                  : '',
        ),
        latencyTone: foreign.has(peer.id) ? 'bad' : latencyTone(peer.latencyMs),
      };
    });
  const unreachable = down.slice(0, shown - connected.length).map((member): PeerRow => ({
    ...peerRowCells(
      shortPeerId(member.peerId),
      'down',
      '',
      formatDuration(member.forMs),
      addressWidth === 0 ? '' : ellipsizeMiddle('unreachable member', addressWidth),
    ),
    latencyTone: 'bad',
  }));
  const peers = [...connected, ...unreachable];
  const heading =
    withHeading && peers.length > 0
      ? Object.values(peerRowCells('peer', 'latency', 'dir', 'since', addressWidth > 0 ? 'address' : ''))
          .join('')
          .trimEnd()
      : undefined;
  return {
    summary,
    ...(heading !== undefined ? { heading } : {}),
    peers,
    morePeers: total - peers.length,
  };
}

/**
 * Peer table geometry: each cell is padded to its column and carries the space before it, so a row
 * is its cells end to end. Latency and time connected are right-aligned numbers, so one space
 * before them is enough.
 */
const peerGaps = { latency: ' ', direction: '  ', since: ' ', address: '  ' } as const;
const peerFixedWidth =
  shortPeerIdWidth +
  peerGaps.latency.length +
  latencyWidth +
  peerGaps.direction.length +
  directionWidth +
  peerGaps.since.length +
  sinceWidth;

function peerRowCells(
  id: string,
  latency: string,
  direction: string,
  since: string,
  address: string,
): Omit<PeerRow, 'latencyTone'> {
  return {
    id: padEnd(id, shortPeerIdWidth),
    latency: peerGaps.latency + padStart(latency, latencyWidth),
    direction: peerGaps.direction + padEnd(direction, directionWidth),
    since: peerGaps.since + padStart(since, sinceWidth),
    address: address === '' ? '' : peerGaps.address + address,
  };
}

function eventKind(kind: NodeEventKind): { readonly label: string; readonly tone: Tone } {
  switch (kind) {
    case 'peer:connect':
      return { label: 'join', tone: 'good' };
    case 'peer:disconnect':
      return { label: 'left', tone: 'warn' };
    case 'node:start':
      return { label: 'start', tone: 'accent' };
    case 'node:stop':
      return { label: 'stop', tone: 'accent' };
    case 'error':
      return { label: 'error', tone: 'bad' };
    case 'info':
      return { label: 'info', tone: 'plain' };
    default: {
      // A newer node may send kinds this dashboard does not know yet: show them as sent.
      const unknown: never = kind;
      return { label: printable(String(unknown)), tone: 'plain' };
    }
  }
}

function eventLogView(
  events: readonly NodeEvent[],
  ownPeerId: string,
  width: number,
  rows: number,
): EventLogView {
  const total = events.length;
  const summary =
    total === 0
      ? 'none yet'
      : rows >= total
        ? counted(total, 'event')
        : `last ${formatCount(rows)} of ${formatCount(total)}`;
  if (total === 0) return { summary, rows: [], ...(rows > 0 ? { empty: 'no events yet' } : {}) };
  const textWidth = Math.max(0, width - clockWidth - kindWidth - 2);
  const shown = events.slice(Math.max(0, total - rows));
  return {
    summary,
    rows: shown.map((event): EventRow => {
      const kind = eventKind(event.kind);
      return {
        time: formatClock(event.at),
        label: padEnd(kind.label, kindWidth),
        tone: kind.tone,
        text: ellipsizeEnd(eventText(event, ownPeerId), textWidth),
      };
    }),
  };
}

/** The event's message on one line, with full peer ids (its own peer's and ours) shortened. */
function eventText(event: NodeEvent, ownPeerId: string): string {
  let text = printable(event.message).trim();
  for (const id of [event.peerId, ownPeerId]) {
    if (id !== undefined && id.length > shortPeerIdWidth)
      text = text.split(printable(id)).join(shortPeerId(id));
  }
  if (text === '' && event.peerId !== undefined) text = shortPeerId(event.peerId);
  return text;
}
