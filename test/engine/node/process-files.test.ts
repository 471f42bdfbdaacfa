import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isEngineError } from '../../../src/engine/base/errors.js';
import { openDatabase } from '../../../src/engine/node/embedded.js';
import {
  acquireRepoLock,
  apiPath,
  clearIfStale,
  lockPath,
  pidAlive,
  readLock,
  socketPathFor,
} from '../../../src/engine/node/process-files.js';
import { reachDatabase, reachNode, isNoNodeRunning } from '../../../src/engine/node/reach.js';

/** The pid of a process that has exited (and been reaped), so nothing runs under it. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
    encoding: 'utf8',
  });
  const pid = Number(child.stdout);
  expect(pidAlive(pid), `pid ${pid} should be gone`).to.equal(false);
  return pid;
}

async function rejection(work: Promise<unknown>): Promise<unknown> {
  try {
    await work;
  } catch (error) {
    return error;
  }
  expect.fail('expected a rejection');
}

describe('node process files (repo.lock, api)', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'optimystic-lock-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('takes the lock with this pid, refuses a second taker with DATA_DIR_BUSY, and releases it', async () => {
    const lock = await acquireRepoLock(dir, 1000);
    expect(lock.stalePid).to.equal(undefined);
    expect((await readLock(dir))?.pid).to.equal(process.pid);
    const error = await rejection(acquireRepoLock(dir, 2000));
    expect(isEngineError(error, 'DATA_DIR_BUSY')).to.equal(true);
    await lock.release();
    expect(existsSync(lockPath(dir))).to.equal(false);
    const again = await acquireRepoLock(dir, 3000);
    await again.release();
  });

  it('detects a lock left by a dead process, clears it and reports its pid', async () => {
    const pid = deadPid();
    await writeFile(lockPath(dir), JSON.stringify({ pid, startedAt: 1 }));
    const lock = await acquireRepoLock(dir, 1000);
    expect(lock.stalePid).to.equal(pid);
    expect((await readLock(dir))?.pid).to.equal(process.pid);
    await lock.release();
  });

  it('accepts a lock file holding a bare pid, as other tools write them', async () => {
    await writeFile(lockPath(dir), `${process.pid}\n`);
    expect(isEngineError(await rejection(acquireRepoLock(dir, 1)), 'DATA_DIR_BUSY')).to.equal(true);
  });

  it('leaves a young unreadable lock alone (it may be being written) and clears an old one', async () => {
    await writeFile(lockPath(dir), '');
    expect(await clearIfStale(lockPath(dir))).to.equal(undefined);
    expect(existsSync(lockPath(dir))).to.equal(true);
    const old = new Date(Date.now() - 60_000);
    await utimes(lockPath(dir), old, old);
    expect(await clearIfStale(lockPath(dir))).to.equal(0);
    expect(existsSync(lockPath(dir))).to.equal(false);
  });

  it('does not release a lock that another process took over', async () => {
    const lock = await acquireRepoLock(dir, 1);
    await writeFile(lockPath(dir), JSON.stringify({ pid: 1, startedAt: 2 }));
    await lock.release();
    expect((await readLock(dir))?.pid).to.equal(1);
  });

  it('puts the control socket in the data directory unless the path is too long for a Unix socket', () => {
    expect(socketPathFor('/var/lib/optimystic')).to.equal('/var/lib/optimystic/node.sock');
    const deep = `/tmp/${'d'.repeat(120)}`;
    const fallback = socketPathFor(deep);
    expect(fallback.startsWith(tmpdir())).to.equal(true);
    expect(Buffer.byteLength(fallback)).to.be.lessThan(104);
    expect(socketPathFor(deep)).to.equal(fallback);
  });

  describe('reaching the database', () => {
    it('removes a stale api file and lock, says so, and opens the data directory embedded', async () => {
      const db = await openDatabase({ dataDir: dir });
      await db.createCollection('kept', 'tree');
      await db.close();
      const pid = deadPid();
      await writeFile(
        apiPath(dir),
        JSON.stringify({ pid, socket: join(dir, 'node.sock'), peerId: 'x', version: '0', startedAt: 1 }),
      );
      await writeFile(lockPath(dir), JSON.stringify({ pid, startedAt: 1 }));
      const notices: string[] = [];
      const reached = await reachDatabase({ dataDir: dir, notice: (message) => notices.push(message) });
      try {
        expect((await reached.listCollections()).map((c) => c.name)).to.deep.equal(['kept']);
      } finally {
        await reached.close();
      }
      expect(notices).to.have.length(2);
      expect(notices.join(' ')).to.include(String(pid));
      expect(existsSync(apiPath(dir))).to.equal(false);
      expect(existsSync(lockPath(dir))).to.equal(false);
    });

    it('says no node is running (UNAVAILABLE) to commands that need one', async () => {
      const error = await rejection(reachNode({ dataDir: dir }));
      expect(isEngineError(error, 'UNAVAILABLE')).to.equal(true);
      expect(isNoNodeRunning(error)).to.equal(true);
    });

    it('refuses --offline while a node holds the directory, naming it', async () => {
      const db = await openDatabase({ dataDir: dir });
      const lock = await acquireRepoLock(dir, 1);
      try {
        const error = await rejection(reachDatabase({ dataDir: dir, offline: true }));
        expect(isEngineError(error, 'DATA_DIR_BUSY')).to.equal(true);
        expect((error as Error).message).to.include(String(process.pid));
      } finally {
        await lock.release();
        await db.close();
      }
    });
  });
});
