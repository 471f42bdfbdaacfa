import { peerIdFromString } from '@libp2p/peer-id';
import { expect } from 'chai';
import {
  base58Decode,
  base58Encode,
  ed25519PeerId,
  ed25519PublicKeyOfPeerId,
} from '../../../src/engine/base/base58.js';
import { SeededRng } from '../../../src/engine/base/rng.js';
import { peerIdOf, privateKeyFromSeed } from '../../../src/engine/network/index.js';

describe('base58btc', () => {
  it('encodes and decodes known vectors, keeping leading zero bytes as 1s', () => {
    expect(base58Encode(Buffer.from('Hello World!'))).to.equal('2NEpo7TZRRrLZSi2U');
    expect(Buffer.from(base58Decode('2NEpo7TZRRrLZSi2U')!).toString()).to.equal('Hello World!');
    expect(base58Encode(Uint8Array.from([0, 0, 1]))).to.equal('112');
    expect([...base58Decode('112')!]).to.deep.equal([0, 0, 1]);
    expect(base58Encode(new Uint8Array(0))).to.equal('');
    expect([...base58Decode('')!]).to.deep.equal([]);
    expect([...base58Decode('1')!]).to.deep.equal([0]);
  });

  it('round-trips random bytes of every length up to 64', () => {
    const rng = new SeededRng(58);
    for (let length = 0; length <= 64; length++) {
      const bytes = rng.bytes(length);
      if (length > 0 && rng.int(4) === 0) bytes[0] = 0;
      const text = base58Encode(bytes);
      expect([...base58Decode(text)!]).to.deep.equal([...bytes]);
    }
  });

  it('refuses characters outside the alphabet and overlong text, without throwing', () => {
    for (const bad of ['0', 'O', 'I', 'l', 'abc+', 'é', ' 2N', '2N\n'])
      expect(base58Decode(bad), bad).to.equal(undefined);
    expect(base58Decode('2'.repeat(300))).to.equal(undefined);
    expect(base58Decode('2'.repeat(300), 400)).to.be.instanceOf(Uint8Array);
  });
});

describe('Ed25519 peer ids without libp2p', () => {
  it('writes the peer id libp2p writes for a key, and reads the key back', async () => {
    const rng = new SeededRng(12);
    for (let i = 0; i < 8; i++) {
      const privateKey = await privateKeyFromSeed(rng.bytes(32));
      const peerId = peerIdOf(privateKey);
      const publicKey = privateKey.publicKey.raw;
      expect(peerId.startsWith('12D3KooW')).to.equal(true);
      expect(ed25519PeerId(publicKey)).to.equal(peerId);
      expect([...ed25519PublicKeyOfPeerId(peerId)!]).to.deep.equal([...publicKey]);
      expect(peerIdFromString(ed25519PeerId(publicKey)).toString()).to.equal(peerId);
    }
  });

  it('reads nothing from other ids', () => {
    const rng = new SeededRng(13);
    const key = rng.bytes(32);
    const peerId = ed25519PeerId(key);
    // One character changed: still base58, but another key or a broken prefix.
    const altered = `${peerId.slice(0, 51)}${peerId.endsWith('2') ? '3' : '2'}`;
    expect([...ed25519PublicKeyOfPeerId(altered)!]).not.to.deep.equal([...key]);
    for (const bad of [
      '',
      Buffer.from(key).toString('base64url'),
      // A sha256 multihash peer id (RSA-style keys), which inlines no key.
      'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N',
      `${peerId}1`,
      peerId.slice(1),
      '0'.repeat(52),
      `2${peerId.slice(1)}`,
    ])
      expect(ed25519PublicKeyOfPeerId(bad), bad).to.equal(undefined);
    expect(ed25519PublicKeyOfPeerId(42 as unknown as string)).to.equal(undefined);
  });
});
