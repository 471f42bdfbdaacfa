/**
 * End-to-end tests of `optimystic keygen` through the built binary (`node bin/run.js`): air-gapped
 * threshold key ceremonies among five data directories that only share an exchange directory, then
 * FROST signing, threshold decryption, refresh, and the integrity failures (wrong passphrase, a
 * tampered message file). Exit codes and error codes are checked, never messages.
 *
 * Sealing uses scrypt cost 2^10 (OPTIMYSTIC_SCRYPT_COST_LOG2, test-only) so a step takes milliseconds
 * of key derivation. The `before` hook builds only when dist/ is missing or older than src/; set
 * OPTIMYSTIC_CLI_ROOT to test another build (a directory holding bin/run.js, dist/ and package.json).
 */
/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-call --
   the tests read the CLI's JSON output and assert its shape field by field */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { buildIfStale, cliRoot } from '../helpers/built-cli.js';
import { verifyEd25519 } from '../helpers/ed25519.js';

const passphrase = 'correct horse battery staple';

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Our environment minus any OPTIMYSTIC_* setting, plus a passphrase and a cheap scrypt cost. */
function cliEnv(data: string, extra: Readonly<Record<string, string>>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env))
    if (!key.startsWith('OPTIMYSTIC_') && key !== 'NODE_ENV') env[key] = value;
  return {
    ...env,
    NO_COLOR: '1',
    OPTIMYSTIC_DATA: data,
    OPTIMYSTIC_PASSPHRASE: passphrase,
    OPTIMYSTIC_SCRYPT_COST_LOG2: '10',
    ...extra,
  };
}

function cli(
  data: string,
  args: readonly string[],
  options: { input?: string | Buffer; env?: Record<string, string> } = {},
): Promise<Run> {
  const child = spawn(process.execPath, [join(cliRoot, 'bin', 'run.js'), ...args], {
    cwd: cliRoot,
    env: cliEnv(data, options.env ?? {}),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdin.on('error', () => undefined);
  child.stdin.end(options.input);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function okJson(run: Run): any {
  expect(
    run.code,
    `exit code (stdout: ${run.stdout.slice(0, 400)}; stderr: ${run.stderr.slice(0, 400)})`,
  ).to.equal(0);
  return JSON.parse(run.stdout);
}

/** The `--json` error document of a failed run, after checking the exit code. */
function failure(run: Run, exit: number): { code: string; message: string } {
  expect(
    run.code,
    `exit code (stdout: ${run.stdout.slice(0, 400)}; stderr: ${run.stderr.slice(0, 400)})`,
  ).to.equal(exit);
  return JSON.parse(run.stdout).error;
}

/** Every file under a directory with a digest of its content, to show that nothing was written. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (path: string, rel: string): void => {
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      const full = join(path, entry.name);
      const name = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) walk(full, name);
      else out[name] = createHash('sha256').update(readFileSync(full)).digest('hex');
    }
  };
  if (existsSync(dir)) walk(dir, '');
  return out;
}

describe('optimystic keygen, air-gapped through the built binary', function () {
  this.timeout(120_000);
  let tmp: string;
  let data: string[];
  let peers: string[];

  before(async function () {
    this.timeout(300_000);
    buildIfStale();
    tmp = mkdtempSync(join(tmpdir(), 'optimystic-keygen-'));
    data = [1, 2, 3, 4, 5].map((i) => join(tmp, `node${i}`));
    const cards = join(tmp, 'cards');
    const published = await Promise.all(
      data.map(async (dir) =>
        okJson(await cli(dir, ['keygen', 'ceremony', 'card', '--out', cards, '--json'])),
      ),
    );
    peers = published.map((p) => p.card.peerId as string);
    expect(new Set(peers).size).to.equal(5);
    expect(readdirSync(cards).filter((n) => n.startsWith('card-'))).to.have.length(5);
  });

  after(() => {
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
  });

  /** A fresh exchange directory holding every card. */
  const exchange = (name: string): string => {
    const dir = join(tmp, name);
    mkdirSync(dir, { recursive: true });
    for (const card of readdirSync(join(tmp, 'cards')))
      copyFileSync(join(tmp, 'cards', card), join(dir, card));
    return dir;
  };

  /**
   * Steps every participant (all at once, as separate machines would) until each reports the
   * ceremony complete; returns their last progress reports, in data-directory order.
   */
  async function stepUntilComplete(dir: string, who: readonly number[] = [0, 1, 2, 3, 4]): Promise<any[]> {
    const last: any[] = [];
    for (let round = 0; round < 8; round++) {
      const pending = who.filter((i) => last[i]?.phase !== 'complete');
      if (pending.length === 0) return who.map((i) => last[i]);
      const runs = await Promise.all(
        pending.map((i) => cli(data[i]!, ['keygen', 'ceremony', 'step', '--in', dir, '--approve', '--json'])),
      );
      runs.forEach((run, k) => (last[pending[k]!] = okJson(run)));
    }
    throw new Error(`the ceremony did not complete: ${JSON.stringify(last.map((p) => p?.waiting))}`);
  }

  describe('a 3-of-5 signing key', () => {
    let keyId: string;
    let publicKeyHex: string;

    it('comes out of an air-gapped ceremony among five data directories, the same at every holder', async () => {
      const dir = exchange('sign-key');
      const proposed = okJson(
        await cli(data[0]!, [
          'keygen',
          'ceremony',
          'propose',
          '--cards',
          dir,
          '--threshold',
          '3',
          '--suite',
          'ed25519-sha512',
          '--purpose',
          'sign',
          '--label',
          'payments',
          '--out',
          dir,
          '--json',
        ]),
      );
      expect(proposed.phase).to.equal('proposed');
      expect(proposed.waiting.for).to.equal('acceptances');
      const done = await stepUntilComplete(dir);
      const keys = done.map((p) => p.key);
      keyId = keys[0].keyId;
      publicKeyHex = keys[0].publicKeyHex;
      for (const key of keys) {
        expect(key).to.include({
          keyId,
          publicKeyHex,
          suite: 'ed25519-sha512',
          purpose: 'sign',
          threshold: 3,
          holders: 5,
        });
      }
      expect(new Set(keys.map((k) => k.identifier))).to.deep.equal(new Set([1, 2, 3, 4, 5]));
      const listed = okJson(await cli(data[2]!, ['keygen', 'list', '--json']));
      expect(listed).to.have.length(1);
      expect(listed[0]).to.include({ keyId, status: 'active', threshold: 3, holders: 5, label: 'payments' });
      const shown = okJson(await cli(data[2]!, ['keygen', 'show', 'payments', '--json']));
      expect(shown.publicKey.hex).to.equal(publicKeyHex);
      expect(shown.holders.map((h: any) => h.peerId)).to.have.members(peers);
      const keysDir = join(data[2]!, 'keys');
      expect(statSync(keysDir).mode & 0o777).to.equal(0o700);
      expect(statSync(join(keysDir, 'threshold', keyId, 'share.json')).mode & 0o777).to.equal(0o600);
    });

    it('signs with three holders; node:crypto verifies the result as an ordinary Ed25519 signature', async () => {
      const dir = join(tmp, 'sign-1');
      const message = 'pay 10 to bob';
      const started = okJson(
        await cli(data[0]!, ['keygen', 'sign', keyId, '--message', message, '--out', dir, '--json']),
      );
      expect(started.did).to.deep.equal(['request', 'committed']);
      // Not enough commitments yet: the coordinator cannot build a package.
      expect(failure(await cli(data[0]!, ['keygen', 'sign', keyId, '--in', dir, '--json']), 6).code).to.equal(
        'NO_QUORUM',
      );
      for (const i of [1, 2])
        okJson(await cli(data[i]!, ['keygen', 'sign', keyId, '--in', dir, '--approve', '--json']));
      const packaged = okJson(await cli(data[0]!, ['keygen', 'sign', keyId, '--in', dir, '--json']));
      expect(packaged[0].did).to.deep.equal(['package', 'signed']);
      await Promise.all(
        [1, 2].map(async (i) =>
          okJson(await cli(data[i]!, ['keygen', 'sign', keyId, '--in', dir, '--json'])),
        ),
      );
      const signed = await cli(data[0]!, ['keygen', 'sign', keyId, '--in', dir]);
      expect(signed.code, signed.stderr).to.equal(0);
      const signatureHex = signed.stdout.trim();
      expect(signatureHex).to.match(/^[0-9a-f]{128}$/);
      expect(verifyEd25519(publicKeyHex, Buffer.from(message), signatureHex)).to.equal(true);
      expect(verifyEd25519(publicKeyHex, Buffer.from('pay 99 to bob'), signatureHex)).to.equal(false);
      const audit = readFileSync(join(data[1]!, 'keys', 'audit.log'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(audit.filter((e) => e.event === 'sign-share' && e.keyId === keyId)).to.have.length(1);
    });

    it('refuses a wrong passphrase with BAD_SIGNATURE (exit 7) and writes nothing', async () => {
      const dir = join(tmp, 'sign-wrong');
      const before = snapshot(join(data[3]!, 'keys'));
      const run = await cli(data[3]!, ['keygen', 'sign', keyId, '--message', 'x', '--out', dir, '--json'], {
        env: { OPTIMYSTIC_PASSPHRASE: 'not the passphrase' },
      });
      expect(failure(run, 7).code).to.equal('BAD_SIGNATURE');
      expect(snapshot(join(data[3]!, 'keys'))).to.deep.equal(before);
      expect(existsSync(dir)).to.equal(false);
    });

    it('refreshes the shares, keeps the group key, and stops at a tampered message file (exit 7, nothing written)', async () => {
      const dir = exchange('refresh');
      const shareBefore = readFileSync(join(data[0]!, 'keys', 'threshold', keyId, 'share.json'), 'utf8');
      okJson(await cli(data[0]!, ['keygen', 'refresh', keyId, '--out', dir, '--json']));
      // Everyone accepts, then everyone deals.
      for (let round = 0; round < 2; round++)
        await Promise.all(
          [0, 1, 2, 3, 4].map(async (i) =>
            okJson(await cli(data[i]!, ['keygen', 'ceremony', 'step', '--in', dir, '--approve', '--json'])),
          ),
        );
      const deal = readdirSync(dir).find(
        (n) => n.includes('-a0-deal-') && n.endsWith(`${peers[1]!.slice(-10)}.json`),
      )!;
      expect(deal, 'a deal from the second participant').to.be.a('string');
      const good = readFileSync(join(dir, deal), 'utf8');
      const tampered = JSON.parse(good);
      const c = tampered.shares[0].ciphertext as string;
      tampered.shares[0].ciphertext = (c[0] === 'A' ? 'B' : 'A') + c.slice(1);
      writeFileSync(join(dir, deal), JSON.stringify(tampered));
      const keysBefore = snapshot(join(data[3]!, 'keys'));
      const dirBefore = snapshot(dir);
      const refused = await cli(data[3]!, ['keygen', 'ceremony', 'step', '--in', dir, '--approve', '--json']);
      expect(failure(refused, 7).code).to.equal('BAD_SIGNATURE');
      expect(snapshot(join(data[3]!, 'keys'))).to.deep.equal(keysBefore);
      expect(snapshot(dir)).to.deep.equal(dirBefore);
      // A wrong passphrase stops a step the same way.
      const wrong = await cli(data[3]!, ['keygen', 'ceremony', 'step', '--in', dir, '--json'], {
        env: { OPTIMYSTIC_PASSPHRASE: 'not the passphrase' },
      });
      expect(failure(wrong, 7).code).to.equal('BAD_SIGNATURE');
      writeFileSync(join(dir, deal), good);
      const done = await stepUntilComplete(dir);
      for (const p of done) {
        expect(p.key).to.include({ keyId, publicKeyHex, threshold: 3, holders: 5 });
        expect(p.summary.kind).to.equal('refresh');
      }
      const shareAfter = readFileSync(join(data[0]!, 'keys', 'threshold', keyId, 'share.json'), 'utf8');
      expect(shareAfter).to.not.equal(shareBefore);
      const shown = okJson(await cli(data[0]!, ['keygen', 'show', keyId, '--json']));
      expect(shown.publicKey.hex).to.equal(publicKeyHex);
      expect(shown.ceremony.kind).to.equal('refresh');
    });
  });

  describe('a 3-of-5 decryption key', () => {
    let keyId: string;

    it('comes out of a ceremony proposed by another participant', async () => {
      const dir = exchange('decrypt-key');
      okJson(
        await cli(data[2]!, [
          'keygen',
          'ceremony',
          'propose',
          '--cards',
          dir,
          '--threshold',
          '3',
          '--purpose',
          'decrypt',
          '--label',
          'vault',
          '--out',
          dir,
          '--json',
        ]),
      );
      const done = await stepUntilComplete(dir);
      keyId = done[0].key.keyId;
      for (const p of done)
        expect(p.key).to.include({ keyId, suite: 'ristretto255-sha512', purpose: 'decrypt' });
    });

    it('decrypts with three holders; two holders only is NO_QUORUM (exit 6)', async () => {
      const plaintext = 'the launch code is 0000';
      const ciphertextFile = join(tmp, 'secret.ct.json');
      // Anyone with the public key file can encrypt, without a keystore of their own.
      const keyFile = join(tmp, 'vault.key.json');
      writeFileSync(keyFile, (await cli(data[0]!, ['keygen', 'show', keyId, '--json'])).stdout);
      const encrypted = await cli(
        join(tmp, 'outsider'),
        ['keygen', 'encrypt', keyFile, '--out', ciphertextFile],
        { input: plaintext },
      );
      expect(encrypted.code, encrypted.stderr).to.equal(0);
      expect(existsSync(join(tmp, 'outsider'))).to.equal(false);

      const dir = join(tmp, 'decrypt-1');
      const started = okJson(
        await cli(data[4]!, [
          'keygen',
          'decrypt',
          keyId,
          '--ciphertext',
          ciphertextFile,
          '--out',
          dir,
          '--json',
        ]),
      );
      expect(started.did).to.deep.equal(['request', 'partial']);
      okJson(await cli(data[0]!, ['keygen', 'decrypt', keyId, '--in', dir, '--approve', '--json']));
      expect(
        failure(await cli(data[4]!, ['keygen', 'decrypt', keyId, '--in', dir, '--json']), 6).code,
      ).to.equal('NO_QUORUM');
      // A holder that is asked without --approve and without a terminal refuses and writes nothing.
      const unapproved = await cli(data[1]!, ['keygen', 'decrypt', keyId, '--in', dir, '--json']);
      expect(failure(unapproved, 2).code).to.equal('BAD_INPUT');
      okJson(await cli(data[1]!, ['keygen', 'decrypt', keyId, '--in', dir, '--approve', '--json']));
      const decrypted = await cli(data[4]!, ['keygen', 'decrypt', keyId, '--in', dir]);
      expect(decrypted.code, decrypted.stderr).to.equal(0);
      expect(decrypted.stdout).to.equal(plaintext);
      const audit = readFileSync(join(data[0]!, 'keys', 'audit.log'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(audit.filter((e) => e.event === 'decrypt-partial' && e.keyId === keyId)).to.have.length(1);
    });
  });

  it('says plainly that step moves files only and names the networked commands (exit 6)', async () => {
    const run = await cli(data[0]!, [
      'keygen',
      'ceremony',
      'step',
      '--transport',
      'network',
      '--in',
      tmp,
      '--json',
    ]);
    expect(failure(run, 6).code).to.equal('UNAVAILABLE');
  });

  it('between running nodes without a node on the data directory: UNAVAILABLE naming node start, writing nothing', async () => {
    const before = snapshot(data[0]!);
    for (const args of [
      ['keygen', 'refresh', 'payments', '--transport', 'network'],
      [
        'keygen',
        'ceremony',
        'start',
        '--participants',
        '12D3KooWQXmc2TLUe32N1jgELpdTg1usCcJWEr31fEEHTdekxRut',
        '--threshold',
        '2',
      ],
    ]) {
      const error = failure(await cli(data[0]!, [...args, '--json']), 6);
      expect(error.code).to.equal('UNAVAILABLE');
      expect(error.message).to.match(/no node is running on .*optimystic node start --data/);
      expect(error.message).to.not.match(/--connect/);
    }
    expect(snapshot(data[0]!)).to.deep.equal(before);
  });
});
