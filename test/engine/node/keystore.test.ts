import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { EngineError, SeededRng } from '../../../src/engine/index.js';
import { KeyStore, writeFileAtomic, type KeyActivation } from '../../../src/engine/node/keystore.js';
import type { ThresholdPublicKey, ThresholdShare } from '../../../src/engine/crypto/index.js';
import { collectKey, makeParticipants, propose, runCeremony } from '../crypto/threshold/harness.js';

/** Key material at rest: modes, atomic writes, sealed contents, passphrases, the lock and the audit log. */

const passphrase = 'correct horse battery staple';
const cost = 10;

async function rejects(work: () => Promise<unknown>, code: string): Promise<EngineError> {
  try {
    await work();
  } catch (error) {
    expect(error, String(error)).to.be.instanceOf(EngineError);
    expect((error as EngineError).code, (error as Error).message).to.equal(code);
    return error as EngineError;
  }
  throw new Error(`expected ${code}, but it succeeded`);
}

const mode = (path: string): number => statSync(path).mode & 0o777;

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

/** A 2-of-3 key made by an in-process ceremony, as a ceremony's completion hands it to the store. */
function generatedKey(seed: number): {
  publicKey: ThresholdPublicKey;
  activation: KeyActivation;
  shares: ThresholdShare[];
} {
  const rng = new SeededRng(seed);
  const participants = makeParticipants(rng, 3);
  const proposal = propose(
    participants[0]!,
    {
      kind: 'dkg',
      suite: 'ed25519-sha512',
      purpose: 'sign',
      label: 'test key',
      threshold: 2,
      roster: participants,
    },
    rng,
  );
  const run = runCeremony(participants, proposal, rng);
  const key = collectKey(run, participants);
  const state = run.states.get(participants[0]!.identity.peerId)!;
  return {
    publicKey: key.publicKey,
    activation: { proposal: state.proposal, confirmations: state.result!.confirmations },
    shares: [...key.shares.values()],
  };
}

describe('KeyStore (DATA/keys at rest)', () => {
  let tmp: string;
  let store: KeyStore;
  let key: ReturnType<typeof generatedKey>;

  before(() => {
    key = generatedKey(4242);
  });

  beforeEach(() => {
    tmp = mkdtempSync(join(tmpdir(), 'optimystic-keystore-'));
    store = new KeyStore(join(tmp, 'data'), { sealCostLog2: cost, rng: new SeededRng(7) });
  });

  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  describe('files and modes', () => {
    it('writes every file 0600 and every directory 0700, even under a permissive umask', async () => {
      const umask = process.umask(0);
      try {
        await store.createIdentity(passphrase);
        await store.installKey({ ...key, share: key.shares[0]! }, passphrase);
        await store.writeRecord('requests/sign-0123456789abcdef/holder.json', { status: 'committed' });
        await store.audit({ event: 'sign-share', keyId: key.publicKey.keyId });
      } finally {
        process.umask(umask);
      }
      const files = filesUnder(store.root);
      expect(files.map((f) => f.slice(store.root.length + 1))).to.include.members([
        'ceremony-identity.json',
        'ceremony-card.json',
        'audit.log',
        `threshold/${key.publicKey.keyId}/key.json`,
        `threshold/${key.publicKey.keyId}/share.json`,
        'requests/sign-0123456789abcdef/holder.json',
      ]);
      for (const file of files) expect(mode(file), file).to.equal(0o600);
      for (const dir of [store.root, join(store.root, 'threshold'), join(store.root, 'requests')])
        expect(mode(dir), dir).to.equal(0o700);
    });

    it('replaces a file by rename (a reader sees the old or the new content) and leaves no temporary file', async () => {
      const dir = join(tmp, 'atomic');
      mkdirSync(dir);
      const path = join(dir, 'value.json');
      await writeFileAtomic(path, 'old');
      const before = statSync(path).ino;
      await writeFileAtomic(path, 'new');
      expect(readFileSync(path, 'utf8')).to.equal('new');
      expect(statSync(path).ino, 'a new inode: renamed over, not rewritten in place').to.not.equal(before);
      expect(readdirSync(dir)).to.deep.equal(['value.json']);
    });

    it('keeps the old content and cleans up when a write cannot complete', async () => {
      const dir = join(tmp, 'atomic');
      mkdirSync(dir);
      const path = join(dir, 'target');
      mkdirSync(path); // rename of a file over a directory fails
      try {
        await writeFileAtomic(path, 'new');
        expect.fail('the write should fail');
      } catch (error) {
        expect((error as NodeJS.ErrnoException).code).to.be.oneOf(['EISDIR', 'ENOTEMPTY', 'EEXIST', 'EPERM']);
      }
      expect(statSync(path).isDirectory()).to.equal(true);
      expect(readdirSync(dir)).to.deep.equal(['target']);
    });
  });

  describe('sealed contents', () => {
    it('keeps the identity seed and the share only inside sealed envelopes', async () => {
      const created = await store.createIdentity(passphrase);
      const share = key.shares[0]!;
      await store.installKey({ ...key, share }, passphrase);
      const identityFile = readFileSync(join(store.root, 'ceremony-identity.json'), 'utf8');
      const shareFile = readFileSync(
        join(store.root, 'threshold', key.publicKey.keyId, 'share.json'),
        'utf8',
      );
      const secretSeed = Buffer.from(created.identity.exportSecretKey()).toString('base64url');
      expect(identityFile).to.not.include(secretSeed);
      expect(shareFile).to.not.include(share.signingShare);
      expect(JSON.parse(identityFile)).to.include({ format: 'optimystic-sealed', content: 'identity' });
      expect(JSON.parse(shareFile)).to.include({ format: 'optimystic-sealed', content: 'threshold-share' });
      expect(JSON.parse(shareFile).kdf).to.include({ name: 'scrypt', costLog2: cost });
      // The public key file holds nothing secret.
      expect(
        readFileSync(join(store.root, 'threshold', key.publicKey.keyId, 'key.json'), 'utf8'),
      ).to.not.include(share.signingShare);
    });

    it('opens them again with the passphrase, to the same identity and share', async () => {
      const created = await store.createIdentity(passphrase);
      await store.installKey({ ...key, share: key.shares[1]! }, passphrase);
      const reopened = new KeyStore(join(tmp, 'data'), { sealCostLog2: cost });
      expect((await reopened.openIdentity(passphrase)).identity.peerId).to.equal(created.identity.peerId);
      expect((await reopened.readCard())!.peerId).to.equal(created.identity.peerId);
      const { share } = await reopened.openShare(key.publicKey.keyId, passphrase);
      expect(share).to.deep.equal(key.shares[1]);
    });

    it('refuses a wrong passphrase with BAD_SIGNATURE', async () => {
      await store.createIdentity(passphrase);
      await store.installKey({ ...key, share: key.shares[0]! }, passphrase);
      await rejects(() => store.openIdentity('Correct horse battery staple'), 'BAD_SIGNATURE');
      await rejects(() => store.openShare(key.publicKey.keyId, 'wrong'), 'BAD_SIGNATURE');
    });

    it('treats an edited envelope like a wrong passphrase, and a file that is no envelope as CORRUPT', async () => {
      await store.createIdentity(passphrase);
      const path = join(store.root, 'ceremony-identity.json');
      const envelope = JSON.parse(readFileSync(path, 'utf8'));
      writeFileSync(path, JSON.stringify({ ...envelope, kdf: { ...envelope.kdf, costLog2: cost + 1 } }));
      await rejects(() => store.openIdentity(passphrase), 'BAD_SIGNATURE');
      writeFileSync(path, JSON.stringify({ ...envelope, content: 'threshold-share' }));
      await rejects(() => store.openIdentity(passphrase), 'CORRUPT');
      writeFileSync(path, '{"not":"an envelope"}');
      await rejects(() => store.openIdentity(passphrase), 'CORRUPT');
      writeFileSync(path, 'not json');
      await rejects(() => store.openIdentity(passphrase), 'CORRUPT');
    });

    it('refuses a share that does not belong to the stored key', async () => {
      await store.installKey({ ...key, share: key.shares[0]! }, passphrase);
      const other = generatedKey(99);
      const dir = `threshold/${key.publicKey.keyId}`;
      await store.sealRecord(`${dir}/share.json`, 'threshold-share', other.shares[0], passphrase);
      await rejects(() => store.openShare(key.publicKey.keyId, passphrase), 'CORRUPT');
    });
  });

  describe('keys', () => {
    it('installs a key only with a valid activation certificate, writing nothing otherwise', async () => {
      const forged = {
        ...key,
        activation: { ...key.activation, confirmations: key.activation.confirmations.slice(1) },
        share: key.shares[0]!,
      };
      await rejects(() => store.installKey(forged, passphrase), 'BAD_CERTIFICATE');
      expect(await store.listKeys()).to.deep.equal([]);
    });

    it('finds a key by id, by a unique id prefix and by label; NOT_FOUND otherwise', async () => {
      await store.installKey({ ...key, share: key.shares[0]! }, passphrase);
      const id = key.publicKey.keyId;
      expect((await store.resolveKey(id)).publicKey.keyId).to.equal(id);
      expect((await store.resolveKey(id.slice(0, 6))).publicKey.keyId).to.equal(id);
      expect((await store.resolveKey('test key')).publicKey.keyId).to.equal(id);
      await rejects(() => store.resolveKey('no such key'), 'NOT_FOUND');
      await rejects(() => store.resolveKey('../../etc'), 'NOT_FOUND');
    });

    it('removes the share when a new generation leaves this holder without one', async () => {
      await store.installKey({ ...key, share: key.shares[0]! }, passphrase);
      expect(await store.hasShare(key.publicKey.keyId)).to.equal(true);
      const stored = await store.installKey({ ...key, share: null }, passphrase);
      expect(stored.holder).to.equal(null);
      expect(await store.hasShare(key.publicKey.keyId)).to.equal(false);
      await rejects(() => store.openShare(key.publicKey.keyId, passphrase), 'NOT_FOUND');
    });

    it('refuses an identity that already exists (EXISTS) and reports a missing one (NOT_FOUND)', async () => {
      await rejects(() => store.openIdentity(passphrase), 'NOT_FOUND');
      await store.createIdentity(passphrase);
      await rejects(() => store.createIdentity(passphrase), 'EXISTS');
    });
  });

  describe('lock and audit log', () => {
    it("lets one process at a time work on the keys (DATA_DIR_BUSY) and takes over a dead holder's lock", async () => {
      const held = await store.lock();
      const lockPath = join(store.root, '.lock');
      writeFileSync(lockPath, String(process.ppid)); // a live process that is not this one
      await rejects(() => store.lock(), 'DATA_DIR_BUSY');
      const dead = spawnSync(process.execPath, ['-e', '']).pid;
      writeFileSync(lockPath, String(dead));
      const taken = await store.lock();
      await taken.release();
      await held.release();
    });

    it('appends one NDJSON line per event and never rewrites earlier ones', async () => {
      await store.audit({ event: 'sign-share', keyId: 'k1', request: 'r1' });
      const first = readFileSync(store.auditPath, 'utf8');
      await store.audit({ event: 'decrypt-partial', keyId: 'k2', request: 'r2' });
      const text = readFileSync(store.auditPath, 'utf8');
      expect(text.startsWith(first)).to.equal(true);
      const entries = await store.readAudit();
      expect(entries.map((e) => e['event'])).to.deep.equal(['sign-share', 'decrypt-partial']);
      expect(entries[0]).to.have.property('at').that.is.a('string');
      expect(mode(store.auditPath)).to.equal(0o600);
    });
  });
});
