import { expect } from 'chai';
import type { Certificate } from '../../../src/engine/collections/log/log-block.js';
import {
  Ed25519Identity,
  SoloCertifier,
  verifyCertificate,
} from '../../../src/engine/transactions/certifier.js';
import { FirstAttemptBarrier, memoryNode, ok, put } from '../../helpers/solo.js';

/** A certificate as another process sees it: read back from JSON, not the object its certifier made. */
function received(certificate: Certificate): Certificate {
  return JSON.parse(JSON.stringify(certificate)) as Certificate;
}

describe('batch certificates (one signature for a tail batch)', () => {
  const decision = (lsn: number) => ({
    collection: 'c',
    blockId: 'b'.repeat(43),
    lsn,
    trxId: `trx-${lsn}`,
    decision: 'committed' as const,
  });

  it('gives every decision of a batch a certificate that verifies alone, for every batch size and position', async () => {
    const me = Ed25519Identity.generate();
    const certifier = new SoloCertifier(me, 'net');
    for (let size = 1; size <= 13; size++) {
      const decisions = Array.from({ length: size }, (_, i) => decision(100 + i));
      const certificates = await certifier.certifyBatch(decisions, [me.id]);
      expect(certificates).to.have.length(size);
      certificates.forEach((certificate, i) => {
        expect(certificate.lsn).to.equal(100 + i);
        // A batch of one is certified plainly; larger ones share one signature over their root.
        expect(certificate.batch === undefined).to.equal(size === 1);
        expect(verifyCertificate(received(certificate), [me.id]), `size ${size} index ${i}`).to.equal(true);
        expect(certifier.verify(received(certificate), [me.id])).to.equal(true);
      });
      if (size > 1) expect(new Set(certificates.map((c) => c.signatures[0]!.signature)).size).to.equal(1);
    }
  });

  it('rejects a batch certificate whose decision, path, position or size was altered', async () => {
    const me = Ed25519Identity.generate();
    const certifier = new SoloCertifier(me, 'net');
    const certificates = await certifier.certifyBatch(
      Array.from({ length: 5 }, (_, i) => decision(10 + i)),
      [me.id],
    );
    const good = received(certificates[2]!);
    const batch = good.batch!;
    expect(certifier.verify(good, [me.id])).to.equal(true);
    const flipped = (text: string): string => (text[0] === 'A' ? 'B' : 'A') + text.slice(1);
    const variants: Certificate[] = [
      { ...good, decision: 'aborted' },
      { ...good, lsn: 99 },
      { ...good, trxId: 'trx-11' },
      { ...good, batch: { ...batch, path: [flipped(batch.path[0]!), ...batch.path.slice(1)] } },
      { ...good, batch: { ...batch, path: batch.path.slice(1) } },
      { ...good, batch: { ...batch, path: [...batch.path, batch.path[0]!] } },
      { ...good, batch: { ...batch, index: 3 } },
      { ...good, batch: { ...batch, size: 6 } },
      { ...good, batch: { ...batch, index: 5 } },
      { ...good, batch: { ...batch, path: ['not base64url of 32 bytes'] } },
      // Another decision's path with this decision: the path leads elsewhere.
      { ...good, batch: received(certificates[3]!).batch! },
      // The plain form with the batch signature: the signature is not over this decision.
      (({ batch: _batch, ...plain }) => plain)(good),
    ];
    for (const variant of variants) expect(certifier.verify(variant, [me.id])).to.equal(false);
    // A signature by someone else over the same root does not verify for the membership.
    const forger = Ed25519Identity.generate();
    const forged = await new SoloCertifier(forger, 'net').certifyBatch(
      Array.from({ length: 5 }, (_, i) => decision(10 + i)),
      [me.id],
    );
    expect(certifier.verify(received(forged[2]!), [me.id])).to.equal(false);
  });

  it('certifies concurrent commits of one collection with one signature per batch, and block verify checks them after a restart', async () => {
    const barrier = new FirstAttemptBarrier();
    const { node, raw } = await memoryNode(41, { coordinator: { afterExecute: barrier.hook } });
    await node.createCollection('t', 'tree');
    // Enough keys for several leaves: writers of different leaves do not conflict.
    const key = (i: number): string => `key-${String(i).padStart(4, '0')}`;
    ok(
      await node.transact({
        actions: Array.from({ length: 320 }, (_, i) => ({
          collection: 't',
          op: 'put',
          key: key(i),
          value: i,
        })),
      }),
    );
    barrier.arm(6);
    const outcomes = await Promise.all(
      Array.from({ length: 6 }, (_, i) => node.transact(put('t', key(i * 60), -i))),
    );
    expect(outcomes.map((outcome) => ok(outcome).attempts)).to.deep.equal([1, 1, 1, 1, 1, 1]);
    const info = await node.collectionInfo('t');
    const tail = await node.block(info.tail);
    const entries = (tail.block as unknown as { entries: { certificate: Certificate }[] }).entries;
    const batched = entries.filter((entry) => entry.certificate.batch !== undefined);
    expect(batched.length).to.be.greaterThan(1);
    await node.close();
    await raw.open();
    const restarted = (await memoryNode(42, {}, raw)).node;
    try {
      expect((await restarted.verifyBlock(info.tail)).verified).to.equal(true);
      expect((await restarted.verifyBlock(info.root)).verified).to.equal(true);
    } finally {
      await restarted.close();
    }
  });
});
