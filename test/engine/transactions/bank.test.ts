import { expect } from 'chai';
import { SeededRng } from '../../../src/engine/base/rng.js';
import type { SoloNode } from '../../../src/engine/node/solo-node.js';
import { memoryNode, ok } from '../../helpers/solo.js';

const seed = Number(process.env['OPTIMYSTIC_SEED'] ?? 7);

describe('bank workload under concurrency (solo node)', () => {
  let node: SoloNode;
  afterEach(async () => node?.close());

  it(`keeps the total constant, never goes negative and journals exactly the transfers that committed (seed ${seed})`, async () => {
    ({ node } = await memoryNode(seed));
    const rng = new SeededRng(seed);
    const accounts = Array.from({ length: 120 }, (_, i) => `acct${String(i).padStart(3, '0')}`);
    await node.createCollection('accounts', 'tree');
    await node.createCollection('journal', 'diary');
    ok(
      await node.transact({
        actions: accounts.map((key) => ({
          collection: 'accounts',
          op: 'put' as const,
          key,
          value: { balance: 100 },
        })),
      }),
    );
    const committed: string[] = [];
    let failed = 0;
    const worker = async (w: number): Promise<void> => {
      for (let i = 0; i < 40; i++) {
        // Hot accounts (the first few) make conflicts common; the rest are spread over several leaves.
        const pick = (): string => accounts[rng.float() < 0.3 ? rng.int(4) : rng.int(accounts.length)]!;
        const from = pick();
        let to = pick();
        if (to === from) to = accounts[(accounts.indexOf(from) + 1) % accounts.length]!;
        const amount = 1 + rng.int(60);
        const id = `w${w}-${i}`;
        const outcome = await node.transact({
          actions: [
            { collection: 'accounts', op: 'incr', key: from, path: 'balance', by: -amount, min: 0 },
            { collection: 'accounts', op: 'incr', key: to, path: 'balance', by: amount },
            { collection: 'journal', op: 'append', value: { id, from, to, amount } },
          ],
        });
        if (outcome.ok) committed.push(id);
        else {
          expect(outcome.error.code, `seed ${seed}`).to.equal('EXPECT_FAILED');
          failed++;
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
    let total = 0;
    for await (const { value } of node.scan('accounts')) {
      const balance = (value as { balance: number }).balance;
      expect(balance, `seed ${seed}`).to.be.at.least(0);
      total += balance;
    }
    expect(total, `seed ${seed}`).to.equal(accounts.length * 100);
    const journal: string[] = [];
    for await (const { value } of node.read('journal')) journal.push((value as { id: string }).id);
    expect([...journal].sort(), `seed ${seed}`).to.deep.equal([...committed].sort());
    expect(committed.length + failed).to.equal(8 * 40);
  });
});
