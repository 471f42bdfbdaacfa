import { expect } from 'chai';
import { EngineError } from '../../../src/engine/base/errors.js';
import {
  defaultNodeConfig,
  flagSource,
  parseBytes,
  resolveNodeConfig,
  settingsFromEnv,
  validateConfigFile,
  validateSettings,
} from '../../../src/engine/config/schema.js';

const peer = '12D3KooWDeuN1AkQut3qQzcjwguV4VA8Q1bppRvGGVvPY54hQGR2';

/** Runs `work`, expecting an EngineError with this code naming this field; returns it. */
function expectInvalid(work: () => unknown, code: string, field: string): EngineError {
  try {
    work();
  } catch (error) {
    expect(error).to.be.instanceOf(EngineError);
    const engineError = error as EngineError;
    expect(engineError.code, engineError.message).to.equal(code);
    expect(engineError.details?.['field'], engineError.message).to.equal(field);
    return engineError;
  }
  expect.fail(`expected ${code} for ${field}`);
}

describe('node config schema', () => {
  describe('byte counts', () => {
    it('accepts plain integers, decimal and binary units in any case', () => {
      expect(parseBytes('0')).to.equal(0);
      expect(parseBytes('1234')).to.equal(1234);
      expect(parseBytes('10GB')).to.equal(10_000_000_000);
      expect(parseBytes('10gb')).to.equal(10_000_000_000);
      expect(parseBytes('512MiB')).to.equal(512 * 1024 * 1024);
      expect(parseBytes('1.5 TiB')).to.equal(1.5 * 1024 ** 4);
      expect(parseBytes('2k')).to.equal(2000);
    });

    it('refuses text that is not a byte count', () => {
      for (const text of ['', 'ten', '-1', '10XB', '1.5', '1e9', '10 G B', `${'9'.repeat(30)}`])
        expect(parseBytes(text), text).to.equal(undefined);
    });
  });

  describe('validation names the bad field and its source', () => {
    it('refuses a config file setting with CONFIG_INVALID naming the field', () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ port: 70000 }, 'port'],
        [{ port: '4001' }, 'port'],
        [{ listen: '/ip4/0.0.0.0/tcp/1' }, 'listen'],
        [{ listen: ['not-a-multiaddr'] }, 'listen'],
        [{ listen: ['/ip4/127.0.0.1/udp/1'] }, 'listen'],
        [{ announce: [42] }, 'announce'],
        [{ bootstrap: ['/ip4/127.0.0.1/tcp/4001'] }, 'bootstrap'],
        [{ network: 'Main Net' }, 'network'],
        [{ role: 'archive' }, 'role'],
        [{ capacity: 'lots' }, 'capacity'],
        [{ capacity: -5 }, 'capacity'],
        [{ gateway: 'yes' }, 'gateway'],
        [{ bootstrapNode: 1 }, 'bootstrapNode'],
        [{ clusterSize: 0 }, 'clusterSize'],
        [{ clusterSize: 2.5 }, 'clusterSize'],
        [{ clusterSize: 21 }, 'clusterSize'],
        [{ slowTransactionMs: -1 }, 'slowTransactionMs'],
        [{ slowTransactionMs: '1s' }, 'slowTransactionMs'],
        [{ slowTransactionMs: 3_600_001 }, 'slowTransactionMs'],
        [{ clustersize: 3 }, 'clustersize'],
      ];
      for (const [file, field] of cases) {
        const error = expectInvalid(
          () => validateConfigFile(file, '/etc/optimystic.config.json'),
          'CONFIG_INVALID',
          field,
        );
        expect(error.message).to.include('/etc/optimystic.config.json');
      }
    });

    it('refuses a file that is not an object of settings', () => {
      for (const value of [null, [], 'port: 1', 42]) {
        expect(() => validateConfigFile(value, 'x.json'))
          .to.throw(EngineError)
          .with.property('code', 'CONFIG_INVALID');
      }
    });

    it('refuses a bad environment variable with CONFIG_INVALID naming the variable', () => {
      const cases: [Record<string, string>, string][] = [
        [{ OPTIMYSTIC_PORT: 'abc' }, 'port'],
        [{ OPTIMYSTIC_PORT: '65536' }, 'port'],
        [{ OPTIMYSTIC_CLUSTER_SIZE: 'five' }, 'clusterSize'],
        [{ OPTIMYSTIC_GATEWAY: 'maybe' }, 'gateway'],
        [{ OPTIMYSTIC_BOOTSTRAP: '/ip4/1.2.3.4/tcp/1,garbage' }, 'bootstrap'],
        [{ OPTIMYSTIC_ROLE: 'miner' }, 'role'],
        [{ OPTIMYSTIC_CAPACITY: '10 parsecs' }, 'capacity'],
        [{ OPTIMYSTIC_SLOW_TRANSACTION_MS: '2.5' }, 'slowTransactionMs'],
      ];
      for (const [env, field] of cases) {
        const error = expectInvalid(() => settingsFromEnv(env), 'CONFIG_INVALID', field);
        expect(error.message).to.match(/^OPTIMYSTIC_/);
      }
    });

    it('refuses a bad flag value as a usage error (BAD_INPUT) naming the flag', () => {
      const error = expectInvalid(
        () => validateSettings({ listen: ['nonsense'] }, flagSource),
        'BAD_INPUT',
        'listen',
      );
      expect(error.message).to.match(/^--listen/);
      expectInvalid(
        () => validateSettings({ capacityBytes: '3 apples' }, flagSource),
        'BAD_INPUT',
        'capacity',
      );
    });

    it('reads well-formed environment variables, lists comma-separated, booleans in the usual spellings', () => {
      const settings = settingsFromEnv({
        OPTIMYSTIC_PORT: '4100',
        OPTIMYSTIC_BOOTSTRAP: `/ip4/10.0.0.1/tcp/4001/p2p/${peer}, /dns4/boot.example/tcp/4001/p2p/${peer}`,
        OPTIMYSTIC_GATEWAY: 'Yes',
        OPTIMYSTIC_BOOTSTRAP_NODE: 'off',
        OPTIMYSTIC_CAPACITY: '2GiB',
        OPTIMYSTIC_CLUSTER_SIZE: '7',
        OPTIMYSTIC_NETWORK: '',
      });
      expect(settings).to.deep.equal({
        port: 4100,
        bootstrap: [`/ip4/10.0.0.1/tcp/4001/p2p/${peer}`, `/dns4/boot.example/tcp/4001/p2p/${peer}`],
        gateway: true,
        bootstrapNode: false,
        capacityBytes: 2 * 1024 ** 3,
        clusterSize: 7,
      });
    });
  });

  describe('precedence: flag > environment > file > default', () => {
    it('takes each field from the first layer that sets it', () => {
      const config = resolveNodeConfig({
        flags: { network: 'from-flag' },
        env: { network: 'from-env', role: 'storage' },
        file: { network: 'from-file', role: 'transaction', clusterSize: 3, capacityBytes: 100 },
      });
      expect(config.network).to.equal('from-flag');
      expect(config.role).to.equal('storage');
      expect(config.clusterSize).to.equal(3);
      expect(config.capacityBytes).to.equal(100);
      expect(config.gateway).to.equal(defaultNodeConfig.gateway);
    });

    it('uses the defaults when nothing is set: every IPv4 interface on port 4001, network "default", k = 5', () => {
      expect(resolveNodeConfig({})).to.deep.equal(defaultNodeConfig);
      expect(defaultNodeConfig.listen).to.deep.equal(['/ip4/0.0.0.0/tcp/4001']);
      expect(defaultNodeConfig.clusterSize).to.equal(5);
    });

    it('lets a false flag override a true setting below it', () => {
      expect(resolveNodeConfig({ flags: { gateway: false }, file: { gateway: true } }).gateway).to.equal(
        false,
      );
    });

    it('takes the listen addresses from the first layer that sets a port or addresses', () => {
      expect(
        resolveNodeConfig({ flags: { port: 4100 }, file: { listen: ['/ip4/127.0.0.1/tcp/1'] } }).listen,
      ).to.deep.equal(['/ip4/0.0.0.0/tcp/4100']);
      expect(
        resolveNodeConfig({ env: { listen: ['/ip4/127.0.0.1/tcp/0'] }, file: { port: 9 } }).listen,
      ).to.deep.equal(['/ip4/127.0.0.1/tcp/0']);
    });

    it('refuses a layer that sets both a port and listen addresses', () => {
      const error = expectInvalid(
        () => resolveNodeConfig({ file: { port: 1, listen: ['/ip4/127.0.0.1/tcp/1'] }, filePath: 'c.json' }),
        'CONFIG_INVALID',
        'port',
      );
      expect(error.message).to.include('c.json');
    });

    it('refuses a bootstrap node without a fixed port', () => {
      expectInvalid(
        () => resolveNodeConfig({ env: { bootstrapNode: true }, file: { port: 0 } }),
        'CONFIG_INVALID',
        'bootstrapNode',
      );
      expect(resolveNodeConfig({ flags: { bootstrapNode: true, port: 4001 } }).bootstrapNode).to.equal(true);
    });
  });
});
