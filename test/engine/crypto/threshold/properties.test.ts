import { expect } from 'chai';
import { createHash, createPublicKey, verify as nodeVerify } from 'node:crypto';
import { isEngineError } from '../../../../src/engine/base/errors.js';
import type { Rng } from '../../../../src/engine/base/rng.js';
import { fromBase64Url, toHex } from '../../../../src/engine/crypto/encoding.js';
import {
  aggregateSignature,
  checkPublicKey,
  checkShare,
  combinePartialDecryptions,
  commitToSign,
  createPartialDecryption,
  createSigningPackage,
  encryptToGroup,
  getSuite,
  keyIdFor,
  lagrangeAtZeroForTests,
  signPackage,
  verifyGroupSignature,
  type SuiteId,
  type ThresholdPublicKey,
  type ThresholdShare,
} from './test-only.js';
import {
  collectKey,
  makeParticipants,
  pick,
  propose,
  runCeremony,
  testSeed,
  withSeed,
  type GeneratedKey,
  type Participant,
} from './harness.js';

/**
 * Properties over random 2 ≤ t ≤ n ≤ 10. OPTIMYSTIC_SEED replays a failing run; OPTIMYSTIC_TRIALS
 * runs more configurations than the default (which keeps the suite to a few seconds).
 */

const trials = Number(process.env.OPTIMYSTIC_TRIALS ?? 2);

function randomConfig(rng: Rng, nMax = 10): { t: number; n: number } {
  const n = 2 + rng.int(nMax - 1);
  return { t: 2 + rng.int(n - 1), n };
}

function generate(rng: Rng, suite: SuiteId, t: number, n: number): GeneratedKey {
  const participants = makeParticipants(rng, n);
  const proposal = propose(
    participants[rng.int(n)]!,
    { kind: 'dkg', suite, threshold: t, roster: participants, label: `prop ${t}/${n}` },
    rng,
  );
  const run = runCeremony(participants, proposal, rng);
  expect(run.rejections, 'no message was rejected').to.deep.equal([]);
  expect(run.deadlines, 'nobody had to wait for a deadline').to.equal(0);
  const key = collectKey(run, participants);
  expect(key.shares.size).to.equal(n);
  for (const s of run.states.values()) expect(s.result!.confirmations).to.have.length(n);
  return key;
}

function sign(
  key: GeneratedKey,
  holders: readonly ThresholdShare[],
  message: Uint8Array,
  rng: Rng,
): Uint8Array {
  const round1 = holders.map((share) => ({ share, ...commitToSign(key.publicKey, share, rng) }));
  const pkg = createSigningPackage(
    key.publicKey,
    message,
    round1.map((r) => r.commitment),
  );
  const shares = round1.map((r) => signPackage(key.publicKey, r.share, r.nonces, pkg));
  return aggregateSignature(key.publicKey, pkg, shares);
}

function nodeAccepts(publicKey: ThresholdPublicKey, message: Uint8Array, signature: Uint8Array): boolean {
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: publicKey.groupKey }, format: 'jwk' });
  return nodeVerify(null, message, key, signature);
}

/** Test-only: what a set of shares interpolates to at zero, as a point (s·G). */
function interpolatedKey(publicKey: ThresholdPublicKey, shares: readonly ThresholdShare[]): string {
  const suite = getSuite(publicKey.suite);
  const xs = shares.map((s) => BigInt(s.identifier));
  let secret = 0n;
  for (const s of shares) {
    const scalar = suite.decodeScalar(fromBase64Url(s.signingShare, 'share'))!;
    secret = suite.Fn.add(
      secret,
      suite.Fn.mul(scalar, lagrangeAtZeroForTests(suite, xs, BigInt(s.identifier))),
    );
  }
  return toHex(suite.base.multiply(secret).toBytes());
}

describe('threshold keys: properties over random t-of-n', () => {
  for (let trial = 0; trial < trials; trial++) {
    const seed = testSeed(5000 + trial);
    it(`key generation gives one group key; any t holders sign for node:crypto and t−1 never can (seed ${seed})`, () =>
      withSeed(seed, (rng) => {
        const { t, n } = randomConfig(rng);
        const key = generate(rng, 'ed25519-sha512', t, n);
        const all = [...key.shares.values()];
        const groupKey = toHex(fromBase64Url(key.publicKey.groupKey, 'group key'));
        for (let round = 0; round < 2; round++) {
          const holders = pick(rng, all, t);
          const message = rng.bytes(1 + rng.int(200));
          const signature = sign(key, holders, message, rng);
          expect(nodeAccepts(key.publicKey, message, signature), `${t}-of-${n} signature`).to.equal(true);
          expect(
            interpolatedKey(key.publicKey, holders),
            'test-only: t shares interpolate to the group secret',
          ).to.equal(groupKey);
        }
        const fewer = pick(rng, all, t - 1);
        const message = rng.bytes(32);
        const round1 = fewer.map((share) => commitToSign(key.publicKey, share, rng).commitment);
        expect(() => createSigningPackage(key.publicKey, message, round1))
          .to.throw()
          .that.satisfies((e: unknown) => isEngineError(e, 'BAD_INPUT'));
        expect(
          interpolatedKey(key.publicKey, fewer),
          'test-only: t−1 shares interpolate to something else',
        ).to.not.equal(groupKey);
      }));
  }

  for (let trial = 0; trial < trials; trial++) {
    const seed = testSeed(6000 + trial);
    it(`any t holders decrypt a ciphertext to the group key and t−1 never can (seed ${seed})`, () =>
      withSeed(seed, (rng) => {
        const { t, n } = randomConfig(rng);
        const key = generate(rng, 'ristretto255-sha512', t, n);
        const all = [...key.shares.values()];
        const plaintext = rng.bytes(1 + rng.int(300));
        const aad = rng.bytes(rng.int(20));
        const ciphertext = encryptToGroup(key.publicKey, plaintext, rng, aad);
        for (let round = 0; round < 2; round++) {
          const holders = pick(rng, all, t);
          const partials = holders.map((share) =>
            createPartialDecryption(key.publicKey, share, ciphertext, rng),
          );
          const opened = combinePartialDecryptions(key.publicKey, ciphertext, partials);
          expect(toHex(opened.plaintext)).to.equal(toHex(plaintext));
          expect(opened.rejected).to.deep.equal([]);
        }
        const fewer = pick(rng, all, t - 1).map((share) =>
          createPartialDecryption(key.publicKey, share, ciphertext, rng),
        );
        expect(() => combinePartialDecryptions(key.publicKey, ciphertext, fewer))
          .to.throw()
          .that.satisfies((e: unknown) => isEngineError(e, 'NO_QUORUM'));
      }));
  }

  it(`secp256k1 keys sign with any t holders (seed ${testSeed(7000)})`, () =>
    withSeed(testSeed(7000), (rng) => {
      const { t, n } = randomConfig(rng, 6);
      const key = generate(rng, 'secp256k1-sha256', t, n);
      const message = rng.bytes(50);
      const signature = sign(key, pick(rng, [...key.shares.values()], t), message, rng);
      expect(verifyGroupSignature(key.publicKey, message, signature)).to.equal(true);
      expect(signature).to.have.length(65);
    }));

  it(`refresh keeps the group key and threshold and changes every share (seed ${testSeed(8000)})`, () =>
    withSeed(testSeed(8000), (rng) => {
      const { t, n } = randomConfig(rng, 7);
      const key = generate(rng, 'ed25519-sha512', t, n);
      const holders: Participant[] = key.participants.map((p) => ({
        ...p,
        priorShare: key.shares.get(p.identity.peerId)!,
      }));
      const proposal = propose(holders[0]!, { kind: 'refresh', prior: key.publicKey, roster: holders }, rng);
      const run = runCeremony(holders, proposal, rng);
      expect(run.rejections).to.deep.equal([]);
      const refreshed = collectKey(run, holders);
      expect(refreshed.publicKey.groupKey).to.equal(key.publicKey.groupKey);
      expect(refreshed.publicKey.keyId).to.equal(key.publicKey.keyId);
      expect(refreshed.publicKey.threshold).to.equal(t);
      expect(refreshed.publicKey.session).to.not.equal(key.publicKey.session);
      for (const h of holders) {
        const before = key.shares.get(h.identity.peerId)!;
        const after = refreshed.shares.get(h.identity.peerId)!;
        expect(after.identifier).to.equal(before.identifier);
        expect(after.signingShare, `share of ${h.identity.peerId} changed`).to.not.equal(before.signingShare);
        expect(
          () => checkShare(checkPublicKey(refreshed.publicKey), before),
          'an old share is refused by the new key',
        ).to.throw();
      }
      const message = rng.bytes(40);
      const signature = sign(refreshed, pick(rng, [...refreshed.shares.values()], t), message, rng);
      expect(nodeAccepts(refreshed.publicKey, message, signature)).to.equal(true);
    }));

  it(`key ids never start with '-' or '_', and a key stored under the older full-digest id still loads (seed ${testSeed(8500)})`, () =>
    withSeed(testSeed(8500), (rng) => {
      // A command line reads an argument starting with '-' as a flag; 1 in 64 full-digest ids did.
      for (let i = 0; i < 2000; i++) expect(keyIdFor('ed25519-sha512', rng.bytes(32))).to.match(/^[A-Za-f]/);
      const fullDigest = (k: GeneratedKey): Buffer =>
        createHash('sha256')
          .update('optimystic/threshold/key-id/v1/ed25519-sha512/')
          .update(fromBase64Url(k.publicKey.groupKey, 'group key'))
          .digest()
          .subarray(0, 16);
      // A key whose full digest starts with the top bit set: its older id differs from today's.
      let key = generate(rng, 'ed25519-sha512', 2, 3);
      while (fullDigest(key)[0]! < 0x80) key = generate(rng, 'ed25519-sha512', 2, 3);
      const digest = fullDigest(key);
      const today = Buffer.from(digest);
      today[0]! &= 0x7f;
      expect(key.publicKey.keyId).to.equal(today.toString('base64url'));
      const wrong = Buffer.from(digest);
      wrong[5]! ^= 0x01;
      expect(() => checkPublicKey({ ...key.publicKey, keyId: wrong.toString('base64url') })).to.throw(
        /key id does not match/,
      );
      const older = { ...key.publicKey, keyId: digest.toString('base64url') };
      expect(older.keyId).to.not.equal(key.publicKey.keyId);
      expect(checkPublicKey(older).json.keyId).to.equal(older.keyId);
      // Refreshing a key keeps the id it has, whichever form.
      const holders: Participant[] = key.participants.map((p) => ({
        ...p,
        priorShare: { ...key.shares.get(p.identity.peerId)!, keyId: older.keyId },
      }));
      const run = runCeremony(
        holders,
        propose(holders[0]!, { kind: 'refresh', prior: older, roster: holders }, rng),
        rng,
      );
      expect(run.rejections).to.deep.equal([]);
      expect(collectKey(run, holders).publicKey.keyId).to.equal(older.keyId);
    }));

  for (let trial = 0; trial < trials; trial++) {
    const seed = testSeed(9000 + trial);
    it(`reshare from (t, n) to a new roster and threshold (t′, n′) keeps the group key (seed ${seed})`, () =>
      withSeed(seed, (rng) => {
        const { t, n } = randomConfig(rng, 7);
        const key = generate(rng, 'ristretto255-sha512', t, n);
        const oldHolders: Participant[] = key.participants.map((p) => ({
          ...p,
          priorShare: key.shares.get(p.identity.peerId)!,
        }));
        const dealers = pick(rng, oldHolders, t + rng.int(n - t + 1));
        const next = randomConfig(rng, 8);
        const keep = pick(rng, dealers, Math.min(dealers.length, rng.int(next.n + 1)));
        const newcomers = makeParticipants(rng, next.n - keep.length);
        const recipients = [...keep, ...newcomers];
        const roster = [...dealers, ...newcomers];
        const proposal = propose(
          dealers[0]!,
          {
            kind: 'reshare',
            prior: key.publicKey,
            threshold: next.t,
            roster,
            recipients: recipients.map((p) => p.identity.peerId),
          },
          rng,
        );
        const run = runCeremony(roster, proposal, rng);
        expect(run.rejections).to.deep.equal([]);
        const reshared = collectKey(run, roster);
        expect(reshared.publicKey.groupKey).to.equal(key.publicKey.groupKey);
        expect(reshared.publicKey.threshold).to.equal(next.t);
        expect(reshared.publicKey.holders.map((h) => h.peerId)).to.deep.equal(
          recipients.map((p) => p.identity.peerId),
        );
        expect(reshared.shares.size).to.equal(next.n);
        const plaintext = rng.bytes(64);
        const ciphertext = encryptToGroup(key.publicKey, plaintext, rng);
        const holders = pick(rng, [...reshared.shares.values()], next.t);
        const partials = holders.map((share) =>
          createPartialDecryption(reshared.publicKey, share, ciphertext, rng),
        );
        expect(
          toHex(combinePartialDecryptions(reshared.publicKey, ciphertext, partials).plaintext),
          `${t}/${n} → ${next.t}/${next.n}`,
        ).to.equal(toHex(plaintext));
      }));
  }
});
