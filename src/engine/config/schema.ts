/**
 * Node configuration: the settings, their defaults, and pure validation of each source (command-line
 * flags, OPTIMYSTIC_* environment variables, a config file). Every error names the bad field and the
 * source it came from. Precedence when resolving: flag > environment > config file > default.
 */
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import { EngineError, type ErrorCode } from '../base/errors.js';
import { limits } from '../base/limits.js';

export type NodeRole = 'transaction' | 'storage';
export const nodeRoles: readonly NodeRole[] = ['transaction', 'storage'];

/** A complete, validated node configuration. */
export interface NodeConfig {
  /** Multiaddrs to listen on. */
  readonly listen: readonly string[];
  /** Multiaddrs to announce instead of the listen addresses (public address behind NAT). */
  readonly announce: readonly string[];
  /** Peers to join through, each ending in /p2p/<peer id>. */
  readonly bootstrap: readonly string[];
  /** Network name: nodes of different networks never talk to each other. */
  readonly network: string;
  readonly role: NodeRole;
  /** Storage this node offers, in bytes (0 = unlimited). */
  readonly capacityBytes: number;
  /** Serve circuit relay for NAT-ed peers (announce a public address with it). */
  readonly gateway: boolean;
  /** A stable entry point: needs a fixed port. */
  readonly bootstrapNode: boolean;
  /** Peers per block cluster (k). */
  readonly clusterSize: number;
  /**
   * Who may use the client protocol (light clients, `--connect`): these peer ids, or `any` peer.
   * Empty (the default): nobody; the node refuses every client request.
   */
  readonly clients: ClientAccess;
  /** A transaction this node coordinates that takes at least this long (ms) is logged with its phases. */
  readonly slowTransactionMs: number;
}

/** The peers allowed to use a node's client protocol: a list of peer ids, or every peer. */
export type ClientAccess = 'any' | readonly string[];

/** What one source may set. `port` is shorthand for listening on all IPv4 interfaces at that port. */
export interface NodeSettings {
  readonly port?: number;
  readonly listen?: readonly string[];
  readonly announce?: readonly string[];
  readonly bootstrap?: readonly string[];
  readonly network?: string;
  readonly role?: NodeRole;
  readonly capacityBytes?: number;
  readonly gateway?: boolean;
  readonly bootstrapNode?: boolean;
  readonly clusterSize?: number;
  readonly clients?: ClientAccess;
  readonly slowTransactionMs?: number;
}

/** The port a node listens on when neither a port nor listen addresses are configured (libp2p's customary one). */
export const defaultPort = 4001;

export const defaultNodeConfig: NodeConfig = {
  listen: [listenAllOn(defaultPort)],
  announce: [],
  bootstrap: [],
  network: 'default',
  role: 'transaction',
  capacityBytes: 0,
  gateway: false,
  bootstrapNode: false,
  clusterSize: 5,
  clients: [],
  slowTransactionMs: limits.slowTransactionMs,
};

/** Bounds of the settings, each with its reason. */
export const configBounds = {
  /** Listen and announce addresses: a node has a handful of interfaces and transports. */
  addressesMax: 16,
  /** Bootstrap peers: a few stable entry points are enough; the DHT finds the rest. */
  bootstrapMax: 64,
  /** Allowed client peer ids: a short list of the operator's own clients. */
  clientsMax: 256,
  /** The slow-transaction threshold: an hour is already "never" for a transaction. */
  slowTransactionMsMax: 3_600_000,
  /** A config file is a few hundred bytes; a huge one is a mistake (or the wrong file). */
  fileBytesMax: 1024 * 1024,
} as const;

/** The listen address for a port on every IPv4 interface. */
export function listenAllOn(port: number): string {
  return `/ip4/0.0.0.0/tcp/${port}`;
}

/** Where a setting came from; errors name it so the operator knows what to fix. */
export interface SettingSource {
  /** `flag`, `env` or `file`. */
  readonly kind: 'flag' | 'env' | 'file';
  /** How a field is shown in messages: `--port`, `OPTIMYSTIC_PORT`, `clusterSize in /etc/optimystic.config.json`. */
  readonly label: (field: keyof NodeSettings) => string;
}

export const flagNames: Record<keyof NodeSettings, string> = {
  port: '--port',
  listen: '--listen',
  announce: '--announce',
  bootstrap: '--bootstrap',
  network: '--network',
  role: '--role',
  capacityBytes: '--capacity',
  gateway: '--gateway',
  bootstrapNode: '--bootstrap-node',
  clusterSize: '--cluster-size',
  clients: '--clients',
  slowTransactionMs: '--slow-transaction-ms',
};

export const envNames: Record<keyof NodeSettings, string> = {
  port: 'OPTIMYSTIC_PORT',
  listen: 'OPTIMYSTIC_LISTEN',
  announce: 'OPTIMYSTIC_ANNOUNCE',
  bootstrap: 'OPTIMYSTIC_BOOTSTRAP',
  network: 'OPTIMYSTIC_NETWORK',
  role: 'OPTIMYSTIC_ROLE',
  capacityBytes: 'OPTIMYSTIC_CAPACITY',
  gateway: 'OPTIMYSTIC_GATEWAY',
  bootstrapNode: 'OPTIMYSTIC_BOOTSTRAP_NODE',
  clusterSize: 'OPTIMYSTIC_CLUSTER_SIZE',
  clients: 'OPTIMYSTIC_CLIENTS',
  slowTransactionMs: 'OPTIMYSTIC_SLOW_TRANSACTION_MS',
};

/** Field names in a config file (`capacity` there, like the flag; it accepts "10GB" too). */
export const fileFieldNames: Record<keyof NodeSettings, string> = {
  port: 'port',
  listen: 'listen',
  announce: 'announce',
  bootstrap: 'bootstrap',
  network: 'network',
  role: 'role',
  capacityBytes: 'capacity',
  gateway: 'gateway',
  bootstrapNode: 'bootstrapNode',
  clusterSize: 'clusterSize',
  clients: 'clients',
  slowTransactionMs: 'slowTransactionMs',
};

export const flagSource: SettingSource = { kind: 'flag', label: (field) => flagNames[field] };
export const envSource: SettingSource = { kind: 'env', label: (field) => envNames[field] };
export function fileSource(path: string): SettingSource {
  return { kind: 'file', label: (field) => `${fileFieldNames[field]} in ${path}` };
}

/** Command-line mistakes are usage errors (exit 2); a bad file or variable is a configuration error (exit 3). */
function codeOf(source: SettingSource): ErrorCode {
  return source.kind === 'flag' ? 'BAD_INPUT' : 'CONFIG_INVALID';
}

function invalid(source: SettingSource, field: keyof NodeSettings, problem: string): EngineError {
  return new EngineError(codeOf(source), `${source.label(field)}: ${problem}`, {
    field: fileFieldNames[field],
    source: source.kind,
  });
}

const networkPattern = /^[a-z0-9][a-z0-9._-]*$/;

const byteUnits: Record<string, number> = {
  b: 1,
  k: 1000,
  kb: 1000,
  m: 1000 ** 2,
  mb: 1000 ** 2,
  g: 1000 ** 3,
  gb: 1000 ** 3,
  t: 1000 ** 4,
  tb: 1000 ** 4,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/**
 * A byte count: a non-negative integer, or a number with a unit — decimal `KB`, `MB`, `GB`, `TB`
 * (powers of 1000; `K`, `M`, `G`, `T` alike) or binary `KiB`, `MiB`, `GiB`, `TiB` — any case,
 * optional space: `10GB`, `1.5 TiB`, `512MiB`. Undefined when the text is not one.
 */
export function parseBytes(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (match === null) return undefined;
  const unit = match[2]!.toLowerCase();
  const scale = unit === '' ? 1 : byteUnits[unit];
  if (scale === undefined) return undefined;
  const bytes = Math.round(Number(match[1]) * scale);
  if (!Number.isSafeInteger(bytes)) return undefined;
  if (unit === '' && match[1]!.includes('.')) return undefined;
  return bytes;
}

/** A byte count for people: `1.5 GiB`. */
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

function checkPort(value: unknown, source: SettingSource): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 65535)
    throw invalid(
      source,
      'port',
      `must be an integer port in 0..65535 (0 picks a free one), not ${show(value)}`,
    );
  return value;
}

function checkAddresses(
  value: unknown,
  field: 'listen' | 'announce' | 'bootstrap',
  source: SettingSource,
): string[] {
  const max = field === 'bootstrap' ? configBounds.bootstrapMax : configBounds.addressesMax;
  if (!Array.isArray(value)) throw invalid(source, field, `must be a list of multiaddrs, not ${show(value)}`);
  if (value.length > max) throw invalid(source, field, `at most ${max} addresses, not ${value.length}`);
  return value.map((item: unknown, index) => {
    const where = `entry ${index + 1}`;
    if (typeof item !== 'string' || item.trim() === '')
      throw invalid(source, field, `${where} must be a multiaddr string, not ${show(item)}`);
    const text = item.trim();
    let components: { name: string }[];
    try {
      components = multiaddr(text).getComponents();
    } catch {
      throw invalid(
        source,
        field,
        `${where} ${JSON.stringify(text)} is not a multiaddr (example: /ip4/203.0.113.7/tcp/4001)`,
      );
    }
    if (field === 'bootstrap' && components.at(-1)?.name !== 'p2p')
      throw invalid(
        source,
        field,
        `${where} ${JSON.stringify(text)} must end in /p2p/<peer id> (copy it from the other node's "node status")`,
      );
    if (field === 'listen' && !components.some((component) => component.name === 'tcp'))
      throw invalid(source, field, `${where} ${JSON.stringify(text)} has no /tcp/ port: nodes listen on TCP`);
    return text;
  });
}

function checkNetwork(value: unknown, source: SettingSource): string {
  if (
    typeof value !== 'string' ||
    value.length === 0 ||
    value.length > limits.protocolNameCharsMax ||
    !networkPattern.test(value)
  )
    throw invalid(
      source,
      'network',
      `must be 1-${limits.protocolNameCharsMax} characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit, not ${show(value)}`,
    );
  return value;
}

function checkRole(value: unknown, source: SettingSource): NodeRole {
  if (value !== 'transaction' && value !== 'storage')
    throw invalid(source, 'role', `must be "transaction" or "storage", not ${show(value)}`);
  return value;
}

function checkCapacity(value: unknown, source: SettingSource): number {
  const bytes =
    typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
      ? value
      : typeof value === 'string'
        ? parseBytes(value)
        : undefined;
  if (bytes === undefined)
    throw invalid(
      source,
      'capacityBytes',
      `must be a byte count such as 10737418240, "10GB" or "512MiB" (0 = unlimited), not ${show(value)}`,
    );
  return bytes;
}

function checkBoolean(value: unknown, field: 'gateway' | 'bootstrapNode', source: SettingSource): boolean {
  if (typeof value !== 'boolean') throw invalid(source, field, `must be true or false, not ${show(value)}`);
  return value;
}

function checkClusterSize(value: unknown, source: SettingSource): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > limits.closestPeersMax)
    throw invalid(
      source,
      'clusterSize',
      `must be an integer in 1..${limits.closestPeersMax}, not ${show(value)}`,
    );
  return value;
}

function checkSlowTransactionMs(value: unknown, source: SettingSource): number {
  const max = configBounds.slowTransactionMsMax;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max)
    throw invalid(
      source,
      'slowTransactionMs',
      `must be a whole number of milliseconds in 0..${max} (0 logs every transaction), not ${show(value)}`,
    );
  return value;
}

/**
 * The client allow list: `any`, or peer ids (a file may give a list or the string `any`; a flag or
 * variable gives comma-separated words, `any` alone).
 */
function checkClients(value: unknown, source: SettingSource): ClientAccess {
  if (value === 'any') return 'any';
  if (!Array.isArray(value))
    throw invalid(source, 'clients', `must be "any" or a list of peer ids, not ${show(value)}`);
  if (value.length > configBounds.clientsMax)
    throw invalid(source, 'clients', `at most ${configBounds.clientsMax} peer ids, not ${value.length}`);
  const ids = value.map((item: unknown, index) => {
    if (typeof item !== 'string' || item.trim() === '')
      throw invalid(source, 'clients', `entry ${index + 1} must be a peer id string, not ${show(item)}`);
    return item.trim();
  });
  if (ids.includes('any')) {
    if (ids.length === 1) return 'any';
    throw invalid(source, 'clients', '"any" allows every peer: give it alone, not with peer ids');
  }
  for (const [index, id] of ids.entries()) {
    let parsed: string;
    try {
      parsed = peerIdFromString(id).toString();
    } catch {
      parsed = '';
    }
    if (parsed !== id)
      throw invalid(
        source,
        'clients',
        `entry ${index + 1} ${JSON.stringify(id)} is not a peer id (example: 12D3KooW…; a client shows its own with "keygen identity --client")`,
      );
  }
  return [...new Set(ids)];
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value) ?? typeof value;
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

type Checkers = { [K in keyof NodeSettings]-?: (value: unknown, source: SettingSource) => NodeSettings[K] };

const checkers: Checkers = {
  port: checkPort,
  listen: (value, source) => checkAddresses(value, 'listen', source),
  announce: (value, source) => checkAddresses(value, 'announce', source),
  bootstrap: (value, source) => checkAddresses(value, 'bootstrap', source),
  network: checkNetwork,
  role: checkRole,
  capacityBytes: checkCapacity,
  gateway: (value, source) => checkBoolean(value, 'gateway', source),
  bootstrapNode: (value, source) => checkBoolean(value, 'bootstrapNode', source),
  clusterSize: checkClusterSize,
  clients: checkClients,
  slowTransactionMs: checkSlowTransactionMs,
};

const settingFields = Object.keys(checkers) as (keyof NodeSettings)[];

/** Validates settings given as typed values (command-line flags after parsing, or a test). */
export function validateSettings(
  values: { readonly [K in keyof NodeSettings]?: unknown },
  source: SettingSource,
): NodeSettings {
  const out: Record<string, unknown> = {};
  for (const field of settingFields) {
    const value = values[field];
    if (value !== undefined) out[field] = checkers[field](value, source);
  }
  return out;
}

/**
 * Validates the contents of a config file: an object whose fields are those of `fileFieldNames`.
 * Unknown fields are refused by name (a typo must not be silently ignored).
 */
export function validateConfigFile(value: unknown, path: string): NodeSettings {
  const source = fileSource(path);
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new EngineError('CONFIG_INVALID', `${path}: a config file holds one object of settings`, {
      source: 'file',
    });
  const byFileName = new Map(settingFields.map((field) => [fileFieldNames[field], field]));
  const values: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
    const field = byFileName.get(key);
    if (field === undefined)
      throw new EngineError(
        'CONFIG_INVALID',
        `${path}: unknown setting "${key}" (known: ${[...byFileName.keys()].join(', ')})`,
        { field: key, source: 'file' },
      );
    values[field] = item;
  }
  return validateSettings(values, source);
}

const truthy = new Set(['1', 'true', 'y', 'yes', 'on']);
const falsy = new Set(['0', 'false', 'n', 'no', 'off']);

/** Reads the OPTIMYSTIC_* node settings from an environment; empty variables count as unset. */
export function settingsFromEnv(env: Readonly<Record<string, string | undefined>>): NodeSettings {
  const values: Record<string, unknown> = {};
  for (const field of settingFields) {
    const raw = env[envNames[field]];
    if (raw === undefined || raw.trim() === '') continue;
    const text = raw.trim();
    switch (field) {
      case 'port':
      case 'clusterSize':
      case 'slowTransactionMs':
        values[field] = /^\d+$/.test(text) ? Number(text) : text;
        break;
      case 'listen':
      case 'announce':
      case 'bootstrap':
      case 'clients':
        values[field] = text.split(',').map((part) => part.trim());
        break;
      case 'gateway':
      case 'bootstrapNode': {
        const lower = text.toLowerCase();
        values[field] = truthy.has(lower) ? true : falsy.has(lower) ? false : text;
        break;
      }
      default:
        values[field] = text;
    }
  }
  return validateSettings(values, envSource);
}

export interface SettingLayers {
  readonly flags?: NodeSettings;
  readonly env?: NodeSettings;
  readonly file?: NodeSettings;
  /** Labels for messages about the file layer. */
  readonly filePath?: string;
}

/**
 * The configuration that applies: each field from the first layer that sets it (flag, environment,
 * file), else its default. Listen addresses come from the first layer that sets `port` or `listen`
 * (a layer setting both is refused: say one thing).
 */
export function resolveNodeConfig(layers: SettingLayers): NodeConfig {
  const ordered: { settings: NodeSettings; source: SettingSource }[] = [];
  if (layers.flags !== undefined) ordered.push({ settings: layers.flags, source: flagSource });
  if (layers.env !== undefined) ordered.push({ settings: layers.env, source: envSource });
  if (layers.file !== undefined)
    ordered.push({ settings: layers.file, source: fileSource(layers.filePath ?? 'the config file') });
  const pick = <K extends keyof NodeSettings>(field: K): NodeSettings[K] | undefined =>
    ordered.find((layer) => layer.settings[field] !== undefined)?.settings[field];

  let listen: readonly string[] = defaultNodeConfig.listen;
  let listenSource: SettingSource | undefined;
  for (const layer of ordered) {
    const { port, listen: addresses } = layer.settings;
    if (port === undefined && addresses === undefined) continue;
    if (port !== undefined && addresses !== undefined)
      throw invalid(
        layer.source,
        'port',
        `give either ${layer.source.label('port')} or ${layer.source.label('listen')}, not both (port P means listen /ip4/0.0.0.0/tcp/P)`,
      );
    listen = addresses ?? [listenAllOn(port!)];
    listenSource = layer.source;
    break;
  }
  if (listen.length === 0)
    throw invalid(listenSource ?? flagSource, 'listen', 'a node needs at least one address to listen on');

  const config: NodeConfig = {
    listen,
    announce: pick('announce') ?? defaultNodeConfig.announce,
    bootstrap: pick('bootstrap') ?? defaultNodeConfig.bootstrap,
    network: pick('network') ?? defaultNodeConfig.network,
    role: pick('role') ?? defaultNodeConfig.role,
    capacityBytes: pick('capacityBytes') ?? defaultNodeConfig.capacityBytes,
    gateway: pick('gateway') ?? defaultNodeConfig.gateway,
    bootstrapNode: pick('bootstrapNode') ?? defaultNodeConfig.bootstrapNode,
    clusterSize: pick('clusterSize') ?? defaultNodeConfig.clusterSize,
    clients: pick('clients') ?? defaultNodeConfig.clients,
    slowTransactionMs: pick('slowTransactionMs') ?? defaultNodeConfig.slowTransactionMs,
  };
  if (config.bootstrapNode && config.listen.some((address) => /\/tcp\/0(\/|$)/.test(address))) {
    const source = ordered.find((layer) => layer.settings.bootstrapNode !== undefined)?.source ?? flagSource;
    throw invalid(
      source,
      'bootstrapNode',
      'a bootstrap node is a stable entry point and needs a fixed port: set a port other than 0',
    );
  }
  return config;
}
