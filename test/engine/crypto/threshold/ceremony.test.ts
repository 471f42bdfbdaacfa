import { expect } from 'chai';
import { isEngineError, type ErrorCode } from '../../../../src/engine/base/errors.js';
import { canonicalJson } from '../../../../src/engine/base/codec.js';
import { toBase64Url } from '../../../../src/engine/crypto/encoding.js';
import {
  checkActivation,
  createProposal,
  generateEncryptionKey,
  joinCeremony,
  sessionIdOf,
  signMessage,
  stepCeremony,
  type CeremonyEffect,
  type CeremonyInput,
  type CeremonyState,
  type ProposalMessage,
} from '../../../../src/engine/crypto/threshold/index.js';
import {
  collectKey,
  keysOf,
  makeParticipants,
  nowMs,
  propose,
  runCeremony,
  testSeed,
  withSeed,
  type Adversary,
} from './harness.js';

function expectCode(fn: () => unknown, code: ErrorCode, what = ''): void {
  expect(fn, what)
    .to.throw()
    .that.satisfies((e: unknown) => isEngineError(e, code));
}

describe('threshold ceremonies: the state machine', () => {
  it(`sends nothing until the operator approves, then one Accept (seed ${testSeed(300)})`, () =>
    withSeed(testSeed(300), (rng) => {
      const ps = makeParticipants(rng, 3);
      const proposal = propose(
        ps[0]!,
        { kind: 'dkg', suite: 'ed25519-sha512', threshold: 2, roster: ps },
        rng,
      );
      const joined = joinCeremony(proposal, keysOf(ps[1]!), rng, nowMs);
      expect(joined.phase).to.equal('proposed');
      const tick = stepCeremony(joined, { type: 'Tick', nowMs: nowMs + 1 }, keysOf(ps[1]!));
      expect(tick.effects).to.deep.equal([]);
      const approved = stepCeremony(joined, { type: 'Approve' }, keysOf(ps[1]!));
      expect(approved.effects.map((e) => e.type)).to.deep.equal(['Broadcast']);
      expect((approved.effects[0] as Extract<CeremonyEffect, { type: 'Broadcast' }>).message.type).to.equal(
        'Accept',
      );
      expect(stepCeremony(approved.state, { type: 'Approve' }, keysOf(ps[1]!)).effects).to.deep.equal([]);
      expect(joined.decision, 'the step did not change its input state').to.equal('pending');
    }));

  it(`fails everywhere with NO_QUORUM when one participant declines (seed ${testSeed(301)})`, () =>
    withSeed(testSeed(301), (rng) => {
      const ps = makeParticipants(rng, 4);
      const proposal = propose(
        ps[0]!,
        { kind: 'dkg', suite: 'ristretto255-sha512', threshold: 2, roster: ps },
        rng,
      );
      const decliner = ps[2]!;
      let declined = joinCeremony(proposal, keysOf(decliner), rng, nowMs);
      const step = stepCeremony(declined, { type: 'Decline', reason: 'not today' }, keysOf(decliner));
      declined = step.state;
      expect(declined.phase).to.equal('failed');
      const declineMessage = (
        step.effects.find((e) => e.type === 'Broadcast') as Extract<CeremonyEffect, { type: 'Broadcast' }>
      ).message;
      for (const p of ps.filter((x) => x !== decliner)) {
        let state = joinCeremony(proposal, keysOf(p), rng, nowMs);
        state = stepCeremony(state, { type: 'Approve' }, keysOf(p)).state;
        state = stepCeremony(state, { type: 'Receive', message: declineMessage }, keysOf(p)).state;
        expect(state.phase).to.equal('failed');
        expect(state.failure!.code).to.equal('NO_QUORUM');
        expect(state.failure!.culprits).to.deep.equal([decliner.identity.peerId]);
      }
    }));

  it(`fails with NO_QUORUM, naming the silent, when acceptances never all arrive (seed ${testSeed(302)})`, () =>
    withSeed(testSeed(302), (rng) => {
      const ps = makeParticipants(rng, 3);
      const proposal = propose(
        ps[0]!,
        { kind: 'dkg', suite: 'ristretto255-sha512', threshold: 2, roster: ps },
        rng,
      );
      const silent = ps[1]!;
      const run = runCeremony(ps, proposal, rng, {
        adversaries: new Map<string, Adversary>([[silent.identity.peerId, { approves: false }]]),
      });
      for (const p of [ps[0]!, ps[2]!]) {
        const state = run.states.get(p.identity.peerId)!;
        expect(state.failure).to.deep.equal({
          code: 'NO_QUORUM',
          reason: `no acceptance from ${silent.identity.peerId}`,
          culprits: [silent.identity.peerId],
        });
      }
    }));

  it(`fails with TIMEOUT once a tick reaches the expiry, and refuses to join an expired proposal (seed ${testSeed(303)})`, () =>
    withSeed(testSeed(303), (rng) => {
      const ps = makeParticipants(rng, 3);
      const proposal = propose(
        ps[0]!,
        { kind: 'dkg', suite: 'ristretto255-sha512', threshold: 2, roster: ps },
        rng,
      );
      const state = stepCeremony(
        joinCeremony(proposal, keysOf(ps[0]!), rng, nowMs),
        { type: 'Approve' },
        keysOf(ps[0]!),
      ).state;
      const expiry = proposal.proposal.expiresAtMs;
      expect(stepCeremony(state, { type: 'Tick', nowMs: expiry - 1 }, keysOf(ps[0]!)).state.phase).to.equal(
        'proposed',
      );
      const expired = stepCeremony(state, { type: 'Tick', nowMs: expiry }, keysOf(ps[0]!));
      expect(expired.state.failure!.code).to.equal('TIMEOUT');
      expect(expired.effects.map((e) => e.type)).to.deep.equal(['Failed']);
      expectCode(() => joinCeremony(proposal, keysOf(ps[1]!), rng, expiry), 'TIMEOUT');
    }));

  it(`refuses to join a proposal without this participant, with another encryption key, or altered (seed ${testSeed(304)})`, () =>
    withSeed(testSeed(304), (rng) => {
      const ps = makeParticipants(rng, 4);
      const roster = ps.slice(0, 3);
      const proposal = propose(ps[0]!, { kind: 'dkg', suite: 'ed25519-sha512', threshold: 2, roster }, rng);
      expectCode(() => joinCeremony(proposal, keysOf(ps[3]!), rng, nowMs), 'BAD_INPUT', 'outsider');
      expectCode(
        () =>
          joinCeremony(proposal, { ...keysOf(ps[1]!), encryption: generateEncryptionKey(rng) }, rng, nowMs),
        'BAD_INPUT',
        'other key',
      );
      const relabelled = { ...proposal, proposal: { ...proposal.proposal, label: 'something else' } };
      expectCode(
        () => joinCeremony(relabelled, keysOf(ps[1]!), rng, nowMs),
        'BAD_INPUT',
        'session no longer matches',
      );
      const rehashed: ProposalMessage = { ...relabelled, session: sessionIdOf(relabelled.proposal) };
      expectCode(
        () => joinCeremony(rehashed, keysOf(ps[1]!), rng, nowMs),
        'BAD_SIGNATURE',
        'only the signature is now wrong',
      );
      const badCard = {
        ...roster[2]!.card,
        encryptionKey: toBase64Url(generateEncryptionKey(rng).publicKey),
      };
      expectCode(
        () =>
          createProposal(
            ps[0]!.identity,
            {
              kind: 'dkg',
              suite: 'ed25519-sha512',
              threshold: 2,
              roster: [roster[0]!.card, roster[1]!.card, badCard],
              expiresAtMs: nowMs + 1000,
            },
            rng,
          ),
        'BAD_SIGNATURE',
        'card',
      );
    }));

  it(`validates the shape of a proposal: threshold, roster, suite and purpose, refresh and reshare rules (seed ${testSeed(305)})`, () =>
    withSeed(testSeed(305), (rng) => {
      const ps = makeParticipants(rng, 4);
      const cards = ps.map((p) => p.card);
      const base = {
        kind: 'dkg' as const,
        suite: 'ristretto255-sha512' as const,
        threshold: 2,
        roster: cards,
        expiresAtMs: nowMs + 1000,
      };
      expectCode(() => createProposal(ps[0]!.identity, { ...base, threshold: 5 }, rng), 'BAD_INPUT', 't > n');
      expectCode(() => createProposal(ps[0]!.identity, { ...base, threshold: 1 }, rng), 'BAD_INPUT', 't = 1');
      expectCode(
        () => createProposal(ps[0]!.identity, { ...base, roster: [...cards, cards[0]!] }, rng),
        'BAD_INPUT',
        'duplicate',
      );
      expectCode(
        () => createProposal(ps[0]!.identity, { ...base, purpose: 'sign' }, rng),
        'BAD_INPUT',
        'ristretto255 is for decryption',
      );
      expectCode(
        () => createProposal(ps[0]!.identity, { ...base, suite: 'ed25519-sha512', purpose: 'decrypt' }, rng),
        'BAD_INPUT',
        'ed25519 is for signing',
      );
      expectCode(
        () =>
          createProposal(
            ps[0]!.identity,
            { ...base, recipients: [ps[0]!.identity.peerId, ps[1]!.identity.peerId] },
            rng,
          ),
        'BAD_INPUT',
        'dkg: everyone receives',
      );
      const run = runCeremony(
        ps.slice(0, 3),
        propose(
          ps[0]!,
          { kind: 'dkg', suite: 'ristretto255-sha512', threshold: 2, roster: ps.slice(0, 3) },
          rng,
        ),
        rng,
      );
      const key = collectKey(run, ps.slice(0, 3)).publicKey;
      expectCode(
        () =>
          createProposal(
            ps[0]!.identity,
            { kind: 'refresh', prior: key, roster: cards.slice(0, 2), expiresAtMs: nowMs + 1000 },
            rng,
          ),
        'BAD_INPUT',
        'refresh needs every holder',
      );
      expectCode(
        () =>
          createProposal(
            ps[0]!.identity,
            {
              kind: 'reshare',
              prior: key,
              threshold: 2,
              roster: [cards[0]!, cards[3]!],
              recipients: [ps[0]!.identity.peerId, ps[3]!.identity.peerId],
              expiresAtMs: nowMs + 1000,
            },
            rng,
          ),
        'BAD_INPUT',
        'reshare needs t current holders',
      );
      const ok = createProposal(
        ps[0]!.identity,
        {
          kind: 'reshare',
          prior: key,
          threshold: 2,
          roster: [cards[0]!, cards[1]!, cards[3]!],
          recipients: [ps[1]!.identity.peerId, ps[3]!.identity.peerId],
          expiresAtMs: nowMs + 1000,
        },
        rng,
      );
      expectCode(
        () => joinCeremony(ok, keysOf(ps[0]!), rng, nowMs),
        'BAD_INPUT',
        'a dealer without its share',
      );
      expect(joinCeremony(ok, keysOf(ps[3]!), rng, nowMs).phase, 'a newcomer needs no share').to.equal(
        'proposed',
      );
    }));

  it(`runs to the same key when every state and message goes through JSON text between steps (seed ${testSeed(306)})`, () =>
    withSeed(testSeed(306), (rng) => {
      const ps = makeParticipants(rng, 4);
      const proposal = propose(
        ps[0]!,
        { kind: 'dkg', suite: 'ed25519-sha512', threshold: 3, roster: ps },
        rng,
      );
      const run = runCeremony(ps, proposal, rng, { roundTrip: true });
      expect(run.rejections).to.deep.equal([]);
      const key = collectKey(run, ps);
      const state = run.states.get(ps[0]!.identity.peerId)!;
      expect(JSON.parse(JSON.stringify(state))).to.deep.equal(state);
      expect(key.shares.size).to.equal(4);
    }));

  it(`repeats exactly the same messages when a step is run again from the same state (seed ${testSeed(307)})`, () =>
    withSeed(testSeed(307), (rng) => {
      const ps = makeParticipants(rng, 3);
      const proposal = propose(
        ps[0]!,
        { kind: 'dkg', suite: 'ristretto255-sha512', threshold: 2, roster: ps },
        rng,
      );
      const replays: { peer: string; before: CeremonyState; input: CeremonyInput; effects: string }[] = [];
      runCeremony(ps, proposal, rng, {
        onStep: (peer, before, input, _after, effects) => {
          if (effects.some((e) => e.type === 'Broadcast' && e.message.type !== 'Accept'))
            replays.push({ peer, before, input, effects: canonicalJson(effects) });
        },
      });
      expect(replays.length).to.be.at.least(9);
      for (const r of replays) {
        const p = ps.find((x) => x.identity.peerId === r.peer)!;
        expect(canonicalJson(stepCeremony(r.before, r.input, keysOf(p)).effects)).to.equal(r.effects);
      }
    }));

  it(`fails with NO_QUORUM when too few participants remain after blame (seed ${testSeed(308)})`, () =>
    withSeed(testSeed(308), (rng) => {
      const ps = makeParticipants(rng, 3);
      const proposal = propose(
        ps[0]!,
        { kind: 'dkg', suite: 'ristretto255-sha512', threshold: 3, roster: ps },
        rng,
      );
      const cheat = ps[1]!;
      const adversary: Adversary = {
        outgoing: (m) => (m.type === 'Deal' || m.type === 'Response' ? undefined : m),
      };
      const run = runCeremony(ps, proposal, rng, {
        adversaries: new Map([[cheat.identity.peerId, adversary]]),
      });
      for (const p of [ps[0]!, ps[2]!]) {
        const state = run.states.get(p.identity.peerId)!;
        expect(state.failure!.code).to.equal('NO_QUORUM');
        expect(state.failure!.culprits).to.deep.equal([cheat.identity.peerId]);
        expect(state.history[0]!.blame).to.deep.equal([
          { culprit: cheat.identity.peerId, fault: 'missing-deal', about: null },
        ]);
      }
    }));

  it(`certifies activation with every holder's confirmation and rejects a missing, altered or foreign one (seed ${testSeed(309)})`, () =>
    withSeed(testSeed(309), (rng) => {
      const ps = makeParticipants(rng, 3);
      const proposal = propose(
        ps[0]!,
        { kind: 'dkg', suite: 'ed25519-sha512', threshold: 2, roster: ps },
        rng,
      );
      const run = runCeremony(ps, proposal, rng);
      const result = run.states.get(ps[0]!.identity.peerId)!.result!;
      const certified = checkActivation(proposal, result.publicKey, result.confirmations);
      expect(certified).to.deep.equal({ attempt: 0, transcript: result.transcript });
      expectCode(
        () => checkActivation(proposal, result.publicKey, result.confirmations.slice(1)),
        'BAD_CERTIFICATE',
        'missing',
      );
      const altered = {
        ...result.confirmations[1]!,
        transcript: result.confirmations[0]!.transcript.replace(/^./, 'A'),
      };
      expectCode(
        () =>
          checkActivation(proposal, result.publicKey, [
            result.confirmations[0]!,
            altered,
            result.confirmations[2]!,
          ]),
        'BAD_CERTIFICATE',
        'altered',
      );
      const forged = signMessage(ps[1]!.identity, { ...result.confirmations[1]!, transcript: 'x' });
      expectCode(
        () =>
          checkActivation(proposal, result.publicKey, [
            result.confirmations[0]!,
            forged,
            result.confirmations[2]!,
          ]),
        'BAD_CERTIFICATE',
        'different transcript',
      );
      const other = propose(ps[0]!, { kind: 'dkg', suite: 'ed25519-sha512', threshold: 2, roster: ps }, rng);
      expectCode(
        () => checkActivation(other, result.publicKey, result.confirmations),
        'BAD_CERTIFICATE',
        'foreign',
      );
    }));
});
