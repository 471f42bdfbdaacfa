import { expect } from 'chai';
import { createPublicKey, verify as nodeVerify } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { AssertionFailure } from '../../../src/engine/base/assert.js';
import { isEngineError } from '../../../src/engine/base/errors.js';
import { SeededRng } from '../../../src/engine/base/rng.js';
import { fromHex, toBase64Url, toHex, utf8 } from '../../../src/engine/crypto/encoding.js';
import {
  Identity,
  decodePublicKey,
  decodeSecretKey,
  domainMessage,
  encodePublicKey,
  encodeSecretKey,
  generateIdentity,
  isValidIdentityKey,
  peerIdFromPublicKey,
  publicKeyFromPeerId,
  verifyDomain,
  verifySignature,
} from '../../../src/engine/crypto/identity.js';

const seed = Number(process.env.OPTIMYSTIC_SEED ?? 8032);

describe('identity keys', () => {
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.error(`    failing seed: OPTIMYSTIC_SEED=${seed}`);
  });

  it('derives the same key pair from the same seeded randomness, and different ones otherwise', () => {
    const a = generateIdentity(new SeededRng(seed));
    const b = generateIdentity(new SeededRng(seed));
    const c = generateIdentity(new SeededRng(seed + 1));
    expect(toHex(a.publicKey)).to.equal(toHex(b.publicKey));
    expect(toHex(a.publicKey)).to.not.equal(toHex(c.publicKey));
    expect(a.peerId).to.equal(b.peerId);
  });

  it('signs exactly as RFC 8032 test 1 does', () => {
    const identity = Identity.fromSecretKey(
      fromHex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60'),
    );
    expect(toHex(identity.publicKey)).to.equal(
      'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    );
    expect(toHex(identity.sign(new Uint8Array()))).to.equal(
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
    );
  });

  it('produces signatures that node:crypto and noble both accept, and rejects any altered byte', () => {
    const rng = new SeededRng(seed);
    const identity = Identity.generate(rng);
    const message = rng.bytes(100);
    const signature = identity.sign(message);
    expect(verifySignature(identity.publicKey, message, signature)).to.equal(true);
    expect(ed25519.verify(signature, message, identity.publicKey)).to.equal(true);
    const key = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: toBase64Url(identity.publicKey) },
      format: 'jwk',
    });
    expect(nodeVerify(null, message, key, signature)).to.equal(true);
    for (const i of [0, 31, 32, 63]) {
      const bad = Uint8Array.from(signature);
      bad[i]! ^= 0x40;
      expect(verifySignature(identity.publicKey, message, bad), `signature byte ${i}`).to.equal(false);
    }
    const other = Uint8Array.from(message);
    other[5]! ^= 1;
    expect(verifySignature(identity.publicKey, other, signature)).to.equal(false);
  });

  it('binds a domain signature to its domain and never verifies it as a plain signature of the payload', () => {
    const identity = Identity.generate(new SeededRng(seed));
    const payload = utf8('vote for block 7');
    const signature = identity.signDomain('optimystic/test/vote/v1', payload);
    expect(verifyDomain(identity.publicKey, 'optimystic/test/vote/v1', payload, signature)).to.equal(true);
    expect(verifyDomain(identity.publicKey, 'optimystic/test/vote/v2', payload, signature)).to.equal(false);
    expect(verifySignature(identity.publicKey, payload, signature)).to.equal(false);
    expect(
      verifySignature(identity.publicKey, domainMessage('optimystic/test/vote/v1', payload), signature),
    ).to.equal(true);
  });

  it('keeps domains that share a prefix apart', () => {
    expect(toHex(domainMessage('a/b', utf8('c')))).to.not.equal(
      toHex(domainMessage('a/bc', new Uint8Array())),
    );
  });

  it('treats a malformed domain as a programmer error', () => {
    const identity = Identity.generate(new SeededRng(seed));
    expect(() => identity.signDomain('Has Spaces', new Uint8Array())).to.throw(AssertionFailure);
    expect(() => identity.signDomain('', new Uint8Array())).to.throw(AssertionFailure);
  });

  it('reports malformed keys and signatures as invalid instead of throwing', () => {
    const identity = Identity.generate(new SeededRng(seed));
    const sig = identity.sign(new Uint8Array([1]));
    expect(verifySignature(identity.publicKey.subarray(0, 31), new Uint8Array([1]), sig)).to.equal(false);
    expect(verifySignature(identity.publicKey, new Uint8Array([1]), sig.subarray(0, 63))).to.equal(false);
  });

  it('round-trips public and secret keys through base64url', () => {
    const identity = Identity.generate(new SeededRng(seed));
    const text = encodePublicKey(identity.publicKey);
    expect(text).to.match(/^[A-Za-z0-9_-]{43}$/);
    expect(toHex(decodePublicKey(text))).to.equal(toHex(identity.publicKey));
    const restored = decodeSecretKey(encodeSecretKey(identity));
    expect(toHex(restored.publicKey)).to.equal(toHex(identity.publicKey));
    expect(toHex(restored.sign(utf8('x')))).to.equal(toHex(identity.sign(utf8('x'))));
  });

  it('rejects public keys of the wrong length, non-canonical text, small order or off the curve', () => {
    const identity = Identity.generate(new SeededRng(seed));
    const text = encodePublicKey(identity.publicKey);
    const cases: [string, unknown][] = [
      ['short', toBase64Url(identity.publicKey.subarray(0, 31))],
      ['padded', `${text}=`],
      ['non-canonical trailing bits', flipPaddingBit(text)],
      [
        'identity point',
        toBase64Url(fromHex('0100000000000000000000000000000000000000000000000000000000000000')),
      ],
      [
        'order-8 point',
        toBase64Url(fromHex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a')),
      ],
      ['y ≥ p', toBase64Url(fromHex('eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f'))],
      ['not text', 42],
    ];
    for (const [what, value] of cases) {
      expect(() => decodePublicKey(value), what)
        .to.throw()
        .that.satisfies((e: unknown) => isEngineError(e, 'BAD_INPUT'));
    }
    expect(isValidIdentityKey(identity.publicKey)).to.equal(true);
  });

  it('writes libp2p Ed25519 peer ids that embed the key and read back to it', () => {
    const rng = new SeededRng(seed);
    for (let i = 0; i < 5; i++) {
      const identity = Identity.generate(rng);
      expect(identity.peerId).to.match(/^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$/);
      expect(identity.peerId).to.equal(peerIdFromPublicKey(identity.publicKey));
      expect(toHex(publicKeyFromPeerId(identity.peerId))).to.equal(toHex(identity.publicKey));
    }
  });

  it('rejects peer ids that are not Ed25519 identity multihashes', () => {
    const identity = Identity.generate(new SeededRng(seed));
    const flipped = identity.peerId.slice(0, -1) + (identity.peerId.endsWith('1') ? '2' : '1');
    for (const bad of [
      'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N',
      'not a peer id',
      '',
      flipped.replace(/.$/, '0'),
      7,
    ]) {
      expect(() => publicKeyFromPeerId(bad), String(bad))
        .to.throw()
        .that.satisfies((e: unknown) => isEngineError(e, 'BAD_INPUT'));
    }
  });
});

const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** 32 bytes take 43 characters; the last one carries two unused bits. Setting one is non-canonical. */
function flipPaddingBit(text: string): string {
  return text.slice(0, -1) + alphabet[alphabet.indexOf(text.at(-1)!) ^ 1]!;
}
