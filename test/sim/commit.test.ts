import { expect } from 'chai';
import { commitSimOptionsFor, membersForSeed } from './commit/options.js';
import { runCommitSimulation, type CommitSimResult } from './commit/world.js';
import { SimulationFailure } from './world.js';

/**
 * Seeded simulation of the commit protocol on 3, 5 and 7 nodes (the count cycles with the seed):
 * the real node stack (SoloNode wired to its cluster, NetworkConsensus) on a simulated network with
 * virtual time. `OPTIMYSTIC_SIM_SEEDS=N` runs seeds 1…N (default 200); `OPTIMYSTIC_SEED=S` replays
 * one seed; `OPTIMYSTIC_SIM_SCALE=X` multiplies each seed's workload and chaos phase (soak runs).
 */

const replayCommand = (seed: number): string =>
  `OPTIMYSTIC_SEED=${seed} npx mocha --no-config --node-option import=tsx --require test/setup.ts --timeout 120000 test/sim/commit.test.ts`;

function seeds(): number[] {
  const one = process.env.OPTIMYSTIC_SEED;
  if (one !== undefined && one !== '') return [Number(one)];
  const count = Number(process.env.OPTIMYSTIC_SIM_SEEDS ?? 200);
  return Array.from({ length: count }, (_, i) => i + 1);
}

const scale = Number(process.env.OPTIMYSTIC_SIM_SCALE ?? 1);

async function simulate(seed: number): Promise<CommitSimResult> {
  try {
    return await runCommitSimulation(commitSimOptionsFor(seed, scale));
  } catch (error) {
    if (!(error instanceof SimulationFailure)) throw error;
    throw new Error(
      `seed ${seed} (${membersForSeed(seed)} nodes): ${error.message}\n` +
        `replay: ${replayCommand(seed)}\n` +
        `last events:\n  ${error.trace.join('\n  ')}`,
    );
  }
}

describe('commit protocol simulation', function () {
  this.timeout(120_000);
  const results: CommitSimResult[] = [];
  const started = Date.now();

  after(function () {
    if (results.length === 0) return;
    if (process.env.OPTIMYSTIC_SIM_PRINT === '1')
      for (const r of results)
        console.log(
          `      seed ${r.seed}: ${JSON.stringify({ ...r, fingerprint: undefined, balances: undefined })}`,
        );
    const sum = (f: (r: CommitSimResult) => number): number => results.reduce((a, r) => a + f(r), 0);
    console.log(
      `      ${results.length} seeds, ${sum((r) => r.steps)} steps, ` +
        `${sum((r) => r.transactions.committed)} committed / ${sum((r) => r.transactions.failed)} failed / ` +
        `${sum((r) => r.transactions.unknown)} unknown transactions, ${sum((r) => r.snapshots)} snapshots, ` +
        `${sum((r) => r.crashes)} crashes (${sum((r) => r.crashesInCommit)} with a decision in flight), ` +
        `${sum((r) => r.decidedSlots)} slots decided, ${sum((r) => r.internalErrors)} INTERNAL answers, ` +
        `liveness ≤ ${Math.max(...results.map((r) => r.livenessMs))} ms virtual, ` +
        `${Math.round(sum((r) => r.virtualMs) / results.length)} ms virtual per seed, ${Date.now() - started} ms`,
    );
  });

  for (const seed of seeds()) {
    it(`seed ${seed} (${membersForSeed(seed)} nodes): commits stay safe under faults, live after healing`, async function () {
      results.push(await simulate(seed));
    });
  }

  it('replays a seed exactly', async function () {
    const seed = seeds()[0]!;
    const first = await runCommitSimulation(commitSimOptionsFor(seed, scale));
    const second = await runCommitSimulation(commitSimOptionsFor(seed, scale));
    expect(second).to.deep.equal(first);
  });
});
