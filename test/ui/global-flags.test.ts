import { expect } from 'chai';
import { envTruthy, globalFlags, resolveDataDir } from '../../src/ui/cli/global-flags.js';

describe('global flags', () => {
  it('read an OPTIMYSTIC_* environment variable each', () => {
    for (const [name, flag] of Object.entries(globalFlags)) {
      expect(flag.env, `--${name}`).to.equal(`OPTIMYSTIC_${name.toUpperCase()}`);
    }
  });

  it('resolve --data to an absolute path, expanding ~ and defaulting to ~/.optimystic', () => {
    expect(resolveDataDir(undefined, '/home/u')).to.equal('/home/u/.optimystic');
    expect(resolveDataDir('', '/home/u')).to.equal('/home/u/.optimystic');
    expect(resolveDataDir('~/db', '/home/u')).to.equal('/home/u/db');
    expect(resolveDataDir('~', '/home/u')).to.equal('/home/u');
    expect(resolveDataDir('/srv/db', '/home/u')).to.equal('/srv/db');
    expect(resolveDataDir('rel', '/home/u')).to.equal(`${process.cwd()}/rel`);
  });

  it('treat 1/true/yes as on, like oclif does for boolean flags', () => {
    expect(['1', 'true', 'TRUE', 'yes', 'y'].map(envTruthy)).to.deep.equal([true, true, true, true, true]);
    expect(['0', 'false', 'no', ''].map(envTruthy)).to.deep.equal([false, false, false, false]);
    expect(envTruthy(undefined)).to.equal(false);
  });
});
