import { expect } from 'chai';
import { membersForSeed, simOptionsFor } from './options.js';
import { runSimulation, SimulationFailure, type SimResult } from './world.js';

/**
 * Seeded simulation of consensus groups of 3, 5 and 7 members (the size cycles with the seed).
 * `OPTIMYSTIC_SIM_SEEDS=N` runs seeds 1…N (default 200); `OPTIMYSTIC_SEED=S` replays one seed.
 */

const replayCommand = (seed: number): string =>
  `OPTIMYSTIC_SEED=${seed} npx mocha --no-config --node-option import=tsx --require test/setup.ts --timeout 120000 test/sim/consensus.test.ts`;

function seeds(): number[] {
  const one = process.env.OPTIMYSTIC_SEED;
  if (one !== undefined && one !== '') return [Number(one)];
  const count = Number(process.env.OPTIMYSTIC_SIM_SEEDS ?? 200);
  return Array.from({ length: count }, (_, i) => i + 1);
}

function simulate(seed: number): SimResult {
  try {
    return runSimulation(simOptionsFor(seed));
  } catch (error) {
    if (!(error instanceof SimulationFailure)) throw error;
    throw new Error(
      `seed ${seed} (${membersForSeed(seed)} members): ${error.message}\n` +
        `replay: ${replayCommand(seed)}\n` +
        `last events:\n  ${error.trace.join('\n  ')}`,
    );
  }
}

describe('consensus simulation', function () {
  const results: SimResult[] = [];
  const started = Date.now();

  after(function () {
    if (results.length === 0) return;
    const sum = (f: (r: SimResult) => number): number => results.reduce((a, r) => a + f(r), 0);
    const forged = sum(
      (r) =>
        r.drops['bad-signature'] +
        r.drops['bad-certificate'] +
        r.drops['wrong-membership'] +
        r.drops['non-member'] +
        r.drops['wrong-network'] +
        r.drops['wrong-group'],
    );
    console.log(
      `      ${results.length} seeds, ${sum((r) => r.steps)} steps, ${sum((r) => r.decidedSlots)} slots decided, ` +
        `${sum((r) => (r.sealed ? 1 : 0))} sealed, ${sum((r) => r.ballots)} ballots, ${sum((r) => r.crashes)} crashes, ` +
        `${forged} forged or misdirected messages dropped, ` +
        `liveness after healing ≤ ${Math.max(...results.map((r) => r.livenessMs))} ms virtual ` +
        `(≤ ${Math.max(...results.map((r) => r.livenessSteps))} steps), ${Date.now() - started} ms`,
    );
  });

  for (const seed of seeds()) {
    it(`seed ${seed} (${membersForSeed(seed)} members): safe under faults, live after healing`, function () {
      results.push(simulate(seed));
    });
  }

  it('replays a seed exactly', function () {
    const seed = seeds()[0]!;
    const first = runSimulation(simOptionsFor(seed));
    const second = runSimulation(simOptionsFor(seed));
    expect(second).to.deep.equal(first);
  });
});
