import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { EngineError, isEngineError } from '../../../src/engine/base/errors.js';
import { SeededRng } from '../../../src/engine/base/rng.js';
import {
  Identity,
  aggregateSignature,
  commitToSign,
  createSigningPackage,
  encryptToGroup,
  signMessage,
  signPackage,
  type AcceptMessage,
} from '../../../src/engine/crypto/index.js';
import type { NetworkNode } from '../../../src/engine/network/index.js';
import {
  CeremonyService,
  ceremonyProtocolName,
  signExchangeDir,
  type CeremonyNetEvent,
} from '../../../src/engine/node/ceremony-net.js';
import {
  advanceDecryption,
  advanceSigning,
  ceremonyDir,
  listCeremonies,
  requestDecryption,
  requestSignature,
} from '../../../src/engine/node/ceremony-files.js';
import { KeyStore } from '../../../src/engine/node/keystore.js';
import { verifyEd25519 } from '../../helpers/ed25519.js';
import { NodePool, eventually } from '../../integration/network-helpers.js';

/**
 * The networked ceremony transport with in-process nodes: bare network nodes on 127.0.0.1, each with
 * a CeremonyService on its own temporary data directory (scrypt cost lowered). Covers the full
 * ceremony and a signature by t holders, a restart in the middle, a participant that never accepts,
 * a decline, and messages from outside the roster or from the wrong node.
 */

const passphrase = 'correct horse battery staple';
const sealCostLog2 = 10;

interface Member {
  network: NetworkNode;
  service: CeremonyService;
  dir: string;
}

async function rejection(work: Promise<unknown>): Promise<EngineError> {
  try {
    await work;
  } catch (error) {
    expect(error, String(error)).to.be.instanceOf(EngineError);
    return error as EngineError;
  }
  throw new Error('expected a rejection');
}

async function collect(events: AsyncIterable<CeremonyNetEvent>): Promise<CeremonyNetEvent[]> {
  const out: CeremonyNetEvent[] = [];
  for await (const event of events) out.push(event);
  return out;
}

describe('key ceremonies between running nodes (in process)', function () {
  this.timeout(30_000);
  let tmp: string;
  let pool: NodePool;
  let members: Member[];
  let seed = 7;

  beforeEach(() => {
    tmp = mkdtempSync(join(tmpdir(), 'optimystic-ceremony-net-'));
    pool = new NodePool(seed++);
    members = [];
    logs = [];
  });

  afterEach(async () => {
    for (const m of members) await m.service.stop().catch(() => undefined);
    await pool.stopAll();
    rmSync(tmp, { recursive: true, force: true });
  });

  /** What the services logged (node log lines: what an operator sees), by node. */
  let logs: { node: string; message: string }[] = [];

  async function service(network: NetworkNode, dir: string, locked = false): Promise<CeremonyService> {
    return CeremonyService.start({
      dataDir: dir,
      network,
      sealCostLog2,
      tickMs: 50,
      log: (_kind, message) => logs.push({ node: network.peerId, message }),
      ...(locked ? {} : { passphrase }),
    });
  }

  async function startMembers(count: number): Promise<Member[]> {
    for (let i = 0; i < count; i++) {
      const network = await pool.start({ listen: ['/ip4/127.0.0.1/tcp/0'] });
      const dir = join(tmp, `n${i}`);
      members.push({ network, dir, service: await service(network, dir) });
    }
    // Everyone dials everyone: participants reach each other by peer id.
    for (const a of members)
      for (const b of members) if (a !== b) await a.network.connect(b.network.addresses()[0]!);
    return members;
  }

  /** Waits for a proposal on a member, then accepts it. */
  async function accept(member: Member, tag: string): Promise<void> {
    await eventually(`the proposal reaches ${member.network.peerId}`, async () =>
      (await member.service.info()).ceremonies.some((c) => c.tag === tag),
    );
    await member.service.decide(tag, { approve: true });
  }

  /** Follows a ceremony on its proposer while the others accept it; its last event, which must be `complete`. */
  async function completes(
    proposer: Member,
    tag: string,
    acceptors: readonly Member[],
  ): Promise<CeremonyNetEvent> {
    const following = collect(proposer.service.follow(tag));
    for (const m of acceptors) await accept(m, tag);
    const last = (await following).at(-1)!;
    expect(last.event, JSON.stringify(last)).to.equal('complete');
    // Each node completes on its own, when the last confirmation reaches it: the proposer's being done
    // says nothing of when the others installed their shares, so wait for every one of them.
    for (const m of acceptors) {
      const theirs = (await collect(m.service.follow(tag))).at(-1)!;
      expect(theirs.event, JSON.stringify(theirs)).to.equal('complete');
    }
    return last;
  }

  /** Makes a 2-of-3 signing key among members a, b, c (a coordinates); its key id and public key. */
  async function makeKey(
    purpose: 'sign' | 'decrypt' = 'sign',
  ): Promise<{ keyId: string; publicKeyHex: string }> {
    const [a, b, c] = members;
    const started = await a!.service.startCeremony({
      participants: [b!.network.peerId, c!.network.peerId],
      threshold: 2,
      purpose,
      label: purpose === 'sign' ? 'payments' : 'vault',
      expiresInMs: 60_000,
      phaseTimeoutMs: 10_000,
    });
    const last = await completes(a!, started.tag, [b!, c!]);
    return { keyId: last.key!.keyId, publicKeyHex: last.key!.publicKeyHex };
  }

  /** t holders (by member) sign a message with their current shares (test code plays the coordinator). */
  async function thresholdSign(
    signers: readonly Member[],
    keyId: string,
    message: Uint8Array,
    seed: number,
  ): Promise<Uint8Array> {
    const shares = await Promise.all(
      signers.map(async (m) => new KeyStore(m.dir).openShare(keyId, passphrase)),
    );
    const rng = new SeededRng(seed);
    const rounds = shares.map(({ key, share }) => ({
      key,
      share,
      ...commitToSign(key.publicKey, share, rng),
    }));
    const pkg = createSigningPackage(
      rounds[0]!.key.publicKey,
      message,
      rounds.map((r) => r.commitment),
    );
    return aggregateSignature(
      rounds[0]!.key.publicKey,
      pkg,
      rounds.map((r) => signPackage(r.key.publicKey, r.share, r.nonces, pkg)),
    );
  }

  /** Whether t holders' current shares still make a signature that verifies as Ed25519. */
  async function signsWith(
    signers: readonly Member[],
    keyId: string,
    publicKeyHex: string,
  ): Promise<boolean> {
    const message = new TextEncoder().encode('after the renewal');
    return verifyEd25519(publicKeyHex, message, await thresholdSign(signers, keyId, message, 5));
  }

  it('makes a 2-of-3 key: same public key on every node, shares sealed, and t holders sign as Ed25519', async () => {
    const [a, b, c] = await startMembers(3);
    const started = await a!.service.startCeremony({
      participants: [b!.network.peerId, c!.network.peerId],
      threshold: 2,
      label: 'payments',
      expiresInMs: 60_000,
      phaseTimeoutMs: 10_000,
    });
    expect(Object.values(started.nodes)).to.have.members(members.map((m) => m.network.peerId));
    const following = collect(a!.service.follow(started.tag));
    await accept(b!, started.tag);
    await accept(c!, started.tag);
    const events = await following;
    const last = events.at(-1)!;
    expect(last.event, JSON.stringify(last)).to.equal('complete');
    expect(events.map((e) => e.event)).to.include.members(['proposed', 'decided', 'received', 'phase']);
    // Every participant ends with the same key and its own share.
    const finals = await Promise.all(
      members.map(async (m) => (await collect(m.service.follow(started.tag))).at(-1)!),
    );
    const publicKeys = new Set(finals.map((e) => e.key?.publicKeyHex));
    expect(publicKeys.size).to.equal(1);
    expect(finals.map((e) => e.key?.identifier).sort()).to.deep.equal([1, 2, 3]);

    // Two holders sign (test code plays the coordinator); node:crypto verifies it as Ed25519.
    const keyId = last.key!.keyId;
    const message = new TextEncoder().encode('pay 10 to bob');
    const signature = await thresholdSign([a!, c!], keyId, message, 99);
    expect(verifyEd25519(last.key!.publicKeyHex, message, signature)).to.equal(true);
    expect(
      verifyEd25519(last.key!.publicKeyHex, new TextEncoder().encode('pay 11 to bob'), signature),
    ).to.equal(false);
  });

  it('refreshes a key between the nodes: same public key, every share replaced, still signs', async () => {
    const [a, b, c] = await startMembers(3);
    const { keyId, publicKeyHex } = await makeKey();
    const before = await Promise.all(
      members.map(async (m) => (await new KeyStore(m.dir).openShare(keyId, passphrase)).share),
    );
    // b proposes: the holders' nodes come from the ceremony that made the key.
    const started = await b!.service.renewKey({
      kind: 'refresh',
      key: 'payments',
      participants: [],
      expiresInMs: 60_000,
      phaseTimeoutMs: 10_000,
    });
    expect(started.summary.kind).to.equal('refresh');
    expect(Object.values(started.nodes)).to.have.members(members.map((m) => m.network.peerId));
    const last = await completes(b!, started.tag, [a!, c!]);
    expect(last.key?.keyId).to.equal(keyId);
    expect(last.key?.publicKeyHex).to.equal(publicKeyHex);
    for (const [i, m] of members.entries()) {
      const { key, share } = await new KeyStore(m.dir).openShare(keyId, passphrase);
      expect(key.publicKey.session, 'the new generation is installed').to.equal(started.session);
      expect(JSON.stringify(share)).to.not.equal(JSON.stringify(before[i]));
    }
    expect(await signsWith([a!, c!], keyId, publicKeyHex)).to.equal(true);
    expect(await signsWith([b!, c!], keyId, publicKeyHex)).to.equal(true);
  });

  it('reshares a key to another roster between the nodes: the leaver keeps no share, the newcomer signs', async () => {
    const [a, b, c] = await startMembers(3);
    const { keyId, publicKeyHex } = await makeKey();
    const d = await (async () => {
      const network = await pool.start({ listen: ['/ip4/127.0.0.1/tcp/0'] });
      const dir = join(tmp, 'n3');
      const member = { network, dir, service: await service(network, dir) };
      members.push(member);
      for (const other of members) if (other !== member) await network.connect(other.network.addresses()[0]!);
      return member;
    })();
    // a deals and leaves; b, c and the new d hold the key, 3 of them needed from now on.
    const recipients = [b!, c!, d].map((m) => m.network.peerId);
    const refused = await rejection(
      a!.service.renewKey({ kind: 'reshare', key: keyId, participants: [], expiresInMs: 60_000 }),
    );
    expect(refused.code).to.equal('BAD_INPUT');
    expect(refused.message).to.match(/--participants/);
    const started = await a!.service.renewKey({
      kind: 'reshare',
      key: keyId,
      participants: recipients,
      threshold: 3,
      expiresInMs: 60_000,
      phaseTimeoutMs: 10_000,
    });
    expect(started.summary.kind).to.equal('reshare');
    const last = await completes(a!, started.tag, [b!, c!, d]);
    expect(last.key?.publicKeyHex).to.equal(publicKeyHex);
    expect((await new KeyStore(a!.dir).readKey(keyId)).holder).to.equal(null);
    expect(await signsWith([b!, c!, d], keyId, publicKeyHex)).to.equal(true);
  });

  it('a renewal refuses bad input, and asks for the node of a holder it cannot place', async () => {
    const [a, b, c] = await startMembers(3);
    const { keyId, publicKeyHex } = await makeKey();
    const unknown = await rejection(
      b!.service.renewKey({ kind: 'refresh', key: 'nope', participants: [], expiresInMs: 60_000 }),
    );
    expect(unknown.code).to.equal('NOT_FOUND');
    const badPeer = await rejection(
      b!.service.renewKey({ kind: 'refresh', key: keyId, participants: ['not-a-peer'], expiresInMs: 60_000 }),
    );
    expect(badPeer.code).to.equal('BAD_INPUT');
    expect(badPeer.message).to.match(/not a peer id/);
    // A keystore that never saw the key's ceremony over the network (an air-gapped key, or its record
    // gone) does not know where the other holders run.
    const session = (await new KeyStore(b!.dir).readKey(keyId)).publicKey.session;
    await new KeyStore(b!.dir).removeRecord(`${ceremonyDir(session)}/record.json`);
    const unplaced = await rejection(
      b!.service.renewKey({ kind: 'refresh', key: keyId, participants: [], expiresInMs: 60_000 }),
    );
    expect(unplaced.code).to.equal('BAD_INPUT');
    expect(unplaced.message).to.match(/no node known for holder .* --participants/);
    // Named, they are found (their cards say which holder each node runs).
    const started = await b!.service.renewKey({
      kind: 'refresh',
      key: keyId,
      participants: [c!.network.peerId, a!.network.peerId],
      expiresInMs: 60_000,
      phaseTimeoutMs: 10_000,
    });
    await completes(b!, started.tag, [a!, c!]);
    expect(await signsWith([a!, b!], keyId, publicKeyHex)).to.equal(true);
  });

  it('carries signing files between the nodes of a key: t holders sign through their exchange directories', async () => {
    const [a, b, c] = await startMembers(3);
    const { keyId, publicKeyHex } = await makeKey();
    const stores = members.map((m) => new KeyStore(m.dir));
    const dirs = stores.map((store) => signExchangeDir(store.root, keyId));
    const secret = (): Promise<string> => Promise.resolve(passphrase);
    const approve = (): Promise<{ approve: true }> => Promise.resolve({ approve: true });
    const message = new TextEncoder().encode('pay 10 to bob');
    // a coordinates (and commits as a holder); its node sends the request to b's and c's.
    const requested = await requestSignature({
      store: stores[0]!,
      passphrase: secret,
      keyRef: keyId,
      message,
      outDir: dirs[0]!,
    });
    const sent = await a!.service.exchange({ key: keyId });
    expect(sent.sent).to.have.members([b!.network.peerId, c!.network.peerId]);
    expect(sent.failed).to.deep.equal([]);
    expect(readdirSync(dirs[2]!).filter((n) => n.startsWith('sign-'))).to.have.length(2);
    // c approves and commits; its node sends the commitment back.
    const step = async (i: number): Promise<void> => {
      await advanceSigning({
        store: stores[i]!,
        passphrase: secret,
        decide: approve,
        keyRef: keyId,
        inDir: dirs[i]!,
        outDir: dirs[i]!,
        request: requested.request,
      });
      await members[i]!.service.exchange({ key: keyId });
    };
    await step(2);
    await step(0); // the package (a and c)
    await step(2); // c's share
    await step(0); // the signature
    const done = JSON.parse(
      readFileSync(join(dirs[0]!, `sign-${requested.request}-signature.json`), 'utf8'),
    ) as { signature: string };
    expect(
      verifyEd25519(publicKeyHex, message, Buffer.from(done.signature, 'base64url').toString('hex')),
    ).to.equal(true);
    // Each other holder's operator was told once that the request waits for them (files came 3 times).
    const told = logs.filter(
      (l) =>
        l.message.startsWith('signing request for key payments') && l.message.includes(requested.request),
    );
    expect(told.map((l) => l.node)).to.have.members([b!.network.peerId, c!.network.peerId]);
    expect(told[0]!.message).to.include(`optimystic keygen sign ${keyId} --transport network`);
    // b was not chosen: it never committed, and holds the files all the same.
    expect(readdirSync(dirs[1]!)).to.include(`sign-${requested.request}-package.json`);

    // Refused: a name that is not a signing file, and a commitment claiming c sent from b's node.
    const forged = {
      format: 'optimystic-sign-commitment',
      request: 'ffffffffffffffff',
      peerId: (await stores[2]!.readKey(keyId)).holder!.peerId,
      commitment: {},
    };
    const answer = await b!.network.request<{ stored: number; refused: string[] }>(
      a!.network.peerId,
      ceremonyProtocolName,
      {
        type: 'exchange',
        keyId,
        files: [
          { name: 'sign-ffffffffffffffff-commit-forgedpeer.json', value: forged },
          { name: '../../escape.json', value: {} },
        ],
      },
    );
    expect(answer.stored).to.equal(0);
    expect(answer.refused).to.have.length(2);
    expect(readdirSync(dirs[0]!).some((n) => n.includes('ffffffffffffffff'))).to.equal(false);
    const unknown = await rejection(
      b!.network.request(a!.network.peerId, ceremonyProtocolName, {
        type: 'exchange',
        keyId: 'AAAAAAAAAAAAAAAAAAAAAA',
        files: [],
      }),
    );
    expect(unknown.code).to.equal('NOT_FOUND');
  });

  it('carries a decryption request to the holders and each partial back to its requester alone', async () => {
    const [a, b, c] = await startMembers(3);
    const { keyId } = await makeKey('decrypt');
    const stores = members.map((m) => new KeyStore(m.dir));
    const dirs = stores.map((store) => signExchangeDir(store.root, keyId));
    const secret = (): Promise<string> => Promise.resolve(passphrase);
    const approve = (): Promise<{ approve: true }> => Promise.resolve({ approve: true });
    const plaintext = new TextEncoder().encode('the launch code is 0000');
    const key = await stores[1]!.readKey(keyId);
    const ciphertext = encryptToGroup(key.publicKey, plaintext, new SeededRng(3));
    // b requests (and answers for itself); a passes b's request on to c before b's own node does.
    const requested = await requestDecryption({
      store: stores[1]!,
      passphrase: secret,
      keyRef: keyId,
      ciphertext,
      outDir: dirs[1]!,
    });
    const requestFile = `decrypt-${requested.request}-request.json`;
    const value = JSON.parse(readFileSync(join(dirs[1]!, requestFile), 'utf8')) as unknown;
    await a!.network.request(c!.network.peerId, ceremonyProtocolName, {
      type: 'exchange',
      keyId,
      files: [{ name: requestFile, value }],
    });
    await b!.service.exchange({ key: keyId });
    expect(readdirSync(dirs[0]!)).to.include(requestFile);
    // a and c answer; their nodes send what they hold.
    for (const i of [0, 2]) {
      const list = await advanceDecryption({
        store: stores[i]!,
        passphrase: secret,
        decide: approve,
        keyRef: keyId,
        inDir: dirs[i]!,
        outDir: dirs[i]!,
        openOnly: true,
      });
      expect(list.flatMap((p) => p.did)).to.deep.equal(['partial']);
      await members[i]!.service.exchange({ key: keyId });
    }
    // Every partial is at b; none reached another holder (a forwarded the request, yet c answered b).
    const partialsAt = (i: number): string[] => readdirSync(dirs[i]!).filter((n) => n.includes('-partial-'));
    expect(partialsAt(1)).to.have.length(3);
    expect(partialsAt(0)).to.have.length(1); // its own
    expect(partialsAt(2)).to.have.length(1); // its own
    for (const name of partialsAt(1)) expect(statSync(join(dirs[1]!, name)).mode & 0o077).to.equal(0);
    const [done] = await advanceDecryption({
      store: stores[1]!,
      passphrase: secret,
      decide: approve,
      keyRef: keyId,
      inDir: dirs[1]!,
      outDir: dirs[1]!,
      request: requested.request,
    });
    expect(new TextDecoder().decode(done!.plaintext)).to.equal('the launch code is 0000');
    // A partial for a request the receiving data directory did not make is refused.
    const answer = await c!.network.request<{ stored: number; refused: string[] }>(
      a!.network.peerId,
      ceremonyProtocolName,
      {
        type: 'exchange',
        keyId,
        files: [
          {
            name: partialsAt(2)[0]!,
            value: JSON.parse(readFileSync(join(dirs[2]!, partialsAt(2)[0]!), 'utf8')) as unknown,
          },
        ],
      },
    );
    expect(answer).to.deep.include({ stored: 0 });
  });

  it('takes decryption requests from two requesters at once and answers each at its own node', async () => {
    const [a, b, c] = await startMembers(3);
    const { keyId } = await makeKey('decrypt');
    const stores = members.map((m) => new KeyStore(m.dir));
    const dirs = stores.map((store) => signExchangeDir(store.root, keyId));
    const secret = (): Promise<string> => Promise.resolve(passphrase);
    const key = await stores[0]!.readKey(keyId);
    const rng = new SeededRng(11);
    const requests = await Promise.all(
      [1, 2].map(async (i) => {
        const ciphertext = encryptToGroup(key.publicKey, new TextEncoder().encode(`secret ${i}`), rng);
        return requestDecryption({
          store: stores[i]!,
          passphrase: secret,
          keyRef: keyId,
          ciphertext,
          outDir: dirs[i]!,
        });
      }),
    );
    // Both requests reach a at the same moment, each from its requester's node.
    await Promise.all(
      [b!, c!].map((m, n) => {
        const name = `decrypt-${requests[n]!.request}-request.json`;
        const value = JSON.parse(readFileSync(join(dirs[n + 1]!, name), 'utf8')) as unknown;
        return m.network.request(a!.network.peerId, ceremonyProtocolName, {
          type: 'exchange',
          keyId,
          files: [{ name, value }],
        });
      }),
    );
    const approve = (): Promise<{ approve: true }> => Promise.resolve({ approve: true });
    await advanceDecryption({
      store: stores[0]!,
      passphrase: secret,
      decide: approve,
      keyRef: keyId,
      inDir: dirs[0]!,
      outDir: dirs[0]!,
      openOnly: true,
    });
    await a!.service.exchange({ key: keyId });
    for (const [n, i] of [
      [0, 1],
      [1, 2],
    ] as const) {
      const [done] = await advanceDecryption({
        store: stores[i]!,
        passphrase: secret,
        decide: approve,
        keyRef: keyId,
        inDir: dirs[i]!,
        outDir: dirs[i]!,
        request: requests[n]!.request,
      });
      expect(new TextDecoder().decode(done!.plaintext)).to.equal(`secret ${i}`);
    }
  });

  it("records a requester that holds no share only from its own node, proved by the node's card", async () => {
    const [a, b] = await startMembers(3);
    const { keyId } = await makeKey('decrypt');
    // d runs a node with a ceremony identity but holds no share of the key.
    const network = await pool.start({ listen: ['/ip4/127.0.0.1/tcp/0'] });
    const d = { network, dir: join(tmp, 'd'), service: await service(network, join(tmp, 'd')) };
    members.push(d);
    await network.connect(a!.network.addresses()[0]!);
    await b!.network.connect(network.addresses()[0]!);
    const dIdentity = (await d.service.info()).card!.peerId;
    const request = (id: string): { name: string; value: unknown } => ({
      name: `decrypt-${id}-request.json`,
      value: { format: 'optimystic-decrypt-request', version: 1, request: id, keyId, requester: dIdentity },
    });
    const recorded = async (): Promise<Record<string, string>> =>
      ((await new KeyStore(a!.dir).readRecord(`exchange/${keyId}/requesters.json`, 'requesters')) ??
        {}) as Record<string, string>;
    // b passes d's request on (with b's own card): not recorded as where partials go.
    const bCard = await new KeyStore(b!.dir).readRecord('ceremony-node.json', 'card');
    await b!.network.request(a!.network.peerId, ceremonyProtocolName, {
      type: 'exchange',
      keyId,
      files: [request('aaaaaaaaaaaaaaaa')],
      card: bCard,
    });
    expect(await recorded()).to.deep.equal({});
    // d sends it without a card: not recorded either; with its card: recorded.
    await d.network.request(a!.network.peerId, ceremonyProtocolName, {
      type: 'exchange',
      keyId,
      files: [request('bbbbbbbbbbbbbbbb')],
    });
    expect(await recorded()).to.deep.equal({});
    const dCard = await new KeyStore(d.dir).readRecord('ceremony-node.json', 'card');
    await d.network.request(a!.network.peerId, ceremonyProtocolName, {
      type: 'exchange',
      keyId,
      files: [request('cccccccccccccccc')],
      card: dCard,
    });
    expect(await recorded()).to.deep.equal({ cccccccccccccccc: d.network.peerId });
    // A card of d replayed from b's node does not bind to b.
    await b!.network.request(a!.network.peerId, ceremonyProtocolName, {
      type: 'exchange',
      keyId,
      files: [request('dddddddddddddddd')],
      card: dCard,
    });
    expect(Object.keys(await recorded())).to.deep.equal(['cccccccccccccccc']);
  });

  it('resumes after a restart: a proposal waiting for its decision, then a ceremony in progress', async () => {
    const [a, b, c] = await startMembers(3);
    const started = await a!.service.startCeremony({
      participants: [b!.network.peerId, c!.network.peerId],
      threshold: 2,
      expiresInMs: 60_000,
      phaseTimeoutMs: 15_000,
    });
    await accept(b!, started.tag).catch(() => undefined);
    await eventually('the proposal reaches c', async () =>
      (await c!.service.info()).ceremonies.some((x) => x.tag === started.tag),
    );
    // c restarts before deciding: the proposal (and the acceptances that came with it) survive.
    await c!.service.stop();
    c!.service = await service(c!.network, c!.dir);
    await c!.service.decide(started.tag, { approve: true });
    // b stops at once after; others keep trying to reach it, and it resumes from its sealed state.
    await b!.service.stop();
    await new Promise((resolve) => setTimeout(resolve, 300));
    b!.service = await service(b!.network, b!.dir);
    const finals = await Promise.all(
      members.map(async (m) => (await collect(m.service.follow(started.tag))).at(-1)!),
    );
    expect(finals.map((e) => e.event)).to.deep.equal(['complete', 'complete', 'complete']);
    expect(new Set(finals.map((e) => e.key!.publicKeyHex)).size).to.equal(1);
  });

  it('fails with NO_QUORUM naming the node that never accepts, and activates no key anywhere', async () => {
    const [a, b, c] = await startMembers(3);
    const started = await a!.service.startCeremony({
      participants: [b!.network.peerId, c!.network.peerId],
      threshold: 2,
      expiresInMs: 2_500,
      phaseTimeoutMs: 1_000,
    });
    await accept(b!, started.tag);
    // c never accepts.
    const finals = await Promise.all(
      members.map(async (m) => (await collect(m.service.follow(started.tag))).at(-1)!),
    );
    expect(finals.map((e) => e.event)).to.deep.equal(['failed', 'failed', 'failed']);
    expect(finals.map((e) => e.failure!.code)).to.deep.equal(['NO_QUORUM', 'NO_QUORUM', 'NO_QUORUM']);
    const silent = started.summary.members.find((m) => started.nodes[m.peerId] === c!.network.peerId)!.peerId;
    expect(finals[0]!.failure!.culprits).to.deep.equal([silent]);
    for (const m of members) {
      expect(await new KeyStore(m.dir).listKeys()).to.deep.equal([]);
      expect((await listCeremonies(new KeyStore(m.dir))).map((r) => r.phase)).to.deep.equal(['failed']);
    }
  });

  it('a decline fails the ceremony for everyone at once', async () => {
    const [a, b, c] = await startMembers(3);
    const started = await a!.service.startCeremony({
      participants: [b!.network.peerId, c!.network.peerId],
      threshold: 2,
      expiresInMs: 60_000,
    });
    await eventually('the proposal reaches b', async () => (await b!.service.info()).ceremonies.length > 0);
    await b!.service.decide(started.tag, { approve: false, reason: 'wrong threshold' });
    await accept(c!, started.tag);
    const finals = await Promise.all(
      members.map(async (m) => (await collect(m.service.follow(started.tag))).at(-1)!),
    );
    expect(finals.map((e) => e.failure?.code)).to.deep.equal(['NO_QUORUM', 'NO_QUORUM', 'NO_QUORUM']);
    expect(finals[0]!.failure!.reason).to.contain('wrong threshold');
  });

  it('rejects a message from outside the roster, from the wrong node, or with a bad signature', async () => {
    const [a, b] = await startMembers(2);
    const stranger = await pool.start({ listen: ['/ip4/127.0.0.1/tcp/0'] });
    await stranger.connect(a!.network.addresses()[0]!);
    const started = await a!.service.startCeremony({
      participants: [b!.network.peerId],
      threshold: 2,
      expiresInMs: 60_000,
    });
    const deliver = (from: NetworkNode, message: unknown): Promise<unknown> =>
      from.request(a!.network.peerId, ceremonyProtocolName, { type: 'deliver', message });

    // A stranger's identity: not in the roster.
    const outsider = Identity.generate(new SeededRng(5));
    const foreign = signMessage<AcceptMessage>(outsider, {
      type: 'Accept',
      session: started.session,
      from: outsider.peerId,
    });
    const notInRoster = await rejection(deliver(stranger, foreign));
    expect(notInRoster.code).to.equal('BAD_INPUT');
    expect(notInRoster.message).to.contain('not in the roster');

    // b's real acceptance, relayed by a node that is not b's.
    await accept(b!, started.tag);
    const bCeremonyId = Object.entries(started.nodes).find(([, node]) => node === b!.network.peerId)![0];
    const bStore = new KeyStore(b!.dir);
    const bSent = (await bStore.list(`ceremonies/${started.session}/sent`)).find((n) =>
      n.includes('accept'),
    )!;
    const bAccept = await bStore.readRecord(`ceremonies/${started.session}/sent/${bSent}`, 'accept');
    const wrongNode = await rejection(deliver(stranger, bAccept));
    expect(wrongNode.code).to.equal('BAD_INPUT');
    expect(wrongNode.message).to.contain(`not the node of participant ${bCeremonyId}`);

    // b's acceptance, altered: an integrity failure.
    const forged = await rejection(
      deliver(b!.network, {
        ...(bAccept as AcceptMessage),
        signature: (bAccept as AcceptMessage).signature.replace(/^./, (ch) => (ch === 'A' ? 'B' : 'A')),
      }),
    );
    expect(forged.code).to.equal('BAD_SIGNATURE');
    expect(isEngineError(forged, 'BAD_SIGNATURE')).to.equal(true);
  });

  it('a locked node answers for its card only once it was unlocked; commands without a passphrase are refused', async () => {
    const network = await pool.start({ listen: ['/ip4/127.0.0.1/tcp/0'] });
    const dir = join(tmp, 'locked');
    const locked = await service(network, dir, true);
    members.push({ network, dir, service: locked });
    expect((await locked.info()).unlocked).to.equal(false);
    const refused = await rejection(
      locked.startCeremony({ participants: [network.peerId], threshold: 2, expiresInMs: 60_000 }),
    );
    expect(refused.code).to.equal('BAD_INPUT');
    const info = await locked.unlock(passphrase);
    expect(info.unlocked).to.equal(true);
    expect(info.card?.peerId).to.be.a('string');
    expect((await rejection(locked.unlock('wrong'))).code).to.equal('BAD_SIGNATURE');
  });
});
