import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isEngineError } from '../../../src/engine/base/errors.js';
import { peerIdOf } from '../../../src/engine/network/index.js';
import { clientKeyExposed, clientKeyPath, loadClientKey } from '../../../src/engine/node/client-key.js';
import { lightClientIdentity } from '../../../src/engine/node/reach.js';

async function failure(work: Promise<unknown>): Promise<unknown> {
  try {
    await work;
  } catch (error) {
    return error;
  }
  return expect.fail('expected a rejection');
}

describe('the light-client key (DATA/client.key, used by --connect)', () => {
  let root: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'optimystic-client-key-'));
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('is made on first use (owner-only file, in a directory made for it) and the same afterwards', async () => {
    const dir = join(root, 'home', '.optimystic');
    const first = await loadClientKey(dir);
    expect(first).to.include({ created: true, ephemeral: false, path: join(dir, 'client.key') });
    expect(first.peerId).to.equal(peerIdOf(first.privateKey));
    expect((await stat(first.path)).mode & 0o777).to.equal(0o600);
    expect(await readdir(dir)).to.deep.equal(['client.key']);
    const again = await loadClientKey(dir);
    expect(again).to.include({ created: false, peerId: first.peerId });
    expect(await clientKeyExposed(first.path)).to.equal(false);
    const shown = await lightClientIdentity(dir);
    expect(shown).to.deep.include({ peerId: first.peerId, created: false, path: first.path });
    expect(Buffer.from(shown.publicKey, 'base64url')).to.deep.equal(
      Buffer.from(first.privateKey.publicKey.raw),
    );
  });

  it('comes out the same for commands that make it at the same time', async () => {
    const keys = await Promise.all(Array.from({ length: 8 }, () => loadClientKey(root)));
    expect(new Set(keys.map((key) => key.peerId)).size).to.equal(1);
    expect(keys.filter((key) => key.created)).to.have.length(1);
    expect(await readdir(root)).to.deep.equal(['client.key']); // no temporary file left behind
  });

  it('is CONFIG_INVALID, naming the file and leaving it alone, when the file is not a client key', async () => {
    for (const text of [
      'not json',
      '{"kind":"something else"}',
      '{"kind":"optimystic.client-key","pkcs8":"AAAA"}',
    ]) {
      await writeFile(clientKeyPath(root), text);
      const error = await failure(loadClientKey(root));
      expect(isEngineError(error, 'CONFIG_INVALID'), String(error)).to.equal(true);
      expect((error as Error).message).to.include(clientKeyPath(root));
      expect(await readFile(clientKeyPath(root), 'utf8')).to.equal(text);
    }
  });

  it('says when others can read it', async () => {
    const key = await loadClientKey(root);
    await chmod(key.path, 0o644);
    expect(await clientKeyExposed(key.path)).to.equal(true);
  });

  it('is kept nowhere when the directory cannot be written: a key for the run (ephemeral)', async function () {
    const dir = join(root, 'readonly');
    await mkdir(dir);
    let mounted = false;
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', dir], { stdio: 'ignore' });
      mounted = true;
    } catch {
      await chmod(dir, 0o500); // not root: permissions are enforced
    }
    try {
      const key = await loadClientKey(dir);
      expect(key).to.include({ ephemeral: true, created: true });
      expect(key.peerId).to.equal(peerIdOf(key.privateKey));
      const error = await failure(lightClientIdentity(dir));
      expect(isEngineError(error, 'CONFIG_INVALID'), String(error)).to.equal(true);
      expect(await readdir(dir)).to.deep.equal([]);
    } finally {
      if (mounted) execFileSync('umount', [dir], { stdio: 'ignore' });
      else await chmod(dir, 0o700);
    }
  });
});
