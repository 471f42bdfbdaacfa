/**
 * The files a running node keeps in its data directory:
 *   repo.lock  {"pid","startedAt"}: the node that owns the directory (created exclusively);
 *   api        {"pid","socket","peerId","version","startedAt"}: how to reach its control API;
 *   node.sock  the control socket itself (mode 0600).
 * A file whose pid is dead is stale (the node crashed or was killed): it is detected, reported and
 * removed. LevelDB's own lock stays the last word on who may write the store.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EngineError } from '../base/errors.js';

export const lockFileName = 'repo.lock';
export const apiFileName = 'api';
export const socketFileName = 'node.sock';

/** A process file without a readable pid is left alone this long: it may be being written. */
const unreadableGraceMs = 10_000;

/** Unix socket paths longer than this fail to bind (sun_path is 104-108 bytes, NUL included). */
const socketPathBytesMax = 100;

export interface LockRecord {
  readonly pid: number;
  readonly startedAt: number;
}

export interface ApiRecord {
  readonly pid: number;
  /** Path of the control socket. */
  readonly socket: string;
  readonly peerId: string;
  readonly version: string;
  readonly startedAt: number;
}

export function lockPath(dataDir: string): string {
  return join(dataDir, lockFileName);
}

export function apiPath(dataDir: string): string {
  return join(dataDir, apiFileName);
}

/**
 * Where the control socket goes: in the data directory, unless that path is too long for a Unix
 * socket; then in the temp directory under a name derived from the data directory.
 */
export function socketPathFor(dataDir: string): string {
  const inDataDir = join(dataDir, socketFileName);
  if (Buffer.byteLength(inDataDir) <= socketPathBytesMax) return inDataDir;
  const digest = createHash('sha256').update(dataDir).digest('hex').slice(0, 24);
  return join(tmpdir(), `optimystic-${digest}.sock`);
}

/** True when a process with this pid exists and is not a zombie (a killed child not yet reaped). */
export function pidAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    // No /proc (not Linux): kill(0) is all we know.
    return true;
  }
}

function parseRecord(text: string): Record<string, unknown> | undefined {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return { pid: Number(trimmed) };
  try {
    const value: unknown = JSON.parse(trimmed);
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** The lock record, undefined when there is no lock file; a pid of 0 when the file is unreadable. */
export async function readLock(dataDir: string): Promise<LockRecord | undefined> {
  const text = await readText(lockPath(dataDir));
  if (text === undefined) return undefined;
  const record = parseRecord(text);
  const pid = typeof record?.['pid'] === 'number' ? record['pid'] : 0;
  const startedAt = typeof record?.['startedAt'] === 'number' ? record['startedAt'] : 0;
  return { pid, startedAt };
}

/** The api record, undefined when there is no api file or it is not one. */
export async function readApi(dataDir: string): Promise<ApiRecord | undefined> {
  const text = await readText(apiPath(dataDir));
  if (text === undefined) return undefined;
  const record = parseRecord(text);
  if (record === undefined) return { pid: 0, socket: '', peerId: '', version: '', startedAt: 0 };
  return {
    pid: typeof record['pid'] === 'number' ? record['pid'] : 0,
    socket: typeof record['socket'] === 'string' ? record['socket'] : '',
    peerId: typeof record['peerId'] === 'string' ? record['peerId'] : '',
    version: typeof record['version'] === 'string' ? record['version'] : '',
    startedAt: typeof record['startedAt'] === 'number' ? record['startedAt'] : 0,
  };
}

/**
 * Removes a process file whose pid is dead, when it still holds what we read (another process may
 * have replaced it meanwhile). Returns the dead pid when it removed one.
 */
export async function clearIfStale(path: string): Promise<number | undefined> {
  const text = await readText(path);
  if (text === undefined) return undefined;
  const pid = parseRecord(text)?.['pid'];
  const deadPid = typeof pid === 'number' ? pid : 0;
  if (deadPid !== 0 && pidAlive(deadPid)) return undefined;
  // No pid in it: maybe a file being written this instant. Only an old one is garbage.
  if (deadPid === 0) {
    const info = await stat(path).catch(() => undefined);
    if (info === undefined || Date.now() - info.mtimeMs < unreadableGraceMs) return undefined;
  }
  if ((await readText(path)) !== text) return undefined;
  try {
    await unlink(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  return deadPid;
}

export interface AcquiredLock {
  /** The pid of a dead node whose lock was cleared on the way in, if any. */
  readonly stalePid: number | undefined;
  release(): Promise<void>;
}

/**
 * Takes `repo.lock` for this process. A lock held by a live process is DATA_DIR_BUSY; a lock left by
 * a dead one is cleared (and its pid returned so the caller can say so).
 */
export async function acquireRepoLock(dataDir: string, now: number): Promise<AcquiredLock> {
  await mkdir(dataDir, { recursive: true });
  const path = lockPath(dataDir);
  const record: LockRecord = { pid: process.pid, startedAt: now };
  let stalePid: number | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await writeFile(path, `${JSON.stringify(record)}\n`, { flag: 'wx', mode: 0o600 });
      let released = false;
      return {
        stalePid,
        release: async () => {
          if (released) return;
          released = true;
          const current = await readLock(dataDir);
          if (current?.pid === process.pid) await unlink(path).catch(() => undefined);
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = await readLock(dataDir);
    if (holder !== undefined && holder.pid !== 0 && pidAlive(holder.pid)) {
      throw new EngineError(
        'DATA_DIR_BUSY',
        `a node (pid ${holder.pid}) is already running on ${dataDir}; stop it with: optimystic node stop --data ${dataDir} ` +
          `(if no such node runs, remove ${path})`,
        { dir: dataDir, pid: holder.pid },
      );
    }
    const cleared = await clearIfStale(path);
    if (cleared !== undefined) stalePid = cleared;
  }
  throw new EngineError(
    'DATA_DIR_BUSY',
    `could not take ${path}: another node is starting on ${dataDir}, or the file is unreadable (if no node runs, remove it)`,
    {
      dir: dataDir,
    },
  );
}

/** Writes the api file atomically (a reader never sees half of it). */
export async function writeApi(dataDir: string, record: ApiRecord): Promise<void> {
  const path = apiPath(dataDir);
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(record)}\n`, { mode: 0o600 });
  await rename(temporary, path);
}

/** Removes the api file when it is ours. */
export async function removeApi(dataDir: string): Promise<void> {
  const current = await readApi(dataDir);
  if (current?.pid === process.pid) await unlink(apiPath(dataDir)).catch(() => undefined);
}
