import { expect } from 'chai';
import { isEngineError, type ErrorCode } from '../../../src/engine/base/errors.js';
import { limits } from '../../../src/engine/base/limits.js';
import { SeededRng } from '../../../src/engine/base/rng.js';
import { toHex, utf8 } from '../../../src/engine/crypto/encoding.js';
import {
  isSealedEnvelope,
  openWithPassphrase,
  sealWithPassphrase,
  type SealedEnvelope,
} from '../../../src/engine/crypto/seal.js';

const seed = Number(process.env.OPTIMYSTIC_SEED ?? 7914);
const cheap = { costLog2: limits.sealScryptCostLog2Min };

function expectCode(fn: () => unknown, code: ErrorCode, what = ''): void {
  expect(fn, what)
    .to.throw()
    .that.satisfies((e: unknown) => isEngineError(e, code));
}

describe('sealing key material with a passphrase', () => {
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.error(`    failing seed: OPTIMYSTIC_SEED=${seed}`);
  });

  it('opens what it sealed, also after a trip through JSON text', () => {
    const rng = new SeededRng(seed);
    const secret = rng.bytes(70);
    const sealed = sealWithPassphrase(secret, 'correct horse battery staple', rng, {
      ...cheap,
      content: 'identity',
    });
    expect(sealed.format).to.equal('optimystic-sealed');
    expect(sealed.content).to.equal('identity');
    expect(isSealedEnvelope(sealed)).to.equal(true);
    const reread = JSON.parse(JSON.stringify(sealed)) as unknown;
    expect(toHex(openWithPassphrase(reread, 'correct horse battery staple', 'identity'))).to.equal(
      toHex(secret),
    );
  });

  it('writes the same envelope for the same seed, and never the plaintext', () => {
    const secret = utf8('share: very secret scalar');
    const a = sealWithPassphrase(secret, 'pw', new SeededRng(seed), cheap);
    const b = sealWithPassphrase(secret, 'pw', new SeededRng(seed), cheap);
    const c = sealWithPassphrase(secret, 'pw', new SeededRng(seed + 1), cheap);
    expect(a).to.deep.equal(b);
    expect(a.ciphertext).to.not.equal(c.ciphertext);
    expect(JSON.stringify(a)).to.not.include('very secret');
  });

  it('rejects a wrong passphrase as an integrity failure', () => {
    const sealed = sealWithPassphrase(utf8('x'), 'right', new SeededRng(seed), cheap);
    expectCode(() => openWithPassphrase(sealed, 'wrong'), 'BAD_SIGNATURE');
    expectCode(() => openWithPassphrase(sealed, 'Right'), 'BAD_SIGNATURE');
  });

  it('rejects any edit of the ciphertext, nonce, salt, cost or content label', () => {
    const sealed = sealWithPassphrase(utf8('some key material'), 'pw', new SeededRng(seed), cheap);
    const flip = (text: string): string => (text[0] === 'A' ? 'B' : 'A') + text.slice(1);
    const edits: [string, SealedEnvelope][] = [
      ['ciphertext', { ...sealed, ciphertext: flip(sealed.ciphertext) }],
      ['nonce', { ...sealed, nonce: flip(sealed.nonce) }],
      ['salt', { ...sealed, kdf: { ...sealed.kdf, salt: flip(sealed.kdf.salt) } }],
      ['cost', { ...sealed, kdf: { ...sealed.kdf, costLog2: sealed.kdf.costLog2 + 1 } }],
      ['content', { ...sealed, content: 'threshold-share' }],
    ];
    for (const [what, edited] of edits)
      expectCode(() => openWithPassphrase(edited, 'pw'), 'BAD_SIGNATURE', what);
  });

  it('reports a value that is not an envelope as corrupt, before spending any work on it', () => {
    const sealed = sealWithPassphrase(utf8('x'), 'pw', new SeededRng(seed), cheap);
    const cases: [string, unknown][] = [
      ['null', null],
      ['array', []],
      ['other format', { ...sealed, format: 'something-else' }],
      ['future version', { ...sealed, version: 2 }],
      ['unknown field', { ...sealed, extra: 1 }],
      ['hostile cost', { ...sealed, kdf: { ...sealed.kdf, costLog2: 40 } }],
      ['weak cost', { ...sealed, kdf: { ...sealed.kdf, costLog2: 4 } }],
      ['other cipher', { ...sealed, cipher: 'aes-256-gcm' }],
      ['short nonce', { ...sealed, nonce: 'AAAA' }],
      ['truncated ciphertext', { ...sealed, ciphertext: 'AAAA' }],
    ];
    for (const [what, value] of cases) expectCode(() => openWithPassphrase(value, 'pw'), 'CORRUPT', what);
    expect(isSealedEnvelope({ ...sealed, version: 2 })).to.equal(false);
  });

  it('refuses an envelope holding something other than what the caller expects', () => {
    const sealed = sealWithPassphrase(utf8('x'), 'pw', new SeededRng(seed), {
      ...cheap,
      content: 'ceremony-state',
    });
    expectCode(() => openWithPassphrase(sealed, 'pw', 'identity'), 'BAD_INPUT');
  });

  it('treats composed and decomposed spellings of a passphrase as the same passphrase', () => {
    const sealed = sealWithPassphrase(utf8('x'), 'caf\u00e9', new SeededRng(seed), cheap);
    expect(toHex(openWithPassphrase(sealed, 'cafe\u0301'))).to.equal(toHex(utf8('x')));
  });

  it('refuses an empty passphrase and out-of-range costs when sealing', () => {
    expectCode(() => sealWithPassphrase(utf8('x'), '', new SeededRng(seed), cheap), 'BAD_INPUT');
    expectCode(() => sealWithPassphrase(utf8('x'), 'pw', new SeededRng(seed), { costLog2: 8 }), 'BAD_INPUT');
    expectCode(() => sealWithPassphrase(utf8('x'), 'pw', new SeededRng(seed), { costLog2: 21 }), 'BAD_INPUT');
  });
});
