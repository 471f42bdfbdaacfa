import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { isEngineError, type EngineError } from '../../../src/engine/base/errors.js';
import { NetworkConsensus, type NetworkConsensusInit } from '../../../src/engine/cluster/consensus-edge.js';
import { nodeVoteSigner } from '../../../src/engine/cluster/consensus-signer.js';
import { RawConsensusStore } from '../../../src/engine/cluster/consensus-store.js';
import {
  consensusProtocolName,
  type ConsensusWireMessage,
} from '../../../src/engine/cluster/consensus-wire.js';
import {
  ConsensusCertifier,
  type ConsensusLogCertificate,
} from '../../../src/engine/consensus/consensus-certifier.js';
import type {
  Ballot,
  ConsensusCertificate,
  ConsensusGroup,
  ConsensusMessage,
  ConsensusTiming,
  ConsensusValue,
} from '../../../src/engine/consensus/types.js';
import { isLive } from '../../../src/engine/consensus/core.js';
import { leadershipOrder, valueDigest } from '../../../src/engine/consensus/values.js';
import { verifyConsensusCertificate, verifyVote } from '../../../src/engine/consensus/votes.js';
import { schema, type NetworkNode } from '../../../src/engine/network/index.js';
import { LevelRawStore } from '../../../src/engine/storage/level-store.js';
import { MemoryRawStore } from '../../../src/engine/storage/memory-store.js';
import type { RawStore } from '../../../src/engine/storage/raw-store.js';
import {
  Ed25519Identity,
  membershipHash,
  verifyEd25519,
} from '../../../src/engine/transactions/certifier.js';
import { NodePool, eventually } from '../../integration/network-helpers.js';

const network = 'edge-test';
const timing: ConsensusTiming = {
  heartbeatMs: 100,
  suspectAfterMs: 700,
  retransmitMs: 200,
  proposalTimeoutMs: 4000,
};
const pkcs8Header = Buffer.from('302e020100300506032b657004220420', 'hex');

function blockIdOf(label: string): string {
  return createHash('sha256').update(`consensus-edge/${label}`).digest('base64url');
}

function entry(label: string): ConsensusValue {
  return { kind: 'entry', trxId: `trx-${label}`, decision: 'committed', digest: `digest-${label}` };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function failure(promise: Promise<unknown>): Promise<EngineError | undefined> {
  return promise.then(
    () => undefined,
    (error: unknown) => error as EngineError,
  );
}

interface Decision {
  readonly blockId: string;
  readonly slot: number;
  readonly value: ConsensusValue;
  readonly certificate: ConsensusCertificate;
  readonly proposedHere: boolean;
}

interface Member {
  readonly id: string;
  readonly seed: Uint8Array;
  readonly raw: RawStore;
  node: NetworkNode;
  edge: NetworkConsensus;
  readonly decisions: Decision[];
}

/** Members on real libp2p nodes on 127.0.0.1, each with its own store; everything stops in `stopAll`. */
class Cluster {
  readonly pool: NodePool;
  readonly members: Member[] = [];
  private readonly stoppers: Array<() => Promise<void>> = [];

  constructor(
    seed: number,
    private readonly init: NetworkConsensusInit = {},
  ) {
    this.pool = new NodePool(seed);
  }

  async add(seed = this.pool.nextSeed(), raw?: RawStore): Promise<Member> {
    const store = raw ?? new MemoryRawStore();
    if (raw === undefined) await store.open();
    const member = await this.boot(seed, store);
    this.members.push(member);
    return member;
  }

  /** Starts (or restarts) a member's node and edge on its seed and store. */
  async boot(seed: Uint8Array, raw: RawStore, decisions: Decision[] = []): Promise<Member> {
    const identity = Ed25519Identity.fromPkcs8(Buffer.concat([pkcs8Header, seed]).toString('base64url'));
    const signer = nodeVoteSigner(identity);
    const node = await this.pool.startWithSeed(seed, { network });
    const edge = await NetworkConsensus.start(
      { network: node, store: new RawConsensusStore(raw), signer },
      { timing, tickMs: 20, ...this.init },
    );
    this.stoppers.push(() => edge.stop());
    edge.onDecided((blockId, slot, value, certificate, proposedHere) =>
      decisions.push({ blockId, slot, value, certificate, proposedHere }),
    );
    return { id: signer.id, seed, raw, node, edge, decisions };
  }

  async mesh(members: readonly Member[] = this.members): Promise<void> {
    for (let i = 0; i < members.length; i++)
      for (let j = i + 1; j < members.length; j++)
        await members[i]!.node.connect(members[j]!.node.addresses()[0]!);
  }

  group(blockId: string, members: readonly Member[] = this.members): ConsensusGroup {
    return { network, blockId, members: members.map((m) => m.id).sort() };
  }

  byId(id: string): Member {
    return this.members.find((m) => m.id === id)!;
  }

  async stopMember(member: Member): Promise<void> {
    await member.edge.stop();
    await member.node.stop();
  }

  async stopAll(): Promise<void> {
    for (const stop of this.stoppers.splice(0)) await stop().catch(() => undefined);
    await this.pool.stopAll();
  }
}

/** Proposes at the live member nearest the block, following leader hints until decided or the deadline. */
async function proposeAtLeader(
  live: readonly Member[],
  group: ConsensusGroup,
  value: ConsensusValue,
  deadlineMs = 10_000,
): Promise<ConsensusCertificate> {
  const ids = live.map((m) => m.id);
  let target = leadershipOrder(group.blockId, ids)[0]!;
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    try {
      return await live.find((m) => m.id === target)!.edge.propose(group, value);
    } catch (error) {
      if (Date.now() > deadline) throw error;
      const leader = isEngineError(error, 'UNAVAILABLE') ? error.details?.leader : undefined;
      if (typeof leader === 'string' && ids.includes(leader) && leader !== target) target = leader;
      else await sleep(100);
    }
  }
}

describe('NetworkConsensus: signed Multi-Paxos between real libp2p nodes', function () {
  this.timeout(30_000);

  describe('a group of three', () => {
    const cluster = new Cluster(7_001);

    before(async () => {
      for (let i = 0; i < 3; i++) await cluster.add();
      await cluster.mesh();
    });

    after(() => cluster.stopAll());

    it('decides a value proposed at the leader; the certificate is a quorum of peer-id votes a fresh certifier verifies', async () => {
      const blockId = blockIdOf('three/1');
      const group = cluster.group(blockId);
      const leader = cluster.byId(leadershipOrder(blockId, group.members)[0]!);
      const fields = {
        collection: 'accounts',
        blockId,
        lsn: 1,
        trxId: 'trx-1',
        decision: 'committed' as const,
      };
      const certificate = await new ConsensusCertifier({ proposer: leader.edge }, { network }).certify(
        fields,
        group.members,
      );
      expect(certificate.signatures.length).to.be.at.least(2);
      for (const { member } of certificate.signatures) {
        expect(member).to.match(/^12D3KooW/);
        expect(group.members).to.include(member);
      }
      // Elsewhere, later: only the certificate (as JSON) and the recorded members.
      const copy = JSON.parse(JSON.stringify(certificate)) as ConsensusLogCertificate;
      const refusing = { propose: () => Promise.reject(new Error('offline')) };
      const fresh = new ConsensusCertifier({ proposer: refusing }, { network });
      expect(fresh.verify(copy, group.members)).to.equal(true);
      expect(fresh.verify({ ...copy, lsn: 2 }, group.members)).to.equal(false);
      expect(fresh.verify({ ...copy, trxId: 'trx-2' }, group.members)).to.equal(false);
      const forged = copy.signatures.map((s, i) =>
        i === 0 ? { ...s, signature: copy.signatures[1]!.signature } : s,
      );
      const quorumLeft = copy.signatures.length - 1 >= 2;
      expect(fresh.verify({ ...copy, signatures: forged }, group.members)).to.equal(quorumLeft);
      expect(fresh.verify({ ...copy, signatures: copy.signatures.slice(0, 1) }, group.members)).to.equal(
        false,
      );
      // Every member learns the decision; only the leader proposed it.
      await eventually('every member reports the decision', () =>
        cluster.members.every((m) => m.decisions.some((d) => d.blockId === blockId && d.slot === 0)),
      );
      for (const member of cluster.members) {
        const decision = member.decisions.find((d) => d.blockId === blockId)!;
        expect(decision.proposedHere).to.equal(member === leader);
        expect(verifyConsensusCertificate(decision.certificate, group.members, network)).to.equal(true);
      }
    });

    it('answers a proposal at a non-leader with UNAVAILABLE naming the leader, and proposes nothing', async () => {
      const blockId = blockIdOf('three/2');
      const group = cluster.group(blockId);
      const order = leadershipOrder(blockId, group.members);
      const follower = cluster.byId(order[1]!);
      const error = await failure(follower.edge.propose(group, entry('redirected')));
      expect(isEngineError(error, 'UNAVAILABLE')).to.equal(true);
      expect(error?.details?.leader).to.equal(order[0]);
      // At the leader it is decided in slot 0: the follower's attempt took no slot.
      const certificate = await cluster.byId(order[0]!).edge.propose(group, entry('redirected'));
      expect(certificate.slot).to.equal(0);
    });

    it('refuses to propose for a group this node is not in', async () => {
      const [a, b] = cluster.members;
      const others: ConsensusGroup = {
        network,
        blockId: blockIdOf('three/3'),
        members: [b!.id, 'someone-else'].sort(),
      };
      expect(isEngineError(await failure(a!.edge.propose(others, entry('x'))), 'UNAVAILABLE')).to.equal(true);
    });

    it('decides several values in order, proposed concurrently', async () => {
      const blockId = blockIdOf('three/4');
      const group = cluster.group(blockId);
      const leader = cluster.byId(leadershipOrder(blockId, group.members)[0]!);
      const certificates = await Promise.all(
        [0, 1, 2, 3, 4].map((i) => leader.edge.propose(group, entry(`many-${i}`))),
      );
      expect(certificates.map((c) => c.slot).sort()).to.deep.equal([0, 1, 2, 3, 4]);
      await eventually('every member reports the five decisions in slot order', () =>
        cluster.members.every((m) => m.decisions.filter((d) => d.blockId === blockId).length === 5),
      );
      for (const member of cluster.members)
        expect(member.decisions.filter((d) => d.blockId === blockId).map((d) => d.slot)).to.deep.equal([
          0, 1, 2, 3, 4,
        ]);
    });

    it('sends a peer its messages in batches, and a member’s votes return in the reply to the Accept batch', async () => {
      const blockId = blockIdOf('three/batches');
      const group = cluster.group(blockId);
      const leader = cluster.byId(leadershipOrder(blockId, group.members)[0]!);
      const followers = cluster.members.filter((m) => m !== leader);
      const before = followers.map((m) => m.edge.stats());
      const certificates = await Promise.all(
        [0, 1, 2].map((i) => leader.edge.propose(group, entry(`batched-${i}`))),
      );
      expect(certificates.map((c) => c.slot).sort()).to.deep.equal([0, 1, 2]);
      for (const [i, follower] of followers.entries()) {
        const after = follower.edge.stats();
        // Each follower voted without a request of its own for its votes.
        const replied = after.messagesInReplies - before[i]!.messagesInReplies;
        expect(replied, follower.id).to.be.at.least(1);
        expect(after.messagesSent, follower.id).to.be.at.least(after.batchesSent);
      }
    });

    it('drops messages from outside the group and with a wrong membership, counting each', async () => {
      const target = cluster.members[0]!;
      const outsider = await cluster.pool.start({ network });
      await outsider.connect(target.node.addresses()[0]!);
      const blockId = blockIdOf('three/5');
      const members = cluster.group(blockId).members;
      const prepare = (from: string, membership: string): ConsensusMessage => ({
        type: 'Prepare',
        network,
        blockId,
        membership,
        ballot: { round: 99, leader: from },
        fromSlot: 0,
      });
      const send = (wire: unknown) => outsider.request(target.id, consensusProtocolName, wire);
      const before = target.edge.stats().dropped;

      // Not a member: the recorded members do not name the (authenticated) sender.
      await send({ type: 'msg', members, message: prepare(outsider.peerId, membershipHash(members)) });
      // Names itself a member, but the list no longer hashes to the message's membership.
      const padded = [...members, outsider.peerId].sort();
      await send({
        type: 'msg',
        members: padded,
        message: prepare(outsider.peerId, membershipHash(members)),
      });
      // A group without this node.
      const elsewhere = [...members.filter((m) => m !== target.id), outsider.peerId].sort();
      await send({
        type: 'msg',
        members: elsewhere,
        message: prepare(outsider.peerId, membershipHash(elsewhere)),
      });
      // Malformed: refused by the schema, answered BAD_INPUT.
      const malformed = await failure(send({ type: 'msg', members, message: { type: 'Prepare', network } }));
      expect(isEngineError(malformed, 'BAD_INPUT')).to.equal(true);

      const after = target.edge.stats().dropped;
      expect(after['sender-not-member'] - before['sender-not-member']).to.equal(1);
      expect(after['wrong-membership'] - before['wrong-membership']).to.equal(1);
      expect(after['self-not-member'] - before['self-not-member']).to.equal(1);
      expect(after.malformed - before.malformed).to.equal(1);
      // None of it reached a core: the real group never started here.
      expect(target.edge.state({ blockId, members })).to.equal(null);
      expect(target.edge.state({ blockId, members: padded })).to.equal(null);
    });
  });

  describe('decisions carried by another request', () => {
    // Decisions (and the heartbeats they could leave with) are held far longer than the test runs,
    // and nobody suspects the leader meanwhile: a decision reaches a follower only if it is carried.
    const cluster = new Cluster(7_003, {
      decidedHoldMs: 120_000,
      heartbeatHoldMs: 120_000,
      timing: { ...timing, suspectAfterMs: 120_000 },
    });

    before(async () => {
      for (let i = 0; i < 3; i++) await cluster.add();
      await cluster.mesh();
    });

    after(() => cluster.stopAll());

    it('hands a held Decided to whoever takes it, and the member it is delivered to reports the decision', async () => {
      const blockId = blockIdOf('carried/1');
      const group = cluster.group(blockId);
      const leader = cluster.byId(leadershipOrder(blockId, group.members)[0]!);
      const [follower, other] = cluster.members.filter((m) => m !== leader);
      await leader.edge.propose(group, entry('carried'));
      await sleep(100);
      // Neither follower has heard of the decision: it is held for them.
      expect(follower!.decisions.some((d) => d.blockId === blockId)).to.equal(false);
      const taken = leader.edge.takeDecided(follower!.id);
      expect(taken.map((item) => item.message.type)).to.deep.equal(['Decided']);
      // Taken once: it is no longer held, and it does not leave on its own any more.
      expect(leader.edge.takeDecided(follower!.id)).to.deep.equal([]);
      await follower!.edge.deliver(leader.id, JSON.parse(JSON.stringify(taken)) as unknown[]);
      const decision = follower!.decisions.find((d) => d.blockId === blockId);
      expect(decision?.slot).to.equal(0);
      expect(decision?.proposedHere).to.equal(false);
      expect(verifyConsensusCertificate(decision!.certificate, group.members, network)).to.equal(true);
      // The other follower's copy is still held; nothing but a Decided is accepted this way.
      expect(other!.decisions.some((d) => d.blockId === blockId)).to.equal(false);
      const before = other!.edge.stats().dropped.malformed;
      await other!.edge.deliver(leader.id, [{ members: group.members, message: { type: 'Decided' } }]);
      const heartbeat = {
        members: group.members,
        message: {
          type: 'Heartbeat',
          network,
          blockId,
          membership: membershipHash(group.members),
          promised: null,
          decidedBelow: 1,
        },
      };
      await other!.edge.deliver(leader.id, [heartbeat]);
      expect(other!.edge.stats().dropped.malformed - before).to.equal(2);
      expect(other!.decisions.some((d) => d.blockId === blockId)).to.equal(false);
      // Delivered by someone who is not the sender it names as a member: dropped like any message.
      const stranger = await cluster.pool.start({ network });
      const forged = leader.edge.takeDecided(other!.id);
      expect(forged).to.have.length(1);
      await other!.edge.deliver(stranger.peerId, forged);
      expect(other!.decisions.some((d) => d.blockId === blockId)).to.equal(false);
      await other!.edge.deliver(leader.id, forged);
      expect(other!.decisions.some((d) => d.blockId === blockId && d.slot === 0)).to.equal(true);
    });
  });

  describe('a group of five', () => {
    const cluster = new Cluster(7_002);

    before(async () => {
      for (let i = 0; i < 5; i++) await cluster.add();
      await cluster.mesh();
    });

    after(() => cluster.stopAll());

    it('decides with two of five stopped, and with three stopped fails NO_QUORUM (or TIMEOUT) deciding nothing', async () => {
      const blockId = blockIdOf('five/1');
      const group = cluster.group(blockId);
      const order = leadershipOrder(blockId, group.members).map((id) => cluster.byId(id));
      // The two nearest the block go: leadership has to move.
      await cluster.stopMember(order[0]!);
      await cluster.stopMember(order[1]!);
      const live = order.slice(2);
      const certificate = await proposeAtLeader(live, group, entry('two-down'));
      expect(verifyConsensusCertificate(certificate, group.members, network)).to.equal(true);
      const signers = certificate.signatures.map((s) => s.member);
      expect(signers.length).to.be.at.least(3);
      for (const signer of signers) expect(live.map((m) => m.id)).to.include(signer);

      // A third goes (the leader): two of five cannot decide.
      await cluster.stopMember(order[2]!);
      const left = order.slice(3);
      const value = entry('three-down');
      const deadline = Date.now() + 10_000;
      let error: EngineError | undefined;
      for (;;) {
        error = await failure(left[0]!.edge.propose(group, value));
        expect(error, 'decided with two of five').not.to.equal(undefined);
        if (isEngineError(error, 'NO_QUORUM') || isEngineError(error, 'TIMEOUT')) break;
        expect(Date.now()).to.be.below(deadline);
        await sleep(100);
      }
      await sleep(500);
      // Messages to the three dead peers failed, and at most sendsPerPeerMax each are ever pending.
      for (const member of left) {
        const stats = member.edge.stats();
        expect(stats.sendsFailed).to.be.above(0);
        expect(stats.sendsInflight).to.be.at.most(3 * 16);
      }
      const digest = valueDigest(value);
      for (const member of left) {
        expect(member.decisions.some((d) => valueDigest(d.value) === digest)).to.equal(false);
        const state = member.edge.state(group);
        expect([...(state?.decided.values() ?? [])].some((c) => valueDigest(c.value) === digest)).to.equal(
          false,
        );
      }
    });
  });

  describe('a member reported down', () => {
    const cluster = new Cluster(7_006, { timing: { ...timing, downSuspectMs: 0 } });

    before(async () => {
      for (let i = 0; i < 3; i++) await cluster.add();
      await cluster.mesh();
    });

    after(() => cluster.stopAll());

    it('is suspected at once in running groups and in groups started later: the next member leads without waiting for its silence', async () => {
      const running = cluster.group(blockIdOf('down/running'));
      const [first, second, third] = leadershipOrder(running.blockId, running.members).map((id) =>
        cluster.byId(id),
      );
      await proposeAtLeader(cluster.members, running, entry('before'));
      await cluster.stopMember(first!);
      // What the node does when the connection to a peer closes.
      second!.edge.suspect(first!.id);
      third!.edge.suspect(first!.id);
      await eventually(
        'the stopped member suspected',
        () => !isLive(second!.edge.state(running)!, first!.id),
        500,
      );
      // Well inside the suspicion period (700 ms), the next member takes proposals itself.
      const decided = await second!.edge.propose(running, entry('after'));
      expect(verifyConsensusCertificate(decided, running.members, network)).to.equal(true);

      // A group that starts now counts the stopped member down from its first step: the next member
      // does not redirect to it.
      let label = 0;
      while (leadershipOrder(blockIdOf(`down/fresh/${label}`), running.members)[0] !== first!.id) label++;
      const fresh = cluster.group(blockIdOf(`down/fresh/${label}`));
      const next = leadershipOrder(fresh.blockId, fresh.members)[1]!;
      const certificate = await cluster.byId(next).edge.propose(fresh, entry('fresh'));
      expect(verifyConsensusCertificate(certificate, fresh.members, network)).to.equal(true);
    });
  });

  describe('idle groups', () => {
    const cluster = new Cluster(7_004, { groupIdleMs: 600 });

    before(async () => {
      for (let i = 0; i < 3; i++) await cluster.add();
      await cluster.mesh();
    });

    after(() => cluster.stopAll());

    it('are stopped everywhere, and restart from disk when a proposal comes, even with their leader gone', async () => {
      const blockId = blockIdOf('idle/1');
      const group = cluster.group(blockId);
      const order = leadershipOrder(blockId, group.members).map((id) => cluster.byId(id));
      const first = await order[0]!.edge.propose(group, entry('before-idle'));
      expect(first.slot).to.equal(0);
      await eventually('every member stopped the idle group', () =>
        cluster.members.every((m) => m.edge.stats().groups === 0 && m.edge.stats().groupsStopped >= 1),
      );
      // Heartbeats of nobody's work start nothing; the leader goes; a proposal at the next in line
      // must wake the third member (else no quorum is ever live) and continue after slot 0 on disk.
      await cluster.stopMember(order[0]!);
      const live = order.slice(1);
      const next = await proposeAtLeader(live, group, entry('after-idle'));
      expect(next.slot).to.equal(1);
      expect(verifyConsensusCertificate(next, group.members, network)).to.equal(true);
      expect(next.signatures.map((s) => s.member).sort()).to.deep.equal(live.map((m) => m.id).sort());
    });
  });

  describe('restart from the store', () => {
    const cluster = new Cluster(7_003);
    let dir: string;

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'optimystic-edge-'));
    });

    after(async () => {
      await cluster.stopAll();
      await rm(dir, { recursive: true, force: true });
    });

    it('keeps promises and votes: a restarted member never votes for a second value in a slot and ballot', async () => {
      // The leader is played by a bare node holding the leader's key, so the test chooses its messages.
      const leaderSeed = cluster.pool.nextSeed();
      const leaderNode = await cluster.pool.startWithSeed(leaderSeed, { network });
      const inbox: Array<{ from: string; message: ConsensusMessage }> = [];
      await leaderNode.handle<ConsensusWireMessage>(
        consensusProtocolName,
        (wire, context) => {
          for (const item of wire.type === 'batch' ? wire.items : [wire])
            inbox.push({ from: context.peerId, message: item.message });
          return Promise.resolve(null);
        },
        { validate: schema.json() as (value: unknown) => ConsensusWireMessage },
      );
      let raw = new LevelRawStore(join(dir, 'x'));
      await raw.open();
      const x = await cluster.add(undefined, raw);
      await leaderNode.connect(x.node.addresses()[0]!);
      const absent = nodeVoteSigner(Ed25519Identity.generate()).id; // never started
      const leaderId = leaderNode.peerId;
      const members = [leaderId, x.id, absent].sort();
      // A block the leader is nearest to, so the member never runs for leader itself.
      let blockId = '';
      for (let i = 0; blockId === ''; i++) {
        const candidate = blockIdOf(`restart/${i}`);
        if (leadershipOrder(candidate, members)[0] === leaderId) blockId = candidate;
      }
      const membership = membershipHash(members);
      const header = { network, blockId, membership };
      const ballot: Ballot = { round: 7, leader: leaderId };
      const first = entry('first');
      const second = entry('second');
      // Right after a restart the old connection may still be closing: retry a failed send a little.
      const send = async (message: ConsensusMessage): Promise<void> => {
        for (let attempt = 0; ; attempt++) {
          try {
            await leaderNode.request(x.id, consensusProtocolName, { type: 'msg', members, message });
            return;
          } catch (error) {
            if (attempt >= 20) throw error;
            await sleep(100);
          }
        }
      };
      const votesFor = (value: ConsensusValue) =>
        inbox.filter(
          (m) =>
            m.message.type === 'Accepted' &&
            m.message.votes.some((v) => v.slot === 0 && v.digest === valueDigest(value)),
        );

      await send({ type: 'Prepare', ...header, ballot, fromSlot: 0 });
      await eventually('a promise', () => inbox.some((m) => m.message.type === 'Promise'));
      await send({ type: 'Accept', ...header, ballot, proposals: [{ slot: 0, value: first }] });
      await eventually('a vote for the first value', () => votesFor(first).length > 0);
      const vote = votesFor(first)[0]!;
      expect(vote.from).to.equal(x.id);
      const signature = (vote.message as Extract<ConsensusMessage, { type: 'Accepted' }>).votes[0]!.signature;
      const fields = { ...header, slot: 0, ballot, digest: valueDigest(first) };
      expect(verifyVote(x.id, fields, signature, verifyEd25519)).to.equal(true);

      // Crash and restart on the same disk.
      const restart = async (store: RawStore): Promise<void> => {
        await cluster.stopMember(x);
        // Else a dial may be answered with the old connection, just before it is found closed.
        await eventually('the old connection is gone', () => !leaderNode.peers().some((p) => p.id === x.id));
        const again = await cluster.boot(x.seed, store);
        x.node = again.node;
        x.edge = again.edge;
        await leaderNode.connect(x.node.addresses()[0]!);
      };
      await raw.close();
      raw = new LevelRawStore(join(dir, 'x'));
      await raw.open();
      await restart(raw);
      inbox.length = 0;
      await send({ type: 'Accept', ...header, ballot, proposals: [{ slot: 0, value: second }] });
      // A lower ballot than the one promised is refused.
      await send({ type: 'Prepare', ...header, ballot: { round: 6, leader: leaderId }, fromSlot: 0 });
      await eventually('a refusal of the lower ballot', () =>
        inbox.some((m) => m.message.type === 'Nack' && m.message.promised.round === 7),
      );
      await sleep(300);
      expect(votesFor(second)).to.deep.equal([]);
      expect(x.edge.state({ blockId, members })?.dropped['conflicting-accept']).to.be.at.least(1);
      // The same value again is voted for again: same vote.
      await send({ type: 'Accept', ...header, ballot, proposals: [{ slot: 0, value: first }] });
      await eventually('the first vote again', () => votesFor(first).length > 0);

      // Control: on an empty disk the same member would have voted for the second value.
      const empty = new MemoryRawStore();
      await empty.open();
      await restart(empty);
      inbox.length = 0;
      await send({ type: 'Accept', ...header, ballot, proposals: [{ slot: 0, value: second }] });
      await eventually('an amnesiac member votes for the second value', () => votesFor(second).length > 0);
      await raw.close();
    });
  });
});
