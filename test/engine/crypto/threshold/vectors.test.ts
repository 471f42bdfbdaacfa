import { expect } from 'chai';
import { verify as nodeVerify, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Rng } from '../../../../src/engine/base/rng.js';
import { SeededRng } from '../../../../src/engine/base/rng.js';
import { bip340PublicKey, signBip340, verifyBip340 } from '../../../../src/engine/crypto/bip340.js';
import { fromHex, toBase64Url, toHex } from '../../../../src/engine/crypto/encoding.js';
import { Identity } from '../../../../src/engine/crypto/identity.js';
import { buildPublicKey } from '../../../../src/engine/crypto/threshold/key.js';
import {
  aggregateSignature,
  checkDealing,
  commitToSign,
  createSigningPackage,
  finishKeyGeneration,
  getSuite,
  shareFor,
  shareMatches,
  signPackage,
  startDealing,
  verifyGroupSignature,
  verifySignatureShare,
  type SuiteId,
  type ThresholdShare,
} from '../../../../src/engine/crypto/threshold/index.js';

const vectorsDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../../shared/vectors');
const readVector = (name: string): unknown => JSON.parse(readFileSync(resolve(vectorsDir, name), 'utf8'));

/** Returns queued byte strings in order, then fails loudly: nonce randomness injected from a vector. */
class ScriptedRng implements Rng {
  private readonly queue: Uint8Array[];
  constructor(
    chunks: Uint8Array[],
    private readonly fallback?: Rng,
  ) {
    this.queue = [...chunks];
  }
  bytes(length: number): Uint8Array {
    const next = this.queue.shift();
    if (next === undefined) {
      if (this.fallback !== undefined) return this.fallback.bytes(length);
      throw new Error(`scripted randomness exhausted (asked for ${length} bytes)`);
    }
    expect(next.length, 'scripted chunk length').to.equal(length);
    return next;
  }
  float(): number {
    throw new Error('not used');
  }
  int(): number {
    throw new Error('not used');
  }
}

interface RfcVector {
  config: { MAX_PARTICIPANTS: string; MIN_PARTICIPANTS: string };
  inputs: {
    participant_list: number[];
    group_public_key: string;
    message: string;
    share_polynomial_coefficients: string[];
    participant_shares: { identifier: number; participant_share: string }[];
  };
  round_one_outputs: {
    outputs: {
      identifier: number;
      hiding_nonce_randomness: string;
      binding_nonce_randomness: string;
      hiding_nonce_commitment: string;
      binding_nonce_commitment: string;
    }[];
  };
  round_two_outputs: { outputs: { identifier: number; sig_share: string }[] };
  final_output: { sig: string };
}

const rfcCases: [SuiteId, string][] = [
  ['ed25519-sha512', 'frost-ed25519-sha512.json'],
  ['secp256k1-sha256', 'frost-secp256k1-sha256.json'],
];

describe('RFC 9591 Appendix E vectors through the signing wrapper', () => {
  for (const [suiteId, file] of rfcCases) {
    it(`reproduces every commitment, signature share and the signature for ${suiteId}`, () => {
      const v = readVector(file) as RfcVector;
      const suite = getSuite(suiteId);
      const rng = new SeededRng(9591);
      const n = Number(v.config.MAX_PARTICIPANTS);
      const t = Number(v.config.MIN_PARTICIPANTS);
      const holders = Array.from({ length: n }, (_, i) => ({
        peerId: Identity.generate(rng).peerId,
        identifier: i + 1,
      }));
      const groupKey = suite.decodePoint(fromHex(v.inputs.group_public_key))!;
      const coefficientPoints = v.inputs.share_polynomial_coefficients.map((c) =>
        suite.base.multiply(suite.decodeScalar(fromHex(c))!),
      );
      const publicKey = buildPublicKey({
        suite,
        purpose: 'sign',
        label: 'rfc9591',
        threshold: t,
        commitments: [groupKey, ...coefficientPoints],
        holders,
        session: toBase64Url(rng.bytes(32)),
      });
      expect(toHex(Buffer.from(publicKey.groupKey, 'base64url'))).to.equal(v.inputs.group_public_key);
      const shareOf = (id: number): ThresholdShare => ({
        format: 'optimystic-threshold-share',
        version: 1,
        keyId: publicKey.keyId,
        suite: suiteId,
        session: publicKey.session,
        peerId: holders[id - 1]!.peerId,
        identifier: id,
        signingShare: toBase64Url(
          fromHex(v.inputs.participant_shares.find((s) => s.identifier === id)!.participant_share),
        ),
      });
      const round1 = v.inputs.participant_list.map((id) => {
        const out = v.round_one_outputs.outputs.find((o) => o.identifier === id)!;
        const scripted = new ScriptedRng([
          fromHex(out.hiding_nonce_randomness),
          fromHex(out.binding_nonce_randomness),
        ]);
        const made = commitToSign(publicKey, shareOf(id), scripted);
        expect(
          toHex(Buffer.from(made.commitment.hiding, 'base64url')),
          `hiding commitment of ${id}`,
        ).to.equal(out.hiding_nonce_commitment);
        expect(
          toHex(Buffer.from(made.commitment.binding, 'base64url')),
          `binding commitment of ${id}`,
        ).to.equal(out.binding_nonce_commitment);
        return { id, ...made };
      });
      const message = fromHex(v.inputs.message);
      const pkg = createSigningPackage(
        publicKey,
        message,
        round1.map((r) => r.commitment),
      );
      const shares = round1.map((r) => signPackage(publicKey, shareOf(r.id), r.nonces, pkg));
      for (const share of shares) {
        const expected = v.round_two_outputs.outputs.find(
          (o) => o.identifier === share.identifier,
        )!.sig_share;
        expect(
          toHex(Buffer.from(share.share, 'base64url')),
          `signature share of ${share.identifier}`,
        ).to.equal(expected);
        expect(verifySignatureShare(publicKey, pkg, share)).to.equal(true);
      }
      const signature = aggregateSignature(publicKey, pkg, shares);
      expect(toHex(signature)).to.equal(v.final_output.sig);
      expect(verifyGroupSignature(publicKey, message, signature)).to.equal(true);
      if (suiteId === 'ed25519-sha512') {
        const key = createPublicKey({
          key: { kty: 'OKP', crv: 'Ed25519', x: publicKey.groupKey },
          format: 'jwk',
        });
        expect(nodeVerify(null, message, key, signature), 'node:crypto accepts the group signature').to.equal(
          true,
        );
      }
      const tampered = Uint8Array.from(signature);
      tampered[signature.length - 1]! ^= 1;
      expect(verifyGroupSignature(publicKey, message, tampered)).to.equal(false);
    });
  }
});

interface ZfParticipant {
  identifier: number;
  signing_key: string;
  coefficient: string;
  vss_commitments: string[];
  proof_of_knowledge: string;
  signing_shares: Record<string, string>;
  verifying_share: string;
  signing_share: string;
}

const zfCases: [SuiteId, string][] = [
  ['ed25519-sha512', 'zf-frost-dkg-ed25519-sha512.json'],
  ['secp256k1-sha256', 'zf-frost-dkg-secp256k1-sha256.json'],
];

describe('ZF FROST DKG vectors through the key-generation layer', () => {
  for (const [suiteId, file] of zfCases) {
    it(`reproduces commitments, accepts every proof, deals and finishes with the vector's shares for ${suiteId}`, () => {
      const v = readVector(file) as {
        config: { MAX_PARTICIPANTS: number; MIN_PARTICIPANTS: number };
        inputs: Record<string, unknown>;
      };
      const suite = getSuite(suiteId);
      const n = v.config.MAX_PARTICIPANTS;
      const t = v.config.MIN_PARTICIPANTS;
      const people = Array.from({ length: n }, (_, i) => v.inputs[String(i + 1)] as ZfParticipant);
      const verifyingKey = v.inputs.verifying_key as string;
      // noble maps 48 random bytes to (value mod (order − 1)) + 1; scripting value = scalar − 1 fixes the polynomial.
      const scalarChunk = (hex: string): Uint8Array => {
        const value = suite.decodeScalar(fromHex(hex))! - 1n;
        const be = Buffer.from(value.toString(16).padStart(96, '0'), 'hex');
        return new Uint8Array(suite.Fn.isLE ? Buffer.from(be).reverse() : be);
      };
      const scripted = (p: ZfParticipant) => {
        const rng = new ScriptedRng(
          [scalarChunk(p.signing_key), scalarChunk(p.coefficient)],
          new SeededRng(p.identifier),
        );
        return (length?: number) => new Uint8Array(rng.bytes(length ?? 32));
      };
      const dealers = people.map((p) => {
        const { dealing, secret } = startDealing(suite, undefined, p.identifier, t, n, scripted(p));
        expect(dealing.commitments.map(toHex), `commitments of ${p.identifier}`).to.deep.equal(
          p.vss_commitments,
        );
        const theirs = {
          identifier: p.identifier,
          commitments: p.vss_commitments.map(fromHex),
          proof: fromHex(p.proof_of_knowledge),
        };
        const checked = checkDealing(suite, undefined, theirs, t);
        expect(checked, `proof of knowledge of ${p.identifier}`).to.have.property('points');
        expect(
          checkDealing(suite, undefined, { ...theirs, identifier: (p.identifier % n) + 1 }, t),
          'proof bound to the identifier',
        ).to.deep.equal({ fault: 'bad-proof-of-possession' });
        expect(
          checkDealing(suite, 'another-session/0', theirs, t),
          'proof bound to the context',
        ).to.deep.equal({ fault: 'bad-proof-of-possession' });
        return {
          p,
          dealing: theirs,
          secret,
          points: (checked as { points: ReturnType<typeof suite.decodePoint>[] }).points,
        };
      });
      for (const me of people) {
        const received = new Map<number, bigint>();
        for (const dealer of dealers) {
          if (dealer.p.identifier === me.identifier) continue;
          const share = shareFor(suite, dealer.secret, me.identifier);
          expect(
            toHex(suite.encodeScalar(share)),
            `share from ${dealer.p.identifier} to ${me.identifier}`,
          ).to.equal(me.signing_shares[String(dealer.p.identifier)]);
          expect(shareMatches(suite, dealer.points as never, me.identifier, share)).to.equal(true);
          expect(
            shareMatches(suite, dealer.points as never, me.identifier, suite.Fn.add(share, 1n)),
          ).to.equal(false);
          received.set(dealer.p.identifier, share);
        }
        const others = dealers.filter((d) => d.p.identifier !== me.identifier).map((d) => d.dealing);
        const finished = finishKeyGeneration(
          suite,
          undefined,
          { identifier: me.identifier, threshold: t, participants: n, random: scripted(me) },
          others,
          received,
        );
        expect(toHex(suite.encodeScalar(finished.share)), `final share of ${me.identifier}`).to.equal(
          me.signing_share,
        );
        expect(toHex(finished.commitments[0]!.toBytes())).to.equal(verifyingKey);
        for (const other of people)
          expect(toHex(finished.verifyingShares.get(other.identifier)!)).to.equal(other.verifying_share);
      }
    });
  }
});

describe('BIP-340 vectors', () => {
  const rows = readFileSync(resolve(vectorsDir, 'bip340-test-vectors.csv'), 'utf8')
    .trim()
    .split(/\r?\n/)
    .slice(1)
    .map((line) => line.split(','));
  it('has every row of the CSV', () => {
    expect(rows.length).to.equal(19);
  });
  it('signs exactly the expected signature wherever a secret key is given, and verifies every row as expected', () => {
    let signed = 0;
    for (const [index, secretKey, publicKey, auxRand, message, signature, result, comment] of rows) {
      const label = `row ${index} ${comment ?? ''}`;
      if (secretKey !== '') {
        expect(toHex(bip340PublicKey(fromHex(secretKey!))).toUpperCase(), label).to.equal(publicKey);
        expect(
          toHex(signBip340(fromHex(secretKey!), fromHex(message!), fromHex(auxRand!))).toUpperCase(),
          label,
        ).to.equal(signature);
        signed++;
      }
      expect(verifyBip340(fromHex(publicKey!), fromHex(message!), fromHex(signature!)), label).to.equal(
        result === 'TRUE',
      );
    }
    expect(signed).to.be.greaterThan(3);
  });
});
