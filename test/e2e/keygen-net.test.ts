/**
 * Key ceremonies between running nodes, end to end through the built binary: five `node start`
 * processes on 127.0.0.1 (temporary data directories, free ports) make a 3-of-5 key with
 * `keygen ceremony start` on one and `keygen ceremony accept` on the others; every node ends with the
 * same group public key, and three holders sign (air-gapped `keygen sign` on the nodes' data
 * directories) a message node:crypto verifies as an ordinary Ed25519 signature. The key is refreshed
 * between the nodes (`keygen refresh --transport network`) and signed with again, now between the
 * nodes too (`keygen sign --transport network --wait`). Then: a participant that never accepts fails
 * the ceremony (NO_QUORUM, exit 6) and no key is activated anywhere; a message from a peer outside
 * the roster is rejected; a wrong passphrase is an integrity failure. Last, a 2-of-5 decryption key
 * decrypts between the nodes, the partials reaching the requester's node alone.
 *
 * Sealing uses scrypt cost 2^10 (OPTIMYSTIC_SCRYPT_COST_LOG2, test-only). The `before` hook builds
 * only when dist/ is missing or older than src/; set OPTIMYSTIC_CLI_ROOT to test another build. Every
 * process started here is stopped in `after`, whatever happened.
 */
/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-call --
   the tests read the CLI's JSON output and assert its shape field by field */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { expect } from 'chai';
import { SeededRng } from '../../src/engine/base/rng.js';
import { Identity, signMessage, type AcceptMessage } from '../../src/engine/crypto/index.js';
import { createNetworkNode, type NetworkNode } from '../../src/engine/network/index.js';
import { buildIfStale, cliRoot } from '../helpers/built-cli.js';
import { verifyEd25519 } from '../helpers/ed25519.js';

const passphrase = 'correct horse battery staple';

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function cliEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env))
    if (!key.startsWith('OPTIMYSTIC_') && key !== 'NODE_ENV') env[key] = value;
  return {
    ...env,
    NO_COLOR: '1',
    OPTIMYSTIC_PASSPHRASE: passphrase,
    OPTIMYSTIC_SCRYPT_COST_LOG2: '10',
    ...extra,
  };
}

/** A running CLI process whose stdout is read as it comes (NDJSON). */
class Proc {
  readonly child: ChildProcessWithoutNullStreams;
  stdout = '';
  stderr = '';
  readonly done: Promise<Run>;

  constructor(args: readonly string[], env: Readonly<Record<string, string>> = {}) {
    this.child = spawn(process.execPath, [join(cliRoot, 'bin', 'run.js'), ...args], {
      cwd: cliRoot,
      env: cliEnv(env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stdin.on('error', () => undefined);
    this.child.stdin.end();
    this.child.stdout.setEncoding('utf8').on('data', (text: string) => (this.stdout += text));
    this.child.stderr.setEncoding('utf8').on('data', (text: string) => (this.stderr += text));
    this.done = new Promise((resolve, reject) => {
      this.child.on('error', reject);
      this.child.on('close', (code) => resolve({ code, stdout: this.stdout, stderr: this.stderr }));
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  lines(): any[] {
    return this.stdout
      .split('\n')
      .filter((line) => line.trim().startsWith('{'))
      .map((line) => JSON.parse(line));
  }

  async line(match: (line: any) => boolean, what: string, timeoutMs = 20_000): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines().find(match);
      if (found !== undefined) return found;
      if (!this.running) expect.fail(`exited before ${what}: ${this.stderr}`);
      if (Date.now() > deadline) expect.fail(`timed out waiting for ${what}: ${this.stderr}`);
      await sleep(50);
    }
  }
}

function cli(args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<Run> {
  return new Proc(args, env).done;
}

function okJson(run: Run): any {
  expect(
    run.code,
    `exit code (stdout: ${run.stdout.slice(-600)}; stderr: ${run.stderr.slice(0, 600)})`,
  ).to.equal(0);
  return JSON.parse(run.stdout);
}

function ndjson(run: Run): any[] {
  return run.stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe('key ceremonies between running nodes, through the built binary', function () {
  this.timeout(60_000);
  let tmp: string;
  const nodes: { data: string; proc: Proc; peerId: string; address: string }[] = [];
  const others: Proc[] = [];
  let stranger: NetworkNode | undefined;

  before(async function () {
    this.timeout(300_000);
    buildIfStale();
    tmp = mkdtempSync(join(tmpdir(), 'optimystic-keygen-net-'));
    const start = async (i: number, bootstrap: string[]): Promise<void> => {
      const data = join(tmp, `n${i}`);
      const proc = new Proc([
        'node',
        'start',
        '--no-dashboard',
        '--data',
        data,
        '--listen',
        '/ip4/127.0.0.1/tcp/0',
        ...(bootstrap.length > 0 ? ['--bootstrap', bootstrap.join(',')] : []),
      ]);
      nodes[i] = { data, proc, peerId: '', address: '' };
      const started = await proc.line((l) => l.kind === 'node:start', `node ${i} to start`);
      nodes[i] = { data, proc, peerId: started.peerId, address: started.addresses[0] };
    };
    await start(0, []);
    await Promise.all([1, 2, 3, 4].map((i) => start(i, [nodes[0]!.address])));
    // A full mesh, so every participant reaches every other by peer id at once.
    await Promise.all(
      [1, 2, 3].flatMap((i) =>
        [2, 3, 4]
          .filter((j) => j > i)
          .map(async (j) =>
            okJson(await cli(['peer', 'connect', nodes[j]!.address, '--data', nodes[i]!.data, '--json'])),
          ),
      ),
    );
  });

  after(async function () {
    this.timeout(30_000);
    await stranger?.stop().catch(() => undefined);
    for (const p of [...others, ...nodes.map((n) => n.proc)]) if (p.running) p.child.kill('SIGTERM');
    await Promise.race([
      Promise.all([...others, ...nodes.map((n) => n.proc)].map((p) => p.done)),
      sleep(15_000),
    ]);
    for (const p of [...others, ...nodes.map((n) => n.proc)]) if (p.running) p.child.kill('SIGKILL');
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
  });

  /** `keygen ceremony start` on node 0, in the background, with --json. */
  function startCeremony(args: readonly string[]): Proc {
    const proc = new Proc(['keygen', 'ceremony', 'start', '--data', nodes[0]!.data, '--json', ...args]);
    others.push(proc);
    return proc;
  }

  let keyId = '';
  let publicKeyHex = '';

  it('makes a 3-of-5 key among five nodes: the same group public key everywhere', async () => {
    const peers = nodes.slice(1).map((n) => n.peerId);
    const coordinator = startCeremony([
      '--participants',
      peers.join(','),
      '--threshold',
      '3',
      '--label',
      'payments',
    ]);
    const proposed = await coordinator.line((l) => l.event === 'proposed', 'the proposal');
    expect(Object.values(proposed.nodes as Record<string, string>)).to.have.members(
      nodes.map((n) => n.peerId),
    );
    const accepts = await Promise.all(
      [1, 2, 3, 4].map((i) =>
        cli(['keygen', 'ceremony', 'accept', proposed.tag, '--data', nodes[i]!.data, '--json']),
      ),
    );
    const started = await coordinator.done;
    const runs = [started, ...accepts];
    const finals = runs.map((run) => {
      expect(run.code, `${run.stdout.slice(-600)} ${run.stderr}`).to.equal(0);
      return ndjson(run).at(-1);
    });
    expect(finals.map((f) => f.event)).to.deep.equal(Array(5).fill('complete'));
    publicKeyHex = finals[0].key.publicKeyHex;
    keyId = finals[0].key.keyId;
    expect(publicKeyHex).to.match(/^[0-9a-f]{64}$/);
    expect(new Set(finals.map((f) => f.key.publicKeyHex))).to.deep.equal(new Set([publicKeyHex]));
    expect(finals.map((f) => f.key.identifier).sort()).to.deep.equal([1, 2, 3, 4, 5]);
    // Step by step: every phase and every participant's messages were reported.
    const events = ndjson(started).map((e) => e.event);
    expect(events).to.include.members(['proposed', 'decided', 'received', 'phase', 'complete']);
    expect(ndjson(started).filter((e) => e.event === 'received' && e.type === 'Confirm')).to.have.length(4);
    // The share is in each node's keystore, like after an air-gapped ceremony.
    for (const n of nodes) {
      const keys = okJson(await cli(['keygen', 'list', '--data', n.data, '--json']));
      expect(keys.map((k: any) => [k.keyId, k.status, k.threshold, k.holders])).to.deep.equal([
        [keyId, 'active', 3, 5],
      ]);
    }
    const shown = okJson(await cli(['keygen', 'show', keyId, '--data', nodes[3]!.data, '--json']));
    expect(shown.publicKey.hex).to.equal(publicKeyHex);
  });

  /** Air-gapped signing by node 0 (coordinator and holder) and `holders`; the signature in hex. */
  async function sign(holders: readonly number[], message: string, dir: string): Promise<string> {
    const at = (i: number, args: string[]): Promise<Run> =>
      cli(['keygen', 'sign', keyId, ...args, '--data', nodes[i]!.data]);
    okJson(await at(0, ['--message', message, '--out', dir, '--json']));
    for (const i of holders) okJson(await at(i, ['--in', dir, '--approve', '--json']));
    okJson(await at(0, ['--in', dir, '--json']));
    await Promise.all(holders.map(async (i) => okJson(await at(i, ['--in', dir, '--json']))));
    const signed = await at(0, ['--in', dir]);
    expect(signed.code, signed.stderr).to.equal(0);
    return signed.stdout.trim();
  }

  it('three holders sign with the shares the nodes stored; node:crypto verifies it as Ed25519', async () => {
    expect(keyId, 'the ceremony made a key').to.not.equal('');
    const message = 'pay 10 to bob';
    const signatureHex = await sign([2, 4], message, join(tmp, 'sign'));
    expect(verifyEd25519(publicKeyHex, Buffer.from(message), signatureHex)).to.equal(true);
    expect(verifyEd25519(publicKeyHex, Buffer.from('pay 99 to bob'), signatureHex)).to.equal(false);
  });

  it('refreshes the key between the nodes (keygen refresh --transport network): same key, new shares that sign', async () => {
    expect(keyId, 'the ceremony made a key').to.not.equal('');
    // Without --out, the air-gapped form says what is missing and writes nothing.
    const noDir = await cli(['keygen', 'refresh', keyId, '--data', nodes[1]!.data, '--json']);
    expect(noDir.code).to.equal(2);
    expect(JSON.parse(noDir.stdout).error.message).to.match(/--out DIR.*--transport network/);
    const proposer = new Proc([
      'keygen',
      'refresh',
      keyId,
      '--transport',
      'network',
      '--data',
      nodes[1]!.data,
      '--json',
    ]);
    others.push(proposer);
    const proposed = await proposer.line((l) => l.event === 'proposed', 'the refresh proposal');
    expect(proposed.summary.kind).to.equal('refresh');
    const accepts = await Promise.all(
      [0, 2, 3, 4].map((i) =>
        cli(['keygen', 'ceremony', 'accept', proposed.tag, '--data', nodes[i]!.data, '--json']),
      ),
    );
    for (const run of [await proposer.done, ...accepts]) {
      expect(run.code, `${run.stdout.slice(-600)} ${run.stderr}`).to.equal(0);
      const last = ndjson(run).at(-1);
      expect(last.event).to.equal('complete');
      expect([last.key.keyId, last.key.publicKeyHex]).to.deep.equal([keyId, publicKeyHex]);
    }
    const message = 'pay 12 to carol';
    const signatureHex = await sign([1, 3], message, join(tmp, 'sign-after-refresh'));
    expect(verifyEd25519(publicKeyHex, Buffer.from(message), signatureHex)).to.equal(true);
  });

  it('signs between the nodes (keygen sign --transport network --wait): piped, stdout is the signature alone', async () => {
    expect(keyId, 'the ceremony made a key').to.not.equal('');
    const message = 'pay 13 to dave';
    const coordinator = new Proc([
      'keygen',
      'sign',
      keyId,
      '--message',
      message,
      '--transport',
      'network',
      '--wait',
      '--timeout',
      '50s',
      '--data',
      nodes[0]!.data,
    ]);
    others.push(coordinator);
    // Two holders approve on their own nodes; with the coordinator's share that is t = 3.
    const holders = await Promise.all(
      [2, 4].map((i) =>
        cli([
          'keygen',
          'sign',
          keyId,
          '--transport',
          'network',
          '--approve',
          '--wait',
          '--timeout',
          '50s',
          '--data',
          nodes[i]!.data,
          '--json',
        ]),
      ),
    );
    for (const run of holders) {
      expect(run.code, `${run.stdout} ${run.stderr}`).to.equal(0);
      expect(JSON.parse(run.stdout).flatMap((p: any) => p.did)).to.include.members(['committed', 'signed']);
    }
    const signed = await coordinator.done;
    expect(signed.code, signed.stderr).to.equal(0);
    const signatureHex = signed.stdout.trim();
    expect(signatureHex).to.match(/^[0-9a-f]{128}$/);
    expect(verifyEd25519(publicKeyHex, Buffer.from(message), signatureHex)).to.equal(true);
    expect(signed.stderr).to.match(/signature aggregated and verified/);
    // A holder with nothing to do, without --wait, says so (NOT_FOUND, exit 4).
    const idle = await cli([
      'keygen',
      'sign',
      keyId,
      '--transport',
      'network',
      '--data',
      nodes[3]!.data,
      '--json',
    ]);
    expect(idle.code, idle.stdout).to.equal(4);
  });

  it('fails with NO_QUORUM (exit 6) when a participant never accepts, and activates no key anywhere', async () => {
    const coordinator = startCeremony([
      '--participants',
      `${nodes[1]!.peerId},${nodes[2]!.peerId}`,
      '--threshold',
      '2',
      '--label',
      'never',
      '--expires',
      '4s',
    ]);
    const proposed = await coordinator.line((l) => l.event === 'proposed', 'the proposal');
    const accepted = await cli([
      'keygen',
      'ceremony',
      'accept',
      proposed.tag,
      '--data',
      nodes[1]!.data,
      '--json',
    ]);
    // Node 2 never accepts.
    const started = await coordinator.done;
    for (const run of [started, accepted]) {
      expect(run.code, run.stdout.slice(-600)).to.equal(6);
      const lines = ndjson(run);
      expect(lines.at(-1).error.code).to.equal('NO_QUORUM');
      expect(lines.at(-2).event).to.equal('failed');
      expect(lines.at(-2).failure.code).to.equal('NO_QUORUM');
    }
    const silent = Object.entries(proposed.nodes as Record<string, string>).find(
      ([, node]) => node === nodes[2]!.peerId,
    )![0];
    expect(ndjson(started).at(-2).failure.culprits).to.deep.equal([silent]);
    for (const i of [0, 1, 2]) {
      const keys = okJson(await cli(['keygen', 'list', '--data', nodes[i]!.data, '--json']));
      expect(keys.map((k: any) => k.label)).to.deep.equal(['payments']);
    }
    // The silent node sees it fail too (its proposal expired without its decision).
    const deadline = Date.now() + 10_000;
    for (;;) {
      const records = okJson(await cli(['keygen', 'ceremony', 'list', '--data', nodes[2]!.data, '--json']));
      const record = records.find((r: any) => r.session === proposed.session);
      if (record?.phase === 'failed') break;
      if (Date.now() > deadline) expect.fail(`node 2 still has ${JSON.stringify(record?.phase)}`);
      await sleep(300);
    }
  });

  it('rejects a message from a peer outside the roster; a wrong passphrase is an integrity failure (exit 7)', async () => {
    const coordinator = startCeremony([
      '--participants',
      `${nodes[3]!.peerId},${nodes[4]!.peerId}`,
      '--threshold',
      '2',
      '--label',
      'strangers',
    ]);
    const proposed = await coordinator.line((l) => l.event === 'proposed', 'the proposal');
    stranger = await createNetworkNode(
      { privateKey: await generateKeyPair('Ed25519') },
      { clientMode: true },
    );
    await stranger.connect(nodes[3]!.address);
    const outsider = Identity.generate(new SeededRng(11));
    const foreign = signMessage<AcceptMessage>(outsider, {
      type: 'Accept',
      session: proposed.session,
      from: outsider.peerId,
    });
    let refused: any;
    try {
      await stranger.request(nodes[3]!.peerId, 'ceremony', { type: 'deliver', message: foreign });
    } catch (error) {
      refused = error;
    }
    expect(refused?.code, String(refused)).to.equal('BAD_INPUT');
    // Node 3's own node card is public, but it will not take a message that did not come from node 0.
    const wrongPassphrase = join(tmp, 'wrong-passphrase');
    writeFileSync(wrongPassphrase, 'not the passphrase\n');
    const unlock = await cli([
      'keygen',
      'ceremony',
      'unlock',
      '--data',
      nodes[3]!.data,
      '--passphrase-file',
      wrongPassphrase,
      '--json',
    ]);
    // Node 3 was started with the right passphrase: another one is refused.
    expect(unlock.code, unlock.stdout).to.equal(7);
    expect(JSON.parse(unlock.stdout).error.code).to.equal('BAD_SIGNATURE');
    // Clean up: node 4 declines, so the ceremony fails at once everywhere.
    okJson(
      await cli([
        'keygen',
        'ceremony',
        'decline',
        proposed.tag,
        '--data',
        nodes[4]!.data,
        '--reason',
        'test over',
        '--json',
      ]),
    );
    const started = await coordinator.done;
    expect(started.code).to.equal(6);
    expect(ndjson(started).at(-1).error.code).to.equal('NO_QUORUM');
  });

  it('decrypts between the nodes (keygen decrypt --transport network): partials reach the requester alone', async () => {
    const peers = nodes.slice(1).map((n) => n.peerId);
    const coordinator = startCeremony([
      '--participants',
      peers.join(','),
      '--threshold',
      '2',
      '--purpose',
      'decrypt',
      '--label',
      'vault',
    ]);
    const proposed = await coordinator.line((l) => l.event === 'proposed', 'the proposal');
    const accepts = await Promise.all(
      [1, 2, 3, 4].map((i) =>
        cli(['keygen', 'ceremony', 'accept', proposed.tag, '--data', nodes[i]!.data, '--json']),
      ),
    );
    for (const run of accepts) expect(ndjson(run).at(-1).event, run.stderr).to.equal('complete');
    const made = await coordinator.done;
    expect(made.code, made.stderr).to.equal(0);
    const vault = ndjson(made).at(-1).key.keyId as string;
    const ct = join(tmp, 'vault.ct.json');
    const plain = join(tmp, 'vault.txt');
    writeFileSync(plain, 'the launch code is 0000');
    okJson(
      await cli(['keygen', 'encrypt', vault, '--in', plain, '--out', ct, '--data', nodes[0]!.data, '--json']),
    );
    // Node 1 asks (and answers for itself); node 3 answers; nobody else is asked to.
    const requester = new Proc([
      'keygen',
      'decrypt',
      vault,
      '--ciphertext',
      ct,
      '--transport',
      'network',
      '--wait',
      '--timeout',
      '50s',
      '--data',
      nodes[1]!.data,
    ]);
    others.push(requester);
    const holder = await cli([
      'keygen',
      'decrypt',
      vault,
      '--transport',
      'network',
      '--approve',
      '--wait',
      '--timeout',
      '50s',
      '--data',
      nodes[3]!.data,
      '--json',
    ]);
    expect(holder.code, `${holder.stdout} ${holder.stderr}`).to.equal(0);
    const decrypted = await requester.done;
    expect(decrypted.code, decrypted.stderr).to.equal(0);
    expect(decrypted.stdout).to.equal('the launch code is 0000');
    // The partials went to node 1 only: node 2 (a holder that did not answer) has the request alone.
    const exchange = (i: number): string[] => readdirSync(join(nodes[i]!.data, 'keys', 'exchange', vault));
    expect(exchange(1).filter((n) => n.includes('-partial-'))).to.have.length(2);
    expect(exchange(2).filter((n) => n.startsWith('decrypt-'))).to.have.length(1);
  });
});
