import { createPublicKey, verify } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { EngineError, ManualClock, SeededRng } from '../../../src/engine/index.js';
import { signMessage, type AcceptMessage } from '../../../src/engine/crypto/index.js';
import { KeyStore } from '../../../src/engine/node/keystore.js';
import {
  advanceSigning,
  proposeCeremony,
  publishCard,
  requestSignature,
  sessionTag,
  stepCeremonyFiles,
  type CeremonyProgress,
  type Decide,
} from '../../../src/engine/node/ceremony-files.js';

/**
 * The air-gapped exchange in one process: real keystores in temporary data directories and one
 * shared exchange directory, as `keygen ceremony …` uses them, without spawning the CLI. Covers what
 * the end-to-end test does not: silent participants and deadlines, a decline, a message from outside
 * the roster, an undecodable file, and a reshare to a new roster.
 */

const passphrase = 'correct horse battery staple';
const approve: Decide = () => Promise.resolve({ approve: true });

interface Member {
  name: string;
  store: KeyStore;
  peerId: string;
}

async function rejects(work: () => Promise<unknown>, code: string): Promise<EngineError> {
  try {
    await work();
  } catch (error) {
    expect(error, String(error)).to.be.instanceOf(EngineError);
    expect((error as EngineError).code, (error as Error).message).to.equal(code);
    return error as EngineError;
  }
  throw new Error(`expected ${code}, but it succeeded`);
}

/** Every file under a directory with its content, to show that nothing was written. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile()) out[join(e.parentPath, e.name)] = readFileSync(join(e.parentPath, e.name), 'utf8');
  return out;
}

describe('air-gapped ceremonies through an exchange directory (in process)', () => {
  let tmp: string;
  let exchange: string;
  let members: Member[];
  let seed = 1;

  beforeEach(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'optimystic-exchange-'));
    exchange = join(tmp, 'exchange');
    members = [];
    for (const name of ['a', 'b', 'c', 'd']) {
      const store = new KeyStore(join(tmp, name), {
        sealCostLog2: 10,
        rng: new SeededRng(seed++),
        clock: new ManualClock(),
      });
      const { card } = await publishCard({
        store,
        passphrase: () => Promise.resolve(passphrase),
        outDir: exchange,
      });
      members.push({ name, store, peerId: card.peerId });
    }
  });

  afterEach(() => rmSync(tmp, { recursive: true, force: true }));

  const step = (
    m: Member,
    options: { deadline?: boolean; decide?: Decide } = {},
  ): Promise<CeremonyProgress> =>
    stepCeremonyFiles({
      store: m.store,
      passphrase: () => Promise.resolve(passphrase),
      decide: options.decide ?? approve,
      inDir: exchange,
      outDir: exchange,
      ...(options.deadline === true ? { deadline: true } : {}),
    });

  const propose = (m: Member, roster: Member[], threshold: number): Promise<CeremonyProgress> =>
    proposeCeremony({
      store: m.store,
      passphrase: () => Promise.resolve(passphrase),
      outDir: exchange,
      kind: 'dkg',
      cardsDir: exchange,
      roster: roster.map((r) => r.peerId),
      suite: 'ed25519-sha512',
      threshold,
      label: 'test',
      expiresInMs: 3_600_000,
    });

  /** Steps the members in turn until each reports the ceremony complete. */
  async function untilComplete(list: Member[]): Promise<CeremonyProgress[]> {
    const last = new Map<string, CeremonyProgress>();
    for (let round = 0; round < 8; round++) {
      for (const m of list) if (last.get(m.name)?.phase !== 'complete') last.set(m.name, await step(m));
      if (list.every((m) => last.get(m.name)!.phase === 'complete'))
        return list.map((m) => last.get(m.name)!);
    }
    throw new Error(
      `did not complete: ${JSON.stringify([...last.values()].map((p) => [p.phase, p.waiting]))}`,
    );
  }

  it('ends with the same key everywhere, each share sealed in its own data directory', async () => {
    const [a, b, c] = members as [Member, Member, Member];
    await propose(a, [a, b, c], 2);
    const done = await untilComplete([a, b, c]);
    const keyIds = new Set(done.map((p) => p.key!.keyId));
    expect(keyIds.size).to.equal(1);
    expect(done.map((p) => p.key!.identifier).sort()).to.deep.equal([1, 2, 3]);
    // Stepping again after the end reports the finished ceremony and changes nothing.
    const again = await step(b);
    expect(again.phase).to.equal('complete');
    expect(again.wrote).to.deep.equal([]);
  });

  it('refuses a message signed by someone outside the roster (BAD_INPUT) and writes nothing', async () => {
    const [a, b, c, outsider] = members as [Member, Member, Member, Member];
    const proposed = await propose(a, [a, b, c], 2);
    const stranger = await outsider.store.openIdentity(passphrase);
    const accept = signMessage<AcceptMessage>(stranger.identity, {
      type: 'Accept',
      session: proposed.session,
      from: stranger.identity.peerId,
    });
    writeFileSync(
      join(exchange, `ceremony-${sessionTag(proposed.session)}-accept-${outsider.peerId.slice(-10)}.json`),
      JSON.stringify(accept),
    );
    const before = { keys: snapshot(b.store.root), exchange: snapshot(exchange) };
    const error = await rejects(() => step(b), 'BAD_INPUT');
    expect(error.message).to.include(outsider.peerId);
    expect(snapshot(b.store.root)).to.deep.equal(before.keys);
    expect(snapshot(exchange)).to.deep.equal(before.exchange);
  });

  it('refuses a file named for the ceremony that is not a ceremony message (CORRUPT)', async () => {
    const [a, b, c] = members as [Member, Member, Member];
    const proposed = await propose(a, [a, b, c], 2);
    writeFileSync(
      join(exchange, `ceremony-${sessionTag(proposed.session)}-accept-xxxxxxxxxx.json`),
      '{"type":"Acc',
    );
    await rejects(() => step(b), 'CORRUPT');
  });

  it('refuses an edited proposal as an integrity failure (BAD_SIGNATURE), before joining', async () => {
    const [a, b, c] = members as [Member, Member, Member];
    const proposed = await propose(a, [a, b, c], 2);
    const path = join(exchange, `ceremony-${sessionTag(proposed.session)}-proposal.json`);
    const edited = JSON.parse(readFileSync(path, 'utf8'));
    edited.proposal.threshold = 3;
    writeFileSync(path, JSON.stringify(edited));
    await rejects(() => step(b), 'BAD_SIGNATURE');
    expect(readdirSync(b.store.root)).to.not.include('ceremonies');
  });

  it('passes over an expired proposal, and names TIMEOUT when asked for it', async () => {
    const [a, b, c] = members as [Member, Member, Member];
    const proposed = await propose(a, [a, b, c], 2);
    (b.store.clock as ManualClock).advance(2 * 3_600_000);
    await rejects(() => step(b), 'NOT_FOUND');
    await rejects(
      () =>
        stepCeremonyFiles({
          store: b.store,
          passphrase: () => Promise.resolve(passphrase),
          decide: approve,
          inDir: exchange,
          outDir: exchange,
          session: sessionTag(proposed.session),
        }),
      'TIMEOUT',
    );
  });

  it('asks for approval and writes nothing without it; a decline fails the ceremony for everyone', async () => {
    const [a, b, c] = members as [Member, Member, Member];
    await propose(a, [a, b, c], 2);
    const before = snapshot(exchange);
    await rejects(() => step(b, { decide: () => Promise.resolve(undefined) }), 'BAD_INPUT');
    expect(snapshot(exchange)).to.deep.equal(before);
    const declined = await step(b, {
      decide: () => Promise.resolve({ approve: false, reason: 'not today' }),
    });
    expect(declined.decision).to.equal('declined');
    expect(declined.phase).to.equal('failed');
    const other = await step(c);
    expect(other.phase).to.equal('failed');
    expect(other.failure).to.include({ code: 'NO_QUORUM' });
    expect(other.failure!.culprits).to.deep.equal([b.peerId]);
  });

  it('fails with NO_QUORUM at the deadline when a participant never accepts', async () => {
    const [a, b, c] = members as [Member, Member, Member];
    await propose(a, [a, b, c], 2);
    const waiting = await step(b);
    expect(waiting.waiting).to.deep.include({ for: 'acceptances', missing: [c.peerId] });
    const failed = await step(b, { deadline: true });
    expect(failed.phase).to.equal('failed');
    expect(failed.failure).to.include({ code: 'NO_QUORUM' });
    expect(failed.failure!.culprits).to.deep.equal([c.peerId]);
  });

  it('blames a participant that accepts but never deals, and finishes without it', async () => {
    const [a, b, c, silent] = members as [Member, Member, Member, Member];
    await propose(a, [a, b, c, silent], 2);
    await step(silent); // accepts, then is never heard from again
    for (const m of [b, c, a, b]) await step(m);
    const stuck = await step(c);
    expect(stuck.waiting).to.deep.include({ for: 'deals', missing: [silent.peerId] });
    for (const m of [a, b, c]) {
      const p = await step(m, { deadline: true });
      expect(p.attempt).to.equal(1);
      const blamed = p.events.find((e) => e.type === 'blamed');
      expect(blamed, `${m.name} blames at its deadline`).to.deep.equal({
        type: 'blamed',
        attempt: 0,
        blame: [{ culprit: silent.peerId, fault: 'missing-deal', about: null }],
      });
    }
    const done = await untilComplete([a, b, c]);
    for (const p of done) expect(p.key!.holders).to.equal(3);
  });

  it('reshares to a new roster: same key, the leaver loses its share, the newcomer can sign', async () => {
    const [a, b, c, d] = members as [Member, Member, Member, Member];
    await propose(a, [a, b, c], 2);
    const made = (await untilComplete([a, b, c]))[0]!.key!;
    await proposeCeremony({
      store: b.store,
      passphrase: () => Promise.resolve(passphrase),
      outDir: exchange,
      kind: 'reshare',
      keyRef: made.keyId,
      roster: [b.peerId, c.peerId, d.peerId],
      threshold: 2,
      cardsDir: exchange,
      expiresInMs: 3_600_000,
    });
    const done = await untilComplete([a, b, c, d]);
    for (const p of done)
      expect(p.key).to.include({ keyId: made.keyId, publicKeyHex: made.publicKeyHex, holders: 3 });
    expect(done[0]!.key!.identifier, 'the dealer that left holds nothing').to.equal(null);
    expect(await a.store.hasShare(made.keyId)).to.equal(false);
    expect(await d.store.hasShare(made.keyId)).to.equal(true);

    // The newcomer and an old holder sign together; node:crypto checks the result.
    const dir = join(tmp, 'sign');
    const pp = () => Promise.resolve(passphrase);
    const message = new TextEncoder().encode('after the reshare');
    await requestSignature({ store: d.store, passphrase: pp, keyRef: made.keyId, message, outDir: dir });
    const signing = { keyRef: made.keyId, inDir: dir, outDir: dir, passphrase: pp, decide: approve };
    await advanceSigning({ ...signing, store: c.store });
    await advanceSigning({ ...signing, store: d.store });
    await advanceSigning({ ...signing, store: c.store });
    const [result] = await advanceSigning({ ...signing, store: d.store });
    const signature = Buffer.from(result!.signature!.signature, 'base64url');
    const key = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(made.publicKeyHex, 'hex').toString('base64url') },
      format: 'jwk',
    });
    expect(verify(null, message, key, signature)).to.equal(true);
    expect((await c.store.readAudit()).map((e) => e['event'])).to.include('sign-share');
  });
});
