/**
 * The light-client identity (`--connect`): an Ed25519 key kept in `DATA/client.key`, apart from the
 * store, so that a node can let this client in by its peer id (`node start --clients <peer id>`) and
 * the key is there whether or not a node runs on the same directory (the store would be locked).
 * It is not the node's identity: a client using the node's own key would look like that member to
 * the network.
 *
 * The file is one JSON object, `{"kind":"optimystic.client-key","pkcs8":"<base64url DER>"}`, mode
 * 0600. It is made on first use: written to a temporary file and linked into place, so two commands
 * starting at once end up with the same key (the second finds the first's file and uses it).
 */
import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EngineError } from '../base/errors.js';
import { peerIdOf, privateKeyFromSeed, type PrivateKey } from '../network/index.js';
import { ed25519SeedOfPkcs8, pkcs8OfEd25519Seed } from './identity.js';

export const clientKeyFileName = 'client.key';
const kind = 'optimystic.client-key';

export interface ClientKey {
  readonly privateKey: PrivateKey;
  readonly peerId: string;
  readonly path: string;
  /** Made by this call (the file did not exist). */
  readonly created: boolean;
  /** Kept nowhere: the directory could not be written (this run uses a key of its own). */
  readonly ephemeral: boolean;
}

export function clientKeyPath(dataDir: string): string {
  return join(dataDir, clientKeyFileName);
}

/**
 * The client key of `dataDir`, made if there is none. CONFIG_INVALID when the file is there but is not
 * a client key (what to do is in the message). When the directory cannot be written (read-only, no
 * permission), the key is made for this run only and `ephemeral` says so.
 */
export async function loadClientKey(dataDir: string): Promise<ClientKey> {
  const path = clientKeyPath(dataDir);
  const existing = await readKey(path);
  if (existing !== undefined) return { ...(await keyOf(existing)), path, created: false, ephemeral: false };
  const seed = new Uint8Array(randomBytes(32));
  const made = await writeKey(dataDir, path, seed);
  if (made === 'unwritable') return { ...(await keyOf(seed)), path, created: true, ephemeral: true };
  if (made === 'raced') {
    const theirs = await readKey(path);
    if (theirs !== undefined) return { ...(await keyOf(theirs)), path, created: false, ephemeral: false };
  }
  return { ...(await keyOf(seed)), path, created: true, ephemeral: false };
}

async function keyOf(seed: Uint8Array): Promise<{ privateKey: PrivateKey; peerId: string }> {
  const privateKey = await privateKeyFromSeed(seed);
  return { privateKey, peerId: peerIdOf(privateKey) };
}

/** The seed in the key file, undefined when there is no file. */
async function readKey(path: string): Promise<Uint8Array | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new EngineError('CONFIG_INVALID', `cannot read ${path}: ${(error as Error).message}`, { path });
  }
  const invalid = (why: string): EngineError =>
    new EngineError(
      'CONFIG_INVALID',
      `${path} is not a light-client key (${why}); move it away and a new key is made on the next --connect (its peer id changes: nodes that let the old one in by --clients need the new one)`,
      { path },
    );
  let record: unknown;
  try {
    record = JSON.parse(text);
  } catch {
    throw invalid('not JSON');
  }
  if (typeof record !== 'object' || record === null || (record as { kind?: unknown }).kind !== kind)
    throw invalid(`no "kind": "${kind}"`);
  const pkcs8 = (record as { pkcs8?: unknown }).pkcs8;
  const seed = typeof pkcs8 === 'string' ? ed25519SeedOfPkcs8(pkcs8) : undefined;
  if (seed === undefined) throw invalid('"pkcs8" is not an Ed25519 PKCS#8 key');
  return seed;
}

async function writeKey(
  dataDir: string,
  path: string,
  seed: Uint8Array,
): Promise<'written' | 'raced' | 'unwritable'> {
  const text = `${JSON.stringify({ kind, pkcs8: pkcs8OfEd25519Seed(seed) })}\n`;
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    await writeFile(temporary, text, { mode: 0o600, flag: 'wx' });
    await chmod(temporary, 0o600); // whatever the umask
    try {
      await link(temporary, path); // fails if another command made the key first
      return 'written';
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return 'raced';
      throw error;
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EROFS' || code === 'EPERM') return 'unwritable';
    throw new EngineError('CONFIG_INVALID', `cannot write ${path}: ${(error as Error).message}`, { path });
  } finally {
    await unlink(temporary).catch(() => undefined);
  }
}

/** True when the key file can be read by others than its owner (mode bits beyond 0600). */
export async function clientKeyExposed(path: string): Promise<boolean> {
  try {
    return ((await stat(path)).mode & 0o077) !== 0;
  } catch {
    return false;
  }
}
