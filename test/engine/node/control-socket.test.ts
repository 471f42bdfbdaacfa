/* eslint-disable @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-explicit-any -- frames are read as parsed JSON */
import { expect } from 'chai';
import { statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EngineError, isEngineError } from '../../../src/engine/base/errors.js';
import { checkCertificateAlone } from '../../../src/engine/cluster/certifier.js';
import { callApi } from '../../../src/engine/node/api.js';
import { ControlClient } from '../../../src/engine/node/control-client.js';
import { LineSplitter } from '../../../src/engine/node/control-protocol.js';
import { ControlServer } from '../../../src/engine/node/control-server.js';
import type { NodeControl } from '../../../src/engine/node/node-api.js';
import { RemoteNode } from '../../../src/engine/node/remote.js';
import type { SoloNode } from '../../../src/engine/node/solo-node.js';
import { StatusHub } from '../../../src/engine/node/status-hub.js';
import { memoryNode } from '../../helpers/solo.js';

/** A NodeControl for tests: a fixed identity, no network, a hub for watch. */
function fakeControl(hub: StatusHub, stops: { count: number }): NodeControl {
  const unavailable = (): Promise<never> =>
    Promise.reject(new EngineError('UNAVAILABLE', 'no network in this test'));
  return {
    status: () => Promise.resolve(hub.current()!),
    identity: () => Promise.resolve({ peerId: '12D3KooWtest', publicKey: 'pk' }),
    stop: () => {
      stops.count++;
      return Promise.resolve();
    },
    reload: unavailable,
    peers: () => Promise.resolve([]),
    peerInfo: unavailable,
    connect: unavailable,
    ping: unavailable,
    findPeer: unavailable,
    closest: unavailable,
    watch: () => hub.watch(),
  };
}

/** A raw connection that sends lines and collects reply frames. */
class RawClient {
  private readonly frames: Record<string, unknown>[] = [];
  private readonly splitter = new LineSplitter(64 * 1024 * 1024);
  private waiter: (() => void) | undefined;
  closed = false;

  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const piece of this.splitter.push(chunk))
        if ('line' in piece) this.frames.push(JSON.parse(piece.line));
      this.waiter?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
  }

  static open(path: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(path);
      socket.once('connect', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  send(text: string | Buffer): void {
    this.socket.write(text);
  }

  /** Waits until `count` frames have arrived and returns them all. */
  async receive(count: number, timeoutMs = 5000): Promise<Record<string, any>[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length < count) {
      if (this.closed || Date.now() > deadline) expect.fail(`got ${this.frames.length} of ${count} frames`);
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        setTimeout(resolve, 50);
      });
    }
    return this.frames.slice();
  }

  close(): void {
    this.socket.destroy();
  }
}

describe('control socket protocol', () => {
  let dir: string;
  let solo: SoloNode;
  let server: ControlServer;
  let hub: StatusHub;
  const stops = { count: 0 };
  const clients: { close(): unknown }[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'optimystic-control-'));
    ({ node: solo } = await memoryNode(7));
    await solo.createCollection('accounts', 'tree');
    for (let i = 0; i < 30; i++)
      await solo.transact({
        actions: [{ collection: 'accounts', op: 'put', key: `k${String(i).padStart(2, '0')}`, value: i }],
      });
    hub = new StatusHub();
    const node = fakeControl(hub, stops);
    server = await ControlServer.listen(
      join(dir, 'node.sock'),
      (method, params) => callApi({ db: solo, node }, method, params, { local: true }),
      { lineBytesMax: 4096, drainMs: 500 },
    );
  });

  afterEach(async () => {
    for (const client of clients.splice(0)) await client.close();
    await server.close();
    await solo.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function raw(): Promise<RawClient> {
    const client = await RawClient.open(join(dir, 'node.sock'));
    clients.push(client);
    return client;
  }

  it('creates the socket with mode 0600', () => {
    expect(statSync(join(dir, 'node.sock')).mode & 0o777).to.equal(0o600);
  });

  it('answers a request by id, and several in flight on one connection', async () => {
    const client = await raw();
    client.send(
      '{"id":1,"method":"db.get","params":{"name":"accounts","key":"k03"}}\n{"id":"two","method":"node.identity"}\n',
    );
    const frames = await client.receive(2);
    const byId = new Map(frames.map((frame) => [frame['id'], frame]));
    expect(byId.get(1)?.['result']).to.deep.include({ key: 'k03', found: true, value: 3 });
    expect(byId.get('two')?.['result']).to.deep.equal({ peerId: '12D3KooWtest', publicKey: 'pk' });
  });

  it('streams a scan as item frames and an end frame', async () => {
    const client = await raw();
    client.send('{"id":5,"method":"db.scan","params":{"name":"accounts","from":"k10","limit":4}}\n');
    const frames = await client.receive(5);
    expect(frames.slice(0, 4).map((frame) => frame['item'].key)).to.deep.equal(['k10', 'k11', 'k12', 'k13']);
    expect(frames[4]).to.deep.equal({ id: 5, end: true });
  });

  it('answers bad input with an error frame and keeps serving the connection', async () => {
    const client = await raw();
    const bad = [
      'this is not json',
      '[1,2,3]',
      '{"method":"db.get"}',
      '{"id":-1,"method":"db.get"}',
      '{"id":3,"method":42}',
      '{"id":4,"method":"db.nothing"}',
      '{"id":5,"method":"db.get","params":{"name":"accounts"}}',
      '{"id":6,"method":"db.get","params":{"name":"accounts","key":"k","at":-3}}',
      '{"id":7,"method":"db.transact","params":{"request":{"actions":"all of them"}}}',
      '{"id":8,"method":"db.get","params":{"name":"nope","key":"k"}}',
      `{"id":9,"method":"db.get","params":${'['.repeat(200)}${']'.repeat(200)}}`,
    ];
    const codes: unknown[] = [];
    for (const [i, line] of bad.entries()) {
      client.send(`${line}\n`);
      const frame = (await client.receive(i + 1))[i]!;
      codes.push([frame['id'], frame['error']?.code ?? frame['result']?.error?.code]);
    }
    client.send('{"id":99,"method":"db.listCollections"}\n');
    const frames = await client.receive(bad.length + 1);
    expect(codes).to.deep.equal([
      [null, 'BAD_INPUT'],
      [null, 'BAD_INPUT'],
      [null, 'BAD_INPUT'],
      [null, 'BAD_INPUT'],
      [3, 'BAD_INPUT'],
      [4, 'BAD_INPUT'],
      [5, 'BAD_INPUT'],
      [6, 'BAD_INPUT'],
      [7, 'BAD_INPUT'],
      [8, 'NOT_FOUND'],
      [null, 'TOO_LARGE'],
    ]);
    expect(frames.at(-1)?.['result']).to.have.length(1);
  });

  it('skips an oversized line with TOO_LARGE without holding it, then serves the next line', async () => {
    const client = await raw();
    client.send(`{"id":1,"method":"db.get","params":{"name":"${'x'.repeat(10_000)}"}}\n`);
    client.send('{"id":2,"method":"db.listCollections"}\n');
    const frames = await client.receive(2);
    expect(frames[0]).to.deep.include({ id: null });
    expect(frames[0]!['error'].code).to.equal('TOO_LARGE');
    expect(frames[1]!['id']).to.equal(2);
  });

  it('refuses a second request with an id already in flight', async () => {
    const client = await raw();
    client.send('{"id":1,"method":"node.watch"}\n');
    hub.publish(sampleStatus());
    await client.receive(1);
    client.send('{"id":1,"method":"db.listCollections"}\n');
    const frames = await client.receive(2);
    expect(frames[1]!['error'].code).to.equal('BAD_INPUT');
  });

  it('stops a stream on cancel, ending it with an end frame', async () => {
    const client = await raw();
    hub.publish(sampleStatus());
    client.send('{"id":1,"method":"node.watch"}\n');
    await client.receive(1);
    client.send('{"id":2,"method":"cancel","params":{"id":1}}\n');
    hub.publish(sampleStatus());
    const frames = await client.receive(3);
    expect(frames.find((frame) => frame['id'] === 2)?.['result']).to.equal(true);
    expect(frames.find((frame) => frame['id'] === 1 && frame['end'] === true)).to.not.equal(undefined);
  });

  it('survives a client that disconnects in the middle of a stream', async () => {
    const client = await raw();
    client.send('{"id":1,"method":"db.scan","params":{"name":"accounts"}}\n');
    client.close();
    const again = await raw();
    again.send('{"id":1,"method":"db.collectionInfo","params":{"name":"accounts"}}\n');
    expect((await again.receive(1))[0]!['result'].name).to.equal('accounts');
  });

  it('gives a RemoteNode over the socket the same answers as the database itself', async () => {
    const remote = new RemoteNode(await ControlClient.connect(join(dir, 'node.sock')), 'socket', 'test');
    clients.push(remote);
    expect(await remote.listCollections()).to.deep.equal(await solo.listCollections());
    expect(await remote.get('accounts', 'k07')).to.deep.equal(await solo.get('accounts', 'k07'));
    const remoteScan = [];
    for await (const entry of remote.scan('accounts', { reverse: true, limit: 5 })) remoteScan.push(entry);
    const localScan = [];
    for await (const entry of solo.scan('accounts', { reverse: true, limit: 5 })) localScan.push(entry);
    expect(remoteScan).to.deep.equal(localScan);
    const info = await solo.collectionInfo('accounts');
    expect(await remote.blockHistory(info.root)).to.deep.equal(await solo.blockHistory(info.root));
    const outcome = await remote.transact({
      actions: [{ collection: 'accounts', op: 'put', key: 'new', value: { a: 1 } }],
    });
    expect(outcome.ok).to.equal(true);
    expect(outcome.ok && outcome.commit['accounts']?.certificate).to.equal(undefined);
    expect((await solo.get('accounts', 'new')).value).to.deep.equal({ a: 1 });
    // Certificates cross the socket only when asked for.
    const certified = await remote.transact(
      { actions: [{ collection: 'accounts', op: 'put', key: 'new', value: { a: 2 } }] },
      { certificates: true },
    );
    const certificate = certified.ok ? certified.commit['accounts']?.certificate : undefined;
    expect(certificate).to.include({ collection: 'accounts', decision: 'committed' });
    expect(checkCertificateAlone(certificate).status).to.equal('verified');
    const refused = await remote.transact({ actions: [{ collection: 'nowhere', op: 'get', key: 'x' }] });
    expect(refused.ok ? 'ok' : refused.error.code).to.equal('NOT_FOUND');
    const missing = await remote.collectionInfo('missing').catch((error: unknown) => error);
    expect(isEngineError(missing, 'NOT_FOUND')).to.equal(true);
  });

  it('lets a consumer stop a remote stream early (the node stops producing)', async () => {
    const remote = new RemoteNode(await ControlClient.connect(join(dir, 'node.sock')), 'socket', 'test');
    clients.push(remote);
    let seen = 0;
    for await (const _entry of remote.scan('accounts')) if (++seen === 3) break;
    expect(seen).to.equal(3);
    expect((await remote.collectionInfo('accounts')).name).to.equal('accounts');
  });

  it('serves node.stop on the socket but not to other peers', async () => {
    const node = fakeControl(hub, stops);
    const before = stops.count;
    await callApi({ db: solo, node }, 'node.stop', {}, { local: true });
    expect(stops.count).to.equal(before + 1);
    const error = await callApi({ db: solo, node }, 'node.stop', {}, { local: false }).catch(
      (e: unknown) => e,
    );
    expect(isEngineError(error, 'BAD_INPUT')).to.equal(true);
    expect(stops.count).to.equal(before + 1);
  });
});

describe('a transaction whose node goes away while it is in flight', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'optimystic-inflight-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('says its outcome is unknown; one refused before it was sent does not', async () => {
    const { createServer } = await import('node:net');
    const path = join(dir, 'node.sock');
    // A "node" that takes the request and dies without answering.
    const server = createServer((socket) => socket.once('data', () => socket.destroy()));
    await new Promise<void>((resolve) => server.listen(path, resolve));
    try {
      const remote = new RemoteNode(await ControlClient.connect(path), 'socket', 'test');
      const request = { actions: [{ collection: 'c', op: 'put' as const, key: 'k', value: 1 }] };
      const sent = await remote.transact(request);
      expect(sent.ok).to.equal(false);
      if (!sent.ok) {
        expect(sent.error.code).to.equal('UNAVAILABLE');
        expect(sent.error.message).to.contain('outcome is unknown');
      }
      // The connection is gone now: the next one is refused without being sent.
      const refused = await remote.transact(request);
      expect(refused.ok).to.equal(false);
      if (!refused.ok) expect(refused.error.message).to.not.contain('outcome is unknown');
      await remote.close().catch(() => undefined);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('LineSplitter', () => {
  it('splits across chunk boundaries and bounds every line', () => {
    const splitter = new LineSplitter(8);
    expect(splitter.push(Buffer.from('ab'))).to.deep.equal([]);
    expect(splitter.push(Buffer.from('c\r\nde\n\n'))).to.deep.equal([{ line: 'abc' }, { line: 'de' }]);
    expect(splitter.push(Buffer.from('0123456789'))).to.deep.equal([{ tooLarge: true }]);
    expect(splitter.push(Buffer.from('more of the long line\nok\n'))).to.deep.equal([{ line: 'ok' }]);
  });
});

function sampleStatus() {
  return {
    version: '0',
    peerId: '12D3KooWtest',
    network: 'default',
    role: 'transaction' as const,
    gateway: false,
    bootstrapNode: false,
    clusterSize: 5,
    dataDir: '/tmp',
    pid: 1,
    startedAt: 0,
    uptimeMs: 0,
    listenAddresses: [],
    announceAddresses: [],
    peers: [],
    connections: 0,
    dhtTableSize: 0,
    collections: 1,
    storage: { blocks: 0, pending: 0, bytes: 0, capacityBytes: 0 },
    pendingTransactions: 0,
    rates: { txPerSec: 0, commitP50Ms: 0, commitP99Ms: 0, txPerSecHistory: [], commitP50History: [] },
  };
}
