/**
 * How a command reaches the database (SPEC §2.1):
 *   1. `connect`: a libp2p light client of the remote node;
 *   2. a node running on the data directory (its `api` file): the control socket;
 *   3. otherwise the data directory itself, embedded (a solo node in this process).
 * `offline` skips 1 and 2. Stale `api` and `repo.lock` files (dead pid) are removed and reported
 * through `notice`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { EngineError } from '../base/errors.js';
import type { PrivateKey } from '../network/index.js';
import { ControlClient } from './control-client.js';
import type { Database } from './database-api.js';
import type { IdentityInfo } from './node-api.js';
import { openDatabase } from './embedded.js';
import {
  apiPath,
  clearIfStale,
  lockPath,
  pidAlive,
  readApi,
  readLock,
  type ApiRecord,
} from './process-files.js';
import { RemoteNode } from './remote.js';

export interface ReachOptions {
  readonly dataDir: string;
  /** Never use a running node or the network. */
  readonly offline?: boolean;
  /** A remote node's multiaddr: act as its light client. */
  readonly connect?: string;
  /** Network name for `connect` (protocol ids are namespaced by it). */
  readonly network?: string;
  /** Told about stale files cleaned up on the way (one line each). */
  readonly notice?: (message: string) => void;
  /** How long to wait for a node that holds the directory but has not written its api file yet. */
  readonly startingWaitMs?: number;
  /**
   * False: a directory holding no database is not created; the command sees an empty one, with a
   * notice (OpenDatabaseOptions.createIfMissing). Default true.
   */
  readonly createIfMissing?: boolean;
}

/** A node that is starting writes its api file within this (its store opens, then its socket). */
const startingWaitMsDefault = 5_000;
const pollMs = 100;

/** The Database for a command: remote (light client or control socket) or embedded. */
export async function reachDatabase(options: ReachOptions): Promise<Database> {
  if (options.offline !== true) {
    const remote = await reachRunning(options);
    if (remote !== undefined) return remote;
  }
  return openEmbedded(options);
}

/** A running node (remote or on the data directory); UNAVAILABLE when none runs. */
export async function reachNode(options: ReachOptions): Promise<RemoteNode> {
  if (options.offline === true)
    throw new EngineError('BAD_INPUT', '--offline: this command needs a running node (drop --offline)');
  const remote = await reachRunning(options);
  if (remote !== undefined) return remote;
  throw new EngineError(
    'UNAVAILABLE',
    `no node is running on ${options.dataDir}; start one with: optimystic node start --data ${options.dataDir} (or reach a remote one with --connect MULTIADDR)`,
    { dir: options.dataDir, running: false },
  );
}

/** True for reachNode's "no node is running" error (as opposed to a node that does not answer). */
export function isNoNodeRunning(error: unknown): boolean {
  return error instanceof EngineError && error.code === 'UNAVAILABLE' && error.details?.['running'] === false;
}

/**
 * Waits until the node with this pid has released the data directory (its lock file is gone or names
 * another process) and exited. TIMEOUT if it takes longer than `timeoutMs`.
 */
export async function waitForNodeExit(dataDir: string, pid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lock = await readLock(dataDir);
    const released = lock === undefined || lock.pid !== pid;
    if (released && !pidAlive(pid)) return;
    if (!pidAlive(pid)) {
      // It died without releasing: what it left behind is stale.
      await liveApi({ dataDir });
      return;
    }
    if (Date.now() >= deadline)
      throw new EngineError(
        'TIMEOUT',
        `the node (pid ${pid}) is still stopping after ${Math.round(timeoutMs / 1000)} s; it may be finishing transactions`,
        { pid },
      );
    await sleep(pollMs);
  }
}

async function reachRunning(options: ReachOptions): Promise<RemoteNode | undefined> {
  if (options.connect !== undefined) {
    const { openLightClient } = await import('./light-client.js');
    const privateKey = await clientIdentity(options);
    return openLightClient({ address: options.connect, network: options.network ?? 'default', privateKey });
  }
  const api = await liveApi(options);
  if (api === undefined) return undefined;
  return connectSocket(options, api);
}

/**
 * The light client's key (`DATA/client.key`, made on first use), with a notice when it was just made
 * (its peer id, for the node's --clients), when it cannot be kept, or when others can read it.
 */
async function clientIdentity(options: ReachOptions): Promise<PrivateKey> {
  const { loadClientKey, clientKeyExposed } = await import('./client-key.js');
  const key = await loadClientKey(options.dataDir);
  if (key.ephemeral)
    options.notice?.(
      `cannot keep a light-client key in ${options.dataDir} (not writable): this run is client ${key.peerId}, a key of its own; give a writable --data to keep one`,
    );
  else if (key.created)
    options.notice?.(
      `made a light-client key in ${key.path}: this client is ${key.peerId}; a node serves it once started with --clients ${key.peerId}`,
    );
  else if (await clientKeyExposed(key.path))
    options.notice?.(`${key.path} can be read by other users: chmod 600 ${key.path}`);
  return key.privateKey;
}

/**
 * The light-client identity of a data directory (the key `--connect` uses), made if there is none.
 * CONFIG_INVALID when it cannot be kept there.
 */
export async function lightClientIdentity(
  dataDir: string,
): Promise<IdentityInfo & { readonly path: string; readonly created: boolean }> {
  const { loadClientKey } = await import('./client-key.js');
  const key = await loadClientKey(dataDir);
  if (key.ephemeral)
    throw new EngineError(
      'CONFIG_INVALID',
      `cannot keep a light-client key in ${dataDir}: the directory is not writable`,
      { dir: dataDir },
    );
  return {
    peerId: key.peerId,
    publicKey: Buffer.from(key.privateKey.publicKey.raw).toString('base64url'),
    path: key.path,
    created: key.created,
  };
}

/** The api record of a live node, removing stale process files on the way. */
async function liveApi(options: ReachOptions): Promise<ApiRecord | undefined> {
  const api = await readApi(options.dataDir);
  if (api !== undefined && api.pid !== 0 && pidAlive(api.pid)) return api;
  if (api !== undefined) {
    const pid = await clearIfStale(apiPath(options.dataDir));
    if (pid !== undefined)
      options.notice?.(
        `removed a stale api file in ${options.dataDir}: its node (pid ${pid || 'unknown'}) is not running`,
      );
  }
  const lock = await readLock(options.dataDir);
  if (lock !== undefined && !(lock.pid !== 0 && pidAlive(lock.pid))) {
    const pid = await clearIfStale(lockPath(options.dataDir));
    if (pid !== undefined)
      options.notice?.(
        `removed a stale repo.lock in ${options.dataDir}: its node (pid ${pid || 'unknown'}) is not running`,
      );
  }
  return undefined;
}

async function connectSocket(options: ReachOptions, api: ApiRecord): Promise<RemoteNode | undefined> {
  const deadline = Date.now() + (options.startingWaitMs ?? startingWaitMsDefault);
  for (;;) {
    try {
      const client = await ControlClient.connect(api.socket);
      return new RemoteNode(client, 'socket', api.socket);
    } catch (error) {
      const refused = error instanceof EngineError && error.details?.['refused'] === true;
      // A node that is stopping removes its api file last; one that died leaves it behind.
      if (!refused) throw error;
      if (!pidAlive(api.pid)) {
        await liveApi(options);
        return undefined;
      }
      const current = await readApi(options.dataDir);
      if (current === undefined) return undefined;
      if (Date.now() >= deadline)
        throw new EngineError(
          'UNAVAILABLE',
          `the node (pid ${api.pid}) on ${options.dataDir} does not answer on ${api.socket}; if it hangs, stop it (kill ${api.pid})`,
          { dir: options.dataDir, pid: api.pid },
        );
      await sleep(pollMs);
    }
  }
}

/**
 * The embedded database. When the store is busy because a node is starting on the directory (lock
 * taken, api file not written yet), waits for the node and goes through it instead.
 */
async function openEmbedded(options: ReachOptions): Promise<Database> {
  const deadline = Date.now() + (options.startingWaitMs ?? startingWaitMsDefault);
  for (;;) {
    try {
      return await openDatabase({
        dataDir: options.dataDir,
        readOnlyIfNetworked: options.offline === true,
        ...(options.createIfMissing === undefined ? {} : { createIfMissing: options.createIfMissing }),
        onMissing: () =>
          options.notice?.(
            `there is no database in ${options.dataDir} yet; nothing was created there (optimystic collection create starts one)`,
          ),
        onReadOnly: () =>
          options.notice?.(
            `${options.dataDir} belongs to a stopped node of a network: reading its own copies, read-only (they may be behind its cluster's; nothing is changed)`,
          ),
      });
    } catch (error) {
      if (!(error instanceof EngineError && error.code === 'DATA_DIR_BUSY')) throw error;
      const lock = await readLock(options.dataDir);
      const nodePid = lock !== undefined && lock.pid !== 0 && pidAlive(lock.pid) ? lock.pid : undefined;
      if (nodePid === undefined) throw error;
      if (options.offline === true)
        throw new EngineError(
          'DATA_DIR_BUSY',
          `a node (pid ${nodePid}) is running on ${options.dataDir}, so --offline cannot open it; drop --offline to go through the node, or stop it first (optimystic node stop)`,
          { dir: options.dataDir, pid: nodePid },
          { cause: error },
        );
      const api = await liveApi(options);
      if (api !== undefined) {
        const remote = await connectSocket(options, api);
        if (remote !== undefined) return remote;
      }
      if (Date.now() >= deadline)
        throw new EngineError(
          'DATA_DIR_BUSY',
          `a node (pid ${nodePid}) holds ${options.dataDir} but does not answer yet; try again in a moment`,
          { dir: options.dataDir, pid: nodePid },
          { cause: error },
        );
      await sleep(pollMs);
    }
  }
}
