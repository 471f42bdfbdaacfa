import { expect } from 'chai';
import { isEngineError } from '../../../../src/engine/base/errors.js';
import type { Rng } from '../../../../src/engine/base/rng.js';
import { fromBase64Url, fromHex, toBase64Url } from '../../../../src/engine/crypto/encoding.js';
import { Identity } from '../../../../src/engine/crypto/identity.js';
import {
  aggregateSignature,
  attemptContext,
  checkProposal,
  combinePartialDecryptions,
  commitToSign,
  createPartialDecryption,
  createSigningPackage,
  discloseSharedKey,
  encryptionSuite,
  encryptToGroup,
  findInvalidSignatureShares,
  getSuite,
  sealShare,
  shareFor,
  signMessage,
  signPackage,
  startDealing,
  verifyPartialDecryption,
  type AcceptMessage,
  type Blame,
  type CeremonyMessage,
  type DealMessage,
  type ProposalMessage,
  type ResponseMessage,
  type SuiteId,
} from '../../../../src/engine/crypto/threshold/index.js';
import { scalarFromRandomBytes } from '../../../../src/engine/crypto/threshold/suites.js';
import {
  collectKey,
  honest,
  makeParticipants,
  pick,
  propose,
  resign,
  runCeremony,
  testSeed,
  withSeed,
  type Adversary,
  type Participant,
  type RunResult,
} from './harness.js';

/**
 * One misbehaving participant per case. Every honest participant must end with the same blame for
 * the first attempt, restart without the culprit and finish with the same key.
 */

interface Scene {
  rng: Rng;
  suite: SuiteId;
  t: number;
  participants: Participant[];
  proposal: ProposalMessage;
  adversary: Participant;
  victim: Participant;
  peer(p: Participant): string;
}

function scene(rng: Rng, suite: SuiteId, t = 2, n = 3): Scene {
  const participants = makeParticipants(rng, n);
  const proposal = propose(participants[0]!, { kind: 'dkg', suite, threshold: t, roster: participants }, rng);
  return {
    rng,
    suite,
    t,
    participants,
    proposal,
    adversary: participants[1]!,
    victim: participants[2]!,
    peer: (p) => p.identity.peerId,
  };
}

/** Runs with one adversary and checks the common outcome; returns the run for case-specific checks. */
function expectBlame(
  s: Scene,
  adversary: Adversary,
  expected: Omit<Blame, 'culprit' | 'about'> & { culprit: Participant; about?: Participant },
): RunResult {
  const adversaries = new Map([[s.peer(s.adversary), adversary]]);
  const run = runCeremony(s.participants, s.proposal, s.rng, { adversaries });
  const good = honest(s.participants, adversaries);
  const want: Blame = {
    culprit: s.peer(expected.culprit),
    fault: expected.fault,
    about: expected.about === undefined ? null : s.peer(expected.about),
  };
  for (const p of good) {
    const state = run.states.get(s.peer(p))!;
    expect(state.history[0]?.blame, `blame seen by ${p.identity.peerId}`).to.deep.equal([want]);
  }
  const key = collectKey(run, good);
  expect(key.publicKey.holders.map((h) => h.peerId)).to.not.include(want.culprit);
  expect(key.publicKey.holders).to.have.length(s.participants.length - 1);
  return run;
}

/** Deals the adversary's shares itself (a fresh polynomial), so it can lie about any of them. */
function forgeDeal(
  s: Scene,
  honestDeal: DealMessage,
  options: { shareDelta?: Map<string, bigint>; proofContext?: string; ciphertextFlip?: string } = {},
): DealMessage {
  const checked = checkProposal(s.proposal);
  const state = { dealers: checked.dealers, recipients: checked.recipients };
  const ctx = attemptContext(checked, honestDeal.attempt, state.dealers, state.recipients);
  const suite = getSuite(s.suite);
  const random = (length = 32) => new Uint8Array(s.rng.bytes(length));
  const dealerId = ctx.dealerIds.get(honestDeal.from)!;
  const { dealing, secret } = startDealing(
    suite,
    options.proofContext ?? ctx.proofContext,
    dealerId,
    s.t,
    ctx.recipients.length,
    random,
  );
  const e = scalarFromRandomBytes(encryptionSuite, s.rng.bytes(64));
  const shares = ctx.recipients
    .filter((peer) => peer !== honestDeal.from)
    .map((peer) => {
      const value = suite.Fn.add(
        shareFor(suite, secret, ctx.recipientIds.get(peer)!),
        options.shareDelta?.get(peer) ?? 0n,
      );
      const slot = {
        session: honestDeal.session,
        attempt: honestDeal.attempt,
        dealer: honestDeal.from,
        recipient: peer,
      };
      const sealed = sealShare(slot, e, checked.members.get(peer)!.encryptionKey, suite.encodeScalar(value));
      if (options.ciphertextFlip === peer) sealed[0]! ^= 0x01;
      return { to: peer, ciphertext: toBase64Url(sealed) };
    });
  return resign(s.adversary.identity, {
    ...honestDeal,
    commitments: dealing.commitments.map(toBase64Url),
    proof: toBase64Url(dealing.proof),
    ephemeralKey: toBase64Url(encryptionSuite.base.multiply(e).toBytes()),
    shares,
  });
}

/**
 * An adversary that replaces its first-attempt deal and keeps its responses consistent with the
 * replacement (echoing the forged deal), so the only fault on record is the one under test.
 */
function lyingDealer(s: Scene, forge: (honestDeal: DealMessage) => DealMessage): Adversary {
  const forged = new Map<number, DealMessage>();
  return {
    outgoing(message) {
      if (message.type === 'Deal' && message.attempt === 0) {
        if (!forged.has(0)) forged.set(0, forge(message));
        return forged.get(0);
      }
      if (message.type === 'Response' && forged.has(message.attempt)) {
        const replacement = forged.get(message.attempt)!;
        return resign(s.adversary.identity, {
          ...message,
          deals: message.deals.map((d) => (d.from === message.from ? replacement : d)),
        });
      }
      return message;
    },
  };
}

/** An adversary that rewrites its first-attempt response. */
function lyingResponder(s: Scene, rewrite: (response: ResponseMessage) => ResponseMessage): Adversary {
  return {
    outgoing: (message) =>
      message.type === 'Response' && message.attempt === 0
        ? resign(s.adversary.identity, rewrite(message))
        : message,
  };
}

function dealFrom(response: ResponseMessage, dealer: string): DealMessage {
  return response.deals.find((d) => d.from === dealer)!;
}

function point(bytes: Uint8Array) {
  return encryptionSuite.decodePoint(bytes)!;
}

describe('threshold ceremonies: adversarial participants', () => {
  it(`blames a dealer whose share to one recipient is inconsistent with its commitments (seed ${testSeed(100)})`, () =>
    withSeed(testSeed(100), (rng) => {
      const s = scene(rng, 'ristretto255-sha512');
      expectBlame(
        s,
        lyingDealer(s, (deal) => forgeDeal(s, deal, { shareDelta: new Map([[s.peer(s.victim), 1n]]) })),
        { culprit: s.adversary, fault: 'bad-share', about: s.victim },
      );
    }));

  it(`blames a dealer whose ciphertext for one recipient does not open (seed ${testSeed(101)})`, () =>
    withSeed(testSeed(101), (rng) => {
      const s = scene(rng, 'ristretto255-sha512');
      expectBlame(
        s,
        lyingDealer(s, (deal) => forgeDeal(s, deal, { ciphertextFlip: s.peer(s.victim) })),
        { culprit: s.adversary, fault: 'bad-ciphertext', about: s.victim },
      );
    }));

  it(`blames a participant that complains about a good share (seed ${testSeed(102)})`, () =>
    withSeed(testSeed(102), (rng) => {
      const s = scene(rng, 'ristretto255-sha512');
      const accused = s.victim;
      const adversary = lyingResponder(s, (response) => {
        const deal = dealFrom(response, s.peer(accused));
        const slot = {
          session: deal.session,
          attempt: deal.attempt,
          dealer: deal.from,
          recipient: response.from,
        };
        const disclosed = discloseSharedKey(
          slot,
          point(fromBase64Url(deal.ephemeralKey, 'E')),
          s.adversary.encryption,
          rng.bytes(32),
        );
        return {
          ...response,
          complaints: [
            {
              dealer: deal.from,
              sharedKey: toBase64Url(disclosed.sharedKey),
              proof: toBase64Url(disclosed.proof),
            },
          ],
        };
      });
      expectBlame(s, adversary, { culprit: s.adversary, fault: 'false-complaint', about: accused });
    }));

  it(`blames a complainer whose DLEQ proof does not hold (seed ${testSeed(103)})`, () =>
    withSeed(testSeed(103), (rng) => {
      const s = scene(rng, 'ristretto255-sha512');
      const adversary = lyingResponder(s, (response) => {
        const deal = dealFrom(response, s.peer(s.victim));
        const E = point(fromBase64Url(deal.ephemeralKey, 'E'));
        // Reveals a key for another slot (another recipient name): the proof cannot match this one.
        const wrongSlot = {
          session: deal.session,
          attempt: deal.attempt,
          dealer: deal.from,
          recipient: s.peer(s.victim),
        };
        const disclosed = discloseSharedKey(wrongSlot, E, s.adversary.encryption, rng.bytes(32));
        return {
          ...response,
          complaints: [
            {
              dealer: deal.from,
              sharedKey: toBase64Url(disclosed.sharedKey),
              proof: toBase64Url(disclosed.proof),
            },
          ],
        };
      });
      expectBlame(s, adversary, { culprit: s.adversary, fault: 'bad-complaint-proof', about: s.victim });
    }));

  it(`blames a complainer that reveals a key that is not x·E, even with a well-formed proof shape (seed ${testSeed(104)})`, () =>
    withSeed(testSeed(104), (rng) => {
      const s = scene(rng, 'ristretto255-sha512');
      const adversary = lyingResponder(s, (response) => {
        const deal = dealFrom(response, s.peer(s.victim));
        const fake = encryptionSuite.base
          .multiply(scalarFromRandomBytes(encryptionSuite, rng.bytes(64)))
          .toBytes();
        return {
          ...response,
          complaints: [
            { dealer: deal.from, sharedKey: toBase64Url(fake), proof: toBase64Url(rng.bytes(64)) },
          ],
        };
      });
      expectBlame(s, adversary, { culprit: s.adversary, fault: 'bad-complaint-proof', about: s.victim });
    }));

  it(`blames a dealer that sends different deals to different participants (seed ${testSeed(105)})`, () =>
    withSeed(testSeed(105), (rng) => {
      const s = scene(rng, 'ristretto255-sha512');
      let other: DealMessage | undefined;
      const adversary: Adversary = {
        outgoing(message, to) {
          if (message.type !== 'Deal' || message.attempt !== 0 || to !== s.peer(s.victim)) return message;
          other ??= forgeDeal(s, message);
          return other;
        },
      };
      expectBlame(s, adversary, { culprit: s.adversary, fault: 'equivocating-deal' });
    }));

  for (const [what, change] of [
    ['one commitment short', (c: string[]) => c.slice(0, -1)],
    ['one commitment too many', (c: string[]) => [...c, c[0]!]],
  ] as const) {
    it(`blames a dealer whose commitment vector has the wrong length: ${what} (seed ${testSeed(106)})`, () =>
      withSeed(testSeed(106), (rng) => {
        const s = scene(rng, 'ristretto255-sha512', 3, 4);
        expectBlame(
          s,
          lyingDealer(s, (deal) =>
            resign(s.adversary.identity, { ...deal, commitments: change(deal.commitments) }),
          ),
          { culprit: s.adversary, fault: 'wrong-commitment-count' },
        );
      }));
  }

  for (const [what, bytes] of [
    ['the identity point', '0100000000000000000000000000000000000000000000000000000000000000'],
    ['a non-canonical encoding (y ≥ p)', 'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f'],
    ['a point of small order', 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a'],
    [
      'a negative zero (x = 0 with the sign bit set)',
      '0100000000000000000000000000000000000000000000000000000000000080',
    ],
  ] as const) {
    it(`blames a dealer that commits to ${what} (seed ${testSeed(107)})`, () =>
      withSeed(testSeed(107), (rng) => {
        const s = scene(rng, 'ed25519-sha512');
        const forged = (deal: DealMessage) =>
          resign(s.adversary.identity, {
            ...deal,
            commitments: [deal.commitments[0]!, toBase64Url(fromHex(bytes))],
          });
        expectBlame(s, lyingDealer(s, forged), { culprit: s.adversary, fault: 'invalid-point' });
      }));
  }

  it(`blames a dealer whose ephemeral key is the identity of ristretto255 (seed ${testSeed(108)})`, () =>
    withSeed(testSeed(108), (rng) => {
      const s = scene(rng, 'ristretto255-sha512');
      const forged = (deal: DealMessage) =>
        resign(s.adversary.identity, { ...deal, ephemeralKey: toBase64Url(new Uint8Array(32)) });
      expectBlame(s, lyingDealer(s, forged), { culprit: s.adversary, fault: 'invalid-point' });
    }));

  it(`blames a dealer whose proof of possession is altered (seed ${testSeed(109)})`, () =>
    withSeed(testSeed(109), (rng) => {
      const s = scene(rng, 'ristretto255-sha512');
      const forged = (deal: DealMessage) => {
        const proof = fromBase64Url(deal.proof, 'proof');
        proof[40]! ^= 0x01;
        return resign(s.adversary.identity, { ...deal, proof: toBase64Url(proof) });
      };
      expectBlame(s, lyingDealer(s, forged), { culprit: s.adversary, fault: 'bad-proof-of-possession' });
    }));

  it(`blames a dealer whose proof of possession was made for another session (seed ${testSeed(110)})`, () =>
    withSeed(testSeed(110), (rng) => {
      const s = scene(rng, 'ristretto255-sha512');
      const elsewhere = `${toBase64Url(rng.bytes(32))}/0`;
      expectBlame(
        s,
        lyingDealer(s, (deal) => forgeDeal(s, deal, { proofContext: elsewhere })),
        { culprit: s.adversary, fault: 'bad-proof-of-possession' },
      );
    }));

  it(`blames a dealer that leaves a recipient out (seed ${testSeed(111)})`, () =>
    withSeed(testSeed(111), (rng) => {
      const s = scene(rng, 'ristretto255-sha512');
      const forged = (deal: DealMessage) =>
        resign(s.adversary.identity, {
          ...deal,
          shares: deal.shares.filter((e) => e.to !== s.peer(s.victim)),
        });
      expectBlame(s, lyingDealer(s, forged), { culprit: s.adversary, fault: 'missing-share' });
    }));

  it(`blames a responder that echoes a deal its dealer never signed (seed ${testSeed(112)})`, () =>
    withSeed(testSeed(112), (rng) => {
      const s = scene(rng, 'ristretto255-sha512');
      const adversary = lyingResponder(s, (response) => ({
        ...response,
        deals: response.deals.map((d) =>
          d.from === s.peer(s.victim) ? { ...d, proof: toBase64Url(rng.bytes(64)) } : d,
        ),
      }));
      expectBlame(s, adversary, { culprit: s.adversary, fault: 'forged-echo', about: s.victim });
    }));

  it(`blames a participant that never confirms, once the confirmation deadline passes (seed ${testSeed(113)})`, () =>
    withSeed(testSeed(113), (rng) => {
      const s = scene(rng, 'ristretto255-sha512');
      const run = expectBlame(
        s,
        { outgoing: (message) => (message.type === 'Confirm' ? undefined : message) },
        { culprit: s.adversary, fault: 'missing-confirmation' },
      );
      expect(run.deadlines).to.equal(1);
      for (const p of honest(s.participants, new Map([[s.peer(s.adversary), 1]]))) {
        expect(run.states.get(s.peer(p))!.result!.confirmations).to.have.length(s.participants.length - 1);
      }
    }));

  it(`blames a dealer that never deals, once the dealing deadline passes (seed ${testSeed(114)})`, () =>
    withSeed(testSeed(114), (rng) => {
      const s = scene(rng, 'ristretto255-sha512');
      expectBlame(
        s,
        {
          outgoing: (message) =>
            message.type === 'Deal' || message.type === 'Response' ? undefined : message,
        },
        { culprit: s.adversary, fault: 'missing-deal' },
      );
    }));

  it(`stops activation everywhere when a participant confirms another transcript (seed ${testSeed(118)})`, () =>
    withSeed(testSeed(118), (rng) => {
      const s = scene(rng, 'ristretto255-sha512');
      const adversary: Adversary = {
        outgoing: (m) =>
          m.type === 'Confirm'
            ? resign(s.adversary.identity, { ...m, transcript: toBase64Url(rng.bytes(32)) })
            : m,
      };
      const adversaries = new Map([[s.peer(s.adversary), adversary]]);
      const run = runCeremony(s.participants, s.proposal, rng, { adversaries });
      for (const p of honest(s.participants, adversaries)) {
        const state = run.states.get(s.peer(p))!;
        expect(state.phase).to.equal('failed');
        expect(state.result).to.equal(null);
        expect(state.failure!.code).to.equal('CONFLICT');
        expect(state.failure!.culprits).to.deep.equal([s.peer(s.adversary)]);
      }
    }));

  it(`never activates a key when a participant sends different responses to different participants (seed ${testSeed(119)})`, () =>
    withSeed(testSeed(119), (rng) => {
      const s = scene(rng, 'ristretto255-sha512');
      const adversary: Adversary = {
        outgoing: (m, to) =>
          m.type === 'Response' && to === s.peer(s.victim)
            ? resign(s.adversary.identity, { ...m, deals: [...m.deals].reverse() })
            : m,
      };
      const adversaries = new Map([[s.peer(s.adversary), adversary]]);
      const run = runCeremony(s.participants, s.proposal, rng, { adversaries });
      for (const p of honest(s.participants, adversaries)) {
        const state = run.states.get(s.peer(p))!;
        expect(state.result, 'no key for anyone').to.equal(null);
        expect(state.failure!.code).to.equal('CONFLICT');
      }
    }));

  it(`rejects messages from outside the roster and forged senders, and still completes without blame (seed ${testSeed(115)})`, () =>
    withSeed(testSeed(115), (rng) => {
      const s = scene(rng, 'ristretto255-sha512', 2, 4);
      const outsider = Identity.generate(rng);
      const fromOutsider = signMessage<AcceptMessage>(outsider, {
        type: 'Accept',
        session: s.proposal.session,
        from: outsider.peerId,
      });
      const impersonation = signMessage<AcceptMessage>(outsider, {
        type: 'Accept',
        session: s.proposal.session,
        from: s.peer(s.victim),
      });
      const run = runCeremony(s.participants, s.proposal, rng, {
        inject: [{ message: fromOutsider }, { message: impersonation }],
      });
      const key = collectKey(run, s.participants);
      expect(key.shares.size).to.equal(4);
      for (const state of run.states.values()) expect(state.history).to.deep.equal([]);
      const reasons = run.rejections.map((r) => `${r.error.code}:${String(r.error.details?.reason)}`);
      expect(reasons.filter((r) => r === 'BAD_INPUT:not-in-roster')).to.have.length(4);
      expect(reasons.filter((r) => r === 'BAD_SIGNATURE:bad-signature')).to.have.length(4);
      expect(run.rejections).to.have.length(8);
    }));

  it(`rejects messages replayed from another ceremony and from an earlier attempt, and accepts exact duplicates (seed ${testSeed(116)})`, () =>
    withSeed(testSeed(116), (rng) => {
      const s = scene(rng, 'ristretto255-sha512', 2, 4);
      // A finished ceremony among the same people, whose messages an attacker replays into this one.
      const elsewhere = propose(
        s.participants[0]!,
        { kind: 'dkg', suite: s.suite, threshold: 2, roster: s.participants },
        rng,
      );
      const recorded: CeremonyMessage[] = [];
      runCeremony(s.participants, elsewhere, rng, {
        adversaries: new Map([
          [s.peer(s.participants[3]!), { outgoing: (m) => (recorded.push(m), m), receivesDeadlines: true }],
        ]),
      });
      const foreignDeal = recorded.find((m) => m.type === 'Deal')!;
      // Here participant 3 never deals (nor responds, which would relay its deal), so attempt 0 ends at the deadline and attempt 1 runs without it.
      // The replayer plays along honestly, but sends everything twice, and from attempt 1 on also
      // replays its own attempt-0 deal and the deal from the other ceremony.
      const silent = s.participants[3]!;
      let ownFirstDeal: DealMessage | undefined;
      const replayer: Adversary = {
        receivesDeadlines: true,
        outgoing(message) {
          if (message.type === 'Deal' && message.attempt === 0) ownFirstDeal = message;
          const replays = 'attempt' in message && message.attempt > 0 ? [ownFirstDeal!, foreignDeal] : [];
          return [message, message, ...replays];
        },
      };
      const adversaries = new Map<string, Adversary>([
        [s.peer(s.adversary), replayer],
        [s.peer(silent), { outgoing: (m) => (m.type === 'Deal' || m.type === 'Response' ? undefined : m) }],
      ]);
      const run = runCeremony(s.participants, s.proposal, rng, { adversaries });
      const finishers = s.participants.filter((p) => p !== silent);
      for (const p of finishers) {
        expect(run.states.get(s.peer(p))!.history[0]!.blame).to.deep.equal([
          { culprit: s.peer(silent), fault: 'missing-deal', about: null },
        ]);
      }
      expect(collectKey(run, finishers).shares.size).to.equal(3);
      const reasons = new Set(
        run.rejections.map((r) => `${r.error.code}:${String(r.error.details?.reason)}`),
      );
      expect([...reasons].sort()).to.deep.equal(['BAD_INPUT:stale-attempt', 'BAD_INPUT:wrong-session']);
    }));

  it(`rejects a message altered in transit (seed ${testSeed(117)})`, () =>
    withSeed(testSeed(117), (rng) => {
      const s = scene(rng, 'ristretto255-sha512', 2, 4);
      const tamper: Adversary = {
        outgoing: (m) =>
          m.type === 'Accept'
            ? [{ ...m, session: toBase64Url(rng.bytes(32)) }, m]
            : m.type === 'Deal'
              ? [{ ...m, attempt: m.attempt + 1 }, m]
              : m,
      };
      const run = runCeremony(s.participants, s.proposal, rng, {
        adversaries: new Map([[s.peer(s.adversary), tamper]]),
      });
      collectKey(run, s.participants);
      const codes = run.rejections.map((r) => r.error.code).sort();
      expect(codes).to.deep.equal([
        'BAD_INPUT',
        'BAD_INPUT',
        'BAD_INPUT',
        'BAD_SIGNATURE',
        'BAD_SIGNATURE',
        'BAD_SIGNATURE',
      ]);
    }));
});

describe('threshold use: misbehaving holders', () => {
  it(`names a holder whose signature share is bad, the same way for every holder that checks (seed ${testSeed(200)})`, () =>
    withSeed(testSeed(200), (rng) => {
      const participants = makeParticipants(rng, 5);
      const run = runCeremony(
        participants,
        propose(
          participants[0]!,
          { kind: 'dkg', suite: 'ed25519-sha512', threshold: 3, roster: participants },
          rng,
        ),
        rng,
      );
      const key = collectKey(run, participants);
      const signers = pick(rng, [...key.shares.values()], 4);
      const round1 = signers.map((share) => ({ share, ...commitToSign(key.publicKey, share, rng) }));
      const message = rng.bytes(48);
      const pkg = createSigningPackage(
        key.publicKey,
        message,
        round1.map((r) => r.commitment),
      );
      const shares = round1.map((r) => signPackage(key.publicKey, r.share, r.nonces, pkg));
      const cheat = shares[1]!;
      const suite = getSuite('ed25519-sha512');
      const bumped = suite.Fn.add(suite.decodeScalar(fromBase64Url(cheat.share, 'share'))!, 1n);
      shares[1] = { ...cheat, share: toBase64Url(suite.encodeScalar(bumped)) };
      const culprit = {
        identifier: cheat.identifier,
        peerId: key.publicKey.holders.find((h) => h.identifier === cheat.identifier)!.peerId,
      };
      let thrown: unknown;
      try {
        aggregateSignature(key.publicKey, pkg, shares);
      } catch (error) {
        thrown = error;
      }
      expect(isEngineError(thrown, 'BAD_SIGNATURE')).to.equal(true);
      expect((thrown as { details: { culprits: unknown } }).details.culprits).to.deep.equal([culprit]);
      for (const _holder of signers)
        expect(findInvalidSignatureShares(key.publicKey, pkg, shares)).to.deep.equal([culprit]);
      const missing = shares.filter((sh) => sh.identifier !== signers[2]!.identifier);
      expect(
        findInvalidSignatureShares(key.publicKey, pkg, missing)
          .map((c) => c.identifier)
          .sort(),
      ).to.deep.equal([cheat.identifier, signers[2]!.identifier].sort((a, b) => a - b));
    }));

  it(`rejects a bad partial decryption by naming its holder, and still decrypts with t valid ones (seed ${testSeed(201)})`, () =>
    withSeed(testSeed(201), (rng) => {
      const participants = makeParticipants(rng, 5);
      const run = runCeremony(
        participants,
        propose(
          participants[0]!,
          { kind: 'dkg', suite: 'ristretto255-sha512', threshold: 3, roster: participants },
          rng,
        ),
        rng,
      );
      const key = collectKey(run, participants);
      const plaintext = rng.bytes(33);
      const ciphertext = encryptToGroup(key.publicKey, plaintext, rng);
      const holders = pick(rng, [...key.shares.values()], 4);
      const partials = holders.map((share) => createPartialDecryption(key.publicKey, share, ciphertext, rng));
      const bad = partials[0]!;
      const shifted = encryptionSuite.decodePoint(fromBase64Url(bad.share, 'D'))!.add(encryptionSuite.base);
      partials[0] = { ...bad, share: toBase64Url(shifted.toBytes()) };
      const culprit = {
        identifier: bad.identifier,
        peerId: key.publicKey.holders.find((h) => h.identifier === bad.identifier)!.peerId,
      };
      expect(verifyPartialDecryption(key.publicKey, ciphertext, partials[0])).to.equal(false);
      const opened = combinePartialDecryptions(key.publicKey, ciphertext, partials);
      expect(Buffer.from(opened.plaintext).equals(Buffer.from(plaintext))).to.equal(true);
      expect(opened.rejected).to.deep.equal([culprit]);
      let thrown: unknown;
      try {
        combinePartialDecryptions(key.publicKey, ciphertext, partials.slice(0, 3));
      } catch (error) {
        thrown = error;
      }
      expect(isEngineError(thrown, 'NO_QUORUM')).to.equal(true);
      expect((thrown as { details: { rejected: unknown } }).details.rejected).to.deep.equal([culprit]);
      // A partial made for another ciphertext is rejected too.
      const other = encryptToGroup(key.publicKey, plaintext, rng);
      const foreign = createPartialDecryption(key.publicKey, holders[1]!, other, rng);
      expect(verifyPartialDecryption(key.publicKey, ciphertext, foreign)).to.equal(false);
    }));

  it(`refuses to decrypt a ciphertext whose ephemeral key was re-used under another payload (seed ${testSeed(202)})`, () =>
    withSeed(testSeed(202), (rng) => {
      const participants = makeParticipants(rng, 3);
      const run = runCeremony(
        participants,
        propose(
          participants[0]!,
          { kind: 'dkg', suite: 'ristretto255-sha512', threshold: 2, roster: participants },
          rng,
        ),
        rng,
      );
      const key = collectKey(run, participants);
      const one = encryptToGroup(key.publicKey, rng.bytes(16), rng);
      const two = encryptToGroup(key.publicKey, rng.bytes(16), rng);
      const mauled = { ...two, ephemeral: one.ephemeral };
      const share = [...key.shares.values()][0]!;
      expect(() => createPartialDecryption(key.publicKey, share, mauled, rng))
        .to.throw()
        .that.satisfies((e: unknown) => isEngineError(e, 'BAD_SIGNATURE'));
    }));
});
