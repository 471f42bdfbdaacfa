import { expect } from 'chai';
import { limits } from '../../../src/engine/base/limits.js';
import {
  createConsensusState,
  isLive,
  expectedLeader,
  persistedOf,
  step,
  type ConsensusState,
} from '../../../src/engine/consensus/core.js';
import type {
  AcceptedMessage,
  ConsensusCertificate,
  ConsensusEffect,
  ConsensusValue,
  DecidedMessage,
  PromiseMessage,
} from '../../../src/engine/consensus/types.js';
import { leadershipOrder, valueDigest } from '../../../src/engine/consensus/values.js';
import {
  verifyConsensusCertificate,
  verifyEquivocationProof,
  voteMessage,
} from '../../../src/engine/consensus/votes.js';
import { derivedBlockId, derivedIdentity, derivedMembers } from '../../sim/identities.js';
import { entry, sent, TestGroup, timing, type Envelope } from './harness.js';

const seal = (name: string, members: readonly string[]): ConsensusValue => ({
  kind: 'seal',
  successor: derivedBlockId(`successor/${name}`),
  members: [...members].sort(),
});

describe('consensus core', () => {
  describe('leadership', () => {
    it('elects the live member nearest the block id, by XOR of sha256 keys', () => {
      const g = new TestGroup(5);
      const leader = g.elect();
      expect(leader).to.equal(leadershipOrder(g.group.blockId, g.members)[0]);
      for (const id of g.members) {
        expect(g.state(id).role.kind).to.equal(id === leader ? 'leader' : 'follower');
        expect(g.state(id).promised?.leader).to.equal(leader);
      }
    });

    it('decides a proposal in one round of signed accepts once a leader holds office', () => {
      const g = new TestGroup(3);
      const leader = g.elect();
      const [id] = g.propose(leader, entry('a'));
      const accepts = sent(g.lastEffects.get(leader)!, 'Accept');
      expect(accepts.map((a) => a.to).sort()).to.deep.equal(g.members.filter((m) => m !== leader).sort());
      // One follower's vote completes the quorum of 2.
      const follower = accepts[0]!.to;
      g.deliver((e) => (e.message.type === 'Accept' && e.to === follower ? 'deliver' : 'hold'));
      const votes = g.queue.filter((e) => e.message.type === 'Accepted');
      expect(votes).to.have.length(1);
      g.inject(votes[0]!);
      const [decision] = g.decided.get(leader)!;
      expect(decision?.slot).to.equal(0);
      expect(decision?.proposals).to.deep.equal([id]);
      expect(verifyConsensusCertificate(decision!.certificate, g.members, 'test')).to.equal(true);
      g.deliver();
      for (const m of g.members) expect(g.decidedValues(m)).to.deep.equal(['0:trx-a']);
    });

    it('redirects a proposal made at a follower to the leader', () => {
      const g = new TestGroup(5);
      const leader = g.elect();
      const follower = g.order[3]!;
      const [id] = g.propose(follower, entry('a'));
      expect(g.rejects.get(follower)).to.deep.equal([
        { proposal: id, reason: { kind: 'not-leader', leader } },
      ]);
    });

    it('moves leadership to the next nearest member when the leader stops answering', () => {
      const g = new TestGroup(5);
      const leader = g.elect();
      g.crash(leader);
      g.advance(timing.suspectAfterMs + 200);
      const next = g.order[1]!;
      expect(g.state(next).role.kind).to.equal('leader');
      expect(expectedLeader(g.state(g.order[4]!))).to.equal(next);
    });

    it('moves leadership downSuspectMs after the leader was last heard when the edge reports it down, and trusts it again once heard', () => {
      const g = new TestGroup(5);
      const leader = g.elect();
      g.crash(leader);
      const next = g.order[1]!;
      const down = g.now;
      for (const member of g.order.slice(1))
        g.input(member, { type: 'suspect', now: g.now, member: leader, since: down });
      // Not before downSuspectMs have passed since it was last heard: it may still be answering
      // views from its cached state (see ConsensusTiming.downSuspectMs).
      expect(isLive(g.state(next), leader)).to.equal(true);
      // Well before suspectAfterMs of silence, the next member leads.
      g.advance(timing.downSuspectMs! + timing.heartbeatMs);
      expect(g.now - down).to.be.below(timing.suspectAfterMs);
      expect(g.state(next).role.kind).to.equal('leader');
      for (const member of g.order.slice(2)) expect(expectedLeader(g.state(member))).to.equal(next);
      g.propose(next, entry('after'));
      g.deliver();
      expect(g.decidedValues(next).some((v) => v.endsWith('trx-after'))).to.equal(true);
      // A report about itself or a non-member changes nothing.
      const before = g.state(next);
      g.input(next, { type: 'suspect', now: g.now, member: next, since: g.now });
      g.input(next, { type: 'suspect', now: g.now, member: 'not-a-member', since: g.now });
      expect(g.state(next).lastHeard).to.deep.equal(before.lastHeard);
      // The old leader comes back: its first message makes it live again, and it leads once more.
      g.restart(leader);
      g.advance(timing.heartbeatMs * 4);
      for (const member of g.order) expect(expectedLeader(g.state(member)), member).to.equal(leader);
    });

    it('lets a new leader adopt a value accepted by a minority, in the same slot', () => {
      const g = new TestGroup(5);
      const old = g.elect();
      const witness = g.order[4]!;
      g.propose(old, entry('a'), entry('b'));
      // Only `witness` hears the Accept (slots 0 and 1), and its vote never reaches the leader.
      g.deliver((e) =>
        e.from === old && e.message.type === 'Accept' ? (e.to === witness ? 'deliver' : 'drop') : 'drop',
      );
      expect([...g.state(witness).accepted.keys()]).to.deep.equal([0, 1]);
      g.crash(old);
      g.queue = [];
      g.advance(timing.suspectAfterMs + 300);
      const next = g.order[1]!;
      expect(g.state(next).role.kind).to.equal('leader');
      const [id] = g.propose(next, entry('c'));
      g.deliver();
      // a and b keep their slots; c goes after them.
      for (const m of g.members.filter((x) => x !== old))
        expect(g.decidedValues(m)).to.deep.equal(['0:trx-a', '1:trx-b', '2:trx-c']);
      expect(g.decided.get(next)!.find((d) => d.slot === 2)?.proposals).to.deep.equal([id]);
    });

    it('fills a hole below an adopted value with a noop, and a restarted old leader loses its stale value', () => {
      const g = new TestGroup(3);
      const old = g.elect();
      const witness = g.order[2]!;
      g.propose(old, entry('a'));
      g.propose(old, entry('b'));
      // The witness sees only slot 1; slot 0 was accepted by the old leader alone.
      g.deliver((e) =>
        e.from === old && e.message.type === 'Accept'
          ? e.to === witness && e.message.proposals[0]!.slot === 1
            ? 'deliver'
            : 'drop'
          : 'drop',
      );
      g.crash(old);
      g.queue = [];
      g.advance(timing.suspectAfterMs + 300);
      const next = g.order[1]!;
      expect(g.state(next).role.kind).to.equal('leader');
      expect(g.decidedValues(next)).to.deep.equal(['0:noop', '1:trx-b']);
      // The old leader comes back holding `a` in slot 0 at an old ballot: the decided noop stands.
      g.restart(old);
      g.advance(timing.suspectAfterMs + 300);
      for (const m of g.members) expect(g.decidedValues(m).slice(-2)).to.deep.equal(['0:noop', '1:trx-b']);
    });
    it('adopts the value of the highest ballot when members accepted different values in one slot', () => {
      const g = new TestGroup(5);
      const candidate = g.order[0]!;
      const [x, y, z] = g.order.slice(1) as [string, string, string];
      const header = {
        network: 'test',
        blockId: g.group.blockId,
        membership: g.state(candidate).config.membership,
      };
      const accepted = (member: string, round: number, leader: string, value: ConsensusValue) => {
        const ballot = { round, leader };
        const digest = valueDigest(value);
        const signature = g.identity(member).sign(voteMessage({ ...header, slot: 0, ballot, digest }));
        return { slot: 0, ballot, value, signature };
      };
      g.tick();
      const role = g.state(candidate).role;
      if (role.kind !== 'candidate') throw new Error('the nearest member did not stand');
      g.queue = [];
      const promise = (from: string, entries: ReturnType<typeof accepted>[]): Envelope => ({
        from,
        to: candidate,
        message: {
          type: 'Promise',
          ...header,
          ballot: role.ballot,
          fromSlot: 0,
          accepted: entries,
          decided: [],
        },
      });
      // y accepted `newer` at a higher ballot than x accepted `old`; the higher one must win even
      // when it comes first.
      g.inject(promise(y, [accepted(y, 1, z, entry('newer'))]));
      g.inject(promise(x, [accepted(x, 0, z, entry('old'))]));
      const accepts = sent(g.lastEffects.get(candidate)!, 'Accept');
      expect(accepts).to.have.length(4);
      expect(accepts[0]!.message.proposals).to.deep.equal([{ slot: 0, value: entry('newer') }]);
    });

    it('refuses an Accept below its promise and tells the sender about the higher ballot', () => {
      const g = new TestGroup(3);
      const leader = g.elect();
      const follower = g.order[1]!;
      const promised = g.state(follower).promised!;
      const effects = g.inject({
        from: leader,
        to: follower,
        message: {
          type: 'Accept',
          network: 'test',
          blockId: g.group.blockId,
          membership: g.state(follower).config.membership,
          ballot: { round: promised.round - 1, leader },
          proposals: [{ slot: 0, value: entry('late') }],
        },
      });
      expect(effects.map((e) => e.type)).to.deep.equal(['send']);
      expect(sent(effects, 'Nack')[0]!.message.promised).to.deep.equal(promised);
      expect(g.state(follower).accepted.size).to.equal(0);
    });
  });

  describe('batching', () => {
    it('carries several slots in one Accept and one Accepted per member', () => {
      const g = new TestGroup(5);
      const leader = g.elect();
      const effects = g.propose(leader, entry('a'), entry('b'), entry('c'));
      const leaderEffects = g.lastEffects.get(leader)!;
      expect(effects).to.have.length(3);
      expect(leaderEffects.filter((e) => e.type === 'persist')).to.have.length(1);
      expect(leaderEffects[0]!.type).to.equal('persist');
      const accepts = sent(leaderEffects, 'Accept');
      expect(accepts).to.have.length(4);
      for (const a of accepts) expect(a.message.proposals.map((p) => p.slot)).to.deep.equal([0, 1, 2]);
      const follower = accepts[0]!.to;
      const reply = g.inject(g.queue.find((e) => e.to === follower && e.message.type === 'Accept')!);
      expect(reply[0]!.type).to.equal('persist');
      const votes = sent(reply, 'Accepted');
      expect(votes).to.have.length(1);
      expect(votes[0]!.message.votes.map((v) => v.slot)).to.deep.equal([0, 1, 2]);
      g.deliver();
      expect(g.decidedValues(leader)).to.deep.equal(['0:trx-a', '1:trx-b', '2:trx-c']);
      // One Decided per follower carries all three certificates.
      expect(g.queue).to.have.length(0);
    });
  });

  describe('thrifty accepts', () => {
    const thrifty = { ...timing, acceptWidenMs: 50 };
    const acceptsTo = (g: TestGroup, effects: readonly ConsensusEffect[]): string[] =>
      sent(effects, 'Accept')
        .map((a) => a.to)
        .sort((a, b) => g.order.indexOf(a) - g.order.indexOf(b));

    it('sends a new slot to the nearest members a quorum needs and decides with their votes', () => {
      const g = new TestGroup(5, 'thrifty-5', thrifty);
      const leader = g.elect();
      const [id] = g.propose(leader, entry('a'));
      expect(acceptsTo(g, g.lastEffects.get(leader)!)).to.deep.equal([g.order[1], g.order[2]]);
      g.deliver();
      const [decision] = g.decided.get(leader)!;
      expect(decision?.proposals).to.deep.equal([id]);
      expect(decision!.certificate.signatures.map((s) => s.member).sort()).to.deep.equal(
        [leader, g.order[1]!, g.order[2]!].sort(),
      );
      // The members not asked learn the decision (Decided goes to everyone) without having voted.
      for (const m of g.members) expect(g.decidedValues(m)).to.deep.equal(['0:trx-a']);
      expect(g.state(g.order[3]!).accepted.size).to.equal(0);
      expect(g.state(g.order[4]!).accepted.size).to.equal(0);
    });

    it('asks the other members once a chosen one is slow, before any retransmission', () => {
      const g = new TestGroup(3, 'thrifty-3', thrifty);
      const leader = g.elect();
      g.propose(leader, entry('a'));
      expect(acceptsTo(g, g.lastEffects.get(leader)!)).to.deep.equal([g.order[1]]);
      const slow = (e: { to: string }): 'hold' | 'deliver' => (e.to === g.order[1] ? 'hold' : 'deliver');
      g.advance(thrifty.acceptWidenMs + 25, slow);
      expect(thrifty.acceptWidenMs + 25).to.be.below(thrifty.retransmitMs);
      expect(g.decidedValues(leader)).to.deep.equal(['0:trx-a']);
      expect(g.state(g.order[2]!).accepted.get(0)?.value).to.deep.equal(entry('a'));
    });

    it('passes over a member whose connection closed at once, before it is suspected', () => {
      const g = new TestGroup(3, 'thrifty-3-closed', thrifty);
      const leader = g.elect();
      g.input(leader, { type: 'suspect', now: g.now, member: g.order[1]!, since: g.now });
      expect(isLive(g.state(leader), g.order[1]!)).to.equal(true);
      g.propose(leader, entry('a'));
      expect(acceptsTo(g, g.lastEffects.get(leader)!)).to.deep.equal([g.order[2]]);
      g.deliver((e) => (e.to === g.order[1] ? 'drop' : 'deliver'));
      expect(g.decidedValues(leader)).to.deep.equal(['0:trx-a']);
    });

    it('passes over a suspected member when choosing whom to ask', () => {
      const g = new TestGroup(5, 'thrifty-5-down', thrifty);
      const leader = g.elect();
      g.crash(g.order[1]!);
      g.advance(timing.suspectAfterMs + 100);
      expect(g.state(leader).role.kind).to.equal('leader');
      g.propose(leader, entry('a'));
      expect(acceptsTo(g, g.lastEffects.get(leader)!)).to.deep.equal([g.order[2], g.order[3]]);
      g.deliver();
      expect(g.decidedValues(leader)).to.deep.equal(['0:trx-a']);
    });
  });

  describe('quorums', () => {
    it('keeps a minority side undecided and answers NO_QUORUM, while the majority goes on', () => {
      const g = new TestGroup(5);
      const leader = g.elect();
      const minority = new Set([leader, g.order[4]!]);
      const split = (e: Envelope): 'deliver' | 'drop' =>
        minority.has(e.from) === minority.has(e.to) ? 'deliver' : 'drop';
      const [early] = g.propose(leader, entry('early'));
      g.deliver(split);
      g.advance(timing.suspectAfterMs + 100, split);
      const [late] = g.propose(leader, entry('late'));
      const rejects = g.rejects.get(leader)!;
      expect(rejects).to.deep.include({ proposal: early, reason: { kind: 'no-quorum', inDoubt: true } });
      expect(rejects).to.deep.include({ proposal: late, reason: { kind: 'no-quorum', inDoubt: false } });
      expect(g.decided.get(leader)).to.deep.equal([]);
      expect(g.decided.get(g.order[4]!)).to.deep.equal([]);
      // The majority elected its own leader and decides.
      const next = g.order[1]!;
      expect(g.state(next).role.kind).to.equal('leader');
      g.propose(next, entry('majority'));
      g.deliver(split);
      expect(g.decidedValues(next)).to.deep.equal(['0:trx-majority']);
      // Healed: the old leader's `early` (accepted by the minority only) never overwrites slot 0.
      g.advance(timing.suspectAfterMs * 3);
      for (const m of g.members) expect(g.decidedValues(m)[0]).to.equal('0:trx-majority');
    });

    it('decides alone in a group of one (solo mode, quorum of one)', () => {
      const g = new TestGroup(1);
      const leader = g.elect();
      g.propose(leader, entry('a'), entry('b'));
      expect(g.decidedValues(leader)).to.deep.equal(['0:trx-a', '1:trx-b']);
      expect(g.queue).to.have.length(0);
    });

    it('keeps the last slot of a full group for its seal', () => {
      const g = new TestGroup(1);
      const leader = g.elect();
      const values = Array.from({ length: limits.consensusSlotsPerGroupMax }, (_, i) => entry(`v${i}`));
      const ids = g.propose(leader, ...values);
      expect(g.decided.get(leader)).to.have.length(limits.consensusSlotsPerGroupMax - 1);
      expect(g.rejects.get(leader)).to.deep.equal([{ proposal: ids.at(-1), reason: { kind: 'full' } }]);
      g.propose(leader, seal('full', ['x']));
      expect(g.decided.get(leader)!.at(-1)!.value.kind).to.equal('seal');
    });
  });

  describe('signatures', () => {
    function oneVoteShort(): { g: TestGroup; leader: string; vote: Envelope } {
      const g = new TestGroup(3);
      const leader = g.elect();
      g.propose(leader, entry('a'));
      g.deliver((e) => (e.message.type === 'Accept' ? 'deliver' : 'hold'));
      const vote = g.queue.find((e) => e.message.type === 'Accepted')!;
      g.queue = [];
      return { g, leader, vote };
    }

    it('drops votes with forged signatures, from non-members, or for another membership or group', () => {
      const { g, leader, vote } = oneVoteShort();
      const message = vote.message as AcceptedMessage;
      const v = message.votes[0]!;
      const other = derivedMembers('other', 3);
      const forged: Envelope[] = [
        {
          ...vote,
          message: { ...message, votes: [{ ...v, signature: g.identity(vote.from).sign(Buffer.from('x')) }] },
        },
        { ...vote, message: { ...message, votes: [{ ...v, digest: valueDigest(entry('evil')) }] } },
        { ...vote, from: derivedIdentity('outsider').id },
        { ...vote, message: { ...message, membership: 'not-the-membership' } },
        { ...vote, message: { ...message, blockId: derivedBlockId('elsewhere') } },
        { ...vote, message: { ...message, network: 'elsewhere' } },
        // A member of another group signing for this one is still not a member here.
        { ...vote, from: other[0]!.id },
      ];
      for (const e of forged) g.inject(e);
      const dropped = g.state(leader).dropped;
      // A signature over other bytes, and a genuine signature moved onto another digest.
      expect(dropped['bad-signature']).to.equal(2);
      expect(dropped['non-member']).to.equal(2);
      expect(dropped['wrong-membership']).to.equal(1);
      expect(dropped['wrong-group']).to.equal(1);
      expect(dropped['wrong-network']).to.equal(1);
      // Neither counted nor taken as proof of equivocation (a moved signature proves nothing).
      expect(g.decided.get(leader)).to.deep.equal([]);
      expect(g.equivocations).to.deep.equal([]);
      g.inject(vote);
      expect(g.decidedValues(leader)).to.deep.equal(['0:trx-a']);
    });

    it('does not count a vote replayed from an earlier ballot', () => {
      const g = new TestGroup(3);
      const leader = g.elect();
      g.propose(leader, entry('a'));
      g.deliver((e) => (e.message.type === 'Accept' ? 'deliver' : 'hold'));
      const oldVote = g.queue.find((e) => e.message.type === 'Accepted')!;
      g.queue = [];
      // The leader restarts before anyone suspects it and takes over again at a higher ballot,
      // adopting `a` in slot 0; the new votes are held back.
      g.crash(leader);
      g.restart(leader);
      g.advance(25, (e) => (e.message.type === 'Accepted' ? 'hold' : 'deliver'));
      const role = g.state(leader).role;
      if (role.kind !== 'leader') throw new Error('the restarted member did not take over');
      expect(role.ballot.round).to.be.greaterThan((oldVote.message as AcceptedMessage).ballot.round);
      expect([...role.inflight.keys()]).to.deep.equal([0]);
      // Replayed as it was, the vote is stale; with the new ballot written in, its signature fails.
      const message = oldVote.message as AcceptedMessage;
      const staleBefore = g.state(leader).dropped.stale; // a promise that came after the quorum
      g.inject(oldVote);
      g.inject({ ...oldVote, message: { ...message, ballot: role.ballot } });
      expect(g.state(leader).dropped.stale - staleBefore).to.equal(1);
      expect(g.state(leader).dropped['bad-signature']).to.equal(1);
      expect(g.decided.get(leader)!.filter((d) => d.proposals.length === 0 && d.slot === 0)).to.deep.equal(
        [],
      );
      expect(g.state(leader).decided.size).to.equal(0);
      g.deliver();
      expect(g.state(leader).decided.size).to.equal(1);
    });

    it('drops certificates that are short of a quorum, repeat a signer or were altered', () => {
      const g = new TestGroup(5);
      const leader = g.elect();
      g.propose(leader, entry('a'));
      g.deliver((e) => (e.message.type === 'Decided' ? 'hold' : 'deliver'));
      const decided = g.queue.find((e) => e.message.type === 'Decided' && e.to === g.order[4])!;
      g.queue = [];
      const message = decided.message as DecidedMessage;
      const cert = message.certificates[0]!;
      const variants: ConsensusCertificate[] = [
        { ...cert, signatures: cert.signatures.slice(1) },
        { ...cert, signatures: cert.signatures.map(() => cert.signatures[0]!) },
        { ...cert, value: entry('b') },
        { ...cert, slot: 1 },
        { ...cert, ballot: { ...cert.ballot, round: cert.ballot.round + 1 } },
      ];
      const target = g.order[4]!;
      for (const c of variants) g.inject({ ...decided, message: { ...message, certificates: [c] } });
      expect(g.state(target).dropped['bad-certificate']).to.equal(variants.length);
      expect(g.state(target).decided.size).to.equal(0);
      g.inject(decided);
      expect(g.decidedValues(target)).to.deep.equal(['0:trx-a']);
    });

    it('drops a promise whose accepted values are not signed by the member that promised', () => {
      const g = new TestGroup(3);
      const old = g.elect();
      g.propose(old, entry('a'));
      const witness = g.order[2]!;
      g.deliver((e) => (e.message.type === 'Accept' && e.to === witness ? 'deliver' : 'drop'));
      g.crash(old);
      // The next leader asks for promises; the witness's promise is altered on the way.
      g.advance(timing.suspectAfterMs + 25, (e) => (e.message.type === 'Promise' ? 'hold' : 'deliver'));
      const promise = g.queue.find((e) => e.message.type === 'Promise' && e.from === witness)!;
      const message = promise.message as PromiseMessage;
      expect(message.accepted).to.have.length(1);
      const next = promise.to;
      g.queue = [];
      g.inject({
        ...promise,
        message: { ...message, accepted: [{ ...message.accepted[0]!, value: entry('forged') }] },
      });
      expect(g.state(next).dropped['bad-signature']).to.equal(1);
      expect(g.state(next).role.kind).to.equal('candidate');
      g.inject(promise);
      g.deliver();
      expect(g.decidedValues(next)).to.deep.equal(['0:trx-a']);
    });

    it('proves equivocation from two signed votes by one member in one slot and ballot', () => {
      const g = new TestGroup(5);
      const leader = g.elect();
      g.propose(leader, entry('a'));
      g.deliver((e) => (e.message.type === 'Accept' ? 'deliver' : 'hold'));
      const liar = g.order[3]!;
      const honest = g.queue.find((e) => e.message.type === 'Accepted' && e.from === liar)!;
      g.queue = g.queue.filter((e) => e !== honest);
      const message = honest.message as AcceptedMessage;
      const v = message.votes[0]!;
      const digest = valueDigest(entry('other'));
      const signature = g.identity(liar).sign(
        voteMessage({
          network: 'test',
          blockId: g.group.blockId,
          membership: message.membership,
          slot: v.slot,
          ballot: message.ballot,
          digest,
        }),
      );
      g.inject({ ...honest, message: { ...message, votes: [{ slot: v.slot, digest, signature }] } });
      g.inject(honest);
      expect(g.equivocations).to.have.length(1);
      const proof = g.equivocations[0]!;
      expect(proof.member).to.equal(liar);
      expect(verifyEquivocationProof(proof, g.members, 'test')).to.equal(true);
      expect(
        verifyEquivocationProof({ ...proof, votes: [proof.votes[0], proof.votes[0]] }, g.members, 'test'),
      ).to.equal(false);
      expect(g.disks.get(leader)!.equivocations).to.deep.equal([proof]);
      // The next seal may not name it.
      const [bad] = g.propose(leader, seal('bad', g.members));
      expect(g.rejects.get(leader)!.find((r) => r.proposal === bad)?.reason.kind).to.equal('invalid');
      g.deliver();
      g.propose(
        leader,
        seal(
          'good',
          g.members.filter((m) => m !== liar),
        ),
      );
      g.deliver();
      expect(g.decided.get(leader)!.at(-1)!.value.kind).to.equal('seal');
    });
  });

  describe('seals', () => {
    it('decides nothing after a seal and redirects proposals to the successor', () => {
      const g = new TestGroup(3);
      const leader = g.elect();
      const next = seal('s', ['p', 'q', 'r']);
      g.propose(leader, entry('a'), next);
      const [after] = g.propose(leader, entry('b'));
      g.deliver();
      expect(g.rejects.get(leader)).to.deep.equal([{ proposal: after, reason: { kind: 'sealing' } }]);
      for (const m of g.members) expect(g.decidedValues(m)).to.deep.equal(['0:trx-a', '1:seal']);
      for (const m of g.members) {
        const [id] = g.propose(m, entry('c'));
        expect(g.rejects.get(m)!.at(-1)).to.deep.equal({
          proposal: id,
          reason: {
            kind: 'sealed',
            successor: (next as { successor: string }).successor,
            members: ['p', 'q', 'r'],
          },
        });
      }
      // A member that missed the seal learns it from any sealed member, and leadership stops.
      g.advance(timing.suspectAfterMs * 4);
      for (const m of g.members) {
        expect(g.state(m).role.kind).to.equal('follower');
        expect(g.state(m).sealed?.slot).to.equal(1);
      }
    });

    it('teaches the seal to a member that missed it', () => {
      const g = new TestGroup(3);
      const leader = g.elect();
      const late = g.order[2]!;
      g.propose(leader, seal('s', ['p']));
      g.deliver((e) => (e.to === late ? 'drop' : 'deliver'));
      expect(g.state(late).sealed).to.equal(null);
      g.advance(500);
      expect(g.decidedValues(late)).to.deep.equal(['0:seal']);
    });
  });

  describe('durability', () => {
    it('persists before sending: a promise, a vote and a decision', () => {
      const g = new TestGroup(3);
      const leader = g.elect();
      g.propose(leader, entry('a'));
      expect(g.lastEffects.get(leader)![0]).to.deep.include({ type: 'persist' });
      const accept = g.queue.find((e) => e.message.type === 'Accept')!;
      g.queue = g.queue.filter((e) => e !== accept);
      const effects = g.inject(accept);
      expect(effects.map((e) => e.type)).to.deep.equal(['persist', 'send']);
      const vote = g.queue.find((e) => e.message.type === 'Accepted')!;
      g.queue = g.queue.filter((e) => e !== vote);
      const decision = g.inject(vote);
      expect(decision[0]!.type).to.equal('persist');
      expect(decision.at(-1)!.type).to.equal('decided');
    });

    it('keeps promises, votes and decisions across a restart and reports decisions again', () => {
      const g = new TestGroup(3);
      const leader = g.elect();
      g.propose(leader, entry('a'), entry('b'));
      g.deliver();
      const follower = g.order[1]!;
      const before = persistedOf(g.state(follower));
      g.crash(follower);
      const effects = g.restart(follower);
      expect(persistedOf(g.state(follower))).to.deep.equal(before);
      expect(
        effects.filter((e) => e.type === 'decided').map((e) => (e.type === 'decided' ? e.slot : -1)),
      ).to.deep.equal([0, 1]);
      expect(g.state(follower).promised).to.deep.equal(g.state(leader).promised);
    });

    it('never changes the state it is given (step is pure)', () => {
      const g = new TestGroup(3);
      const leader = g.elect();
      const snapshot = (s: ConsensusState): unknown => ({
        ...persistedOf(s),
        role: JSON.stringify(s.role, (_k, v: unknown) => (v instanceof Map ? [...v] : v)),
        waits: [...s.waits],
        lastHeard: [...s.lastHeard],
        now: s.now,
        dropped: { ...s.dropped },
        reportedBelow: s.reportedBelow,
      });
      const state = g.state(leader);
      const before = snapshot(state);
      step(state, { type: 'propose', now: 10, proposals: [{ id: 'x', value: entry('x') }] });
      step(state, { type: 'tick', now: 10_000 });
      expect(snapshot(state)).to.deep.equal(before);
    });
  });

  it('refuses to start a member that is not in the group', () => {
    const members = derivedMembers('refuse', 3).map((i) => i.id);
    expect(() =>
      createConsensusState(
        { network: 'n', blockId: derivedBlockId('x'), members },
        { signer: derivedIdentity('stranger') },
      ),
    ).to.throw(/member/);
  });
});
