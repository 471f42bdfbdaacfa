import { expect } from 'chai';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isEngineError } from '../../../src/engine/base/errors.js';
import { loadConfigFile } from '../../../src/engine/config/load.js';
import { clientNetwork, loadNodeConfig } from '../../../src/engine/config/resolve.js';

async function rejection(work: Promise<unknown>): Promise<unknown> {
  try {
    await work;
  } catch (error) {
    return error;
  }
  expect.fail('expected a rejection');
}

describe('node config files (cosmiconfig)', () => {
  let root: string;
  let cwd: string;
  let dataDir: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'optimystic-config-'));
    cwd = join(root, 'project');
    dataDir = join(root, 'data');
    await mkdir(cwd);
    await mkdir(dataDir);
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('finds nothing when there is no file', async () => {
    expect(await loadConfigFile({ dataDir, cwd })).to.equal(undefined);
  });

  it('reads optimystic.config.yaml in the working directory', async () => {
    await writeFile(
      join(cwd, 'optimystic.config.yaml'),
      'network: yamlnet\nclusterSize: 3\ncapacity: 10GB\n',
    );
    const loaded = await loadConfigFile({ dataDir, cwd });
    expect(loaded?.path).to.equal(join(cwd, 'optimystic.config.yaml'));
    expect(loaded?.settings).to.deep.equal({
      network: 'yamlnet',
      clusterSize: 3,
      capacityBytes: 10_000_000_000,
    });
  });

  it('reads .optimysticrc (JSON or YAML) and optimystic.config.js', async () => {
    await writeFile(join(cwd, '.optimysticrc'), '{"role":"storage"}');
    expect((await loadConfigFile({ dataDir, cwd }))?.settings).to.deep.equal({ role: 'storage' });
    await rm(join(cwd, '.optimysticrc'));
    await writeFile(join(cwd, 'optimystic.config.mjs'), 'export default { gateway: true };\n');
    expect((await loadConfigFile({ dataDir, cwd }))?.settings).to.deep.equal({ gateway: true });
  });

  it("prefers the data directory's config.json over a file in the working directory", async () => {
    await writeFile(join(cwd, 'optimystic.config.json'), '{"network":"cwdnet"}');
    await writeFile(join(dataDir, 'config.json'), '{"network":"datanet"}');
    const loaded = await loadConfigFile({ dataDir, cwd });
    expect(loaded?.path).to.equal(join(dataDir, 'config.json'));
    expect(loaded?.settings.network).to.equal('datanet');
  });

  it('uses an explicit file over both, and refuses one that does not exist', async () => {
    await writeFile(join(dataDir, 'config.json'), '{"network":"datanet"}');
    const explicit = join(root, 'mine.yml');
    await writeFile(explicit, 'network: explicit\n');
    expect((await loadConfigFile({ dataDir, cwd, path: explicit }))?.settings.network).to.equal('explicit');
    const error = await rejection(loadConfigFile({ dataDir, cwd, path: join(root, 'missing.json') }));
    expect(isEngineError(error, 'CONFIG_INVALID')).to.equal(true);
  });

  it('refuses a file that does not parse, or holds an unknown or bad setting, with CONFIG_INVALID', async () => {
    for (const [name, text] of [
      ['config.json', '{"network": '],
      ['config.json', '{"netwrok":"x"}'],
      ['config.json', '{"port":"eighty"}'],
    ] as const) {
      await writeFile(join(dataDir, name), text);
      const error = await rejection(loadConfigFile({ dataDir, cwd }));
      expect(isEngineError(error, 'CONFIG_INVALID'), String(error)).to.equal(true);
    }
  });

  it('resolves flag > environment > file > default in one call', async () => {
    await writeFile(
      join(dataDir, 'config.json'),
      '{"network":"filenet","role":"storage","clusterSize":4,"port":4100,"slowTransactionMs":250}',
    );
    const { config, file } = await loadNodeConfig({
      dataDir,
      cwd,
      flags: { clusterSize: 6 },
      env: { OPTIMYSTIC_ROLE: 'transaction', OPTIMYSTIC_CLUSTER_SIZE: '9' },
    });
    expect(file).to.equal(join(dataDir, 'config.json'));
    expect(config).to.include({
      network: 'filenet',
      role: 'transaction',
      clusterSize: 6,
      slowTransactionMs: 250,
    });
    const fromEnv = await loadNodeConfig({ dataDir, cwd, env: { OPTIMYSTIC_SLOW_TRANSACTION_MS: '0' } });
    expect(fromEnv.config.slowTransactionMs).to.equal(0);
    const fromFlag = await loadNodeConfig({
      dataDir,
      cwd,
      flags: { slowTransactionMs: 5000 },
      env: { OPTIMYSTIC_SLOW_TRANSACTION_MS: '0' },
    });
    expect(fromFlag.config.slowTransactionMs).to.equal(5000);
    expect(config.listen).to.deep.equal(['/ip4/0.0.0.0/tcp/4100']);
  });

  it('gives a light client the network from the environment, else the config file, else "default"', async () => {
    expect(await clientNetwork({ dataDir, cwd, env: {} })).to.equal('default');
    await writeFile(join(cwd, 'optimystic.config.json'), '{"network":"filenet"}');
    expect(await clientNetwork({ dataDir, cwd, env: {} })).to.equal('filenet');
    expect(await clientNetwork({ dataDir, cwd, env: { OPTIMYSTIC_NETWORK: 'envnet' } })).to.equal('envnet');
  });
});
