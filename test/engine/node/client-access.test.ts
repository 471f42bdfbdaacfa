import { expect } from 'chai';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { isEngineError } from '../../../src/engine/base/errors.js';
import {
  defaultNodeConfig,
  resolveNodeConfig,
  settingsFromEnv,
  validateConfigFile,
  validateSettings,
  flagSource,
  type NodeConfig,
} from '../../../src/engine/config/schema.js';
import { loadNodeConfig } from '../../../src/engine/config/resolve.js';
import { peerIdOf, type PrivateKey } from '../../../src/engine/network/index.js';
import { openLightClient } from '../../../src/engine/node/light-client.js';
import { startNode, type RunningNode } from '../../../src/engine/node/node.js';
import type { RemoteNode } from '../../../src/engine/node/remote.js';

const loopback: NodeConfig = { ...defaultNodeConfig, listen: ['/ip4/127.0.0.1/tcp/0'] };

async function rejection(work: Promise<unknown>): Promise<unknown> {
  try {
    await work;
  } catch (error) {
    return error;
  }
  expect.fail('expected a rejection');
}

describe('client protocol access (the clients setting)', function () {
  this.timeout(30_000);
  let root: string;
  const nodes: RunningNode[] = [];
  const remotes: RemoteNode[] = [];

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'optimystic-clients-'));
  });

  afterEach(async () => {
    for (const remote of remotes.splice(0)) await remote.close().catch(() => undefined);
    for (const node of nodes.splice(0)) await node.close().catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  });

  async function start(clients: NodeConfig['clients']): Promise<RunningNode> {
    const node = await startNode({
      dataDir: join(root, 'n'),
      config: { ...loopback, clients },
      version: 'test',
    });
    nodes.push(node);
    return node;
  }

  async function client(node: RunningNode, privateKey?: PrivateKey): Promise<RemoteNode> {
    const remote = await openLightClient({
      address: node.hub.current()!.listenAddresses[0]!,
      network: 'default',
      ...(privateKey === undefined ? {} : { privateKey }),
    });
    remotes.push(remote);
    return remote;
  }

  it('serves no client by default: BAD_INPUT saying how to allow it, reads and writes alike', async () => {
    const node = await start(defaultNodeConfig.clients);
    const key = await generateKeyPair('Ed25519');
    const remote = await client(node, key);
    for (const work of [remote.status(), remote.listCollections(), remote.createCollection('x', 'tree')]) {
      const error = await rejection(work);
      expect(isEngineError(error, 'BAD_INPUT'), String(error)).to.equal(true);
      const message = (error as Error).message;
      expect(message).to.include(peerIdOf(key));
      expect(message).to.include('--clients any');
    }
  });

  it('serves the peer ids it lists, and refuses the others', async () => {
    const allowed = await generateKeyPair('Ed25519');
    const node = await start([peerIdOf(allowed)]);
    const good = await client(node, allowed);
    await good.createCollection('notes', 'diary');
    expect((await good.listCollections()).map((info) => info.name)).to.deep.equal(['notes']);
    expect((await good.status()).clients).to.deep.equal([peerIdOf(allowed)]);
    const stranger = await client(node);
    expect(isEngineError(await rejection(stranger.listCollections()), 'BAD_INPUT')).to.equal(true);
  });

  it('takes a changed clients setting from its config file on reload, without a restart', async () => {
    const dataDir = join(root, 'n');
    const configFile = join(dataDir, 'config.json');
    const writeConfig = (settings: object): Promise<void> => writeFile(configFile, JSON.stringify(settings));
    await mkdir(dataDir, { recursive: true });
    await writeConfig({ clients: [] });
    const load = () => loadNodeConfig({ dataDir, env: {}, flags: { listen: ['/ip4/127.0.0.1/tcp/0'] } });
    const node = await startNode({
      dataDir,
      config: (await load()).config,
      version: 'test',
      reloadConfig: load,
    });
    nodes.push(node);
    const key = await generateKeyPair('Ed25519');
    const remote = await client(node, key);
    expect(isEngineError(await rejection(remote.listCollections()), 'BAD_INPUT')).to.equal(true);

    await writeConfig({ clients: [peerIdOf(key)], clusterSize: 3 });
    expect(await node.reload()).to.deep.equal({
      applied: ['clients'],
      needsRestart: ['clusterSize'],
      configFile,
    });
    expect(await remote.listCollections()).to.deep.equal([]);
    expect((await node.status()).clients).to.deep.equal([peerIdOf(key)]);
    expect((await node.status()).clusterSize).to.equal(5); // needs a restart: unchanged
    expect(node.hub.recentEvents().map((event) => event.message)).to.include(
      `settings reloaded (${configFile}): applied clients; changed but applied at the next start: clusterSize`,
    );

    // A file that does not validate changes nothing.
    await writeConfig({ clients: ['not-a-peer-id'] });
    expect(isEngineError(await rejection(node.reload()), 'CONFIG_INVALID')).to.equal(true);
    expect(await remote.listCollections()).to.deep.equal([]);
    // Nor does reloading an unchanged file.
    await writeConfig({ clients: [peerIdOf(key)], clusterSize: 3 });
    expect(await node.reload()).to.deep.include({ applied: [], needsRestart: ['clusterSize'] });
    // Light clients cannot make the node reload.
    expect(isEngineError(await rejection(remote.reload()), 'BAD_INPUT')).to.equal(true);
  });

  it('serves every peer with any', async () => {
    const node = await start('any');
    const remote = await client(node);
    expect(await remote.status()).to.include({ peerId: node.peerId, clients: 'any' });
    // Started without a way to read its settings again (no reloadConfig): it says so.
    expect(isEngineError(await rejection(node.reload()), 'UNAVAILABLE')).to.equal(true);
  });
});

describe('the clients setting (validation)', () => {
  const id = '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN';

  it('accepts any, or peer ids, from a file, a variable or a flag; defaults to nobody', () => {
    expect(resolveNodeConfig({}).clients).to.deep.equal([]);
    expect(validateConfigFile({ clients: 'any' }, 'c.json').clients).to.equal('any');
    expect(validateConfigFile({ clients: [id] }, 'c.json').clients).to.deep.equal([id]);
    expect(settingsFromEnv({ OPTIMYSTIC_CLIENTS: `${id}, ${id}` }).clients).to.deep.equal([id]);
    expect(validateSettings({ clients: ['any'] }, flagSource).clients).to.equal('any');
    expect(
      resolveNodeConfig({ flags: { clients: 'any' }, env: { clients: [id] }, file: { clients: [] } }).clients,
    ).to.equal('any');
  });

  it('refuses a bad peer id with CONFIG_INVALID naming the field (BAD_INPUT for a flag)', () => {
    const fromFile = (() => {
      try {
        validateConfigFile({ clients: [id, 'not-a-peer-id'] }, 'c.json');
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    expect(isEngineError(fromFile, 'CONFIG_INVALID')).to.equal(true);
    expect((fromFile as Error).message).to.match(/^clients in c\.json: entry 2 "not-a-peer-id"/);
    expect((fromFile as { details: unknown }).details).to.deep.include({ field: 'clients' });
    expect(() => settingsFromEnv({ OPTIMYSTIC_CLIENTS: 'nope' })).to.throw(/OPTIMYSTIC_CLIENTS/);
    expect(() => validateSettings({ clients: ['any', id] }, flagSource)).to.throw(/--clients/);
    expect(() => validateConfigFile({ clients: 7 }, 'c.json')).to.throw(/clients in c\.json/);
  });
});
