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

async function expectCode(fn: () => Promise<unknown>, code: ErrorCode, what = ''): Promise<void> {
  const outcome = await fn().then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(outcome, `${what}: expected ${code}`).to.satisfy((e: unknown) => isEngineError(e, code));
}

describe('sealing key material with a passphrase', () => {
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.error(`    failing seed: OPTIMYSTIC_SEED=${seed}`);
  });

  it('opens what it sealed, also after a trip through JSON text', async () => {
    const rng = new SeededRng(seed);
    const secret = rng.bytes(70);
    const sealed = await sealWithPassphrase(secret, 'correct horse battery staple', rng, {
      ...cheap,
      content: 'identity',
    });
    expect(sealed.format).to.equal('optimystic-sealed');
    expect(sealed.content).to.equal('identity');
    expect(isSealedEnvelope(sealed)).to.equal(true);
    const reread = JSON.parse(JSON.stringify(sealed)) as unknown;
    expect(toHex(await openWithPassphrase(reread, 'correct horse battery staple', 'identity'))).to.equal(
      toHex(secret),
    );
  });

  it('writes the same envelope for the same seed, and never the plaintext', async () => {
    const secret = utf8('share: very secret scalar');
    const a = await sealWithPassphrase(secret, 'pw', new SeededRng(seed), cheap);
    const b = await sealWithPassphrase(secret, 'pw', new SeededRng(seed), cheap);
    const c = await sealWithPassphrase(secret, 'pw', new SeededRng(seed + 1), cheap);
    expect(a).to.deep.equal(b);
    expect(a.ciphertext).to.not.equal(c.ciphertext);
    expect(JSON.stringify(a)).to.not.include('very secret');
  });

  it('rejects a wrong passphrase as an integrity failure', async () => {
    const sealed = await sealWithPassphrase(utf8('x'), 'right', new SeededRng(seed), cheap);
    await expectCode(() => openWithPassphrase(sealed, 'wrong'), 'BAD_SIGNATURE');
    await expectCode(() => openWithPassphrase(sealed, 'Right'), 'BAD_SIGNATURE');
  });

  it('rejects any edit of the ciphertext, nonce, salt, cost or content label', async () => {
    const sealed = await sealWithPassphrase(utf8('some key material'), 'pw', new SeededRng(seed), cheap);
    const flip = (text: string): string => (text[0] === 'A' ? 'B' : 'A') + text.slice(1);
    const edits: [string, SealedEnvelope][] = [
      ['ciphertext', { ...sealed, ciphertext: flip(sealed.ciphertext) }],
      ['nonce', { ...sealed, nonce: flip(sealed.nonce) }],
      ['salt', { ...sealed, kdf: { ...sealed.kdf, salt: flip(sealed.kdf.salt) } }],
      ['cost', { ...sealed, kdf: { ...sealed.kdf, costLog2: sealed.kdf.costLog2 + 1 } }],
      ['content', { ...sealed, content: 'threshold-share' }],
    ];
    for (const [what, edited] of edits)
      await expectCode(() => openWithPassphrase(edited, 'pw'), 'BAD_SIGNATURE', what);
  });

  it('reports a value that is not an envelope as corrupt, before spending any work on it', async () => {
    const sealed = await sealWithPassphrase(utf8('x'), 'pw', new SeededRng(seed), cheap);
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
    for (const [what, value] of cases)
      await expectCode(() => openWithPassphrase(value, 'pw'), 'CORRUPT', what);
    expect(isSealedEnvelope({ ...sealed, version: 2 })).to.equal(false);
  });

  it('refuses an envelope holding something other than what the caller expects', async () => {
    const sealed = await sealWithPassphrase(utf8('x'), 'pw', new SeededRng(seed), {
      ...cheap,
      content: 'ceremony-state',
    });
    await expectCode(() => openWithPassphrase(sealed, 'pw', 'identity'), 'BAD_INPUT');
  });

  it('treats composed and decomposed spellings of a passphrase as the same passphrase', async () => {
    const sealed = await sealWithPassphrase(utf8('x'), 'caf\u00e9', new SeededRng(seed), cheap);
    expect(toHex(await openWithPassphrase(sealed, 'cafe\u0301'))).to.equal(toHex(utf8('x')));
  });

  it('opens an envelope sealed before the key derivation moved to node:crypto', async () => {
    // Sealed by the @noble/hashes scrypt this module used before (same parameters, RFC 7914): files
    // already in keystores must open unchanged.
    const earlier: SealedEnvelope = {
      format: 'optimystic-sealed',
      version: 1,
      content: 'identity',
      kdf: { name: 'scrypt', costLog2: 10, blockSize: 8, parallelism: 1, salt: 'q5gu7FG7zvYyNoicIW_12A' },
      cipher: 'xchacha20-poly1305',
      nonce: 'a9ZnPx5LsRDAmAOBCZs2E835_JAQLjcS',
      ciphertext: 'ic_LXuImBxV8ho6mWyZK0oPFP2OYSNMqES6QY4UAnZelJnTjGo1skL7Wlv-0pHdhiWms1M39QA',
    };
    const opened = await openWithPassphrase(earlier, 'caf\u00e9 passphrase', 'identity');
    expect(new TextDecoder().decode(opened)).to.equal('sealed before the switch to node:crypto');
    await expectCode(() => openWithPassphrase(earlier, 'cafe passphrase'), 'BAD_SIGNATURE');
  });

  it('seals and opens many at once (the derivations queue), each with its own passphrase', async () => {
    const rng = new SeededRng(seed);
    const secrets = Array.from({ length: 6 }, () => rng.bytes(32));
    const sealed = await Promise.all(
      secrets.map((secret, i) => sealWithPassphrase(secret, `pw ${i}`, new SeededRng(seed + i), cheap)),
    );
    const opened = await Promise.all(sealed.map((envelope, i) => openWithPassphrase(envelope, `pw ${i}`)));
    expect(opened.map(toHex)).to.deep.equal(secrets.map(toHex));
    await expectCode(() => openWithPassphrase(sealed[0], 'pw 1'), 'BAD_SIGNATURE');
  });

  it('refuses an empty passphrase and out-of-range costs when sealing', async () => {
    await expectCode(() => sealWithPassphrase(utf8('x'), '', new SeededRng(seed), cheap), 'BAD_INPUT');
    await expectCode(
      () => sealWithPassphrase(utf8('x'), 'pw', new SeededRng(seed), { costLog2: 8 }),
      'BAD_INPUT',
    );
    await expectCode(
      () => sealWithPassphrase(utf8('x'), 'pw', new SeededRng(seed), { costLog2: 21 }),
      'BAD_INPUT',
    );
  });
});
