import { expect } from 'chai';
import type { DecideRequest } from '../../../src/engine/transactions/protocol.js';
import { memoryNode, ok } from '../../helpers/solo.js';

describe('read-only transactions over several collections', () => {
  it('never see a multi-collection commit in one collection and not in the other', async () => {
    const { node } = await memoryNode(61);
    try {
      await node.createCollection('a', 'diary');
      await node.createCollection('b', 'diary');
      // Hold the commit decision at b's tail: a's lands first, as when b's tail leader is slow or
      // was killed between the two.
      let release: () => void = () => undefined;
      const held = new Promise<void>((resolve) => (release = resolve));
      let decidedAtA = false;
      const tails = node.tails;
      const decide = tails.decide.bind(tails);
      tails.decide = async (request: DecideRequest) => {
        if (request.outcome === 'committed' && request.collection === 'b') await held;
        const answer = await decide(request);
        if (request.collection === 'a') decidedAtA = true;
        return answer;
      };
      const writer = node.transact({
        actions: [
          { collection: 'a', op: 'append', value: 'x' },
          { collection: 'b', op: 'append', value: 'x' },
        ],
      });
      while (!decidedAtA) await new Promise((resolve) => setTimeout(resolve, 1));
      setTimeout(release, 30);
      const reader = ok(
        await node.transact({
          actions: [
            { collection: 'a', op: 'read' },
            { collection: 'b', op: 'read' },
          ],
        }),
      );
      ok(await writer);
      const lengths = reader.results.map((result) => (result.op === 'read' ? result.entries.length : -1));
      // Its first attempt read the commit in a and not in b: b's tail refused that cut, and the
      // transaction ran again until b's decision had landed.
      expect(lengths, JSON.stringify(reader.results)).to.deep.equal([1, 1]);
      expect(reader.attempts).to.be.greaterThan(1);
      // One collection alone is one consistent snapshot: no check, no second attempt.
      const single = ok(await node.transact({ actions: [{ collection: 'a', op: 'read' }] }));
      expect(single.attempts).to.equal(1);
    } finally {
      await node.close();
    }
  });
});

describe('a read through the database API', () => {
  it('reports the revision of the snapshot it read, with one view of the tail', async () => {
    const { node } = await memoryNode(62);
    try {
      await node.createCollection('a', 'tree');
      ok(await node.transact({ actions: [{ collection: 'a', op: 'put', key: 'x', value: 1 }] }));
      const before = (await node.collectionInfo('a')).rev;
      const tails = node.tails;
      const view = tails.view.bind(tails);
      let views = 0;
      let writeBetween = true;
      tails.view = async (collection, claim) => {
        views++;
        const answer = await view(collection, claim);
        if (writeBetween) {
          // A commit lands after the read took its snapshot and before it answers.
          writeBetween = false;
          ok(await node.transact({ actions: [{ collection: 'a', op: 'put', key: 'x', value: 2 }] }));
        }
        return answer;
      };
      const got = await node.get('a', 'x');
      expect(got.value).to.equal(1);
      expect(got.rev, 'the revision the value was read at').to.equal(before);
      // The read's own view and the write's: none asked afterwards for a revision to report.
      expect(views).to.equal(2);
      expect(await node.get('a', 'x')).to.include({ value: 2, rev: before + 1 });
    } finally {
      await node.close();
    }
  });
});
