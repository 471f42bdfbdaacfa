import { expect } from 'chai';
import { isEngineError } from '../../../src/engine/base/errors.js';
import { SeededRng } from '../../../src/engine/base/rng.js';
import { Identity } from '../../../src/engine/crypto/identity.js';
import { peerIdOf, privateKeyFromSeed } from '../../../src/engine/network/identity.js';
import { checkName, dhtProtocolId, protocolId } from '../../../src/engine/network/protocols.js';

describe('network identity and protocol ids', () => {
  it('derives the same peer id from a seed as the node identity does', async () => {
    const rng = new SeededRng(99);
    for (let i = 0; i < 5; i++) {
      const seed = rng.bytes(32);
      expect(peerIdOf(await privateKeyFromSeed(seed))).to.equal(Identity.fromSecretKey(seed).peerId);
    }
  });

  it('refuses a seed that is not 32 bytes', async () => {
    try {
      await privateKeyFromSeed(new Uint8Array(31));
      expect.fail('accepted a 31-byte seed');
    } catch (error) {
      expect(isEngineError(error, 'BAD_INPUT')).to.equal(true);
    }
  });

  it('namespaces every protocol id by the network name', () => {
    expect(protocolId('default', 'client')).to.equal('/optimystic/default/client/1');
    expect(dhtProtocolId('test-net')).to.equal('/optimystic/test-net/kad/1.0.0');
    for (const bad of ['', 'Upper', 'a/b', 'x'.repeat(65), '-lead', 'sp ace']) {
      expect(() => checkName(bad, 'network'), bad)
        .to.throw()
        .that.satisfies((e: unknown) => isEngineError(e, 'CONFIG_INVALID'));
    }
  });
});
