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
