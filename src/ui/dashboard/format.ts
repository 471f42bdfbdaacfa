// Turning raw status numbers and strings into short, fixed-width terminal text. Pure functions; the
// view model is their only user besides the tests.

const binaryUnits = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'] as const;

/** 0 B, 512 B, 1.5 KiB, 12 MiB, 3.4 GiB: at most three significant digits, binary units. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '—';
  if (bytes < 1024) return `${Math.round(bytes)} B`;
  let value = bytes;
  for (const unit of binaryUnits) {
    value /= 1024;
    const text = value < 10 ? value.toFixed(1) : value.toFixed(0);
    // 1023.7 KiB rounds to "1024 KiB": say "1.0 MiB" instead.
    if (Number(text) < 1024 || unit === binaryUnits[binaryUnits.length - 1]) return `${text} ${unit}`;
  }
  return '—';
}

/** Uptimes and ages: 0s, 45s, 12m 05s, 3h 04m, 2d 03h. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  const totalSeconds = Math.floor(ms / 1000);
  const days = Math.floor(totalSeconds / 86_400);
  const hours = Math.floor((totalSeconds % 86_400) / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = totalSeconds % 60;
  if (days > 0) return `${days}d ${pad2(hours)}h`;
  if (hours > 0) return `${hours}h ${pad2(minutes)}m`;
  if (minutes > 0) return `${minutes}m ${pad2(seconds)}s`;
  return `${seconds}s`;
}

/** Round trips and commit latencies: 0.4 ms, 8.2 ms, 42 ms, 1.2 s, 12 s. */
export function formatLatency(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms / 1000)} s`;
}

/** Per-second rates: 0, 2.5, 140, 1.2k, 15k, 3.4M. */
export function formatRate(perSecond: number): string {
  if (!Number.isFinite(perSecond) || perSecond < 0) return '—';
  if (perSecond === 0) return '0';
  if (perSecond < 10) return perSecond.toFixed(1);
  if (perSecond < 1000) return `${Math.round(perSecond)}`;
  if (perSecond < 10_000) return `${(perSecond / 1000).toFixed(1)}k`;
  if (perSecond < 1_000_000) return `${Math.round(perSecond / 1000)}k`;
  return `${(perSecond / 1_000_000).toFixed(1)}M`;
}

const countFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** Whole counts with thousands separators: 1,234. */
export function formatCount(n: number): string {
  return Number.isFinite(n) ? countFormat.format(n) : '—';
}

/** `1 peer`, `2 peers`: a count with its noun. */
export function counted(n: number, singular: string, plural = `${singular}s`): string {
  return `${formatCount(n)} ${n === 1 ? singular : plural}`;
}

/** Local wall-clock time of an epoch-ms instant: 14:03:07. */
export function formatClock(epochMs: number): string {
  if (!Number.isFinite(epochMs)) return '--:--:--';
  const at = new Date(epochMs);
  return `${pad2(at.getHours())}:${pad2(at.getMinutes())}:${pad2(at.getSeconds())}`;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : `${n}`;
}

/**
 * Text from the network (peer ids, addresses, event messages of remote nodes) drawn on the operator's
 * terminal: control characters (escape sequences among them) and bidirectional overrides become
 * spaces or `?`, so nothing a peer sends can move the cursor, recolour or reorder the screen.
 */
export function printable(text: string): string {
  return text
    .replace(/[\t\n\r\v\f]+/g, ' ')
    .replace(/[\u0000-\u001f\u007f-\u009f]/g, '?') // eslint-disable-line no-control-regex
    .replace(/[\u202a-\u202e\u2066-\u2069]/g, '?');
}

/** Cuts text to `width` characters, ending with `…` when it was cut. */
export function ellipsizeEnd(text: string, width: number): string {
  if (width <= 0) return '';
  if (text.length <= width) return text;
  if (width === 1) return '…';
  return `${text.slice(0, width - 1)}…`;
}

/** Cuts text to `width` characters by replacing its middle with `…` (keeps both ends of an address). */
export function ellipsizeMiddle(text: string, width: number): string {
  if (width <= 0) return '';
  if (text.length <= width) return text;
  if (width === 1) return '…';
  const tail = Math.floor((width - 1) / 2);
  const head = width - 1 - tail;
  return `${text.slice(0, head)}…${text.slice(text.length - tail)}`;
}

export function padEnd(text: string, width: number): string {
  return ellipsizeEnd(text, width).padEnd(Math.max(0, width));
}

export function padStart(text: string, width: number): string {
  return ellipsizeEnd(text, width).padStart(Math.max(0, width));
}

/** Width of a short peer id: four leading and eight trailing characters around an ellipsis. */
export const shortPeerIdWidth = 13;

/**
 * `12D3…x9YzQ4ab`. Every Ed25519 peer id starts `12D3KooW`, so the tail is what tells peers apart; the
 * head stays so the id still reads as a peer id.
 */
export function shortPeerId(id: string): string {
  const clean = printable(id);
  if (clean.length <= shortPeerIdWidth) return clean;
  return `${clean.slice(0, 4)}…${clean.slice(clean.length - 8)}`;
}

/**
 * A multiaddr fitted to `width`: a trailing `/p2p/<peerId>` is dropped when it names `peerId` (the
 * row or header already says whose address it is), and an address still too long loses its middle.
 */
export function shortAddress(address: string, width: number, peerId?: string): string {
  let text = printable(address);
  if (peerId !== undefined) {
    const suffix = `/p2p/${printable(peerId)}`;
    if (text.endsWith(suffix) && text.length > suffix.length)
      text = text.slice(0, text.length - suffix.length);
  }
  return ellipsizeMiddle(text, width);
}

const hostProtocols = new Set(['ip4', 'ip6', 'dns', 'dns4', 'dns6', 'dnsaddr']);

/**
 * A multiaddr as `host:port` where it starts with one (`/ip4/10.0.0.5/tcp/4001` → `10.0.0.5:4001`,
 * `/ip6/::1/tcp/4001` → `[::1]:4001`, UDP as `host:port/udp`), keeping whatever follows (`/ws`,
 * `/p2p-circuit`) with peer ids in it shortened, and dropping a trailing `/p2p/<peerId>` that names
 * `peerId`. Anything else is returned as it came. For tables, where a whole multiaddr does not fit.
 */
export function compactAddress(address: string, peerId?: string): string {
  let text = printable(address);
  if (peerId !== undefined) {
    const suffix = `/p2p/${printable(peerId)}`;
    if (text.endsWith(suffix) && text.length > suffix.length)
      text = text.slice(0, text.length - suffix.length);
  }
  const parts = text.split('/');
  // ['', 'ip4', host, 'tcp', port, ...rest]
  const [lead, hostProtocol, host, transport, port] = parts;
  const rest = parts
    .slice(5)
    .map((part, i, all) => (all[i - 1] === 'p2p' ? shortPeerId(part) : part))
    .join('/');
  if (
    lead !== '' ||
    hostProtocol === undefined ||
    !hostProtocols.has(hostProtocol) ||
    host === undefined ||
    port === undefined ||
    !/^\d+$/.test(port)
  )
    return text;
  if (transport !== 'tcp' && transport !== 'udp') return text;
  const hostPort = `${hostProtocol === 'ip6' ? `[${host}]` : host}:${port}${transport === 'udp' ? '/udp' : ''}`;
  return rest === '' ? hostPort : `${hostPort}/${rest}`;
}

/**
 * As many items as fit in `width`, joined by `separator`, followed by `+N` for those left out. The
 * first item is always shown (cut to fit if it must be); nothing at all when there are no items.
 */
export function fitList(items: readonly string[], width: number, separator = '  '): string {
  if (items.length === 0 || width <= 0) return '';
  let text = '';
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    const candidate = i === 0 ? item : `${text}${separator}${item}`;
    const remaining = items.length - i - 1;
    const more = remaining > 0 ? ` +${remaining}` : '';
    if (candidate.length + more.length <= width) {
      text = candidate;
      continue;
    }
    const left = items.length - i;
    if (i === 0) {
      const suffix = ` +${left - 1}`;
      return left > 1 && width > suffix.length + 8
        ? `${ellipsizeMiddle(item, width - suffix.length)}${suffix}`
        : ellipsizeMiddle(item, width);
    }
    return `${text} +${left}`.length <= width ? `${text} +${left}` : ellipsizeEnd(text, width);
  }
  return text;
}

const sparkLevels = '▁▂▃▄▅▆▇█';

/**
 * A sparkline of the newest `width` samples, oldest left, scaled so the largest visible sample is a
 * full block. Zero (or a missing, negative or non-finite sample) is the lowest bar; any positive
 * sample is at least the second, so "a little" never looks like "none". Right-aligned in `width`:
 * the newest sample is always in the last column.
 */
export function sparkline(samples: readonly number[], width: number): string {
  if (width <= 0) return '';
  const visible = samples
    .slice(Math.max(0, samples.length - width))
    .map((v) => (Number.isFinite(v) && v > 0 ? v : 0));
  const max = visible.reduce((m, v) => Math.max(m, v), 0);
  const top = sparkLevels.length - 1;
  const bars = visible.map((v) => {
    if (v === 0 || max === 0) return sparkLevels[0]!;
    return sparkLevels[Math.max(1, Math.round((v / max) * top))]!;
  });
  return bars.join('').padStart(width);
}

const partialBlocks = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'] as const;

/**
 * A horizontal gauge `width` cells wide for a fraction in [0, 1] (clamped), in eighths of a cell:
 * `filled` is the drawn part, `empty` the rest (to be drawn dim), together exactly `width` wide.
 */
export function gauge(fraction: number, width: number): { readonly filled: string; readonly empty: string } {
  if (width <= 0) return { filled: '', empty: '' };
  const clamped = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  let eighths = Math.round(clamped * width * 8);
  // Anything stored shows as at least a sliver; only a full store fills the whole gauge.
  if (clamped > 0 && eighths === 0) eighths = 1;
  if (clamped < 1 && eighths === width * 8) eighths -= 1;
  const full = Math.floor(eighths / 8);
  const filled = '█'.repeat(full) + partialBlocks[eighths % 8]!;
  return { filled, empty: '░'.repeat(width - filled.length) };
}
