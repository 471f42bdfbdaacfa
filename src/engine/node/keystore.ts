import { randomBytes } from 'node:crypto';
import { open, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';
import { systemClock, type Clock } from '../base/clock.js';
import { parseJson } from '../base/codec.js';
import { EngineError, isEngineError, type ErrorCode } from '../base/errors.js';
import { limits } from '../base/limits.js';
import { systemRng, type Rng } from '../base/rng.js';
import {
  Identity,
  checkActivation,
  checkPublicKey,
  checkShare,
  createParticipantCard,
  decodeSecretKey,
  encodeSecretKey,
  encryptionKeyFromIdentity,
  openWithPassphrase,
  sealWithPassphrase,
  type ConfirmMessage,
  type EncryptionKeyPair,
  type ParticipantCard,
  type ProposalMessage,
  type ThresholdPublicKey,
  type ThresholdShare,
} from '../crypto/index.js';

/**
 * Key material at rest in `DATA/keys/`: this participant's ceremony identity, threshold keys and
 * their shares, ceremony and request bookkeeping, and the audit log.
 *
 * Every secret (identity seed, share, ceremony state, signing nonces) is stored only inside a sealed
 * envelope (scrypt + XChaCha20-Poly1305, see crypto/seal.ts). Every file is mode 0600 and every
 * directory 0700, whatever the umask; every file is written atomically (temporary file, fsync,
 * rename, fsync of the directory), so a crash leaves either the old or the new content, never half.
 *
 * Layout:
 *
 * ```
 * keys/                                 0700
 *   ceremony-identity.json              sealed `identity`: the ceremony identity's Ed25519 seed
 *   ceremony-card.json                  its participant card (public: peer id + encryption key)
 *   audit.log                           NDJSON, append-only: signatures and decryptions served
 *   threshold/<keyId>/key.json          public key + activation certificate + this holder's place
 *   threshold/<keyId>/share.json        sealed `threshold-share`
 *   ceremonies/<session>/…              ceremony state (sealed) and its public record
 *   requests/<kind>-<id>/…              signing and decryption bookkeeping (nonces sealed)
 * ```
 */

export const keystoreDirName = 'keys';

const fileMode = 0o600;
const dirMode = 0o700;
/** Files the keystore writes stay far below this; anything bigger is not ours. */
const storedFileBytesMax = limits.sealedPlaintextBytesMax * 2;
const keyIdPattern = /^[A-Za-z0-9_-]{22}$/;
const relativePathPattern = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}(\/[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}){0,4}$/;

export interface KeyStoreInit {
  /** scrypt cost (log2 N) for envelopes sealed from now on; limits.sealScryptCostLog2 by default. */
  sealCostLog2?: number;
  rng?: Rng;
  clock?: Clock;
}

/** The identity this data directory uses in key ceremonies, with the encryption key derived from it. */
export interface CeremonyIdentity {
  identity: Identity;
  encryption: EncryptionKeyPair;
  card: ParticipantCard;
}

/** The ceremony that made a key generation: its proposal and every participant's confirmation. */
export interface KeyActivation {
  proposal: ProposalMessage;
  confirmations: ConfirmMessage[];
}

/** A threshold key as kept on disk (key.json); everything in it is public. */
export interface StoredKey {
  format: 'optimystic-stored-key';
  version: 1;
  publicKey: ThresholdPublicKey;
  activation: KeyActivation;
  /** This data directory's place in the key, or null when it holds no share (it dealt in a reshare and left). */
  holder: { peerId: string; identifier: number } | null;
  installedAtMs: number;
}

export interface AuditEntry {
  event: string;
  keyId: string;
  [field: string]: unknown;
}

// --- files -------------------------------------------------------------------------------------

/**
 * Writes a file atomically with the given mode: a temporary file in the same directory, written and
 * fsynced, renamed over the target, then the directory fsynced. Readers see the old or new content.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  mode: number = fileMode,
): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(tmp, 'wx', mode);
  try {
    await handle.writeFile(data);
    await handle.chmod(mode); // the umask may have taken bits away from (or, for 0644, kept) the mode
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw error;
  }
  await handle.close();
  try {
    await rename(tmp, path);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
  await syncDir(dir);
}

/** Removes a file and makes the removal durable. A missing file is fine. */
export async function removeFileDurably(path: string): Promise<void> {
  await rm(path, { force: true });
  await syncDir(dirname(path));
}

async function syncDir(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // Some platforms cannot fsync a directory; the rename is still atomic there.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/** Creates a directory (and parents) mode 0700. An existing directory keeps its mode. */
export async function makePrivateDir(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: dirMode });
}

/**
 * Reads and parses a JSON file with a size bound. A missing file is NOT_FOUND; a file that is not
 * JSON raises `code` (CORRUPT for our own files, BAD_INPUT for files handed to us).
 */
export async function readJsonFile(
  path: string,
  what: string,
  options: { code?: ErrorCode; bytesMax?: number } = {},
): Promise<unknown> {
  const code = options.code ?? 'CORRUPT';
  const bytesMax = options.bytesMax ?? storedFileBytesMax;
  let text: string;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new EngineError('BAD_INPUT', `${what} (${path}) is not a file`);
    if (info.size > bytesMax)
      throw new EngineError('TOO_LARGE', `${what} (${path}) is over ${bytesMax} bytes`);
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new EngineError('NOT_FOUND', `${what} not found (${path})`);
    throw error;
  }
  try {
    return parseJson(text, { bytesMax, what: `${what} (${path})` });
  } catch (error) {
    if (isEngineError(error, 'BAD_INPUT')) throw new EngineError(code, error.message);
    throw error;
  }
}

export async function fileExists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// --- the store -----------------------------------------------------------------------------------

export class KeyStore {
  /** `DATA/keys` */
  readonly root: string;
  readonly rng: Rng;
  readonly clock: Clock;
  private readonly sealCostLog2: number;

  constructor(dataDir: string, init: KeyStoreInit = {}) {
    this.root = join(dataDir, keystoreDirName);
    this.rng = init.rng ?? systemRng;
    this.clock = init.clock ?? systemClock;
    this.sealCostLog2 = init.sealCostLog2 ?? limits.sealScryptCostLog2;
  }

  get auditPath(): string {
    return join(this.root, 'audit.log');
  }

  private get identityPath(): string {
    return join(this.root, 'ceremony-identity.json');
  }

  private get cardPath(): string {
    return join(this.root, 'ceremony-card.json');
  }

  /** An absolute path inside the store for a relative one; refuses anything that could escape it. */
  path(relativePath: string): string {
    if (!relativePathPattern.test(relativePath) || relativePath.split('/').some((part) => part === '..'))
      throw new EngineError('BAD_INPUT', `not a keystore path: ${relativePath}`);
    const full = join(this.root, ...relativePath.split('/'));
    if (relative(this.root, full).startsWith(`..${sep}`)) throw new EngineError('BAD_INPUT', 'path escapes');
    return full;
  }

  /**
   * Takes the store's lock for one command: a second process working on the same keys at the same
   * time fails at once with DATA_DIR_BUSY. A lock left by a dead process is taken over.
   */
  async lock(): Promise<{ release: () => Promise<void> }> {
    await makePrivateDir(this.root);
    const lockPath = join(this.root, '.lock');
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const handle = await open(lockPath, 'wx', fileMode);
        await handle.writeFile(String(process.pid));
        await handle.close();
        return { release: () => rm(lockPath, { force: true }) };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const pid = Number((await readFile(lockPath, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && pidAlive(pid)) {
        throw new EngineError(
          'DATA_DIR_BUSY',
          `another optimystic process (pid ${pid}) is using the keys in ${this.root}; wait for it to finish`,
        );
      }
      await rm(lockPath, { force: true }); // left by a process that is gone
    }
    throw new EngineError('DATA_DIR_BUSY', `could not lock ${this.root}; try again`);
  }

  // --- generic records ---------------------------------------------------------------------------

  /** Writes public JSON at a store path (0600, atomic). */
  async writeRecord(relativePath: string, value: unknown): Promise<void> {
    const path = this.path(relativePath);
    await makePrivateDir(dirname(path));
    await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
  }

  /** Reads public JSON at a store path; undefined when the file is not there. */
  async readRecord(relativePath: string, what: string): Promise<unknown> {
    try {
      return await readJsonFile(this.path(relativePath), what);
    } catch (error) {
      if (isEngineError(error, 'NOT_FOUND')) return undefined;
      throw error;
    }
  }

  /** Seals JSON under the passphrase and writes it at a store path. */
  async sealRecord(relativePath: string, content: string, value: unknown, passphrase: string): Promise<void> {
    const plaintext = new TextEncoder().encode(JSON.stringify(value));
    try {
      const envelope = await sealWithPassphrase(plaintext, passphrase, this.rng, {
        content,
        costLog2: this.sealCostLog2,
      });
      await this.writeRecord(relativePath, envelope);
    } finally {
      plaintext.fill(0);
    }
  }

  /**
   * Opens a sealed record. Undefined when the file is not there; BAD_SIGNATURE for a wrong passphrase
   * or an edited file; CORRUPT when it is not an envelope or does not hold JSON.
   */
  async openRecord(
    relativePath: string,
    content: string,
    passphrase: string,
    what: string,
  ): Promise<unknown> {
    const envelope = await this.readRecord(relativePath, what);
    if (envelope === undefined) return undefined;
    let plaintext: Uint8Array;
    try {
      plaintext = await openWithPassphrase(envelope, passphrase, content);
    } catch (error) {
      if (isEngineError(error, 'BAD_SIGNATURE'))
        throw new EngineError(
          'BAD_SIGNATURE',
          `cannot open ${what} (${this.path(relativePath)}): wrong passphrase, or the file was altered`,
        );
      if (isEngineError(error, 'BAD_INPUT')) throw new EngineError('CORRUPT', `${what}: ${error.message}`);
      throw error;
    }
    try {
      return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(plaintext)) as unknown;
    } catch {
      throw new EngineError('CORRUPT', `${what} (${this.path(relativePath)}) does not hold JSON`);
    } finally {
      plaintext.fill(0);
    }
  }

  async removeRecord(relativePath: string): Promise<void> {
    await removeFileDurably(this.path(relativePath));
  }

  /** Names in a store directory (files and directories), sorted; empty when it does not exist. */
  async list(relativeDir: string): Promise<string[]> {
    try {
      return (await readdir(this.path(relativeDir))).filter((name) => !name.startsWith('.')).sort();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
  }

  // --- ceremony identity -------------------------------------------------------------------------

  async hasIdentity(): Promise<boolean> {
    return fileExists(this.identityPath);
  }

  /** The public card, readable without the passphrase; undefined before an identity exists. */
  async readCard(): Promise<ParticipantCard | undefined> {
    if (!(await fileExists(this.cardPath))) return undefined;
    const card = await readJsonFile(this.cardPath, 'ceremony card');
    if (!isObject(card) || typeof card.peerId !== 'string')
      throw new EngineError('CORRUPT', `ceremony card (${this.cardPath}) is not a card`);
    return card as unknown as ParticipantCard;
  }

  /** Creates this data directory's ceremony identity; EXISTS if it has one. */
  async createIdentity(passphrase: string): Promise<CeremonyIdentity> {
    if (await this.hasIdentity())
      throw new EngineError('EXISTS', `${this.identityPath} already holds a ceremony identity`);
    await makePrivateDir(this.root);
    const identity = Identity.generate(this.rng);
    const opened = withKeys(identity);
    await this.sealRecord(
      'ceremony-identity.json',
      'identity',
      { format: 'optimystic-ceremony-identity', version: 1, secretKey: encodeSecretKey(identity) },
      passphrase,
    );
    await writeFileAtomic(this.cardPath, `${JSON.stringify(opened.card, null, 2)}\n`);
    return opened;
  }

  /** Opens the ceremony identity: NOT_FOUND before one exists, BAD_SIGNATURE for a wrong passphrase. */
  async openIdentity(passphrase: string): Promise<CeremonyIdentity> {
    const value = await this.openRecord(
      'ceremony-identity.json',
      'identity',
      passphrase,
      'ceremony identity',
    );
    if (value === undefined) {
      throw new EngineError(
        'NOT_FOUND',
        `no ceremony identity in ${this.root}; create one with: optimystic keygen ceremony card`,
      );
    }
    if (!isObject(value) || value.format !== 'optimystic-ceremony-identity')
      throw new EngineError('CORRUPT', `${this.identityPath} does not hold a ceremony identity`);
    return withKeys(decodeSecretKey(value.secretKey));
  }

  // --- threshold keys ----------------------------------------------------------------------------

  private keyDir(keyId: string): string {
    if (!keyIdPattern.test(keyId)) throw new EngineError('BAD_INPUT', `${keyId} is not a key id`);
    return `threshold/${keyId}`;
  }

  /** Every key in the store, by key id. Unreadable entries are reported, not skipped silently. */
  async listKeys(): Promise<
    { key: StoredKey | null; keyId: string; hasShare: boolean; error?: EngineError }[]
  > {
    const out = [];
    for (const keyId of await this.list('threshold')) {
      if (!keyIdPattern.test(keyId)) continue;
      try {
        const key = await this.readKey(keyId);
        out.push({ key, keyId, hasShare: await this.hasShare(keyId) });
      } catch (error) {
        if (!(error instanceof EngineError)) throw error;
        out.push({ key: null, keyId, hasShare: false, error });
      }
    }
    return out;
  }

  /** A key by id; NOT_FOUND when this store does not have it, CORRUPT when key.json is malformed. */
  async readKey(keyId: string): Promise<StoredKey> {
    const value = await this.readRecord(`${this.keyDir(keyId)}/key.json`, `key ${keyId}`);
    if (value === undefined) throw new EngineError('NOT_FOUND', `no key ${keyId} in ${this.root}`);
    if (!isObject(value) || value.format !== 'optimystic-stored-key' || value.version !== 1)
      throw new EngineError('CORRUPT', `key ${keyId}: key.json is not a stored key`);
    const key = value as unknown as StoredKey;
    const checked = checkPublicKey(key.publicKey, 'CORRUPT');
    if (checked.json.keyId !== keyId)
      throw new EngineError('CORRUPT', `key ${keyId}: key.json names another key`);
    return key;
  }

  async hasShare(keyId: string): Promise<boolean> {
    return fileExists(this.path(`${this.keyDir(keyId)}/share.json`));
  }

  /**
   * Finds a key by id, by a unique prefix of its id (4 characters or more), or by its label.
   * NOT_FOUND when nothing matches, BAD_INPUT when several do.
   */
  async resolveKey(ref: string): Promise<StoredKey> {
    const keys = (await this.listKeys()).filter((k) => k.key !== null).map((k) => k.key!);
    const exact = keys.find((k) => k.publicKey.keyId === ref);
    if (exact !== undefined) return exact;
    const matches = keys.filter(
      (k) =>
        (ref.length >= 4 && k.publicKey.keyId.startsWith(ref)) || (ref !== '' && k.publicKey.label === ref),
    );
    if (matches.length === 1) return matches[0]!;
    if (matches.length > 1) {
      throw new EngineError(
        'BAD_INPUT',
        `${JSON.stringify(ref)} matches ${matches.length} keys (${matches.map((k) => k.publicKey.keyId).join(', ')}); give more of the key id`,
      );
    }
    throw new EngineError(
      'NOT_FOUND',
      `no key ${JSON.stringify(ref)} in ${this.root}; list keys with: optimystic keygen list`,
    );
  }

  /**
   * Installs a key generation after its ceremony completed: checks the activation certificate and
   * the share, then writes the share (sealed) and the public key. A null share removes any share of
   * an older generation (this participant dealt in a reshare and holds nothing now). The previous
   * generation's share is overwritten only here, after every participant confirmed the new one.
   */
  async installKey(
    input: { publicKey: ThresholdPublicKey; activation: KeyActivation; share: ThresholdShare | null },
    passphrase: string,
  ): Promise<StoredKey> {
    checkActivation(input.activation.proposal, input.publicKey, input.activation.confirmations);
    const checked = checkPublicKey(input.publicKey);
    const keyId = checked.json.keyId;
    const dir = this.keyDir(keyId);
    let holder: StoredKey['holder'] = null;
    if (input.share !== null) {
      const { json } = checkShare(checked, input.share);
      holder = { peerId: json.peerId, identifier: json.identifier };
    }
    const stored: StoredKey = {
      format: 'optimystic-stored-key',
      version: 1,
      publicKey: input.publicKey,
      activation: input.activation,
      holder,
      installedAtMs: this.clock.now(),
    };
    if (input.share !== null)
      await this.sealRecord(`${dir}/share.json`, 'threshold-share', input.share, passphrase);
    await this.writeRecord(`${dir}/key.json`, stored);
    if (input.share === null) await this.removeRecord(`${dir}/share.json`);
    return stored;
  }

  /**
   * Opens this data directory's share of a key and checks it against the key's current generation.
   * NOT_FOUND when it holds none; BAD_SIGNATURE for a wrong passphrase; CORRUPT when the share does
   * not belong to the stored public key.
   */
  async openShare(keyId: string, passphrase: string): Promise<{ key: StoredKey; share: ThresholdShare }> {
    const key = await this.readKey(keyId);
    const value = await this.openRecord(
      `${this.keyDir(keyId)}/share.json`,
      'threshold-share',
      passphrase,
      `share of key ${keyId}`,
    );
    if (value === undefined)
      throw new EngineError('NOT_FOUND', `this data directory holds no share of key ${keyId}`);
    const { json } = checkShare(checkPublicKey(key.publicKey, 'CORRUPT'), value, 'CORRUPT');
    return { key, share: json };
  }

  // --- audit -------------------------------------------------------------------------------------

  /** Appends one NDJSON line to the audit log (created 0600) and syncs it before returning. */
  async audit(entry: AuditEntry): Promise<void> {
    await makePrivateDir(this.root);
    const line = `${JSON.stringify({ at: new Date(this.clock.now()).toISOString(), ...entry })}\n`;
    const handle = await open(this.auditPath, 'a', fileMode);
    try {
      await handle.write(line);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /** The audit log's entries, oldest first. */
  async readAudit(): Promise<Record<string, unknown>[]> {
    let text: string;
    try {
      text = await readFile(this.auditPath, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    return text
      .split('\n')
      .filter((line) => line !== '')
      .map((line, i) => {
        try {
          return JSON.parse(line) as Record<string, unknown>;
        } catch {
          throw new EngineError('CORRUPT', `audit log line ${i + 1} is not JSON`);
        }
      });
  }
}

function withKeys(identity: Identity): CeremonyIdentity {
  const encryption = encryptionKeyFromIdentity(identity);
  return { identity, encryption, card: createParticipantCard(identity, encryption.publicKey) };
}
