import { expect } from 'chai';
import { canonicalJson } from '../../../src/engine/base/codec.js';
import {
  decisionMessage,
  Ed25519Identity,
  SoloCertifier,
  verifyCertificate,
  type DecisionFields,
} from '../../../src/engine/transactions/certifier.js';
import { checkCertificateAlone } from '../../../src/engine/cluster/certifier.js';
import { memoryNode, ok, put } from '../../helpers/solo.js';

describe('commit certificates', () => {
  const fields = {
    collection: 'c',
    blockId: 'b'.repeat(43),
    lsn: 7,
    trxId: 't'.repeat(22),
    decision: 'committed' as const,
  };

  it('verifies a certificate signed by a majority of the recorded membership, offline', async () => {
    const [a, b, c] = [Ed25519Identity.generate(), Ed25519Identity.generate(), Ed25519Identity.generate()];
    const members = [a.id, b.id, c.id];
    const fromA = await new SoloCertifier(a, 'net').certify(fields, members);
    const fromB = await new SoloCertifier(b, 'net').certify(fields, members);
    // One signature of three is not a quorum; two are.
    expect(verifyCertificate(fromA, members)).to.equal(false);
    expect(
      verifyCertificate({ ...fromA, signatures: [...fromA.signatures, ...fromB.signatures] }, members),
    ).to.equal(true);
    // The same member twice does not count twice.
    expect(
      verifyCertificate({ ...fromA, signatures: [...fromA.signatures, ...fromA.signatures] }, members),
    ).to.equal(false);
  });

  it('signs the canonical JSON of the decision fields, whatever the fields hold', () => {
    const canonical = (f: DecisionFields): string =>
      canonicalJson({
        domain: 'optimystic/decision/v1',
        network: f.network,
        collection: f.collection,
        blockId: f.blockId,
        lsn: f.lsn,
        trxId: f.trxId,
        decision: f.decision,
        membership: f.membership,
      });
    const base: DecisionFields = { ...fields, network: 'default', membership: 'm'.repeat(43) };
    const variants: unknown[] = [
      base,
      { ...base, lsn: 0 },
      { ...base, lsn: -0 },
      { ...base, lsn: 2 ** 53 + 2 },
      { ...base, lsn: 1e21 },
      { ...base, lsn: 1.5 },
      { ...base, network: 'a "quoted" \\ net\n\u0001é\ud800' },
      { ...base, collection: '' },
      // Shapes only a certificate received from elsewhere has: canonicalJson decides their text.
      { ...base, lsn: '7' },
      { ...base, trxId: undefined },
      { ...base, decision: null },
      { ...base, membership: ['m'] },
    ];
    for (const variant of variants) {
      const f = variant as DecisionFields;
      expect(decisionMessage(f).toString()).to.equal(canonical(f));
    }
    expect(() => decisionMessage({ ...base, lsn: Number.NaN })).to.throw();
  });

  it('rejects forged, altered, replayed and wrong-membership certificates', async () => {
    const me = Ed25519Identity.generate();
    const certifier = new SoloCertifier(me, 'net');
    const good = await certifier.certify(fields, [me.id]);
    const copy = JSON.parse(JSON.stringify(good)) as typeof good;
    expect(certifier.verify(copy, [me.id])).to.equal(true);
    // Altered decision or LSN: the signature no longer covers it.
    expect(certifier.verify({ ...copy, decision: 'aborted' }, [me.id])).to.equal(false);
    expect(certifier.verify({ ...copy, lsn: 8 }, [me.id])).to.equal(false);
    // Replayed for another transaction.
    expect(certifier.verify({ ...copy, trxId: 'u'.repeat(22) }, [me.id])).to.equal(false);
    // Signed by someone outside the membership.
    const forger = Ed25519Identity.generate();
    const forged = await new SoloCertifier(forger, 'net').certify(fields, [me.id]);
    expect(certifier.verify(JSON.parse(JSON.stringify(forged)) as typeof forged, [me.id])).to.equal(false);
    // Another network.
    const otherNet = await new SoloCertifier(me, 'other').certify(fields, [me.id]);
    expect(certifier.verify(JSON.parse(JSON.stringify(otherNet)) as typeof otherNet, [me.id])).to.equal(
      false,
    );
    // Wrong membership.
    expect(certifier.verify(copy, [me.id, forger.id])).to.equal(false);
  });

  it('makes a block holder refuse to promote a pend without a valid certificate', async () => {
    const { node } = await memoryNode(21);
    try {
      await node.createCollection('t', 'tree');
      ok(await node.transact(put('t', 'k', 1)));
      const info = await node.collectionInfo('t');
      const root = await node.block(info.root);
      await node.repo.pend([
        {
          trxId: 'forged-trx',
          blockId: info.root,
          collection: 't',
          baseRev: root.rev,
          transform: { kind: 'update', ops: [] },
          expiresAt: Date.now() + 60_000,
        },
      ]);
      const forger = Ed25519Identity.generate();
      const forged = await new SoloCertifier(forger, 'default').certify(
        { ...fields, collection: 't', trxId: 'forged-trx' },
        [forger.id],
      );
      const error = await node.repo
        .promote({
          trxId: 'forged-trx',
          lsn: 99,
          blockIds: [info.root],
          proof: [JSON.parse(JSON.stringify(forged)) as typeof forged],
        })
        .catch((e: { code: string }) => e.code);
      expect(error).to.equal('BAD_CERTIFICATE');
      expect((await node.block(info.root)).rev).to.equal(root.rev);
    } finally {
      await node.close();
    }
  });
});

describe('certificates returned with a transaction', () => {
  it('come back only when asked for, one per committed collection, and verify alone', async () => {
    const { node } = await memoryNode(41);
    try {
      await node.createCollection('a', 'tree');
      await node.createCollection('b', 'diary');
      const plain = ok(await node.transact(put('a', 'k', 1)));
      expect(plain.commit).to.deep.equal({ a: { rev: plain.commit['a']!.rev } });
      const both = ok(
        await node.transact(
          {
            actions: [
              { collection: 'a', op: 'put', key: 'k', value: 2 },
              { collection: 'b', op: 'append', value: 'x' },
            ],
          },
          { certificates: true },
        ),
      );
      expect(Object.keys(both.commit).sort()).to.deep.equal(['a', 'b']);
      for (const [collection, point] of Object.entries(both.commit)) {
        const certificate = JSON.parse(JSON.stringify(point.certificate)) as unknown;
        expect(certificate).to.include({
          collection,
          lsn: point.rev,
          trxId: both.trx,
          decision: 'committed',
        });
        const check = checkCertificateAlone(certificate);
        expect(check.status, check.detail).to.equal('verified');
        expect(check.signers).to.deep.equal([node.identity.peerId]);
      }
      // A read-only transaction commits nothing, so it has no certificate either.
      const read = ok(
        await node.transact({ actions: [{ collection: 'a', op: 'get', key: 'k' }] }, { certificates: true }),
      );
      expect(read.commit).to.deep.equal({});
    } finally {
      await node.close();
    }
  });

  it('are checked alone: altered, forged, truncated and malformed ones do not verify', async () => {
    const fields = {
      collection: 'c',
      blockId: 'b'.repeat(43),
      lsn: 3,
      trxId: 't'.repeat(22),
      decision: 'committed' as const,
    };
    const [a, b, c] = [Ed25519Identity.generate(), Ed25519Identity.generate(), Ed25519Identity.generate()];
    const solo = JSON.parse(
      JSON.stringify(await new SoloCertifier(a, 'net').certify(fields, [a.id])),
    ) as Record<string, unknown>;
    expect(checkCertificateAlone(solo).status).to.equal('verified');
    expect(checkCertificateAlone({ ...solo, lsn: 4 }).status).to.equal('invalid');
    expect(checkCertificateAlone({ ...solo, network: 'other' }).status).to.equal('invalid');
    // A group's certificate names its members: a majority of them must have signed.
    const members = [a.id, b.id, c.id].sort();
    const signed = await Promise.all(
      [a, b].map((identity) => new SoloCertifier(identity, 'net').certify(fields, members)),
    );
    const group = {
      ...JSON.parse(JSON.stringify(signed[0])),
      signatures: signed.flatMap((certificate) => certificate.signatures),
      members,
    } as Record<string, unknown>;
    const check = checkCertificateAlone(group);
    expect(check.status, check.detail).to.equal('verified');
    expect(check.signers).to.have.members([a.id, b.id]);
    expect(checkCertificateAlone({ ...group, signatures: signed[0]!.signatures }).status).to.equal('invalid');
    // Members other than those the membership was taken over: no quorum can be counted against them.
    expect(checkCertificateAlone({ ...group, members: [a.id, b.id] }).status).to.equal('invalid');
    // Without its member list, one signer of three cannot be told apart from a group of one.
    const { members: _members, ...unnamed } = group;
    expect(checkCertificateAlone(unnamed).status).to.equal('unverifiable');
    for (const bad of [
      null,
      7,
      'x',
      [],
      { ...solo, signatures: 'no' },
      { ...solo, lsn: '3' },
      { ...solo, decision: 'maybe' },
    ])
      expect(checkCertificateAlone(bad).status).to.equal('invalid');
  });
});

describe('block verification against the certified log', () => {
  it('verifies every revision of data and log blocks, and flags a forged certificate after a restart', async () => {
    const { node, raw } = await memoryNode(31);
    await node.createCollection('a', 'tree');
    await node.createCollection('b', 'diary');
    for (let i = 0; i < 12; i++) {
      ok(
        await node.transact({
          actions: [
            { collection: 'a', op: 'put', key: `k${i}`, value: i },
            { collection: 'b', op: 'append', value: i },
          ],
        }),
      );
    }
    const info = await node.collectionInfo('a');
    const root = await node.verifyBlock(info.root);
    expect(root.verified).to.equal(true);
    expect(root.revisions).to.have.length(13);
    expect(root.revisions.every((r) => r.signers?.length === 1)).to.equal(true);
    expect((await node.verifyBlock(info.tail)).verified).to.equal(true);
    expect((await node.verifyBlock(info.id)).verified).to.equal(true);
    const tail = await node.block(info.tail);
    await node.close();
    await raw.open(); // the memory store keeps its data across close, like a disk

    // Swap the signature of the newest entry for one over other bytes: the log no longer proves it.
    // The tampered log block is stored whole as its latest state (b/), which the store reads as is.
    const stored = structuredClone(tail) as unknown as {
      rev: number;
      lsn: number;
      trxId: string;
      block: { entries: { certificate: { signatures: { signature: string }[] } }[] };
    };
    const last = stored.block.entries.at(-1)!;
    const other = stored.block.entries.at(-2) ?? stored.block.entries[0]!;
    last.certificate.signatures[0]!.signature = other.certificate.signatures[0]!.signature;
    const record = {
      rev: stored.rev,
      lsn: stored.lsn,
      trxId: stored.trxId,
      deleted: false,
      block: stored.block,
    };
    await raw.batch([{ type: 'put', key: `b/${info.tail}`, value: JSON.stringify(record) }]);
    const restarted = (await memoryNode(32, {}, raw)).node;
    try {
      const verdict = await restarted.verifyBlock(info.root);
      expect(verdict.verified).to.equal(false);
      expect(verdict.revisions.filter((r) => r.status === 'invalid')).to.have.length(1);
    } finally {
      await restarted.close();
    }
  });
});
