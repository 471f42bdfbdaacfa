/**
 * Nodes end to end, through the built binary (`node bin/run.js`): three `node start` processes on
 * 127.0.0.1 find each other, data commands go through a running node's control socket, `node stop`
 * and signals stop cleanly, and a node killed with SIGKILL restarts with the same identity.
 *
 * The `before` hook runs `npm run build` when dist/ is missing or older than src/. Set
 * OPTIMYSTIC_CLI_ROOT to test another build; then nothing is built. Every process started here is
 * killed in afterEach.
 */
/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-return --
   the tests read the CLI's JSON output and assert its shape field by field */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { buildIfStale, cliRoot } from '../helpers/built-cli.js';

const loopback = '/ip4/127.0.0.1/tcp/0';

function cleanEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('OPTIMYSTIC_') && key !== 'NODE_ENV') env[key] = value;
  }
  return { ...env, NO_COLOR: '1', ...extra };
}

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function cli(args: readonly string[], input?: string): Promise<Run> {
  const child = spawn(process.execPath, [join(cliRoot, 'bin', 'run.js'), ...args], {
    cwd: cliRoot,
    env: cleanEnv(),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdin.on('error', () => undefined);
  child.stdin.end(input);
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
  expect(run.code, `exit code (stdout: ${run.stdout.slice(0, 300)}; stderr: ${run.stderr})`).to.equal(0);
  return JSON.parse(run.stdout);
}

function ndjson(text: string): any[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line));
}

/** A `node start` process and its NDJSON log. */
class NodeProcess {
  readonly child: ChildProcessWithoutNullStreams;
  readonly lines: any[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private buffer = '';

  constructor(
    readonly dataDir: string,
    args: readonly string[],
  ) {
    this.child = spawn(
      process.execPath,
      [join(cliRoot, 'bin', 'run.js'), 'node', 'start', '--no-dashboard', '--data', dataDir, ...args],
      { cwd: cliRoot, env: cleanEnv(), stdio: ['pipe', 'pipe', 'pipe'] },
    );
    this.child.stdout.setEncoding('utf8').on('data', (text: string) => {
      this.buffer += text;
      let newline;
      while ((newline = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, newline);
        this.buffer = this.buffer.slice(newline + 1);
        if (line.trim() !== '') this.lines.push(JSON.parse(line));
      }
    });
    this.child.stderr.setEncoding('utf8').on('data', (text: string) => (this.stderr += text));
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => resolve({ code, signal })),
    );
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The node:start log line, once the node is up. */
  async started(timeoutMs = 20_000): Promise<{ peerId: string; addresses: string[] }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.lines.find((entry) => entry.kind === 'node:start');
      if (line !== undefined) return line;
      if (!this.running) expect.fail(`node exited before starting: ${this.stderr}`);
      if (Date.now() > deadline) expect.fail(`node did not start in time: ${this.stderr}`);
      await sleep(50);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function eventually<T>(
  check: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) expect.fail(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

describe('nodes end to end through the built binary', function () {
  this.timeout(60_000);
  let tmp: string;
  const processes: NodeProcess[] = [];

  before(function () {
    this.timeout(300_000);
    buildIfStale();
    tmp = mkdtempSync(join(tmpdir(), 'optimystic-nodes-'));
  });

  afterEach(async () => {
    for (const node of processes.splice(0)) {
      if (node.running) node.child.kill('SIGKILL');
      await node.exited;
    }
  });

  after(() => {
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
  });

  function startNode(name: string, args: readonly string[] = []): NodeProcess {
    const node = new NodeProcess(join(tmp, name), ['--listen', loopback, ...args]);
    processes.push(node);
    return node;
  }

  it('runs three nodes that find each other, and serves data commands through the control socket', async () => {
    // The light client below (another machine, in effect) shows its identity first, for --clients.
    const elsewhere = join(tmp, 'elsewhere');
    const client = okJson(await cli(['keygen', 'identity', '--client', '--json', '--data', elsewhere]));
    expect(client).to.include({ created: true, path: join(elsewhere, 'client.key') });
    const first = startNode('n1', ['--clients', client.peerId]);
    const { peerId: id1, addresses } = await first.started();
    const bootstrap = addresses[0]!;
    const second = startNode('n2', ['--bootstrap', bootstrap]);
    const third = startNode('n3', ['--bootstrap', bootstrap]);
    const [{ peerId: id2 }, { peerId: id3 }] = await Promise.all([second.started(), third.started()]);
    const ids = [id1, id2, id3];

    // Each node lists the other two (the third learns of the second through the DHT).
    await Promise.all(
      [first, second, third].map((node, i) =>
        eventually(
          async () => {
            const peers = okJson(await cli(['peer', 'list', '--json', '--data', node.dataDir])) as {
              id: string;
            }[];
            const others = ids.filter((_, j) => j !== i);
            return others.every((id) => peers.some((peer) => peer.id === id)) ? peers : undefined;
          },
          `peers of node ${i + 1}`,
        ),
      ),
    );

    const status = okJson(await cli(['node', 'status', '--json', '--data', first.dataDir]));
    expect(status).to.include({ peerId: id1, network: 'default', role: 'transaction', pid: first.child.pid });
    expect(status.peers.length).to.be.at.least(2);
    expect(status.listenAddresses).to.include(bootstrap);

    // Data commands on n1 go through the node: the store is the node's, so --offline cannot open it.
    const data = ['--data', first.dataDir];
    okJson(await cli(['collection', 'create', 'accounts', '--type', 'tree', '--json', ...data]));
    okJson(await cli(['collection', 'put', 'accounts', 'alice', '{"balance":100}', '--json', ...data]));
    const tx = await cli(
      ['tx', ...data],
      '{"actions":[{"collection":"accounts","op":"put","key":"bob","value":{"balance":5}}]}\n' +
        '{"actions":[{"collection":"accounts","op":"incr","key":"alice","path":"balance","by":-10,"min":0}]}\n',
    );
    expect(tx.code, tx.stderr).to.equal(0);
    expect(ndjson(tx.stdout).map((line) => line.ok)).to.deep.equal([true, true]);
    const offline = await cli(['collection', 'list', '--offline', '--json', ...data]);
    expect(offline.code).to.equal(6);
    expect(ndjson(offline.stdout)[0].error.code).to.equal('DATA_DIR_BUSY');
    const delegatedScan = await cli(['collection', 'scan', 'accounts', '--json', ...data]);
    const delegatedGet = await cli(['collection', 'get', 'accounts', 'alice', '--json', ...data]);
    expect(delegatedScan.code).to.equal(0);
    expect(ndjson(delegatedScan.stdout).map((entry) => entry.key)).to.deep.equal(['alice', 'bob']);

    // A light client of n1 from elsewhere sees the same; its data directory holds only its key.
    const lightGet = (dir: string) =>
      cli(['collection', 'get', 'accounts', 'alice', '--json', '--connect', bootstrap, '--data', dir]);
    const remote = await lightGet(elsewhere);
    expect(okJson(remote)).to.deep.equal(okJson(delegatedGet));
    expect(remote.stderr).to.equal('');
    expect(readdirSync(elsewhere)).to.deep.equal(['client.key']);
    // A client n1 does not list gets its own peer id and the fix (exit 2), and reads nothing.
    const strangerDir = join(tmp, 'stranger');
    const stranger = await lightGet(strangerDir);
    expect(stranger.code).to.equal(2);
    const strangerId = /this client is (\S+);/.exec(stranger.stderr)?.[1];
    expect(strangerId, stranger.stderr).to.be.a('string');
    expect(JSON.parse(stranger.stdout).error).to.include({ code: 'BAD_INPUT' });
    expect(JSON.parse(stranger.stdout).error.message).to.include(`--clients ${strangerId}`);

    // The node's peer view: closest agrees across nodes, ping reaches a peer.
    const closest = await Promise.all(
      [first, second, third].map(async (node) =>
        okJson(await cli(['peer', 'closest', 'accounts', '--json', '--data', node.dataDir])),
      ),
    );
    const nearest = closest.map((result: { peers: { id: string }[] }) => result.peers.map((peer) => peer.id));
    expect([...nearest[0]!].sort()).to.deep.equal([...ids].sort());
    expect(nearest[1]).to.deep.equal(nearest[0]);
    expect(nearest[2]).to.deep.equal(nearest[0]);
    const ping = okJson(await cli(['peer', 'ping', id2, '--count', '2', '--json', ...data]));
    expect(ping.rttsMs).to.have.length(2);

    // node stop: the process exits 0 and leaves no api or lock behind.
    const stop = await cli(['node', 'stop', '--json', ...data]);
    expect(okJson(stop)).to.include({ stopped: true, peerId: id1 });
    expect(await first.exited).to.deep.equal({ code: 0, signal: null });
    expect(existsSync(join(first.dataDir, 'api'))).to.equal(false);
    expect(existsSync(join(first.dataDir, 'repo.lock'))).to.equal(false);
    expect(first.lines.at(-1)).to.include({ kind: 'node:stop' });

    // Its data directory is part of a network now: opened alone it would fork from its cluster, so a
    // command on it is refused (exit 6, saying what to do) while the other nodes serve the data.
    const embeddedGet = await cli(['collection', 'get', 'accounts', 'alice', '--json', ...data]);
    expect(embeddedGet.code).to.equal(6);
    expect(JSON.parse(embeddedGet.stdout).error).to.include({ code: 'UNAVAILABLE' });
    expect(JSON.parse(embeddedGet.stdout).error.message).to.include('node start --data');
    // --offline reads its own copies, read-only, saying so on stderr; a change is refused (exit 6).
    const offlineGet = await cli(['collection', 'get', 'accounts', 'alice', '--offline', '--json', ...data]);
    expect(offlineGet.code, offlineGet.stderr).to.equal(0);
    expect(okJson(offlineGet)).to.deep.equal(okJson(delegatedGet));
    expect(offlineGet.stderr).to.include('read-only');
    const offlineScan = await cli(['collection', 'scan', 'accounts', '--offline', '--json', ...data]);
    expect(offlineScan.stdout).to.equal(delegatedScan.stdout);
    const offlinePut = await cli([
      'collection',
      'put',
      'accounts',
      'carol',
      '1',
      '--offline',
      '--json',
      ...data,
    ]);
    expect(offlinePut.code).to.equal(6);
    expect(JSON.parse(offlinePut.stdout).error.code).to.equal('UNAVAILABLE');
    expect(JSON.parse(offlinePut.stdout).error.message).to.include('read-only');
    // Its copies carry the certificates the tail groups decided, and they verify offline.
    const offlineInfo = okJson(await cli(['collection', 'info', 'accounts', '--offline', '--json', ...data]));
    const offlineVerify = await cli(['block', 'verify', offlineInfo.tail, '--offline', '--json', ...data]);
    expect(offlineVerify.code, offlineVerify.stderr).to.equal(0);
    expect(okJson(offlineVerify)).to.include({ verified: true, collection: 'accounts' });
    const elsewhereScan = await cli(['collection', 'scan', 'accounts', '--json', '--data', second.dataDir]);
    const elsewhereGet = await cli([
      'collection',
      'get',
      'accounts',
      'alice',
      '--json',
      '--data',
      second.dataDir,
    ]);
    expect(elsewhereScan.stdout).to.equal(delegatedScan.stdout);
    expect(okJson(elsewhereGet)).to.deep.equal(okJson(delegatedGet));

    // SIGTERM stops a node gracefully too.
    third.child.kill('SIGTERM');
    expect(await third.exited).to.deep.equal({ code: 0, signal: null });
    expect(existsSync(join(third.dataDir, 'repo.lock'))).to.equal(false);

    // The survivor notices both have gone.
    await eventually(async () => {
      const peers = okJson(await cli(['peer', 'list', '--json', '--data', second.dataDir])) as unknown[];
      return peers.length === 0 ? true : undefined;
    }, 'n2 to lose its peers');
  });

  it('lets a light client follow a diary over one connection, without logging it as a peer', async () => {
    const clientDir = join(tmp, 'follower');
    const client = okJson(await cli(['keygen', 'identity', '--client', '--json', '--data', clientDir]));
    const node = startNode('f1', ['--clients', client.peerId]);
    const { addresses } = await node.started();
    const data = ['--data', node.dataDir];
    okJson(await cli(['collection', 'create', 'events', '--type', 'diary', '--json', ...data]));
    const follow = spawn(
      process.execPath,
      [join(cliRoot, 'bin', 'run.js'), 'collection', 'read', 'events', '--follow', '--json'].concat([
        '--connect',
        addresses[0]!,
        '--data',
        clientDir,
      ]),
      { cwd: cliRoot, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const followed = new Promise<number | null>((resolve) => follow.on('exit', (code) => resolve(code)));
    let out = '';
    let err = '';
    follow.stdout.setEncoding('utf8').on('data', (text: string) => (out += text));
    follow.stderr.setEncoding('utf8').on('data', (text: string) => (err += text));
    try {
      okJson(await cli(['collection', 'append', 'events', '{"n":1}', '--json', ...data]));
      await eventually(
        () => Promise.resolve(ndjson(out).length === 1 ? true : undefined),
        `the first entry (${err})`,
      );
      const lightClients = async (): Promise<any[]> =>
        (okJson(await cli(['peer', 'list', '--json', ...data])) as any[]).filter((peer) => peer.lightClient);
      const [first] = await eventually(
        async () => ((await lightClients()).length === 1 ? lightClients() : undefined),
        'the follower listed as a light client',
      );
      expect(first.id).to.equal(client.peerId);
      okJson(await cli(['collection', 'append', 'events', '{"n":2}', '--json', ...data]));
      await eventually(
        () => Promise.resolve(ndjson(out).length === 2 ? true : undefined),
        'the second entry',
      );
      // Several checks later, still the one connection it opened.
      expect((await lightClients()).map((peer) => peer.connectedAt)).to.deep.equal([first.connectedAt]);
      expect(ndjson(out)).to.deep.equal([
        { index: 0, value: { n: 1 } },
        { index: 1, value: { n: 2 } },
      ]);
    } finally {
      follow.kill('SIGINT');
    }
    expect(await followed).to.equal(0);
    expect(
      node.lines.filter((line) => line.kind === 'peer:connect' || line.kind === 'peer:disconnect'),
    ).to.deep.equal([]);
  });

  it('admits a light client added to the config file on node reload, without a restart', async () => {
    const clientDir = join(tmp, 'reload-client');
    const client = okJson(await cli(['keygen', 'identity', '--client', '--json', '--data', clientDir]));
    const dataDir = join(tmp, 'r1');
    mkdirSync(dataDir, { recursive: true });
    const configFile = join(dataDir, 'config.json');
    writeFileSync(configFile, JSON.stringify({ clients: [] }));
    const node = startNode('r1');
    const { addresses } = await node.started();
    const light = ['collection', 'list', '--json', '--connect', addresses[0]!, '--data', clientDir];
    expect((await cli(light)).code).to.equal(2);
    writeFileSync(configFile, JSON.stringify({ clients: [client.peerId] }));
    expect(okJson(await cli(['node', 'reload', '--json', '--data', dataDir]))).to.deep.equal({
      applied: ['clients'],
      needsRestart: [],
      configFile,
    });
    expect(okJson(await cli(light))).to.deep.equal([]);
    const remote = await cli(['node', 'reload', '--json', '--data', clientDir, '--connect', addresses[0]!]);
    expect(remote.code).to.equal(2);
    expect(
      node.lines.some((line) => line.kind === 'info' && String(line.message).includes('applied clients')),
    ).to.equal(true);
  });

  it('refuses a second node on a busy data directory, and restarts after kill -9 with the same peer id', async () => {
    const node = startNode('k1');
    const { peerId } = await node.started();

    const second = await cli([
      'node',
      'start',
      '--no-dashboard',
      '--json',
      '--listen',
      loopback,
      '--data',
      node.dataDir,
    ]);
    expect(second.code).to.equal(6);
    expect(ndjson(second.stdout)[0].error.code).to.equal('DATA_DIR_BUSY');
    expect(node.running).to.equal(true);

    okJson(await cli(['collection', 'create', 'kept', '--type', 'diary', '--json', '--data', node.dataDir]));
    node.child.kill('SIGKILL');
    await node.exited;
    expect(existsSync(join(node.dataDir, 'repo.lock'))).to.equal(true);

    const again = startNode('k1');
    const restarted = await again.started();
    expect(restarted.peerId).to.equal(peerId);
    const notes = again.lines.filter((line) => line.kind === 'info').map((line) => line.message as string);
    expect(notes.some((message) => message.includes('lock'))).to.equal(true);
    const list = okJson(await cli(['collection', 'list', '--json', '--data', node.dataDir])) as {
      name: string;
    }[];
    expect(list.map((c) => c.name)).to.deep.equal(['kept']);
    const identity = okJson(await cli(['keygen', 'identity', '--json', '--data', node.dataDir]));
    expect(identity).to.include({ peerId, created: false });
  });

  it('serves a data directory first used embedded: the data made without a node stays writable', async () => {
    const dataDir = join(tmp, 'e1');
    okJson(await cli(['collection', 'create', 'accounts', '--type', 'tree', '--json', '--data', dataDir]));
    okJson(
      await cli(['collection', 'put', 'accounts', 'alice', '{"balance":100}', '--json', '--data', dataDir]),
    );
    const node = startNode('e1');
    await node.started();
    const tx = await cli(
      ['tx', '--data', dataDir],
      '{"actions":[{"collection":"accounts","op":"incr","key":"alice","path":"balance","by":-40,"min":0}]}\n',
    );
    expect(tx.code, tx.stdout + tx.stderr).to.equal(0);
    expect(ndjson(tx.stdout)[0]).to.include({ ok: true });
    const alice = okJson(await cli(['collection', 'get', 'accounts', 'alice', '--json', '--data', dataDir]));
    expect(alice)
      .to.include({ key: 'alice', found: true })
      .and.to.deep.include({ value: { balance: 60 } });
  });

  it('keeps two databases apart when their nodes meet (each made its own accounts), logging why', async () => {
    // As two machines that each ran the quick start and then started nodes pointing at each other.
    for (const [name, key] of [
      ['q1', 'alice'],
      ['q2', 'carol'],
    ] as const) {
      const dataDir = join(tmp, name);
      okJson(await cli(['collection', 'create', 'accounts', '--type', 'tree', '--json', '--data', dataDir]));
      okJson(await cli(['collection', 'put', 'accounts', key, '{"balance":1}', '--json', '--data', dataDir]));
    }
    const first = startNode('q1');
    const { addresses } = await first.started();
    const second = startNode('q2', ['--bootstrap', addresses[0]!]);
    const { peerId: secondId } = await second.started();
    const refusal = (node: NodeProcess, peer: string) =>
      node.lines.find(
        (line) =>
          line.kind === 'error' && line.peerId === peer && String(line.message).includes('another database'),
      );
    const firstId = (await first.started()).peerId;
    await eventually(
      () => Promise.resolve(refusal(first, secondId) && refusal(second, firstId) ? true : undefined),
      'both nodes to refuse the other',
    );
    const status = okJson(await cli(['node', 'status', '--json', '--data', join(tmp, 'q1')]));
    expect(status.members.foreign).to.deep.equal([{ peerId: secondId, collection: 'accounts' }]);
    expect(status.members.known).to.equal(1);
    for (const [name, key] of [
      ['q1', 'alice'],
      ['q2', 'carol'],
    ] as const) {
      const scan = await cli(['collection', 'scan', 'accounts', '--json', '--data', join(tmp, name)]);
      expect(scan.code, scan.stderr).to.equal(0);
      expect(ndjson(scan.stdout).map((row: { key: string }) => row.key)).to.deep.equal([key]);
    }
  });

  it('reports a bad config file as CONFIG_INVALID (exit 3) and a bad flag as BAD_INPUT (exit 2)', async () => {
    const badEnv = spawnSync(
      process.execPath,
      [
        join(cliRoot, 'bin', 'run.js'),
        'node',
        'start',
        '--no-dashboard',
        '--json',
        '--data',
        join(tmp, 'cfg'),
      ],
      { cwd: cliRoot, env: cleanEnv({ OPTIMYSTIC_CLUSTER_SIZE: 'many' }), encoding: 'utf8' },
    );
    expect(badEnv.status).to.equal(3);
    expect(JSON.parse(badEnv.stdout).error.code).to.equal('CONFIG_INVALID');
    const badFlag = await cli([
      'node',
      'start',
      '--no-dashboard',
      '--json',
      '--data',
      join(tmp, 'cfg'),
      '--listen',
      'nonsense',
    ]);
    expect(badFlag.code).to.equal(2);
    expect(ndjson(badFlag.stdout)[0].error.code).to.equal('BAD_INPUT');
    expect(existsSync(join(tmp, 'cfg', 'repo.lock'))).to.equal(false);
    const noNode = await cli(['node', 'status', '--json', '--data', join(tmp, 'cfg')]);
    expect(noNode.code).to.equal(6);
    expect(ndjson(noNode.stdout)[0].error.code).to.equal('UNAVAILABLE');
  });
});
